"""Encryption at rest for the secrets the store must keep (PKCS#12 files and passwords, keys).

AES-256-GCM under a data key from configuration. Each sealed value is bound to its row and field
as associated data, so a ciphertext copied into another row or column fails to open.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"s1"
_NONCE_BYTES = 12
KEY_BYTES = 32


class SealingError(Exception):
    """A data key that cannot be used, or a sealed value that does not open with it."""


class Sealer:
    """Seals and opens values with one data key. The key never appears in ``repr``."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SealingError(f"the data key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        # A key of its own for derived secrets, so they reveal nothing of the sealing key.
        self._derivation_key = HKDF(
            hashes.SHA256(), 32, salt=None, info=b"sectigo-svc derived secrets"
        ).derive(key)

    def derive(self, context: str) -> bytes:
        """32 bytes that only the data key can produce for ``context``, the same every time:
        a secret that survives the loss of a store, since every copy keeps the data key."""
        mac = hmac.HMAC(self._derivation_key, hashes.SHA256())
        mac.update(context.encode())
        return mac.finalize()

    def __repr__(self) -> str:
        return "Sealer(<data key hidden>)"

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        if not sealed.startswith(_VERSION) or len(sealed) < len(_VERSION) + _NONCE_BYTES + 16:
            raise SealingError(f"the sealed value for {context} is not in a known format")
        nonce = sealed[len(_VERSION) : len(_VERSION) + _NONCE_BYTES]
        try:
            return self._aead.decrypt(
                nonce, sealed[len(_VERSION) + _NONCE_BYTES :], context.encode()
            )
        except InvalidTag as exc:
            raise SealingError(
                f"the sealed value for {context} does not open with this data key"
            ) from exc


def load_or_create_key(path: Path, create: bool) -> bytes:
    """Read a base64 data key file; with ``create``, make one (0600) when there is none.

    A key file readable by group or others is refused: it protects every stored secret.
    """
    if not path.exists():
        if not create:
            raise SealingError(f"data key file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        encoded = base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path, create=False)
        with os.fdopen(fd, "wb") as handle:
            handle.write(encoded)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SealingError(f"data key file {path} has mode {mode:o}; it must be 0600")
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except binascii.Error as exc:
        raise SealingError(f"data key file {path} is not base64") from exc
    if len(key) != KEY_BYTES:
        raise SealingError(f"data key file {path} must hold {KEY_BYTES} bytes of key")
    return key
