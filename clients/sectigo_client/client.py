"""CertificateAuthorityClient: one method per thing a caller does with the service.

The facade speaks in dataclasses (:mod:`sectigo_client.models`) and typed errors
(:mod:`sectigo_client.errors`); the :class:`~sectigo_client.transport.Transport` underneath owns
the channel, the deadlines and the decoding of gRPC failures.

    with CertificateAuthorityClient.from_env() as ca:
        issued = ca.issue_with_new_key("api.example.com", ["www.example.com"])
        ca.wait(issued.request_id, timeout=300)
        ca.download_to(issued.request_id, "tls", private_key=issued.private_key_pem)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_client import convert, files
from sectigo_client.channel import ConnectionSettings
from sectigo_client.keys import KeyType, NewKey, PrivateKey, new_key, private_key_pem
from sectigo_client.models import (
    Authority,
    Certificate,
    CertificateRecord,
    FoundCertificate,
    Licenses,
    Profile,
    ProfileSummary,
    RequestState,
    Revocation,
    RevocationReason,
    SavedFiles,
    Subject,
)
from sectigo_client.transport import DEFAULT_TIMEOUT, Transport
from sectigo_client.waiting import Waiter

ALL_OWNERS = "*"  # list(owner=ALL_OWNERS): every identity's requests (admins only)
DEFAULT_WAIT = 600.0
DEFAULT_POLL_INTERVAL = 1.0


def new_request_id() -> str:
    """A fresh idempotency key (a random UUID)."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class IssuedKey:
    """What :meth:`CertificateAuthorityClient.issue_with_new_key` made and recorded."""

    record: CertificateRecord
    key: NewKey

    @property
    def request_id(self) -> str:
        return self.record.request_id

    @property
    def private_key(self) -> PrivateKey:
        return self.key.private_key

    @property
    def private_key_pem(self) -> str:
        return self.key.private_key_pem


