"""The time replicas agree on: this process's clock corrected to the store's.

Every deadline another replica acts on (a quarantine window after a send, a request's age for
``give_up_after``) is written and read on this clock. On PostgreSQL that is the database server's
clock, measured as an offset from this process's wall clock (half the round trip either side);
on SQLite, where one process owns the store, the offset is zero by definition.

A replica whose wall clock is more than ``max_skew`` away from the store's is *skewed*: it still
steps the requests it holds (on the corrected clock), but it logs the skew, reports it, and takes
no work over from other replicas while it lasts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import structlog

from sectigo_svc.store.base import RequestStore, StoreError

SKEW_WARNING_EVERY = 60.0  # seconds between repeated warnings while a skew lasts


class StoreClock:
    """``now()`` on the store's clock; :meth:`measure` refreshes the offset (the lease keeper
    calls it every round). ``on_offset(seconds)`` reports each measurement."""

    def __init__(
        self,
        store: RequestStore,
        max_skew: float,
        on_offset: Callable[[float], None] = lambda offset: None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._max_skew = max_skew
        self._on_offset = on_offset
        self._wall = wall
        self._lock = threading.Lock()
        self._offset = 0.0
        self._skewed = False
        self._last_warning = float("-inf")
        self._measured = False
        self._log = structlog.get_logger("sectigo_svc.clock")

    def now(self) -> dt.datetime:
        with self._lock:
            offset = self._offset
        return dt.datetime.fromtimestamp(self._wall() + offset, dt.UTC)

    @property
    def offset(self) -> float:
        """Seconds to add to this process's wall clock to read the store's."""
        with self._lock:
            return self._offset

    @property
    def skewed(self) -> bool:
        """Whether the last measurement found this clock more than ``max_skew`` off."""
        with self._lock:
            return self._skewed

    def measure(self) -> float | None:
        """Read the store's clock once; returns the new offset, or None when the store did not
        answer (the last offset stays)."""
        before = self._wall()
        try:
            theirs = self._store.now().timestamp()
        except StoreError as exc:
            self._log.warning("store clock not read", cause=str(exc))
            return None
        after = self._wall()
        offset = theirs - (before + after) / 2
        skewed = abs(offset) > self._max_skew
        with self._lock:
            self._offset = offset
            was, self._skewed = self._skewed, skewed
        self._on_offset(offset)
        if not self._measured:
            self._measured = True
            self._log.info("store clock measured", offset_seconds=round(offset, 3))
        if skewed and (not was or time.monotonic() - self._last_warning >= SKEW_WARNING_EVERY):
            self._last_warning = time.monotonic()
            self._log.warning(
                "clock skew: this replica's clock is off the store's; taking no work over",
                offset_seconds=round(offset, 3),
                max_skew_seconds=self._max_skew,
            )
        elif was and not skewed:
            self._log.info("clock skew over", offset_seconds=round(offset, 3))
        return offset
