"""Wakes watchers of a request the moment it changes in this process.

Watchers also re-read the store on a short timeout, so changes made by another replica reach them
too, only later; the notifier makes the common, single-process case immediate.
"""

from __future__ import annotations

import threading
from collections import Counter


class Notifier:
    """A change counter per request key, and a way to wait for it to move."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generations: Counter[tuple[str, str]] = Counter()

    def generation(self, key: tuple[str, str]) -> int:
        with self._changed:
            return self._generations[key]

    def changed(self, key: tuple[str, str], final: bool = False) -> None:
        """Wake the key's watchers; ``final`` (a terminal state) also forgets the key, so the
        counters do not grow with every request ever made."""
        with self._changed:
            self._generations[key] += 1
            self._changed.notify_all()
            if final:
                del self._generations[key]

    def wait(self, key: tuple[str, str], seen: int, timeout: float) -> bool:
        """Wait until the key's generation moves from ``seen``; False when the timeout ran out."""
        with self._changed:
            return self._changed.wait_for(lambda: self._generations[key] != seen, timeout)
