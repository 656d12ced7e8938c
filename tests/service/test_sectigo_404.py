"""A 404 from Sectigo is NOT_FOUND only when the call named something; for a read that names
nothing (a list, the account's licences) it is a passing fault: UNAVAILABLE with a retry time."""

from __future__ import annotations

import grpc

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import ServiceFactory
from tests.service.helpers import failure


def test_a_404_on_a_read_that_names_nothing_is_unavailable_with_a_retry_time(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()
    service.sectigo.add_fault(kind="error", status=404, routes=["devices"], count=1)
    stub = service.stub()

    refused = failure(lambda: stub.GetLicenses(pb.GetLicensesRequest(), timeout=10))

    assert refused.code == grpc.StatusCode.UNAVAILABLE
    assert "404" in refused.details
    assert int(refused.trailers["retry-after-ms"]) > 0
    assert stub.GetLicenses(pb.GetLicensesRequest(), timeout=10).ordered >= 0


def test_a_404_for_a_profile_the_caller_named_is_not_found(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()
    service.sectigo.add_fault(kind="error", status=404, routes=["profile_detail"], count=1)

    refused = failure(
        lambda: service.stub().GetProfile(pb.GetProfileRequest(profile_id=42), timeout=10)
    )

    assert refused.code == grpc.StatusCode.NOT_FOUND
