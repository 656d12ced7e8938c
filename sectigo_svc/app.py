"""The composition root: builds every part of the service from its config, starts and stops it.

Nothing else constructs these parts; tests build an Application exactly as ``sectigo-svc serve``
does, on port 0 against an emulator.
"""

from __future__ import annotations

import datetime as dt
import threading

import structlog

from sectigo_svc.authz import Policy
from sectigo_svc.config import ServiceConfig
from sectigo_svc.domain.account import AccountReads
from sectigo_svc.domain.catalog import Catalog
from sectigo_svc.domain.models import CertificateRequest, RequestState, Subject
from sectigo_svc.domain.notifier import Notifier
from sectigo_svc.domain.orders import order_params
from sectigo_svc.domain.service import CertificateService, IssuanceSettings
from sectigo_svc.domain.store_clock import StoreClock
from sectigo_svc.domain.tracker import Tracker, TrackerSettings
from sectigo_svc.metrics import Metrics, MetricsEndpoint
from sectigo_svc.rpc.admission import Admission
from sectigo_svc.rpc.api_version import ApiVersions
from sectigo_svc.rpc.interceptor import CallInterceptor
from sectigo_svc.rpc.server import (
    ROLES,
    SECTIGO_METHODS,
    SERVICE_NAME,
    Keepalive,
    build_server,
)
from sectigo_svc.rpc.servicer import CertificateAuthorityServicer
from sectigo_svc.rpc.tls import TlsFiles, TlsWatcher
from sectigo_svc.sealing import Sealer, load_or_create_key
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.config import Environment, SectigoConfig
from sectigo_svc.sectigo.credentials import Credentials
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.token_cache import account_key
from sectigo_svc.store.base import RequestStore, holder_name
from sectigo_svc.store.database_url import connection_url
from sectigo_svc.store.postgres import PostgresStore
from sectigo_svc.store.sqlite import SqliteStore
from sectigo_svc.store.token_share import PostgresTokenShare

CATALOG_TTL = 60.0
READINESS_RETRY_MAX = 30.0
STORE_CHECK_INTERVAL = 2.0  # seconds between store pings once ready
SECTIGO_CHECK_DEADLINE = 5.0  # a check slower than this counts as failed
SCRAPE_DEADLINE = 5.0  # a balance reading (off the scrape, see metrics.Reading) gives up then


