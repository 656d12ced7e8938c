"""The token store every thread of a process shares, for one account at one endpoint.

:class:`CredentialStore` hands out access tokens. While a token is fresh, that is a read of one
attribute. When it nears expiry (stale), one thread refreshes it while the others keep using the
still-valid token; when it has expired or Sectigo rejected it, callers wait on one lock and a
double check makes exactly one of them refresh or, if refresh fails, log in. The same sequence
runs under the lock of a :class:`~sectigo_svc.sectigo.token_cache.TokenShare` (the token cache
file, or a table replicas share), so processes sharing an account share renewals: one renews, the
others adopt its tokens, and a token Sectigo just rejected is not adopted back.
Token expiry is judged on the local monotonic clock from when the pair was received (see
:mod:`~sectigo_svc.sectigo.tokens`), so a wall clock that disagrees with Sectigo's changes nothing.

When Sectigo rejects the credentials at login (401, 403, or 307 for TLS client authentication),
logins are tried at most once per interval, the interval doubling from ``login_backoff[0]`` up to
``login_backoff[1]``; in between, every thread that needs a login gets
:class:`~sectigo_svc.sectigo.errors.CredentialsRejected` at once. A password that came from a file
is read again before each login attempt; once its content differs from the rejected one, the
back-off is skipped. A successful login ends the back-off. Neither tokens nor the password appear
in logs or errors.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from sectigo_svc.sectigo.availability import Availability
from sectigo_svc.sectigo.credentials import Credentials, Secret
from sectigo_svc.sectigo.deadline import Deadline, MonotonicClock
from sectigo_svc.sectigo.errors import (
    CredentialsError,
    CredentialsRejected,
    DeadlineExceeded,
    InvalidCredentials,
    InvalidTokens,
    NotAuthorized,
    SectigoError,
    TLSAuthRequired,
)
from sectigo_svc.sectigo.models import Tokens
from sectigo_svc.sectigo.observer import NoObserver, Observer
from sectigo_svc.sectigo.token_cache import TokenCache, TokenShare
from sectigo_svc.sectigo.tokens import Clock, TokenSet, TokenState

# After a failed renewal of a stale (still valid) token, wait this long before trying again.
STALE_RETRY_SECONDS = 5.0
# While logins are held back, the password file is looked at no more often than this.
PASSWORD_FILE_CHECK_SECONDS = 1.0
# Login replies that say the credentials themselves are refused.
REJECTIONS = (InvalidCredentials, NotAuthorized, TLSAuthRequired)


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
    """Thread-safe source of access tokens for one account at one endpoint.

    ``cache`` is where renewals are shared with other processes (None: this process only).
    ``clock`` is the wall clock (epoch seconds), used only for what outlives the process (the
    cache) and for display; ``monotonic`` times token lifetimes and the login back-off.
    """

    def __init__(
        self,
        credentials: Credentials,
        authenticator: Authenticator,
        *,
        refresh_margin: float = 60.0,
        login_backoff: tuple[float, float] = (5.0, 300.0),
        cache: TokenShare | None = None,
        clock: Clock = time.time,
        monotonic: MonotonicClock = time.monotonic,
        logger: Any = None,
        observer: Observer | None = None,
        availability: Availability | None = None,
    ) -> None:
        self._credentials = credentials
        self._observer: Observer = observer if observer is not None else NoObserver()
        self._auth = authenticator
        self._margin = refresh_margin
        self._backoff_initial, self._backoff_max = login_backoff
        self._cache = cache
        self._clock = clock
        self._mono = monotonic
        self._log = logger if logger is not None else structlog.get_logger("sectigo_svc.sectigo")
        self._availability = availability
        self._lock = threading.Lock()
        self._current: TokenSet | None = None
        self._rejected: str | None = None
        self._stale_retry_at = 0.0
        # The login back-off: 0 while Sectigo has not rejected the credentials.
        self._backoff = 0.0
        self._login_not_before = 0.0
        self._rejected_password: Secret | None = None
        self._file_checked_at = float("-inf")

    def __repr__(self) -> str:
        return f"CredentialStore(username={self._credentials.username!r})"

    @property
    def cache_path(self) -> Path | None:
        """The token cache file, if the tokens are shared through one."""
        return self._cache.path if isinstance(self._cache, TokenCache) else None

    @property
    def token_share(self) -> TokenShare | None:
        """Where renewals are shared with other processes (None: nowhere)."""
        return self._cache

    def access_token(self, deadline: Deadline | None = None) -> str:
        """A usable access token; renews first when it is stale, expired or was rejected.

        Waiting for another thread's renewal is bounded by ``deadline`` too. While logins are
        held back after a rejection, raises ``CredentialsRejected`` at once when a login would
        be needed.
        """
        current, now = self._current, self._mono()
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
        held = self._held_back()
        if held is not None:
            raise held
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
        """Log in now, whatever the state of the current tokens (the back-off still applies)."""
        with self._lock, self._cache_lock():
            return self._status(self._login(deadline))

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
            if self._current is not None and self._state(self._current, self._mono()) in usable:
                return self._current.tokens.access_token
            self._adopt_cached()
            current = self._current
            if current is not None and self._state(current, self._mono()) in usable:
                return current.tokens.access_token
            try:
                return self._renew_remote(deadline).tokens.access_token
            except SectigoError as exc:
                if fallback is None:
                    raise
                self._stale_retry_at = self._mono() + STALE_RETRY_SECONDS
                self._log.warning(
                    "sectigo token renewal failed; token still valid", error=type(exc).__name__
                )
                return fallback.tokens.access_token

    def _renew_remote(self, deadline: Deadline | None) -> TokenSet:
        """Refresh if the refresh token allows it, else (or if refresh fails) log in."""
        current = self._current
        if current is not None and current.refreshable(self._mono()):
            try:
                tokens = self._auth.refresh(current.tokens.refresh_token, deadline)
                if not tokens.refresh_token:
                    tokens = Tokens(tokens.access_token, current.tokens.refresh_token)
                return self._install(tokens, "refresh")
            except SectigoError as exc:
                self._log.warning(
                    "sectigo token refresh failed; logging in", error=type(exc).__name__
                )
        return self._login(deadline)

    def _login(self, deadline: Deadline | None) -> TokenSet:
        """One login attempt, unless held back; a rejection starts or lengthens the back-off."""
        held = self._held_back()
        if held is not None:
            raise held
        self._reread_password()
        credentials = self._credentials
        try:
            tokens = self._auth.login(credentials, deadline)
        except REJECTIONS as exc:
            self._reject(credentials, exc)
            raise
        installed = self._install(tokens, "login")
        self._accept()
        return installed

    def _held_back(self) -> CredentialsRejected | None:
        """The error for a login now, while the back-off lasts and the password is unchanged."""
        if not self._backoff:
            return None
        remaining = self._login_not_before - self._mono()
        if remaining <= 0 or self._password_changed():
            return None
        return CredentialsRejected("login", remaining, self._credentials.username)

    def _password_changed(self) -> bool:
        """Whether the password file now holds another password than the rejected one (the
        file is read at most once per ``PASSWORD_FILE_CHECK_SECONDS``)."""
        if self._credentials.password_file is None:
            return False
        now = self._mono()
        if now - self._file_checked_at >= PASSWORD_FILE_CHECK_SECONDS:
            self._file_checked_at = now
            self._reread_password()
        return self._credentials.password != self._rejected_password

    def _reread_password(self) -> None:
        try:
            self._credentials = self._credentials.reread()
        except CredentialsError as exc:
            self._log.warning(
                "sectigo password file unusable; keeping the password", error=str(exc)
            )

    def _reject(self, credentials: Credentials, exc: SectigoError) -> None:
        self._backoff = min(self._backoff * 2, self._backoff_max) or self._backoff_initial
        self._login_not_before = self._mono() + self._backoff
        self._rejected_password = credentials.password
        self._log.warning(
            "sectigo rejected the credentials; logins held back",
            username=credentials.username,
            error=type(exc).__name__,
            next_login_in=self._backoff,
        )
        if self._availability is not None:
            self._availability.credentials_rejected(
                f"Sectigo rejected the credentials of user {credentials.username!r} "
                f"({type(exc).__name__})"
            )

    def _accept(self) -> None:
        if self._backoff:
            self._log.info("sectigo accepted the credentials again")
        self._backoff = 0.0
        self._rejected_password = None
        if self._availability is not None:
            self._availability.credentials_accepted()

    def _install(self, tokens: Tokens, how: str) -> TokenSet:
        received = TokenSet.parse(tokens, self._mono(), self._clock())
        changed = self._current is None or self._current.tokens != tokens
        self._current = received
        self._rejected = None
        self._stale_retry_at = 0.0
        self._log.info("sectigo tokens renewed", how=how, expires_at=int(received.expires_at))
        self._observer.tokens_renewed(how)
        if changed and self._cache is not None:
            try:
                self._cache.save(tokens, received.received_wall)
            except OSError as exc:
                self._log.warning(
                    "sectigo token cache not written",
                    share=self._cache.description,
                    error=type(exc).__name__,
                )
        return received

    def _adopt_cached(self) -> None:
        """Take the cached pair if another process (or an earlier run) renewed it."""
        if self._cache is None:
            return
        cached = self._cache.load()
        if cached is None or cached.tokens.access_token == self._rejected:
            return
        current = self._current
        if current is not None and cached.tokens == current.tokens:
            return
        try:
            candidate = TokenSet.adopt(
                cached.tokens,
                cached.received_wall,
                cached.written_wall,
                now=self._mono(),
                wall_now=self._clock(),
            )
        except InvalidTokens as exc:
            self._log.warning("sectigo cached tokens unusable; ignored", error=str(exc))
            return
        if current is None or candidate.expires >= current.expires:
            self._current = candidate

    def _cache_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._cache.locked() if self._cache is not None else contextlib.nullcontext()

    def _status(self, current: TokenSet) -> TokenStatus:
        return TokenStatus(
            state=self._state(current, self._mono()),
            subject=current.subject,
            expires_at=current.expires_at,
            refresh_expires_at=current.refresh_expires_at,
        )
