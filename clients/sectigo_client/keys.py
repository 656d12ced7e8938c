"""Private keys and CSRs made locally, so that the key never leaves the caller.

``new_key("api.example.com", ["www.example.com"])`` makes an EC P-256 key (or RSA, if asked) and a
signed PKCS#10 CSR whose subjectAltName holds the common name and every other DNS name.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from sectigo_client.models import Subject

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
RSA_BITS = 2048
_SUBJECT_OIDS = (
    ("organization", NameOID.ORGANIZATION_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("state", NameOID.STATE_OR_PROVINCE_NAME),
    ("country", NameOID.COUNTRY_NAME),
)


class KeyType(enum.Enum):
    """The kinds of key :func:`new_key` makes."""

    EC = "ec"  # NIST P-256
    RSA = "rsa"  # 2048 bits


@dataclass(frozen=True)
class NewKey:
    """A fresh private key (object and unencrypted PKCS#8 PEM) and the CSR signed with it."""

    private_key: PrivateKey = field(repr=False)
    private_key_pem: str = field(repr=False)
    csr_pem: str


def generate_key(key_type: KeyType = KeyType.EC) -> PrivateKey:
    if key_type is KeyType.RSA:
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: PrivateKey) -> str:
    """Unencrypted PKCS#8 PEM; store it with mode 0600."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def make_csr(
    key: PrivateKey,
    common_name: str,
    dns_names: Sequence[str] = (),
    subject: Subject | None = None,
) -> str:
    """A PEM CSR for ``common_name``; its subjectAltName lists the common name, then the other
    names, each once. ``subject`` adds O, L, ST and C where not empty."""
    if not common_name:
        raise ValueError("a CSR needs a common name")
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    for name, oid in _SUBJECT_OIDS:
        value = getattr(subject, name, "") if subject is not None else ""
        if value:
            attributes.append(x509.NameAttribute(oid, value))
    names = dict.fromkeys([common_name, *dns_names])
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()


def new_key(
    common_name: str,
    dns_names: Sequence[str] = (),
    subject: Subject | None = None,
    key_type: KeyType = KeyType.EC,
) -> NewKey:
    """A new key and its CSR. Keep the result to retry an issue with the very same CSR."""
    key = generate_key(key_type)
    return NewKey(key, private_key_pem(key), make_csr(key, common_name, dns_names, subject))


def belongs_to(private_key_pem: str, certificate_pem: str) -> bool:
    """Whether the key is the private half of the certificate's public key."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    leaf = x509.load_pem_x509_certificate(certificate_pem.encode())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return key.public_key().public_bytes(der, spki) == leaf.public_key().public_bytes(der, spki)
