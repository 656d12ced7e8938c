"""Who gets an RPC thread: stream slots shared fairly between callers, and a pool of its own for
calls that wait on Sectigo, so that reads served from the store always find a thread.

With the synchronous server every RPC holds a thread for as long as it runs. Three kinds of RPC
compete:

- server streams (Watch) hold a thread of the server's pool for as long as they are open: at
  most ``streams`` run at once, and one caller identity at most ``streams_per_identity``, so that
  one caller cannot take every slot from the others; more are refused with RESOURCE_EXHAUSTED;
- calls that may wait on Sectigo (``sectigo_methods``) run on a pool of their own,
  ``sectigo_calls`` threads, so however slow Sectigo is they never hold a thread of the server's
  pool. A burst of quick calls queues there for a moment; a call that would wait for a thread
  longer than :data:`QUEUE_SECONDS` (every thread is held by a call running longer than that, or
  it has waited that long already) is refused at once with UNAVAILABLE and a time to come back:
  nothing was done, so retrying is safe;
- the rest (reads of the store) run on the server's pool, of which streams leave the rest.

The Sectigo pool is handed to grpcio through ``experimental_thread_pool`` on the handler, the
hook grpcio's own health servicer uses for the same purpose.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sectigo_svc.domain.errors import ResourceExhausted, Unavailable

# When a refused stream should try again: slots free up only as other watches end.
STREAM_RETRY_SECONDS = 5.0
# Longest wait for a Sectigo thread before a call is refused, and when it should try again.
QUEUE_SECONDS = 1.0
SECTIGO_RETRY_SECONDS = 1.0

P = ParamSpec("P")
T = TypeVar("T")


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
        """The limits beside a server pool of ``workers`` threads; a 0 takes the default:

        - streams: half the workers (at least 1), so the other half serves reads;
        - per identity: a quarter of the streams, but at least 2 (a caller that reconnects may
          hold its old stream until the server notices it is gone) and at most all of them;
        - Sectigo calls: half the workers (at least 1), on their own pool.
        """
        streams = streams or max(1, workers // 2)
        per_identity = per_identity or min(streams, max(2, streams // 4))
        sectigo_calls = sectigo_calls or max(1, workers // 2)
        return cls(streams, per_identity, sectigo_calls)


class SectigoPool(ThreadPoolExecutor):
    """A thread pool that knows how long its running tasks have been running."""

    def __init__(self, workers: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="rpc-sectigo")
        self._workers = workers
        self._clock = clock
        self._lock = threading.Lock()
        self._tickets = itertools.count()
        self._running: dict[int, float] = {}

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        ticket = next(self._tickets)

        def run() -> T:
            with self._lock:
                self._running[ticket] = self._clock()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    del self._running[ticket]

        return super().submit(run)

    def held_longer_than(self, seconds: float) -> bool:
        """Whether every thread is running a task that started more than ``seconds`` ago."""
        now = self._clock()
        with self._lock:
            starts = list(self._running.values())
        return len(starts) >= self._workers and now - max(starts) > seconds


@dataclass(frozen=True)
class Turn:
    """One call's place: the ``pool`` it runs on (None: the server's), when it ``arrived``, and
    whether it was ``refused`` on arrival."""

    method: str
    arrived: float
    pool: ThreadPoolExecutor | None = None
    refused: bool = False


class _OnPool:
    """A handler behavior that grpcio runs on ``experimental_thread_pool``."""

    def __init__(self, behavior: Callable[..., Any], pool: ThreadPoolExecutor) -> None:
        self._behavior = behavior
        self.experimental_thread_pool = pool

    def __call__(self, *args: Any) -> Any:
        return self._behavior(*args)


class Admission:
    """Hands out stream slots and Sectigo turns of :class:`Limits`; thread-safe."""

    def __init__(
        self,
        limits: Limits,
        sectigo_methods: Collection[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._sectigo_methods = frozenset(sectigo_methods)
        self._clock = clock
        self._pool = SectigoPool(limits.sectigo_calls, clock)
        self._lock = threading.Lock()
        self._streams: Counter[str] = Counter()

    def arrive(self, method: str) -> Turn:
        """Place a call as it arrives (cheap: grpcio's polling thread calls this)."""
        now = self._clock()
        if method not in self._sectigo_methods:
            return Turn(method, now)
        if self._pool.held_longer_than(QUEUE_SECONDS):
            return Turn(method, now, refused=True)  # refused on the server's pool, at once
        return Turn(method, now, self._pool)

    def placed(self, behavior: Callable[..., Any], turn: Turn) -> Callable[..., Any]:
        """``behavior`` as grpcio should run it for ``turn``: on its pool."""
        return behavior if turn.pool is None else _OnPool(behavior, turn.pool)

    def begin(self, turn: Turn) -> None:
        """Called as the call starts running: :class:`Unavailable` (with a retry time) when it
        was refused on arrival or waited too long for a Sectigo thread."""
        if turn.method not in self._sectigo_methods:
            return
        waited = self._clock() - turn.arrived
        if turn.refused or waited > QUEUE_SECONDS:
            raise Unavailable(
                f"all {self.limits.sectigo_calls} threads for calls that wait on Sectigo are "
                "taken by slow calls; retry later (reads of requests are not affected)",
                retry_after=SECTIGO_RETRY_SECONDS,
            )

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

    def close(self) -> None:
        """Let the Sectigo pool's threads end once their calls are done."""
        self._pool.shutdown(wait=False)
