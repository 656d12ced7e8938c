"""The Sectigo IoT Manager API, one typed method per endpoint.

This is the protocol layer: it knows paths, payloads and models, and leaves sessions, timeouts,
retries, error decoding and tokens to the transport and the credential store. Every method takes
an optional :class:`~sectigo_svc.sectigo.deadline.Deadline` that bounds the whole call, retries
included. Create, upload and revoke raise :class:`~sectigo_svc.sectigo.errors.OutcomeUnknown` when
they may have taken effect without an answer; reconcile (``list_batches(batch_name=...)``,
``find``) before sending them again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from sectigo_svc.sectigo import endpoints
from sectigo_svc.sectigo.auth_api import AuthApi
from sectigo_svc.sectigo.availability import Availability
from sectigo_svc.sectigo.batch_status import BatchStatus, StatusText, parse_status_text
from sectigo_svc.sectigo.config import SectigoConfig
from sectigo_svc.sectigo.credential_store import CredentialStore, TokenStatus
from sectigo_svc.sectigo.credentials import Credentials
from sectigo_svc.sectigo.csr_upload import upload_body
from sectigo_svc.sectigo.deadline import Deadline, MonotonicClock
from sectigo_svc.sectigo.downloads import bytes_download, file_download
from sectigo_svc.sectigo.endpoints import Endpoint
from sectigo_svc.sectigo.errors import InvalidReason, InvalidRequest
from sectigo_svc.sectigo.models import (
    Authority,
    BatchResponse,
    FindResult,
    Licenses,
    Organization,
    ProcessingInfo,
    Profile,
    ProfileDetail,
    ProfileParameter,
    authorities_from_json,
    batch_list_from_json,
    profile_parameters_from_json,
    profiles_from_json,
)
from sectigo_svc.sectigo.observer import Observer
from sectigo_svc.sectigo.reasons import RevocationReason
from sectigo_svc.sectigo.replies import integer, json_reply, no_reply, text_reply
from sectigo_svc.sectigo.token_cache import TokenCache, TokenShare
from sectigo_svc.sectigo.tokens import Clock
from sectigo_svc.sectigo.transport import JSON_TYPE, Body, Handler, T, Transport

ZIP_ACCEPT = "application/octet-stream"
PKCS12_PASSWORD_PARAM = "pkcs12Password"  # noqa: S105 (a parameter name, not a password)


class SectigoClient:
    """Typed access to Sectigo for any number of threads; build it with :meth:`build`."""

    def __init__(self, transport: Transport, store: CredentialStore) -> None:
        self._transport = transport
        self._store = store
        self._limit = transport.config.max_download_bytes
        self._log = transport.logger

    @classmethod
    def build(
        cls,
        config: SectigoConfig,
        credentials: Credentials,
        *,
        store: CredentialStore | None = None,
        clock: Clock = time.time,
        monotonic: MonotonicClock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        logger: Any = None,
        observer: Observer | None = None,
        token_share: TokenShare | None = None,
    ) -> SectigoClient:
        """Wire a client: environment guard, transport, and (unless shared) a credential store.

        ``clock`` is the wall clock, ``monotonic`` and ``sleep`` go together (tests inject both).
        ``token_share``, for a new store, replaces the token cache file (whatever ``token_cache``).
        """
        transport = Transport(
            config, sleep=sleep, clock=monotonic, logger=logger, observer=observer
        )
        if store is None:
            cache = token_share
            if cache is None and config.token_cache:
                cache = TokenCache.for_account(config, credentials.username, transport.logger)
            store = CredentialStore(
                credentials,
                AuthApi(transport),
                refresh_margin=config.refresh_margin,
                login_backoff=(config.login_backoff_initial, config.login_backoff_max),
                cache=cache,
                clock=clock,
                monotonic=monotonic,
                logger=transport.logger,
                observer=transport.observer,
                availability=transport.availability,
            )
        return cls(transport, store)

    @property
    def credential_store(self) -> CredentialStore:
        return self._store

    @property
    def availability(self) -> Availability:
        """Whether Sectigo works, fed by every attempt: ``.up``, ``.cause``, ``.subscribe(cb)``."""
        return self._transport.availability

    def check(self, deadline: Deadline | None = None) -> None:
        """A cheap read (``GET /organizations/user``, which nothing else calls) that feeds
        :attr:`availability`; raises on failure.

        Sent once, without retries, even while Sectigo counts as down; the rate gate applies.
        """
        with self._transport.checking():
            self._call(endpoints.ORGANIZATION, json_reply(Organization.from_json), deadline)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> SectigoClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Authentication -------------------------------------------------------------------------

    def login(self, deadline: Deadline | None = None) -> TokenStatus:
        """Log in with the username and password now (``POST /auth/pwd``)."""
        return self._store.login(deadline)

    def refresh(self, deadline: Deadline | None = None) -> TokenStatus:
        """Refresh the tokens now (``POST /auth/refresh``), logging in if that fails."""
        return self._store.refresh(deadline)

    # Batches ----------------------------------------------------------------------------------

    def create_single_cert_batch(
        self,
        authority_id: int,
        batch_name: str,
        profile_params: Mapping[str, str],
        deadline: Deadline | None = None,
    ) -> BatchResponse:
        """Order one certificate with a server-generated key (``PUT createSingleCertBatch``).

        Spends a licence. ``batch_name`` should identify the request so that an
        ``OutcomeUnknown`` can be reconciled with :meth:`list_batches`.
        """
        if not batch_name.strip():
            raise InvalidRequest("batch_name: must not be empty")
        for key, value in profile_params.items():
            if not isinstance(value, str):
                raise InvalidRequest(f"profile_params[{key!r}]: values must be strings")
        payload = {
            "authorityId": _id("authority_id", authority_id),
            "batchName": batch_name,
            "profileParams": dict(profile_params),
        }
        secret = profile_params.get(PKCS12_PASSWORD_PARAM, "")
        return self._batch(
            endpoints.CREATE_BATCH, deadline, body=_json_body(payload), redact=(secret,)
        )

    def upload_csr_batch(
        self,
        profile_id: int,
        csrs: bytes | str,
        *,
        filename: str | None = None,
        profile_params: Mapping[str, str] | None = None,
        batch_name: str | None = None,
        deadline: Deadline | None = None,
    ) -> BatchResponse:
        """Order certificates for CSRs: PEM text (one or more CSRs) or a ZIP of CSR files.

        Spends a licence per CSR. ``batch_name`` (optional) names the batch so that an
        ``OutcomeUnknown`` can be reconciled with :meth:`list_batches`.
        """
        body = upload_body(
            profile_id,
            csrs,
            filename=filename,
            profile_params=profile_params,
            batch_name=batch_name,
        )
        return self._batch(endpoints.UPLOAD_BATCH, deadline, body=body)

    def batch_detail(self, batch_id: int, deadline: Deadline | None = None) -> BatchResponse:
        """``GET /batches/{id}``."""
        return self._batch(
            endpoints.BATCH_DETAIL, deadline, ids={"batch_id": _id("batch_id", batch_id)}
        )

    def list_batches(
        self,
        *,
        batch_name: str | None = None,
        status: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
        deadline: Deadline | None = None,
    ) -> tuple[BatchResponse, ...]:
        """``GET /batches``, filtered by exact batch name and/or status; pages with offset/limit."""
        params = {"batchName": batch_name, "status": status}
        params |= {"offset": _opt_id("offset", offset), "limit": _opt_id("limit", limit)}
        query = {k: v for k, v in params.items() if v is not None}
        batches = self._call(
            endpoints.LIST_BATCHES, json_reply(batch_list_from_json), deadline, params=query
        )
        for batch in batches:
            self._report_unknown(batch)
        return batches

    def batch_status(self, batch_id: int, deadline: Deadline | None = None) -> StatusText:
        """``GET /batches/{id}/status``: the text status, normalised (detail kept)."""
        raw = self._call(
            endpoints.BATCH_STATUS,
            text_reply,
            deadline,
            ids={"batch_id": _id("batch_id", batch_id)},
        )
        status = parse_status_text(raw)
        if status.status is BatchStatus.UNKNOWN:
            self._log.warning("sectigo batch status unknown", batch_id=batch_id, raw=raw[:100])
        return status

    def processing_info(self, batch_id: int, deadline: Deadline | None = None) -> ProcessingInfo:
        """``GET /batches/{id}/processing_info``: certificates active, issued and failed."""
        return self._call(
            endpoints.PROCESSING_INFO,
            json_reply(ProcessingInfo.from_json),
            deadline,
            ids={"batch_id": _id("batch_id", batch_id)},
        )

    def download(self, batch_id: int, directory: Path, deadline: Deadline | None = None) -> Path:
        """Save the batch ZIP into an existing ``directory``; returns the file written.

        The file is ``<name>.zip`` from Content-Disposition when that is a safe base name, else
        ``<batchId>.zip``; it appears only once complete.
        """
        if not directory.is_dir():
            raise InvalidRequest(f"download directory {directory} does not exist")
        handle = file_download(directory, f"{_id('batch_id', batch_id)}.zip", self._limit)
        return self._download(batch_id, handle, deadline)

    def download_bytes(self, batch_id: int, deadline: Deadline | None = None) -> bytes:
        """The batch ZIP in memory."""
        return self._download(batch_id, bytes_download(self._limit), deadline)

    # Accounting, authorities, profiles, organization ------------------------------------------

    def licenses(self, deadline: Deadline | None = None) -> Licenses:
        """``GET /devices``: licences ordered and issued."""
        return self._call(endpoints.DEVICES, json_reply(Licenses.from_json), deadline)

    def authorities(self, deadline: Deadline | None = None) -> tuple[Authority, ...]:
        """``GET /authorities/allowed``."""
        return self._call(endpoints.AUTHORITIES, json_reply(authorities_from_json), deadline)

    def balance_available(self, authority_id: int, deadline: Deadline | None = None) -> int:
        """``GET /authorities/{id}/balanceavailable``: licences left for this user."""
        return self._call(
            endpoints.BALANCE,
            json_reply(integer),
            deadline,
            ids={"authority_id": _id("authority_id", authority_id)},
        )

    def profiles(self, deadline: Deadline | None = None) -> tuple[Profile, ...]:
        """``GET /profiles``."""
        return self._call(endpoints.PROFILES, json_reply(profiles_from_json), deadline)

    def profile_detail(self, profile_id: int, deadline: Deadline | None = None) -> ProfileDetail:
        """``GET /profiles/{id}``."""
        return self._call(
            endpoints.PROFILE_DETAIL,
            json_reply(ProfileDetail.from_json),
            deadline,
            ids={"profile_id": _id("profile_id", profile_id)},
        )

    def profile_parameters(
        self, profile_id: int, deadline: Deadline | None = None
    ) -> tuple[ProfileParameter, ...]:
        """``GET /profiles/{id}/parameters``: the keys a profile takes and their rules."""
        return self._call(
            endpoints.PROFILE_PARAMETERS,
            json_reply(profile_parameters_from_json),
            deadline,
            ids={"profile_id": _id("profile_id", profile_id)},
        )

    def organization(self, deadline: Deadline | None = None) -> Organization:
        """``GET /organizations/user``."""
        return self._call(endpoints.ORGANIZATION, json_reply(Organization.from_json), deadline)

    # Certificates -----------------------------------------------------------------------------

    def find(
        self,
        *,
        common_name: str = "",
        serial_number: str = "",
        deadline: Deadline | None = None,
    ) -> FindResult:
        """``POST /certificates/find`` by exact common name and/or serial number."""
        if not common_name and not serial_number:
            raise InvalidRequest("find: give a common name or a serial number")
        query = {"commonName": common_name, "serialNumber": serial_number}
        payload = {k: v for k, v in query.items() if v}
        return self._call(
            endpoints.FIND, json_reply(FindResult.from_json), deadline, body=_json_body(payload)
        )

    def revoke(
        self,
        profile_id: int,
        serial_number: str,
        reason: RevocationReason = RevocationReason.UNSPECIFIED,
        deadline: Deadline | None = None,
    ) -> None:
        """``POST /certificates/{profileId}/revoke``; any 2xx means revoked."""
        if not serial_number.strip():
            raise InvalidRequest("serial_number: must not be empty")
        try:
            code = RevocationReason(reason)
        except ValueError:
            raise InvalidReason(
                f"revocation reason {reason!r} is not one Sectigo accepts"
            ) from None
        payload = {"reasonCode": int(code), "serialNumber": serial_number.strip()}
        self._call(
            endpoints.REVOKE,
            no_reply,
            deadline,
            ids={"profile_id": _id("profile_id", profile_id)},
            body=_json_body(payload),
        )

    # Plumbing ---------------------------------------------------------------------------------

    def _call(
        self,
        endpoint: Endpoint,
        handle: Handler[T],
        deadline: Deadline | None,
        **kwargs: Any,
    ) -> T:
        return self._transport.call(
            endpoint, handle, tokens=self._store, deadline=deadline, **kwargs
        )

    def _batch(self, endpoint: Endpoint, deadline: Deadline | None, **kwargs: Any) -> BatchResponse:
        batch = self._call(endpoint, json_reply(BatchResponse.from_json), deadline, **kwargs)
        self._report_unknown(batch)
        return batch

    def _download(self, batch_id: int, handle: Handler[T], deadline: Deadline | None) -> T:
        return self._call(
            endpoints.DOWNLOAD,
            handle,
            deadline,
            ids={"batch_id": _id("batch_id", batch_id)},
            accept=ZIP_ACCEPT,
            stream=True,
        )

    def _report_unknown(self, batch: BatchResponse) -> None:
        if batch.status is BatchStatus.UNKNOWN:
            self._log.warning(
                "sectigo batch status unknown", batch_id=batch.batch_id, raw=batch.status_raw[:100]
            )


def _json_body(payload: Mapping[str, Any]) -> Body:
    return Body(json.dumps(payload).encode("utf-8"), JSON_TYPE)


def _id(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{name}: must be a non-negative integer, got {value!r}")
    return value


def _opt_id(name: str, value: int | None) -> str | None:
    return None if value is None else str(_id(name, value))
