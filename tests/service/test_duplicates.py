"""Two batches under one request's name: the service uses one, says so loudly, and counts it."""

from __future__ import annotations

import io
import json

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import ServiceFactory
from tests.service.helpers import READY, download, poll, server_key_request, wait_for


def test_a_second_batch_under_a_request_name_is_detected_logged_and_counted(
    service_factory: ServiceFactory, captured: io.StringIO
) -> None:
    service = service_factory()
    sectigo = service.sectigo
    # The service's order is taken but its answer never comes, so the request is in doubt ...
    sectigo.add_fault(kind="hang", routes=["create_batch"], count=1, hang_seconds=5)
    stub = service.stub()
    issued = stub.IssueCertificate(server_key_request("dup-1", "dup.example.com"))
    poll(lambda: sectigo.batches_created() or None, "the service's order to be taken")
    # ... and meanwhile someone else orders a batch under the very same name.
    surplus = sectigo.create_batch("dup.example.com", "Other-pw-1", batch_name=issued.batch_name)

    done = wait_for(stub, "dup-1", [READY])

    named = sorted(b["batchId"] for b in sectigo.batches(issued.batch_name))
    assert named == [done.batch_id, surplus], "the first batch (the service's own) is used"
    assert sectigo.requests_to("create_batch") == 2  # the service ordered once
    counted = service.app.metrics.registry.get_sample_value("sectigo_svc_duplicate_batches_total")
    assert counted == 1
    events = [json.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    reported = [e for e in events if e.get("event") == "duplicate batches for one request"]
    assert len(reported) == 1, "reported once, not at every lookup"
    assert reported[0]["level"] == "error"
    assert reported[0]["used_batch_id"] == done.batch_id
    assert reported[0]["surplus_batch_ids"] == [surplus]
    got = download(stub, "dup-1")
    assert got.pkcs12 and got.pkcs12_password == issued.pkcs12_password
    again = stub.GetCertificateRequest(pb.GetCertificateRequestRequest(request_id="dup-1"))
    assert again.batch_id == done.batch_id


def test_a_batch_listed_only_after_the_quarantine_is_reported_as_a_duplicate(
    service_factory: ServiceFactory, captured: io.StringIO
) -> None:
    """The residual risk the quarantine leaves: Sectigo shows the first order only after the
    window, when the service has ordered again. Both batches exist; the service must say so."""
    service = service_factory(sectigo_timeout=1.5, quarantine=3.0)
    sectigo = service.sectigo
    sectigo.settings(visibility_lag=8.0)
    sectigo.add_fault(kind="slow", routes=["create_batch"], count=1, latency_ms=2500)
    stub = service.stub()
    issued = stub.IssueCertificate(server_key_request("late-1", "late.example.com"))

    done = wait_for(stub, "late-1", [READY], timeout=40)

    sectigo.settings(visibility_lag=0.0)
    named = sorted(b["batchId"] for b in sectigo.batches(issued.batch_name))
    assert len(named) == 2 and done.batch_id == named[0]
    counted = service.app.metrics.registry.get_sample_value("sectigo_svc_duplicate_batches_total")
    assert counted == 1
    events = [json.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    reported = [e for e in events if e.get("event") == "duplicate batches for one request"]
    assert [e["surplus_batch_ids"] for e in reported] == [[named[1]]]
