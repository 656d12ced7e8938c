"""Certificate requests as the domain sees them: plain, immutable values with no wire format."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum

# The RFC 5280 reasons the domain revokes with are exactly the ones Sectigo accepts.
from sectigo_svc.sectigo.reasons import RevocationReason

__all__ = [
    "TERMINAL_STATES",
    "AuditEntry",
    "CertificateRequest",
    "IssueSpec",
    "IssuedCertificate",
    "KeySource",
    "RequestState",
    "RevocationReason",
    "SendState",
    "Subject",
    "batch_name_for",
]


class RequestState(StrEnum):
    """Where a request is. Stored as text, so a new state needs no schema change.

    ON_HOLD: the issued certificate is revoked with reason certificateHold; RevokeCertificate with
    REMOVE_FROM_CRL returns it to READY, any other reason revokes it for good (REVOKED).
    """

    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    REVOKED = "REVOKED"
    ON_HOLD = "ON_HOLD"

    @property
    def terminal(self) -> bool:
        """Settled: the tracker has no Sectigo batch work left for it (the store neither lists it
        as active nor leases it) and a watch ends on it. Not the same as final: READY and
        ON_HOLD still change, but only by RevokeCertificate."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        RequestState.READY,
        RequestState.ON_HOLD,
        RequestState.REJECTED,
        RequestState.FAILED,
        RequestState.REVOKED,
    }
)


class SendState(StrEnum):
    """Where sending a request's order to Sectigo stands (see ``domain/submission.py``).

    NEVER: nothing has left for it. SENDING: the attempt is recorded and the order is being sent;
    found so at the start of a step, the sender died and the outcome is unknown. IN_DOUBT: the
    outcome of the last send is unknown. NOT_TAKEN: the answer proved the order was not taken.
    """

    NEVER = "NEVER"
    SENDING = "SENDING"
    IN_DOUBT = "IN_DOUBT"
    NOT_TAKEN = "NOT_TAKEN"


class KeySource(StrEnum):
    CSR = "CSR"
    SERVER = "SERVER"


@dataclass(frozen=True)
class Subject:
    organization: str = ""
    locality: str = ""
    state: str = ""
    country: str = ""


@dataclass(frozen=True)
class IssueSpec:
    """What a caller asked for, validated and normalised; the basis of idempotency.

    The PKCS#12 password is not part of the spec: it is a secret, kept sealed by the store, and
    compared separately when a retry names one.
    """

    key_source: KeySource
    common_name: str
    dns_names: tuple[str, ...]
    subject: Subject
    authority_id: int
    profile_id: int
    csr_pem: str = ""

    def fingerprint(self) -> str:
        """A stable digest of what the caller sent: equal for a faithful retry, else different.

        The profile is left out: it follows from the authority, and Sectigo may remap it.
        """
        body = asdict(self)
        body.pop("profile_id")
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CertificateRequest:
    """One row of the request store. ``version`` guards concurrent updates (compare-and-set)."""

    owner: str
    request_id: str
    spec: IssueSpec
    fingerprint: str
    batch_name: str
    state: RequestState
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int = 1
    batch_id: int | None = None
    sectigo_status: str = ""
    reason: str = ""
    submit_attempts: int = 0
    send_state: SendState = SendState.NEVER
    last_send_at: dt.datetime | None = None
    serial_number: str = ""
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    # Orders Sectigo answered with an error (5xx) while lookups showed no batch, and its message.
    order_failures: int = 0
    order_error: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.owner, self.request_id)


@dataclass(frozen=True)
class IssuedCertificate:
    """What a READY request holds. Key material is plaintext here; the store seals it at rest."""

    certificate_pem: str
    chain_pem: str
    pkcs12: bytes = b""
    private_key_pem: str = field(default="", repr=False)


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which request, kept for every issue, download and revoke."""

    at: dt.datetime
    identity: str
    action: str
    owner: str
    request_id: str
    detail: str = ""


def batch_name_for(prefix: str, owner: str, request_id: str) -> str:
    """The Sectigo batch name of a request: deterministic, so a lost reply can be reconciled."""
    digest = hashlib.sha256(f"{owner}\0{request_id}".encode()).hexdigest()[:24]
    return f"{prefix}-{digest}"
