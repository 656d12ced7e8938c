"""The availability monitor: down after consecutive failures, up after consecutive checks."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from sectigo_svc.sectigo import SectigoClient
from sectigo_svc.sectigo.availability import Availability
from sectigo_svc.sectigo.credential_store import CredentialStore
from sectigo_svc.sectigo.errors import ConnectionFailed, SectigoUnavailable, ServerError
from sectigo_svc.sectigo.transport import Transport
from tests.sectigo.conftest import ClientFactory, Management
from tests.sectigo.fakes import FakeAuthenticator, FakeClock, credentials
from tests.sectigo.mocked_http import config as mocked_config
from tests.sectigo.test_answers import closed_port


def monitor(clock: FakeClock) -> tuple[Availability, list[tuple[bool, str]]]:
    availability = Availability(down_after=3, up_after=2, check_interval=30.0, clock=clock)
    changes: list[tuple[bool, str]] = []
    availability.subscribe(lambda up, cause: changes.append((up, cause)))
    return availability, changes


def test_consecutive_failures_turn_it_down_and_a_success_in_between_does_not() -> None:
    availability, changes = monitor(FakeClock())
    for ok in (False, False, True, False, False):
        availability.record(ok, "devices: HTTP 503", check=False)
    assert availability.up and changes == []
    with capture_logs() as logs:
        availability.record(False, "devices: ConnectionError", check=False)
    assert not availability.up and availability.cause == "devices: ConnectionError"
    assert changes == [(False, "devices: ConnectionError")]
    assert [(e["event"], e["log_level"]) for e in logs] == [("sectigo unavailable", "warning")]


def test_while_down_calls_are_refused_and_checks_bring_it_back() -> None:
    clock = FakeClock()
    availability, changes = monitor(clock)
    for _ in range(3):
        availability.record(False, "login: ConnectTimeout", check=False)
    clock.advance(10)
    with pytest.raises(SectigoUnavailable) as caught:
        availability.admit("authorities")
    assert caught.value.retry_after == 20.0
    assert "Sectigo is unavailable (login: ConnectTimeout)" in str(caught.value)
    availability.record(True, "", check=False)  # not a check: proves nothing yet
    availability.record(True, "", check=True)
    availability.record(False, "devices: HTTP 502", check=True)  # the streak starts over
    availability.record(True, "", check=True)
    assert not availability.up
    with capture_logs() as logs:
        availability.record(True, "", check=True)
    assert availability.up and availability.cause == "checks succeeded"
    assert changes == [(False, "login: ConnectTimeout"), (True, "checks succeeded")]
    assert [(e["event"], e["log_level"]) for e in logs] == [("sectigo available again", "info")]
    assert availability.admit("authorities") is False


def test_one_call_per_interval_is_let_through_as_a_check() -> None:
    clock = FakeClock()
    availability, _ = monitor(clock)
    for _ in range(3):
        availability.record(False, "x", check=False)
    clock.advance(30)
    assert availability.admit("authorities") is True
    with pytest.raises(SectigoUnavailable):
        availability.admit("authorities")
    with pytest.raises(SectigoUnavailable):
        availability.refuse_if_down("authorities")


def test_rejected_credentials_count_as_down_until_a_login_succeeds() -> None:
    availability, changes = monitor(FakeClock())
    availability.credentials_rejected("Sectigo rejected the credentials of user 'u'")
    availability.admit("devices")  # calls go on: the credential store refuses them itself
    for _ in range(3):
        availability.record(False, "devices: HTTP 503", check=False)
    availability.credentials_accepted()
    assert not availability.up and availability.cause == "devices: HTTP 503"
    assert changes == [(False, "Sectigo rejected the credentials of user 'u'")]


def test_a_failing_subscriber_does_not_break_the_monitor() -> None:
    availability, changes = monitor(FakeClock())

    def broken(up: bool, cause: str) -> None:
        raise RuntimeError("subscriber bug")

    availability.subscribe(broken)
    availability.credentials_rejected("rejected")
    assert changes == [(False, "rejected")] and not availability.up


# Against the emulator ---------------------------------------------------------------------------


def test_a_failing_sectigo_is_refused_at_once_until_checks_succeed(
    make_client: ClientFactory, management: Management
) -> None:
    client = make_client(max_attempts=3, down_after=3, up_after=2, check_interval=60.0)
    changes: list[tuple[bool, str]] = []
    client.availability.subscribe(lambda up, cause: changes.append((up, cause)))
    client.login()
    management.add_fault(kind="error", status=503, routes=["devices", "organization"], count=4)
    with pytest.raises(ServerError):
        client.licenses()
    assert not client.availability.up and client.availability.cause == "devices: HTTP 503"
    with pytest.raises(SectigoUnavailable) as refused:
        client.authorities()
    assert 59 < refused.value.retry_after <= 60
    with pytest.raises(ServerError):
        client.check()  # a check goes through while down, and fails once more
    client.check()
    assert not client.availability.up
    client.check()
    assert client.availability.up
    assert len(client.authorities()) == 2
    requests = management.stats()["requests"]
    assert (requests["devices"], requests["organization"], requests["authorities"]) == (3, 3, 1)
    assert changes == [(False, "devices: HTTP 503"), (True, "checks succeeded")]


def test_an_unreachable_sectigo_turns_down_and_checks_still_try() -> None:
    config = mocked_config(
        endpoint=f"http://127.0.0.1:{closed_port()}", max_attempts=3, down_after=3
    )
    clock = FakeClock()
    store = CredentialStore(credentials(), FakeAuthenticator(clock), clock=clock, monotonic=clock)
    client = SectigoClient(Transport(config, sleep=lambda _: None), store)
    with pytest.raises(ConnectionFailed):
        client.authorities()
    assert not client.availability.up
    assert client.availability.cause == "authorities: ConnectionError"
    with pytest.raises(SectigoUnavailable):
        client.authorities()
    with pytest.raises(ConnectionFailed):
        client.check()


def test_quiet_for_counts_from_the_last_useful_answer() -> None:
    clock = FakeClock()
    availability = Availability(down_after=3, up_after=2, check_interval=5.0, clock=clock)
    assert availability.quiet_for() == float("inf")
    availability.record(True, "", check=False)
    clock.advance(4.0)
    availability.record(False, "devices: HTTP 503", check=False)
    assert availability.quiet_for() == 4.0


def test_without_calls_probing_only_checks_reach_a_sectigo_that_is_down() -> None:
    clock = FakeClock()
    availability = Availability(
        down_after=1, up_after=1, check_interval=5.0, calls_probe=False, clock=clock
    )
    availability.record(False, "devices: ConnectionError", check=False)
    for _ in range(3):
        clock.advance(6.0)  # past the interval: with probing, this call would be let through
        with pytest.raises(SectigoUnavailable) as refused:
            availability.admit("authorities")
        assert refused.value.retry_after == 5.0
    availability.record(True, "", check=True)
    assert availability.up and availability.admit("authorities") is False


def test_a_429_holding_calls_longer_than_the_check_interval_counts_as_down() -> None:
    clock = FakeClock()
    availability = Availability(down_after=3, up_after=2, check_interval=5.0, clock=clock)
    changes: list[tuple[bool, str]] = []
    availability.subscribe(lambda up, cause: changes.append((up, cause)))
    availability.throttled(4.0, "create_batch: HTTP 429")  # shorter than a check: still up
    assert availability.up
    availability.throttled(3600.0, "create_batch: HTTP 429, every call held for 3600 s")
    assert not availability.up and "3600" in availability.cause
    availability.record(True, "", check=False)  # the 429 itself proves nothing more
    assert not availability.up
    clock.advance(3600.0)
    availability.record(True, "", check=True)
    assert availability.up
    assert [up for up, _ in changes] == [False, True]
