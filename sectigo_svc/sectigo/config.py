"""The Sectigo client's settings: one frozen object, validated when built, passed in explicitly.

Secrets are not settings: the username and password travel separately as
:class:`~sectigo_svc.sectigo.credentials.Credentials`, so a config can be logged or printed safely.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from sectigo_svc import __version__
from sectigo_svc.sectigo.errors import ConfigurationError

PRODUCTION_ENDPOINT = "https://iot.sectigo.com"


class Environment(enum.StrEnum):
    """Where the client may connect to; see :mod:`sectigo_svc.sectigo.guard`."""

    PRODUCTION = "production"
    STAGING = "staging"
    TESTING = "testing"

    @classmethod
    def parse(cls, text: str) -> Environment:
        """Read an environment name, trimmed and case-insensitive, refusing unknown ones."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(e.value for e in cls)
            raise ConfigurationError(f"environment: {text!r} is not one of {names}") from None


@dataclass(frozen=True)
class SectigoConfig:
    """How to reach Sectigo and how patiently.

    Timeouts are per HTTP attempt, ``(connect, read)``; a caller's deadline caps them further.
    ``max_attempts`` bounds retries of safe calls; ``refresh_margin`` is how long before expiry an
    access token counts as stale (capped at half the token's lifetime so short-lived tokens are
    still used). ``token_cache_dir`` None means the platform's user cache directory;
    ``token_cache`` False keeps tokens in memory only. ``trust_env`` False ignores proxy variables
    and ``~/.netrc``, so neither can reroute a paid CA account or replace the bearer token.

    After Sectigo rejects the credentials, logins are tried at most once per interval, starting
    at ``login_backoff_initial`` seconds and doubling up to ``login_backoff_max``. Sectigo counts
    as down after ``down_after`` consecutive failed attempts and as up again after ``up_after``
    consecutive successful checks; while it is down, calls are refused for ``check_interval``
    seconds at a time (then one call is let through as a check, unless ``calls_probe`` is False
    because something else calls :meth:`SectigoClient.check` regularly).
    """

    endpoint: str = PRODUCTION_ENDPOINT
    environment: Environment = Environment.PRODUCTION
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    pool_size: int = 16
    max_attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    refresh_margin: float = 60.0
    token_cache: bool = True
    token_cache_dir: Path | None = None
    file_lock_timeout: float = 10.0
    max_download_bytes: int = 64 * 1024 * 1024
    user_agent: str = f"sectigo-svc/{__version__}"
    trust_env: bool = False
    login_backoff_initial: float = 5.0
    login_backoff_max: float = 300.0
    down_after: int = 3
    up_after: int = 2
    check_interval: float = 30.0
    calls_probe: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.environment, Environment):
            raise ConfigurationError("environment: must be an Environment (use Environment.parse)")
        positive = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "backoff_initial": self.backoff_initial,
            "backoff_max": self.backoff_max,
            "file_lock_timeout": self.file_lock_timeout,
            "login_backoff_initial": self.login_backoff_initial,
            "check_interval": self.check_interval,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigurationError(f"{name}: must be a positive number of seconds")
        if self.pool_size < 1:
            raise ConfigurationError("pool_size: must be at least 1 (one per concurrent caller)")
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts: must be at least 1 (1 = no retries)")
        if self.login_backoff_max < self.login_backoff_initial:
            raise ConfigurationError("login_backoff_max: must be at least login_backoff_initial")
        if self.down_after < 1 or self.up_after < 1:
            raise ConfigurationError("down_after/up_after: must be at least 1")
        if self.max_retry_after < 0 or self.refresh_margin < 0:
            raise ConfigurationError("max_retry_after/refresh_margin: must not be negative")
        if self.max_download_bytes < 1:
            raise ConfigurationError("max_download_bytes: must be positive")
        if not self.user_agent or any(c in self.user_agent for c in "\r\n"):
            raise ConfigurationError("user_agent: must be one non-empty line")

    @property
    def base_url(self) -> str:
        """The endpoint without a trailing slash, ready for path concatenation."""
        return self.endpoint.rstrip("/")
