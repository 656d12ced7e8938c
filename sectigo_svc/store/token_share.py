"""Sectigo tokens shared by the replicas on one PostgreSQL database: one login for the fleet.

:class:`PostgresTokenShare` is a :class:`~sectigo_svc.sectigo.token_cache.TokenShare` over the
``sectigo_tokens`` table (schema v4). Each account has one row, keyed by the caller's account key
(:func:`~sectigo_svc.sectigo.token_cache.account_key`, a hash naming neither the username nor the
endpoint), holding the token pair sealed with the data key and bound to the table and the account,
so no token is at rest in plaintext and a row copied to another account does not open. Renewals
are made single-flight across replicas by a session advisory lock keyed by the account. Ages are
timed on the database server's clock, so replicas whose clocks disagree judge a shared pair alike.

The share is an optimisation: when the database fails or the lock cannot be had in time, a warning
is logged and the replica goes on alone (unlocked, nothing shared), exactly as with the token cache
file. Neither the tokens nor the URL's password appear in logs, errors or repr.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import structlog

from sectigo_svc.sealing import Sealer, SealingError
from sectigo_svc.sectigo.models import Tokens
from sectigo_svc.sectigo.token_cache import CachedTokens
from sectigo_svc.store.database_url import describe, password_in

# First key of the two-key advisory locks on accounts ("stkn"); the second is the account's hash.
# Two-key locks never collide with the one-key locks of migrations.
LOCK_SPACE = 0x73746B6E
_LOCK_POLL = 0.05  # seconds between attempts at the lock
_CONNECT_TIMEOUT = 5  # seconds (libpq counts whole seconds)
_STATEMENT_TIMEOUT_MS = "5000"
RECONNECT_AFTER = 5.0  # seconds without connection attempts after one failed
_LOAD = """
    SELECT sealed,
        extract(epoch FROM clock_timestamp()) - received_at,
        extract(epoch FROM clock_timestamp()) - written_at
    FROM sectigo_tokens WHERE account = %s
"""
# A pair received earlier than the stored one never replaces it (replicas that renewed at once).
_SAVE = """
    INSERT INTO sectigo_tokens AS t (account, sealed, received_at, written_at)
    VALUES (
        %s, %s,
        extract(epoch FROM clock_timestamp()) - %s,
        extract(epoch FROM clock_timestamp())
    )
    ON CONFLICT (account) DO UPDATE
    SET sealed = EXCLUDED.sealed, received_at = EXCLUDED.received_at,
        written_at = EXCLUDED.written_at
    WHERE t.received_at IS NULL OR EXCLUDED.received_at IS NULL
        OR t.received_at <= EXCLUDED.received_at
