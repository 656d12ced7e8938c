"""Who gets an RPC thread: stream slots shared fairly between callers, and a cap on calls that wait
on Sectigo, so that reads served from the store always find a thread.

With the synchronous server every RPC holds a thread of the pool for as long as it runs. Three
kinds of RPC compete for the pool:

- server streams (Watch) hold a thread for as long as they are open: at most ``streams`` of them
  run at once, and one caller identity at most ``streams_per_identity``, so that one caller
  cannot take every slot from the others;
- calls that may wait on Sectigo (see ``sectigo_methods``) hold a thread for as long as Sectigo
  takes: at most ``sectigo_calls`` run at once;
- the rest (reads of the store) get whatever is left, which the limits keep above zero.

A call beyond a limit is refused at once, without waiting for a slot, with a time to come back:
RESOURCE_EXHAUSTED for streams (a quota of the caller), UNAVAILABLE for Sectigo calls (the same
answer as a Sectigo that is too slow; safe to retry, as nothing was done).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from sectigo_svc.domain.errors import ResourceExhausted, Unavailable

# When a refused stream should try again: slots free up only as other watches end.
STREAM_RETRY_SECONDS = 5.0
# When a refused Sectigo call should try again.
SECTIGO_RETRY_SECONDS = 1.0


class StreamRefused(ResourceExhausted):
    """Every stream slot, or the caller's share of them, is taken; ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: float = STREAM_RETRY_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """How many RPCs of each kind may hold a thread at once (each at least 1)."""

    streams: int
    streams_per_identity: int
    sectigo_calls: int

    def __post_init__(self) -> None:
        if min(self.streams, self.streams_per_identity, self.sectigo_calls) < 1:
            raise ValueError(f"every limit must be at least 1: {self}")

    @classmethod
    def for_workers(
        cls, workers: int, streams: int = 0, per_identity: int = 0, sectigo_calls: int = 0
    ) -> Limits:
        """The limits for a pool of ``workers`` threads; a 0 takes the default:

        - streams: half the workers (at least 1);
        - per identity: a quarter of the streams, but at least 2 (a caller that reconnects may
          hold its old stream until the server notices it is gone) and at most all of them;
        - Sectigo calls: a quarter of the workers (at least 1).

        So by default a quarter of the pool is always left for store reads.
        """
        streams = streams or max(1, workers // 2)
        per_identity = per_identity or min(streams, max(2, streams // 4))
        sectigo_calls = sectigo_calls or max(1, workers // 4)
        return cls(streams, per_identity, sectigo_calls)


class Admission:
    """Hands out the slots of :class:`Limits`; safe to use from every RPC thread."""

    def __init__(self, limits: Limits, sectigo_methods: Collection[str]) -> None:
        self.limits = limits
        self._sectigo_methods = frozenset(sectigo_methods)
        self._lock = threading.Lock()
        self._streams: Counter[str] = Counter()
        self._sectigo = 0

    @contextlib.contextmanager
    def stream(self, identity: str) -> Iterator[None]:
        """Hold a stream slot for ``identity`` while the block runs; :class:`StreamRefused` when
        all are taken or ``identity`` holds its share."""
        with self._lock:
            if self._streams.total() >= self.limits.streams:
                raise StreamRefused(
                    f"{self.limits.streams} streams are open already; retry later, or poll "
                    "GetCertificateRequest instead of watching"
                )
            if self._streams[identity] >= self.limits.streams_per_identity:
                raise StreamRefused(
                    f"this identity has {self.limits.streams_per_identity} streams open already, "
                    "its share; close one, retry later, or poll GetCertificateRequest instead"
                )
            self._streams[identity] += 1
        try:
            yield
        finally:
            with self._lock:
                self._streams[identity] -= 1
                if not self._streams[identity]:
                    del self._streams[identity]

    @contextlib.contextmanager
    def call(self, method: str) -> Iterator[None]:
        """Hold a Sectigo slot while the block runs if ``method`` may wait on Sectigo; any other
        method passes freely. :class:`Unavailable` (with a retry time) when all are taken."""
        if method not in self._sectigo_methods:
            yield
            return
        with self._lock:
            if self._sectigo >= self.limits.sectigo_calls:
                raise Unavailable(
                    f"{self.limits.sectigo_calls} calls are waiting on Sectigo already; retry "
                    "later (reads of requests are not affected)",
                    retry_after=SECTIGO_RETRY_SECONDS,
                )
            self._sectigo += 1
        try:
            yield
        finally:
            with self._lock:
                self._sectigo -= 1
