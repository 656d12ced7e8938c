"""Tokens at the emulator: expiry mid-run, refresh fallback, key rotation, single flight, cache."""

from __future__ import annotations

import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from structlog.testing import capture_logs

from sectigo_svc.sectigo import SectigoClient, TokenState
from tests.sectigo.conftest import ClientFactory, Management
from tests.sectigo.fakes import PASSWORD, USERNAME


def run_threads(client: SectigoClient, threads: int = 64) -> None:
    """Call ``authorities`` from many threads released together; every call must succeed."""
    barrier = threading.Barrier(threads)

    def one(_: int) -> int:
        barrier.wait()
        return len(client.authorities())

    with ThreadPoolExecutor(threads) as pool:
        assert set(pool.map(one, range(threads))) == {2}


def test_short_lived_tokens_are_renewed_transparently_mid_run(
    client: SectigoClient, management: Management
) -> None:
    management.settings(access_lifetime=1, refresh_lifetime=60)
    deadline = time.monotonic() + 2.5
    calls = 0
    while time.monotonic() < deadline:
        client.authorities()
        calls += 1
    stats = management.stats()
    assert calls > 10
    assert stats["logins"] == 1
    assert stats["refreshes"] >= 2
    # A token can expire between sending and arriving; those 401s were replayed transparently.
    assert stats["responses"]["authorities"]["200"] == calls


def test_a_failed_refresh_falls_back_to_login(
    client: SectigoClient, management: Management
) -> None:
    management.settings(access_lifetime=1, refresh_lifetime=60)
    client.authorities()
    before = management.stats()  # a stale token may already have been refreshed once
    management.add_fault(kind="error", status=401, routes=["refresh"], count=1)
    time.sleep(1.1)
    with capture_logs() as logs:
        client.authorities()
    stats = management.stats()
    assert stats["requests"]["refresh"] == before["requests"].get("refresh", 0) + 1
    assert stats["logins"] == before["logins"] + 1 == 2
    assert any(e["event"] == "sectigo token refresh failed; logging in" for e in logs)


def test_a_new_signing_key_is_recovered_through_the_401_path(
    client: SectigoClient, management: Management
) -> None:
    client.authorities()
    management.rotate_signing_key()
    with capture_logs() as logs:
        assert len(client.authorities()) == 2
    stats = management.stats()
    assert stats["logins"] == 2
    assert stats["responses"]["authorities"] == {"200": 2, "401": 1}
    events = [e["event"] for e in logs]
    assert "sectigo token rejected, re-authenticating" in events
    assert "sectigo token refresh failed; logging in" in events


def test_64_threads_without_tokens_log_in_once(
    make_client: ClientFactory, management: Management
) -> None:
    run_threads(make_client(pool_size=64))
    assert management.stats()["logins"] == 1


def test_64_threads_finding_an_expired_token_log_in_once(
    make_client: ClientFactory, management: Management
) -> None:
    client = make_client(pool_size=64)
    management.settings(access_lifetime=1, refresh_lifetime=1)
    client.authorities()
    before = management.stats()
    time.sleep(1.1)
    status = client.credential_store.status()
    assert status is not None and status.state is TokenState.EXPIRED
    # The new pair must outlive the run: a 1 s pair could expire again under the 64 threads.
    management.settings(access_lifetime=600, refresh_lifetime=7200)
    run_threads(client)
    stats = management.stats()
    assert stats["logins"] == before["logins"] + 1
    assert stats["requests"].get("refresh", 0) == before["requests"].get("refresh", 0)


def test_64_threads_after_a_key_rotation_log_in_once(
    make_client: ClientFactory, management: Management
) -> None:
    client = make_client(pool_size=64)
    client.authorities()
    management.rotate_signing_key()
    run_threads(client)
    stats = management.stats()
    assert stats["logins"] == 2
    assert stats["requests"]["refresh"] == 1


def test_the_token_cache_is_private_and_shared_by_later_clients(
    make_client: ClientFactory, management: Management, tmp_path: Path
) -> None:
    first = make_client()
    first.authorities()
    path = first.credential_store.cache_path
    assert path is not None and path.is_relative_to(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    assert USERNAME not in content and PASSWORD not in content
    written = path.stat().st_mtime_ns
    second = make_client()
    second.authorities()
    first.authorities()
    assert management.stats()["logins"] == 1
    assert path.stat().st_mtime_ns == written


def test_login_and_refresh_on_demand(client: SectigoClient, management: Management) -> None:
    status = client.login()
    assert status.state is TokenState.FRESH and status.subject == "/account/7/user/10"
    refreshed = client.refresh()
    assert refreshed.state is TokenState.FRESH
    client.authorities()
    stats = management.stats()
    assert (stats["logins"], stats["refreshes"]) == (1, 1)
