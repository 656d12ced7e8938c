"""The other status codes callers must be able to act on: NOT_FOUND, FAILED_PRECONDITION,
RESOURCE_EXHAUSTED, UNAVAILABLE and DEADLINE_EXCEEDED."""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import (
    PROCESSING,
    emulator_process,
    failure,
    poll,
    server_key_request,
    wait_for,
)


def test_unknown_requests_and_profiles_are_not_found(service: Service) -> None:
    stub = service.stub()
    missing = {
        "get": failure(
            lambda: stub.GetCertificateRequest(pb.GetCertificateRequestRequest(request_id="nope"))
        ),
        "download": failure(
            lambda: stub.DownloadCertificate(pb.DownloadCertificateRequest(request_id="nope"))
        ),
        "revoke": failure(
            lambda: stub.RevokeCertificate(pb.RevokeCertificateRequest(request_id="nope"))
        ),
        "profile": failure(lambda: stub.GetProfile(pb.GetProfileRequest(profile_id=9999))),
    }

    assert {k: f.code for k, f in missing.items()} == dict.fromkeys(
        missing, grpc.StatusCode.NOT_FOUND
    )
    assert "nope" in missing["get"].details


def test_download_before_ready_fails_precondition(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(stuck=True))
    stub = service.stub()
    stub.IssueCertificate(server_key_request("early", "early.example.com"))
    wait_for(stub, "early", [PROCESSING])

    early = failure(
        lambda: stub.DownloadCertificate(pb.DownloadCertificateRequest(request_id="early"))
    )

    assert early.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "PROCESSING" in early.details


def test_no_licences_left_is_resource_exhausted(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(balances=((42, 0),)))

    exhausted = failure(
        lambda: service.stub().IssueCertificate(server_key_request("broke", "broke.example.com"))
    )

    assert exhausted.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "licence" in exhausted.details
    assert service.app.store.get("spiffe://sectigo-svc.test/registration", "broke") is None
    assert service.sectigo.requests_to("create_batch") == 0


def test_sectigo_down_is_unavailable(service_factory: ServiceFactory) -> None:
    with emulator_process() as emulator:
        stub = service_factory(emulator=emulator).stub()
        stub.ListAuthorities(pb.ListAuthoritiesRequest(), timeout=10)  # works while it is up
        assert emulator.stop() == 0

        down = failure(lambda: stub.ListAuthorities(pb.ListAuthoritiesRequest(), timeout=10))

    assert down.code == grpc.StatusCode.UNAVAILABLE
    assert "Sectigo" in down.details
    assert int(down.trailers["retry-after-ms"]) > 0, "every UNAVAILABLE says when to come back"


def test_the_callers_deadline_bounds_the_upstream_work(
    service: Service, captured: io.StringIO
) -> None:
    service.sectigo.add_fault(kind="hang", routes=["devices"], hang_seconds=4, count=1)
    stub = service.stub()
    started = time.monotonic()

    late = failure(lambda: stub.GetLicenses(pb.GetLicensesRequest(), timeout=1.0))

    assert late.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.5
    # The server gave up too: the next call is answered at once, not after the hang.
    started = time.monotonic()
    stub.GetLicenses(pb.GetLicensesRequest(), timeout=5)
    assert time.monotonic() - started < 2.0
    # And said so: its own line for the call carries DEADLINE_EXCEEDED within about the deadline.
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    calls = [e for e in lines if e.get("event") == "rpc" and e.get("rpc") == "GetLicenses"]
    assert sorted(e["code"] for e in calls) == ["DEADLINE_EXCEEDED", "OK"], calls
    first = next(e for e in calls if e["code"] == "DEADLINE_EXCEEDED")
    assert first["duration_ms"] < 2000


def test_sectigo_slower_than_the_services_own_limit_is_unavailable_with_a_retry_time(
    service_factory: ServiceFactory,
) -> None:
    """The caller allows 15 s, the service caps upstream work at twice its 1.5 s read timeout:
    Sectigo hanging is UNAVAILABLE with a time to come back, not the caller's DEADLINE_EXCEEDED."""
    service = service_factory(sectigo_timeout=1.5, quarantine=3.0)
    service.sectigo.add_fault(kind="hang", routes=["devices"], hang_seconds=8, count=2)
    started = time.monotonic()

    slow = failure(lambda: service.stub().GetLicenses(pb.GetLicensesRequest(), timeout=15))

    assert slow.code == grpc.StatusCode.UNAVAILABLE
    assert "limit of 3 s" in slow.details
    assert int(slow.trailers["retry-after-ms"]) > 0
    assert time.monotonic() - started < 6


def test_sectigo_throttling_is_unavailable_with_retry_info(service: Service) -> None:
    service.sectigo.add_fault(kind="throttle", retry_after=1, routes=["profiles"])

    throttled = failure(lambda: service.stub().ListProfiles(pb.ListProfilesRequest(), timeout=10))

    assert throttled.code == grpc.StatusCode.UNAVAILABLE
    assert throttled.trailers.get("retry-after-ms") == "1000"


def test_a_long_retry_after_shows_on_the_sectigo_health_service_not_on_readiness(
    service: Service,
) -> None:
    """One 429 asking every call to wait an hour: calls fail fast saying so, Sectigo's health
    says so too, and the pod stays in rotation."""
    service.sectigo.add_fault(kind="throttle", retry_after=3600, routes=["profiles"], count=1)

    throttled = failure(lambda: service.stub().ListProfiles(pb.ListProfilesRequest(), timeout=10))

    assert throttled.code == grpc.StatusCode.UNAVAILABLE
    assert 3500_000 < int(throttled.trailers["retry-after-ms"]) <= 3600_000
    poll(lambda: True if service.health("sectigo") == "NOT_SERVING" else None, "sectigo down")
    assert service.health() == "SERVING"
    later = failure(lambda: service.stub().GetLicenses(pb.GetLicensesRequest(), timeout=10))
    assert later.code == grpc.StatusCode.UNAVAILABLE and "slow down" in later.details
    assert service.sectigo.requests_to("devices") == 0, "held back, not sent"


def test_rpcs_beyond_the_concurrency_limit_are_shed(service_factory: ServiceFactory) -> None:
    service = service_factory(max_concurrent_rpcs=2)
    sectigo = service.sectigo
    sectigo.add_fault(kind="latency", latency_ms=1500, routes=["devices"], count=2)
    stub = service.stub()

    with ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(stub.GetLicenses, pb.GetLicensesRequest(), timeout=10) for _ in "ab"]
        poll(lambda: True if sectigo.requests_to("devices") == 2 else None, "two slow calls")

        shed = failure(lambda: stub.ListProfiles(pb.ListProfilesRequest(), timeout=5))

        assert [f.result().ordered for f in slow] == [200, 200]
    assert shed.code == grpc.StatusCode.RESOURCE_EXHAUSTED
