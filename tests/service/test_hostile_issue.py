"""IssueCertificate with one rule broken at a time: always INVALID_ARGUMENT naming that field,
a short message, and never a Sectigo order, a stored request or an audit line.

One service serves the whole module, and after every refusal nothing has reached Sectigo.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.devcerts import DevCerts
from tests.service.conftest import Service
from tests.service.helpers import Failure
from tests.service.hostile_inputs import (
    MAX_DETAILS,
    PROPERTY,
    TIMEOUT,
    build_csr,
    crafted_csrs,
    flipped,
    invalid_countries,
    invalid_dns_names,
    invalid_ids,
    invalid_passwords,
    invalid_request_ids,
    invalid_subject_texts,
    long_common_names,
    outcome,
    running_service,
)

GOOD_SUBJECT = {
    "organization": "Example Ltd",
    "locality": "Menlo Park",
    "state": "California",
    "country": "US",
}


@pytest.fixture(scope="module")
def shared(pki: DevCerts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(pki, tmp_path_factory.mktemp("hostile-issue")) as service:
        yield service


def _server_key(**changes: Any) -> pb.IssueCertificateRequest:
    """A valid server-key request with a full subject, ``changes`` applied."""
    subject = dict(GOOD_SUBJECT) | changes.pop("subject", {})
    spec = {
        "common_name": "host.example.com",
        "dns_names": ["www.example.com"],
        "pkcs12_password": "long enough",
    } | changes.pop("server_key", {})
    fields = {"request_id": "hostile-1"} | changes
    return pb.IssueCertificateRequest(
        server_key=pb.ServerKeySpec(subject=pb.Subject(**subject), **spec), **fields
    )


def _refused(service: Service, request: pb.IssueCertificateRequest) -> Failure:
    stub = service.stub("admin")
    failed = outcome(lambda: stub.IssueCertificate(request, timeout=TIMEOUT))
    assert failed is not None, "an invalid request was accepted"
    _assert_nothing_ordered_or_stored(service)
    return failed


def _assert_nothing_ordered_or_stored(service: Service) -> None:
    assert service.sectigo.requests_to("create_batch") == 0
    assert service.sectigo.requests_to("upload_batch") == 0
    assert service.app.store.audit_log() == []


def _assert_invalid(result: Failure, field: str) -> None:
    assert (result.code, result.field) == (grpc.StatusCode.INVALID_ARGUMENT, field), result
    assert result.details.startswith(f"{field}: ")
    assert len(result.details) <= MAX_DETAILS


@st.composite
def _broken_server_key(draw: st.DrawFn) -> tuple[pb.IssueCertificateRequest, str]:
    """A server-key request with one field broken, and the field the refusal must name."""
    which = draw(
        st.sampled_from(
            [
                "request_id",
                "common_name",
                "long_common_name",
                "dns_name",
                "subject",
                "country",
                "password",
                "authority",
            ]
        )
    )
    if which == "request_id":
        return _server_key(request_id=draw(invalid_request_ids)), "request_id"
    if which == "common_name":
        name = draw(invalid_dns_names)
        if not name:  # an empty common name is a missing one, reported the same way
            name = "\n"
        return _server_key(server_key={"common_name": name}), "server_key.common_name"
    if which == "long_common_name":
        name = draw(long_common_names)
        return _server_key(server_key={"common_name": name}), "server_key.common_name"
    if which == "dns_name":
        names = draw(st.lists(st.sampled_from(["a.example.com", "b.example.com"]), max_size=3))
        at = draw(st.integers(0, len(names)))
        names.insert(at, draw(invalid_dns_names))
        return _server_key(server_key={"dns_names": names}), f"server_key.dns_names[{at}]"
    if which == "subject":
        name = draw(st.sampled_from(["organization", "locality", "state"]))
        changed = {"subject": {name: draw(invalid_subject_texts(name))}}
        return _server_key(**changed), f"server_key.subject.{name}"
    if which == "country":
        return _server_key(
            subject={"country": draw(invalid_countries)}
        ), "server_key.subject.country"
    if which == "password":
        password = draw(invalid_passwords.filter(bool))
        return _server_key(server_key={"pkcs12_password": password}), "server_key.pkcs12_password"
    return _server_key(authority_id=draw(invalid_ids)), "authority_id"


@PROPERTY
@given(case=_broken_server_key())
def test_a_server_key_request_with_one_bad_field_is_refused_naming_it(
    shared: Service, case: tuple[pb.IssueCertificateRequest, str]
) -> None:
    request, field = case
    _assert_invalid(_refused(shared, request), field)


CRAFTED = crafted_csrs()


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_csr_is_refused_on_csr_pem(shared: Service, name: str) -> None:
    pem, field = CRAFTED[name]
    _assert_invalid(
        _refused(shared, pb.IssueCertificateRequest(request_id="c-1", csr_pem=pem)), field
    )


_VALID_CSR = build_csr()


@PROPERTY
@given(at=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_a_csr_with_any_bit_flipped_is_refused_on_csr_pem(
    shared: Service, at: int, bit: int
) -> None:
    request = pb.IssueCertificateRequest(request_id="c-2", csr_pem=flipped(_VALID_CSR, at, bit))
    result = _refused(shared, request)
    assert result.code is grpc.StatusCode.INVALID_ARGUMENT, result
    assert (result.field or "").startswith("csr_pem"), result


@PROPERTY
@given(text=st.one_of(st.text(min_size=1, max_size=2_000), st.binary(min_size=1).map(repr)))
def test_any_text_for_a_csr_is_refused_on_csr_pem(shared: Service, text: str) -> None:
    result = _refused(shared, pb.IssueCertificateRequest(request_id="c-3", csr_pem=text))
    assert (result.code, result.field) == (grpc.StatusCode.INVALID_ARGUMENT, "csr_pem"), result


def test_a_megabyte_common_name_is_refused_with_a_short_message(shared: Service) -> None:
    result = _refused(shared, _server_key(server_key={"common_name": "a" * 1_000_000}))

    _assert_invalid(result, "server_key.common_name")
    assert "1000000 characters" in result.details


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"request_id": "nl-1\n"}, "request_id"),
        ({"request_id": "r" * 128 + "\n"}, "request_id"),
        ({"subject": {"country": "US\n"}}, "server_key.subject.country"),
        ({"server_key": {"common_name": "127.0.0.1"}}, "server_key.common_name"),
        ({"server_key": {"dns_names": ["127.0.0.1"]}}, "server_key.dns_names[0]"),
        ({"server_key": {"dns_names": ["bücher.example.com"]}}, "server_key.dns_names[0]"),
        ({"server_key": {"dns_names": ["xn--a.example.com"]}}, "server_key.dns_names[0]"),
        ({"subject": {"organization": "Evil\x1bCorp"}}, "server_key.subject.organization"),
        ({"subject": {"organization": "Bell\x07Corp"}}, "server_key.subject.organization"),
    ],
)
def test_the_faults_of_issue_11_are_refused(
    shared: Service, changes: dict[str, Any], field: str
) -> None:
    _assert_invalid(_refused(shared, _server_key(**changes)), field)


def test_nothing_was_listed_afterwards(shared: Service) -> None:
    listed = shared.stub("admin").ListCertificateRequests(
        pb.ListCertificateRequestsRequest(owner="*"), timeout=TIMEOUT
    )

    assert list(listed.requests) == []
    _assert_nothing_ordered_or_stored(shared)
