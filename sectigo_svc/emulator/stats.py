"""Counters that let tests observe what reached the emulator (logins, creates, faults...)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any


class Stats:
    """Thread-safe request, response, login and fault counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._responses: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self._events: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()

    def request(self, route: str) -> None:
        with self._lock:
            self._requests[route] += 1

    def response(self, route: str, status: int) -> None:
        with self._lock:
            self._responses[route][status] += 1

    def event(self, name: str) -> None:
        with self._lock:
            self._events[name] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "responses": {
                    route: {str(status): n for status, n in counts.items()}
                    for route, counts in self._responses.items()
                },
                "logins": self._events["logins"],
                "login_failures": self._events["login_failures"],
                "refreshes": self._events["refreshes"],
                "batches_created": self._events["batches_created"],
                "faults_applied": dict(self._faults),
            }
