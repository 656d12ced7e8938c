"""Moving a SQLite request store into an empty PostgreSQL store (``sectigo-svc copy-store``).

Rows are copied as stored, not through the store API, so nothing a backend keeps is lost: request
sequence numbers (page tokens stay valid), audit ids, every version of the history, sealed secrets
(the same data key opens them, since their sealing context names the request, not the backend)
and store marks (a restored copy stays marked as restored). Leases are left empty: the first
replica to start claims every unfinished request and looks each up at Sectigo before ordering.

Not copied: the schema version and sealing canary (the target makes its own on open) and cached
Sectigo tokens (the replicas log in again).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from sectigo_svc.sealing import Sealer
from sectigo_svc.store.base import StoreError
from sectigo_svc.store.database_url import describe, password_in
from sectigo_svc.store.postgres import PostgresStore
from sectigo_svc.store.sqlite import SqliteStore

# The tables copied, in this order; ``requests`` and ``audit`` keep their identity values.
TABLES = ("requests", "request_history", "certificates", "audit", "store_marks")
_IDENTITIES = {"requests": "seq", "audit": "id"}
_LEASE_COLUMNS = frozenset({"lease_holder", "lease_expires"})
_CONNECT_TIMEOUT = 10
_LOCK_TIMEOUT = "10s"  # how long the copy waits for a running replica's writes to end


@dataclass(frozen=True)
class TransferReport:
    """A verified copy: ``counts`` maps each of :data:`TABLES` (in that order) to the rows it
    holds in both stores; ``target`` is the database as ``postgresql://host:port/db``."""

    source: Path
    target: str
    counts: dict[str, int]


def copy_to_postgres(source: Path, url: str, sealer: Sealer) -> TransferReport:
    """Copy every row of :data:`TABLES` from the SQLite store ``source`` into the PostgreSQL
    store at ``url`` (a libpq URL or conninfo, password included if one is needed), in one
    transaction, then verify it before committing.

    ``sealer`` must hold the data key of both stores. Both schemas are brought to this code's
    version first (the source file is migrated in place, as a service start would).

    Raises :class:`StoreError` when ``source`` is no store or is in use by a running service,
    when the target is unreachable or holds any request, history, certificate, audit or mark
    row, or when the verification finds a table whose row count differs or a request missing
    (nothing is then committed); :class:`~sectigo_svc.sealing.SealingError` when ``sealer`` does
    not open the source's secrets or an existing target's. No message holds the URL's password.
    """
    if not source.is_file():
        raise StoreError(f"{source} is not a file: name the SQLite store to copy")
    where = describe(url)
    # Both store objects are opened for their checks (schema made or migrated, data key tried),
    # and SQLite's for its exclusive lock too: no service can start on the file meanwhile.
    with contextlib.closing(SqliteStore(source, sealer)):
        PostgresStore(url, sealer, pool_size=1).close()
        with _read_only(source) as reader:
            try:
                counts = _copy(reader, url)
            except psycopg.Error as exc:
                raise _scrubbed(f"copy into {where} failed", exc, url) from None
            except sqlite3.Error as exc:
                raise StoreError(f"reading the store {source} failed: {exc}") from exc
    return TransferReport(source, where, counts)


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the SQLite file, inside one read transaction (a snapshot)."""
    try:
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store {path}: {exc}") from exc
    try:
        connection.execute("BEGIN")
        yield connection
    finally:
        connection.close()


def _copy(reader: sqlite3.Connection, url: str) -> dict[str, int]:
    with (
        psycopg.connect(url, connect_timeout=_CONNECT_TIMEOUT) as target,
        target.transaction(),
        target.cursor() as db,
    ):
        db.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT)))
        # Replicas already running on the target may read, but not write, until the commit.
        db.execute(
            sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                sql.SQL(", ").join(map(sql.Identifier, TABLES))
            )
        )
        _refuse_unless_empty(db)
        for table in TABLES:
            _copy_table(reader, db, table)
        for table, column in _IDENTITIES.items():
            _move_identity(reader, db, table, column)
        return _verify(reader, db)


def _refuse_unless_empty(db: psycopg.Cursor[Any]) -> None:
    held = {table: _count(db, table) for table in TABLES}
    if any(held.values()):
        rows = ", ".join(f"{table}: {n}" for table, n in held.items() if n)
        raise StoreError(f"the target store is not empty ({rows}); copy only into a new database")


def _columns(reader: sqlite3.Connection, db: psycopg.Cursor[Any], table: str) -> list[str]:
    """The table's columns, which must be the same in both stores."""
    source = [str(row[1]) for row in reader.execute(f"PRAGMA table_info({table})")]
    target = {
        str(row[0])
        for row in db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
    }
    if set(source) != target:
        raise StoreError(
            f"table {table} differs between the stores: only in SQLite "
            f"{sorted(set(source) - target)}, only in PostgreSQL {sorted(target - set(source))}"
        )
    return source


def _copy_table(reader: sqlite3.Connection, db: psycopg.Cursor[Any], table: str) -> None:
    """Every row of ``table``, streamed with COPY (which keeps identity values as given)."""
    columns = _columns(reader, db, table)
    cleared = [n for n, name in enumerate(columns) if name in _LEASE_COLUMNS]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    names = ", ".join(f'"{name}"' for name in columns)
    with db.copy(statement) as copy:
        for row in reader.execute(f"SELECT {names} FROM {table}"):  # noqa: S608 - fixed names
            values = list(row)
            for n in cleared:
                values[n] = None
            copy.write_row(values)


def _move_identity(
    reader: sqlite3.Connection, db: psycopg.Cursor[Any], table: str, column: str
) -> None:
    """Set the identity past every value SQLite used (its highest row, or AUTOINCREMENT's
    counter if higher), so new rows sort after the copied ones and ids are never reused."""
    (highest,) = reader.execute(f"SELECT max({column}) FROM {table}").fetchone()  # noqa: S608
    counter = reader.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    used = max(int(highest or 0), int(counter[0]) if counter else 0)
    if used:
        db.execute(
            "SELECT setval(pg_get_serial_sequence(%s, %s), %s)",
            (table, column, used),
        )


def _verify(reader: sqlite3.Connection, db: psycopg.Cursor[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in TABLES:
        (expected,) = reader.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        found = _count(db, table)
        if found != expected:
            raise StoreError(
                f"verification failed: {table} has {expected} rows in the source "
                f"but {found} in the target; nothing was committed"
            )
        counts[table] = found
    keys = "SELECT seq, owner, request_id FROM requests"
    missing = {tuple(r) for r in reader.execute(keys)} - {tuple(r) for r in db.execute(keys)}
    if missing:
        raise StoreError(
            f"verification failed: {len(missing)} requests of the source are not in the target "
            "under the same sequence number; nothing was committed"
        )
    return counts


def _count(db: psycopg.Cursor[Any], table: str) -> int:
    row = db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def _scrubbed(what: str, exc: BaseException, url: str) -> StoreError:
    text = str(exc).strip()
    secret = password_in(url)
    if secret:
        text = text.replace(secret, "***")
    return StoreError(f"{what}: {text}")
