"""Hostile requests for the property tests: crafted CSRs, strategies of bad values, a shared
service per test module, and the checks every refusal must pass.

Values called *invalid* here are invalid by construction (a valid value with one rule broken),
written without the service's own regular expressions, so the tests cannot agree with a wrong rule.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import string
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtensionOID, NameOID
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sectigo_svc.app import Application
from sectigo_svc.devcerts import DevCerts
from sectigo_svc.emulator import Emulator, EmulatorConfig
from sectigo_svc.sectigo.credentials import Credentials
from tests.service.conftest import READY_TIMEOUT, Service, service_config
from tests.service.helpers import PASSWORD, USERNAME, Failure

# Small enough for `make test`; deadline None because the machine is shared.
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TIMEOUT = 10.0
# No status message may be longer than this (the server cuts at 1024 characters).
MAX_DETAILS = 1024
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


@contextlib.contextmanager
def running_service(pki: DevCerts, state: Path) -> Iterator[Service]:
    """A service on port 0 in front of its own emulator, for a whole test module."""
    emulator = Emulator(EmulatorConfig(host="127.0.0.1", port=0, management_port=0))
    emulator.start()
    config = service_config(pki, state, emulator)
    app = Application(config, Credentials.load(USERNAME, PASSWORD))
    app.start()
    service = Service(app, emulator, pki, config)
    try:
        assert app.wait_ready(READY_TIMEOUT), "the service never became ready"
        yield service
    finally:
        service.stop()
        emulator.stop()


def refusal_problems(result: Failure, fields: frozenset[str]) -> list[str]:
    """What is wrong with a failed call's status: INTERNAL or UNKNOWN, an INVALID_ARGUMENT naming
    no field or a field the message does not have (``fields``: its top-level field and oneof
    names), or an oversized message."""
    problems = []
    if result.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        problems.append(f"{result.code.name}: {result.details[:200]}")
    if result.code is grpc.StatusCode.INVALID_ARGUMENT:
        root = (result.field or "").split(".")[0].split("[")[0]
        if root not in fields:
            problems.append(f"INVALID_ARGUMENT names {result.field!r}, not one of {sorted(fields)}")
    if len(result.details) > MAX_DETAILS:
        problems.append(f"a message of {len(result.details)} characters")
    return problems


def outcome(call: Callable[[], object]) -> Failure | None:
    """The failure of an RPC (consuming a stream), or None when it succeeded."""
    try:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    except grpc.RpcError as exc:
        failed = cast(grpc.Call, exc)
        trailers = {k: v for k, v in failed.trailing_metadata() or () if isinstance(v, str)}
        return Failure(failed.code(), failed.details() or "", trailers)
    return None


# Text ---------------------------------------------------------------------------------------------

CONTROL = st.sampled_from(["\x00", "\x07", "\x1b", "\n", "\r", "\t", "\x7f", "\x85", "\u2028"])
huge_text = st.integers(1_000, 300_000).map(lambda n: "a" * n)
any_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=string.printable, max_size=300),
    huge_text,
    st.sampled_from(["", " ", "*", "\n", "nl-1\n", "127.0.0.1", "::1", "bücher.de", "a" * 129]),
)


def inserted(base: str, bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``base`` with one ``bad`` piece inserted anywhere (also at either end)."""
    return st.tuples(st.integers(0, len(base)), bad).map(
        lambda t: base[: t[0]] + t[1] + base[t[0] :]
    )


REQUEST_ID_CHARS = frozenset(string.ascii_letters + string.digits + "._:-")
invalid_request_ids = st.one_of(
    st.just(""),
    st.integers(129, 5_000).map(lambda n: "r" * n),
    inserted("req-1", st.characters().filter(lambda c: c not in REQUEST_ID_CHARS)),
    st.sampled_from(["req-1\n", "r" * 128 + "\n", "\nreq-1", "req 1"]),
)

HOST_CHARS = frozenset(string.ascii_letters + string.digits + "-.")
invalid_dns_names = st.one_of(
    st.just(""),
    inserted("host.example.com", st.characters().filter(lambda c: c not in HOST_CHARS)),
    inserted("host.example.com", CONTROL),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.integers(300, 1_000_000).map(lambda n: "a" * n + ".example.com"),
    st.sampled_from(
        [
            "127.0.0.1",
            "host.example.com\n",
            "-host.example.com",
            "host-.example.com",
            "a..example.com",
            "bücher.example.com",
            "xn--zz-.example.com",
            "xn--a.example.com",
            "host.example.123",
            ("a" * 64) + ".example.com",
        ]
    ),
)
# RFC 5280's upper bounds, in characters: ub-common-name, ub-organization-name,
# ub-organizational-unit-name, ub-locality-name, ub-state-name.
UB_COMMON_NAME = 64
UB_SUBJECT = {"organization": 64, "organizationalUnit": 64, "locality": 128, "state": 128}


