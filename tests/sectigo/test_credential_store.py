"""The credential store: token states, single-flight renewal, refresh fallback, cache, secrets."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from sectigo_svc.sectigo.credential_store import CredentialStore
from sectigo_svc.sectigo.credentials import Credentials, Secret
from sectigo_svc.sectigo.errors import (
    ConnectionFailed,
    CredentialsError,
    InvalidCredentials,
    Unauthenticated,
)
from sectigo_svc.sectigo.token_cache import TokenCache
from sectigo_svc.sectigo.tokens import TokenState
from tests.sectigo.conftest import ClientFactory, Management
from tests.sectigo.fakes import (
    PASSWORD,
    USERNAME,
    FakeAuthenticator,
    FakeClock,
    credentials,
    make_tokens,
)

ENDPOINT = "http://127.0.0.1:8831"


def make_cache(directory: Path, username: str = USERNAME) -> TokenCache:
    return TokenCache(
        directory, ENDPOINT, username, lock_timeout=5.0, logger=structlog.get_logger()
    )


def make_store(
    auth: FakeAuthenticator, clock: FakeClock, cache: TokenCache | None = None
) -> CredentialStore:
    return CredentialStore(
        credentials(), auth, refresh_margin=60, cache=cache, clock=clock, monotonic=clock
    )


def hammer(store: CredentialStore, threads: int = 64) -> set[str]:
    """Call access_token from many threads released at once; return the tokens they got."""
    barrier = threading.Barrier(threads)

    def one() -> str:
        barrier.wait()
        return store.access_token()

    with ThreadPoolExecutor(threads) as pool:
        return set(pool.map(lambda _: one(), range(threads)))


def test_first_call_logs_in_and_fresh_tokens_need_no_network() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    store = make_store(auth, clock)
    token = store.access_token()
    clock.advance(500)
    assert store.access_token() == token
    assert (auth.logins, auth.refreshes) == (1, 0)


def test_64_threads_without_tokens_cause_exactly_one_login() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock, delay=0.05)
    assert len(hammer(make_store(auth, clock))) == 1
    assert (auth.logins, auth.refreshes) == (1, 0)


def test_64_threads_with_an_expired_access_token_cause_exactly_one_refresh() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock, delay=0.05)
    store = make_store(auth, clock)
    first = store.access_token()
    clock.advance(601)
    tokens = hammer(store)
    assert len(tokens) == 1 and first not in tokens
    assert (auth.logins, auth.refreshes) == (1, 1)


def test_64_threads_with_both_tokens_expired_cause_exactly_one_login() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock, delay=0.05)
    store = make_store(auth, clock)
    store.access_token()
    clock.advance(7201)
    assert len(hammer(store)) == 1
    assert (auth.logins, auth.refreshes) == (2, 0)


def test_a_stale_token_is_renewed_by_one_thread_while_others_keep_using_it() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    store = make_store(auth, clock)
    old = store.access_token()
    clock.advance(550)
    auth.delay = 0.3
    renewer = ThreadPoolExecutor(1).submit(store.access_token)
    time.sleep(0.05)
    started = time.monotonic()
    assert store.access_token() == old
    assert time.monotonic() - started < 0.1
    assert renewer.result() != old
    assert auth.refreshes == 1


def test_refresh_failure_falls_back_to_login() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    store = make_store(auth, clock)
    store.access_token()
    clock.advance(700)
    auth.refresh_error = Unauthenticated(
        status=401, message="bad token", error_code=-16, method="POST", endpoint="refresh"
    )
    store.access_token()
    assert (auth.logins, auth.refreshes) == (2, 1)


def test_a_failed_renewal_of_a_stale_token_keeps_the_valid_token_and_backs_off() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    store = make_store(auth, clock)
    token = store.access_token()
    clock.advance(550)
    auth.refresh_error = auth.login_error = ConnectionFailed("login", "POST", "down", sent=False)
    with capture_logs() as logs:
        assert store.access_token() == token
        assert store.access_token() == token
    assert (auth.logins, auth.refreshes) == (2, 1)
    assert any(e["event"] == "sectigo token renewal failed; token still valid" for e in logs)
    clock.advance(6)
    assert store.access_token() == token
    assert (auth.logins, auth.refreshes) == (3, 2)


def test_expired_tokens_with_failing_login_raise() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    auth.login_error = InvalidCredentials(
        status=401, message="bad", error_code=-16, method="POST", endpoint="login"
    )
    with pytest.raises(InvalidCredentials):
        make_store(auth, clock).access_token()


def test_invalidate_forces_renewal_only_for_the_current_token() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    store = make_store(auth, clock)
    first = store.access_token()
    store.invalidate(first)
    second = store.access_token()
    assert second != first and auth.refreshes == 1
    store.invalidate(first)
    assert store.access_token() == second
    assert (auth.logins, auth.refreshes) == (1, 1)


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    store = make_store(auth, clock)
    store.access_token()
    original = auth.refreshed_with
    issue = auth._issue

    def without_refresh_token() -> object:
        tokens = issue()
        return type(tokens)(tokens.access_token, "")

    auth._issue = without_refresh_token  # type: ignore[method-assign,assignment]
    store.refresh()
    store.refresh()
    assert len(original) == 2 and original[0] == original[1]


def test_status_reports_state_without_tokens() -> None:
    clock = FakeClock()
    store = make_store(FakeAuthenticator(clock), clock)
    assert store.status() is None
    status = store.login()
    assert status.state is TokenState.FRESH
    assert status.expires_at == clock() + 600
    clock.advance(600)
    current = store.status()
    assert current is not None and current.state is TokenState.EXPIRED


# The cache file -------------------------------------------------------------------------------


def test_cache_file_is_owner_only_and_never_holds_the_username_or_password(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = make_cache(tmp_path / "cache")
    make_store(FakeAuthenticator(clock), clock, cache).access_token()
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.path.parent.stat().st_mode) == 0o700
    content = cache.path.read_text()
    assert USERNAME not in content and PASSWORD not in content
    assert USERNAME not in cache.path.name
    assert set(json.loads(content)) == {
        "version",
        "key",
        "accessToken",
        "refreshToken",
        "receivedAt",
    }
    assert [p.name for p in cache.path.parent.iterdir() if p.suffix == ".tmp"] == []


def test_cache_is_keyed_by_endpoint_and_username(tmp_path: Path) -> None:
    assert make_cache(tmp_path).path != make_cache(tmp_path, "other-user").path
    other_endpoint = TokenCache(
        tmp_path, "http://127.0.0.1:9999", USERNAME, lock_timeout=1, logger=structlog.get_logger()
    )
    assert other_endpoint.path != make_cache(tmp_path).path


def test_a_second_store_adopts_cached_tokens_and_writes_only_on_change(tmp_path: Path) -> None:
    clock = FakeClock()
    first_auth, second_auth = FakeAuthenticator(clock), FakeAuthenticator(clock)
    first = make_store(first_auth, clock, make_cache(tmp_path))
    token = first.access_token()
    path = make_cache(tmp_path).path
    written = path.stat()
    second = make_store(second_auth, clock, make_cache(tmp_path))
    assert second.access_token() == token
    assert second_auth.logins == 0
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    clock.advance(601)
    renewed = second.access_token()
    assert path.stat().st_ino != written.st_ino
    assert first.access_token() != token
    assert first.access_token() == renewed
    assert first_auth.refreshes == 0


def test_a_rejected_token_in_the_cache_is_not_adopted_again(tmp_path: Path) -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    store = make_store(auth, clock, make_cache(tmp_path))
    token = store.access_token()
    store.invalidate(token)
    assert store.access_token() != token
    assert auth.refreshes == 1


def test_malformed_or_foreign_cache_files_are_ignored(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = make_cache(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    cache.path.write_text("{not json")
    auth = FakeAuthenticator(clock)
    make_store(auth, clock, cache).access_token()
    assert auth.logins == 1
    data = json.loads(cache.path.read_text())
    cache.path.write_text(json.dumps(data | {"key": "someone-else"}))
    auth2 = FakeAuthenticator(clock)
    make_store(auth2, clock, make_cache(tmp_path)).access_token()
    assert auth2.logins == 1


def test_a_world_readable_cache_file_is_fixed(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = make_cache(tmp_path)
    make_store(FakeAuthenticator(clock), clock, cache).access_token()
    cache.path.chmod(0o644)
    auth = FakeAuthenticator(clock)
    make_store(auth, clock, make_cache(tmp_path)).access_token()
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert auth.logins == 0


def _login_in_another_process(directory: str, counter: str, start: float) -> str:
    """Run in a child process: one store on the shared cache; logins are appended to ``counter``."""
    clock = FakeClock(start)
    auth = FakeAuthenticator(clock, delay=0.2)
    store = make_store(auth, clock, make_cache(Path(directory)))
    token = store.access_token()
    with Path(counter).open("a") as handle:
        handle.write(f"{auth.logins}\n")
    return token


def test_processes_sharing_the_cache_log_in_once(tmp_path: Path) -> None:
    counter = tmp_path / "logins.txt"
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        args = [(str(tmp_path / "cache"), str(counter), FakeClock().now)] * 4
        tokens = pool.starmap(_login_in_another_process, args)
    assert len(set(tokens)) == 1
    assert sorted(int(n) for n in counter.read_text().split()) == [0, 0, 0, 1]


# Credentials and secrets -----------------------------------------------------------------------


def test_credentials_from_arguments_beat_the_environment() -> None:
    env = {"SECTIGO_USERNAME": "env-user", "SECTIGO_PASSWORD": "env-pass"}
    loaded = Credentials.load("arg-user", "arg-pass", environ=env)
    assert (loaded.username, loaded.password.reveal()) == ("arg-user", "arg-pass")
    loaded = Credentials.load(environ=env)
    assert (loaded.username, loaded.password.reveal()) == ("env-user", "env-pass")


def test_password_from_a_secret_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text("from-file\n")
    loaded = Credentials.load("user", password_file=secret_file, environ={})
    assert loaded.password.reveal() == "from-file"
    env = {"SECTIGO_USERNAME": "user", "SECTIGO_PASSWORD_FILE": str(secret_file)}
    assert Credentials.load(environ=env).password.reveal() == "from-file"


@pytest.mark.parametrize(
    ("username", "password", "env", "message"),
    [
        (None, None, {}, "no Sectigo credentials"),
        ("user", None, {}, "password missing"),
        (None, "pw", {}, "username missing"),
        (None, None, {"SECTIGO_PASSWORD": "pw"}, "username missing"),
    ],
)
def test_incomplete_credentials_are_refused(
    username: str | None, password: str | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(CredentialsError, match=message):
        Credentials.load(username, password, environ=env)


def test_unreadable_or_empty_secret_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read it"):
        Credentials.load("user", password_file=tmp_path / "missing", environ={})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(CredentialsError, match="is empty"):
        Credentials.load("user", password_file=empty, environ={})


def test_secrets_never_show_in_repr_str_or_pickles() -> None:
    creds = credentials()
    store = make_store(FakeAuthenticator(FakeClock()), FakeClock())
    for shown in (repr(creds), str(creds), repr(store), f"{creds.password}", repr(creds.password)):
        assert PASSWORD not in shown
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(creds)
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


@pytest.mark.parametrize("skew", [-900.0, 900.0])
def test_a_wall_clock_off_by_15_minutes_changes_no_renewal(skew: float) -> None:
    sectigo = FakeClock()  # Sectigo's clock: it writes iat/exp
    wall = FakeClock(sectigo.now + skew)  # the service's wall clock
    mono = FakeClock(5_000.0)
    auth = FakeAuthenticator(sectigo)  # 600 s tokens: fresh for 540 s with a 60 s margin
    store = CredentialStore(credentials(), auth, refresh_margin=60, clock=wall, monotonic=mono)
    token = store.access_token()
    for _ in range(50):
        for clock in (sectigo, wall, mono):
            clock.advance(10)
        assert store.access_token() == token
    assert (auth.logins, auth.refreshes) == (1, 0)
    for clock in (sectigo, wall, mono):
        clock.advance(50)  # 550 s after receipt: stale, renewed once
    assert store.access_token() != token
    assert (auth.logins, auth.refreshes) == (1, 1)


def test_cached_tokens_are_dated_by_their_local_receipt(tmp_path: Path) -> None:
    sectigo, wall = FakeClock(), FakeClock(FakeClock().now + 900)
    first = CredentialStore(
        credentials(),
        FakeAuthenticator(sectigo),
        cache=make_cache(tmp_path),
        clock=wall,
        monotonic=FakeClock(10.0),
    )
    token = first.access_token()
    assert json.loads(make_cache(tmp_path).path.read_text())["receivedAt"] == wall.now
    wall.advance(300)  # another process starts 300 s later, its monotonic clock elsewhere
    mono = FakeClock(77_777.0)
    auth = FakeAuthenticator(sectigo)
    second = CredentialStore(
        credentials(), auth, cache=make_cache(tmp_path), clock=wall, monotonic=mono
    )
    assert second.access_token() == token and auth.logins == 0
    status = second.status()
    assert status is not None and status.expires_at == wall.now - 300 + 600
    mono.advance(239)  # 539 s after receipt: still fresh (60 s margin)
    assert second.access_token() == token and auth.refreshes == 0
    mono.advance(2)  # 541 s after receipt: stale, whatever the claims say on any clock
    sectigo.advance(541)
    assert second.access_token() != token and auth.refreshes == 1


@pytest.mark.parametrize(
    ("written_ago", "received_ago", "fresh"),
    [
        (100.0, None, True),  # an old cache file: received when it was written
        (700.0, None, False),
        (0.0, -3600.0, True),  # a receipt "in the future" (clock set back) counts as now
        (0.0, 10_000.0, False),  # older than both lifetimes: expired
    ],
)
def test_receipt_of_cached_tokens_is_bounded(
    tmp_path: Path, written_ago: float, received_ago: float | None, fresh: bool
) -> None:
    clock = FakeClock()
    cache = make_cache(tmp_path)
    cache.save(
        make_tokens(clock() - written_ago), None if received_ago is None else clock() - received_ago
    )
    os.utime(cache.path, (clock() - written_ago, clock() - written_ago))
    auth = FakeAuthenticator(clock)
    make_store(auth, clock, make_cache(tmp_path)).access_token()
    assert (auth.logins + auth.refreshes == 0) is fresh


def test_waiting_for_another_threads_login_is_bounded_by_the_deadline() -> None:
    from sectigo_svc.sectigo.deadline import Deadline
    from sectigo_svc.sectigo.errors import DeadlineExceeded

    clock = FakeClock()
    auth = FakeAuthenticator(clock, delay=0.5)
    store = make_store(auth, clock)
    slow = ThreadPoolExecutor(1).submit(store.access_token)
    time.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        store.access_token(Deadline.after(0.1))
    assert time.monotonic() - started < 0.3
    slow.result()
    assert auth.logins == 1


def test_invalidating_a_token_does_not_wait_for_a_login_under_way() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    store = make_store(auth, clock)
    first = store.access_token()
    auth.delay = 0.5
    clock.advance(10_000)  # everything expired: the next call logs in, slowly
    slow = ThreadPoolExecutor(1).submit(store.access_token)
    time.sleep(0.05)
    started = time.monotonic()
    store.invalidate(first)
    assert time.monotonic() - started < 0.1
    assert slow.result() != first


def test_an_unusable_cache_directory_does_not_stop_logins(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    store = make_store(auth, clock, make_cache(blocker / "cache"))
    assert store.access_token()
    assert auth.logins == 1


def test_a_service_15_minutes_ahead_of_the_emulator_renews_nothing_extra(
    make_client: ClientFactory, management: Management
) -> None:
    management.settings(clock_offset=-900, access_lifetime=600)  # Sectigo 15 min behind us
    client = make_client()
    for _ in range(50):
        assert client.licenses().ordered == 200
    stats = management.stats()
    assert (stats["logins"], stats["refreshes"]) == (1, 0)
    assert stats["requests"]["devices"] == 50