"""


class PostgresTokenShare:
    """The shared tokens of one account in the database at ``url`` (libpq URL or conninfo).

    ``sealer`` holds the data key all replicas share; ``account`` is the row's key, normally
    ``account_key(endpoint, username)``. ``locked()`` waits up to ``lock_timeout`` seconds for
    another replica's renewal (plus up to 5 s to connect). No method raises for a database
    failure; the table must exist (open a ``PostgresStore`` on the database first). Safe for
    any number of threads; one connection is kept open between uses.
    """

    def __init__(
        self,
        url: str,
        sealer: Sealer,
        account: str,
        *,
        lock_timeout: float = 10.0,
        logger: Any = None,
    ) -> None:
        self._url = url
        self._sealer = sealer
        self._account = account
        self._context = f"sectigo_tokens\0{account}"
        digest = hashlib.sha256(account.encode()).digest()
        self._lock_key = int.from_bytes(digest[:4], "big", signed=True)
        self._timeout = lock_timeout
        self._log = logger if logger is not None else structlog.get_logger("sectigo_svc.store")
        self._where = describe(url)
        self._secret = password_in(url)
        # Held by the thread using the connection: a session lock is the session's, not a thread's.
        self._mutex = threading.RLock()
        self._connection: psycopg.Connection[Any] | None = None
        self._reconnect_at = 0.0
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresTokenShare({self._where})"

    @property
    def description(self) -> str:
        return f"{self._where} table sectigo_tokens"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the account's advisory lock for the block; without it after ``lock_timeout``
        seconds or a database failure (a warning): the worst outcome is one extra login."""
        deadline = time.monotonic() + self._timeout
        if not self._mutex.acquire(timeout=self._timeout):
            self._log.warning("sectigo token share lock timed out", share=self.description)
            yield
            return
        try:
            held = self._lock(deadline)
            try:
                yield
            finally:
                if held:
                    self._unlock()
        finally:
            self._mutex.release()

    def load(self) -> CachedTokens | None:
        """The account's shared pair; None when there is none, the database fails, or it does
        not open with this data key (the last two with a warning)."""
        if not self._mutex.acquire(timeout=self._timeout):
            self._log.warning("sectigo token share busy; not read", share=self.description)
            return None
        try:
            row = self._connect().execute(_LOAD, (self._account,)).fetchone()
        except psycopg.Error as exc:
            self._failed("sectigo token share not read", exc)
            return None
        finally:
            self._mutex.release()
        if row is None:
            return None
        sealed, received_age, written_age = row
        try:
            data = json.loads(self._sealer.open(bytes(sealed), self._context))
            tokens = Tokens(str(data["accessToken"]), str(data["refreshToken"]))
        except SealingError:
            self._log.warning(
                "sectigo shared tokens do not open with this data key; ignored",
                share=self.description,
            )
            return None
        except (ValueError, KeyError, TypeError):
            self._log.warning("sectigo shared tokens malformed; ignored", share=self.description)
            return None
        now = time.time()
        received = None if received_age is None else now - float(received_age)
        return CachedTokens(tokens, received, now - float(written_age))

    def save(self, tokens: Tokens, received_wall: float | None = None) -> None:
        """Share ``tokens`` received at local epoch time ``received_wall``, sealed, unless the
        stored pair was received later; a database failure is a warning and nothing is saved."""
        plaintext = json.dumps(
            {"accessToken": tokens.access_token, "refreshToken": tokens.refresh_token}
        ).encode()
        sealed = self._sealer.seal(plaintext, self._context)
        age = None if received_wall is None else max(0.0, time.time() - received_wall)
        if not self._mutex.acquire(timeout=self._timeout):
            self._log.warning("sectigo token share busy; not written", share=self.description)
            return
        try:
            self._connect().execute(_SAVE, (self._account, sealed, age))
        except psycopg.Error as exc:
            self._failed("sectigo token share not written", exc)
        finally:
            self._mutex.release()

    def close(self) -> None:
        """Close the connection; later calls find the share unusable (warnings, no errors)."""
        with self._mutex:
            self._closed = True
            self._drop()

    def _lock(self, deadline: float) -> bool:
        try:
            connection = self._connect()
            while True:
                row = connection.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_SPACE, self._lock_key)
                ).fetchone()
                if row is not None and row[0]:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._log.warning("sectigo token share lock timed out", share=self.description)
                    return False
                time.sleep(min(_LOCK_POLL, remaining))
        except psycopg.Error as exc:
            self._failed("sectigo token share not locked", exc)
            return False

    def _unlock(self) -> None:
        try:
            self._connect().execute(
                "SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, self._lock_key)
            )
        except psycopg.Error as exc:
            # Dropping the session (below) releases its locks on the server.
            self._failed("sectigo token share not unlocked", exc)

    def _connect(self) -> psycopg.Connection[Any]:
        """The open connection, or a new one; with the mutex held."""
        if self._closed:
            raise psycopg.InterfaceError("the token share is closed")
        connection = self._connection
        if connection is not None and not connection.closed and not connection.broken:
            return connection
        self._drop()
        if time.monotonic() < self._reconnect_at:
            raise psycopg.OperationalError("not reconnecting yet after a failed connection")
        try:
            connection = psycopg.connect(
                self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT
            )
        except psycopg.Error:
            self._reconnect_at = time.monotonic() + RECONNECT_AFTER
            raise
        try:
            connection.execute(
                "SELECT set_config('statement_timeout', %s, false)", (_STATEMENT_TIMEOUT_MS,)
            )
        except psycopg.Error:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()

    def _failed(self, event: str, exc: psycopg.Error) -> None:
        self._drop()
        text = " ".join(str(exc).split())
        if self._secret:
            text = text.replace(self._secret, "***")
        self._log.warning(event, share=self.description, error=f"{type(exc).__name__}: {text}")
