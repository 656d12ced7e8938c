"""Several replicas in this process on one PostgreSQL database: one request per (caller,
request_id) whichever replica is asked, Watch on any replica, takeover of a stopped replica's
requests, readiness that follows the database, and a locked row or a database outage that stall
nothing else."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
import requests
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.sealing import load_or_create_key
from tests.conftest import EmulatorFactory
from tests.postgres_cluster import Cluster
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import (
    PENDING,
    PROCESSING,
    READY,
    WAIT,
    failure,
    issue_ready,
    poll,
    server_key_request,
    wait_for,
)

Replicas = Callable[..., list[Service]]


@pytest.fixture
def replicas(service_factory: ServiceFactory, tmp_path: Path, postgres_url: str) -> Replicas:
    """``replicas(n, **settings)``: n services on one new database, one data key, one emulator."""
    key_file = tmp_path / "data.key"
    load_or_create_key(key_file, create=True)

    def make(count: int, url: str = postgres_url, **settings: Any) -> list[Service]:
        emulator = settings.pop("emulator", None)
        return [
            service_factory(
                emulator=emulator,
                state=tmp_path / f"replica-{number}",
                database_url=url,
                data_key_file=key_file,
                replica_name=f"replica-{number}",
                **settings,
            )
            for number in range(count)
        ]

    return make


def test_identical_issues_on_two_replicas_make_one_request_and_one_batch(
    replicas: Replicas,
) -> None:
    first, second = replicas(2)
    request = server_key_request("same-everywhere", "same.example.com")
    barrier = threading.Barrier(20)
    replies: list[pb.CertificateRequest] = []
    errors: list[BaseException] = []

    def issue(service: Service) -> None:
        stub = service.stub()
        barrier.wait()
        try:
            replies.append(stub.IssueCertificate(request, timeout=WAIT))
        except grpc.RpcError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(service,)) for service in [first, second] * 10]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert len(replies) == 20
    # One request: every reply carries its creation time and generated password.
    assert len({reply.create_time.ToNanoseconds() for reply in replies}) == 1
    assert len({reply.pkcs12_password for reply in replies}) == 1
    assert first.app.store.count_by_state() in (
        {"PENDING": 1},
        {"SUBMITTED": 1},
        {"PROCESSING": 1},
        {"READY": 1},
    )
    wait_for(first.stub(), "same-everywhere", [READY])
    batch_name = replies[0].batch_name
    assert len(first.sectigo.batches(batch_name)) == 1
    assert first.sectigo.batches_created() == 1


def test_a_watch_on_one_replica_sees_changes_made_by_another_within_half_a_second(
    replicas: Replicas, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory(issue_delay=1.0)
    # Re-reads 10 s apart: only a change notification can bring a version sooner.
    watching, working = replicas(2, emulator=emulator, watch_reread_seconds=10.0)
    # Hold the order back a little, so the watch surely starts while the request is PENDING.
    working.sectigo.add_fault(kind="latency", latency_ms=500, routes=["create_batch"], count=1)
    working.stub().IssueCertificate(server_key_request("seen-elsewhere", "seen.example.com"))
    stream = iter(
        watching.stub().WatchCertificateRequest(
            pb.WatchCertificateRequestRequest(request_id="seen-elsewhere"), timeout=WAIT
        )
    )
    first = next(stream)
    arrivals = [(message, time.time()) for message in stream]

    assert first.state == PENDING
    assert arrivals[-1][0].state == READY
    assert PROCESSING in {message.state for message, _ in arrivals}
    delays = {
        pb.RequestState.Name(message.state): arrived - message.update_time.ToNanoseconds() / 1e9
        for message, arrived in arrivals
    }
    assert max(delays.values()) < 0.5, f"versions reached the watch late: {delays}"


def test_a_stopped_replicas_requests_are_finished_by_another(
    replicas: Replicas, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    leaving, staying = replicas(2, emulator=emulator, lease_seconds=1.5)
    leaving.sectigo.settings(stuck=True)
    stub = leaving.stub()
    for number in range(3):
        stub.IssueCertificate(server_key_request(f"handed-over-{number}", "handed.example.com"))
    for number in range(3):
        wait_for(stub, f"handed-over-{number}", [PROCESSING])

    leaving.stop()
    leaving.sectigo.settings(stuck=False)

    for number in range(3):
        wait_for(staying.stub(), f"handed-over-{number}", [READY])
    assert staying.sectigo.batches_created() == 3


def test_readiness_follows_the_database(replicas: Replicas, own_postgres: Cluster) -> None:
    (service,) = replicas(1, url=own_postgres.database())
    assert service.health() == "SERVING"

    own_postgres.stop()
    poll(lambda: True if service.health() == "NOT_SERVING" else None, "NOT_SERVING", 20)
    failed = failure(
        lambda: service.stub().GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id="any"), timeout=15
        )
    )
    assert failed.code is grpc.StatusCode.UNAVAILABLE
    assert failed.trailers.get("retry-after-ms") == "2000"
    assert "postgresql" not in failed.details.lower()

    own_postgres.start()
    poll(lambda: True if service.health() == "SERVING" else None, "SERVING again", 30)
    with pytest.raises(grpc.RpcError) as missing:
        service.stub().GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id="any"), timeout=15
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


def test_replicas_share_one_sectigo_login(
    replicas: Replicas, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    fleet = replicas(3, emulator=emulator)
    for number, service in enumerate(fleet):
        issue_ready(service.stub(), server_key_request(f"login-{number}", "login.example.com"))

    stats = fleet[0].sectigo.stats()
    assert stats["logins"] == 1, stats


def _metrics(service: Service) -> dict[str, float]:
    """The service's metrics endpoint, as ``{"name{labels}": value}``."""
    url = f"http://127.0.0.1:{service.app.metrics_port}/metrics"
    text = requests.get(url, timeout=5).text
    return {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _events(captured: io.StringIO, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def test_a_row_locked_by_another_session_holds_up_only_its_own_request(
    replicas: Replicas,
    emulator_factory: EmulatorFactory,
    postgres_url: str,
    captured: io.StringIO,
) -> None:
    emulator = emulator_factory(issue_delay=0.2)
    (service,) = replicas(1, emulator=emulator, lease_seconds=3.0, metrics_listen="127.0.0.1:0")
    stub = service.stub()
    service.sectigo.settings(stuck=True)
    names = ["free-1", "free-2", "locked"]  # the locked one last: a renewal reaches it last
    for name in names:
        stub.IssueCertificate(server_key_request(name, f"{name}.example.com"))
    for name in names:
        wait_for(stub, name, [PROCESSING])

    with psycopg.connect(postgres_url) as operator:
        # An operator's session, idle in a transaction that holds one request's row.
        operator.execute("SELECT 1 FROM requests WHERE request_id = 'locked' FOR UPDATE")

        warning = "leases not renewed: their rows are locked by another transaction"
        logged = poll(lambda: _events(captured, warning) or None, "the keeper's warning")
        assert logged[0]["request_ids"] == ["locked"] and logged[0]["count"] == 1
        assert _metrics(service)["sectigo_svc_lease_renewal_failures_total"] >= 1
        poll(
            lambda: _metrics(service)["sectigo_svc_lease_renewal_age_seconds"] > 2 or None,
            "the age of the last complete renewal growing",
        )

        service.sectigo.settings(stuck=False)
        for name in ("free-1", "free-2"):
            wait_for(stub, name, [READY], timeout=20)
        assert wait_for(stub, "locked", [PROCESSING]).state == PROCESSING
        operator.rollback()

    wait_for(stub, "locked", [READY])


def test_a_database_outage_leaves_metrics_quick_errors_and_a_quick_return(
    replicas: Replicas, own_postgres: Cluster
) -> None:
    (service,) = replicas(1, url=own_postgres.database(), metrics_listen="127.0.0.1:0")
    assert _metrics(service)['sectigo_svc_requests{state="READY"}'] == 0

    own_postgres.stop()
    for _ in range(2):  # with the store failing, then known to be down
        started = time.monotonic()
        scraped = _metrics(service)
        assert time.monotonic() - started < 1.0, "a scrape waited for the database"
        assert scraped["sectigo_svc_sectigo_up"] == 1
        assert scraped['sectigo_svc_requests{state="READY"}'] == 0, "the last reading"
        assert "sectigo_svc_store_reading_age_seconds" in scraped
        poll(lambda: True if service.health() == "NOT_SERVING" else None, "NOT_SERVING", 20)

    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        service.stub().GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id="any"), timeout=10
        )
    assert time.monotonic() - started < 3.0
    call: grpc.Call = raised.value  # type: ignore[assignment]
    assert call.code() is grpc.StatusCode.UNAVAILABLE
    status = rpc_status.from_call(call)
    assert status is not None
    (detail,) = status.details
    assert detail.Unpack(error_details_pb2.RetryInfo())

    own_postgres.start()
    poll(lambda: True if service.health() == "SERVING" else None, "SERVING again", 6)
    missing = failure(
        lambda: service.stub().GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id="any"), timeout=10
        )
    )
    assert missing.code is grpc.StatusCode.NOT_FOUND


