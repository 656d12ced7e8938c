"""An order Sectigo keeps failing with the same 5xx, while lookups by name prove nothing was
created, ends FAILED with Sectigo's answer after ``max_failed_orders`` sends: not after
``give_up_after`` (a day) of re-ordering once per quarantine."""

from __future__ import annotations

from tests.service.conftest import ServiceFactory
from tests.service.helpers import FAILED, READY, server_key_request, wait_for


def test_the_same_5xx_on_every_order_ends_failed_after_the_bound(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(sectigo_timeout=1.0, quarantine=1.5, max_failed_orders=3)
    sectigo = service.sectigo
    sectigo.add_fault(kind="error", routes=["create_batch"], status=500)
    stub = service.stub()
    stub.IssueCertificate(server_key_request("always-500", "fails.example.com"), timeout=10)

    failed = wait_for(stub, "always-500", [FAILED], timeout=60)

    assert "3 times" in failed.reason and "HTTP 500" in failed.reason
    assert sectigo.requests_to("create_batch") == 3
    assert sectigo.batches_created() == 0
    lookups = sectigo.requests_to("list_batches")
    assert lookups >= 3  # one before each order, and more while in doubt


def test_a_5xx_that_passes_is_ordered_again_and_issued(service_factory: ServiceFactory) -> None:
    service = service_factory(sectigo_timeout=1.0, quarantine=1.5, max_failed_orders=3)
    sectigo = service.sectigo
    sectigo.add_fault(kind="error", routes=["create_batch"], status=500, count=2)
    stub = service.stub()
    stub.IssueCertificate(server_key_request("twice-500", "passes.example.com"), timeout=10)

    wait_for(stub, "twice-500", [READY], timeout=60)

    assert sectigo.requests_to("create_batch") == 3
    assert sectigo.batches_created() == 1
