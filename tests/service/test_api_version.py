"""The API version a caller states (``sectigo-ca-api-version``): any minor version of v1 is
served as usual, another major or a malformed version is FAILED_PRECONDITION naming the versions
served, no header at all is served; each version is logged once and calls are counted by it."""

from __future__ import annotations

import io
import json

import grpc
import pytest

from sectigo.ca.v1 import VERSION, VERSION_HEADER
from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_client import API_VERSION, CertificateAuthorityClient, NotFound
from sectigo_svc.domain.errors import FailedPrecondition
from sectigo_svc.rpc.api_version import REMEMBERED_VERSIONS, ApiVersions
from tests.client.conftest import settings
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import failure

UNKNOWN = pb.GetCertificateRequestRequest(request_id="no-such-request")


def _get(service: Service, *metadata: tuple[str, str]) -> grpc.StatusCode:
    """The code of a read of an unknown request stating ``metadata``: NOT_FOUND when served."""
    stub = service.stub()
    return failure(lambda: stub.GetCertificateRequest(UNKNOWN, metadata=metadata, timeout=10)).code


def _count(service: Service, label: str) -> float:
    value = service.app.metrics.registry.get_sample_value(
        "sectigo_svc_client_api_versions_total", {"version": label}
    )
    return value or 0.0


def test_another_minor_version_and_no_version_are_served(service: Service) -> None:
    assert _get(service, (VERSION_HEADER, "1.999")) is grpc.StatusCode.NOT_FOUND
    assert _get(service, (VERSION_HEADER, VERSION)) is grpc.StatusCode.NOT_FOUND
    assert _get(service) is grpc.StatusCode.NOT_FOUND
    assert _count(service, "1.999") == 1
    assert _count(service, "none") == 1


@pytest.mark.parametrize("stated", ["2.0", "0.9", "v1", "1", "1.2.3", "1.x", " 1.0", "01.0"])
def test_another_major_or_a_malformed_version_is_refused(service: Service, stated: str) -> None:
    stub = service.stub()

    refused = failure(
        lambda: stub.GetCertificateRequest(
            UNKNOWN, metadata=((VERSION_HEADER, stated),), timeout=10
        )
    )

    assert refused.code is grpc.StatusCode.FAILED_PRECONDITION
    assert f"this service speaks sectigo.ca.v1 ({VERSION})" in refused.details
    assert repr(stated) in refused.details
    assert _count(service, "unsupported") == 1


def test_the_library_states_its_version_on_every_call(service: Service) -> None:
    assert API_VERSION == VERSION
    with CertificateAuthorityClient.connect(settings(service.target, service.pki)) as ca:
        with pytest.raises(NotFound):
            ca.get("no-such-request")
        ca.licenses()
    assert _count(service, API_VERSION) == 2
    assert _count(service, "none") == 0


def test_each_version_is_logged_once(
    captured: io.StringIO, service_factory: ServiceFactory
) -> None:
    service = service_factory()
    for stated in ("1.5", "1.5", "1.6", "3.0", "3.0"):
        _get(service, (VERSION_HEADER, stated))
    service.stop()

    seen = [
        (line["client_api_version"], line["served"])
        for line in map(json.loads, captured.getvalue().splitlines())
        if line.get("event") == "client api version seen"
    ]
    assert seen == [("'1.5'", True), ("'1.6'", True), ("'3.0'", False)]


def test_versions_past_the_remembered_ones_count_as_other() -> None:
    labels: list[str] = []
    versions = ApiVersions(labels.append)
    for minor in range(REMEMBERED_VERSIONS + 2):
        versions.check([(VERSION_HEADER, f"1.{minor}")])
    versions.check([(VERSION_HEADER, "1.0")])
    with pytest.raises(FailedPrecondition):
        versions.check([(VERSION_HEADER, "x" * 10_000)])

    assert labels[:REMEMBERED_VERSIONS] == [f"1.{m}" for m in range(REMEMBERED_VERSIONS)]
    assert labels[REMEMBERED_VERSIONS:] == ["other", "other", "1.0", "unsupported"]
