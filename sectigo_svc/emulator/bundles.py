"""The download archive: a ZIP of one PKCS#12 (server-side key) or PEM chain (CSR) per leaf.

PKCS#12 encodings (``Pkcs12Encryption``):

- ``rc2``: what Sectigo itself sends: certificates under pbeWithSHA1And40BitRC2-CBC, the key under
  pbeWithSHA1And3-KeyTripleDES-CBC (2048 iterations each), an HMAC-SHA1 MAC of one iteration.
  OpenSSL 3 opens it only with ``-legacy``. ``cryptography`` cannot write RC2, so the ``openssl``
  binary (with its legacy provider) builds it.
- ``3des``: certificates and key under SHA1/3DES, SHA-1 MAC (what go-pkcs12's ``Legacy`` writes).
- ``aes``: PBES2 with AES-256 and a SHA-256 MAC; any current OpenSSL opens it as it is.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

Pkcs12Encryption = Literal["rc2", "3des", "aes"]
OPENSSL_TIMEOUT = 30.0


class Pkcs12Unavailable(RuntimeError):
    """The chosen PKCS#12 encoding cannot be written on this machine; the message says why."""


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
    if scheme == "rc2":
        return sectigo_pkcs12(item.common_name, item.key, [item.certificate, *chain], password)
    return pkcs12.serialize_key_and_certificates(
        name=item.common_name.encode(),
        key=item.key,
        cert=item.certificate,
        cas=chain,
        encryption_algorithm=_encryption(password.encode(), scheme),
    )


def sectigo_pkcs12(
    name: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    certificates: list[x509.Certificate],
    password: str,
) -> bytes:
    """Sectigo's own PKCS#12 layout (``rc2`` above): the leaf, then the rest in order.

    Raises :class:`Pkcs12Unavailable` when ``openssl`` is missing or cannot write RC2-40.
    """
    binary = shutil.which("openssl")
    if binary is None:
        raise Pkcs12Unavailable("no openssl binary on PATH (use the aes or 3des encoding)")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    command = [
        binary, "pkcs12", "-export", "-legacy",
        "-certpbe", "PBE-SHA1-RC2-40", "-keypbe", "PBE-SHA1-3DES",
        "-iter", "2048", "-macalg", "sha1", "-nomaciter",
        "-name", name, "-passout", "env:EMULATOR_PKCS12_PASSWORD",
    ]  # fmt: skip
    env = {"PATH": os.environ.get("PATH", ""), "EMULATOR_PKCS12_PASSWORD": password}
    try:
        result = subprocess.run(  # noqa: S603 - fixed arguments, the password in the environment
            command, input=pem, capture_output=True, env=env, timeout=OPENSSL_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Pkcs12Unavailable(f"openssl could not run: {exc}") from exc
    if result.returncode != 0 or not result.stdout:
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        raise Pkcs12Unavailable(
            "openssl cannot write RC2-40 PKCS#12 (legacy provider missing?): "
            + (detail[0] if detail else f"exit {result.returncode}")
        )
    return result.stdout


def check_pkcs12_encoding(scheme: Pkcs12Encryption) -> None:
    """Write one throwaway PKCS#12 in ``scheme``; :class:`Pkcs12Unavailable` when it cannot be."""
    if scheme != "rc2":
        return
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "probe")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(minutes=1))
        .sign(key, hashes.SHA256())
    )
    sectigo_pkcs12("probe", key, [certificate], "probe-password")
