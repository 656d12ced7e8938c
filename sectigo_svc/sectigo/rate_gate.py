"""One rate-limit gate per transport: after a 429, no call of any kind goes out before Retry-After.

Sectigo's rate limit is per account, not per endpoint, so a 429 to one call closes the gate for
every call of every thread (RPCs, the tracker, login and refresh alike) until the wait it asked
for has passed. Before each attempt the transport passes the gate: it waits for it to open when
the caller's deadline leaves room for the wait plus a useful attempt, and otherwise raises
:class:`~sectigo_svc.sectigo.errors.Throttled` at once, without sending anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sectigo_svc.sectigo.deadline import Deadline, MonotonicClock
from sectigo_svc.sectigo.errors import Throttled
from sectigo_svc.sectigo.retry_policy import MIN_ATTEMPT_SECONDS


class RateGate:
    """Closed until a monotonic instant; thread-safe. ``clock`` and ``sleep`` must agree."""

    def __init__(
        self,
        *,
        max_wait: float,
        clock: MonotonicClock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        logger: Any,
    ) -> None:
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._log = logger
        self._lock = threading.Lock()
        self._open_at = 0.0

    def close(self, seconds: float, endpoint: str) -> None:
        """Keep every call out for ``seconds`` from now (never shortening an earlier closing)."""
        with self._lock:
            open_at = self._clock() + max(0.0, seconds)
            if open_at <= self._open_at:
                return
            self._open_at = open_at
        self._log.warning(
            "sectigo rate limit: holding every call", endpoint=endpoint, seconds=seconds
        )

    def remaining(self) -> float:
        """Seconds until the gate opens; zero when it is open."""
        with self._lock:
            return max(0.0, self._open_at - self._clock())

    def wait(self, endpoint: str, deadline: Deadline | None) -> None:
        """Return once the gate is open, or raise ``Throttled`` at once if that cannot be in time.

        The wait fits when ``wait + MIN_ATTEMPT_SECONDS <= deadline.remaining()`` and it is no
        longer than ``max_wait`` (the client's ``max_retry_after``).
        """
        while (wait := self.remaining()) > 0:
            fits = wait <= self._max_wait
            if deadline is not None:
                fits = fits and wait + MIN_ATTEMPT_SECONDS <= deadline.remaining()
            if not fits:
                raise Throttled(endpoint, wait)
            self._sleep(wait)
