"""An operator's session holding a lock on one of the store's other tables: every call fails fast
or succeeds, and an issue is never stored (nor ordered) without its audit entry."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import grpc
import psycopg
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.sealing import load_or_create_key
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import READY, issue_ready, server_key_request, wait_for


def _on_postgres(service_factory: ServiceFactory, url: str, tmp_path: Path) -> Service:
    key = tmp_path / "data.key"
    load_or_create_key(key, create=True)
    return service_factory(database_url=url, data_key_file=key)


def test_an_issue_refused_while_audit_is_locked_is_neither_stored_nor_ordered(
    service_factory: ServiceFactory, postgres_url: str, tmp_path: Path
) -> None:
    service = _on_postgres(service_factory, postgres_url, tmp_path)
    sectigo = service.sectigo
    stub = service.stub()
    request = server_key_request("audited", "audited.example.com")
    with psycopg.connect(postgres_url) as operator:
        operator.execute("LOCK TABLE audit IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(grpc.RpcError) as refused:
            stub.IssueCertificate(request, timeout=10)
        assert cast(grpc.Call, refused.value).code() is grpc.StatusCode.UNAVAILABLE
        time.sleep(1.0)  # a tracker that had the request would order it now
        operator.rollback()
    assert sectigo.requests_to("create_batch") == 0
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT count(*) FROM requests").fetchone() == (0,)

    stub.IssueCertificate(request, timeout=10)  # the caller retries, as UNAVAILABLE says
    wait_for(stub, "audited", [READY])
    with psycopg.connect(postgres_url) as db:
        rows = db.execute("SELECT action FROM audit WHERE request_id = 'audited'").fetchall()
    assert rows == [("issue",)]
    assert sectigo.batches_created() == 1


@pytest.mark.parametrize("table", ["request_history", "sectigo_tokens"])
def test_a_locked_side_table_stalls_no_call(
    table: str, service_factory: ServiceFactory, postgres_url: str, tmp_path: Path
) -> None:
    service = _on_postgres(service_factory, postgres_url, tmp_path)
    stub = service.stub()
    issue_ready(stub, server_key_request("warm", "warm.example.com"))
    calls: dict[str, Callable[[], object]] = {
        "issue": lambda: stub.IssueCertificate(
            server_key_request("side", "side.example.com"), timeout=10
        ),
        "get": lambda: stub.GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id="warm"), timeout=10
        ),
        "download": lambda: stub.DownloadCertificate(
            pb.DownloadCertificateRequest(request_id="warm"), timeout=10
        ),
    }
    outcomes: dict[str, tuple[str, float]] = {}
    with psycopg.connect(postgres_url) as operator:
        operator.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE".encode())
        for name, call in calls.items():
            began = time.monotonic()
            try:
                call()
                outcomes[name] = ("OK", time.monotonic() - began)
            except grpc.RpcError as exc:
                outcomes[name] = (cast(grpc.Call, exc).code().name, time.monotonic() - began)
        operator.rollback()
    for name, (code, seconds) in outcomes.items():
        assert code in ("OK", "UNAVAILABLE") and seconds < 6, (name, code, seconds)
    stub.IssueCertificate(server_key_request("side", "side.example.com"), timeout=10)
    wait_for(stub, "side", [READY], timeout=30)
