"""Leases on requests and change notifications: the parts of the store contract that replicas on
one PostgreSQL database rely on (and that SQLite, owned by one process, keeps simple)."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from sectigo_svc.domain.leases import LeaseKeeper
from sectigo_svc.domain.models import RequestState
from sectigo_svc.sealing import Sealer
from sectigo_svc.store.base import Key, RequestStore, StoreError
from sectigo_svc.store.postgres import PostgresStore
from sectigo_svc.store.sqlite import SqliteStore
from tests.store.conftest import KEY, Backend
from tests.store.test_contract import _request


def _replica(url: str, name: str, lease_seconds: float = 30.0) -> PostgresStore:
    return PostgresStore(
        url, Sealer(KEY), pool_size=2, holder=f"{name}/1/x", lease_seconds=lease_seconds
    )


def test_a_request_is_leased_to_its_creator_and_only_unfinished_ones_are_claimed(
    backend: Backend,
) -> None:
    store = backend.store
    open_one, _ = store.create(_request("open"), None)
    done, _ = store.create(_request("done"), None)
    store.update(dataclasses.replace(done, state=RequestState.READY))

    assert backend.raw("SELECT request_id, lease_holder FROM requests ORDER BY seq") == [
        ("open", store.holder),
        ("done", store.holder),
    ]
    assert store.renew().renewed == {open_one.key}
    claimed = store.claim([open_one.key, done.key])
    assert [(c.key, c.taken_over) for c in claimed] == [(open_one.key, False)]
    assert store.claim(None) == []  # nothing free: the one open request is held already


def test_a_request_on_hold_is_neither_active_nor_leased(backend: Backend) -> None:
    """ON_HOLD has no Sectigo batch work left: the tracker must never be handed it."""
    store = backend.store
    request, _ = store.create(_request("held"), None)
    ready = store.update(dataclasses.replace(request, state=RequestState.READY))
    store.update(dataclasses.replace(ready, state=RequestState.ON_HOLD))

    assert store.active() == []
    assert store.renew().renewed == frozenset()
    assert store.claim([request.key]) == []
    assert store.claim(None) == []
    assert store.count_by_state() == {"ON_HOLD": 1}


def test_released_leases_are_claimed_by_the_next_holder_without_a_takeover(
    backend: Backend, tmp_path: Path
) -> None:
    store = backend.store
    for number in range(3):
        store.create(_request(f"r{number}"), None)
    store.release()
    assert store.renew().renewed == set()
    if backend.name == "sqlite":
        store.close()
        successor: RequestStore = SqliteStore(tmp_path / "requests.db", Sealer(KEY))
    else:
        successor = _replica(backend.url, "successor")
    try:
        claims = successor.claim(None)
        assert sorted(c.key[1] for c in claims) == ["r0", "r1", "r2"]
        assert not any(c.taken_over for c in claims)
        assert len(successor.renew().renewed) == 3
    finally:
        successor.close()


def test_sqlite_takes_over_a_dead_process_leases_at_once(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    first = SqliteStore(path, Sealer(KEY), holder="first/1/a", lease_seconds=3600)
    made, _ = first.create(_request("left-behind"), None)
    first.close()  # as if killed: the lease stays in the file for an hour

    second = SqliteStore(path, Sealer(KEY), holder="second/2/b", lease_seconds=3600)
    try:
        claims = second.claim(None)
        assert [(c.key, c.taken_over) for c in claims] == [(made.key, True)]
    finally:
        second.close()


def test_a_lease_held_by_a_live_replica_is_not_claimed_until_it_lapses(postgres_url: str) -> None:
    first = _replica(postgres_url, "first", lease_seconds=1.0)
    second = _replica(postgres_url, "second", lease_seconds=1.0)
    try:
        made, _ = first.create(_request("held"), None)
        assert second.claim(None) == []
        assert second.claim([made.key]) == []

        time.sleep(1.3)  # first renews nothing: its lease lapses on the database clock
        claims = second.claim(None)

        assert [(c.key, c.taken_over) for c in claims] == [(made.key, True)]
        assert first.renew().renewed == set(), "a lease taken over is no longer the first holder's"
        assert second.renew().renewed == {made.key}
        assert first.claim([made.key]) == []
    finally:
        first.close()
        second.close()


def test_renewing_keeps_a_lease_past_its_time(postgres_url: str) -> None:
    first = _replica(postgres_url, "first", lease_seconds=1.0)
    second = _replica(postgres_url, "second", lease_seconds=1.0)
    try:
        made, _ = first.create(_request("kept"), None)
        for _ in range(4):
            time.sleep(0.4)
            assert first.renew().renewed == {made.key}
            assert second.claim(None) == []
    finally:
        first.close()
        second.close()


def test_replicas_claiming_at_once_each_get_a_disjoint_share(postgres_url: str) -> None:
    maker = _replica(postgres_url, "maker")
    for number in range(60):
        maker.create(_request(f"r{number:02d}"), None)
    maker.release()
    maker.close()
    replicas = [_replica(postgres_url, f"replica-{n}") for n in range(3)]
    try:
        start = threading.Barrier(3)

        def take(store: PostgresStore) -> set[Key]:
            start.wait()
            taken: set[Key] = set()
            while claims := store.claim(None, limit=7):
                taken |= {c.key for c in claims}
            return taken

        with ThreadPoolExecutor(3) as pool:
            shares = list(pool.map(take, replicas))

        assert sum(len(share) for share in shares) == 60
        assert len(set().union(*shares)) == 60, "no request was claimed twice"
    finally:
        for store in replicas:
            store.close()


def test_changes_are_announced_to_other_replicas(postgres_url: str) -> None:
    writer = _replica(postgres_url, "writer")
    listener = _replica(postgres_url, "listener")
    heard: list[tuple[Key, bool]] = []
    arrived = threading.Condition()

    def on_change(key: Key, terminal: bool) -> None:
        with arrived:
            heard.append((key, terminal))
            arrived.notify_all()

    try:
        listener.on_change(on_change)
        time.sleep(0.5)  # the listener connects and LISTENs
        made, _ = writer.create(_request("announced"), None)
        writer.update(dataclasses.replace(made, state=RequestState.READY))
        with arrived:
            assert arrived.wait_for(lambda: len(heard) >= 2, timeout=10), heard
        assert heard == [(made.key, False), (made.key, True)]
    finally:
        writer.close()
        listener.close()


def test_a_failing_listener_does_not_end_the_notifications(postgres_url: str) -> None:
    writer = _replica(postgres_url, "writer")
    listener = _replica(postgres_url, "listener")
    heard: list[str] = []

    def on_change(key: Key, terminal: bool) -> None:
        heard.append(key[1])
        if len(heard) == 1:
            raise RuntimeError("listener fault")

    try:
        listener.on_change(on_change)
        time.sleep(0.5)
        writer.create(_request("first"), None)
        writer.create(_request("second"), None)
        deadline = time.monotonic() + 10
        while len(heard) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard == ["first", "second"]
    finally:
        writer.close()
        listener.close()


def test_a_claim_by_key_waits_for_a_row_locked_a_moment_by_the_holders_own_renewal(
    postgres_url: str,
) -> None:
    store = _replica(postgres_url, "holder")
    try:
        made, _ = store.create(_request("busy"), None)
        with psycopg.connect(postgres_url) as other:
            other.execute(
                "SELECT 1 FROM requests WHERE request_id = 'busy' FOR UPDATE"
            )  # as a renewal in flight would
            threading.Timer(0.5, other.rollback).start()
            claims = store.claim([made.key])
        assert [c.key for c in claims] == [made.key]
    finally:
        store.close()


def test_the_keeper_resumes_its_own_leases_that_nothing_tracks(postgres_url: str) -> None:
    store = _replica(postgres_url, "keeper", lease_seconds=0.6)
    resumed: list[Key] = []
    keeper = LeaseKeeper(store, 0.6, lambda claims: resumed.extend(c.key for c in claims))
    try:
        keeper.start()
        made, _ = store.create(_request("forgotten"), None)  # leased here, never stepped
        deadline = time.monotonic() + 10
        while not resumed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert resumed == [made.key]
    finally:
        keeper.stop(release=True)
        store.close()


def test_a_renewal_skips_a_row_another_session_locked_and_renews_the_rest(
    postgres_url: str,
) -> None:
    store = _replica(postgres_url, "holder")
    try:
        made = [store.create(_request(name), None)[0] for name in ("one", "held", "two")]
        with psycopg.connect(postgres_url) as other:
            other.execute("SELECT 1 FROM requests WHERE request_id = 'held' FOR UPDATE")
            release = threading.Timer(10, other.rollback)  # the old renewal waited for it
            release.start()
            try:
                renewal = store.renew()
            finally:
                release.cancel()
            other.rollback()
        assert renewal.renewed == {made[0].key, made[2].key}
        assert renewal.locked == {made[1].key}
        assert store.renew().renewed == {key.key for key in made}
    finally:
        store.close()


def test_a_write_to_a_row_another_session_locked_fails_after_the_lock_timeout(
    postgres_url: str,
) -> None:
    store = _replica(postgres_url, "holder")
    try:
        made, _ = store.create(_request("held"), None)
        with psycopg.connect(postgres_url) as other:
            other.execute("SELECT 1 FROM requests WHERE request_id = 'held' FOR UPDATE")
            release = threading.Timer(10, other.rollback)  # the old claim waited for it
            release.start()
            try:
                with pytest.raises(StoreError, match="lock timeout") as failed:
                    store.claim([made.key])
            finally:
                release.cancel()
            other.rollback()
        assert "postgresql://" in str(failed.value)  # where, as the store names it
        assert [c.key for c in store.claim([made.key])] == [made.key]
    finally:
        store.close()
