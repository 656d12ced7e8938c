"""The composition root: builds the emulator's parts from its config and runs both listeners."""

from __future__ import annotations

import threading
import time
from types import TracebackType

from sectigo_svc.emulator import errors
from sectigo_svc.emulator.api import SectigoApi
from sectigo_svc.emulator.bundles import Pkcs12Unavailable, check_pkcs12_encoding
from sectigo_svc.emulator.ca import CertificateAuthority
from sectigo_svc.emulator.catalog import DEFAULT_BALANCE, account_profiles
from sectigo_svc.emulator.config import Account, EmulatorConfig, EmulatorConfigError
from sectigo_svc.emulator.faults import FaultInjector
from sectigo_svc.emulator.http import HttpServer, Reply, Request, Response, Router
from sectigo_svc.emulator.issuance import Issuer
from sectigo_svc.emulator.journal import Journal
from sectigo_svc.emulator.ledger import Ledger
from sectigo_svc.emulator.ledger_file import LedgerFile, LedgerFileError
from sectigo_svc.emulator.management import Management
from sectigo_svc.emulator.routes.account import AccountRoutes
from sectigo_svc.emulator.routes.auth import AuthRoutes
from sectigo_svc.emulator.routes.batches import BatchRoutes
from sectigo_svc.emulator.routes.certificates import CertificateRoutes
from sectigo_svc.emulator.settings import LiveSettings, Settings
from sectigo_svc.emulator.stats import Stats
from sectigo_svc.emulator.tokens import TokenIssuer, wall_clock

VERSION = "20.7-emulator"


class Emulator:
    """A running emulator: the API listener and the management listener, on loopback by default.

    ``start`` binds both sockets (port 0 picks free ports, see ``api_url``/``management_url``) and
    serves from background threads; ``stop`` finishes replies under way and closes both.

    With ``state_dir`` the CA and the ledger (batches, certificates, licences, revocations) are
    kept there and taken up again by the next start.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.profiles = account_profiles(config.authority_ids)
        balances = dict.fromkeys(self.profiles.authority_ids, DEFAULT_BALANCE)
        unknown = {authority for authority, _ in config.balances} - set(balances)
        if unknown:
            raise EmulatorConfigError(
                f"balance: no authority {sorted(unknown)[0]} (the authorities are "
                f"{', '.join(map(str, balances))})"
            )
        balances |= dict(config.balances)
        try:
            check_pkcs12_encoding(config.pkcs12_encryption)
        except Pkcs12Unavailable as exc:
            raise EmulatorConfigError(
                f"pkcs12_encryption {config.pkcs12_encryption}: {exc}"
            ) from exc
        self.config = config
        self._started = time.monotonic()
        self.settings = LiveSettings(
            Settings(
                access_lifetime=config.access_lifetime,
                refresh_lifetime=config.refresh_lifetime,
                issue_delay=config.issue_delay,
                stuck=config.stuck,
                password=config.password,
                ignore_list_filters=config.ignore_list_filters,
                visibility_lag=config.visibility_lag,
                clock_offset=config.clock_offset,
            )
        )
        self.stats = Stats()
        self.journal = Journal(wall_clock)
        self.faults = FaultInjector()
        self.faults.add(config.faults)
        self.tokens = TokenIssuer(self._lifetimes, self._token_clock)
        self._ledger_file = LedgerFile(config.state_dir) if config.state_dir else None
        try:
            self.ledger = Ledger(balances, time.monotonic, self.profiles, self._ledger_file)
        except LedgerFileError as exc:
            raise EmulatorConfigError(f"state_dir: {exc}") from exc
        self.ledger.set_stuck(config.stuck)
        self.ca = CertificateAuthority.load_or_create(config.state_dir)
        self._api_server = HttpServer(config.host, config.port, self._dispatch_api)
        self._management_server = HttpServer(
            config.host, config.management_port, self._dispatch_management
        )
        self._api = self._build_api()
        self._management = Management(
            self.faults, self.settings, self.ledger, self.stats, self.tokens, self.journal
        )

    def _lifetimes(self) -> tuple[int, int]:
        current = self.settings.get()
        return current.access_lifetime, current.refresh_lifetime

    def _token_clock(self) -> float:
        """Sectigo's clock as the tokens see it: wall time plus the ``clock_offset`` setting."""
        return wall_clock() + self.settings.get().clock_offset

    def _accounts(self) -> tuple[Account, ...]:
        """The main account with its current password, then the accounts without authority."""
        main = Account(self.config.username, self.settings.get().password)
        return (main, *self.config.unauthorized_users)

    def _build_api(self) -> SectigoApi:
        config = self.config
        issuer = Issuer(
            self.ca, config.key_type, config.reject_common_names, f"{self.api_url}/crl/issuing.crl"
        )
        router = Router(errors.not_found, errors.bad_method)
        AuthRoutes(self._accounts, self.tokens, self.stats).register(router)
        BatchRoutes(
            self.ledger,
            self.profiles,
            issuer,
            self.ca,
            self.settings,
            self.stats,
            config.status_text,
            config.pkcs12_encryption,
        ).register(router)
        AccountRoutes(self.ledger, self.profiles).register(router)
        CertificateRoutes(self.ledger, self.ca).register(router)
        router.add("status", "GET", "/status", self._status, authenticated=False)
        return SectigoApi(
            router,
            self.tokens,
            self.faults,
            self.stats,
            self.journal,
            self._api_server.stopping,
        )

    def _dispatch_api(self, request: Request) -> Reply:
        return self._api.dispatch(request)

    def _dispatch_management(self, request: Request) -> Reply:
        return self._management.dispatch(request)

    def _status(self, _: Request) -> Response:
        uptime = round(time.monotonic() - self._started, 3)
        return Response.json(200, {"status": "ok", "version": VERSION, "uptime": uptime})

    @property
    def api_url(self) -> str:
        return self._api_server.url

    @property
    def management_url(self) -> str:
        return self._management_server.url

    def start(self) -> None:
        self._api_server.serve_in_thread("emulator-api")
        self._management_server.serve_in_thread("emulator-management")

    def stop(self) -> None:
        stoppers = [
            threading.Thread(target=server.stop)
            for server in (self._api_server, self._management_server)
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        if self._ledger_file is not None:
            self._ledger_file.close()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
