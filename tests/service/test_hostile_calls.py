"""Every RPC with arbitrary field values: never INTERNAL or UNKNOWN, an INVALID_ARGUMENT always
names a field of the request, and no status message is long.

Callers are an admin (past every permission check, so only the input decides) and an ordinary
client. One service serves the whole module.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import cast

import grpc
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.devcerts import DevCerts
from tests.service.conftest import Service
from tests.service.helpers import ADMIN, Stub, failure
from tests.service.hostile_inputs import (
    INT32,
    INT64,
    PROPERTY,
    TIMEOUT,
    any_text,
    build_csr,
    crafted_csrs,
    outcome,
    refusal_problems,
    running_service,
)

CALLERS = st.sampled_from(["admin", "registration"])
owners = st.one_of(st.just(""), st.just("*"), st.just(ADMIN), any_text)
int32s = st.integers(*INT32)
int64s = st.one_of(st.integers(*INT64), st.sampled_from([INT64[0], -1, 0, 1, 2**53, INT64[1]]))


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


page_tokens = st.one_of(
    any_text,
    st.integers(*INT64).map(lambda n: _token(f"v1:{n}")),
    st.integers(2**63, 2**80).map(lambda n: _token(f"v1:{n}")),
    st.sampled_from(
        [
            _token("v1:-1"),
            _token("v1:0"),
            _token("v1: 5"),
            _token("v1:5\n"),
            _token("v1:1_000"),
            _token("v1:٣"),
            _token("v2:5"),
            _token("v1:5").rstrip("="),
            _token("v1:5") + "\n",
            _token("v1:5") + "AAAA",
            base64.b64encode(b"\xff\xfe").decode(),
        ]
    ),
)


@pytest.fixture(scope="module")
def shared(pki: DevCerts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(pki, tmp_path_factory.mktemp("hostile-calls")) as service:
        yield service


def _check(
    service: Service, client: str, call: Callable[[Stub], object], fields: frozenset[str]
) -> None:
    stub = service.stub(client)
    result = outcome(lambda: call(stub))
    if result is not None:
        assert refusal_problems(result, fields) == []


ISSUE_FIELDS = frozenset({"request_id", "key", "csr_pem", "server_key", "authority_id"})


@st.composite
def _issue_requests(draw: st.DrawFn) -> pb.IssueCertificateRequest:
    request_id = draw(st.one_of(st.uuids().map(str), any_text))
    authority_id = draw(int64s)
    if draw(st.booleans()):
        csr = draw(
            st.one_of(
                any_text,
                st.sampled_from([pem for pem, _ in crafted_csrs().values()]),
                st.just(build_csr("rsa2048")),
            )
        )
        return pb.IssueCertificateRequest(
            request_id=request_id, csr_pem=csr, authority_id=authority_id
        )
    names = st.one_of(st.just("host.example.com"), any_text)
    spec = pb.ServerKeySpec(
        common_name=draw(names),
        dns_names=draw(st.lists(names, max_size=4)),
        subject=pb.Subject(
            organization=draw(any_text),
            locality=draw(any_text),
            state=draw(any_text),
            country=draw(st.one_of(st.just("US"), any_text)),
        ),
        pkcs12_password=draw(any_text),
    )
    return pb.IssueCertificateRequest(
        request_id=request_id, server_key=spec, authority_id=authority_id
    )


@PROPERTY
@given(client=CALLERS, request=_issue_requests())
def test_issue(shared: Service, client: str, request: pb.IssueCertificateRequest) -> None:
    _check(shared, client, lambda s: s.IssueCertificate(request, timeout=TIMEOUT), ISSUE_FIELDS)


@PROPERTY
@given(client=CALLERS, request_id=any_text, owner=owners)
def test_get(shared: Service, client: str, request_id: str, owner: str) -> None:
    request = pb.GetCertificateRequestRequest(request_id=request_id, owner=owner)
    _check(
        shared,
        client,
        lambda s: s.GetCertificateRequest(request, timeout=TIMEOUT),
        frozenset({"request_id", "owner"}),
    )


@PROPERTY
@given(client=CALLERS, request_id=any_text, owner=owners)
def test_watch(shared: Service, client: str, request_id: str, owner: str) -> None:
    request = pb.WatchCertificateRequestRequest(request_id=request_id, owner=owner)
    _check(
        shared,
        client,
        lambda s: s.WatchCertificateRequest(request, timeout=2),
        frozenset({"request_id", "owner"}),
    )


@PROPERTY
@given(client=CALLERS, request_id=any_text, owner=owners, key=st.booleans())
def test_download(shared: Service, client: str, request_id: str, owner: str, key: bool) -> None:
    request = pb.DownloadCertificateRequest(
        request_id=request_id, owner=owner, include_private_key=key
    )
    _check(
        shared,
        client,
        lambda s: s.DownloadCertificate(request, timeout=TIMEOUT),
        frozenset({"request_id", "owner"}),
    )


@PROPERTY
@given(
    client=CALLERS,
    page_size=int32s,
    page_token=page_tokens,
    states=st.lists(int32s, max_size=5),
    common_name=st.one_of(st.just(""), any_text),
    owner=owners,
)
@example(
    client="admin",
    page_size=0,
    page_token=_token(f"v1:{2**64}"),
    states=[],
    common_name="",
    owner="*",
)
def test_list(
    shared: Service,
    client: str,
    page_size: int,
    page_token: str,
    states: list[int],
    common_name: str,
    owner: str,
) -> None:
    request = pb.ListCertificateRequestsRequest(
        page_size=page_size,
        page_token=page_token,
        states=cast(list[pb.RequestState.ValueType], states),
        common_name=common_name,
        owner=owner,
    )
    _check(
        shared,
        client,
        lambda s: s.ListCertificateRequests(request, timeout=TIMEOUT),
        frozenset({"page_size", "page_token", "states", "common_name", "owner"}),
    )


find_tokens = st.one_of(
    page_tokens,
    st.integers(-5, 2**170).map(lambda n: _token(f"f1:{n:X}:{'0' * 32}")),
    st.sampled_from([_token("f1:5:" + "0" * 31), _token("f1:05:" + "0" * 32), _token("f1::")]),
)


@PROPERTY
@given(
    client=CALLERS,
    which=st.sampled_from(["common_name", "serial_number", ""]),
    text=any_text,
    page_size=int32s,
    page_token=find_tokens,
)
def test_find(
    shared: Service, client: str, which: str, text: str, page_size: int, page_token: str
) -> None:
    request = pb.FindCertificatesRequest(page_size=page_size, page_token=page_token)
    if which:
        setattr(request, which, text)
    _check(
        shared,
        client,
        lambda s: s.FindCertificates(request, timeout=TIMEOUT),
        frozenset({"criterion", "common_name", "serial_number", "page_size", "page_token"}),
    )


@PROPERTY
@given(
    client=CALLERS,
    which=st.sampled_from(["request_id", "serial_number", ""]),
    target=st.one_of(any_text, st.sampled_from(["1A2B", "00", "ab:cd:ef"])),
    owner=owners,
    profile_id=int64s,
    reason=int32s,
)
def test_revoke(
    shared: Service, client: str, which: str, target: str, owner: str, profile_id: int, reason: int
) -> None:
    request = pb.RevokeCertificateRequest(
        owner=owner,
        profile_id=profile_id,
        reason=cast(pb.RevocationReason.ValueType, reason),
        **({which: target} if which else {}),
    )
    _check(
        shared,
        client,
        lambda s: s.RevokeCertificate(request, timeout=TIMEOUT),
        frozenset({"target", "request_id", "serial_number", "owner", "profile_id", "reason"}),
    )


@PROPERTY
@given(client=CALLERS, profile_id=int64s)
def test_get_profile(shared: Service, client: str, profile_id: int) -> None:
    _check(
        shared,
        client,
        lambda s: s.GetProfile(pb.GetProfileRequest(profile_id=profile_id), timeout=TIMEOUT),
        frozenset({"profile_id"}),
    )


def test_the_account_reads_take_no_input_and_answer(shared: Service) -> None:
    stub = shared.stub("admin")

    answers = [
        stub.ListAuthorities(pb.ListAuthoritiesRequest(), timeout=TIMEOUT),
        stub.GetLicenses(pb.GetLicensesRequest(), timeout=TIMEOUT),
        stub.ListProfiles(pb.ListProfilesRequest(), timeout=TIMEOUT),
    ]

    assert [type(a).__name__ for a in answers] == [
        "ListAuthoritiesResponse",
        "Licenses",
        "ListProfilesResponse",
    ]


@pytest.mark.parametrize("profile_id", [-1, INT64[0], 2**53, INT64[1]])
def test_revoke_by_serial_with_a_bad_profile_id_is_invalid_argument(
    shared: Service, profile_id: int
) -> None:
    stub = shared.stub("admin")
    request = pb.RevokeCertificateRequest(serial_number="1A2B", profile_id=profile_id)

    result = failure(lambda: stub.RevokeCertificate(request, timeout=TIMEOUT))

    assert (result.code, result.field) == (grpc.StatusCode.INVALID_ARGUMENT, "profile_id")


def test_revoke_by_serial_under_a_profile_of_no_authority_is_invalid_argument(
    shared: Service,
) -> None:
    stub = shared.stub("admin")
    request = pb.RevokeCertificateRequest(serial_number="1A2B", profile_id=999_999)

    result = failure(lambda: stub.RevokeCertificate(request, timeout=TIMEOUT))

    assert (result.code, result.field) == (grpc.StatusCode.INVALID_ARGUMENT, "profile_id")
    assert shared.sectigo.requests_to("revoke") == 0


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("past 2^63", _token(f"v1:{2**63}")),
        ("past 2^64", _token(f"v1:{2**64 + 5}")),
        ("negative", _token("v1:-1")),
        ("spaces", _token("v1: 5")),
        ("unpadded", _token("v1:12").rstrip("=")),
        ("trailing newline", _token("v1:5") + "\n"),
        ("other version", _token("v2:5")),
    ],
)
def test_a_foreign_page_token_is_invalid_argument(shared: Service, name: str, token: str) -> None:
    stub = shared.stub("admin")
    request = pb.ListCertificateRequestsRequest(page_token=token)

    result = failure(lambda: stub.ListCertificateRequests(request, timeout=TIMEOUT))

    assert (result.code, result.field) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token"), name


def test_an_a_label_is_accepted_and_a_u_label_refused_pointing_to_the_a_label(
    shared: Service,
) -> None:
    stub = shared.stub()
    spec = pb.ServerKeySpec(common_name="host.example.com", dns_names=["xn--bcher-kva.example.com"])
    accepted = stub.IssueCertificate(
        pb.IssueCertificateRequest(request_id="idn-a", server_key=spec), timeout=TIMEOUT
    )
    spec.dns_names[0] = "bücher.example.com"

    refused = failure(
        lambda: stub.IssueCertificate(
            pb.IssueCertificateRequest(request_id="idn-u", server_key=spec), timeout=TIMEOUT
        )
    )

    assert list(accepted.dns_names) == ["host.example.com", "xn--bcher-kva.example.com"]
    assert (refused.code, refused.field) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "server_key.dns_names[0]",
    )
    assert "A-label xn-- form" in refused.details
