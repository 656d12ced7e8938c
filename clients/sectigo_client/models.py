"""What the client hands back: frozen dataclasses and enums, never raw protobuf messages.

Fields holding secrets (PKCS#12 passwords, private keys) are declared ``repr=False``: they never
show in a repr or a log line, and the ``sectigo-ca`` command never prints them.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field
from pathlib import Path


class RequestState(enum.Enum):
    """Where a certificate request is in its life (the API's ``RequestState`` without prefix)."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    REVOKED = "REVOKED"
    # The certificate is on hold (revoked with CERTIFICATE_HOLD, until removed from the CRL).
    ON_HOLD = "ON_HOLD"

    @property
    def terminal(self) -> bool:
        """READY, ON_HOLD, REJECTED, FAILED and REVOKED: the service has nothing left to do, and a
        watch or wait ends there. Only a revocation moves READY and ON_HOLD on (hold, release,
        REVOKED); REVOKED, REJECTED and FAILED never change again."""
        return self in (
            RequestState.READY,
            RequestState.ON_HOLD,
            RequestState.REJECTED,
            RequestState.FAILED,
            RequestState.REVOKED,
        )


class KeySource(enum.Enum):
    """How the key pair of a request was made."""

    UNSPECIFIED = "UNSPECIFIED"
    CSR = "CSR"
    SERVER = "SERVER"


class RevocationReason(enum.IntEnum):
    """RFC 5280 CRLReason; the values are the RFC's codes (7 is unused and not offered)."""

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    CA_COMPROMISE = 2
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4
    CESSATION_OF_OPERATION = 5
    CERTIFICATE_HOLD = 6
    REMOVE_FROM_CRL = 8
    PRIVILEGE_WITHDRAWN = 9
    AA_COMPROMISE = 10

    @classmethod
    def parse(cls, value: RevocationReason | int | str) -> RevocationReason:
        """A reason from a member, its code, or a name as RFC 5280 spells it (``keyCompromise``)
        or as the API does (``KEY_COMPROMISE``, ``key-compromise``); case, whitespace, ``_`` and
        ``-`` are ignored in names. Raises ValueError, listing the accepted names, for anything
        else, including code 7 and anything merely containing digits (``-1``, ``1.0``): a
        revocation is final, so a typo must not become a valid reason."""
        if isinstance(value, int):
            return cls(value)
        text = value.strip()
        if re.fullmatch(r"\d+", text, re.ASCII):
            found = next((reason for reason in cls if reason.value == int(text)), None)
        else:
            key = re.sub(r"[\s_-]", "", text.lower())
            found = next((r for r in cls if key == r.name.replace("_", "").lower()), None)
        if found is None:
            raise ValueError(
                f"unknown revocation reason {value[:40]!r}; "
                f"expected one of: {', '.join(cls.names())}"
            )
        return found

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The RFC 5280 names, e.g. ``keyCompromise``, in code order."""
        return tuple(reason.rfc_name for reason in cls)

    @property
    def rfc_name(self) -> str:
        """The name as RFC 5280 writes it, e.g. ``keyCompromise`` or ``aACompromise``."""
        first, *rest = self.name.lower().split("_")
        if len(first) == 2 and rest:  # CA_COMPROMISE -> cACompromise, AA_ -> aACompromise
            first = first[0] + first[1].upper()
        return first + "".join(part.upper() if part == "crl" else part.title() for part in rest)


@dataclass(frozen=True)
class Subject:
    """Subject fields beyond the common name; empty ones get the service's defaults if needed."""

    organization: str = ""
    locality: str = ""
    state: str = ""
    country: str = ""


@dataclass(frozen=True)
class CertificateRecord:
    """The service's record of one certificate request (``CertificateRequest`` in the API)."""

    request_id: str
    owner: str
    state: RequestState
    key_source: KeySource
    common_name: str
    dns_names: tuple[str, ...]
    authority_id: int
    profile_id: int
    batch_id: int
    batch_name: str
    sectigo_status: str
    reason: str
    serial_number: str
    create_time: dt.datetime | None
    update_time: dt.datetime | None
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    # Set only on the reply to issue (server-key requests): keep it, or download it again later.
    pkcs12_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Certificate:
    """An issued certificate as downloaded: the leaf, its chain, and for server-key requests the
    PKCS#12 file and its password (owner only) and the private key (only when asked for).

    ``pkcs12`` is re-encoded by the service (PBES2/AES-256, SHA-256 MAC: OpenSSL 3 opens it
    without ``-legacy``); ``sectigo_pkcs12`` is Sectigo's own file byte for byte, same password
    (RC2-40/3DES, SHA-1 MAC: needs ``-legacy``), empty unless asked for."""

    certificate_pem: str
    chain_pem: str
    serial_number: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    sha256_fingerprint: str
    sha1_fingerprint: str
    pkcs12: bytes = field(default=b"", repr=False)
    pkcs12_password: str = field(default="", repr=False)
    private_key_pem: str = field(default="", repr=False)
    sectigo_pkcs12: bytes = field(default=b"", repr=False)
    # The request's state: READY, or ON_HOLD or REVOKED for a certificate that is not valid now
    # (UNSPECIFIED from a service older than API 1.1).
    state: RequestState = RequestState.UNSPECIFIED


@dataclass(frozen=True)
class SavedFiles:
    """The files :meth:`CertificateAuthorityClient.download_to` wrote; None for those it did not.

    ``key``, ``pkcs12``, ``sectigo_pkcs12`` and ``pkcs12_password`` (the password of both
    PKCS#12 files, in a file of its own) are 0600.
    """

    directory: Path
    certificate: Path
    chain: Path
    key: Path | None = None
    pkcs12: Path | None = None
    pkcs12_password: Path | None = None
    sectigo_pkcs12: Path | None = None
    serial_number: str = ""
    state: RequestState = RequestState.UNSPECIFIED


@dataclass(frozen=True)
class FoundCertificate:
    """A certificate as Sectigo lists it."""

    device_id: str
    common_name: str
    serial_number: str
    status: str
    create_time: dt.datetime | None


@dataclass(frozen=True)
class Revocation:
    """What a revocation did: the serial number, the request when the service issued the
    certificate, and the reason sent (CERTIFICATE_HOLD held it, REMOVE_FROM_CRL released it)."""

    serial_number: str
    record: CertificateRecord | None
    reason: RevocationReason = RevocationReason.UNSPECIFIED


@dataclass(frozen=True)
class Authority:
    id: int
    ecosystem_id: int
    ecosystem_name: str
    profile_id: int
    profile_name: str
    balance: int
    enabled: bool


@dataclass(frozen=True)
class Licenses:
    ordered: int
    issued: int


@dataclass(frozen=True)
class ProfileSummary:
    profile_id: int
    algorithms: tuple[str, ...]
    ca: str


@dataclass(frozen=True)
class ProfileParameter:
    name: str
    title: str
    input_type: str
    required: bool
    validation_pattern: str
    message: str


@dataclass(frozen=True)
class Profile:
    profile_id: int
    name: str
    key_algorithm_info: str
    raw_profile_config: str
    parameters: tuple[ProfileParameter, ...]
