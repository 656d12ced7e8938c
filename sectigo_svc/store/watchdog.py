"""Client-side time limits on PostgreSQL connections, whatever the server does.

The server enforces its own timeouts, so a server that accepts TCP but no longer answers (its
processes stopped, its host paused) would leave a statement waiting for ever. A guarded use of a
connection still under way at its deadline has the connection's socket shut down from this side,
which ends the wait with an error and leaves the connection broken (its pool discards it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg


class Watchdog:
    """Bounds uses of connections on the client: a connection still guarded at its deadline has
    its socket shut down, which wakes the thread waiting on it with an error (the connection is
    then broken: closed by its user, discarded by the pool). One thread, started on first use.

    A cancel request would not do: it goes to the postmaster, which may not answer either."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._guarded: dict[int, tuple[float, psycopg.Connection[Any], threading.Event]] = {}
        self._next = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def guard(
        self,
        connection: psycopg.Connection[Any],
        deadline: float,
        cut: threading.Event | None = None,
    ) -> Iterator[None]:
        """Within the block, ``connection`` is cut at ``deadline`` (then ``cut`` is set)."""
        with self._changed:
            token, self._next = self._next, self._next + 1
            self._guarded[token] = (deadline, connection, cut or threading.Event())
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._watch, name="store-watchdog", daemon=True
                )
                self._thread.start()
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                # Under the lock: a connection is never cut once its user has moved on.
                del self._guarded[token]

    def _watch(self) -> None:
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                for deadline, connection, cut in list(self._guarded.values()):
                    if deadline <= now and not cut.is_set():
                        cut.set()
                        _shut_down(connection)
                waiting = [d for d, _, cut in self._guarded.values() if not cut.is_set()]
                self._changed.wait(min(waiting) - now if waiting else None)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()


def _shut_down(connection: psycopg.Connection[Any]) -> None:
    """Shut the connection's socket down (a duplicate of its descriptor, closed after), so any
    wait on it ends; the connection object itself is left to its user."""
    try:
        descriptor = connection.pgconn.socket
    except psycopg.Error:
        return  # already closed or broken
    duplicate = os.dup(descriptor)
    try:
        shut = socket.socket(fileno=duplicate)
    except OSError:
        os.close(duplicate)
        return
    with shut, contextlib.suppress(OSError):
        shut.shutdown(socket.SHUT_RDWR)
