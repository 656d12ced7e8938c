"""Credentials Sectigo rejected: one shared login back-off, and a corrected password file."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sectigo_svc.sectigo import Credentials, SectigoClient
from sectigo_svc.sectigo.availability import Availability
from sectigo_svc.sectigo.credential_store import CredentialStore
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.errors import (
    ConnectionFailed,
    CredentialsRejected,
    InvalidCredentials,
    NotAuthorized,
    SectigoError,
    SectigoHTTPError,
    TLSAuthRequired,
)
from sectigo_svc.sectigo.models import Tokens
from tests.conftest import EmulatorFactory
from tests.sectigo.conftest import Management, client_config
from tests.sectigo.fakes import PASSWORD, USERNAME, FakeAuthenticator, FakeClock

WRONG = "not-the-password"


def rejection(
    kind: type[SectigoHTTPError] = InvalidCredentials, status: int = 401
) -> SectigoHTTPError:
    return kind(status=status, message="no", error_code=-16, method="POST", endpoint="login")


class Gatekeeper(FakeAuthenticator):
    """Issues tokens only for the right password."""

    def login(self, credentials: Credentials, deadline: Deadline | None) -> Tokens:
        self.login_error = None if credentials.password.reveal() == PASSWORD else rejection()
        return super().login(credentials, deadline)


def store_for(
    credentials: Credentials,
    clock: FakeClock,
    auth: FakeAuthenticator | None = None,
    availability: Availability | None = None,
) -> tuple[CredentialStore, FakeAuthenticator]:
    auth = auth if auth is not None else Gatekeeper(clock)
    store = CredentialStore(
        credentials,
        auth,
        login_backoff=(5.0, 12.0),
        clock=clock,
        monotonic=clock,
        availability=availability,
    )
    return store, auth


def wrong_credentials() -> Credentials:
    return Credentials.load(USERNAME, WRONG, environ={})


def test_after_a_rejection_every_caller_is_refused_at_once_without_a_login() -> None:
    clock = FakeClock()
    store, auth = store_for(wrong_credentials(), clock)
    with pytest.raises(InvalidCredentials):
        store.access_token()
    barrier = threading.Barrier(16)

    def call() -> CredentialsRejected:
        barrier.wait()
        with pytest.raises(CredentialsRejected) as caught:
            store.access_token()
        return caught.value

    with ThreadPoolExecutor(16) as pool:
        refused = list(pool.map(lambda _: call(), range(16)))
    assert auth.logins == 1
    error = refused[0]
    assert error.retry_after == 5.0 and error.endpoint == "login"
    text = str(error)
    assert USERNAME in text and "password is wrong" in text and "lacks authority" in text
    assert "next login attempt in 5.0 s" in text and WRONG not in text


def test_the_interval_doubles_up_to_the_maximum() -> None:
    clock = FakeClock()
    store, auth = store_for(wrong_credentials(), clock)
    waits = []
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            store.access_token()
        with pytest.raises(CredentialsRejected) as caught:
            store.access_token()
        waits.append(caught.value.retry_after)
        clock.advance(caught.value.retry_after)
    assert waits == [5.0, 10.0, 12.0, 12.0, 12.0]
    assert auth.logins == 5


@pytest.mark.parametrize(
    "error",
    [rejection(NotAuthorized, 403), rejection(TLSAuthRequired, 307)],
)
def test_no_authority_and_tls_auth_start_the_back_off_too(error: SectigoError) -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    auth.login_error = error
    store, _ = store_for(wrong_credentials(), clock, auth)
    with pytest.raises(type(error)):
        store.access_token()
    with pytest.raises(CredentialsRejected):
        store.access_token()
    assert auth.logins == 1


def test_an_unreachable_sectigo_is_no_rejection() -> None:
    clock = FakeClock()
    auth = FakeAuthenticator(clock)
    auth.login_error = ConnectionFailed("login", "POST", "refused", sent=False)
    store, _ = store_for(wrong_credentials(), clock, auth)
    for _ in range(3):
        with pytest.raises(ConnectionFailed):
            store.access_token()
    assert auth.logins == 3


def test_a_corrected_password_file_is_used_at_once_and_success_resets(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(WRONG + "\n")
    clock = FakeClock()
    availability = Availability()
    changes: list[tuple[bool, str]] = []
    availability.subscribe(lambda up, cause: changes.append((up, cause)))
    store, auth = store_for(
        Credentials.load(USERNAME, password_file=secret, environ={}), clock, None, availability
    )
    with pytest.raises(InvalidCredentials):
        store.access_token()
    assert not availability.up and USERNAME in availability.cause
    clock.advance(2)
    with pytest.raises(CredentialsRejected):
        store.access_token()  # the file is unchanged: still held back
    secret.write_text(PASSWORD + "\n")
    clock.advance(1)  # the file is looked at once a second
    assert store.access_token()
    assert auth.logins == 2 and availability.up
    assert changes == [
        (False, f"Sectigo rejected the credentials of user {USERNAME!r} (InvalidCredentials)"),
        (True, "login accepted"),
    ]
    secret.write_text(WRONG)
    store.invalidate(store.access_token())
    auth.refresh_error = rejection(status=401)  # the refresh fails, then the login
    with pytest.raises(InvalidCredentials):
        store.access_token()
    with pytest.raises(CredentialsRejected) as caught:
        store.access_token()
    assert caught.value.retry_after == 5.0  # back to the first interval


def test_credentials_remember_their_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("one\n")
    loaded = Credentials.load(
        environ={"SECTIGO_USERNAME": "u", "SECTIGO_PASSWORD_FILE": str(secret)}
    )
    assert loaded.password_file == secret and loaded.reread() is loaded
    secret.write_text("two\n")
    assert loaded.reread().password.reveal() == "two"
    assert Credentials.load("u", "inline", environ={}).reread().password.reveal() == "inline"


# Against the emulator ---------------------------------------------------------------------------


def test_many_threads_with_a_wrong_password_log_in_once_per_interval(
    emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    emulator = emulator_factory()
    management = Management(emulator.management_url)
    secret = tmp_path / "password"
    secret.write_text(WRONG + "\n")
    credentials = Credentials.load(USERNAME, password_file=secret, environ={})
    config = client_config(
        emulator, tmp_path / "cache", login_backoff_initial=0.5, login_backoff_max=8.0
    )
    seconds = 3.0
    with SectigoClient.build(config, credentials) as client:
        stop = time.monotonic() + seconds

        def hammer() -> int:
            calls = 0
            while time.monotonic() < stop:
                calls += 1
                try:
                    client.licenses()
                except (InvalidCredentials, CredentialsRejected):
                    time.sleep(0.005)
            return calls

        with ThreadPoolExecutor(8) as pool:
            calls = sum(pool.map(lambda _: hammer(), range(8)))
        attempts = management.requests_to("login")
        assert calls > 100
        assert 2 <= attempts <= 1 + seconds / 0.5  # at 0, 0.5, 1.5 s: the interval doubles
        assert not client.availability.up and USERNAME in client.availability.cause

        secret.write_text(PASSWORD + "\n")
        deadline = time.monotonic() + 3
        while True:
            try:
                assert client.licenses().ordered == 200
                break
            except CredentialsRejected:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert management.stats()["logins"] == 1
        assert client.availability.up
    management.session.close()
