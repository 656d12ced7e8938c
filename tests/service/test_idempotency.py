"""Idempotency: one (caller, request_id) is one request and at most one Sectigo batch, always."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import Service
from tests.service.helpers import (
    ADMIN,
    READY,
    REGISTRATION,
    Stub,
    csr_request,
    failure,
    issue_ready,
    make_csr,
    server_key_request,
    wait_for,
)

CALLERS = 50


def _issue_concurrently(
    stub: Stub, request: pb.IssueCertificateRequest
) -> list[pb.CertificateRequest]:
    """``CALLERS`` threads send the same request at the same moment."""
    start = threading.Barrier(CALLERS)

    def call(_: int) -> pb.CertificateRequest:
        start.wait(timeout=10)
        return stub.IssueCertificate(request, timeout=20)

    with ThreadPoolExecutor(CALLERS) as pool:
        return list(pool.map(call, range(CALLERS)))


def _identity(reply: pb.CertificateRequest) -> tuple[object, ...]:
    return (
        reply.request_id,
        reply.owner,
        reply.batch_name,
        reply.create_time.ToNanoseconds(),
        reply.pkcs12_password,
        reply.common_name,
    )


@pytest.mark.parametrize("password", ["", "a caller chosen password"])
def test_concurrent_identical_issues_make_one_request_and_one_batch(
    service: Service, password: str
) -> None:
    stub = service.stub()
    request = server_key_request("dup-1", "dup.example.com", password=password)

    replies = _issue_concurrently(stub, request)

    # The record may have moved on between replies (PENDING, then SUBMITTED...); what makes it
    # the same request may not.
    assert len({_identity(r) for r in replies}) == 1, "every caller must get the same request"
    assert replies[0].pkcs12_password
    if password:
        assert replies[0].pkcs12_password == password
    wait_for(stub, "dup-1", [READY])
    emulator = service.sectigo
    assert emulator.requests_to("create_batch") == 1
    assert len(emulator.batches(replies[0].batch_name)) == 1
    page = stub.ListCertificateRequests(pb.ListCertificateRequestsRequest())
    assert [r.request_id for r in page.requests] == ["dup-1"]
    issues = [e for e in service.app.store.audit_log(REGISTRATION, "dup-1") if e.action == "issue"]
    assert len(issues) == 1


def test_concurrent_identical_csr_issues_make_one_batch(service: Service) -> None:
    stub = service.stub()
    csr = make_csr("dupcsr.example.com", ["dupcsr.example.com"])

    replies = _issue_concurrently(stub, csr_request("dup-csr", csr.pem))

    assert len({r.batch_name for r in replies}) == 1
    wait_for(stub, "dup-csr", [READY])
    assert service.sectigo.batches_created() == 1
    assert len(service.sectigo.batches(replies[0].batch_name)) == 1


def test_a_retry_after_ready_returns_the_same_request_and_password(service: Service) -> None:
    stub = service.stub()
    request = server_key_request("again-1", "again.example.com")
    first = issue_ready(stub, request)

    retry = stub.IssueCertificate(request)

    assert retry.state == READY
    assert retry.batch_name == first.batch_name
    assert retry.create_time == first.create_time
    assert retry.pkcs12_password == first.pkcs12_password
    assert service.sectigo.requests_to("create_batch") == 1


def test_the_same_request_id_with_another_body_is_refused(service: Service) -> None:
    stub = service.stub()
    stub.IssueCertificate(server_key_request("body-1", "one.example.com", password="password-1"))

    other_name = failure(
        lambda: stub.IssueCertificate(
            server_key_request("body-1", "two.example.com", password="password-1")
        )
    )
    other_password = failure(
        lambda: stub.IssueCertificate(
            server_key_request("body-1", "one.example.com", password="password-2")
        )
    )
    as_csr = failure(
        lambda: stub.IssueCertificate(
            csr_request("body-1", make_csr("one.example.com", ["one.example.com"]).pem)
        )
    )

    for refused in (other_name, other_password, as_csr):
        assert refused.code == grpc.StatusCode.ALREADY_EXISTS
        assert "body-1" in refused.details
    # The original body, without its password, is still a faithful retry.
    same = stub.IssueCertificate(server_key_request("body-1", "one.example.com"))
    assert same.pkcs12_password == "password-1"


def test_request_ids_are_per_caller(service: Service) -> None:
    mine = service.stub().IssueCertificate(server_key_request("shared-id", "a.example.com"))
    theirs = service.stub("admin").IssueCertificate(
        server_key_request("shared-id", "b.example.com")
    )

    assert (mine.owner, theirs.owner) == (REGISTRATION, ADMIN)
    assert mine.batch_name != theirs.batch_name
