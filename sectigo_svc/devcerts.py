"""A development PKI for `make run` and tests: a client/server CA, a server, clients, an intruder.

`make_dev_certs` promises:
- Idempotence: existing files are reused, so running it twice keeps the CA that clients may have
  copied. A leaf is reissued only when it is missing, no longer matches its key, was not issued by
  the current CA, names different hosts, or expires within `RENEW_BEFORE`. `overwrite=True`
  regenerates everything except `policy.toml`, which is written only when absent because operators
  edit it.
- Private keys are never readable by others, not even for an instant: each is created under a
  temporary name with mode 0600 (`os.open`), filled, synced and renamed into place. The directory
  is created 0700; an existing directory keeps its mode.
- A second, unrelated CA signs `intruder`, a client that looks legitimate in every way except its
  issuer, for "wrong CA" tests.

This is development material only: unencrypted keys, a CA that anyone with the directory can use.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sectigo_svc.atomicfile import write_atomic
from sectigo_svc.authz import Role

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
DEFAULT_CLIENTS = ("registration", "verification", "admin", "reader", "stranger")
TRUST_DOMAIN = "sectigo-svc.test"
CA_VALIDITY = dt.timedelta(days=3652)
LEAF_VALIDITY = dt.timedelta(days=825)
RENEW_BEFORE = dt.timedelta(days=30)

_CLOCK_SKEW = dt.timedelta(minutes=5)
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600
_PUBLIC_FILE = 0o644
_ORGANIZATION = "sectigo-svc development"
_CA_NAME = "sectigo-svc development CA"
_OTHER_CA_NAME = "sectigo-svc unrelated development CA"
_INTRUDER = "intruder"
_RESERVED = frozenset({"ca", "server", "other-ca", _INTRUDER, "policy"})
_CLIENT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# What the written policy grants; `stranger` is deliberately absent so that it may do nothing.
_DEV_GRANTS: tuple[tuple[str, tuple[Role, ...]], ...] = (
    ("registration", (Role.ISSUE, Role.READ, Role.REVOKE)),
    ("verification", (Role.READ,)),
    ("reader", (Role.READ,)),
    ("admin", (Role.ADMIN,)),
)


class DevCertsError(Exception):
    """The request is invalid, or the directory holds a CA that cannot be reused safely."""


class CertKey(NamedTuple):
    """A certificate file and its private key file; unpacks as `(cert, key)`."""

    cert: Path
    key: Path


def spiffe_id(name: str) -> str:
    """The URI SAN a development client carries, and the key the written policy uses for it."""
    return f"spiffe://{TRUST_DOMAIN}/{name}"


def client_dns_name(name: str) -> str:
    """The DNS SAN a development client carries."""
    return f"{name}.clients.{TRUST_DOMAIN}"


@dataclass(frozen=True)
class DevCerts:
    """Where `make_dev_certs` put everything; `clients` are the client names it was asked for."""

    directory: Path
    clients: tuple[str, ...]

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def other_ca(self) -> Path:
        return self.directory / "other-ca.pem"

    @property
    def other_ca_key(self) -> Path:
        return self.directory / "other-ca.key"

    @property
    def intruder(self) -> CertKey:
        """A client signed by the unrelated CA; a server trusting `ca` must refuse it."""
        return _pair(self.directory, _INTRUDER)

    @property
    def policy(self) -> Path:
        return self.directory / "policy.toml"

    def client(self, name: str) -> CertKey:
        """The files of a client signed by `ca`; `DevCertsError` for a name not generated."""
        if name not in self.clients:
            raise DevCertsError(
                f"no development client {name!r} in {self.directory}; "
                f"generated: {', '.join(self.clients) or 'none'}"
            )
        return _pair(self.directory, name)


def make_dev_certs(
    directory: Path,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    clients: Sequence[str] = DEFAULT_CLIENTS,
    overwrite: bool = False,
) -> DevCerts:
    """Create, or complete and reuse, the development PKI in `directory` (see the module doc)."""
    server_names = _host_names(hosts)
    client_names = _client_names(clients)
    directory.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
    certs = DevCerts(directory=directory, clients=client_names)
    now = dt.datetime.now(dt.UTC)

    ca = _authority(_pair(directory, "ca"), _CA_NAME, overwrite=overwrite, now=now)
    server = _Profile(
        "sectigo-svc development server", server_names, ExtendedKeyUsageOID.SERVER_AUTH
    )
    _leaf(CertKey(certs.server_cert, certs.server_key), ca, server, overwrite=overwrite, now=now)
    for name in client_names:
        _leaf(certs.client(name), ca, _client_profile(name), overwrite=overwrite, now=now)

    other = _authority(_pair(directory, "other-ca"), _OTHER_CA_NAME, overwrite=overwrite, now=now)
    _leaf(certs.intruder, other, _client_profile(_INTRUDER), overwrite=overwrite, now=now)

    if not certs.policy.exists():
        write_atomic(certs.policy, _policy_text().encode(), _PUBLIC_FILE)
    return certs


@dataclass(frozen=True)
class _Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class _Profile:
    """What a leaf must say: its common name, its SANs and its one extended key usage."""

    common_name: str
    names: tuple[x509.GeneralName, ...]
    usage: x509.ObjectIdentifier


def _pair(directory: Path, stem: str) -> CertKey:
    return CertKey(directory / f"{stem}.pem", directory / f"{stem}.key")


def _client_profile(name: str) -> _Profile:
    names = (x509.DNSName(client_dns_name(name)), x509.UniformResourceIdentifier(spiffe_id(name)))
    return _Profile(name, names, ExtendedKeyUsageOID.CLIENT_AUTH)


def _host_names(hosts: Sequence[str]) -> tuple[x509.GeneralName, ...]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not _DNS_NAME.fullmatch(host):
                raise DevCertsError(
                    f"host {host!r} is neither an IP address nor a DNS name"
                ) from None
            names.append(x509.DNSName(host))
    if not names:
        raise DevCertsError("the server certificate needs at least one host name or IP address")
    return tuple(names)


def _client_names(clients: Sequence[str]) -> tuple[str, ...]:
    for name in clients:
        if not _CLIENT_NAME.fullmatch(name):
            raise DevCertsError(
                f"client name {name!r} must be a lower-case DNS label (a-z, 0-9, '-', "
                "at most 63 characters) because it becomes a file name, a DNS SAN and a SPIFFE ID"
            )
        if name in _RESERVED:
            raise DevCertsError(
                f"client name {name!r} is reserved for another file in the development PKI"
            )
    return tuple(dict.fromkeys(clients))


def _authority(pair: CertKey, common_name: str, *, overwrite: bool, now: dt.datetime) -> _Authority:
    """Reuse the CA in `pair` when both files exist, else create one.

    Half a CA is an error, not a reason to start over: replacing a CA silently would invalidate
    every copy of it that clients already trust.
    """
    present = [path for path in pair if path.exists()]
    if not overwrite and len(present) == 2:
        return _load_authority(pair)
    if not overwrite and present:
        missing = pair.key if present[0] == pair.cert else pair.cert
        raise DevCertsError(
            f"{present[0]} exists but {missing} does not; restore it, or delete {present[0]} "
            "(or pass overwrite=True) to create a new CA and reissue everything it signed"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificate_signing=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(pair.key, key)
    write_atomic(pair.cert, cert.public_bytes(serialization.Encoding.PEM), _PUBLIC_FILE)
    return _Authority(cert, key)


def _load_authority(pair: CertKey) -> _Authority:
    try:
        cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
        key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DevCertsError(
            f"cannot reuse the CA in {pair.cert} and {pair.key}: {exc}; "
            "delete both (or pass overwrite=True) to create a new one"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise DevCertsError(
            f"{pair.key} is not the EC private key of {pair.cert}; "
            "delete both (or pass overwrite=True) to create a new CA"
        )
    return _Authority(cert, key)


def _leaf(
    pair: CertKey, issuer: _Authority, profile: _Profile, *, overwrite: bool, now: dt.datetime
) -> None:
    if not overwrite and _reusable(pair, issuer, profile, now):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, profile.common_name)]))
        .issuer_name(issuer.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(min(now + LEAF_VALIDITY, issuer.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificate_signing=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([profile.usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(profile.names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    # Key first: a crash in between leaves a pair that `_reusable` rejects, so it is reissued.
    _write_key(pair.key, key)
    write_atomic(pair.cert, cert.public_bytes(serialization.Encoding.PEM), _PUBLIC_FILE)


def _reusable(pair: CertKey, issuer: _Authority, profile: _Profile, now: dt.datetime) -> bool:
    """Whether an existing leaf is intact, signed by `issuer`, names `profile`, and not expiring."""
    try:
        cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
        key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
        cert.verify_directly_issued_by(issuer.cert)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (
        OSError,
        ValueError,
        TypeError,
        UnsupportedAlgorithm,
        InvalidSignature,
        x509.ExtensionNotFound,
    ):
        return False
    return (
        key.public_key() == cert.public_key()
        and set(sans) == set(profile.names)
        and cert.not_valid_after_utc - RENEW_BEFORE > now
    )


def _key_usage(*, certificate_signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not certificate_signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificate_signing,
        crl_sign=certificate_signing,
        encipher_only=False,
        decipher_only=False,
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, data, _PRIVATE_FILE)


def _policy_text() -> str:
    lines = [
        "# sectigo-svc authorization policy for the development PKI (written once by devcerts;",
        "# edit freely, it is never overwritten). Keys are the clients' SPIFFE IDs (URI SANs).",
        "# 'stranger' is deliberately absent: it holds a valid certificate and no roles.",
    ]
    for name, roles in _DEV_GRANTS:
        quoted = ", ".join(f'"{role}"' for role in roles)
        lines += ["", f'[identities."{spiffe_id(name)}"]', f"roles = [{quoted}]"]
    return "\n".join(lines) + "\n"
