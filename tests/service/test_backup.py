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
    csr_request,
    download,
    issue_ready,
    make_csr,
    serve_config,
    server_key_request,
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
