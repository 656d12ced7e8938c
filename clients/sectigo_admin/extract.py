"""Writing a PKCS#12's content as PEM files: ``cert.pem``, ``chain.pem`` and ``key.pem``.

Each file is written to a temporary file in the target directory and renamed into place, so a
reader never sees half a file, and the key file is created owner-only (0600) from the first byte
rather than narrowed afterwards.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from sectigo_svc.sectigo import KeyAndChain

CERT_FILE = "cert.pem"
CHAIN_FILE = "chain.pem"
KEY_FILE = "key.pem"
KEY_MODE = 0o600
CERT_MODE = 0o644


def write_pem_files(directory: Path, bundle: KeyAndChain) -> tuple[Path, Path, Path]:
    """Write the leaf, its issuers (nearest first) and the unencrypted key; return their paths."""
    leaf = bundle.leaf.public_bytes(Encoding.PEM)
    chain = b"".join(c.public_bytes(Encoding.PEM) for c in bundle.chain)
    key = bundle.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return (
        _write(directory / CERT_FILE, leaf, CERT_MODE),
        _write(directory / CHAIN_FILE, chain, CERT_MODE),
        _write(directory / KEY_FILE, key, KEY_MODE),
    )


def _write(target: Path, content: bytes, mode: int) -> Path:
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
