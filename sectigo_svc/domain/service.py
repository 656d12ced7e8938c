"""CertificateService: the rules of issuing, reading, downloading and revoking certificates.

Promises: a request is validated and checked against the profile before it is recorded, and
recorded before anything is sent to Sectigo; the same (caller, request_id) always yields the same
request; callers act only on their own requests unless admin; every issue, download and revoke is
audited with the identity that did it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import re
import secrets
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sectigo_svc.domain import validation
from sectigo_svc.domain.catalog import Catalog
from sectigo_svc.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    quoted,
)
from sectigo_svc.domain.models import (
    AuditEntry,
    CertificateRequest,
    IssueSpec,
    KeySource,
    RequestState,
    Subject,
    batch_name_for,
)
from sectigo_svc.domain.notifier import Notifier
from sectigo_svc.domain.orders import order_params
from sectigo_svc.domain.reencode import openable_pkcs12
from sectigo_svc.domain.revocation import Revoker
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.reasons import RevocationReason
from sectigo_svc.store.base import ListQuery, RequestStore

_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.~"
_TOKEN = re.compile(rb"v1:([1-9][0-9]{0,18})")
_MAX_TOKEN_CHARS = 64
_MAX_CURSOR = 2**63 - 1  # SQLite's largest integer
# How profiles may spell the key families a CSR's key is checked against.
_ALGORITHM_FAMILIES = {"ECC": "EC", "ECDSA": "EC"}
ALL_OWNERS = "*"
# The states whose issued certificate DownloadCertificate hands out.
_DOWNLOADABLE = frozenset({RequestState.READY, RequestState.ON_HOLD, RequestState.REVOKED})


@dataclass(frozen=True)
class Caller:
    """Who is calling: the identity from its certificate, and whether policy makes it admin."""

    identity: str
    admin: bool = False


@dataclass(frozen=True)
class ServerKeyInput:
    common_name: str
    dns_names: tuple[str, ...] = ()
    subject: Subject = Subject()
    pkcs12_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class IssueInput:
    """An IssueCertificate call as received: exactly one of ``csr_pem`` and ``server_key``."""

    request_id: str
    csr_pem: str = ""
    server_key: ServerKeyInput | None = None
    authority_id: int = 0


@dataclass(frozen=True)
class IssuanceSettings:
    """How the service orders: the default authority, batch naming, subject defaults."""

    default_authority_id: int
    batch_prefix: str = "sectigo-svc"
    subject_defaults: Subject = Subject()
    password_length: int = 24
    watch_reread: float = 1.0


@dataclass(frozen=True)
class Issued:
    request: CertificateRequest
    created: bool
    pkcs12_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Download:
    """``pkcs12``: re-encoded so that current OpenSSL opens it (:mod:`.reencode`);
    ``sectigo_pkcs12``: Sectigo's own file, only when asked for."""

    request: CertificateRequest
    certificate_pem: str
    chain_pem: str
    pkcs12: bytes = field(default=b"", repr=False)
    pkcs12_password: str = field(default="", repr=False)
    private_key_pem: str = field(default="", repr=False)
    sectigo_pkcs12: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class ListPage:
    requests: list[CertificateRequest]
    next_page_token: str


