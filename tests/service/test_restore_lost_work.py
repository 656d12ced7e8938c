"""A PostgreSQL store that lost recent work (recreated from an older pg_dump, or lost and made
anew): callers send their requests again, and each is adopted from the batch Sectigo already
holds under its name. No second batch, no second licence."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from sectigo_svc.emulator import Emulator
from sectigo_svc.sealing import load_or_create_key
from tests.conftest import EmulatorFactory
from tests.postgres_cluster import Cluster, _pg_bin
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import (
    READY,
    csr_request,
    download,
    issue_ready,
    make_csr,
    server_key_request,
    wait_for,
)


def _recreate(cluster: Cluster, url: str, dump: Path | None) -> None:
    """Drop the database and make it again: from ``dump`` (pg_restore), or empty."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{cluster.url}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())
        admin.execute(f"CREATE DATABASE {name}".encode())
    if dump is not None:
        subprocess.run(
            [_pg_bin("pg_restore"), "--no-owner", "-d", url, str(dump)],
            check=True,
            capture_output=True,
            timeout=60,
        )


@pytest.mark.parametrize("loss", ["restored from an older pg_dump", "database lost"])
def test_requests_sent_again_after_the_database_lost_them_are_adopted(
    loss: str,
    service_factory: ServiceFactory,
    emulator_factory: EmulatorFactory,
    postgres_cluster: Cluster,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    emulator: Emulator = emulator_factory()
    key_file = tmp_path / "data.key"
    load_or_create_key(key_file, create=True)

    def start() -> Service:
        return service_factory(
            emulator=emulator,
            state=tmp_path / "replica",
            database_url=postgres_url,
            data_key_file=key_file,
        )

    service = start()
    sectigo = service.sectigo
    stub = service.stub()
    issue_ready(stub, server_key_request("before-dump", "before.example.com"))
    dump = tmp_path / "store.dump"
    subprocess.run(
        [_pg_bin("pg_dump"), "-Fc", "-f", str(dump), postgres_url],
        check=True,
        capture_output=True,
        timeout=60,
    )
    csr = make_csr("after-csr.example.com", ["after-csr.example.com"])
    after = {
        "after-key": server_key_request("after-key", "after.example.com"),
        "after-csr": csr_request("after-csr", csr.pem),
    }
    first = {rid: issue_ready(stub, request) for rid, request in after.items()}
    ready = {rid: wait_for(stub, rid, [READY]) for rid in after}
    assert sectigo.batches_created() == 3
    service.stop()

    _recreate(postgres_cluster, postgres_url, dump if loss.startswith("restored") else None)
    again = start()
    stub = again.stub()
    for rid, request in after.items():
        reply = stub.IssueCertificate(request, timeout=10)
        assert reply.batch_name == first[rid].batch_name
        assert reply.pkcs12_password == first[rid].pkcs12_password
        done = wait_for(stub, rid, [READY])
        assert done.batch_id == ready[rid].batch_id
        assert download(stub, rid).serial_number == ready[rid].serial_number
    assert sectigo.batches_created() == 3
    adopted = again.app.metrics.registry.get_sample_value(
        "sectigo_svc_batches_adopted_total", {"phase": "never"}
    )
    assert adopted == 2
