"""The PKCS#12 a caller is handed: Sectigo's file re-encoded so that current OpenSSL opens it.

Sectigo encrypts the certificates with pbeWithSHA1And40BitRC2-CBC and MACs with SHA-1, which
OpenSSL 3 reads only with ``-legacy``. The same key and certificates, under the same password, are
written again with PBES2 (PBKDF2, AES-256-CBC) and a SHA-256 MAC: ``openssl pkcs12`` opens that as
it is. The stored original stays untouched.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

_WRITABLE = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def openable_pkcs12(original: bytes, password: str) -> bytes:
    """``original`` (any encoding ``cryptography`` reads) re-encoded with AES under ``password``:
    the key, its certificate and the other certificates in their order, friendly names kept.

    Raises ``ValueError`` when ``original`` does not open with ``password`` or holds no key.
    """
    loaded = pkcs12.load_pkcs12(original, password.encode())
    if loaded.cert is None or not isinstance(loaded.key, _WRITABLE):
        raise ValueError("the PKCS#12 holds no RSA, EC or EdDSA key with its certificate")
    return pkcs12.serialize_key_and_certificates(
        name=loaded.cert.friendly_name,
        key=loaded.key,
        cert=loaded.cert.certificate,
        cas=loaded.additional_certs,
        encryption_algorithm=BestAvailableEncryption(password.encode()),
    )