class Application:
    """The running service: store, Sectigo client, tracker, and the gRPC server."""

    def __init__(self, config: ServiceConfig, credentials: Credentials) -> None:
        self.config = config
        self._log = structlog.get_logger("sectigo_svc")
        self.metrics = Metrics()
        key = load_or_create_key(config.data_key_path, create=config.data_key_file is None)
        sealer = Sealer(key)
        database_url = (
            connection_url(config.database_url, config.database_password_file)
            if config.database_url
            else ""
        )
        sectigo_config = SectigoConfig(
            endpoint=config.sectigo_endpoint,
            environment=Environment.parse(config.sectigo_environment),
            read_timeout=config.sectigo_timeout,
            pool_size=config.grpc_workers + config.tracker_workers,
            token_cache_dir=config.sectigo_token_cache_dir,
            login_backoff_initial=config.login_backoff_initial,
            login_backoff_max=config.login_backoff_max,
            down_after=config.sectigo_down_after,
            up_after=config.sectigo_up_after,
            check_interval=config.sectigo_check_interval,
            calls_probe=False,  # the checker below asks Sectigo while it is down
        )
        # Replicas on one database share one Sectigo login through it.
        self._token_share = (
            PostgresTokenShare(
                database_url,
                sealer,
                account_key(sectigo_config.base_url, credentials.username),
                lock_timeout=sectigo_config.file_lock_timeout,
            )
            if database_url
            else None
        )
        self.sectigo = SectigoClient.build(
            sectigo_config, credentials, observer=self.metrics, token_share=self._token_share
        )
        policy = Policy.load(config.policy_file) if config.policy_file else None
        # The TLS files are checked before anything is opened; a set that fails is a TlsError
        # naming the setting. While serving, they are re-read when they change on disk.
        self.tls: TlsWatcher | None = None
        if not config.insecure:
            assert config.tls_cert and config.tls_key and config.tls_client_ca
            self.tls = TlsWatcher(
                TlsFiles(config.tls_cert, config.tls_key, config.tls_client_ca),
                dt.timedelta(days=config.tls_expiry_warning_days),
            )
            self.metrics.track_tls_expiry(self.tls.seconds_left)
        # The store comes last of what can fail: it holds the state directory's lock.
        self.store = _open_store(config, database_url, sealer)
        self.catalog = Catalog(self.sectigo, CATALOG_TTL)
        self.metrics.track_requests(self._request_counts)
        self.metrics.track_balances(self._balances)
        self._metrics_endpoint: MetricsEndpoint | None = None
        self.notifier = Notifier()
        self._defaults = Subject(
            organization=config.subject_organization,
            locality=config.subject_locality,
            state=config.subject_state,
            country=config.subject_country,
        )
        self.clock = StoreClock(self.store, config.max_clock_skew, self.metrics.clock_offset)
        self.tracker = Tracker(
            self.store,
            self.sectigo,
            self.notifier,
            self._order_params,
            TrackerSettings(
                workers=config.tracker_workers,
                min_interval=config.poll_min_interval,
                max_interval=config.poll_max_interval,
                give_up_after=config.give_up_after,
                step_timeout=config.sectigo_timeout * 2,
                quarantine=config.quarantine,
                lease_seconds=config.lease_seconds,
                max_failed_orders=config.max_failed_orders,
            ),
            self.catalog.forget_authorities,
            self.clock,
            on_duplicate=self.metrics.duplicate_batches,
            on_adopt=self.metrics.batch_adopted,
            on_lease_renewal=self.metrics.lease_renewal,
        )
        self.service = CertificateService(
            self.store,
            self.sectigo,
            self.catalog,
            self.notifier,
            IssuanceSettings(
                default_authority_id=config.default_authority_id,
                batch_prefix=config.batch_prefix,
                subject_defaults=self._defaults,
                watch_reread=config.watch_reread_seconds,
            ),
            wake=self.tracker.wake,
            clock=self.clock.now,
            derive_secret=sealer.derive,
        )
        self._admission = Admission(config.limits, SECTIGO_METHODS)
        try:
            self.hosted = build_server(
                CertificateAuthorityServicer(self.service, AccountReads(self.store, self.sectigo)),
                CallInterceptor(
                    SERVICE_NAME,
                    ROLES,
                    policy,
                    config.insecure,
                    config.sectigo_timeout * 2,
                    self._admission,
                    observe=self.metrics.rpc,
                    versions=ApiVersions(self.metrics.client_api_version),
                ),
                config.listen,
                self.tls,
                config.grpc_workers,
                config.max_concurrent_rpcs,
                probe_listen=config.health_listen,
                keepalive=Keepalive(config.keepalive_time, config.keepalive_timeout),
            )
        except BaseException:
            # Nothing was started; release what was opened (the store's lock above all).
            self.sectigo.close()
            self._close_token_share()
            self.store.close()
            raise
        # Readiness is SERVING when the start-up checks passed, the store answers, and no stop
        # has begun; every change goes through _publish_readiness under this lock.
        self._health = threading.Lock()
        self._started = False
        self._store_ok = True
        self._draining = False
        self._sectigo_up: bool | None = None  # None: not reported yet
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._readiness = threading.Thread(
            target=self._follow_readiness, name="readiness", daemon=True
        )
        self._sectigo_checks = threading.Thread(
            target=self._check_sectigo, name="sectigo-health", daemon=True
        )

    def _order_params(
        self, request: CertificateRequest, password: str, deadline: Deadline
    ) -> dict[str, str]:
        parameters = self.catalog.parameters(request.spec.profile_id, deadline)
        return order_params(request.spec, password, parameters, self._defaults)

    def _request_counts(self) -> dict[str, int]:
        return {state.value: 0 for state in RequestState} | self.store.count_by_state()

    def _balances(self) -> dict[int, int]:
        deadline = Deadline.after(SCRAPE_DEADLINE)
        return {a.id: a.balance for a in self.catalog.authorities(deadline)}

    @property
    def port(self) -> int:
        return self.hosted.port

    @property
    def metrics_port(self) -> int:
        """The metrics endpoint's port, 0 when metrics are not served."""
        return self._metrics_endpoint.port if self._metrics_endpoint else 0

    @property
    def address(self) -> str:
        host = self.config.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    def start(self) -> None:
        if self.config.insecure:
            self._log.warning(
                "serving PLAIN TEXT without client authentication: development only",
                listen=self.address,
            )
        if self.tls is not None:
            self.tls.start()
        self.store.on_change(self.notifier.changed)
        resumed = self.tracker.start()
        if self.config.metrics_listen:
            self._metrics_endpoint = self.metrics.serve(self.config.metrics_listen)
        self.sectigo.availability.subscribe(self._sectigo_changed)
        self.hosted.start()
        self._readiness.start()
        self._sectigo_checks.start()
        self._log.info(
            "sectigo-svc started",
            listen=self.address,
            resumed=resumed,
            store=repr(self.store),
            lease_holder=self.store.holder,
        )

    def _follow_readiness(self) -> None:
        """Wait until the store answers and Sectigo accepts the credentials (a bad rollout never
        becomes ready), then follow the store alone: Sectigo's state is not this pod's."""
        wait = 0.5
        while not self._stopping.is_set():
            try:
                self.store.ping()
                self.catalog.authorities(Deadline.after(self.config.sectigo_timeout))
            except Exception as exc:  # any failure means "not ready yet"
                self._log.warning("not ready yet", cause=str(exc), retry_in=wait)
                self._stopping.wait(wait)
                wait = min(wait * 2, READINESS_RETRY_MAX)
                continue
            with self._health:
                self._started = True
                self._publish_readiness()
            self._ready.set()
            self._log.info("ready: serving")
            break
        while not self._stopping.wait(STORE_CHECK_INTERVAL):
            try:
                self.store.ping()
            except Exception as exc:  # any failure means the store cannot serve
                self._store_changed(False, str(exc))
            else:
                self._store_changed(True, "")

    def _store_changed(self, ok: bool, cause: str) -> None:
        with self._health:
            if ok == self._store_ok:
                return
            self._store_ok = ok
            self._publish_readiness()
        if ok:
            self._log.info("store reachable again: readiness follows")
        else:
            self._log.warning("store unreachable: readiness NOT_SERVING", cause=cause)

    def _publish_readiness(self) -> None:
        """Set readiness from the state; the caller holds ``self._health``."""
        self.hosted.set_serving(self._started and self._store_ok and not self._draining)

    def _check_sectigo(self) -> None:
        """Feed Sectigo's availability with a cheap call every ``sectigo_check_interval``,
        unless ordinary calls have shown within that interval that Sectigo works."""
        interval = self.config.sectigo_check_interval
        deadline = min(self.config.sectigo_timeout, SECTIGO_CHECK_DEADLINE)
        availability = self.sectigo.availability
        while True:
            if not availability.up or availability.quiet_for() >= interval:
                try:
                    self.sectigo.check(Deadline.after(deadline))
                except Exception as exc:  # the availability records the failure and reports it
                    self._log.debug("sectigo check failed", cause=str(exc))
            if self._sectigo_up is None:  # later changes arrive through the subscription
                availability = self.sectigo.availability
                self._sectigo_changed(availability.up, availability.cause, first=True)
            if self._stopping.wait(interval):
                return

    def _sectigo_changed(self, up: bool, cause: str, first: bool = False) -> None:
        """Report Sectigo's state (health ``sectigo``, metrics) when it changes; ``first``: the
        state after the first check, unless a change came first. The availability itself logs
        one line per change (``sectigo unavailable`` / ``sectigo available again``) with
        ``cause``."""
        with self._health:
            if up == self._sectigo_up or (first and self._sectigo_up is not None):
                return
            initial = self._sectigo_up is None
            self._sectigo_up = up
            self.hosted.set_sectigo(up)
            self.metrics.sectigo_state(up, changed=not initial)

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(
        self,
        grace: float | None = None,
        prestop: float = 0.0,
        cut_short: threading.Event | None = None,
    ) -> None:
        """Stop in order: readiness NOT_SERVING at once; for ``prestop`` seconds keep serving RPCs
        (load balancers see NOT_SERVING and move callers away; ``cut_short`` being set ends this
        early); then refuse new RPCs and drain in-flight ones for ``grace`` seconds (default:
        ``shutdown_grace``); then stop the tracker and close. Liveness stays SERVING until the
        drain. Stopping twice is harmless.
        """
        with self._health:
            if self._draining:
                return
            self._draining = True
            self._publish_readiness()
        if prestop > 0:
            self._log.info("stopping: readiness NOT_SERVING, still serving", prestop_s=prestop)
            (cut_short or threading.Event()).wait(prestop)
        self._stopping.set()
        self.hosted.stop(self.config.shutdown_grace if grace is None else grace)
        self._admission.close()
        for thread in (self._readiness, self._sectigo_checks):
            if thread.is_alive():
                thread.join()
        self.tracker.stop()
        if self.tls is not None:
            self.tls.stop()
        if self._metrics_endpoint is not None:
            self._metrics_endpoint.stop()
        self.sectigo.close()
        self._close_token_share()
        self.store.close()
        self._log.info("sectigo-svc stopped")

    def _close_token_share(self) -> None:
        if self._token_share is not None:
            self._token_share.close()


def _open_store(config: ServiceConfig, database_url: str, sealer: Sealer) -> RequestStore:
    """PostgreSQL at ``database_url`` (shared by replicas) if given, else the SQLite file."""
    holder = holder_name(config.replica_name)
    if database_url:
        return PostgresStore(
            database_url,
            sealer,
            pool_size=config.database_pool_size,
            holder=holder,
            lease_seconds=config.lease_seconds,
        )
    return SqliteStore(config.database_path, sealer, holder, config.lease_seconds)
