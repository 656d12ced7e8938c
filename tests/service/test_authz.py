"""Authorization of every RPC: the TLS layer, the role policy, ownership, and the audit trail."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo.ca.v1 import ca_pb2_grpc
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import (
    ADMIN,
    READY,
    REGISTRATION,
    VERIFICATION,
    Failure,
    Stub,
    failure,
    issue_ready,
    policy_file,
    server_key_request,
)

TIMEOUT = 5.0
# One well-formed call of every RPC, naming the request "authz-1" where one is needed.
CALLS: dict[str, Callable[[Stub], object]] = {
    "IssueCertificate": lambda s: s.IssueCertificate(
        server_key_request("authz-1", "authz.example.com"), timeout=TIMEOUT
    ),
    "GetCertificateRequest": lambda s: s.GetCertificateRequest(
        pb.GetCertificateRequestRequest(request_id="authz-1"), timeout=TIMEOUT
    ),
    "ListCertificateRequests": lambda s: s.ListCertificateRequests(
        pb.ListCertificateRequestsRequest(), timeout=TIMEOUT
    ),
    "WatchCertificateRequest": lambda s: list(
        s.WatchCertificateRequest(
            pb.WatchCertificateRequestRequest(request_id="authz-1"), timeout=TIMEOUT
        )
    ),
    "DownloadCertificate": lambda s: s.DownloadCertificate(
        pb.DownloadCertificateRequest(request_id="authz-1"), timeout=TIMEOUT
    ),
    "FindCertificates": lambda s: s.FindCertificates(
        pb.FindCertificatesRequest(common_name="authz.example.com"), timeout=TIMEOUT
    ),
    "RevokeCertificate": lambda s: s.RevokeCertificate(
        pb.RevokeCertificateRequest(request_id="authz-1"), timeout=TIMEOUT
    ),
    "ListAuthorities": lambda s: s.ListAuthorities(pb.ListAuthoritiesRequest(), timeout=TIMEOUT),
    "GetLicenses": lambda s: s.GetLicenses(pb.GetLicensesRequest(), timeout=TIMEOUT),
    "ListProfiles": lambda s: s.ListProfiles(pb.ListProfilesRequest(), timeout=TIMEOUT),
    "GetProfile": lambda s: s.GetProfile(pb.GetProfileRequest(profile_id=42), timeout=TIMEOUT),
}
READS = sorted(set(CALLS) - {"IssueCertificate", "RevokeCertificate"})


def test_the_table_covers_every_rpc() -> None:
    methods = pb.DESCRIPTOR.services_by_name["CertificateAuthority"].methods
    assert set(CALLS) == {m.name for m in methods}


def _try(name: str, stub: Stub) -> Failure:
    """Call RPC ``name`` the well-formed way; it must fail."""
    return failure(functools.partial(CALLS[name], stub))


def _codes(stub: Stub, names: list[str] | None = None) -> dict[str, grpc.StatusCode]:
    return {name: _try(name, stub).code for name in names or sorted(CALLS)}


def test_every_rpc_needs_a_client_certificate(service: Service) -> None:
    stub = ca_pb2_grpc.CertificateAuthorityStub(service.anonymous_channel())

    codes = _codes(stub)

    assert codes == dict.fromkeys(sorted(CALLS), grpc.StatusCode.UNAVAILABLE)
    assert service.app.store.audit_log() == []


def test_every_rpc_refuses_a_client_of_another_ca(service: Service) -> None:
    codes = _codes(service.stub("intruder"))

    assert codes == dict.fromkeys(sorted(CALLS), grpc.StatusCode.UNAVAILABLE)
    assert service.app.store.audit_log() == []


def test_every_rpc_refuses_an_identity_the_policy_does_not_know(service: Service) -> None:
    stub = service.stub("stranger")

    failures = {name: _try(name, stub) for name in sorted(CALLS)}

    assert {n: f.code for n, f in failures.items()} == dict.fromkeys(
        sorted(CALLS), grpc.StatusCode.PERMISSION_DENIED
    )
    assert all("stranger" in f.details for f in failures.values())
    assert service.sectigo.requests_to("create_batch") == 0


@pytest.mark.parametrize("client", ["verification", "reader"])
def test_read_only_identities_cannot_issue_or_revoke_but_can_read(
    service: Service, client: str
) -> None:
    issue_ready(service.stub(), server_key_request("authz-1", "authz.example.com"))
    stub = service.stub(client)

    denied = _codes(stub, ["IssueCertificate", "RevokeCertificate"])
    issue = _try("IssueCertificate", stub)

    assert denied == dict.fromkeys(denied, grpc.StatusCode.PERMISSION_DENIED)
    assert "issue role" in issue.details
    for name in ("ListAuthorities", "GetLicenses", "ListProfiles", "GetProfile"):
        CALLS[name](stub)  # allowed: raises on any failure
    assert stub.ListCertificateRequests(pb.ListCertificateRequestsRequest()).requests == []


def test_another_owners_request_is_out_of_reach(
    service_factory: ServiceFactory, tmp_path: Path
) -> None:
    # verification holds every role but admin here, so only ownership can stop it.
    grants = {
        "registration": ["issue", "read", "revoke"],
        "verification": ["issue", "read", "revoke"],
    }
    service = service_factory(policy_file=policy_file(tmp_path, grants))
    issue_ready(service.stub(), server_key_request("authz-1", "authz.example.com"))
    other = service.stub("verification")
    named = REGISTRATION

    naming = {
        "get": failure(
            lambda: other.GetCertificateRequest(
                pb.GetCertificateRequestRequest(request_id="authz-1", owner=named)
            )
        ),
        "watch": failure(
            lambda: other.WatchCertificateRequest(
                pb.WatchCertificateRequestRequest(request_id="authz-1", owner=named)
            )
        ),
        "download": failure(
            lambda: other.DownloadCertificate(
                pb.DownloadCertificateRequest(request_id="authz-1", owner=named)
            )
        ),
        "revoke": failure(
            lambda: other.RevokeCertificate(
                pb.RevokeCertificateRequest(request_id="authz-1", owner=named)
            )
        ),
        "list": failure(
            lambda: other.ListCertificateRequests(pb.ListCertificateRequestsRequest(owner=named))
        ),
        "list all": failure(
            lambda: other.ListCertificateRequests(pb.ListCertificateRequestsRequest(owner="*"))
        ),
    }
    not_naming = {
        name: _try(name, other).code
        for name in (
            "GetCertificateRequest",
            "WatchCertificateRequest",
            "DownloadCertificate",
            "RevokeCertificate",
        )
    }

    assert {k: f.code for k, f in naming.items()} == dict.fromkeys(
        naming, grpc.StatusCode.PERMISSION_DENIED
    )
    assert not_naming == dict.fromkeys(not_naming, grpc.StatusCode.NOT_FOUND)
    assert other.ListCertificateRequests(pb.ListCertificateRequestsRequest()).requests == []
    owner_view = service.stub().GetCertificateRequest(
        pb.GetCertificateRequestRequest(request_id="authz-1")
    )
    assert owner_view.state == READY
    assert service.sectigo.requests_to("revoke") == 0
    assert all(e.identity == REGISTRATION for e in service.app.store.audit_log())


def test_admin_sees_every_owner_and_acts_on_named_requests(service: Service) -> None:
    issue_ready(service.stub(), server_key_request("mine", "mine.example.com"))
    admin = service.stub("admin")
    issue_ready(admin, server_key_request("theirs", "theirs.example.com"))

    everyone = admin.ListCertificateRequests(pb.ListCertificateRequestsRequest(owner="*"))
    own = admin.ListCertificateRequests(pb.ListCertificateRequestsRequest())
    named = admin.ListCertificateRequests(pb.ListCertificateRequestsRequest(owner=REGISTRATION))
    record = admin.GetCertificateRequest(
        pb.GetCertificateRequestRequest(request_id="mine", owner=REGISTRATION)
    )

    assert sorted((r.owner, r.request_id) for r in everyone.requests) == [
        (ADMIN, "theirs"),
        (REGISTRATION, "mine"),
    ]
    assert [r.request_id for r in own.requests] == ["theirs"]
    assert [r.request_id for r in named.requests] == ["mine"]
    assert record.owner == REGISTRATION


def test_every_issue_download_and_revoke_is_audited_with_the_identity(service: Service) -> None:
    owner, admin = service.stub(), service.stub("admin")
    issue_ready(owner, server_key_request("audit-1", "audit.example.com"))
    owner.DownloadCertificate(
        pb.DownloadCertificateRequest(request_id="audit-1", include_private_key=True)
    )
    admin.DownloadCertificate(
        pb.DownloadCertificateRequest(request_id="audit-1", owner=REGISTRATION)
    )
    admin.RevokeCertificate(pb.RevokeCertificateRequest(request_id="audit-1", owner=REGISTRATION))

    entries = service.app.store.audit_log(owner=REGISTRATION, request_id="audit-1")

    assert [(e.identity, e.action) for e in entries] == [
        (REGISTRATION, "issue"),
        (REGISTRATION, "download"),
        (ADMIN, "download"),
        (ADMIN, "revoke"),
    ]
    assert "private_key=True" in entries[1].detail
    assert all(e.identity != VERIFICATION for e in entries)


def test_find_shows_a_caller_only_its_own_certificates(service: Service) -> None:
    owner = service.stub("registration")
    issue_ready(owner, server_key_request("find-1", "scoped.example.com"))
    query = pb.FindCertificatesRequest(common_name="scoped.example.com")

    mine = owner.FindCertificates(query, timeout=TIMEOUT).certificates
    theirs = service.stub("verification").FindCertificates(query, timeout=TIMEOUT).certificates
    everything = service.stub("admin").FindCertificates(query, timeout=TIMEOUT).certificates

    assert len(mine) == 1 and mine[0].common_name == "scoped.example.com"
    assert list(theirs) == []
    assert [c.serial_number for c in everything] == [mine[0].serial_number]
