"""A throwaway PostgreSQL cluster for the store tests, and a ``store`` fixture over both backends.

The server refuses to run as root, so as root the cluster belongs to the ``postgres`` system user
(created when missing); it listens on 127.0.0.1 on a free port with trust authentication.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
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

CLUSTER_USER = "postgres"
KEY = b"k" * KEY_BYTES


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    pytest.fail(
        f"PostgreSQL's {name} is not installed: the store tests need a PostgreSQL server "
        "(Debian: apt-get install postgresql; `make system-deps` does it)"
    )


def _as_cluster_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(CLUSTER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", CLUSTER_USER], check=True)
    return ["runuser", "-u", CLUSTER_USER, "--"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A libpq URL of a fresh PostgreSQL cluster's superuser (no database name)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    prefix = _as_cluster_user()
    # Not under pytest's tmp dir: that is 0700 root, and the server runs as another user.
    root = Path(tempfile.mkdtemp(prefix="sectigo-pg-"))
    data = root / "data"
    if prefix:
        shutil.chown(root, CLUSTER_USER)
    port = _free_port()

    def run(*command: str) -> None:
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"{command[0]} failed: {done.stdout}\n{done.stderr}")

    run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


_databases = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A URL of a new, empty database in the test cluster."""
    name = f"store_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@dataclass
class Backend:
    """A store under test and a way to query its tables directly, bypassing the store."""

    name: str
    store: RequestStore
    raw: Callable[[str], list[tuple[Any, ...]]]


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

    yield Backend(request.param, open_store(), raw)
    for store in opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> RequestStore:
    return backend.store
