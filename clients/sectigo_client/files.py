"""Certificates written to a directory: atomically, private material readable by the owner only.

Every file is written under a temporary name in the same directory (created 0600, so a key is
never readable by others, not even for an instant, then given its final mode), synced, and renamed
into place: a reader sees the old file or the new one, never half of one.

The set is not atomic. Files of another certificate that a download does not replace (a
``key.pem`` that is not the new certificate's key, a ``bundle.p12``, ``bundle.sectigo.p12`` or
password when there is no new one) are removed first, so that they never pair with the new
certificate; then the key and bundles are written, then ``chain.pem``, and ``cert.pem`` last:
once a reader sees the new ``cert.pem``, the rest is in place. A ``key.pem`` that is the new
certificate's key (e.g. the one ``sectigo-ca issue --new-key`` kept after an unclear failure)
stays, as does one that cannot be read as an unencrypted key: a key removed cannot be brought
back.

===========================  ======  ===========================================================
``cert.pem``                 0644    the leaf certificate
``chain.pem``                0644    the CA certificates after the leaf, issuing CA first
``key.pem``                  0600    the private key (PKCS#8), when there is one to write
``bundle.p12``               0600    the PKCS#12 with Sectigo's key, re-encoded by the service
                                     (server-key requests, owner only; opens without -legacy)
``bundle.sectigo.p12``       0600    Sectigo's own PKCS#12 byte for byte, when it was asked for
                                     (same password; OpenSSL 3 opens it only with -legacy)
``bundle.p12.password``      0600    the password of both, one line
===========================  ======  ===========================================================
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm

from sectigo_client.keys import belongs_to
from sectigo_client.models import Certificate, SavedFiles

CERTIFICATE_FILE = "cert.pem"
CHAIN_FILE = "chain.pem"
KEY_FILE = "key.pem"
PKCS12_FILE = "bundle.p12"
SECTIGO_PKCS12_FILE = "bundle.sectigo.p12"
PASSWORD_FILE = "bundle.p12.password"  # noqa: S105 - a file name, not a password
PUBLIC_MODE = 0o644
PRIVATE_MODE = 0o600


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data``, the file having ``mode`` from its first byte on."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), mode)  # mkstemp made it 0600: never wider than final
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save(directory: Path, certificate: Certificate, private_key_pem: str = "") -> SavedFiles:
    """Write ``certificate`` into ``directory`` (created if missing) as the files above.

    ``private_key_pem`` is the caller's own key (CSR requests); it must belong to the
    certificate. Without it, ``key.pem`` is written only if the download carried the key.
    """
    key = private_key_pem or certificate.private_key_pem
    if key and not belongs_to(key, certificate.certificate_pem):
        raise ValueError("the private key does not belong to the downloaded certificate")
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / KEY_FILE
    p12_path = directory / PKCS12_FILE
    original_path = directory / SECTIGO_PKCS12_FILE
    password_path = directory / PASSWORD_FILE
    bundles = [(p12_path, certificate.pkcs12), (original_path, certificate.sectigo_pkcs12)]
    has_password = bool(certificate.pkcs12 or certificate.sectigo_pkcs12)
    stale = [path for path, data in bundles if not data]
    if not has_password:
        stale.append(password_path)
    if not key and _of_another(key_path, certificate.certificate_pem):
        stale.append(key_path)
    for path in stale:
        path.unlink(missing_ok=True)
    if key:
        write_atomic(key_path, key.encode(), PRIVATE_MODE)
    for path, data in bundles:
        if data:
            write_atomic(path, data, PRIVATE_MODE)
    if has_password:
        write_atomic(password_path, f"{certificate.pkcs12_password}\n".encode(), PRIVATE_MODE)
    chain_path = directory / CHAIN_FILE
    write_atomic(chain_path, certificate.chain_pem.encode(), PUBLIC_MODE)
    certificate_path = directory / CERTIFICATE_FILE
    write_atomic(certificate_path, certificate.certificate_pem.encode(), PUBLIC_MODE)
    return SavedFiles(
        directory=directory,
        certificate=certificate_path,
        chain=chain_path,
        key=key_path if key else None,
        pkcs12=p12_path if certificate.pkcs12 else None,
        pkcs12_password=password_path if has_password else None,
        sectigo_pkcs12=original_path if certificate.sectigo_pkcs12 else None,
        serial_number=certificate.serial_number,
        state=certificate.state,
    )


def _of_another(key_path: Path, certificate_pem: str) -> bool:
    """Whether ``key_path`` holds the key of another certificate than ``certificate_pem``'s.
    False when there is no such file, or it is not an unencrypted PEM key: then it is not ours
    to judge."""
    try:
        return not belongs_to(key_path.read_text(), certificate_pem)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm):
        return False
