"""The rate-limit gate: a 429 holds every call of every thread until Retry-After has passed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import responses

from sectigo_svc.sectigo import Deadline, SectigoClient, open_pkcs12_zip
from sectigo_svc.sectigo.answers import Answer, classify
from sectigo_svc.sectigo.endpoints import AUTHORITIES
from sectigo_svc.sectigo.errors import RateLimited, Throttled
from tests.sectigo.conftest import Management
from tests.sectigo.mocked_http import BASE, Sleeps, authorities, transport
from tests.sectigo.test_emulator_endpoints import P12_PASSWORD, make_csr, server_params

RETRY_AFTER = 2


def issued_serial(client: SectigoClient) -> str:
    batch = client.create_single_cert_batch(1, "gate-serial", server_params("gate.example.com"))
    leaf = open_pkcs12_zip(client.download_bytes(batch.batch_id), P12_PASSWORD).leaf
    return f"{leaf.serial_number:X}"


ORDERS: dict[str, Callable[[SectigoClient, str], Any]] = {
    "create_batch": lambda c, _: c.create_single_cert_batch(1, "gate-1", server_params()),
    "upload_batch": lambda c, _: c.upload_csr_batch(42, make_csr("gate.example.com")),
    "revoke": lambda c, serial: c.revoke(42, serial),
}


@pytest.mark.parametrize("route", sorted(ORDERS))
def test_an_order_is_sent_again_no_sooner_than_retry_after(
    client: SectigoClient, management: Management, route: str
) -> None:
    serial = issued_serial(client) if route == "revoke" else ""
    management.add_fault(kind="throttle", routes=[route], count=1, retry_after=RETRY_AFTER)
    started = time.monotonic()
    ORDERS[route](client, serial)
    assert time.monotonic() - started >= RETRY_AFTER - 0.05
    stats = management.stats()
    assert stats["requests"][route] == 2  # once throttled, once taken
    assert stats["responses"][route]["429"] == 1


def test_a_429_holds_every_endpoint_for_every_thread(
    client: SectigoClient, management: Management
) -> None:
    client.login()
    management.add_fault(kind="throttle", routes=["create_batch"], count=1, retry_after=2)
    started = time.monotonic()
    order = threading.Thread(
        target=lambda: client.create_single_cert_batch(1, "gate-2", server_params())
    )
    order.start()
    # The 429 has reached the client once its gate is closed (the emulator's count of the
    # response comes a moment before that).
    while client._transport.gate.remaining() <= 0:
        assert time.monotonic() - started < 5
        time.sleep(0.01)
    client.licenses()  # another endpoint, another thread: it waits for the gate as well
    assert time.monotonic() - started >= RETRY_AFTER - 0.05
    order.join()


def test_a_wait_that_does_not_fit_the_deadline_is_throttled_without_sending(
    client: SectigoClient, management: Management
) -> None:
    client.login()
    management.add_fault(kind="throttle", routes=["devices"], count=1, retry_after=5)
    with pytest.raises(RateLimited):
        client.licenses(Deadline.after(1.0))
    started = time.monotonic()
    for call in (client.authorities, client.login):
        with pytest.raises(Throttled) as caught:
            call(Deadline.after(1.0))
        assert 3.0 < caught.value.retry_after <= 5.0
        assert "rate limit" in str(caught.value)
    assert time.monotonic() - started < 0.5
    requests = management.stats()["requests"]
    assert "authorities" not in requests and requests["login"] == 1
    assert classify(AUTHORITIES, caught.value) is Answer.NOT_TAKEN


# Retry-After forms, with a fake sleep -----------------------------------------------------------


def test_retry_after_as_an_http_date(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    url = f"{BASE}/api/v1/authorities/allowed"
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=4), usegmt=True)
    mocked.get(url, status=429, headers={"Retry-After": when})
    mocked.get(url, json=[])
    assert authorities(transport(sleeps)) == []
    assert len(sleeps.waits) == 1 and 2.0 < sleeps.waits[0] <= 4.0


def test_without_retry_after_the_gate_closes_for_the_backoff(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/authorities/allowed"
    mocked.get(url, status=429)
    mocked.get(url, json=[])
    t = transport(sleeps)  # backoff_initial 0.5: the first wait is 0.25..0.5
    assert authorities(t) == []
    assert len(sleeps.waits) == 1 and 0.25 <= sleeps.waits[0] <= 0.5


def test_a_wait_beyond_max_retry_after_is_refused_at_once_afterwards(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(f"{BASE}/api/v1/authorities/allowed", status=429, headers={"Retry-After": "600"})
    t = transport(sleeps)  # max_retry_after 10
    with pytest.raises(RateLimited):
        authorities(t)
    with pytest.raises(Throttled) as caught:
        authorities(t)
    assert caught.value.retry_after == 600.0
    assert len(mocked.calls) == 1 and sleeps.waits == []
    sleeps(600)  # the gate opens when the wait is over
    with pytest.raises(RateLimited):
        authorities(t)
    assert len(mocked.calls) == 2