class CertificateAuthorityClient:
    """A client of the CertificateAuthority service. Thread-safe; close it (or use ``with``).

    ``timeout`` arguments are per-call deadlines in seconds; None means the transport's default.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._transport = transport
        self._stub = transport.stub
        self._poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def connect(
        cls, settings: ConnectionSettings, *, timeout: float = DEFAULT_TIMEOUT
    ) -> CertificateAuthorityClient:
        """A client over a new mutual-TLS channel; ``timeout`` is the default per-call deadline."""
        return cls(Transport(settings.channel(), timeout))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> CertificateAuthorityClient:
        """A client configured by the ``SECTIGO_CA_*`` variables (see :mod:`.channel`)."""
        return cls.connect(ConnectionSettings.from_env(environ), timeout=timeout)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> CertificateAuthorityClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Issuing -------------------------------------------------------------------------------------

    def issue(
        self,
        *,
        csr: str | bytes | None = None,
        common_name: str | None = None,
        dns_names: Sequence[str] = (),
        subject: Subject | None = None,
        pkcs12_password: str | None = None,
        request_id: str | None = None,
        authority_id: int = 0,
        timeout: float | None = None,
    ) -> CertificateRecord:
        """Record a certificate request; the service issues it in the background.

        Give ``csr`` (PEM; it carries the names and subject), or ``common_name`` (with
        ``dns_names``, ``subject`` and optionally ``pkcs12_password``) for a key made by Sectigo.
        ``request_id`` defaults to a new random one; it is in the returned record. Calling again
        with the same id and body returns the same request, so retrying is always safe.
        """
        request_id = request_id or new_request_id()
        if csr is not None and common_name is None:
            if dns_names or subject or pkcs12_password:
                raise ValueError("a CSR carries its own names and subject; give only the CSR")
            text = csr.decode() if isinstance(csr, bytes) else csr
            message = pb.IssueCertificateRequest(
                request_id=request_id, csr_pem=text, authority_id=authority_id
            )
        elif common_name is not None and csr is None:
            spec = pb.ServerKeySpec(
                common_name=common_name,
                dns_names=list(dns_names),
                subject=convert.subject_message(subject or Subject()),
                pkcs12_password=pkcs12_password or "",
            )
            message = pb.IssueCertificateRequest(
                request_id=request_id, server_key=spec, authority_id=authority_id
            )
        else:
            raise ValueError("give exactly one of csr and common_name")
        reply = self._transport.unary(
            self._stub.IssueCertificate, "IssueCertificate", message, timeout
        )
        return convert.record(reply)

    def issue_with_new_key(
        self,
        common_name: str,
        dns_names: Sequence[str] = (),
        *,
        subject: Subject | None = None,
        key_type: KeyType = KeyType.EC,
        request_id: str | None = None,
        authority_id: int = 0,
        timeout: float | None = None,
    ) -> IssuedKey:
        """Make a key and CSR here (the key never leaves this process), then issue with the CSR.

        To be able to retry after an unclear failure with the very same body, make the key with
        :func:`sectigo_client.keys.new_key` and call :meth:`issue` with its CSR and a request id.
        """
        made = new_key(common_name, dns_names, subject, key_type)
        record = self.issue(
            csr=made.csr_pem, request_id=request_id, authority_id=authority_id, timeout=timeout
        )
        return IssuedKey(record, made)

    # Following -----------------------------------------------------------------------------------

    def get(
        self, request_id: str, *, owner: str = "", timeout: float | None = None
    ) -> CertificateRecord:
        """The current record of a request (``owner``: another identity's, admins only)."""
        message = pb.GetCertificateRequestRequest(request_id=request_id, owner=owner)
        reply = self._transport.unary(
            self._stub.GetCertificateRequest, "GetCertificateRequest", message, timeout
        )
        return convert.record(reply)

    def list(
        self,
        *,
        states: Iterable[RequestState] = (),
        common_name: str = "",
        owner: str = "",
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[CertificateRecord]:
        """Every one of the caller's requests (or ``owner``'s; :data:`ALL_OWNERS` for all),
        newest first.

        Pages are fetched as the iteration goes, following ``next_page_token`` to the end, each
        call with its own deadline; errors are raised by the iteration, not by this call.
        ``page_size`` (1 to 500, 0 for the service's default of 50) is an upper bound: the
        service also cuts a page at 1 MiB, so that it always fits gRPC's message limit.
        """
        numbers = [convert.state_number(state) for state in states]
        token = ""
        while True:
            message = pb.ListCertificateRequestsRequest(
                page_size=page_size,
                page_token=token,
                states=numbers,
                common_name=common_name,
                owner=owner,
            )
            page = self._transport.unary(
                self._stub.ListCertificateRequests, "ListCertificateRequests", message, timeout
            )
            yield from (convert.record(r) for r in page.requests)
            token = page.next_page_token
            if not token:
                return

    def watch(
        self, request_id: str, *, owner: str = "", timeout: float | None = None
    ) -> Generator[CertificateRecord, None, None]:
        """The record now, then each change, until a terminal state. ``timeout`` bounds the whole
        stream (None: no deadline). The stream breaks if the service restarts; :meth:`follow`
        and :meth:`wait` recover from that."""
        message = pb.WatchCertificateRequestRequest(request_id=request_id, owner=owner)
        stream = self._transport.stream(
            self._stub.WatchCertificateRequest, "WatchCertificateRequest", message, timeout
        )
        yield from (convert.record(m) for m in stream)

    def wait(
        self,
        request_id: str,
        timeout: float = DEFAULT_WAIT,
        *,
        owner: str = "",
        on_change: Callable[[CertificateRecord], None] | None = None,
    ) -> CertificateRecord:
        """Block until the request is terminal and return that record (READY, REJECTED, FAILED,
        REVOKED or ON_HOLD: check ``state``). Raises
        :class:`~sectigo_client.errors.WaitTimeout` after ``timeout`` seconds.

        Follows the Watch stream; if it breaks (the service restarts, a proxy drops it), falls
        back to polling Get every ``poll_interval`` seconds, riding out the service's downtime.
        ``on_change`` is called with every new version seen.
        """
        return self._waiter(request_id, owner).wait(request_id, timeout, on_change)

    def follow(
        self, request_id: str, timeout: float = DEFAULT_WAIT, *, owner: str = ""
    ) -> Iterator[CertificateRecord]:
        """Every new version of the request as it is seen, the last one terminal: :meth:`watch`
        that rides out a broken stream or a restart of the service as :meth:`wait` does. Raises
        :class:`~sectigo_client.errors.WaitTimeout` after ``timeout`` seconds."""
        return self._waiter(request_id, owner).follow(request_id, timeout)

    def _waiter(self, request_id: str, owner: str) -> Waiter:
        return Waiter(
            watch=lambda deadline: self.watch(request_id, owner=owner, timeout=deadline),
            get=lambda deadline: self.get(request_id, owner=owner, timeout=deadline),
            call_timeout=self._transport.timeout,
            poll_interval=self._poll_interval,
            clock=self._clock,
            sleep=self._sleep,
        )

    # Downloading ---------------------------------------------------------------------------------

    def download(
        self,
        request_id: str,
        *,
        include_private_key: bool = False,
        include_sectigo_pkcs12: bool = False,
        owner: str = "",
        timeout: float | None = None,
    ) -> Certificate:
        """The issued certificate of a READY (or ON_HOLD or REVOKED: see ``state``) request;
        FailedPrecondition before.
        ``include_private_key``: the key of a server-key request (its owner only).
        ``include_sectigo_pkcs12``: also Sectigo's own PKCS#12 bytes in ``sectigo_pkcs12`` (its
        owner only; OpenSSL 3 opens them only with ``-legacy``). ``pkcs12`` is always the
        service's re-encoding, which opens without it."""
        message = pb.DownloadCertificateRequest(
            request_id=request_id,
            owner=owner,
            include_private_key=include_private_key,
            include_sectigo_pkcs12=include_sectigo_pkcs12,
        )
        reply = self._transport.unary(
            self._stub.DownloadCertificate, "DownloadCertificate", message, timeout
        )
        return convert.certificate(reply)

    def download_to(
        self,
        request_id: str,
        directory: str | Path,
        *,
        private_key: str | PrivateKey | None = None,
        include_private_key: bool = False,
        include_sectigo_pkcs12: bool = False,
        owner: str = "",
        timeout: float | None = None,
    ) -> SavedFiles:
        """Download and write ``cert.pem``, ``chain.pem`` and, where there are, ``key.pem`` and
        ``bundle.p12`` (0600) into ``directory``, removing a ``key.pem`` or ``bundle.p12`` of
        another certificate left there (see :mod:`sectigo_client.files`).

        ``private_key`` is the caller's own key of a CSR request (written as ``key.pem`` after
        checking it matches the certificate); ``include_private_key`` fetches a server-made one;
        ``include_sectigo_pkcs12`` also writes Sectigo's own PKCS#12 as ``bundle.sectigo.p12``.
        """
        certificate = self.download(
            request_id,
            include_private_key=include_private_key,
            include_sectigo_pkcs12=include_sectigo_pkcs12,
            owner=owner,
            timeout=timeout,
        )
        if private_key is None or isinstance(private_key, str):
            key_pem = private_key or ""
        else:
            key_pem = private_key_pem(private_key)
        return files.save(Path(directory), certificate, key_pem)

    # Sectigo-wide --------------------------------------------------------------------------------

    def find(
        self,
        *,
        common_name: str | None = None,
        serial_number: str | None = None,
        timeout: float | None = None,
        page_size: int = 0,
    ) -> tuple[FoundCertificate, ...]:
        """Sectigo's certificates with this exact common name, or this serial number (hex), in
        ascending serial number order: every page of them, following ``next_page_token``
        (``timeout`` is per page). ``page_size``: at most this many per call (0: as many as fit
        in the service's 1 MiB page)."""
        if (common_name is None) == (serial_number is None):
            raise ValueError("give exactly one of common_name and serial_number")
        found: list[FoundCertificate] = []
        token = ""
        while True:
            message = pb.FindCertificatesRequest(page_size=page_size, page_token=token)
            if common_name is not None:
                message.common_name = common_name
            else:
                message.serial_number = serial_number or ""
            reply = self._transport.unary(
                self._stub.FindCertificates, "FindCertificates", message, timeout
            )
            found.extend(convert.found(reply.certificates))
            token = reply.next_page_token
            if not token:
                return tuple(found)

    def revoke(
        self,
        request_id: str | None = None,
        *,
        serial_number: str | None = None,
        reason: RevocationReason | int | str = RevocationReason.UNSPECIFIED,
        owner: str = "",
        profile_id: int = 0,
        timeout: float | None = None,
    ) -> Revocation:
        """Revoke the certificate of a request, or by serial number (then ``profile_id``, 0 for
        the configured one). ``reason``: a member, an RFC 5280 code, or a name like
        ``keyCompromise``. Safe to repeat: revoking twice returns the same outcome.

        ``CERTIFICATE_HOLD`` puts a READY certificate on hold (state ON_HOLD) and
        ``REMOVE_FROM_CRL`` releases one on hold (READY again); the latter raises
        FailedPrecondition for any certificate not on hold, so repeating a release that took
        effect fails (the request is READY by then)."""
        parsed = RevocationReason.parse(reason)
        code = convert.reason_number(parsed)
        if request_id is not None and serial_number is None:
            message = pb.RevokeCertificateRequest(request_id=request_id, owner=owner, reason=code)
        elif serial_number is not None and request_id is None:
            message = pb.RevokeCertificateRequest(
                serial_number=serial_number, profile_id=profile_id, reason=code
            )
        else:
            raise ValueError("give exactly one of request_id and serial_number")
        reply = self._transport.unary(
            self._stub.RevokeCertificate, "RevokeCertificate", message, timeout
        )
        record = convert.record(reply.request) if reply.HasField("request") else None
        return Revocation(reply.serial_number, record, parsed)

    def authorities(self, *, timeout: float | None = None) -> tuple[Authority, ...]:
        """The Sectigo authorities the account may issue through, with licence balances."""
        reply = self._transport.unary(
            self._stub.ListAuthorities, "ListAuthorities", pb.ListAuthoritiesRequest(), timeout
        )
        return convert.authorities(reply.authorities)

    def licenses(self, *, timeout: float | None = None) -> Licenses:
        """Licences ordered and issued across the account."""
        reply = self._transport.unary(
            self._stub.GetLicenses, "GetLicenses", pb.GetLicensesRequest(), timeout
        )
        return convert.licenses(reply)

    def profiles(self, *, timeout: float | None = None) -> tuple[ProfileSummary, ...]:
        """The account's certificate profiles."""
        reply = self._transport.unary(
            self._stub.ListProfiles, "ListProfiles", pb.ListProfilesRequest(), timeout
        )
        return convert.profiles(reply.profiles)

    def profile(self, profile_id: int, *, timeout: float | None = None) -> Profile:
        """One profile with the parameters orders under it need."""
        message = pb.GetProfileRequest(profile_id=profile_id)
        reply = self._transport.unary(self._stub.GetProfile, "GetProfile", message, timeout)
        return convert.profile(reply)
