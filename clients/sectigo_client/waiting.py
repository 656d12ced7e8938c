"""Following one request to a terminal state, across broken streams and service restarts.

The Watch stream is followed first: it reports each change at once. If it breaks (the service
restarts, a proxy drops it) or ends early, polling Get takes over until the request is terminal or
the time is up; while the service is down, the polls fail with transient errors and are retried.
Errors that are about the request itself (NotFound, PermissionDenied, ...) end the wait at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from dataclasses import dataclass

from sectigo_client.errors import CertificateAuthorityError, DeadlineExceeded, WaitTimeout
from sectigo_client.models import CertificateRecord

Stream = Generator[CertificateRecord, None, None]


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
        deadline = self.clock() + timeout
        last: CertificateRecord | None = None

        def finished(record: CertificateRecord) -> bool:
            nonlocal last
            if last is None or _version(last) != _version(record):
                last = record
                if on_change is not None:
                    on_change(record)
            return record.state.terminal

        try:
            with contextlib.closing(self.watch(timeout)) as stream:
                for record in stream:
                    if finished(record):
                        return record
        except CertificateAuthorityError as exc:
            _unless_transient(exc)
        while (remaining := deadline - self.clock()) > 0:
            try:
                record = self.get(min(self.call_timeout, remaining))
            except CertificateAuthorityError as exc:
                _unless_transient(exc)
            else:
                if finished(record):
                    return record
            self.sleep(max(0.0, min(self.poll_interval, deadline - self.clock())))
        raise WaitTimeout(request_id, timeout, last.state.value if last else None)


def _unless_transient(exc: CertificateAuthorityError) -> None:
    """Re-raise ``exc`` unless the connection broke or a call's deadline passed."""
    if not (exc.transient or isinstance(exc, DeadlineExceeded)):
        raise exc


def _version(record: CertificateRecord) -> tuple[object, ...]:
    return (record.state, record.reason, record.sectigo_status, record.update_time)
