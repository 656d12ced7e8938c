"""The shared request store: PostgreSQL through psycopg 3 and a connection pool.

Same promises as the SQLite store: create is one ``INSERT ... ON CONFLICT DO NOTHING`` then a read,
updates are compare-and-set on ``version`` (READ COMMITTED re-checks the condition after waiting for
a concurrent writer, so exactly one of two racing updates wins), history rows and certificates are
written in the update's transaction, secrets are sealed before they reach the server.

Migrations, the sealing canary and the schema check run on open in one transaction holding an
advisory lock, so several processes starting together on an empty database make one schema.

Several replicas share one database: leases say which replica tracks which unfinished request
(claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, timed on the database server's clock, so the
replicas' clocks do not matter), and every create and update sends a ``NOTIFY`` on
:data:`CHANNEL` (delivered at commit) that :meth:`PostgresStore.on_change` listeners receive.

Nothing waits long on the database: every pooled connection has a lock and a statement timeout
(:data:`LOCK_TIMEOUT_MS`, :data:`STATEMENT_TIMEOUT_MS`), an operation waits at most
:data:`POOL_WAIT` seconds for a connection, and while the last ping failed operations fail at once.
The server enforces those timeouts, so a server that accepts TCP but no longer answers (its
processes stopped, its host paused) would leave a statement waiting for ever; the watchdog
(:mod:`sectigo_svc.store.watchdog`) therefore bounds every use of a connection on the client too
(:data:`OPERATION_LIMIT`, :data:`_CHECK_LIMIT`, :data:`PING_LIMIT`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from sectigo_svc.domain.lifecycle import predecessors
from sectigo_svc.domain.models import (
    AuditEntry,
    CertificateRequest,
    IssuedCertificate,
    RequestState,
)
from sectigo_svc.sealing import Sealer, SealingError
from sectigo_svc.store.base import (
    ChangeCallback,
    Claim,
    Fence,
    Key,
    LeaseLost,
    ListQuery,
    Page,
    Renewal,
    StaleUpdate,
    StoreError,
    TransitionRefused,
    holder_name,
    refusal,
)
from sectigo_svc.store.database_url import describe, password_in
from sectigo_svc.store.rows import (
    AUDIT_COLUMNS,
    CERTIFICATE_COLUMNS,
    REQUEST_COLUMNS,
    Sealed,
    audit_filter,
    audit_from_row,
    audit_values,
    from_timestamp,
    list_filter,
    page,
    request_from_row,
    request_values,
    snapshot_from_json,
    snapshot_json,
)
from sectigo_svc.store.schema import POSTGRES_MIGRATIONS, RESTORED_MARK
from sectigo_svc.store.watchdog import Watchdog

_CANARY = b"sectigo-svc sealing check"
_CANARY_CONTEXT = "store\0sealing_check"
# Key of the transaction-scoped advisory lock that serialises migrations ("sectigo" in ASCII).
MIGRATION_LOCK = 0x73656374696730
_TERMINAL = [s.value for s in RequestState if s.terminal]
# Time limits of every statement on a pooled connection, well under a lease (30 s by default): a
# row another session keeps locked (say an operator's psql idle in a transaction after SELECT ...
# FOR UPDATE) or a stalled server fails the one operation that needs it with a StoreError, instead
# of holding a worker thread and, through it, unrelated requests and the renewal of leases.
LOCK_TIMEOUT_MS = 2000  # the longest a statement waits for a lock (a row, a table)
STATEMENT_TIMEOUT_MS = 5000  # the longest a statement runs, waits included
# Migrations run once, at start, and may wait that long for another replica's (the advisory lock).
MIGRATION_LOCK_TIMEOUT_MS = 120_000
POOL_WAIT = 2.0  # seconds an operation waits for a pooled connection before it fails
_OPEN_TIMEOUT = 10  # seconds to connect at start (migrations, the pool's first connection)
_CONNECT_TIMEOUT = 3  # seconds a later connection (pooled, ping, listener) may take to connect
# Unacknowledged data gives a connection up after this, so a server gone silent (its host lost)
# breaks the connection instead of leaving a statement waiting for ever.
_TCP_USER_TIMEOUT_MS = 10_000
# How long the pool retries a lost connection (its own backoff, 1 s then 2 s) before it gives up;
# a later operation, or the first ping that succeeds after an outage, connects anew at once.
_RECONNECT_WINDOW = 2.0
_PING_WAIT_MS = 3000  # the longest a readiness ping's statement may take (server side)
# Client-side bounds, enforced by the watchdog whatever the server does: a readiness ping (connect
# included), the check of a pooled connection as an operation takes it, and an operation's
# transaction once it has its connection (the statement limit and a second's slack).
PING_LIMIT = 3.0
_CHECK_LIMIT = 2.0
OPERATION_LIMIT = STATEMENT_TIMEOUT_MS / 1000 + 1.0
# After a ping fails, operations fail at once for this long, or until a ping succeeds (readiness
# pings every 2 s, each taking up to PING_LIMIT), rather than each waiting POOL_WAIT for a
# connection that will not come.
_KNOWN_DOWN_FOR = 8.0
# The channel of change notifications; the payload is a JSON [owner, request_id, terminal].
CHANNEL = "sectigo_svc_requests"
_MAX_PAYLOAD = 7900  # PostgreSQL's limit is 8000 bytes; longer keys are left to re-reads
_NOW = "extract(epoch FROM clock_timestamp())"
_LISTEN_RETRY_MAX = 10.0


class PostgresStore:
    """A :class:`~sectigo_svc.store.base.RequestStore` in a PostgreSQL database.

    ``url`` is a libpq URL or conninfo string; its password never appears in errors or repr.
    Raises :class:`StoreError` when the server cannot be reached or its schema is newer than this
    code, :class:`~sectigo_svc.sealing.SealingError` when ``sealer`` is not the store's data key.
    """

    def __init__(
        self,
        url: str,
        sealer: Sealer,
        pool_size: int = 8,
        holder: str | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        self._url = url
        self._holder = holder or holder_name()
        self._lease = lease_seconds
        self._log = structlog.get_logger("sectigo_svc.store")
        self._listeners: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._secret = password_in(url)
        self._where = describe(url)
        self._sealer = sealer
        self._sealed = Sealed(sealer)
        self._closed = False
        # The readiness ping's own connection, and when a ping last failed (None: it succeeded).
        self._ping_lock = threading.Lock()
        self._pinger: psycopg.Connection[Any] | None = None
        self._down_at: float | None = None
        self._watchdog = Watchdog()
        self._refill: threading.Thread | None = None
        try:
            with psycopg.connect(url, connect_timeout=_OPEN_TIMEOUT) as connection:
                self._migrate(connection)
        except psycopg.Error as exc:
            raise self._error("cannot open the store", exc) from None
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"connect_timeout": _CONNECT_TIMEOUT, "tcp_user_timeout": _TCP_USER_TIMEOUT_MS},
            configure=_limit_time,
            timeout=POOL_WAIT,
            reconnect_timeout=_RECONNECT_WINDOW,
            open=False,
            name="sectigo-store",
            check=self._check_pooled,
        )
        try:
            self._pool.open(wait=True, timeout=_OPEN_TIMEOUT)
        except PoolTimeout:
            self._pool.close()
            self._watchdog.close()
            raise StoreError(f"cannot open the store {self._where}: no connection") from None

    def __repr__(self) -> str:
        return f"PostgresStore({self._where})"

    def _error(self, what: str, exc: BaseException) -> StoreError:
        text = str(exc).strip()
        if self._secret:
            text = text.replace(self._secret, "***")
        return StoreError(f"{what} {self._where}: {text}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """A cursor in one transaction: committed on success, rolled back on any error."""
        if self._closed:
            raise StoreError(f"the store {self._where} is closed")
        down_at = self._down_at
        if down_at is not None and time.monotonic() - down_at < _KNOWN_DOWN_FOR:
            raise StoreError(f"the store {self._where} does not answer (its last check failed)")
        cut = threading.Event()
        try:
            with (
                self._pool.connection() as connection,
                self._watchdog.guard(connection, time.monotonic() + OPERATION_LIMIT, cut),
                connection.transaction(),
            ):
                yield connection.cursor(row_factory=dict_row)
        except (StaleUpdate, LeaseLost, TransitionRefused):
            raise
        except (psycopg.Error, PoolTimeout) as exc:
            if cut.is_set():
                raise StoreError(
                    f"the store {self._where} did not answer within {OPERATION_LIMIT:g} s "
                    "(the operation was abandoned)"
                ) from None
            raise self._error("store operation failed on", exc) from None

    def _check_pooled(self, connection: psycopg.Connection[Any]) -> None:
        """The pool's check of a connection an operation takes, bounded by the watchdog (a
        connection to a server that went silent fails it, and the pool tries another)."""
        with self._watchdog.guard(connection, time.monotonic() + _CHECK_LIMIT):
            ConnectionPool.check_connection(connection)

    def _read(self, query: str | sql.Composed, params: tuple[Any, ...] = ()) -> list[DictRow]:
        with self._transaction() as cursor:
            return cursor.execute(query, params).fetchall()

    def _migrate(self, connection: psycopg.Connection[Any]) -> None:
        with connection.transaction():
            db = connection.cursor()
            db.execute(
                "SELECT set_config('lock_timeout', %s, true)", (f"{MIGRATION_LOCK_TIMEOUT_MS}ms",)
            )
            db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            current = int(row[0] or 0) if row else 0
            if current > len(POSTGRES_MIGRATIONS):
                raise StoreError(
                    f"the store {self._where} has schema {current}, newer than this code "
                    f"({len(POSTGRES_MIGRATIONS)}); upgrade sectigo-svc"
                )
            for number, script in enumerate(POSTGRES_MIGRATIONS[current:], start=current + 1):
                db.execute(script.encode())
                db.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
            canary = db.execute("SELECT sealed FROM sealing_check").fetchone()
            if canary is None:
                db.execute(
                    "INSERT INTO sealing_check VALUES (%s)",
                    (self._sealer.seal(_CANARY, _CANARY_CONTEXT),),
                )
                return
        try:
            opened = self._sealer.open(bytes(canary[0]), _CANARY_CONTEXT)
        except SealingError:
            opened = b""
        if opened != _CANARY:
            raise SealingError(
                f"the data key does not open the secrets sealed in {self._where}: "
                "is it the key this store was created with?"
            )

    def now(self) -> dt.datetime:
        rows = self._read("SELECT extract(epoch FROM clock_timestamp())::float8 AS now")
        return dt.datetime.fromtimestamp(float(rows[0]["now"]), dt.UTC)

    def restored_at(self) -> dt.datetime | None:
        """When the store this one was copied from was restored from a backup (the mark
        ``copy-store`` carries over), else None. Restores of PostgreSQL itself (pg_dump) are not
        marked: docs/operations.md says what to do after one."""
        rows = self._read("SELECT at FROM store_marks WHERE name = %s", (RESTORED_MARK,))
        return from_timestamp(rows[0]["at"]) if rows else None

    @property
    def schema_version(self) -> int:
        return int(self._read("SELECT max(version) AS v FROM schema_version")[0]["v"])

    def create(
        self,
        request: CertificateRequest,
        pkcs12_password: str | None,
        audit: AuditEntry | None = None,
    ) -> tuple[CertificateRequest, bool]:
        values = request_values(request)
        values["pkcs12_password"] = self._sealed.password(request, pkcs12_password)
        values["lease_holder"] = self._holder
        values["lease_epoch"] = 1
        insert = sql.SQL(
            "INSERT INTO requests ({}, lease_expires) VALUES ({}, {} + %s) ON CONFLICT DO NOTHING"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() for _ in values),
            sql.SQL(_NOW),
        )
        with self._transaction() as db:
            inserted = db.execute(insert, (*values.values(), self._lease)).rowcount
            row = db.execute(
                f"SELECT {REQUEST_COLUMNS} FROM requests WHERE owner = %s AND request_id = %s",  # noqa: S608
                request.key,
            ).fetchone()
            if row is None:
                raise StoreError(
                    f"batch name {request.batch_name} is taken by another request; "
                    "use another request_id"
                )
            stored = request_from_row(row)
            if inserted == 1:
                _remember(db, stored)
                _announce(db, stored)
                if audit is not None:
                    _insert_audit(db, audit)
        return stored, inserted == 1

    def get(self, owner: str, request_id: str) -> CertificateRequest | None:
        rows = self._read(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE owner = %s AND request_id = %s",  # noqa: S608
            (owner, request_id),
        )
        return request_from_row(rows[0]) if rows else None

    def pkcs12_password(self, owner: str, request_id: str) -> str | None:
        rows = self._read(
            "SELECT pkcs12_password FROM requests WHERE owner = %s AND request_id = %s",
            (owner, request_id),
        )
        if not rows or rows[0]["pkcs12_password"] is None:
            return None
        return self._sealed.open_password(owner, request_id, bytes(rows[0]["pkcs12_password"]))

    def update(
        self,
        request: CertificateRequest,
        certificate: IssuedCertificate | None = None,
        fence: Fence | None = None,
    ) -> CertificateRequest:
        values = request_values(request)
        for fixed in ("owner", "request_id", "spec", "fingerprint", "batch_name", "created_at"):
            values.pop(fixed)
        values["version"] = request.version + 1
        condition = "version = %s AND state = ANY(%s)"
        params: tuple[Any, ...] = (request.version, list(predecessors(request.state)))
        if fence is not None:
            condition += " AND lease_holder = %s AND lease_epoch = %s"
            params += (fence.holder, fence.epoch)
        statement = sql.SQL(
            "UPDATE requests SET {} WHERE owner = %s AND request_id = %s AND {}"
        ).format(
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in values),
            sql.SQL(condition),  # fixed clauses
        )
        with self._transaction() as db:
            changed = db.execute(statement, (*values.values(), *request.key, *params)).rowcount
            if changed != 1:
                row = db.execute(
                    "SELECT version, state, lease_holder, lease_epoch FROM requests "
                    "WHERE owner = %s AND request_id = %s",
                    request.key,
                ).fetchone()
                raise refusal(request, fence, dict(row) if row is not None else None)
            _remember(db, dataclasses.replace(request, version=request.version + 1))
            _announce(db, request)
            if certificate is not None:
                db.execute(
                    "INSERT INTO certificates VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (owner, request_id) DO UPDATE SET "
                    "certificate_pem = EXCLUDED.certificate_pem, chain_pem = EXCLUDED.chain_pem, "
                    "pkcs12 = EXCLUDED.pkcs12, private_key = EXCLUDED.private_key",
                    self._sealed.certificate_values(request, certificate),
                )
        return self.get(*request.key) or request

    def history(self, owner: str, request_id: str, after_version: int) -> list[CertificateRequest]:
        rows = self._read(
            "SELECT snapshot FROM request_history WHERE owner = %s AND request_id = %s "
            "AND version > %s ORDER BY version",
            (owner, request_id, after_version),
        )
        return [snapshot_from_json(r["snapshot"]) for r in rows]

    def list_requests(self, query: ListQuery) -> Page:
        where, params = list_filter(query, "%s")
        rows = self._read(
            f"SELECT seq, {REQUEST_COLUMNS} FROM requests {where} "  # noqa: S608 - fixed clauses
            "ORDER BY seq DESC LIMIT %s",
            (*params, query.limit + 1),
        )
        return page(rows, query.limit)

    def active(self) -> list[CertificateRequest]:
        rows = self._read(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE NOT (state = ANY(%s)) ORDER BY seq",  # noqa: S608
            (_TERMINAL,),
        )
        return [request_from_row(r) for r in rows]

    def by_serial(self, serial_number: str) -> CertificateRequest | None:
        rows = self._read(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE serial_number = %s",  # noqa: S608
            (serial_number.upper(),),
        )
        return request_from_row(rows[0]) if rows else None

    def count_by_state(self) -> dict[str, int]:
        rows = self._read("SELECT state, count(*) AS n FROM requests GROUP BY state")
        return {str(row["state"]): int(row["n"]) for row in rows}

    def certificate(self, owner: str, request_id: str) -> IssuedCertificate | None:
        rows = self._read(
            f"SELECT {CERTIFICATE_COLUMNS} FROM certificates "  # noqa: S608 - fixed names
            "WHERE owner = %s AND request_id = %s",
            (owner, request_id),
        )
        return self._sealed.certificate(owner, request_id, rows[0]) if rows else None

    def record_audit(self, entry: AuditEntry) -> None:
        with self._transaction() as db:
            _insert_audit(db, entry)

    def audit_log(
        self, owner: str | None = None, request_id: str | None = None
    ) -> list[AuditEntry]:
        where, params = audit_filter(owner, request_id, "%s")
        rows = self._read(
            f"SELECT {AUDIT_COLUMNS} FROM audit {where} ORDER BY id",  # noqa: S608
            tuple(params),
        )
        return [audit_from_row(r) for r in rows]

    @property
    def holder(self) -> str:
        return self._holder

    def claim(
        self, keys: Sequence[Key] | None = None, limit: int = 100, own_only: bool = False
    ) -> list[Claim]:
        # A scan skips rows another replica is claiming; a claim by key waits for the row (a
        # renewal of this replica's own lease may hold it for a moment).
        locking = "FOR UPDATE SKIP LOCKED" if keys is None else "FOR UPDATE"
        if keys is None:
            which = sql.SQL(
                "lease_holder IS DISTINCT FROM %(me)s "
                "AND (lease_holder IS NULL OR lease_expires < {now})"
            ).format(now=sql.SQL(_NOW))
            params: dict[str, Any] = {"limit": limit}
        else:
            if not keys:
                return []
            whose = sql.SQL(
                "lease_holder = %(me)s"
                if own_only
                else "(lease_holder IS NULL OR lease_holder = %(me)s OR lease_expires < {now})"
            ).format(now=sql.SQL(_NOW))
            which = sql.SQL(
                "(owner, request_id) IN (SELECT * FROM unnest(%(owners)s::text[], "
                "%(ids)s::text[])) AND {whose}"
            ).format(whose=whose)
            params = {
                "owners": [k[0] for k in keys],
                "ids": [k[1] for k in keys],
                "limit": len(keys),
            }
        # The epoch moves on unless this holder's own lease was still live: a fence for writes.
        statement = sql.SQL(
            "WITH free AS (SELECT seq, lease_holder AS previous, "
            "(lease_holder = %(me)s AND lease_expires >= {now}) AS live FROM requests "
            "WHERE NOT (state = ANY(%(terminal)s)) AND {which} ORDER BY seq LIMIT %(limit)s "
            "{locking}) "
            "UPDATE requests SET lease_holder = %(me)s, lease_expires = {now} + %(ttl)s, "
            "lease_epoch = requests.lease_epoch + CASE WHEN free.live THEN 0 ELSE 1 END "
            "FROM free WHERE requests.seq = free.seq "
            "RETURNING requests.owner, requests.request_id, free.previous, requests.lease_epoch"
        ).format(which=which, now=sql.SQL(_NOW), locking=sql.SQL(locking))
        params |= {"me": self._holder, "ttl": self._lease, "terminal": _TERMINAL}
        with self._transaction() as db:
            rows = db.execute(statement, params).fetchall()
        return [
            Claim(
                (row["owner"], row["request_id"]),
                row["previous"] is not None and row["previous"] != self._holder,
                int(row["lease_epoch"]),
            )
            for row in rows
        ]

    def renew(self) -> Renewal:
        # Rows another transaction has locked (an operator's session, a write under way) are
        # skipped, not waited for, so one locked row never holds up the renewal of the others;
        # the outer SELECT (this statement's snapshot, which takes no locks) names them.
        statement = sql.SQL(
            "WITH mine AS (SELECT seq FROM requests WHERE lease_holder = %(me)s "
            "AND NOT (state = ANY(%(terminal)s)) FOR UPDATE SKIP LOCKED), "
            "renewed AS (UPDATE requests SET lease_expires = {now} + %(ttl)s FROM mine "
            "WHERE requests.seq = mine.seq RETURNING requests.seq) "
            "SELECT owner, request_id, seq IN (SELECT seq FROM renewed) AS renewed "
            "FROM requests WHERE lease_holder = %(me)s AND NOT (state = ANY(%(terminal)s))"
        ).format(now=sql.SQL(_NOW))
        params = {"me": self._holder, "ttl": self._lease, "terminal": _TERMINAL}
        with self._transaction() as db:
            rows = db.execute(statement, params).fetchall()
        return Renewal(
            renewed=frozenset((r["owner"], r["request_id"]) for r in rows if r["renewed"]),
            locked=frozenset((r["owner"], r["request_id"]) for r in rows if not r["renewed"]),
        )

    def release(self) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE requests SET lease_holder = NULL, lease_expires = NULL "
                "WHERE lease_holder = %s",
                (self._holder,),
            )

    def on_change(self, callback: ChangeCallback) -> None:
        """Listen on :data:`CHANNEL` on a connection of its own, in a thread, until closed; a lost
        connection is opened again with a growing pause (up to 10 s), and changes made meanwhile
        are not delivered, so watchers must also re-read."""
        thread = threading.Thread(
            target=self._listen, args=(callback,), name="store-listener", daemon=True
        )
        self._listeners.append(thread)
        thread.start()

    def _listen(self, callback: ChangeCallback) -> None:
        # No lock or statement timeout here: this connection only waits for notifications.
        pause = 0.5
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=_CONNECT_TIMEOUT,
                    tcp_user_timeout=_TCP_USER_TIMEOUT_MS,
                ) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    pause = 0.5
                    while not self._stopping.is_set():
                        for notice in connection.notifies(timeout=1.0):
                            _deliver(notice.payload, callback)
            except psycopg.Error as exc:
                self._log.warning(
                    "store change notifications interrupted",
                    cause=self._error("listening on", exc).args[0],
                    retry_in=pause,
                )
            self._stopping.wait(pause)
            pause = min(pause * 2, _LISTEN_RETRY_MAX)

    def ping(self) -> None:
        """Ask the server on a connection of its own, outside the pool (opened again when
        broken), so a pool still backing off after an outage delays nothing. A ping takes at most
        about :data:`PING_LIMIT` seconds: one the server does not answer by then fails, and its
        connection is abandoned. While the last ping failed, operations fail at once; the first
        ping that succeeds after one that failed has the pool check its connections and connect
        anew, in the background."""
        if self._closed:
            raise StoreError(f"the store {self._where} is closed")
        with self._ping_lock:
            try:
                self._ping(time.monotonic() + PING_LIMIT)
            except psycopg.Error as exc:
                self._down_at = time.monotonic()
                raise self._error("store check failed on", exc) from None
            except StoreError:
                self._down_at = time.monotonic()
                raise
            recovered, self._down_at = self._down_at is not None, None
            if recovered:
                self._refill_pool()

    def _ping(self, deadline: float) -> None:
        """``SELECT 1`` on the ping connection by ``deadline``; with the ping lock held."""
        connection = self._pinger
        if connection is not None and not connection.closed:
            cut = threading.Event()
            try:
                with self._watchdog.guard(connection, deadline, cut):
                    connection.execute("SELECT 1")
                return
            except psycopg.Error:
                if cut.is_set():
                    self._abandon_pinger()
                    raise self._unanswered() from None
                if not connection.broken:
                    raise  # the server answered, too slowly: no second try
                connection.close()
        self._pinger = None
        connection = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=_CONNECT_TIMEOUT,
            tcp_user_timeout=_TCP_USER_TIMEOUT_MS,
        )
        cut = threading.Event()
        try:
            with self._watchdog.guard(connection, deadline, cut):
                connection.execute(
                    "SELECT set_config('statement_timeout', %s, false)", (f"{_PING_WAIT_MS}ms",)
                )
                connection.execute("SELECT 1")
        except psycopg.Error:
            connection.close()
            if cut.is_set():
                raise self._unanswered() from None
            raise
        self._pinger = connection

    def _unanswered(self) -> StoreError:
        return StoreError(f"store check failed on {self._where}: no answer within {PING_LIMIT:g} s")

    def _abandon_pinger(self) -> None:
        if self._pinger is not None:
            self._pinger.close()
            self._pinger = None

    def _refill_pool(self) -> None:
        """Have the pool check its idle connections (replacing those an outage left dead) in a
        thread of its own, one at a time: a server that froze again meanwhile would hold it."""
        if self._refill is not None and self._refill.is_alive():
            return

        def refill() -> None:
            try:
                self._pool.check()
            except Exception as exc:  # the next operation or ping finds out
                self._log.warning("store pool not refilled", cause=self._error("on", exc).args[0])

        self._refill = threading.Thread(target=refill, name="store-refill", daemon=True)
        self._refill.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        for thread in self._listeners:
            thread.join(_OPEN_TIMEOUT)
        with self._ping_lock:
            self._abandon_pinger()
        self._pool.close()
        self._watchdog.close()


def _limit_time(connection: psycopg.Connection[Any]) -> None:
    """Set the time limits of a new pooled connection, for every statement it will run."""
    connection.execute(
        "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
        (f"{LOCK_TIMEOUT_MS}ms", f"{STATEMENT_TIMEOUT_MS}ms"),
    )
    connection.commit()


def _insert_audit(db: psycopg.Cursor[DictRow], entry: AuditEntry) -> None:
    db.execute(
        f"INSERT INTO audit ({AUDIT_COLUMNS}) "  # noqa: S608 - fixed names
        "VALUES (%s, %s, %s, %s, %s, %s)",
        audit_values(entry),
    )


def _remember(db: psycopg.Cursor[DictRow], request: CertificateRequest) -> None:
    db.execute(
        "INSERT INTO request_history VALUES (%s, %s, %s, %s)",
        (*request.key, request.version, snapshot_json(request)),
    )


def _announce(db: psycopg.Cursor[DictRow], request: CertificateRequest) -> None:
    """Tell listeners of every replica, at commit, that the request changed."""
    payload = json.dumps([request.owner, request.request_id, request.state.terminal])
    if len(payload.encode()) <= _MAX_PAYLOAD:
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def _deliver(payload: str, callback: ChangeCallback) -> None:
    try:
        owner, request_id, terminal = json.loads(payload)
    except (ValueError, TypeError):
        return
    try:
        callback((str(owner), str(request_id)), bool(terminal))
    except Exception:  # a listener's fault must not end the notifications
        structlog.get_logger("sectigo_svc.store").exception("store change listener failed")
