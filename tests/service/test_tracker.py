"""The tracker's terminal states other than READY: each with a reason a caller can act on."""

from __future__ import annotations

import grpc

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.service.conftest import ServiceFactory
from tests.service.helpers import (
    FAILED,
    PROCESSING,
    READY,
    REGISTRATION,
    REJECTED,
    failure,
    issue_ready,
    server_key_request,
    wait_for,
)


def test_a_batch_sectigo_rejects_ends_rejected_with_its_reason(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(reject_common_names=(r"^evil\.",)))
    stub = service.stub()
    stub.IssueCertificate(server_key_request("rej-1", "evil.example.com"))

    seen = list(
        stub.WatchCertificateRequest(
            pb.WatchCertificateRequestRequest(request_id="rej-1"), timeout=20
        )
    )

    final = seen[-1]
    assert final.state == REJECTED
    assert final.sectigo_status == "REJECTED"
    assert "evil.example.com is not allowed" in final.reason  # Sectigo's own rejectReason
    assert service.sectigo.batches_created() == 1


def test_a_batch_that_never_finishes_fails_after_give_up_after(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(stuck=True), give_up_after=1.0)
    stub = service.stub()
    stub.IssueCertificate(server_key_request("slow-1", "slow.example.com"))

    final = wait_for(stub, "slow-1", [FAILED], timeout=10)

    assert final.reason.startswith("gave up after")
    assert "last Sectigo status: PROCESSING" in final.reason
    assert final.batch_id > 0
    assert service.sectigo.batches_created() == 1


def test_an_order_refused_for_lack_of_licences_fails_with_that_reason(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    # One licence: the service's cached balance lets both requests in, Sectigo refuses the second.
    service = service_factory(emulator=emulator_factory(balances=((42, 1),)))
    stub = service.stub()
    issue_ready(stub, server_key_request("lic-1", "one.example.com"))
    stub.IssueCertificate(server_key_request("lic-2", "two.example.com"))

    final = wait_for(stub, "lic-2", [FAILED])

    assert "no licences left" in final.reason
    assert wait_for(stub, "lic-1", [READY]).state == READY
    assert service.sectigo.batches_created() == 1
    # The refusal made the service forget the stale balance: the next caller hears it at once.
    refused = failure(lambda: stub.IssueCertificate(server_key_request("lic-3", "3.example.com")))
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_404_for_a_batch_sectigo_created_is_transient_not_a_lost_certificate(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    """Sectigo names the batch, then forgets it for a moment: the request keeps asking (and looks
    the name up) instead of failing, so the licence already spent is not lost."""
    service = service_factory(emulator=emulator_factory(stuck=True))
    sectigo = service.sectigo
    stub = service.stub()
    stub.IssueCertificate(server_key_request("gone-1", "gone.example.com"))
    wait_for(stub, "gone-1", [PROCESSING])
    sectigo.add_fault(kind="error", status=404, routes=["batch_detail"], count=3)
    sectigo.settings(stuck=False)

    done = wait_for(stub, "gone-1", [READY])

    assert sectigo.stats()["faults_applied"].get("error") == 3
    assert sectigo.batches_created() == 1
    reasons = [v.reason for v in service.app.store.history(REGISTRATION, "gone-1", 0)]
    assert any("404" in r and "transient" in r for r in reasons), reasons
    assert done.batch_id > 0


def test_a_404_that_lasts_past_give_up_after_fails_with_that_reason(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(stuck=True), give_up_after=2.0)
    sectigo = service.sectigo
    stub = service.stub()
    stub.IssueCertificate(server_key_request("gone-2", "gone2.example.com"))
    wait_for(stub, "gone-2", [PROCESSING])
    sectigo.add_fault(kind="error", status=404, routes=["batch_detail"])

    final = wait_for(stub, "gone-2", [FAILED], timeout=15)

    assert final.reason.startswith("gave up after")
    assert "404" in final.reason
    assert sectigo.batches_created() == 1
