"""Whether Sectigo works, judged from every attempt the transport makes, and checks to see it back.

Failures are attempts without a usable answer (connection failures, timeouts, 5xx other than 501);
any other HTTP answer proves Sectigo works (2xx, 4xx, 429: it is reachable, just busy). After
``down_after`` consecutive failures the monitor turns DOWN: calls are then refused at once with
:class:`~sectigo_svc.sectigo.errors.SectigoUnavailable`, except checks
(``SectigoClient.check``) and one call let through every ``check_interval`` seconds as a check of
its own. After ``up_after`` consecutive successful checks it turns UP again. Credentials that
Sectigo rejected count as DOWN too (calls then fail at once in the credential store with
``CredentialsRejected``), until a login succeeds; so does a 429 asking every call to wait longer
than ``check_interval`` (the rate gate refuses calls meanwhile), until an answer after the wait.

Subscribers hear of every change as ``(up, cause)``; one log line is written per change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from sectigo_svc.sectigo.deadline import MonotonicClock
from sectigo_svc.sectigo.errors import SectigoUnavailable

Subscriber = Callable[[bool, str], None]


class Availability:
    """Thread-safe UP/DOWN state of Sectigo for one client."""

    def __init__(
        self,
        *,
        down_after: int = 3,
        up_after: int = 2,
        check_interval: float = 30.0,
        calls_probe: bool = True,
        clock: MonotonicClock = time.monotonic,
        logger: Any = None,
    ) -> None:
        self._down_after = down_after
        self._up_after = up_after
        self._interval = check_interval
        self._calls_probe = calls_probe
        self._clock = clock
        self._log = logger if logger is not None else structlog.get_logger("sectigo_svc.sectigo")
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._failures = 0
        self._checks_ok = 0
        self._unreachable: str | None = None
        self._rejected: str | None = None
        self._next_trial = 0.0
        self._up_cause = "no failure seen"
        self._last_answer: float | None = None
        self._throttled: str | None = None
        self._throttled_until = 0.0

    @property
    def up(self) -> bool:
        """False while Sectigo fails or rejects the credentials."""
        with self._lock:
            return self._is_up()

    @property
    def cause(self) -> str:
        """A short text without secrets saying why the state is what it is."""
        with self._lock:
            return self._current_cause()

    def quiet_for(self) -> float:
        """Seconds since Sectigo last answered usefully (infinite if it never did): a checker
        need not ask while ordinary traffic shows Sectigo working."""
        with self._lock:
            last = self._last_answer
        return float("inf") if last is None else self._clock() - last

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(up, cause)`` on every change, in the thread that caused it."""
        with self._lock:
            self._subscribers.append(callback)

    def admit(self, endpoint: str) -> bool:
        """Before a call that is not a check: raise ``SectigoUnavailable`` while DOWN.

        Returns True when the call is let through as a check instead: the first one once
        ``check_interval`` has passed since Sectigo went down or since the last such call (only
        with ``calls_probe``; without it, only explicit checks reach Sectigo while it is down).
        """
        with self._lock:
            if self._unreachable is None:
                return False
            now = self._clock()
            if not self._calls_probe:
                # Explicit checks run every interval: the next one may bring Sectigo back.
                raise SectigoUnavailable(endpoint, self._interval, self._unreachable)
            if now >= self._next_trial:
                self._next_trial = now + self._interval
                return True
            raise SectigoUnavailable(endpoint, self._next_trial - now, self._unreachable)

    def refuse_if_down(self, endpoint: str) -> None:
        """Before a retry of a call that is not a check: raise ``SectigoUnavailable`` if DOWN."""
        with self._lock:
            if self._unreachable is not None:
                wait = max(self._next_trial - self._clock(), 0.0)
                raise SectigoUnavailable(endpoint, wait, self._unreachable)

    def record(self, ok: bool, cause: str, *, check: bool) -> None:
        """One attempt's outcome: ``ok`` if Sectigo answered usefully; ``cause`` names a failure.

        A successful check counts towards UP; a failure counts towards DOWN.
        """
        with self._lock:
            before = self._is_up()
            if not ok:
                self._failures += 1
                self._checks_ok = 0
                if self._unreachable is None and self._failures >= self._down_after:
                    self._unreachable = cause
                    self._next_trial = self._clock() + self._interval
            else:
                self._failures = 0
                self._last_answer = self._clock()
                if self._throttled is not None and self._last_answer >= self._throttled_until:
                    self._throttled = None
                if self._unreachable is not None and check:
                    self._checks_ok += 1
                    if self._checks_ok >= self._up_after:
                        self._unreachable = None
                        self._checks_ok = 0
            change = self._changed(before, "checks succeeded" if ok else cause)
        self._announce(change)

    def throttled(self, seconds: float, cause: str) -> None:
        """Sectigo asked (429) that every call wait ``seconds``. A wait longer than the check
        interval counts as DOWN, until an answer after it proves Sectigo takes calls again."""
        if seconds <= self._interval:
            return
        with self._lock:
            before = self._is_up()
            self._throttled = cause
            self._throttled_until = max(self._throttled_until, self._clock() + seconds)
            change = self._changed(before, cause)
        self._announce(change)

    def credentials_rejected(self, cause: str) -> None:
        """Sectigo rejected the credentials at login: DOWN until :meth:`credentials_accepted`."""
        with self._lock:
            before = self._is_up()
            self._rejected = cause
            change = self._changed(before, cause)
        self._announce(change)

    def credentials_accepted(self) -> None:
        """A login succeeded: the credentials no longer hold Sectigo down."""
        with self._lock:
            if self._rejected is None:
                return
            before = self._is_up()
            self._rejected = None
            change = self._changed(before, "login accepted")
        self._announce(change)

    def _is_up(self) -> bool:
        return self._unreachable is None and self._rejected is None and self._throttled is None

    def _current_cause(self) -> str:
        return self._rejected or self._unreachable or self._throttled or self._up_cause

    def _changed(self, before: bool, cause: str) -> tuple[bool, str, tuple[Subscriber, ...]] | None:
        """With the lock held: the change to announce, if the state flipped."""
        up = self._is_up()
        if up == before:
            return None
        if up:
            self._up_cause = cause
        return up, self._current_cause(), tuple(self._subscribers)

    def _announce(self, change: tuple[bool, str, tuple[Subscriber, ...]] | None) -> None:
        if change is None:
            return
        up, cause, subscribers = change
        if up:
            self._log.info("sectigo available again", cause=cause)
        else:
            self._log.warning("sectigo unavailable", cause=cause)
        for callback in subscribers:
            try:
                callback(up, cause)
            except Exception as exc:
                self._log.warning("sectigo availability subscriber failed", error=repr(exc))
