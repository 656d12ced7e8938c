"""Writing a PKCS#12's content as PEM files: ``cert.pem``, ``chain.pem`` and ``key.pem``.

Each file is written to a temporary file in the target directory and renamed into place, so a
reader never sees half a file, and the key file is created owner-only (0600) from the first byte
rather than narrowed afterwards.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from sectigo_svc.atomicfile import write_atomic
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
        write_atomic(directory / CERT_FILE, leaf, CERT_MODE),
        write_atomic(directory / CHAIN_FILE, chain, CERT_MODE),
        write_atomic(directory / KEY_FILE, key, KEY_MODE),
    )
