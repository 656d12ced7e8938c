"""When a failed Sectigo call is tried again, and after how long.

One predicate, :func:`should_retry`, decides for every call:

- a request that provably never left (connection refused, name resolution failure, connect
  timeout) is retried whatever it was going to do;
- a safe call (every read, login, refresh, find) is also retried after a timeout or a connection
  lost after sending, a 429, or a 5xx other than 501;
- a mutating call (create, upload, revoke) is not: the transport raises ``OutcomeUnknown`` for it.

Waits are exponential with jitter, or exactly what ``Retry-After`` asked for; retrying stops after
``max_attempts``, when the server asks for a wait longer than ``max_retry_after``, or when the wait
would run past the caller's deadline. The original error then surfaces unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
import urllib3.exceptions
from tenacity import RetryCallState

from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.endpoints import Endpoint
from sectigo_svc.sectigo.errors import (
    ConnectionFailed,
    RateLimited,
    SectigoHTTPError,
    ServerError,
)

NOT_IMPLEMENTED = 501
# An attempt started with less time than this left would only time out: give up instead.
MIN_ATTEMPT_SECONDS = 0.05


def connection_failure(exc: requests.RequestException, endpoint: Endpoint) -> ConnectionFailed:
    """Describe a transport exception, deciding whether the request may have left this process."""
    return ConnectionFailed(
        endpoint.name, endpoint.method, type(exc).__name__, sent=not _never_sent(exc)
    )


def _never_sent(exc: requests.RequestException) -> bool:
    """True only when no byte of the request can have reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return False
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = exc.args[0]
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


def should_retry(endpoint: Endpoint, exc: BaseException) -> bool:
    """The retry predicate: may ``exc``, raised by a call of ``endpoint``, be tried again?"""
    if isinstance(exc, ConnectionFailed):
        return not exc.sent or not endpoint.mutating
    if endpoint.mutating:
        return False
    if isinstance(exc, RateLimited):
        return True
    return isinstance(exc, ServerError) and exc.status != NOT_IMPLEMENTED


def server_wait(exc: BaseException | None) -> float | None:
    """The wait the server asked for with Retry-After, if the error carries one."""
    if isinstance(exc, SectigoHTTPError):
        return exc.retry_after
    return None


@dataclass(frozen=True)
class Backoff:
    """Tenacity ``wait``: Retry-After when given, else exponential backoff with equal jitter."""

    initial: float
    maximum: float
    rng: Callable[[], float] = field(default=random.random, repr=False)

    def __call__(self, state: RetryCallState) -> float:
        asked = server_wait(state.outcome.exception() if state.outcome is not None else None)
        if asked is not None:
            return asked
        ceiling = min(self.maximum, self.initial * 2.0 ** (state.attempt_number - 1))
        return ceiling / 2 + self.rng() * ceiling / 2


@dataclass(frozen=True)
class GiveUp:
    """Tenacity ``stop``: out of attempts, asked to wait too long, or past the deadline."""

    max_attempts: int
    max_retry_after: float
    deadline: Deadline | None

    def __call__(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.max_attempts:
            return True
        if state.upcoming_sleep > self.max_retry_after:
            return True
        if self.deadline is None:
            return False
        return self.deadline.remaining() <= state.upcoming_sleep + MIN_ATTEMPT_SECONDS
