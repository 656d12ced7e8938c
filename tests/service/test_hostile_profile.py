"""A CSR's key family must be one its profile lists in ``GET /profiles``.

The emulator's profiles offer both RSA and EC, so the one answer it cannot give, a profile that
offers RSA only, comes from ``responses``; every other Sectigo call passes through to the emulator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import grpc
import pytest
import responses

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import Service
from tests.service.helpers import failure
from tests.service.hostile_inputs import TIMEOUT, build_csr


@pytest.fixture
def rsa_only(service: Service) -> Iterator[Service]:
    """The service, with Sectigo saying every profile of the account offers RSA only."""
    stub = service.stub("admin")
    authorities = stub.ListAuthorities(pb.ListAuthoritiesRequest(), timeout=TIMEOUT).authorities
    body = [{"profileId": a.profile_id, "algorithms": ["RSA"], "ca": "x"} for a in authorities]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        mocked.add(responses.GET, re.compile(r".*/api/v1/profiles$"), json=body)
        mocked.add_passthru(re.compile(".*"))
        yield service


def test_an_ec_key_is_refused_when_the_profile_offers_only_rsa(rsa_only: Service) -> None:
    stub = rsa_only.stub()
    request = pb.IssueCertificateRequest(request_id="p-ec", csr_pem=build_csr("ec256"))

    result = failure(lambda: stub.IssueCertificate(request, timeout=TIMEOUT))

    assert (result.code, result.field) == (grpc.StatusCode.INVALID_ARGUMENT, "csr_pem.publicKey")
    assert "accepts only RSA" in result.details
    assert rsa_only.sectigo.requests_to("create_batch") == 0
    assert rsa_only.sectigo.requests_to("upload_batch") == 0


def test_an_rsa_key_is_accepted_when_the_profile_offers_only_rsa(rsa_only: Service) -> None:
    stub = rsa_only.stub()
    request = pb.IssueCertificateRequest(request_id="p-rsa", csr_pem=build_csr("rsa2048"))

    reply = stub.IssueCertificate(request, timeout=TIMEOUT)

    assert reply.state == pb.REQUEST_STATE_PENDING
