"""When a failed Sectigo call is tried again, and after how long.

One predicate, :func:`should_retry`, decides for every call, and it is read from the table in
:mod:`~sectigo_svc.sectigo.answers`, so the two cannot disagree: a call is sent again within itself
when its answer is ``NOT_TAKEN`` or ``TRANSIENT`` and the outcome is one of ``RETRIED_IN_CALL``
(never sent, connect or read timeout, reset, 429, 5xx other than 501). So a request that provably
never left, or got a 429, is retried whatever it was going to do; a read is also retried after a
timeout, a connection lost after sending or a 5xx; a create, upload or revoke is not (it is in
doubt, and the transport raises ``OutcomeUnknown``).

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

from sectigo_svc.sectigo.answers import retried_in_call
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.endpoints import Endpoint
from sectigo_svc.sectigo.errors import ConnectionFailed, SectigoHTTPError

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
    return retried_in_call(endpoint, exc)


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
        return self.delay(state.attempt_number)

    def delay(self, attempt: int) -> float:
        """The jittered wait after failed attempt number ``attempt`` (from 1)."""
        ceiling = min(self.maximum, self.initial * 2.0 ** (attempt - 1))
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
