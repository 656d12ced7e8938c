"""Faults injected by the emulator: reads survive bursts, writes never resend blindly."""

from __future__ import annotations

import time

import pytest

from sectigo_svc.sectigo import Deadline, SectigoClient
from sectigo_svc.sectigo.errors import ConnectionFailed, DeadlineExceeded, OutcomeUnknown
from tests.sectigo.conftest import ClientFactory, Management
from tests.sectigo.test_emulator_endpoints import server_params


def test_reads_survive_a_5xx_burst(make_client: ClientFactory, management: Management) -> None:
    client = make_client(down_after=5)  # three failures in a row must not yet mean "down"
    client.login()
    management.add_fault(kind="error", status=503, routes=["authorities"], count=3)
    management.add_fault(kind="error", status=500, routes=["organization"], count=2)
    assert len(client.authorities()) == 2
    assert client.organization().organization_id == 1042
    responses = management.stats()["responses"]
    assert responses["authorities"] == {"503": 3, "200": 1}
    assert responses["organization"] == {"500": 2, "200": 1}


def test_reads_survive_429_and_honour_retry_after(
    client: SectigoClient, management: Management
) -> None:
    client.login()
    management.add_fault(kind="throttle", retry_after=1, routes=["profiles"], count=1)
    management.add_fault(kind="throttle", retry_after=0, routes=["devices"], count=3)
    started = time.monotonic()
    assert len(client.profiles()) == 2
    assert time.monotonic() - started >= 0.95
    assert client.licenses().ordered == 200
    assert management.stats()["responses"]["devices"] == {"429": 3, "200": 1}


def test_reads_survive_dropped_connections(
    make_client: ClientFactory, management: Management
) -> None:
    client = make_client(down_after=5)  # three failures in a row must not yet mean "down"
    client.login()
    management.add_fault(kind="drop", routes=["authorities", "find"], count=3)
    assert len(client.authorities()) == 2
    assert client.find(common_name="nothing.example.com").total_count == 0


def test_an_accepted_but_unanswered_create_is_outcome_unknown_and_not_resent(
    make_client: ClientFactory, management: Management
) -> None:
    client = make_client(read_timeout=0.5)
    client.login()
    management.add_fault(kind="hang", routes=["create_batch"], count=1, hang_seconds=30)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown, match="no answer after sending") as caught:
        client.create_single_cert_batch(1, "req-hang-1", server_params())
    assert time.monotonic() - started < 2
    assert isinstance(caught.value.__cause__, ConnectionFailed) and caught.value.__cause__.sent
    assert management.requests_to("create_batch") == 1
    found = client.list_batches(batch_name="req-hang-1")
    assert len(found) == 1 and found[0].batch_name == "req-hang-1"


def test_a_dropped_create_is_outcome_unknown_and_reconciliation_finds_nothing(
    client: SectigoClient, management: Management
) -> None:
    client.login()
    management.add_fault(kind="drop", routes=["create_batch"], count=1)
    with pytest.raises(OutcomeUnknown):
        client.create_single_cert_batch(1, "req-drop-1", server_params())
    assert management.requests_to("create_batch") == 1
    assert client.list_batches(batch_name="req-drop-1") == ()


def test_a_5xx_on_create_or_revoke_is_outcome_unknown_and_not_resent(
    client: SectigoClient, management: Management
) -> None:
    client.login()
    management.add_fault(kind="error", status=503, routes=["create_batch", "revoke"], count=2)
    with pytest.raises(OutcomeUnknown, match="HTTP 503") as caught:
        client.create_single_cert_batch(1, "req-503", server_params())
    assert caught.value.status == 503
    with pytest.raises(OutcomeUnknown):
        client.revoke(42, "ABCDEF")
    requests = management.stats()["requests"]
    assert (requests["create_batch"], requests["revoke"]) == (1, 1)


def test_the_callers_deadline_caps_timeouts_and_retries(
    client: SectigoClient, management: Management
) -> None:
    client.login()
    management.add_fault(kind="latency", latency_ms=2000, routes=["authorities"])
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        client.authorities(deadline=Deadline.after(0.4))
    assert time.monotonic() - started < 1.0
