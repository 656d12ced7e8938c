"""Turns a downloaded batch ZIP into what the store keeps for a READY request.

A server-key batch yields the PKCS#12 as Sectigo made it, its key and chain; a CSR batch yields
the chain whose leaf carries the CSR's public key, and nothing else: a certificate for another key
is an error, never a result.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from cryptography.x509.oid import NameOID

from sectigo_svc.domain.models import CertificateRequest, IssuedCertificate, KeySource
from sectigo_svc.sectigo.archive import open_pem_zip, open_pkcs12_zip
from sectigo_svc.sectigo.errors import ArchiveError


def _pem(certificates: tuple[x509.Certificate, ...]) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates)


def _spki(certificate: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _check_names(leaf: x509.Certificate, request: CertificateRequest) -> None:
    """A server-key batch is matched by name, not key: refuse a certificate for other names."""
    names = {n.value.lower() for n in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = {str(n).lower() for n in san.value.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        dns = set()
    spec = request.spec
    if spec.common_name not in names or not set(spec.dns_names) <= dns:
        raise ArchiveError(
            f"the downloaded certificate is not for {spec.common_name} and its DNS names"
        )


def harvest(
    request: CertificateRequest, archive: bytes, password: str
) -> tuple[IssuedCertificate, x509.Certificate]:
    """The certificate to store and its leaf, or :class:`ArchiveError` when it does not fit."""
    if request.spec.key_source is KeySource.SERVER:
        bundle = open_pkcs12_zip(archive, password)
        _check_names(bundle.leaf, request)
        key_pem = bundle.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        issued = IssuedCertificate(
            certificate_pem=_pem((bundle.leaf,)),
            chain_pem=_pem(bundle.chain),
            pkcs12=bundle.pkcs12,
            private_key_pem=key_pem.decode(),
        )
        return issued, bundle.leaf
    wanted = _spki(x509.load_pem_x509_csr(request.spec.csr_pem.encode()))
    for entry in open_pem_zip(archive):
        if _spki(entry.leaf) == wanted:
            issued = IssuedCertificate(_pem((entry.leaf,)), _pem(entry.chain))
            return issued, entry.leaf
    raise ArchiveError("no certificate in the archive carries the CSR's public key")
