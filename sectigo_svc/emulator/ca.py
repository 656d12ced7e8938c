"""The emulator's own two-level CA: a root, an issuing CA, leaf issuance and the CRL.

With a state directory the CA keys and certificates persist (keys 0600), so restarts of a
development stack keep one root that clients may already trust. Without one, every run is fresh.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["rsa2048", "rsa4096", "ec256"]
LEAF_VALIDITY = dt.timedelta(days=395)
_CA_FILES = ("root.key.pem", "root.pem", "issuing.key.pem", "issuing.pem")


def generate_key(key_type: KeyType) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if key_type == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(65537, 4096 if key_type == "rsa4096" else 2048)


@dataclass(frozen=True)
class SubjectFields:
    """The subject a leaf is issued for; empty optional fields are left out of the DN."""

    common_name: str
    organization: str = ""
    locality: str = ""
    state: str = ""
    country: str = ""

    def values(self) -> dict[x509.ObjectIdentifier, list[str]]:
        """The attributes that are set, by OID."""
        return {oid: [value] for oid, value in self._parts() if value}

    def _parts(self) -> list[tuple[x509.ObjectIdentifier, str]]:
        return [
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.STATE_OR_PROVINCE_NAME, self.state),
            (NameOID.LOCALITY_NAME, self.locality),
            (NameOID.ORGANIZATION_NAME, self.organization),
            (NameOID.COMMON_NAME, self.common_name),
        ]

    def name(self) -> x509.Name:
        return x509.Name([x509.NameAttribute(oid, value) for oid, value in self._parts() if value])


@dataclass(frozen=True)
class Revocation:
    serial: int
    when: dt.datetime
    reason_code: int


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ca_certificate(
    subject: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: x509.Name,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    path_length: int,
    years: int,
) -> x509.Certificate:
    now = _now()
    public_key = key.public_key()
    issuer_public = issuer_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sectigo Emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


class CertificateAuthority:
    """Signs leaves for issued batches and the CRL that lists revoked serials."""

    def __init__(
        self,
        root_key: CertificateIssuerPrivateKeyTypes,
        root: x509.Certificate,
        issuing_key: CertificateIssuerPrivateKeyTypes,
        issuing: x509.Certificate,
    ) -> None:
        self._root_key = root_key
        self.root = root
        self._issuing_key = issuing_key
        self.issuing = issuing

    @classmethod
    def create(cls) -> CertificateAuthority:
        root_key = ec.generate_private_key(ec.SECP384R1())
        root_name = _ca_name("Sectigo Emulator Root CA")
        root = _ca_certificate(root_name, root_key, root_name, root_key, 1, 20)
        issuing_key = ec.generate_private_key(ec.SECP384R1())
        issuing = _ca_certificate(
            _ca_name("Sectigo Emulator Issuing CA"), issuing_key, root_name, root_key, 0, 10
        )
        return cls(root_key, root, issuing_key, issuing)

    @classmethod
    def load_or_create(cls, state_dir: Path | None) -> CertificateAuthority:
        """Reuse the CA kept in ``state_dir``; create (and keep) one when there is none."""
        if state_dir is None:
            return cls.create()
        paths = [state_dir / name for name in _CA_FILES]
        if all(p.exists() for p in paths):
            root_key, root, issuing_key, issuing = (p.read_bytes() for p in paths)
            return cls(
                _load_issuer_key(root_key),
                x509.load_pem_x509_certificate(root),
                _load_issuer_key(issuing_key),
                x509.load_pem_x509_certificate(issuing),
            )
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        authority = cls.create()
        _write_private(paths[0], _key_pem(authority._root_key))
        paths[1].write_bytes(authority.root.public_bytes(serialization.Encoding.PEM))
        _write_private(paths[2], _key_pem(authority._issuing_key))
        paths[3].write_bytes(authority.issuing.public_bytes(serialization.Encoding.PEM))
        return authority

    def chain(self) -> list[x509.Certificate]:
        """The issuing CA, then the root: what follows a leaf in a bundle."""
        return [self.issuing, self.root]

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain())

    def issue(
        self,
        public_key: CertificatePublicKeyTypes,
        subject: SubjectFields,
        dns_names: list[str],
        crl_url: str,
    ) -> x509.Certificate:
        now = _now()
        return (
            x509.CertificateBuilder()
            .subject_name(subject.name())
            .issuer_name(self.issuing.subject)
            .public_key(public_key)
            .serial_number(secrets.randbits(127) | (1 << 120))
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + LEAF_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
            )
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(crl_url)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._issuing_key.public_key()),
                critical=False,
            )
            .sign(self._issuing_key, hashes.SHA256())
        )

    def crl(self, revocations: list[Revocation]) -> bytes:
        """A freshly signed DER CRL listing every revocation, with its reason."""
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(hours=1))
        )
        for revocation in revocations:
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(revocation.serial)
                .revocation_date(revocation.when)
            )
            flag = _REASON_FLAGS.get(revocation.reason_code)
            if flag is not None:
                entry = entry.add_extension(x509.CRLReason(flag), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        crl = builder.sign(self._issuing_key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)


_REASON_FLAGS: dict[int, x509.ReasonFlags] = {
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    8: x509.ReasonFlags.remove_from_crl,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
}


def _key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_issuer_key(data: bytes) -> CertificateIssuerPrivateKeyTypes:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("the emulator CA key must be an EC or RSA key")
    return key
