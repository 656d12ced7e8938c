"""A ``store`` fixture over both backends (SQLite, and PostgreSQL in the session's throwaway
cluster from :mod:`tests.postgres_cluster`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sectigo_svc.sealing import KEY_BYTES, Sealer
from sectigo_svc.store.base import RequestStore
from sectigo_svc.store.postgres import PostgresStore
from sectigo_svc.store.sqlite import SqliteStore

KEY = b"k" * KEY_BYTES


@dataclass
class Backend:
    """A store under test and a way to query its tables directly, bypassing the store."""

    name: str
    store: RequestStore
    raw: Callable[[str], list[tuple[Any, ...]]]
    url: str = ""  # PostgreSQL's; empty for SQLite


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[RequestStore] = []
    if request.param == "sqlite":
        path = tmp_path / "requests.db"

        def open_store() -> RequestStore:
            opened.append(SqliteStore(path, Sealer(KEY)))
            return opened[-1]

        def raw(query: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as db:
                return db.execute(query).fetchall()

    else:
        url = request.getfixturevalue("postgres_url")

        def open_store() -> RequestStore:
            opened.append(PostgresStore(url, Sealer(KEY), pool_size=4))
            return opened[-1]

        def raw(query: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(url) as db:
                return db.execute(query.encode()).fetchall()

    yield Backend(request.param, open_store(), raw, url if request.param == "postgres" else "")
    for store in opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> RequestStore:
    return backend.store
