"""PostgresTokenShare: replicas on one PostgreSQL database share one Sectigo login.

Real HTTP against the emulator and a real PostgreSQL: each "replica" is a SectigoClient with its
own PostgresTokenShare (its own connection) on one database, as separate processes would be.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from structlog.testing import capture_logs

from sectigo_svc.emulator import Emulator
from sectigo_svc.sealing import KEY_BYTES, Sealer
from sectigo_svc.sectigo import Environment, SectigoClient, SectigoConfig
from sectigo_svc.sectigo.models import Tokens
from sectigo_svc.sectigo.token_cache import account_key
from sectigo_svc.store import token_share
from sectigo_svc.store.postgres import PostgresStore
from sectigo_svc.store.token_share import PostgresTokenShare
from tests.conftest import EmulatorFactory
from tests.postgres_cluster import Cluster
from tests.sectigo.conftest import Management
from tests.sectigo.fakes import PASSWORD, USERNAME, credentials, make_tokens
from tests.store.conftest import KEY

OTHER_KEY = b"o" * KEY_BYTES
ACCOUNT = account_key("http://127.0.0.1:1", USERNAME)
URL_PASSWORD = "pg-secret-in-the-url"

Replica = Callable[..., SectigoClient]


def migrated(url: str) -> str:
    """``url`` after a PostgresStore made its schema (the sectigo_tokens table)."""
    PostgresStore(url, Sealer(KEY), pool_size=1).close()
    return url


@pytest.fixture
def database(postgres_url: str) -> str:
    return migrated(postgres_url)


@pytest.fixture
def shares() -> Iterator[Callable[..., PostgresTokenShare]]:
    opened: list[PostgresTokenShare] = []

    def make(url: str, key: bytes = KEY, account: str = ACCOUNT, **options: Any) -> Any:
        opened.append(PostgresTokenShare(url, Sealer(key), account, **options))
        return opened[-1]

    yield make
    for share in opened:
        share.close()


@pytest.fixture
def replicas(shares: Callable[..., PostgresTokenShare]) -> Iterator[Replica]:
    """Build replicas: clients of ``emulator`` sharing tokens in the database at ``url``."""
    built: list[SectigoClient] = []

    def make(emulator: Emulator, url: str, key: bytes = KEY, **overrides: Any) -> SectigoClient:
        settings: dict[str, Any] = {
            "endpoint": emulator.api_url,
            "environment": Environment.TESTING,
            "token_cache": False,
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
            "max_attempts": 5,
        }
        settings.update(overrides)
        config = SectigoConfig(**settings)
        share = shares(url, key, account_key(config.base_url, USERNAME))
        built.append(SectigoClient.build(config, credentials(), token_share=share))
        return built[-1]

    yield make
    for client in built:
        client.close()


def renewals(stats: dict[str, Any]) -> int:
    return int(stats["logins"]) + int(stats["refreshes"])


def test_three_replicas_calling_for_several_lifetimes_log_in_once(
    emulator_factory: EmulatorFactory, database: str, replicas: Replica
) -> None:
    lifetime, margin, duration = 3, 1.4, 5.0
    emulator = emulator_factory(access_lifetime=lifetime, refresh_lifetime=120)
    fleet = [replicas(emulator, database, refresh_margin=margin) for _ in range(3)]
    failures: list[BaseException] = []
    calls = [0]
    barrier = threading.Barrier(6)
    count = threading.Lock()

    def work(client: SectigoClient) -> None:
        barrier.wait(timeout=10)
        end = time.monotonic() + duration
        while time.monotonic() < end:
            try:
                client.authorities()
            except Exception as exc:  # every failure is reported below
                failures.append(exc)
            with count:
                calls[0] += 1
            time.sleep(0.02)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(work, fleet * 2))

    stats = Management(emulator.management_url).stats()
    assert failures == []
    assert calls[0] > 30
    assert stats["logins"] == 1
    # A pair is renewed once it is stale, (lifetime - margin) s after receipt; shared, that
    # happens about once per period for the whole fleet (alone, each replica would renew).
    periods = math.ceil(duration / (lifetime - margin))
    assert 1 <= stats["refreshes"] <= periods + 2


def test_a_token_sectigo_rejects_is_renewed_once_for_all_replicas(
    emulator_factory: EmulatorFactory, database: str, replicas: Replica
) -> None:
    emulator = emulator_factory()
    management = Management(emulator.management_url)
    fleet = [replicas(emulator, database) for _ in range(3)]
    for client in fleet:
        client.authorities()
    assert (management.stats()["logins"], management.stats()["refreshes"]) == (1, 0)

    management.rotate_signing_key()
    before = management.stats()
    barrier = threading.Barrier(6)

    def call(client: SectigoClient) -> int:
        barrier.wait(timeout=10)
        return len(client.authorities())

    with ThreadPoolExecutor(6) as pool:
        assert all(list(pool.map(call, fleet * 2)))

    after = management.stats()
    # The foreign refresh token is refused once, then one login serves all three replicas.
    assert after["requests"].get("refresh", 0) - before["requests"].get("refresh", 0) == 1
    assert renewals(after) - renewals(before) == 1
    assert after["logins"] == 2


def test_the_row_holds_the_tokens_sealed_under_the_account_key(
    emulator_factory: EmulatorFactory,
    database: str,
    replicas: Replica,
    shares: Callable[..., PostgresTokenShare],
) -> None:
    emulator = emulator_factory()
    replicas(emulator, database).authorities()
    account = account_key(emulator.api_url, USERNAME)
    loaded = shares(database, account=account).load()
    assert loaded is not None
    with psycopg.connect(database) as db:
        rows = db.execute("SELECT account, sealed FROM sectigo_tokens").fetchall()
    assert [row[0] for row in rows] == [account]
    stored = bytes(rows[0][1])
    for token in (loaded.tokens.access_token, loaded.tokens.refresh_token):
        for part in [token, *token.split(".")]:
            assert part.encode() not in stored
    assert USERNAME.encode() not in stored and USERNAME not in rows[0][0]


def test_a_share_with_another_data_key_ignores_the_row_with_a_warning(
    emulator_factory: EmulatorFactory,
    database: str,
    replicas: Replica,
    shares: Callable[..., PostgresTokenShare],
) -> None:
    emulator = emulator_factory()
    management = Management(emulator.management_url)
    replicas(emulator, database).authorities()
    with capture_logs() as logs:
        assert shares(database, OTHER_KEY, account_key(emulator.api_url, USERNAME)).load() is None
        replicas(emulator, database, key=OTHER_KEY).authorities()
    assert management.stats()["logins"] == 2
    events = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert "sectigo shared tokens do not open with this data key; ignored" in events


def test_a_row_does_not_open_for_another_account(
    database: str, shares: Callable[..., PostgresTokenShare]
) -> None:
    shares(database).save(make_tokens(time.time()), time.time())
    with psycopg.connect(database) as db:
        db.execute(
            "INSERT INTO sectigo_tokens "
            "SELECT 'other', sealed, received_at, written_at FROM sectigo_tokens"
        )
    assert shares(database, account="other").load() is None
    assert shares(database).load() is not None


def test_an_earlier_pair_does_not_replace_a_later_one_but_an_undated_one_does(
    database: str, shares: Callable[..., PostgresTokenShare]
) -> None:
    share = shares(database)
    now = time.time()
    later, earlier = make_tokens(now, serial=1), make_tokens(now - 60, serial=2)
    share.save(later, now)
    share.save(earlier, now - 60)
    loaded = share.load()
    assert loaded is not None and loaded.tokens == later
    assert loaded.received_wall is not None and abs(loaded.received_wall - now) < 30
    assert abs(loaded.written_wall - time.time()) < 30

    undated = make_tokens(now, serial=3)
    share.save(undated)
    loaded = share.load()
    assert loaded is not None and (loaded.tokens, loaded.received_wall) == (undated, None)


def test_the_lock_serialises_renewals_of_one_account_only(
    database: str, shares: Callable[..., PostgresTokenShare]
) -> None:
    holder, waiter = shares(database), shares(database, lock_timeout=30)
    impatient = shares(database, lock_timeout=0.2)
    other_account = shares(database, account="other", lock_timeout=0.2)
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with holder.locked():
            inside.set()
            release.wait(timeout=10)
            order.append("holder out")

    def wait() -> None:
        with waiter.locked():
            order.append("waiter in")

    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(hold)
        assert inside.wait(timeout=10)
        waited = pool.submit(wait)
        with capture_logs() as logs:
            with impatient.locked():
                order.append("impatient in, unlocked")
            with other_account.locked():
                order.append("other account in")
        release.set()
        held.result(timeout=10)
        waited.result(timeout=30)
    assert order == [
        "impatient in, unlocked",
        "other account in",
        "holder out",
        "waiter in",
    ]
    assert [e["event"] for e in logs] == ["sectigo token share lock timed out"]


def test_replicas_whose_database_is_down_log_in_alone_and_say_so_without_secrets(
    emulator_factory: EmulatorFactory,
    own_postgres: Cluster,
    replicas: Replica,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(token_share, "RECONNECT_AFTER", 0.0)
    emulator = emulator_factory()
    management = Management(emulator.management_url)
    url = migrated(own_postgres.database()).replace("postgres@", f"postgres:{URL_PASSWORD}@")
    fleet = [replicas(emulator, url) for _ in range(3)]
    own_postgres.stop()
    with capture_logs() as logs:
        tokens = {client.credential_store.access_token() for client in fleet}
        for client in fleet:
            client.authorities()
    assert management.stats()["logins"] == 3
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert {e["event"] for e in warnings} >= {
        "sectigo token share not locked",
        "sectigo token share not read",
        "sectigo token share not written",
    }
    text = json.dumps(logs, default=str)
    for secret in (PASSWORD, URL_PASSWORD, "eyJ", *tokens):
        assert secret not in text

    own_postgres.start()
    fleet[0].refresh()
    shared = fleet[1].credential_store.token_share
    late = SectigoClient.build(
        SectigoConfig(
            endpoint=emulator.api_url, environment=Environment.TESTING, token_cache=False
        ),
        credentials(),
        token_share=shared,
    )
    try:
        late.authorities()
    finally:
        late.close()
    assert (management.stats()["logins"], management.stats()["refreshes"]) == (3, 1)


def test_repr_and_description_hide_the_password() -> None:
    share = PostgresTokenShare(
        f"postgresql://svc:{URL_PASSWORD}@db.example:5433/tokens", Sealer(KEY), ACCOUNT
    )
    assert URL_PASSWORD not in repr(share)
    assert share.description == "postgresql://db.example:5433/tokens table sectigo_tokens"
    share.close()


def test_a_closed_share_is_unusable_but_never_raises(
    database: str, shares: Callable[..., PostgresTokenShare]
) -> None:
    share = shares(database)
    share.close()
    with capture_logs() as logs, share.locked():
        share.save(Tokens("a", "b"), time.time())
        assert share.load() is None
    assert len(logs) == 3