def dns_name_of(length: int) -> str:
    """A valid DNS name of exactly ``length`` characters (13 to 253)."""
    prefix = length - len(".example.com")
    count = -(-(prefix + 1) // 64)  # labels of at most 63 characters, each but the last + a dot
    letters = prefix - (count - 1)
    sizes = [letters // count + (i < letters % count) for i in range(count)]
    name = ".".join("a" * size for size in sizes) + ".example.com"
    assert len(name) == length, (len(name), length)
    return name


# Valid DNS names too long to be a common name.
long_common_names = st.integers(UB_COMMON_NAME + 1, 253).map(dns_name_of)


def invalid_subject_texts(field: str) -> st.SearchStrategy[str]:
    """Bad values of a subject field: control characters, surrounding spaces, or longer than
    RFC 5280 allows for ``field``."""
    return st.one_of(
        inserted("Example Ltd", CONTROL),
        st.integers(UB_SUBJECT[field] + 1, 100_000).map(lambda n: "O" * n),
        st.sampled_from([" Example Ltd", "Example Ltd ", "Example\x1bLtd", "Bell\x07Ltd"]),
    )


invalid_countries = st.one_of(
    st.sampled_from(["us", "USA", "U", "US\n", " US", "U1", "ÜS"]),
    st.text(min_size=1, max_size=5).filter(
        lambda t: not (len(t) == 2 and all(c in string.ascii_uppercase for c in t))
    ),
)
invalid_passwords = st.one_of(
    st.text(alphabet=string.ascii_letters, max_size=7),
    inserted("long enough", CONTROL),
    inserted("long enough", st.characters(min_codepoint=0x80)),
    st.integers(129, 10_000).map(lambda n: "p" * n),
)
invalid_ids = st.one_of(st.integers(INT64[0], -1), st.integers(2**53, INT64[1]))


# Crafted CSRs ------------------------------------------------------------------------------------


@functools.cache
def keys() -> dict[str, CertificateIssuerPrivateKeyTypes]:
    """One key of each kind, made once: accepted (``ec256``, ``ec384``, ``rsa2048``) or not."""
    return {
        "ec256": ec.generate_private_key(ec.SECP256R1()),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
        "ec521": ec.generate_private_key(ec.SECP521R1()),
        "secp256k1": ec.generate_private_key(ec.SECP256K1()),
        "rsa2048": rsa.generate_private_key(65537, 2048),
        "rsa1024": rsa.generate_private_key(65537, 1024),
        "dsa": dsa.generate_private_key(2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


def _sign(key: CertificateIssuerPrivateKeyTypes, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _pem(der: bytes) -> str:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


def build_csr(
    key_name: str = "ec256",
    common_name: str | None = "host.example.com",
    dns_names: list[str] | None = None,
    organization: str | None = None,
    extensions: list[x509.ExtensionType] | None = None,
    extra_name: list[x509.NameAttribute[str]] | None = None,
) -> str:
    """A correctly signed CSR; ``dns_names`` None means one SAN equal to the common name. The
    builder's own length checks are off, so attributes may break RFC 5280's bounds."""
    key = keys()[key_name]
    attributes = [attribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    if organization is not None:
        attributes.append(attribute(NameOID.ORGANIZATION_NAME, organization))
    attributes += extra_name or []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    names = dns_names if dns_names is not None else [common_name or "host.example.com"]
    if extensions is None:
        extensions = [x509.SubjectAlternativeName([x509.DNSName(n) for n in names])]
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    algorithm = None if key_name == "ed25519" else hashes.SHA256()
    request = builder.sign(key, algorithm)
    return request.public_bytes(serialization.Encoding.PEM).decode()


def attribute(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute[str]:
    """A subject attribute of any length (cryptography warns about, but writes, a long one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return x509.NameAttribute(oid, value, _validate=False)


def _header(der: bytes, at: int) -> tuple[int, int]:
    """(header length, body length) of the DER element starting at ``at``."""
    first = der[at + 1]
    if first < 0x80:
        return 2, first
    count = first & 0x7F
    return 2 + count, int.from_bytes(der[at + 2 : at + 2 + count], "big")


def _element(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def resigned(pem: str, patch: Callable[[bytes], bytes], key_name: str = "ec256") -> str:
    """The CSR with its CertificationRequestInfo patched, then signed again: a CSR whose
    signature verifies although its content is something no builder would write."""
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
    outer_header, _ = _header(der, 0)
    info_at = outer_header
    header, size = _header(der, info_at)
    info = der[info_at : info_at + header + size]
    algorithm_at = info_at + header + size
    header, size = _header(der, algorithm_at)
    algorithm = der[algorithm_at : algorithm_at + header + size]
    patched = patch(info)
    assert patched != info, "the patch changed nothing"
    signature = _element(0x03, b"\x00" + _sign(keys()[key_name], patched))
    return _pem(_element(0x30, patched + algorithm + signature))


_SAN_OID = b"\x06\x03\x55\x1d\x11"
_SPARE_OID = x509.ObjectIdentifier("2.5.29.99")  # same encoded length as subjectAltName's


def two_san_csr() -> str:
    """Two subjectAltName extensions, correctly signed."""
    second = x509.SubjectAlternativeName([x509.DNSName("other.example.com")])
    raw = second.public_bytes()
    pem = build_csr(
        extensions=[
            x509.SubjectAlternativeName([x509.DNSName("host.example.com")]),
            x509.UnrecognizedExtension(_SPARE_OID, raw),
        ]
    )
    return resigned(pem, lambda info: info.replace(b"\x06\x03\x55\x1d\x63", _SAN_OID))


def bad_san_der_csr() -> str:
    """A subjectAltName whose value is not valid DER, correctly signed."""
    return build_csr(
        extensions=[
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x82\x05")
        ]
    )


def crafted_csrs() -> dict[str, tuple[str, str]]:
    """Invalid but correctly signed CSRs: name -> (PEM, the field the refusal must name)."""
    ip_san = x509.SubjectAlternativeName(
        [x509.DNSName("host.example.com"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    return {
        "two SANs": (two_san_csr(), "csr_pem"),
        "SAN not DER": (bad_san_der_csr(), "csr_pem"),
        "RSA 1024": (build_csr("rsa1024"), "csr_pem.publicKey"),
        "DSA": (build_csr("dsa"), "csr_pem.publicKey"),
        "Ed25519": (build_csr("ed25519"), "csr_pem.publicKey"),
        "P-521": (build_csr("ec521"), "csr_pem.publicKey"),
        "secp256k1": (build_csr("secp256k1"), "csr_pem.publicKey"),
        "IP common name": (
            build_csr(common_name="127.0.0.1", dns_names=["host.example.com"]),
            "csr_pem.subject.commonName",
        ),
        "IP SAN": (build_csr(extensions=[ip_san]), "csr_pem.subjectAltName"),
        "IP as DNS SAN": (build_csr(dns_names=["127.0.0.1"]), "csr_pem.subjectAltName"),
        "ESC organization": (
            build_csr(organization="Evil\x1bCorp"),
            "csr_pem.subject.organization",
        ),
        "BEL organization": (
            build_csr(organization="Bell\x07Corp"),
            "csr_pem.subject.organization",
        ),
        "two common names": (
            build_csr(extra_name=[x509.NameAttribute(NameOID.COMMON_NAME, "other.example.com")]),
            "csr_pem.subject",
        ),
        "no SAN": (build_csr(extensions=[]), "csr_pem"),
        "65-character common name": (
            build_csr(common_name=dns_name_of(65)),
            "csr_pem.subject.commonName",
        ),
        "no common name, 65-character first DNS name": (
            build_csr(common_name=None, dns_names=[dns_name_of(65), "host.example.com"]),
            "csr_pem.subject.commonName",
        ),
        "65-character organization": (
            build_csr(organization="O" * 65),
            "csr_pem.subject.organization",
        ),
        "65-character organizational unit": (
            build_csr(extra_name=[attribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "U" * 65)]),
            "csr_pem.subject.organizationalUnit",
        ),
        "second organizational unit of 65 characters": (
            build_csr(
                extra_name=[
                    attribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit"),
                    attribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "U" * 65),
                ]
            ),
            "csr_pem.subject.organizationalUnit",
        ),
        "129-character locality": (
            build_csr(extra_name=[attribute(NameOID.LOCALITY_NAME, "L" * 129)]),
            "csr_pem.subject.locality",
        ),
        "129-character state": (
            build_csr(extra_name=[attribute(NameOID.STATE_OR_PROVINCE_NAME, "S" * 129)]),
            "csr_pem.subject.state",
        ),
        "three-letter country": (
            build_csr(extra_name=[attribute(NameOID.COUNTRY_NAME, "USA")]),
            "csr_pem.subject.country",
        ),
    }


def flipped(pem: str, at: int, bit: int) -> str:
    """The CSR with one bit of its DER flipped (``at`` wraps around the length)."""
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[at % len(der)] ^= 1 << bit
    return _pem(bytes(der))