class CertificateService:
    def __init__(
        self,
        store: RequestStore,
        sectigo: SectigoClient,
        catalog: Catalog,
        notifier: Notifier,
        settings: IssuanceSettings,
        wake: Callable[[tuple[str, str]], None],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        derive_secret: Callable[[str], bytes] | None = None,
    ) -> None:
        """``derive_secret(context)``: a keyed, repeatable secret (the data key's); generated
        PKCS#12 passwords come from it, so a request sent again after its store was lost (a
        restore from an older backup) gets the password of the batch Sectigo already made."""
        self._store = store
        self._derive_secret = derive_secret
        self._sectigo = sectigo
        self._catalog = catalog
        self._notifier = notifier
        self._settings = settings
        self._wake = wake
        self._clock = clock
        self._revoker = Revoker(store, sectigo, notifier, clock)

    # Issuing ------------------------------------------------------------------------------------

    def issue(self, caller: Caller, request: IssueInput, deadline: Deadline | None) -> Issued:
        request_id = validation.request_id(request.request_id)
        spec, given, key_algorithm = self._spec(request)
        existing = self._store.get(caller.identity, request_id)
        if existing is not None:
            return self._replay(existing, spec, given)
        authority = self._catalog.authority(spec.authority_id, deadline)
        spec = dataclasses.replace(spec, profile_id=authority.profile_id)
        if key_algorithm:
            self._check_key_algorithm(key_algorithm, authority.profile_id, deadline)
        password = given
        if spec.key_source is KeySource.SERVER:
            password = given or self._new_password(caller.identity, request_id)
            parameters = self._catalog.parameters(authority.profile_id, deadline)
            order_params(spec, password, parameters, self._settings.subject_defaults)
        now = self._clock()
        record = CertificateRequest(
            owner=caller.identity,
            request_id=request_id,
            spec=spec,
            fingerprint=spec.fingerprint(),
            batch_name=batch_name_for(self._settings.batch_prefix, caller.identity, request_id),
            state=RequestState.PENDING,
            created_at=now,
            updated_at=now,
            reason="recorded; waiting to be sent to Sectigo",
        )
        audit = self._entry(caller, "issue", record, f"{spec.key_source.value} {spec.common_name}")
        stored, created = self._store.create(record, password or None, audit)
        if not created:
            # A concurrent identical call won: compare with what this caller gave, not with
            # the password generated for it.
            return self._replay(stored, spec, given)
        self._notifier.changed(stored.key)
        self._wake(stored.key)
        return Issued(stored, True, password)

    def _spec(self, request: IssueInput) -> tuple[IssueSpec, str, str]:
        """The validated spec, the password the caller gave, and a CSR's key algorithm."""
        given_id = validation.identifier(
            request.authority_id, "authority_id", "the configured authority"
        )
        authority_id = given_id or self._settings.default_authority_id
        if bool(request.csr_pem) == (request.server_key is not None):
            raise InvalidArgument("key", "give exactly one of csr_pem and server_key")
        if request.csr_pem:
            parsed = validation.csr(request.csr_pem)
            spec = IssueSpec(
                key_source=KeySource.CSR,
                common_name=parsed.common_name,
                dns_names=parsed.dns_names,
                subject=parsed.subject,
                authority_id=authority_id,
                profile_id=0,
                csr_pem=parsed.pem,
            )
            return spec, "", parsed.key_algorithm
        key = request.server_key
        assert key is not None
        common_name = validation.common_name(key.common_name, "server_key.common_name")
        password = key.pkcs12_password
        if password:
            validation.pkcs12_password(password, "server_key.pkcs12_password")
        spec = IssueSpec(
            key_source=KeySource.SERVER,
            common_name=common_name,
            dns_names=validation.dns_names(common_name, key.dns_names, "server_key.dns_names"),
            subject=validation.subject(key.subject, "server_key.subject"),
            authority_id=authority_id,
            profile_id=0,
        )
        return spec, password, ""

    def _check_key_algorithm(
        self, algorithm: str, profile_id: int, deadline: Deadline | None
    ) -> None:
        """Refuse a CSR whose key family the profile does not list in its ``algorithms``."""
        profile = self._catalog.profile(profile_id, deadline)
        offered = {_ALGORITHM_FAMILIES.get(a.upper(), a.upper()) for a in profile.algorithms}
        if algorithm not in offered:
            raise InvalidArgument(
                "csr_pem.publicKey",
                f"is an {algorithm} key, but profile {profile_id} accepts only "
                f"{', '.join(sorted(offered)) or 'no key algorithm'}",
            )

    def _replay(self, stored: CertificateRequest, spec: IssueSpec, password: str) -> Issued:
        """A retry: the same body gets the stored request back, a different one is refused."""
        stored_password = self._store.pkcs12_password(*stored.key) or ""
        if stored.fingerprint != spec.fingerprint() or (password and password != stored_password):
            raise AlreadyExists(
                f"request_id {stored.request_id} is already used by a request with another body"
            )
        return Issued(stored, False, stored_password)

    def _new_password(self, owner: str, request_id: str) -> str:
        length = self._settings.password_length
        if self._derive_secret is None:
            return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))
        number = int.from_bytes(self._derive_secret(f"pkcs12-password\0{owner}\0{request_id}"))
        letters = []
        for _ in range(length):
            number, index = divmod(number, len(_PASSWORD_ALPHABET))
            letters.append(_PASSWORD_ALPHABET[index])
        return "".join(letters)

    # Reading -------------------------------------------------------------------------------------

    def _owner(self, caller: Caller, owner: str) -> str:
        validation.owner(owner)
        if not owner or owner == caller.identity:
            return caller.identity
        if not caller.admin:
            raise PermissionDenied("only admins may act on another identity's requests")
        return owner

    def get(self, caller: Caller, owner: str, request_id: str) -> CertificateRequest:
        owner = self._owner(caller, owner)
        found = self._store.get(owner, validation.request_id(request_id))
        if found is None:
            raise NotFound(f"no request {request_id} for {quoted(owner)}")
        return found

    def list(
        self,
        caller: Caller,
        owner: str,
        states: frozenset[RequestState],
        common_name: str,
        page_size: int,
        page_token: str,
        measure: Callable[[CertificateRequest], int] | None = None,
        budget: int = 0,
    ) -> ListPage:
        """A page of requests, newest first: at most ``page_size`` of them and, with ``measure``
        (what one request adds to the reply), at most ``budget`` by that measure, but never
        fewer than one. A page cut short by the budget has a ``next_page_token`` like one cut by
        ``page_size``."""
        if owner == ALL_OWNERS:
            if not caller.admin:
                raise PermissionDenied("only admins may list every identity's requests")
            scope: str | None = None
        else:
            scope = self._owner(caller, owner)
        if not 0 <= page_size <= 500:
            raise InvalidArgument("page_size", "must be between 1 and 500 (0 means 50)")
        name = validation.dns_name(common_name, "common_name") if common_name else ""
        page = self._store.list_requests(
            ListQuery(
                owner=scope,
                states=states,
                common_name=name,
                limit=page_size or 50,
                after=_decode_token(page_token),
            )
        )
        shown, cursor = list(page.requests), page.next_cursor
        if measure is not None:
            fit = _fitting(shown, measure, budget)
            if fit < len(shown):  # over the budget: the page ends at the last request that fits
                shown, cursor = shown[:fit], page.cursors[fit - 1]
        token = _encode_token(cursor) if cursor is not None else ""
        return ListPage(shown, token)

    def watch(
        self,
        caller: Caller,
        owner: str,
        request_id: str,
        active: Callable[[], bool],
    ) -> Iterator[CertificateRequest]:
        """The current record, then every later version in order, until a terminal state.

        Versions come from the store's history, so none is skipped however fast they change.
        The notifier wakes the watch on every change this replica makes or the store reports
        from others; the history is also re-read every ``watch_reread`` seconds, so a lost
        notification delays a version by at most that.
        """
        poll_interval = self._settings.watch_reread
        current = self.get(caller, owner, request_id)
        yield current
        seen = current.version
        terminal = current.state.terminal
        while not terminal and active():
            generation = self._notifier.generation(current.key)
            newer = self._store.history(*current.key, seen)
            for version in newer:
                yield version
                seen = version.version
                terminal = version.state.terminal
                if terminal:
                    break
            if not newer:
                self._notifier.wait(current.key, generation, poll_interval)

    def download(
        self,
        caller: Caller,
        owner: str,
        request_id: str,
        include_private_key: bool,
        *,
        include_sectigo_pkcs12: bool = False,
    ) -> Download:
        """The stored certificate; for the owner of a server-key request also its PKCS#12
        (re-encoded with AES under the same password) and, if asked, Sectigo's own file."""
        request = self.get(caller, owner, request_id)
        # An ON_HOLD or REVOKED certificate is still the one issued (e.g. to see what is on the
        # CRL); the reply's state says it is not valid now.
        if request.state not in _DOWNLOADABLE:
            raise FailedPrecondition(
                f"request {request_id} is {request.state.value}, not READY; watch it first"
            )
        certificate = self._store.certificate(*request.key)
        if certificate is None:
            raise FailedPrecondition(f"request {request_id} has no stored certificate")
        is_owner = caller.identity == request.owner
        if include_private_key:
            if not is_owner:
                raise PermissionDenied("only the request's owner may download its private key")
            if request.spec.key_source is KeySource.CSR:
                raise FailedPrecondition("a CSR request's private key never left the caller")
        self._audit(caller, "download", request, f"private_key={include_private_key}")
        with_secrets = is_owner and request.spec.key_source is KeySource.SERVER
        password = (self._store.pkcs12_password(*request.key) or "") if with_secrets else ""
        return Download(
            request=request,
            certificate_pem=certificate.certificate_pem,
            chain_pem=certificate.chain_pem,
            pkcs12=openable_pkcs12(certificate.pkcs12, password) if with_secrets else b"",
            pkcs12_password=password,
            private_key_pem=certificate.private_key_pem if include_private_key else "",
            sectigo_pkcs12=certificate.pkcs12 if with_secrets and include_sectigo_pkcs12 else b"",
        )

    # Sectigo-wide reads and revocation -----------------------------------------------------------

    def revoke(
        self,
        caller: Caller,
        *,
        request_id: str,
        serial_number: str,
        owner: str,
        profile_id: int,
        reason: RevocationReason,
        deadline: Deadline | None,
    ) -> tuple[str, CertificateRequest | None]:
        """Revoke at Sectigo, then mark the request REVOKED; safe to retry. CERTIFICATE_HOLD
        and REMOVE_FROM_CRL hold and release instead (ON_HOLD, READY again): see
        :mod:`.revocation`. A release by serial of a certificate no request of ours issued is
        sent only when Sectigo's find lists it as on hold."""
        if bool(request_id) == bool(serial_number):
            raise InvalidArgument("target", "give exactly one of request_id and serial_number")
        validation.identifier(profile_id, "profile_id", "the configured profile")
        validation.owner(owner)
        if request_id:
            request: CertificateRequest | None = self.get(caller, owner, request_id)
        else:
            serial = validation.serial_number(serial_number)
            request = self._store.by_serial(serial)
            if request is None and not caller.admin:
                raise PermissionDenied(
                    "only admins may revoke certificates this service did not issue"
                )
            if request is not None and request.owner != caller.identity and not caller.admin:
                raise PermissionDenied("the certificate belongs to another identity")
            if request is None:
                profile = self._revocation_profile(profile_id, deadline)
                if reason is RevocationReason.REMOVE_FROM_CRL:
                    self._revoker.check_release(serial, deadline)
                self._revoker.revoke_serial(profile, serial, reason, deadline)
                self._audit(caller, "revoke", None, f"serial={serial} reason={reason.value}")
                return serial, None
        assert request is not None
        revoked = self._revoker.revoke_request(request, reason, deadline)
        self._audit(
            caller, "revoke", revoked, f"serial={revoked.serial_number} reason={reason.value}"
        )
        return revoked.serial_number, revoked

    def _revocation_profile(self, profile_id: int, deadline: Deadline | None) -> int:
        """The profile named, which must be one of the account's authorities' (0: the default)."""
        if not profile_id:
            return self._catalog.authority(self._settings.default_authority_id, deadline).profile_id
        if all(a.profile_id != profile_id for a in self._catalog.authorities(deadline)):
            raise InvalidArgument(
                "profile_id", f"profile {profile_id} is not a profile of the account's authorities"
            )
        return profile_id

    def _audit(
        self, caller: Caller, action: str, request: CertificateRequest | None, detail: str
    ) -> None:
        """Record who did what; ``request`` None for a certificate no request of ours issued."""
        self._store.record_audit(self._entry(caller, action, request, detail))

    def _entry(
        self, caller: Caller, action: str, request: CertificateRequest | None, detail: str
    ) -> AuditEntry:
        owner, request_id = request.key if request is not None else ("", "")
        return AuditEntry(self._clock(), caller.identity, action, owner, request_id, detail)


def _fitting(
    requests: Sequence[CertificateRequest],
    measure: Callable[[CertificateRequest], int],
    budget: int,
) -> int:
    """How many of ``requests``, from the first, fit in ``budget``; at least one."""
    total = 0
    for count, request in enumerate(requests):
        total += measure(request)
        if total > budget:
            return max(count, 1)
    return len(requests)


def _encode_token(cursor: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{cursor}".encode()).decode()


def _decode_token(token: str) -> int | None:
    """The cursor of a token :func:`_encode_token` made, or InvalidArgument: exactly that
    encoding (strict base64, ASCII digits, no sign or spaces), a cursor from 1 to 2^63 - 1."""
    if not token:
        return None
    cursor = None
    if len(token) <= _MAX_TOKEN_CHARS:
        try:
            text = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        except (ValueError, binascii.Error):
            text = b""
        found = _TOKEN.fullmatch(text)
        if found is not None and _encode_token(int(found[1])) == token:
            cursor = int(found[1])
    if cursor is None or not 1 <= cursor <= _MAX_CURSOR:
        raise InvalidArgument("page_token", "is not a token this service returned")
    return cursor
