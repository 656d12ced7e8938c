"""A caller's deadline: the point in time after which no Sectigo call may still be running.

A gRPC handler turns ``context.time_remaining()`` into ``Deadline.after(...)``; the transport caps
each attempt's timeouts by what remains and stops retrying when the next wait would overrun it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

MonotonicClock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    """An absolute time on a monotonic clock (``time.monotonic`` unless injected)."""

    expires_at: float
    clock: MonotonicClock = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: MonotonicClock = time.monotonic) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        """Seconds left; zero or negative once passed."""
        return self.expires_at - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0
