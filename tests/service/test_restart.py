"""Restarts and lost answers: a request finishes on a new service over the same store, and no path
spends a second licence on it."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo.ca.v1 import ca_pb2_grpc
from sectigo_svc.devcerts import DevCerts
from tests.conftest import EmulatorFactory
from tests.service.conftest import ServiceFactory
from tests.service.helpers import (
    PENDING,
    PROCESSING,
    READY,
    REGISTRATION,
    SUBMITTED,
    EmulatorApi,
    download,
    listening_port,
    mtls_channel,
    poll,
    serve_config,
    serve_process,
    server_key_request,
    wait_for,
)


def test_a_restart_mid_issuance_completes_the_request_without_a_second_batch(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory(stuck=True)
    first = service_factory(emulator=emulator)
    issued = first.stub().IssueCertificate(server_key_request("restart-1", "restart.example.com"))
    wait_for(first.stub(), "restart-1", [SUBMITTED, PROCESSING])
    first.stop()

    second = service_factory(emulator=emulator)
    second.sectigo.settings(stuck=False)

    stub = second.stub()
    done = wait_for(stub, "restart-1", [READY])
    assert done.batch_name == issued.batch_name
    assert second.sectigo.requests_to("create_batch") == 1
    assert len(second.sectigo.batches(issued.batch_name)) == 1
    # The sealed password survived the restart: the PKCS#12 opens with the first reply's.
    got = download(stub, "restart-1")
    key, _, _ = pkcs12.load_key_and_certificates(got.pkcs12, issued.pkcs12_password.encode())
    assert key is not None
    # Idempotency holds across the restart too.
    again = stub.IssueCertificate(server_key_request("restart-1", "restart.example.com"))
    assert (again.batch_name, again.pkcs12_password) == (issued.batch_name, issued.pkcs12_password)
    assert again.create_time == issued.create_time
    assert second.sectigo.requests_to("create_batch") == 1


def test_a_restart_while_pending_completes_without_a_second_batch(
    service_factory: ServiceFactory,
) -> None:
    first = service_factory()
    sectigo = first.sectigo
    sectigo.add_fault(kind="error", status=503, routes=["create_batch"])
    first.stub().IssueCertificate(server_key_request("restart-2", "pending.example.com"))
    poll(
        lambda: True if sectigo.requests_to("create_batch") >= 2 else None,
        "the order to be refused and retried",
    )
    pending = first.stub().GetCertificateRequest(
        pb.GetCertificateRequestRequest(request_id="restart-2")
    )
    assert pending.state == PENDING
    first.stop()
    sectigo.clear_faults()

    second = service_factory(emulator=first.emulator)

    done = wait_for(second.stub(), "restart-2", [READY])
    assert sectigo.batches_created() == 1
    assert len(sectigo.batches(done.batch_name)) == 1


def test_an_order_whose_answer_never_came_is_adopted_not_resent(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(sectigo_timeout=1.0)
    sectigo = service.sectigo
    sectigo.add_fault(kind="hang", routes=["create_batch"], count=1, hang_seconds=3)
    stub = service.stub()

    issued = stub.IssueCertificate(server_key_request("lost-1", "lost.example.com"))

    done = wait_for(stub, "lost-1", [READY])
    assert sectigo.stats()["faults_applied"] == {"hang": 1}
    assert sectigo.requests_to("create_batch") == 1
    assert sectigo.batches_created() == 1
    batches = sectigo.batches(issued.batch_name)
    assert [b["batchId"] for b in batches] == [done.batch_id]
    reasons = [v.reason for v in service.app.store.history(REGISTRATION, "lost-1", 0)]
    assert any("unknown" in r for r in reasons), reasons
    assert f"Sectigo batch {done.batch_id} found" in reasons


def test_a_pending_request_is_listed_as_pending_before_anything_is_sent(
    service_factory: ServiceFactory,
) -> None:
    """A request is recorded before Sectigo hears of it: with Sectigo refusing, it stays PENDING
    and visible."""
    service = service_factory()
    service.sectigo.add_fault(kind="error", status=503, routes=["create_batch"])
    stub = service.stub()

    stub.IssueCertificate(server_key_request("rec-1", "rec.example.com"))

    page = stub.ListCertificateRequests(pb.ListCertificateRequestsRequest(states=[PENDING]))
    assert [r.request_id for r in page.requests] == ["rec-1"]
    assert service.sectigo.batches_created() == 0


def test_a_process_killed_right_after_sending_the_order_is_reconciled_by_the_next(
    service_factory: ServiceFactory,
    emulator_factory: EmulatorFactory,
    pki: DevCerts,
    tmp_path: Path,
) -> None:
    """kill -9 while Sectigo holds the order's answer: the batch exists, the process is gone.
    A new service on the same store finds the batch by name instead of ordering again."""
    emulator = emulator_factory()
    sectigo = EmulatorApi(emulator)
    sectigo.add_fault(kind="hang", routes=["create_batch"], count=1, hang_seconds=30)
    state = tmp_path / "state"
    config = serve_config(tmp_path / "svc.toml", pki, state, emulator)
    with serve_process("--config", str(config)) as (process, logs):
        channel = mtls_channel(f"localhost:{listening_port(logs)}", pki, "registration")
        try:
            issued = ca_pb2_grpc.CertificateAuthorityStub(channel).IssueCertificate(
                server_key_request("killed-1", "killed.example.com"), timeout=10
            )
        finally:
            channel.close()
        poll(lambda: sectigo.batches_created() or None, "Sectigo to create the batch")
        process.kill()
        process.wait(timeout=10)

    second = service_factory(emulator=emulator, state=state)

    done = wait_for(second.stub(), "killed-1", [READY])
    assert done.batch_name == issued.batch_name
    assert sectigo.batches_created() == 1
    assert sectigo.requests_to("create_batch") == 1
    assert [b["batchId"] for b in sectigo.batches(issued.batch_name)] == [done.batch_id]


def test_a_batch_collected_while_the_service_was_down_is_still_downloaded(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    """Sectigo reports a downloaded batch as COLLECTED (as after a crash right after downloading):
    the next service must still take it to READY."""
    emulator = emulator_factory(stuck=True)
    first = service_factory(emulator=emulator)
    stub = first.stub()
    stub.IssueCertificate(server_key_request("coll-1", "coll.example.com"))
    batch_id = wait_for(stub, "coll-1", [PROCESSING]).batch_id
    first.stop()
    sectigo = EmulatorApi(emulator)
    sectigo.settings(stuck=False)
    poll(
        lambda: True if sectigo.batch(batch_id)["status"] == "READY_FOR_DOWNLOAD" else None,
        "the batch to be issued",
    )
    sectigo.download(batch_id)
    assert sectigo.batch(batch_id)["status"] == "COLLECTED"

    second = service_factory(emulator=emulator)

    done = wait_for(second.stub(), "coll-1", [READY])
    assert done.sectigo_status == "COLLECTED"
    assert download(second.stub(), "coll-1").pkcs12
    assert sectigo.batches_created() == 1


def test_a_lost_answer_is_reconciled_by_name_even_when_the_list_ignores_its_filter(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(sectigo_timeout=1.0)
    sectigo = service.sectigo
    stub = service.stub()
    stub.IssueCertificate(server_key_request("other-1", "other.example.com"))
    first = wait_for(stub, "other-1", [READY])
    sectigo.settings(ignore_list_filters=True)
    sectigo.add_fault(kind="hang", routes=["create_batch"], count=1, hang_seconds=3)

    issued = stub.IssueCertificate(server_key_request("lost-2", "lost2.example.com"))
    done = wait_for(stub, "lost-2", [READY])

    assert done.batch_id != first.batch_id, "adopted another request's batch"
    listed = sectigo.batches(issued.batch_name)
    assert len(listed) == 2, "the emulator ignored the filter"
    named = [b["batchId"] for b in listed if b["batchName"] == issued.batch_name]
    assert named == [done.batch_id]
    assert sectigo.requests_to("create_batch") == 2
    leaf = x509.load_pem_x509_certificate(download(stub, "lost-2").certificate_pem.encode())
    assert leaf.subject.rfc4514_string() == "CN=lost2.example.com"