def _unavailable_with_retry(call: Callable[[], object]) -> float:
    """Run an RPC that must end UNAVAILABLE with RetryInfo; how long it took."""
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        call()
    took = time.monotonic() - started
    failed: grpc.Call = raised.value  # type: ignore[assignment]
    assert failed.code() is grpc.StatusCode.UNAVAILABLE, (failed.code(), failed.details())
    status = rpc_status.from_call(failed)
    assert status is not None
    (detail,) = status.details
    assert detail.Unpack(error_details_pb2.RetryInfo())
    return took


def test_a_database_that_stops_answering(replicas: Replicas, own_postgres: Cluster) -> None:
    """Every server process stopped: TCP connects (the kernel answers), nothing else does, and
    the server's own timeouts never fire. Readiness, calls and metrics must not wait on it."""
    (service,) = replicas(1, url=own_postgres.database(), metrics_listen="127.0.0.1:0")
    stub = service.stub()
    issue_ready(stub, server_key_request("frozen-1", "frozen.example.com"))
    get = pb.GetCertificateRequestRequest(request_id="frozen-1")
    poll(
        lambda: _metrics(service).get('sectigo_svc_requests{state="READY"}') or None,
        "a reading of requests by state",
    )

    with own_postgres.frozen():
        poll(lambda: True if service.health() == "NOT_SERVING" else None, "NOT_SERVING", 8)
        took = _unavailable_with_retry(lambda: stub.GetCertificateRequest(get, timeout=10))
        assert took < 5.0, f"failed after {took:.1f} s"
        started = time.monotonic()
        scraped = _metrics(service)
        assert time.monotonic() - started < 1.0, "a scrape waited for the database"
        assert scraped['sectigo_svc_requests{state="READY"}'] == 1, "the last reading"

    poll(lambda: True if service.health() == "SERVING" else None, "SERVING again", 8)
    assert stub.GetCertificateRequest(get, timeout=10).state == READY
    issue_ready(stub, server_key_request("frozen-2", "frozen2.example.com"))


def test_a_call_under_way_when_the_database_stops_answering(
    replicas: Replicas, own_postgres: Cluster
) -> None:
    """Calls made before readiness has noticed end UNAVAILABLE inside their deadline too."""
    (service,) = replicas(1, url=own_postgres.database())
    stub = service.stub()
    get = pb.GetCertificateRequestRequest(request_id="frozen-1")
    issue_ready(stub, server_key_request("frozen-1", "frozen.example.com"))

    with own_postgres.frozen():
        took = _unavailable_with_retry(lambda: stub.GetCertificateRequest(get, timeout=10))
        assert took < 9.0, f"failed after {took:.1f} s"

    poll(lambda: True if service.health() == "SERVING" else None, "SERVING again", 8)
    assert stub.GetCertificateRequest(get, timeout=10).state == READY
