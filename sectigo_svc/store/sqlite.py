"""The embedded request store: SQLite in WAL mode, schema versioned and migrated on open.

Connections come from a small pool, one per concurrent operation, so short-lived threads (metrics
scrapes) leave nothing open behind them; writes take the database's write lock up front
(``BEGIN IMMEDIATE``) so compare-and-set updates never interleave. Every commit is synced to disk
(``synchronous=FULL``): a send attempt is recorded before the order leaves, and that record must
survive a power loss, not only a crash of the process.

A copy made by :func:`backup_database` carries a mark; the first store opened on it records when it
was restored (:meth:`SqliteStore.restored_at`), because the original may have sent orders after the
copy was taken that the copy cannot know about.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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
    ListQuery,
    Page,
    Renewal,
    StoreError,
    holder_name,
    refusal,
)
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
from sectigo_svc.store.schema import BACKUP_MARK, MIGRATIONS, RESTORED_MARK

_CANARY = b"sectigo-svc sealing check"
_CANARY_CONTEXT = "store\0sealing_check"

_TERMINAL = tuple(s.value for s in RequestState if s.terminal)


class SqliteStore:
    """A :class:`~sectigo_svc.store.base.RequestStore` in one SQLite file.

    ``holder`` names this process in leases (default: :func:`holder_name`); ``lease_seconds`` is
    how long a lease lasts. Since one process owns the file, leases only record who tracks what.
    """

    def __init__(
        self,
        path: Path,
        sealer: Sealer,
        holder: str | None = None,
        lease_seconds: float = 30.0,
    ) -> None:
        self._path = path
        self._holder = holder or holder_name()
        self._lease = lease_seconds
        self._sealer = sealer
        self._sealed = Sealed(sealer)
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._owner_lock = _lock_exclusively(path.with_name(path.name + ".lock"))
        try:
            # Created 0600 before SQLite opens it; its -wal and -shm files take the same mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self._migrate()
            self._check_data_key()
            self._restored_at = self._note_restore()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteStore({self._path})"

    def _open(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=30
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {self._path}: {exc}") from exc
        connection.row_factory = sqlite3.Row
        return connection

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, from the pool (grown on demand, one per concurrent
        user); a connection left inside a transaction by a failure is closed, not reused."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the store {self._path} is closed")
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._open()
        try:
            yield connection
        finally:
            healthy = not connection.in_transaction
            with self._lock:
                if healthy and not self._closed:
                    self._idle.append(connection)
                    connection = None
            if connection is not None:
                connection.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._borrow() as connection:
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"store write failed: {exc}") from exc

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._borrow() as connection:
            try:
                return connection.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"store read failed: {exc}") from exc

    def _migrate(self) -> None:
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"the store {self._path} has schema {current}, newer than this code "
                    f"({len(MIGRATIONS)}); upgrade sectigo-svc"
                )
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    def _check_data_key(self) -> None:
        """Refuse to start with a data key other than the one that sealed this store's secrets,
        instead of failing later on the first download."""
        with self._write() as db:
            row = db.execute("SELECT sealed FROM sealing_check").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO sealing_check VALUES (?)",
                    (self._sealer.seal(_CANARY, _CANARY_CONTEXT),),
                )
                return
        try:
            opened = self._sealer.open(bytes(row[0]), _CANARY_CONTEXT)
        except SealingError:
            opened = b""
        if opened != _CANARY:
            raise SealingError(
                f"the data key does not open the secrets sealed in {self._path}: "
                "is it the key this store was created with?"
            )

    def _note_restore(self) -> dt.datetime | None:
        """Turn a backup copy's mark into the time it was restored (now, once), in one write."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM store_marks WHERE name = ?", (BACKUP_MARK,)).fetchone():
                db.execute("DELETE FROM store_marks WHERE name = ?", (BACKUP_MARK,))
                db.execute(
                    "INSERT OR REPLACE INTO store_marks VALUES (?, ?)",
                    (RESTORED_MARK, dt.datetime.now(dt.UTC).timestamp()),
                )
            row = db.execute(
                "SELECT at FROM store_marks WHERE name = ?", (RESTORED_MARK,)
            ).fetchone()
        return from_timestamp(row[0]) if row else None

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def restored_at(self) -> dt.datetime | None:
        return self._restored_at

    @property
    def schema_version(self) -> int:
        return int(self._read("SELECT max(version) FROM schema_version")[0][0])

    def create(
        self,
        request: CertificateRequest,
        pkcs12_password: str | None,
        audit: AuditEntry | None = None,
    ) -> tuple[CertificateRequest, bool]:
        values = request_values(request)
        values["pkcs12_password"] = self._sealed.password(request, pkcs12_password)
        values["lease_holder"] = self._holder
        values["lease_expires"] = time.time() + self._lease
        values["lease_epoch"] = 1
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._write() as db:
            inserted = db.execute(
                f"INSERT INTO requests ({columns}) VALUES ({marks}) "  # noqa: S608 - fixed names
                "ON CONFLICT (owner, request_id) DO NOTHING",
                tuple(values.values()),
            ).rowcount
            row = db.execute(
                f"SELECT {REQUEST_COLUMNS} FROM requests WHERE owner = ? AND request_id = ?",  # noqa: S608
                request.key,
            ).fetchone()
            stored = request_from_row(dict(row))
            if inserted == 1:
                self._remember(db, stored)
                if audit is not None:
                    self._insert_audit(db, audit)
        return stored, inserted == 1

    @staticmethod
    def _remember(db: sqlite3.Connection, request: CertificateRequest) -> None:
        db.execute(
            "INSERT INTO request_history VALUES (?, ?, ?, ?)",
            (*request.key, request.version, snapshot_json(request)),
        )

    def get(self, owner: str, request_id: str) -> CertificateRequest | None:
        rows = self._read(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE owner = ? AND request_id = ?",  # noqa: S608
            (owner, request_id),
        )
        return request_from_row(dict(rows[0])) if rows else None

    def pkcs12_password(self, owner: str, request_id: str) -> str | None:
        rows = self._read(
            "SELECT pkcs12_password FROM requests WHERE owner = ? AND request_id = ?",
            (owner, request_id),
        )
        if not rows or rows[0][0] is None:
            return None
        return self._sealed.open_password(owner, request_id, bytes(rows[0][0]))

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
        assignments = ", ".join(f"{name} = ?" for name in values)
        before = predecessors(request.state)
        condition = f"version = ? AND state IN ({', '.join('?' for _ in before)})"
        params: tuple[Any, ...] = (request.version, *before)
        if fence is not None:
            condition += " AND lease_holder = ? AND lease_epoch = ?"
            params += (fence.holder, fence.epoch)
        with self._write() as db:
            changed = db.execute(
                f"UPDATE requests SET {assignments} "  # noqa: S608 - fixed column names
                f"WHERE owner = ? AND request_id = ? AND {condition}",
                (*values.values(), *request.key, *params),
            ).rowcount
            if changed != 1:
                row = db.execute(
                    "SELECT version, state, lease_holder, lease_epoch FROM requests "
                    "WHERE owner = ? AND request_id = ?",
                    request.key,
                ).fetchone()
                raise refusal(request, fence, dict(row) if row is not None else None)
            self._remember(db, dataclasses.replace(request, version=request.version + 1))
            if certificate is not None:
                db.execute(
                    "INSERT OR REPLACE INTO certificates VALUES (?, ?, ?, ?, ?, ?)",
                    self._sealed.certificate_values(request, certificate),
                )
        return self.get(*request.key) or request

    def history(self, owner: str, request_id: str, after_version: int) -> list[CertificateRequest]:
        rows = self._read(
            "SELECT snapshot FROM request_history WHERE owner = ? AND request_id = ? "
            "AND version > ? ORDER BY version",
            (owner, request_id, after_version),
        )
        return [snapshot_from_json(r[0]) for r in rows]

    def list_requests(self, query: ListQuery) -> Page:
        where, params = list_filter(query, "?")
        rows = self._read(
            f"SELECT seq, {REQUEST_COLUMNS} FROM requests {where} "  # noqa: S608 - fixed clauses
            "ORDER BY seq DESC LIMIT ?",
            (*params, query.limit + 1),
        )
        return page([dict(r) for r in rows], query.limit)

    def active(self) -> list[CertificateRequest]:
        marks = ", ".join("?" for _ in _TERMINAL)
        rows = self._read(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE state NOT IN ({marks}) ORDER BY seq",  # noqa: S608
            _TERMINAL,
        )
        return [request_from_row(dict(r)) for r in rows]

    def by_serial(self, serial_number: str) -> CertificateRequest | None:
        rows = self._read(
            f"SELECT {REQUEST_COLUMNS} FROM requests WHERE serial_number = ?",  # noqa: S608
            (serial_number.upper(),),
        )
        return request_from_row(dict(rows[0])) if rows else None

    def count_by_state(self) -> dict[str, int]:
        rows = self._read("SELECT state, count(*) FROM requests GROUP BY state")
        return {str(row[0]): int(row[1]) for row in rows}

    def certificate(self, owner: str, request_id: str) -> IssuedCertificate | None:
        rows = self._read(
            f"SELECT {CERTIFICATE_COLUMNS} FROM certificates "  # noqa: S608 - fixed names
            "WHERE owner = ? AND request_id = ?",
            (owner, request_id),
        )
        return self._sealed.certificate(owner, request_id, dict(rows[0])) if rows else None

    def record_audit(self, entry: AuditEntry) -> None:
        with self._write() as db:
            self._insert_audit(db, entry)

    @staticmethod
    def _insert_audit(db: sqlite3.Connection, entry: AuditEntry) -> None:
        db.execute(
            f"INSERT INTO audit ({AUDIT_COLUMNS}) "  # noqa: S608 - fixed names
            "VALUES (?, ?, ?, ?, ?, ?)",
            audit_values(entry),
        )

    def audit_log(
        self, owner: str | None = None, request_id: str | None = None
    ) -> list[AuditEntry]:
        where, params = audit_filter(owner, request_id, "?")
        rows = self._read(
            f"SELECT {AUDIT_COLUMNS} FROM audit {where} ORDER BY id",  # noqa: S608
            tuple(params),
        )
        return [audit_from_row(dict(r)) for r in rows]

    @property
    def holder(self) -> str:
        return self._holder

    def claim(
        self, keys: Sequence[Key] | None = None, limit: int = 100, own_only: bool = False
    ) -> list[Claim]:
        marks = ", ".join("?" for _ in _TERMINAL)
        unfinished = f"state NOT IN ({marks})"
        columns = "owner, request_id, lease_holder, lease_expires, lease_epoch"
        with self._write() as db:
            if keys is None:
                rows = db.execute(
                    f"SELECT {columns} FROM requests WHERE {unfinished} "  # noqa: S608
                    "AND lease_holder IS NOT ? ORDER BY seq LIMIT ?",
                    (*_TERMINAL, self._holder, limit),
                ).fetchall()
            else:
                rows = [
                    row
                    for key in keys
                    for row in db.execute(
                        f"SELECT {columns} FROM requests "  # noqa: S608
                        f"WHERE owner = ? AND request_id = ? AND {unfinished}",
                        (*key, *_TERMINAL),
                    ).fetchall()
                ]
            if own_only:
                rows = [row for row in rows if row[2] == self._holder]
            now = time.time()
            claims = []
            for row in rows:
                live = row[2] == self._holder and (row[3] or 0) > now
                epoch = int(row[4]) if live else int(row[4]) + 1
                db.execute(
                    "UPDATE requests SET lease_holder = ?, lease_expires = ?, lease_epoch = ? "
                    "WHERE owner = ? AND request_id = ?",
                    (self._holder, now + self._lease, epoch, row[0], row[1]),
                )
                claims.append(
                    Claim((row[0], row[1]), row[2] is not None and row[2] != self._holder, epoch)
                )
        return claims

    def renew(self) -> Renewal:
        marks = ", ".join("?" for _ in _TERMINAL)
        with self._write() as db:
            rows = db.execute(
                "UPDATE requests SET lease_expires = ? "  # noqa: S608 - fixed clauses
                f"WHERE lease_holder = ? AND state NOT IN ({marks}) RETURNING owner, request_id",
                (time.time() + self._lease, self._holder, *_TERMINAL),
            ).fetchall()
        return Renewal(frozenset((row[0], row[1]) for row in rows))

    def release(self) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE requests SET lease_holder = NULL, lease_expires = NULL "
                "WHERE lease_holder = ?",
                (self._holder,),
            )

    def on_change(self, callback: ChangeCallback) -> None:
        """Nothing to listen to: one process owns a SQLite store, and it notifies itself."""

    def ping(self) -> None:
        self._read("SELECT 1")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        os.close(self._owner_lock)


def _lock_exclusively(path: Path) -> int:
    """Hold an exclusive lock on ``path`` until closed: one process per store, because two
    trackers on one store could each send the same order. The OS drops it if the process dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(
            f"the store {path.with_suffix('')} is already in use by another sectigo-svc"
        ) from None
    return fd


def backup_database(source: Path, destination: Path) -> None:
    """A consistent copy of a live store (SQLite's online backup), created 0600, never over a file.

    Safe while the service runs: the copy is one transaction-consistent snapshot, WAL included.
    The copy is marked as a backup, so that a service restored from it treats every unfinished
    request as in doubt instead of ordering it again without a lookup.
    """
    try:
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise StoreError(f"{destination} exists; back up into an empty place") from None
    os.close(fd)
    try:
        with (
            contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as live,
            contextlib.closing(sqlite3.connect(destination)) as copy,
        ):
            live.backup(copy)
            with copy:
                copy.execute(
                    "INSERT OR REPLACE INTO store_marks VALUES (?, ?)",
                    (BACKUP_MARK, dt.datetime.now(dt.UTC).timestamp()),
                )
    except sqlite3.Error as exc:
        destination.unlink(missing_ok=True)
        raise StoreError(f"backup of {source} failed: {exc}") from exc
