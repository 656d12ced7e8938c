"""The token cache file: one per (endpoint, username), owner-only, atomic, shared between processes.

The file name is a hash of the endpoint and username, so tokens of one account or one Sectigo
never reach a client of another, and the file holds only the two tokens and the local wall-clock
time they were received (``receivedAt``, absent from files of older versions): never the username
or the password. Writes go to a temporary file in the same directory (created 0600), are flushed,
then renamed over the old file, so a reader sees the old or the new pair, never half of one. A
lock file serialises the read-refresh-write sequence between processes.

:class:`TokenShare` is what a credential store needs of any such shared place (this file, or a
database table shared by replicas); :class:`TokenCache` is the file implementation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import filelock
import platformdirs

from sectigo_svc.sectigo.config import SectigoConfig
from sectigo_svc.sectigo.models import Tokens

APP_NAME = "sectigo-svc"
FORMAT_VERSION = 1
OWNER_ONLY = 0o600
PRIVATE_DIR = 0o700


@dataclass(frozen=True)
class CachedTokens:
    """A cached pair, the wall-clock time it was received (None if not recorded), and the
    file's modification time."""

    tokens: Tokens
    received_wall: float | None
    written_wall: float


class TokenShare(Protocol):
    """Where the processes using one account keep its current tokens and serialise renewals.

    Every method is best effort: a share that cannot be used is logged as a warning and treated
    as empty and unlocked, never raised, since each process can still log in by itself. The one
    exception is ``save``, which may raise ``OSError``.
    """

    @property
    def description(self) -> str:
        """Where the tokens are shared, for logs (no secrets)."""
        ...

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lock that makes renewals single-flight; if it cannot be had, go on without."""
        ...

    def load(self) -> CachedTokens | None:
        """The shared pair, or None when there is none that this process can use."""
        ...

    def save(self, tokens: Tokens, received_wall: float | None = None) -> None:
        """Share ``tokens``, received at local epoch time ``received_wall``."""
        ...


def account_key(endpoint: str, username: str) -> str:
    """The hex SHA-256 naming one account at one endpoint; it reveals neither."""
    return hashlib.sha256(f"{endpoint.rstrip('/')}\n{username}".encode()).hexdigest()


def default_cache_dir() -> Path:
    """The platform's per-user cache directory for the service's tokens."""
    return platformdirs.user_cache_path(APP_NAME) / "tokens"


class TokenCache:
    """Reads and writes the cached tokens of one account at one endpoint: a :class:`TokenShare`."""

    def __init__(
        self,
        directory: Path,
        endpoint: str,
        username: str,
        *,
        lock_timeout: float,
        logger: Any,
    ) -> None:
        self._key = account_key(endpoint, username)
        self._directory = directory
        self._path = directory / f"{self._key[:32]}.json"
        self._lock = filelock.FileLock(
            str(self._path) + ".lock", timeout=lock_timeout, mode=OWNER_ONLY
        )
        self._log = logger

    @classmethod
    def for_account(cls, config: SectigoConfig, username: str, logger: Any) -> TokenCache:
        """The cache of ``username`` at the configured endpoint, in the configured directory."""
        return cls(
            config.token_cache_dir or default_cache_dir(),
            config.base_url,
            username,
            lock_timeout=config.file_lock_timeout,
            logger=logger,
        )

    @property
    def path(self) -> Path:
        return self._path

    @property
    def description(self) -> str:
        return str(self._path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cross-process lock; if it cannot be had in time, go on without it.

        Going on is safe: the worst outcome of two processes renewing at once is one extra login.
        """
        try:
            self._ensure_directory()
            self._lock.acquire()
        except filelock.Timeout:
            self._log.warning("sectigo token cache lock timed out", path=str(self._lock.lock_file))
            yield
            return
        except OSError as exc:
            # An unusable cache directory must not stop logins; the cache is an optimisation.
            self._log.warning("sectigo token cache unusable", error=type(exc).__name__)
            yield
            return
        try:
            yield
        finally:
            self._lock.release()

    def load(self) -> CachedTokens | None:
        """The cached pair, or None when there is no usable cache file."""
        try:
            info = self._path.stat()
            mode = info.st_mode
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._log.warning("sectigo token cache unreadable", error=type(exc).__name__)
            return None
        if stat.S_IMODE(mode) & 0o077:
            self._log.warning(
                "sectigo token cache was readable by others; fixed", path=str(self._path)
            )
            with contextlib.suppress(OSError):
                self._path.chmod(OWNER_ONLY)
        try:
            data = json.loads(raw)
            if data.get("version") != FORMAT_VERSION or data.get("key") != self._key:
                return None
            tokens = Tokens(str(data["accessToken"]), str(data["refreshToken"]))
            received = data.get("receivedAt")
            if received is not None and (
                isinstance(received, bool) or not isinstance(received, int | float)
            ):
                raise TypeError("receivedAt")
            return CachedTokens(tokens, received, info.st_mtime)
        except (ValueError, KeyError, AttributeError, TypeError):
            self._log.warning("sectigo token cache malformed; ignored", path=str(self._path))
            return None

    def save(self, tokens: Tokens, received_wall: float | None = None) -> None:
        """Replace the cached pair atomically with an owner-only file.

        ``received_wall`` is the local epoch time the pair was received; without it, readers
        take the file's modification time (or the token's ``iat``, if earlier).
        """
        self._ensure_directory()
        data: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "key": self._key,
            "accessToken": tokens.access_token,
            "refreshToken": tokens.refresh_token,
        }
        if received_wall is not None:
            data["receivedAt"] = received_wall
        fd, temp_name = tempfile.mkstemp(prefix=".tokens-", suffix=".tmp", dir=self._directory)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), OWNER_ONLY)
                json.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            temp.replace(self._path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _ensure_directory(self) -> None:
        if not self._directory.is_dir():
            self._directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
