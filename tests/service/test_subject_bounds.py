"""Names and subject fields within X.509's bounds (RFC 5280: CN, O and OU 64 characters, L and ST
128, C two letters), on both ways of issuing: refused with INVALID_ARGUMENT naming the field before
anything is recorded or ordered; at the bounds, issued (a download works only once READY).

(Sectigo fails an order over the bounds with a 500, which the emulator does too; more hostile
variants are in hostile_inputs.py.)"""

from __future__ import annotations

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import Service
from tests.service.helpers import (
    csr_request,
    download,
    failure,
    issue_ready,
    server_key_request,
)
from tests.service.hostile_inputs import attribute, build_csr, dns_name_of

CN_65 = dns_name_of(65)
CN_64 = dns_name_of(64)


def _assert_refused(service: Service, request: pb.IssueCertificateRequest, field: str) -> None:
    stub = service.stub()
    refused = failure(lambda: stub.IssueCertificate(request))
    not_recorded = failure(
        lambda: stub.GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id=request.request_id)
        )
    )

    assert (refused.code, refused.field) == (grpc.StatusCode.INVALID_ARGUMENT, field), refused
    assert refused.details.startswith(f"{field}: ")
    assert not_recorded.code is grpc.StatusCode.NOT_FOUND
    assert service.sectigo.batches_created() == 0
    assert service.sectigo.requests_to("create_batch") == 0
    assert service.sectigo.requests_to("upload_batch") == 0


def test_a_65_character_common_name_is_refused_with_a_server_key(service: Service) -> None:
    request = server_key_request("cn-65", CN_65)

    _assert_refused(service, request, "server_key.common_name")
    assert "at most 64" in failure(lambda: service.stub().IssueCertificate(request)).details


def test_a_65_character_common_name_is_refused_in_a_csr(service: Service) -> None:
    _assert_refused(
        service, csr_request("cn-65", build_csr(common_name=CN_65)), "csr_pem.subject.commonName"
    )


def test_a_csr_without_common_name_whose_first_dns_name_is_too_long_is_refused(
    service: Service,
) -> None:
    pem = build_csr(common_name=None, dns_names=[CN_65, "short.example.com"])

    _assert_refused(service, csr_request("no-cn", pem), "csr_pem.subject.commonName")
    details = failure(lambda: service.stub().IssueCertificate(csr_request("no-cn", pem))).details
    assert "first DNS name" in details and "65 characters" in details


@pytest.mark.parametrize(
    ("subject", "field"),
    [
        (pb.Subject(organization="O" * 65), "server_key.subject.organization"),
        (pb.Subject(locality="L" * 129), "server_key.subject.locality"),
        (pb.Subject(state="S" * 129), "server_key.subject.state"),
        (pb.Subject(country="USA"), "server_key.subject.country"),
    ],
)
def test_each_server_key_subject_field_has_its_bound(
    service: Service, subject: pb.Subject, field: str
) -> None:
    _assert_refused(service, server_key_request("s-1", "host.example.com", subject=subject), field)


@pytest.mark.parametrize(
    ("oid", "value", "field"),
    [
        (NameOID.ORGANIZATION_NAME, "O" * 65, "csr_pem.subject.organization"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "U" * 65, "csr_pem.subject.organizationalUnit"),
        (NameOID.LOCALITY_NAME, "L" * 129, "csr_pem.subject.locality"),
        (NameOID.STATE_OR_PROVINCE_NAME, "S" * 129, "csr_pem.subject.state"),
        (NameOID.COUNTRY_NAME, "USA", "csr_pem.subject.country"),
    ],
)
def test_each_csr_subject_attribute_has_its_bound(
    service: Service, oid: x509.ObjectIdentifier, value: str, field: str
) -> None:
    pem = build_csr(extra_name=[attribute(oid, value)])

    _assert_refused(service, csr_request("c-1", pem), field)


def test_a_64_character_common_name_with_a_longer_dns_name_is_issued_with_a_server_key(
    service: Service,
) -> None:
    long_san = dns_name_of(253)
    stub = service.stub()

    ready = issue_ready(stub, server_key_request("cn-64", CN_64, [long_san]))

    leaf = x509.load_pem_x509_certificate(download(stub, "cn-64").certificate_pem.encode())
    assert ready.common_name == CN_64
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CN_64
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert long_san in san.get_values_for_type(x509.DNSName)


def test_a_csr_subject_at_every_bound_is_issued(service: Service) -> None:
    at_bounds = {
        NameOID.ORGANIZATION_NAME: "O" * 64,
        NameOID.ORGANIZATIONAL_UNIT_NAME: "U" * 64,
        NameOID.LOCALITY_NAME: "L" * 128,
        NameOID.STATE_OR_PROVINCE_NAME: "S" * 128,
        NameOID.COUNTRY_NAME: "US",
    }
    pem = build_csr(
        common_name=CN_64,
        dns_names=[CN_64, dns_name_of(200)],
        extra_name=[attribute(oid, value) for oid, value in at_bounds.items()],
    )
    stub = service.stub()

    ready = issue_ready(stub, csr_request("bounds", pem))

    leaf = x509.load_pem_x509_certificate(download(stub, "bounds").certificate_pem.encode())
    assert ready.common_name == CN_64
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CN_64
