"""What only the PostgreSQL store promises: one schema from concurrent opens, clear errors that
never show the URL's password, a refused data key, a refused newer schema."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from sectigo_svc.sealing import KEY_BYTES, Sealer, SealingError
from sectigo_svc.store.base import StoreError
from sectigo_svc.store.postgres import OPERATION_LIMIT, PostgresStore
from sectigo_svc.store.schema import POSTGRES_MIGRATIONS
from tests.postgres_cluster import Cluster
from tests.store.conftest import KEY

SECRET = "hunter2-very-secret"


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that nothing listens on while the block runs."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield int(bound.getsockname()[1])


def test_three_stores_opened_at_once_make_one_schema(postgres_url: str) -> None:
    barrier = threading.Barrier(3)

    def open_store() -> PostgresStore:
        barrier.wait(timeout=30)
        return PostgresStore(postgres_url, Sealer(KEY), pool_size=2)

    with ThreadPoolExecutor(3) as pool:
        stores = list(pool.map(lambda _: open_store(), range(3)))
    try:
        with psycopg.connect(postgres_url) as db:
            versions = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
            canaries = db.execute("SELECT count(*) FROM sealing_check").fetchone()
        assert versions == [(n,) for n in range(1, len(POSTGRES_MIGRATIONS) + 1)]
        assert canaries == (1,)
        assert all(s.schema_version == len(POSTGRES_MIGRATIONS) for s in stores)
    finally:
        for store in stores:
            store.close()


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    with closed_port() as port:
        url = f"postgresql://svc:{SECRET}@127.0.0.1:{port}/requests"
        with pytest.raises(StoreError) as caught:
            PostgresStore(url, Sealer(KEY))
    message = str(caught.value)
    assert f"127.0.0.1:{port}/requests" in message
    assert SECRET not in message
    assert SECRET not in repr(caught.value)


def test_a_missing_database_is_named_without_the_password(postgres_server: str) -> None:
    host = postgres_server.removeprefix("postgresql://postgres@")
    url = f"postgresql://postgres:{SECRET}@{host}/no_such_database"

    with pytest.raises(StoreError, match="no_such_database") as caught:
        PostgresStore(url, Sealer(KEY))
    assert SECRET not in str(caught.value)


def test_repr_hides_the_password(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{SECRET}@")
    store = PostgresStore(url, Sealer(KEY))
    try:
        assert SECRET not in repr(store)
    finally:
        store.close()


def test_another_data_key_is_refused(postgres_url: str) -> None:
    PostgresStore(postgres_url, Sealer(KEY)).close()

    with pytest.raises(SealingError, match="data key"):
        PostgresStore(postgres_url, Sealer(b"x" * KEY_BYTES))


def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    PostgresStore(postgres_url, Sealer(KEY)).close()
    with psycopg.connect(postgres_url) as db:
        db.execute("INSERT INTO schema_version VALUES (%s)", (len(POSTGRES_MIGRATIONS) + 1,))

    with pytest.raises(StoreError, match="newer than this code"):
        PostgresStore(postgres_url, Sealer(KEY))


def test_a_closed_store_refuses_work(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, Sealer(KEY))
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.ping()


def test_a_statement_under_way_when_the_server_stops_answering_is_abandoned(
    own_postgres: Cluster,
) -> None:
    """The server's own timeouts do not fire while it is stopped: the client bounds the wait."""
    url = own_postgres.database()
    store = PostgresStore(url, Sealer(KEY))
    try:
        store.ping()  # its connection is open when the server stops
        ended: list[BaseException] = []

        def wait_for_the_lock() -> None:
            try:
                store.claim([("someone", "locked")])
            except BaseException as exc:
                ended.append(exc)

        with psycopg.connect(url) as operator:
            operator.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
            waiting = threading.Thread(target=wait_for_the_lock)
            waiting.start()
            time.sleep(0.5)  # the claim waits for the lock (lock_timeout: 2 s, on the server)
            with own_postgres.frozen():
                started = time.monotonic()
                waiting.join(15)
                took = time.monotonic() - started
                assert not waiting.is_alive(), "the claim still waits on a silent server"
                (error,) = ended
                assert isinstance(error, StoreError), error
                assert "did not answer" in str(error)
                assert took < OPERATION_LIMIT + 1

                with pytest.raises(StoreError, match="no answer"):
                    store.ping()
                with pytest.raises(StoreError, match="does not answer"):
                    store.get("someone", "any")
            operator.rollback()
        store.ping()
        assert store.get("someone", "any") is None
    finally:
        store.close()
