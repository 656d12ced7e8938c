"""Checks on what callers send, before anything is stored or a licence is at stake.

Every failure is an :class:`InvalidArgument` naming the field in the API's own terms
(``server_key.dns_names[1]``), so a caller can fix its request without reading our code. Every
string has a maximum length and a character rule matched against the whole string (never a
prefix, never up to a final newline); every number has a range; messages quote at most
:data:`~sectigo_svc.domain.errors.ECHO_LIMIT` characters of what the caller sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from sectigo_svc.domain.errors import InvalidArgument, quoted
from sectigo_svc.domain.models import Subject

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DNS_NAME = re.compile(rf"(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}")
PASSWORD = re.compile(r"[\x20-\x7e]{8,128}")
COUNTRY = re.compile(r"[A-Z]{2}")
SERIAL = re.compile(r"[0-9A-Fa-f: ]{1,128}")
MAX_DNS_NAME = 253
MAX_DNS_NAMES = 100
MAX_CSR_CHARS = 64 * 1024
# RFC 5280's upper bounds (ub-common-name, ub-organization-name, ub-organizational-unit-name,
# ub-locality-name, ub-state-name), in characters. Sectigo fails an order whose subject exceeds
# them with a 500, so they are checked here, before anything is recorded or sent.
MAX_COMMON_NAME = 64
MAX_ORGANIZATIONAL_UNIT = 64
SUBJECT_BOUNDS = {"organization": 64, "locality": 128, "state": 128}
MAX_OWNER = 2048  # the SPIFFE ID limit; identities are URI SANs, DNS names or common names
MAX_ID = 2**53 - 1  # the largest integer every JSON reader carries exactly
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
EC_CURVES = frozenset({"secp256r1", "secp384r1"})
_ATTRIBUTES = {
    NameOID.COMMON_NAME: "commonName",
    NameOID.ORGANIZATION_NAME: "organizationName",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "organizationalUnitName",
    NameOID.LOCALITY_NAME: "localityName",
    NameOID.STATE_OR_PROVINCE_NAME: "stateOrProvinceName",
    NameOID.COUNTRY_NAME: "countryName",
}
KEY_RULE = "RSA of 2048 to 8192 bits, or EC on P-256 or P-384"

DNS_RULE = (
    "must be a DNS host name of ASCII letters, digits and hyphens (an internationalized name in "
    "its A-label xn-- form), not an IP address"
)


def request_id(value: str, field: str = "request_id") -> str:
    if not REQUEST_ID.fullmatch(value):
        raise InvalidArgument(field, "must be 1 to 128 characters of letters, digits and . _ : -")
    return value


def owner(value: str, field: str = "owner") -> str:
    """An identity named by a caller: empty (the caller itself), or at most 2048 printable
    characters without surrounding whitespace."""
    if value and (len(value) > MAX_OWNER or not _printable_line(value)):
        raise InvalidArgument(
            field, f"must be an identity of at most {MAX_OWNER} printable characters"
        )
    return value


def identifier(value: int, field: str, zero_means: str | None = None) -> int:
    """A Sectigo id from 1 to 2^53 - 1, or 0 when ``zero_means`` says what 0 stands for."""
    lowest = 0 if zero_means is not None else 1
    if not lowest <= value <= MAX_ID:
        default = f", or 0 for {zero_means}" if zero_means is not None else ""
        raise InvalidArgument(field, f"must be a positive id up to 2^53 - 1{default}")
    return value


def dns_name(value: str, field: str) -> str:
    """A host name, lower-cased and without a final dot.

    Refused: anything but ASCII letters, digits, hyphens and dots (so no whitespace, control
    characters or U-labels), an all-numeric last label (IPv4 literals), more than 253 characters,
    and xn-- labels that are not valid Punycode. A leading ``*.`` wildcard is allowed.
    """
    name = value.lower().removesuffix(".") if value.isascii() else value
    if (
        len(name) > MAX_DNS_NAME
        or not DNS_NAME.fullmatch(name)
        or name.rpartition(".")[2].isdigit()
        or not all(_a_label(label) for label in name.split(".") if label.startswith("xn--"))
    ):
        raise InvalidArgument(field, f"{quoted(value)} {DNS_RULE}")
    return name


def common_name(value: str, field: str) -> str:
    """A DNS name (:func:`dns_name`) of at most :data:`MAX_COMMON_NAME` characters."""
    if not value:
        raise InvalidArgument(
            field, f"is required: a DNS name of at most {MAX_COMMON_NAME} characters"
        )
    name = dns_name(value, field)
    if len(name) > MAX_COMMON_NAME:
        raise InvalidArgument(
            field,
            f"{quoted(value)} has {len(name)} characters; a common name has at most "
            f"{MAX_COMMON_NAME} (RFC 5280). A longer DNS name can be a further DNS name "
            "(subjectAltName) with a shorter common name",
        )
    return name


def _a_label(label: str) -> bool:
    """An xn-- label is Punycode, encoding back to itself, for a label that is not plain ASCII
    and holds only letters, marks, digits and hyphens."""
    encoded = label[4:]
    try:
        decoded = encoded.encode("ascii").decode("punycode")
    except UnicodeError:
        return False
    return (
        not decoded.isascii()
        and decoded.encode("punycode").decode("ascii") == encoded
        and all(ch == "-" or unicodedata.category(ch)[0] in "LMN" for ch in decoded)
    )


def dns_names(common_name: str, extra: Sequence[str], field: str) -> tuple[str, ...]:
    """The common name first, then every extra name once, in the order given."""
    if len(extra) > MAX_DNS_NAMES:
        raise InvalidArgument(field, f"at most {MAX_DNS_NAMES} names")
    names = [common_name] + [dns_name(n, f"{field}[{i}]") for i, n in enumerate(extra)]
    return tuple(dict.fromkeys(names))


def pkcs12_password(value: str, field: str) -> str:
    if not PASSWORD.fullmatch(value):
        raise InvalidArgument(field, "must be 8 to 128 printable ASCII characters")
    return value


def subject(value: Subject, field: str) -> Subject:
    """Organization (at most 64 characters), locality and state (at most 128 each): printable,
    one line, no surrounding whitespace; country: an upper-case ISO 3166-1 two-letter code."""
    for name, bound in SUBJECT_BOUNDS.items():
        subject_text(getattr(value, name), bound, f"{field}.{name}")
    if value.country and not COUNTRY.fullmatch(value.country):
        raise InvalidArgument(f"{field}.country", "must be an ISO 3166-1 code like 'US'")
    return value


def subject_text(text: str, bound: int, field: str) -> str:
    """A subject attribute's text: at most ``bound`` characters, printable, one line, without
    surrounding spaces (empty passes)."""
    if len(text) > bound or (text and not _printable_line(text)):
        raise InvalidArgument(
            field,
            f"must be at most {bound} printable characters on one line (RFC 5280's bound), "
            f"without control characters or surrounding spaces; it has {len(text)}",
        )
    return text


def _printable_line(text: str) -> bool:
    """No control, format, private-use, unassigned or line-separating characters, and no
    whitespace at either end."""
    if text != text.strip():
        return False
    return not any(unicodedata.category(ch)[0] == "C" or ch in "\u2028\u2029" for ch in text)


@dataclass(frozen=True)
class ParsedCsr:
    """A checked CSR; ``key_algorithm`` is the family a profile lists: ``RSA`` or ``EC``."""

    pem: str
    common_name: str
    dns_names: tuple[str, ...]
    subject: Subject
    key_algorithm: str


def csr(pem: str, field: str = "csr_pem") -> ParsedCsr:
    """Parse and check a CSR: well-formed, an accepted key (:data:`KEY_RULE`), self-signed
    correctly, a subjectAltName of DNS names only (at least one), at most one of each subject
    attribute. Any parsing failure at all is an :class:`InvalidArgument` on ``field``."""
    if len(pem) > MAX_CSR_CHARS:
        raise InvalidArgument(field, f"is too large for a CSR (at most {MAX_CSR_CHARS} characters)")
    if not pem.isascii():
        raise InvalidArgument(field, "is not a PEM certificate signing request (not ASCII)")
    try:
        request = x509.load_pem_x509_csr(pem.encode())
    except Exception:  # ValueError, or InvalidVersion, which is not one
        raise InvalidArgument(field, "is not a PEM certificate signing request") from None
    try:
        return _checked_csr(request, field)
    except InvalidArgument:
        raise
    except x509.DuplicateExtension:
        raise InvalidArgument(field, "carries an extension more than once") from None
    except Exception:  # a hostile CSR may break the parser in any way
        raise InvalidArgument(
            field, "is not a well-formed certificate signing request (a part could not be parsed)"
        ) from None


def _checked_csr(request: x509.CertificateSigningRequest, field: str) -> ParsedCsr:
    algorithm = _key_algorithm(request, field)
    if not request.is_signature_valid:
        raise InvalidArgument(field, "has an invalid signature")
    try:
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    if len(names) != len(san):
        raise InvalidArgument(f"{field}.subjectAltName", "may hold DNS names only")
    if not names:
        raise InvalidArgument(field, "must carry a subjectAltName with at least one DNS name")
    if len(names) > MAX_DNS_NAMES:
        raise InvalidArgument(f"{field}.subjectAltName", f"at most {MAX_DNS_NAMES} names")
    checked = [dns_name(n, f"{field}.subjectAltName") for n in names]
    given = _attribute(request.subject, NameOID.COMMON_NAME, field)
    if not given and len(checked[0]) > MAX_COMMON_NAME:
        # Sectigo makes the first DNS name the common name of a CSR without one.
        raise InvalidArgument(
            f"{field}.subject.commonName",
            f"is absent, so the first DNS name of the subjectAltName would be the common name, "
            f"but it has {len(checked[0])} characters, more than the {MAX_COMMON_NAME} a common "
            f"name may have (RFC 5280): list a DNS name of at most {MAX_COMMON_NAME} characters "
            "first, or set a commonName",
        )
    name = common_name(given or checked[0], f"{field}.subject.commonName")
    for unit in request.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        if not isinstance(unit.value, str):
            raise InvalidArgument(
                f"{field}.subject", "has an organizationalUnitName that is not text"
            )
        subject_text(unit.value, MAX_ORGANIZATIONAL_UNIT, f"{field}.subject.organizationalUnit")
    fields = Subject(
        organization=_attribute(request.subject, NameOID.ORGANIZATION_NAME, field),
        locality=_attribute(request.subject, NameOID.LOCALITY_NAME, field),
        state=_attribute(request.subject, NameOID.STATE_OR_PROVINCE_NAME, field),
        country=_attribute(request.subject, NameOID.COUNTRY_NAME, field),
    )
    return ParsedCsr(
        pem=request.public_bytes(Encoding.PEM).decode(),
        common_name=name,
        dns_names=dns_names(name, checked, f"{field}.subjectAltName"),
        subject=subject(fields, f"{field}.subject"),
        key_algorithm=algorithm,
    )


def _key_algorithm(request: x509.CertificateSigningRequest, field: str) -> str:
    try:
        key = request.public_key()
    except UnsupportedAlgorithm:
        key = None
    if isinstance(key, rsa.RSAPublicKey) and MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in EC_CURVES:
        return "EC"
    raise InvalidArgument(f"{field}.publicKey", f"has a key that is not accepted: use {KEY_RULE}")


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier, field: str) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) > 1:
        raise InvalidArgument(f"{field}.subject", f"has more than one {_ATTRIBUTES[oid]}")
    if not values:
        return ""
    value = values[0].value
    if not isinstance(value, str):
        raise InvalidArgument(f"{field}.subject", f"has a {_ATTRIBUTES[oid]} that is not text")
    return value


def serial_number(value: str, field: str = "serial_number") -> str:
    """Hex, any case, colons or spaces allowed; returned upper-case without separators."""
    cleaned = value.replace(":", "").replace(" ", "").upper() if SERIAL.fullmatch(value) else ""
    if not 1 <= len(cleaned) <= 40:
        raise InvalidArgument(
            field, "must be a hexadecimal serial number of at most 40 digits (colons allowed)"
        )
    return cleaned.lstrip("0") or "0"
