"""Online backup with ``sectigo-svc backup`` and a restore that a new service runs on."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from sectigo_svc.cli import main
from sectigo_svc.emulator import Emulator
from tests.conftest import EmulatorFactory
from tests.service.conftest import ServiceFactory
from tests.service.helpers import (
    FAILED,
    READY,
    assert_adopted_when_sent_again,
    csr_request,
    download,
    issue_ready,
    issue_work_to_lose,
    make_csr,
    serve_config,
    server_key_request,
    wait_for,
)


@pytest.fixture
def emulator(emulator_factory: EmulatorFactory) -> Emulator:
    return emulator_factory()


def test_a_backup_taken_while_serving_restores_into_a_working_service(
    service_factory: ServiceFactory, emulator: Emulator, tmp_path: Path
) -> None:
    live = tmp_path / "live"
    service = service_factory(emulator=emulator, state=live)
    stub = service.stub()
    issued = issue_ready(stub, server_key_request("backup-1", "backup.example.com"))
    csr = make_csr("backup-csr.example.com", ["backup-csr.example.com"])
    issue_ready(stub, csr_request("backup-2", csr.pem))
    config = serve_config(tmp_path / "service.toml", service.pki, live, emulator)
    copy = tmp_path / "copy"

    result = CliRunner().invoke(main, ["backup", str(copy), "--config", str(config)])

    assert result.exit_code == 0, result.output
    assert "requests.db" in result.output and "data.key" in result.output
    for name in ("requests.db", "data.key"):
        assert stat.S_IMODE((copy / name).stat().st_mode) == 0o600, name
    again = CliRunner().invoke(main, ["backup", str(copy), "--config", str(config)])
    assert again.exit_code != 0 and "exists" in again.output

    service.stop()
    restored = service_factory(emulator=emulator, state=copy).stub()
    fetched = download(restored, "backup-1", include_private_key=True)
    assert fetched.pkcs12_password == issued.pkcs12_password
    assert "PRIVATE KEY" in fetched.private_key_pem
    assert download(restored, "backup-2").certificate_pem.startswith("-----BEGIN CERTIFICATE")


def test_a_backup_needs_a_store_to_copy(
    service_factory: ServiceFactory, emulator: Emulator, tmp_path: Path
) -> None:
    service = service_factory(emulator=emulator)
    config = serve_config(tmp_path / "service.toml", service.pki, tmp_path / "empty", emulator)

    result = CliRunner().invoke(main, ["backup", str(tmp_path / "copy"), "--config", str(config)])

    assert result.exit_code == 1
    assert "no store at" in result.output


def test_a_restored_backup_adopts_what_the_original_ordered_after_it_was_taken(
    service_factory: ServiceFactory, emulator: Emulator, tmp_path: Path
) -> None:
    """Requests queued and in flight when the backup was taken were ordered by the original
    afterwards; the restored service must find those batches by name, not order again."""
    live = tmp_path / "live"
    original = service_factory(emulator=emulator, state=live, tracker_workers=1)
    sectigo = original.sectigo
    # One worker, held by an order whose answer never comes: the other requests stay queued.
    sectigo.add_fault(kind="hang", routes=["create_batch"], count=1, hang_seconds=5)
    stub = original.stub()
    names = {}
    for number in range(4):
        request_id = f"queued-{number}"
        if number % 2:
            csr = make_csr(f"queued{number}.example.com", [f"queued{number}.example.com"])
            reply = stub.IssueCertificate(csr_request(request_id, csr.pem))
        else:
            reply = stub.IssueCertificate(
                server_key_request(request_id, f"queued{number}.example.com")
            )
        names[request_id] = reply.batch_name
    config = serve_config(tmp_path / "service.toml", original.pki, live, emulator)
    copy = tmp_path / "copy"
    backed_up = CliRunner().invoke(main, ["backup", str(copy), "--config", str(config)])
    assert backed_up.exit_code == 0, backed_up.output

    for request_id in names:
        wait_for(stub, request_id, [READY])
    ordered = sectigo.requests_to("create_batch") + sectigo.requests_to("upload_batch")
    assert sectigo.batches_created() == 4
    original.stop()

    restored = service_factory(emulator=emulator, state=copy).stub()
    for request_id, batch_name in names.items():
        done = wait_for(restored, request_id, [READY])
        assert [b["batchId"] for b in sectigo.batches(batch_name)] == [done.batch_id]
    assert sectigo.batches_created() == 4
    assert sectigo.requests_to("create_batch") + sectigo.requests_to("upload_batch") == ordered


def test_a_restore_that_lost_recent_work_adopts_the_batches_when_callers_send_again(
    service_factory: ServiceFactory, emulator: Emulator, tmp_path: Path
) -> None:
    """Requests made after the backup are gone from the restored store; callers send them again
    (same id, same body) and each is adopted from its batch at Sectigo, not ordered twice."""
    live = tmp_path / "live"
    original = service_factory(emulator=emulator, state=live)
    sectigo = original.sectigo
    stub = original.stub()
    issue_ready(stub, server_key_request("before-backup", "before.example.com"))
    config = serve_config(tmp_path / "service.toml", original.pki, live, emulator)
    copy = tmp_path / "copy"
    backed_up = CliRunner().invoke(main, ["backup", str(copy), "--config", str(config)])
    assert backed_up.exit_code == 0, backed_up.output

    lost = issue_work_to_lose(stub)
    assert sectigo.batches_created() == 3
    original.stop()

    restored = service_factory(emulator=emulator, state=copy)
    assert_adopted_when_sent_again(restored.stub(), sectigo, lost)
    assert sectigo.batches_created() == 3
    adopted = restored.app.metrics.registry.get_sample_value(
        "sectigo_svc_batches_adopted_total", {"phase": "never"}
    )
    assert adopted == 2


@pytest.mark.parametrize("change", ["another common name", "another PKCS#12 password"])
def test_a_lost_request_sent_again_with_another_body_is_not_ordered_again_and_says_why(
    change: str, service_factory: ServiceFactory, emulator: Emulator, tmp_path: Path
) -> None:
    """The store lost the request; its caller reuses the request id with another body. Sectigo's
    batch under the name was paid for the first body: it is adopted, not ordered again, and the
    request fails saying to use a new request id and where the earlier certificate is."""
    live = tmp_path / "live"
    original = service_factory(emulator=emulator, state=live)
    sectigo = original.sectigo
    config = serve_config(tmp_path / "service.toml", original.pki, live, emulator)
    copy = tmp_path / "copy"
    backed_up = CliRunner().invoke(main, ["backup", str(copy), "--config", str(config)])
    assert backed_up.exit_code == 0, backed_up.output
    first = issue_ready(original.stub(), server_key_request("reused", "first.example.com"))
    original.stop()

    again = service_factory(emulator=emulator, state=copy).stub()
    other = (
        server_key_request("reused", "second.example.com")
        if change == "another common name"
        else server_key_request("reused", "first.example.com", password="Another-Pass-123")
    )
    again.IssueCertificate(other, timeout=10)
    failed = wait_for(again, "reused", [FAILED])

    assert sectigo.batches_created() == 1
    assert failed.batch_name == first.batch_name
    assert "under a new request_id" in failed.reason
    assert f"sectigo download -i {failed.batch_id}" in failed.reason
