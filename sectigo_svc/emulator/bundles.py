"""The download archive: a ZIP of one PKCS#12 (server-side key) or PEM chain (CSR) per leaf."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

Pkcs12Encryption = Literal["aes", "3des"]


@dataclass(frozen=True)
class IssuedItem:
    """One certificate of a batch, with its key when the CA generated it."""

    common_name: str
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None


def entry_name(common_name: str, suffix: str) -> str:
    """``<cn>.<suffix>``: lower-cased, anything outside ``a-z0-9.-`` replaced by ``_``."""
    return re.sub(r"[^a-z0-9.-]", "_", common_name.lower()) + suffix


def _encryption(
    password: bytes, scheme: Pkcs12Encryption
) -> serialization.KeySerializationEncryption:
    if scheme == "aes":
        return serialization.BestAvailableEncryption(password)
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())  # noqa: S303 - the legacy format Sectigo itself uses
        .build(password)
    )


def build_zip(
    items: list[IssuedItem],
    chain: list[x509.Certificate],
    password: str,
    scheme: Pkcs12Encryption,
) -> bytes:
    """The batch ZIP. Entry names that collide get ``-2``, ``-3``... so nothing is overwritten."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in items:
            suffix = ".p12" if item.key is not None else ".pem"
            name = entry_name(item.common_name, suffix)
            counter = 2
            while name in used:
                name = entry_name(f"{item.common_name}-{counter}", suffix)
                counter += 1
            used.add(name)
            archive.writestr(name, _entry(item, chain, password, scheme))
    return buffer.getvalue()


def _entry(
    item: IssuedItem, chain: list[x509.Certificate], password: str, scheme: Pkcs12Encryption
) -> bytes:
    if item.key is None:
        certificates = [item.certificate, *chain]
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    return pkcs12.serialize_key_and_certificates(
        name=item.common_name.encode(),
        key=item.key,
        cert=item.certificate,
        cas=chain,
        encryption_algorithm=_encryption(password.encode(), scheme),
    )
