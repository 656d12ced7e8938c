"""Checks on what callers send, before anything is stored or a licence is at stake.

Every failure is an :class:`InvalidArgument` naming the field in the API's own terms
(``server_key.dns_names[1]``), so a caller can fix its request without reading our code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from sectigo_svc.domain.errors import InvalidArgument
from sectigo_svc.domain.models import Subject

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DNS_NAME = re.compile(rf"^(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}$")
PASSWORD = re.compile(r"^[\x20-\x7e]{8,128}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_DNS_NAMES = 100
MAX_CSR_BYTES = 64 * 1024


def request_id(value: str) -> str:
    if not REQUEST_ID.match(value):
        raise InvalidArgument(
            "request_id", "must be 1 to 128 characters of letters, digits and . _ : -"
        )
    return value


def dns_name(value: str, field: str) -> str:
    name = value.strip().lower().rstrip(".")
    if len(name) > 253 or not DNS_NAME.match(name):
        raise InvalidArgument(field, f"{value!r} is not a DNS name")
    return name


def dns_names(common_name: str, extra: Sequence[str], field: str) -> tuple[str, ...]:
    """The common name first, then every extra name once, in the order given."""
    if len(extra) > MAX_DNS_NAMES:
        raise InvalidArgument(field, f"at most {MAX_DNS_NAMES} names")
    names = [common_name] + [dns_name(n, f"{field}[{i}]") for i, n in enumerate(extra)]
    return tuple(dict.fromkeys(names))


def pkcs12_password(value: str, field: str) -> str:
    if not PASSWORD.match(value):
        raise InvalidArgument(field, "must be 8 to 128 printable ASCII characters")
    return value


def subject(value: Subject, field: str) -> Subject:
    for name in ("organization", "locality", "state"):
        text = getattr(value, name)
        if len(text) > 64 or any(ch in text for ch in "\r\n\0"):
            raise InvalidArgument(f"{field}.{name}", "must be at most 64 characters on one line")
    if value.country and not COUNTRY.match(value.country):
        raise InvalidArgument(f"{field}.country", "must be an ISO 3166-1 code like 'US'")
    return value


@dataclass(frozen=True)
class ParsedCsr:
    pem: str
    common_name: str
    dns_names: tuple[str, ...]
    subject: Subject


def csr(pem: str, field: str = "csr_pem") -> ParsedCsr:
    """Parse and check a CSR: well-formed, self-signed correctly, with at least one DNS SAN."""
    if len(pem) > MAX_CSR_BYTES:
        raise InvalidArgument(field, "is too large for a CSR")
    try:
        request = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise InvalidArgument(field, "is not a PEM certificate signing request") from None
    if not request.is_signature_valid:
        raise InvalidArgument(field, "has an invalid signature")
    try:
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        raise InvalidArgument(field, "must carry a subjectAltName with at least one DNS name")
    checked = [dns_name(n, f"{field}.subjectAltName") for n in names]
    common_name = _attribute(request.subject, NameOID.COMMON_NAME) or checked[0]
    common_name = dns_name(common_name, f"{field}.subject.commonName")
    fields = Subject(
        organization=_attribute(request.subject, NameOID.ORGANIZATION_NAME),
        locality=_attribute(request.subject, NameOID.LOCALITY_NAME),
        state=_attribute(request.subject, NameOID.STATE_OR_PROVINCE_NAME),
        country=_attribute(request.subject, NameOID.COUNTRY_NAME),
    )
    return ParsedCsr(
        pem=request.public_bytes(Encoding.PEM).decode(),
        common_name=common_name,
        dns_names=dns_names(common_name, checked, f"{field}.subjectAltName"),
        subject=subject(fields, f"{field}.subject"),
    )


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def serial_number(value: str, field: str = "serial_number") -> str:
    """Hex, any case, colons or spaces allowed; returned upper-case without separators."""
    cleaned = re.sub(r"[\s:]", "", value).upper()
    if not cleaned or not re.fullmatch(r"[0-9A-F]{1,40}", cleaned):
        raise InvalidArgument(field, "must be a hexadecimal serial number")
    return cleaned.lstrip("0") or "0"
