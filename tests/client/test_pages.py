"""Pages that always fit: requests with many long DNS names, listed with the largest page_size,
come back in pages under gRPC's default 4 MiB message limit, and the client library and
`sectigo-ca list` follow next_page_token to the last of them.

The requests are written straight into the store (already REJECTED, so nothing is sent to
Sectigo): the test is about reading them back."""

from __future__ import annotations

import datetime as dt
import json

import grpc
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_client import CertificateAuthorityClient
from sectigo_svc.domain import validation
from sectigo_svc.domain.models import (
    CertificateRequest,
    IssueSpec,
    KeySource,
    RequestState,
    Subject,
    batch_name_for,
)
from sectigo_svc.rpc import servicer
from tests.client.conftest import Cli
from tests.service.conftest import Service
from tests.service.helpers import REGISTRATION, Stub, failure, issue_ready, server_key_request

COUNT = 500
NAMES = 100
GRPC_DEFAULT_LIMIT = 4 * 1024 * 1024  # what every gRPC client receives at most, by default
PAGE_BUDGET = 1024 * 1024


def long_name(request: int, name: int) -> str:
    """A DNS name of 253 characters, the most validation allows, unique per request and name."""
    first = f"r{request:04d}n{name:03d}".ljust(63, "a")
    return ".".join([first, "b" * 63, "c" * 63, "d" * 61])


def add_requests(service: Service, count: int = COUNT) -> list[str]:
    """``count`` requests of the registration identity, each with ``NAMES`` long DNS names, in
    the store; their ids, newest first."""
    now = dt.datetime.now(dt.UTC)
    ids = []
    for n in range(count):
        request_id = f"big-{n:04d}"
        common_name = f"big-{n:04d}.example.com"
        names = [long_name(n, i) for i in range(NAMES - 1)]
        dns_names = validation.dns_names(common_name, names, "server_key.dns_names")
        spec = IssueSpec(
            key_source=KeySource.SERVER,
            common_name=common_name,
            dns_names=dns_names,
            subject=Subject("Example VASP Ltd", "Menlo Park", "California", "US"),
            authority_id=42,
            profile_id=42,
        )
        record = CertificateRequest(
            owner=REGISTRATION,
            request_id=request_id,
            spec=spec,
            fingerprint=spec.fingerprint(),
            batch_name=batch_name_for("sectigo-svc", REGISTRATION, request_id),
            state=RequestState.REJECTED,
            created_at=now,
            updated_at=now,
            reason="Invalid value for dNSName: " + "x" * 300,
        )
        _, created = service.app.store.create(record, None)
        assert created
        ids.append(request_id)
    assert len(dns_names) == NAMES and max(len(n) for n in dns_names) == 253
    return ids[::-1]


def test_the_largest_page_fits_the_default_message_limit_and_the_client_lists_all(
    service: Service, ca: CertificateAuthorityClient
) -> None:
    newest_first = add_requests(service)
    stub = service.stub()  # a channel with gRPC's default limits

    first = stub.ListCertificateRequests(pb.ListCertificateRequestsRequest(page_size=500))
    listed = list(ca.list(page_size=500))

    assert first.ByteSize() <= PAGE_BUDGET < GRPC_DEFAULT_LIMIT
    assert 0 < len(first.requests) < COUNT and first.next_page_token
    assert [r.request_id for r in first.requests] == newest_first[: len(first.requests)]
    assert all(len(r.dns_names) == NAMES for r in first.requests)
    assert [r.request_id for r in listed] == newest_first
    assert [r.request_id for r in ca.list()] == newest_first  # the default page size too


def test_pages_follow_on_from_a_page_cut_short(service: Service) -> None:
    newest_first = add_requests(service, 120)
    stub = service.stub()
    pages: list[list[str]] = []
    token = ""
    while True:
        page = stub.ListCertificateRequests(
            pb.ListCertificateRequestsRequest(page_size=100, page_token=token)
        )
        assert page.ByteSize() <= PAGE_BUDGET
        pages.append([r.request_id for r in page.requests])
        token = page.next_page_token
        if not token:
            break
        assert len(pages) < 20, "the pages never end"

    assert len(pages) > 2  # 100 of these requests do not fit in one page
    assert [i for page in pages for i in page] == newest_first


def test_sectigo_ca_list_lists_every_request(service: Service, cli: Cli) -> None:
    newest_first = add_requests(service)

    result = cli("--json", "list", "--page-size", "500")

    assert result.exit_code == 0, result.output
    assert [r["request_id"] for r in json.loads(result.stdout)] == newest_first


def test_find_pages_by_serial_number_and_the_client_follows_them(
    service: Service, ca: CertificateAuthorityClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = service.stub()
    for n in range(3):
        issue_ready(stub, server_key_request(f"find-{n}", "found.example.com"))
    everything = stub.FindCertificates(pb.FindCertificatesRequest(common_name="found.example.com"))
    serials = [c.serial_number for c in everything.certificates]

    pages = _find_pages(stub, page_size=1)
    monkeypatch.setattr(servicer, "MAX_PAGE_BYTES", 1)  # every certificate over the budget
    cut_by_size = _find_pages(stub, page_size=0)
    listed = ca.find(common_name="found.example.com", page_size=2)
    bad = failure(
        lambda: stub.FindCertificates(
            pb.FindCertificatesRequest(common_name="found.example.com", page_token="djE6MjE=")
        )
    )

    assert len(serials) == 3 and not everything.next_page_token
    assert serials == sorted(serials, key=lambda s: int(s, 16))
    assert pages == cut_by_size == [[s] for s in serials]
    assert [c.serial_number for c in listed] == serials
    assert (bad.code, bad.field) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token")


def _find_pages(stub: Stub, page_size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    token = ""
    while True:
        page = stub.FindCertificates(
            pb.FindCertificatesRequest(
                common_name="found.example.com", page_size=page_size, page_token=token
            )
        )
        pages.append([c.serial_number for c in page.certificates])
        token = page.next_page_token
        if not token:
            return pages
        assert len(pages) < 10, "the pages never end"
