"""Following one request to a terminal state, across broken streams and service restarts.

``follow`` yields each version as it is seen (``sectigo-ca watch``); ``wait`` returns the last.

The Watch stream is followed first: it reports each change at once. If it breaks (the service
restarts, a proxy drops it, which may show as any of the codes of a broken stream) or ends early,
polling Get takes over until the request is terminal or the time is up. A poll that finds the
service down (UNAVAILABLE), shedding load (RESOURCE_EXHAUSTED) or too slow (DEADLINE_EXCEEDED) is
repeated, after the server's ``retry_after`` hint if it asks for longer than the poll interval.
Any other error ends the wait at once: one about the request itself (NotFound, PermissionDenied,
...), and INTERNAL too, which polling again would only hide until the time is up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from sectigo_client.errors import (
    CertificateAuthorityError,
    DeadlineExceeded,
    ResourceExhausted,
    Unavailable,
    WaitTimeout,
)
from sectigo_client.models import CertificateRecord

Stream = Generator[CertificateRecord, None, None]
# Failures that say the service cannot answer now, nothing about the request: poll again.
_POLL_AGAIN = (Unavailable, ResourceExhausted, DeadlineExceeded)


@dataclass(frozen=True)
class Waiter:
    """How to read the request: ``watch(deadline_s)`` streams it, ``get(deadline_s)`` reads it
    once; ``call_timeout`` caps each poll, ``poll_interval`` spaces them; time is injected."""

    watch: Callable[[float], Stream]
    get: Callable[[float], CertificateRecord]
    call_timeout: float
    poll_interval: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]

    def wait(
        self,
        request_id: str,
        timeout: float,
        on_change: Callable[[CertificateRecord], None] | None = None,
    ) -> CertificateRecord:
        """The terminal record; :class:`WaitTimeout` after ``timeout`` seconds. ``on_change``
        sees every distinct version, once."""
        last: CertificateRecord | None = None
        for last in self.follow(request_id, timeout):
            if on_change is not None:
                on_change(last)
        assert last is not None  # follow ends with the terminal record, or raises
        return last

    def follow(self, request_id: str, timeout: float) -> Iterator[CertificateRecord]:
        """Every distinct version of the request, once each, the last one terminal;
        :class:`WaitTimeout` after ``timeout`` seconds."""
        deadline = self.clock() + timeout
        last: CertificateRecord | None = None

        def new(record: CertificateRecord) -> bool:
            nonlocal last
            if last is not None and _version(last) == _version(record):
                return False
            last = record
            return True

        try:
            with contextlib.closing(self.watch(timeout)) as stream:
                for record in stream:
                    if new(record):
                        yield record
                    if record.state.terminal:
                        return
        except CertificateAuthorityError as exc:
            if not (exc.transient or isinstance(exc, _POLL_AGAIN)):
                raise
        while (remaining := deadline - self.clock()) > 0:
            pause = self.poll_interval
            try:
                record = self.get(min(self.call_timeout, remaining))
            except _POLL_AGAIN as exc:
                if exc.retry_after is not None:
                    pause = max(pause, exc.retry_after)
            else:
                if new(record):
                    yield record
                if record.state.terminal:
                    return
            self.sleep(max(0.0, min(pause, deadline - self.clock())))
        raise WaitTimeout(request_id, timeout, last.state.value if last else None)


def _version(record: CertificateRecord) -> tuple[object, ...]:
    return (record.state, record.reason, record.sectigo_status, record.update_time)
