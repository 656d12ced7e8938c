"""Runs a step function for keys when they fall due, on a few worker threads.

A key is worked on by one thread at a time; waking a key that is being worked on makes it run
again as soon as that step ends, so no change is missed and no key runs twice at once.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

Key = tuple[str, str]
Step = Callable[[Key], float | None]


class Scheduler:
    """``step(key)`` returns the delay before the key's next step, or None when it is done."""

    def __init__(self, step: Step, workers: int, name: str) -> None:
        self._step = step
        self._workers = workers
        self._name = name
        self._wakeup = threading.Condition()
        self._queue: list[tuple[float, int, Key]] = []
        self._due: dict[Key, float] = {}
        self._running: set[Key] = set()
        self._again: set[Key] = set()
        self._order = itertools.count()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"{self._name}-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> bool:
        """Start no new step; wait up to ``timeout`` seconds for the steps under way. Returns
        whether all of them ended."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        ended = not any(thread.is_alive() for thread in self._threads)
        self._threads.clear()
        return ended

    def wake(self, key: Key, delay: float = 0.0) -> None:
        """Run the key's step after ``delay`` seconds (sooner if it is already due sooner)."""
        due = time.monotonic() + delay
        with self._wakeup:
            if key in self._running:
                self._again.add(key)
                return
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            heapq.heappush(self._queue, (due, next(self._order), key))
            self._wakeup.notify()

    def _next(self) -> Key | None:
        with self._wakeup:
            while not self._stopping:
                now = time.monotonic()
                if self._queue and self._queue[0][0] <= now:
                    due, _, key = heapq.heappop(self._queue)
                    if self._due.get(key) != due:
                        continue
                    del self._due[key]
                    self._running.add(key)
                    return key
                wait = self._queue[0][0] - now if self._queue else None
                self._wakeup.wait(wait)
            return None

    def _work(self) -> None:
        while (key := self._next()) is not None:
            try:
                delay = self._step(key)
            finally:
                with self._wakeup:
                    self._running.discard(key)
                    again = key in self._again
                    self._again.discard(key)
            if again:
                self.wake(key)
            elif delay is not None:
                self.wake(key, delay)
