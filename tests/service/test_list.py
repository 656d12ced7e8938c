"""ListCertificateRequests: newest first, page by page, filtered by state and common name; and
the account reads (authorities, licences, profiles) as Sectigo reports them."""

from __future__ import annotations

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import (
    PENDING,
    PROCESSING,
    READY,
    Stub,
    issue_ready,
    server_key_request,
    wait_for,
)


def _all_pages(stub: Stub, page_size: int, **filters: object) -> list[list[str]]:
    """The request ids of every page, following next_page_token to the end."""
    pages: list[list[str]] = []
    token = ""
    while True:
        page = stub.ListCertificateRequests(
            pb.ListCertificateRequestsRequest(
                page_size=page_size,
                page_token=token,
                **filters,  # type: ignore[arg-type]
            )
        )
        pages.append([r.request_id for r in page.requests])
        token = page.next_page_token
        if not token:
            return pages
        assert len(pages) < 20, "the pages never end"


def test_pages_are_newest_first_and_complete(service: Service) -> None:
    stub = service.stub()
    ids = [f"page-{n}" for n in range(5)]
    for request_id in ids:
        stub.IssueCertificate(server_key_request(request_id, f"{request_id}.example.com"))

    pages = _all_pages(stub, 2)

    assert pages == [["page-4", "page-3"], ["page-2", "page-1"], ["page-0"]]
    assert _all_pages(stub, 5) == [ids[::-1]]
    assert _all_pages(stub, 0) == [ids[::-1]]  # 0 means the default size


def test_filters_by_state_and_common_name(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(stuck=True))
    stub = service.stub()
    stub.IssueCertificate(server_key_request("f-1", "Alpha.example.com"))
    stub.IssueCertificate(server_key_request("f-2", "beta.example.com"))
    wait_for(stub, "f-1", [PROCESSING])
    wait_for(stub, "f-2", [PROCESSING])
    service.sectigo.settings(stuck=False)
    wait_for(stub, "f-1", [READY])
    wait_for(stub, "f-2", [READY])
    service.sectigo.settings(stuck=True)
    stub.IssueCertificate(server_key_request("f-3", "alpha.example.com"))
    wait_for(stub, "f-3", [PROCESSING])

    assert _all_pages(stub, 10, common_name="ALPHA.example.com") == [["f-3", "f-1"]]
    assert _all_pages(stub, 10, states=[READY]) == [["f-2", "f-1"]]
    assert _all_pages(stub, 10, states=[PENDING, PROCESSING]) == [["f-3"]]
    assert _all_pages(stub, 1, states=[READY], common_name="alpha.example.com") == [["f-1"]]
    assert _all_pages(stub, 10, common_name="gamma.example.com") == [[]]


def test_account_reads_show_what_sectigo_reports(service: Service) -> None:
    stub = service.stub("reader")
    issue_ready(service.stub(), server_key_request("acct-1", "acct.example.com"))

    authorities = stub.ListAuthorities(pb.ListAuthoritiesRequest()).authorities
    licenses = stub.GetLicenses(pb.GetLicensesRequest())
    profiles = stub.ListProfiles(pb.ListProfilesRequest()).profiles
    profile = stub.GetProfile(pb.GetProfileRequest(profile_id=85))

    assert [(a.id, a.profile_id, a.balance, a.enabled) for a in authorities] == [
        (42, 42, 99, True),
        (85, 85, 100, True),
    ]
    assert (licenses.ordered, licenses.issued) == (200, 1)
    assert sorted(p.profile_id for p in profiles) == [42, 85]
    assert profile.name == "TRISA End Entity"
    required = {p.name for p in profile.parameters if p.required}
    assert {"commonName", "dNSName", "organizationName", "countryName"} <= required
    country = next(p for p in profile.parameters if p.name == "countryName")
    assert country.validation_pattern
