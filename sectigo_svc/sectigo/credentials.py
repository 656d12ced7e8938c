"""The Sectigo account's credentials and the token store every thread of a process shares.

:class:`CredentialStore` hands out access tokens. While a token is fresh, that is a read of one
attribute. When it nears expiry (stale), one thread refreshes it while the others keep using the
still-valid token; when it has expired or Sectigo rejected it, callers wait on one lock and a
double check makes exactly one of them refresh or, if refresh fails, log in. The same sequence
runs under a file lock against the token cache, so processes sharing an account share renewals.
The username and password are held as :class:`Secret` and never appear in ``repr``, logs or errors.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import structlog

from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.errors import (
    CredentialsError,
    DeadlineExceeded,
    InvalidTokens,
    SectigoError,
)
from sectigo_svc.sectigo.models import Tokens
from sectigo_svc.sectigo.observer import NoObserver, Observer
from sectigo_svc.sectigo.token_cache import TokenCache
from sectigo_svc.sectigo.tokens import Clock, TokenSet, TokenState

USERNAME_ENV = "SECTIGO_USERNAME"
PASSWORD_ENV = "SECTIGO_PASSWORD"  # noqa: S105 (a variable name)
PASSWORD_FILE_ENV = "SECTIGO_PASSWORD_FILE"  # noqa: S105 (a variable name)
# After a failed renewal of a stale (still valid) token, wait this long before trying again.
STALE_RETRY_SECONDS = 5.0


class Secret:
    """A string that does not show itself: ``repr``/``str`` print a mask, pickling is refused."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Credentials:
    """A Sectigo username and password (the password always as a :class:`Secret`)."""

    username: str
    password: Secret

    @classmethod
    def load(
        cls,
        username: str | None = None,
        password: str | Secret | None = None,
        *,
        password_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Credentials:
        """Take the pair from arguments, then ``SECTIGO_USERNAME``/``SECTIGO_PASSWORD``.

        The password may also come from a secret file (``password_file`` or the file named by
        ``SECTIGO_PASSWORD_FILE``) holding just the password; one trailing newline is dropped.
        Explicit arguments beat the environment; both halves are required.
        """
        env = os.environ if environ is None else environ
        user = username or env.get(USERNAME_ENV) or ""
        secret: Secret | None
        if isinstance(password, Secret):
            secret = password if password else None
        elif password:
            secret = Secret(password)
        elif password_file is not None:
            secret = _read_secret_file(password_file)
        elif env.get(PASSWORD_ENV):
            secret = Secret(env[PASSWORD_ENV])
        elif env.get(PASSWORD_FILE_ENV):
            secret = _read_secret_file(Path(env[PASSWORD_FILE_ENV]))
        else:
            secret = None
        if not user and secret is None:
            raise CredentialsError(
                f"no Sectigo credentials: set {USERNAME_ENV} and {PASSWORD_ENV} "
                f"(or {PASSWORD_FILE_ENV})"
            )
        if not user or secret is None:
            missing = "username" if not user else "password"
            raise CredentialsError(
                f"Sectigo credentials need both username and password ({missing} missing)"
            )
        return cls(user, secret)


def _read_secret_file(path: Path) -> Secret:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(
            f"password file {path}: cannot read it ({type(exc).__name__})"
        ) from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value:
        raise CredentialsError(f"password file {path}: is empty")
    return Secret(value)


class Authenticator(Protocol):
    """The two calls that produce tokens (implemented over HTTP by ``AuthApi``)."""

    def login(self, credentials: Credentials, deadline: Deadline | None) -> Tokens: ...

    def refresh(self, refresh_token: str, deadline: Deadline | None) -> Tokens: ...


@dataclass(frozen=True)
class TokenStatus:
    """What is known about the current tokens, without the tokens themselves."""

    state: TokenState
    subject: str
    expires_at: float
    refresh_expires_at: float


class CredentialStore:
    """Thread-safe source of access tokens for one account at one endpoint."""

    def __init__(
        self,
        credentials: Credentials,
        authenticator: Authenticator,
        *,
        refresh_margin: float = 60.0,
        cache: TokenCache | None = None,
        clock: Clock = time.time,
        logger: Any = None,
        observer: Observer | None = None,
    ) -> None:
        self._credentials = credentials
        self._observer: Observer = observer if observer is not None else NoObserver()
        self._auth = authenticator
        self._margin = refresh_margin
        self._cache = cache
        self._clock = clock
        self._log = logger if logger is not None else structlog.get_logger("sectigo_svc.sectigo")
        self._lock = threading.Lock()
        self._current: TokenSet | None = None
        self._rejected: str | None = None
        self._stale_retry_at = 0.0

    def __repr__(self) -> str:
        return f"CredentialStore(username={self._credentials.username!r})"

    @property
    def cache_path(self) -> Path | None:
        return self._cache.path if self._cache is not None else None

    def access_token(self, deadline: Deadline | None = None) -> str:
        """A usable access token; renews first when it is stale, expired or was rejected.

        Waiting for another thread's renewal is bounded by ``deadline`` too.
        """
        current, now = self._current, self._clock()
        state = self._state(current, now)
        if current is not None and state is TokenState.FRESH:
            return current.tokens.access_token
        if current is not None and state is TokenState.STALE:
            if now < self._stale_retry_at or not self._lock.acquire(blocking=False):
                return current.tokens.access_token
            try:
                return self._renew(deadline, stale_ok=False, fallback=current)
            finally:
                self._lock.release()
        wait = -1.0 if deadline is None else max(0.0, deadline.remaining())
        if not self._lock.acquire(timeout=wait):
            raise DeadlineExceeded("login")
        try:
            return self._renew(deadline, stale_ok=True, fallback=None)
        finally:
            self._lock.release()

    def invalidate(self, token: str) -> None:
        """Mark ``token`` rejected by Sectigo, if it is still the current one.

        Deliberately without the renewal lock: a thread holding it may be logging in for many
        seconds, and the caller must not wait past its deadline just to say a token is bad. One
        attribute write is atomic; a stale mark names an old token and so matches nothing.
        """
        current = self._current
        if current is not None and current.tokens.access_token == token:
            self._rejected = token
            self._log.info("sectigo access token invalidated")

    def login(self, deadline: Deadline | None = None) -> TokenStatus:
        """Log in now, whatever the state of the current tokens."""
        with self._lock, self._cache_lock():
            tokens = self._auth.login(self._credentials, deadline)
            return self._status(self._install(TokenSet.parse(tokens), "login"))

    def refresh(self, deadline: Deadline | None = None) -> TokenStatus:
        """Refresh now (logging in if the refresh token is unusable or refused)."""
        with self._lock, self._cache_lock():
            self._adopt_cached()
            return self._status(self._renew_remote(deadline))

    def status(self) -> TokenStatus | None:
        """The current tokens' state (reading the cache if none are held), without network."""
        with self._lock, self._cache_lock():
            if self._current is None:
                self._adopt_cached()
            return self._status(self._current) if self._current is not None else None

    def _state(self, current: TokenSet | None, now: float) -> TokenState:
        if current is None or current.tokens.access_token == self._rejected:
            return TokenState.EXPIRED
        return current.state(now, self._margin)

    def _renew(
        self, deadline: Deadline | None, *, stale_ok: bool, fallback: TokenSet | None
    ) -> str:
        """With the thread lock held: double-check, then adopt from the cache or renew remotely."""
        usable = (TokenState.FRESH, TokenState.STALE) if stale_ok else (TokenState.FRESH,)
        with self._cache_lock():
            if self._current is not None and self._state(self._current, self._clock()) in usable:
                return self._current.tokens.access_token
            self._adopt_cached()
            current = self._current
            if current is not None and self._state(current, self._clock()) in usable:
                return current.tokens.access_token
            try:
                return self._renew_remote(deadline).tokens.access_token
            except SectigoError as exc:
                if fallback is None:
                    raise
                self._stale_retry_at = self._clock() + STALE_RETRY_SECONDS
                self._log.warning(
                    "sectigo token renewal failed; token still valid", error=type(exc).__name__
                )
                return fallback.tokens.access_token

    def _renew_remote(self, deadline: Deadline | None) -> TokenSet:
        """Refresh if the refresh token allows it, else (or if refresh fails) log in."""
        current = self._current
        if current is not None and current.refreshable(self._clock()):
            try:
                tokens = self._auth.refresh(current.tokens.refresh_token, deadline)
                if not tokens.refresh_token:
                    tokens = Tokens(tokens.access_token, current.tokens.refresh_token)
                return self._install(TokenSet.parse(tokens), "refresh")
            except SectigoError as exc:
                self._log.warning(
                    "sectigo token refresh failed; logging in", error=type(exc).__name__
                )
        return self._install(TokenSet.parse(self._auth.login(self._credentials, deadline)), "login")

    def _install(self, tokens: TokenSet, how: str) -> TokenSet:
        changed = self._current is None or self._current.tokens != tokens.tokens
        self._current = tokens
        self._rejected = None
        # A pair that is stale the moment it arrives (a lifetime shorter than the margin, or
        # whole-second claims) is used until it expires instead of being renewed on every call.
        stale_now = tokens.state(self._clock(), self._margin) is not TokenState.FRESH
        self._stale_retry_at = tokens.expires_at if stale_now else 0.0
        self._log.info("sectigo tokens renewed", how=how, expires_at=int(tokens.expires_at))
        self._observer.tokens_renewed(how)
        if changed and self._cache is not None:
            try:
                self._cache.save(tokens.tokens)
            except OSError as exc:
                self._log.warning("sectigo token cache not written", error=type(exc).__name__)
        return tokens

    def _adopt_cached(self) -> None:
        """Take the cached pair if another process (or an earlier run) renewed it."""
        if self._cache is None:
            return
        cached = self._cache.load()
        if cached is None or cached.access_token == self._rejected:
            return
        current = self._current
        if current is not None and cached == current.tokens:
            return
        try:
            candidate = TokenSet.parse(cached)
        except InvalidTokens as exc:
            self._log.warning("sectigo cached tokens unusable; ignored", error=str(exc))
            return
        if current is None or candidate.expires_at >= current.expires_at:
            self._current = candidate

    def _cache_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._cache.locked() if self._cache is not None else contextlib.nullcontext()

    def _status(self, current: TokenSet) -> TokenStatus:
        return TokenStatus(
            state=self._state(current, self._clock()),
            subject=current.subject,
            expires_at=current.expires_at,
            refresh_expires_at=current.refresh_expires_at,
        )
