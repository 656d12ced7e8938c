"""The request journal: every API request in arrival order, with what became of it.

Tests read it to measure the gaps between a client's attempts (was ``Retry-After`` honoured?) and
to count logins per interval. It keeps the most recent ``capacity`` entries.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

DEFAULT_CAPACITY = 100_000

# What a request's entry says when no HTTP status was sent.
Outcome = int | str | None
DROPPED = "dropped"
LOST = "lost"
HANG = "hang"


@dataclass
class Entry:
    """One request. ``status`` is None until the emulator has decided the answer."""

    route: str
    method: str
    path: str
    arrived: float
    batch_name: str | None
    status: Outcome = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "route": self.route,
            "method": self.method,
            "path": self.path,
            "arrived": self.arrived,
            "status": self.status,
        }
        if self.batch_name is not None:
            data["batchName"] = self.batch_name
        return data


class Journal:
    """Thread-safe, bounded: the oldest entries go first once ``capacity`` is reached."""

    def __init__(self, clock: Callable[[], float], capacity: int = DEFAULT_CAPACITY) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._evicted = 0

    def arrive(self, route: str, method: str, path: str, batch_name: str | None) -> Entry:
        """Record a request that has just arrived; the caller sets its status with ``settle``."""
        with self._lock:
            entry = Entry(route, method, path, self._clock(), batch_name)
            if len(self._entries) == self._entries.maxlen:
                self._evicted += 1
            self._entries.append(entry)
            return entry

    def settle(self, entry: Entry, status: int | str) -> None:
        with self._lock:
            entry.status = status

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._evicted = 0

    def to_json(self, routes: Collection[str] = ()) -> dict[str, Any]:
        """``{"entries": [...], "evicted": n}``, oldest first; only ``routes`` when given."""
        with self._lock:
            return {
                "entries": [e.to_json() for e in self._entries if not routes or e.route in routes],
                "evicted": self._evicted,
            }
