"""Moving a service from SQLite to PostgreSQL with ``sectigo-svc copy-store``: requests finished on
SQLite download the same on PostgreSQL, unfinished ones (Sectigo still processing, an order whose
answer was lost) are completed there, and Sectigo never sees a second batch for any of them."""

from __future__ import annotations

from pathlib import Path

import requests
from click.testing import CliRunner

from sectigo_svc.cli import main
from sectigo_svc.domain.models import SendState
from sectigo_svc.sealing import load_or_create_key
from tests.service.conftest import ServiceFactory
from tests.service.helpers import (
    HTTP_TIMEOUT,
    PROCESSING,
    READY,
    REGISTRATION,
    download,
    issue_ready,
    poll,
    server_key_request,
    wait_for,
)

FINISHED = ("done-1", "done-2")
PROCESSING_IDS = ("stuck-1", "stuck-2")
IN_DOUBT = "answer-lost"


def test_a_copied_store_finishes_its_requests_on_postgresql_without_a_second_batch(
    service_factory: ServiceFactory, tmp_path: Path, postgres_url: str
) -> None:
    key_file = tmp_path / "data.key"
    load_or_create_key(key_file, create=True)
    on_sqlite = service_factory(state=tmp_path / "sqlite", data_key_file=key_file)
    sectigo = on_sqlite.sectigo
    stub = on_sqlite.stub()
    replies = {
        rid: issue_ready(stub, server_key_request(rid, f"{rid}.example.com")) for rid in FINISHED
    }
    originals = {rid: download(stub, rid, include_private_key=True) for rid in FINISHED}

    sectigo.settings(stuck=True)
    for rid in PROCESSING_IDS:
        replies[rid] = stub.IssueCertificate(server_key_request(rid, f"{rid}.example.com"))
        wait_for(stub, rid, [PROCESSING])
    # The order is taken but its answer is lost, and every lookup by name after it fails: in
    # doubt. (The lookup before the order must pass, or the order is never sent.)
    sectigo.add_fault(kind="lost", count=1, routes=["create_batch"])
    replies[IN_DOUBT] = stub.IssueCertificate(server_key_request(IN_DOUBT, "lost.example.com"))
    poll(lambda: sectigo.requests_to("create_batch") > 0 or None, "the order to be sent")
    looked = sectigo.requests_to("list_batches")
    sectigo.add_fault(kind="error", status=503, routes=["list_batches"])
    poll(
        lambda: (
            True
            if (r := on_sqlite.app.store.get(REGISTRATION, IN_DOUBT))
            and r.send_state is SendState.IN_DOUBT
            and sectigo.requests_to("list_batches") > looked
            else None
        ),
        "the lost order to be in doubt",
    )
    on_sqlite.stop()

    copied = CliRunner().invoke(
        main,
        [
            "copy-store",
            "--from",
            str(on_sqlite.config.database_path),
            "--to",
            postgres_url,
            "--data-key-file",
            str(key_file),
        ],
    )
    assert copied.exit_code == 0, copied.output
    assert "  requests: 5" in copied.output.splitlines()

    sectigo.clear_faults()
    sectigo.settings(stuck=False)
    on_postgres = service_factory(
        state=tmp_path / "postgres", database_url=postgres_url, data_key_file=key_file
    )
    stub = on_postgres.stub()
    for rid in (*PROCESSING_IDS, IN_DOUBT):
        wait_for(stub, rid, [READY])
    for rid in FINISHED:
        again = download(stub, rid, include_private_key=True)
        assert again.certificate_pem == originals[rid].certificate_pem
        assert again.private_key_pem == originals[rid].private_key_pem
        assert again.pkcs12_password == replies[rid].pkcs12_password
    for rid in (*PROCESSING_IDS, IN_DOUBT):
        fresh = download(stub, rid)
        assert fresh.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
        assert fresh.pkcs12_password == replies[rid].pkcs12_password

    for rid, reply in replies.items():
        assert len(sectigo.batches(reply.batch_name)) == 1, rid
    assert sectigo.batches_created() == len(replies)
    ledger = requests.get(f"{on_postgres.emulator.management_url}/batches", timeout=HTTP_TIMEOUT)
    downloads = {b["batch_name"]: b["downloads"] for b in ledger.json()["batches"]}
    assert downloads == {reply.batch_name: 1 for reply in replies.values()}
