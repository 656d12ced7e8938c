"""``kill -9`` of the replica that holds a request's lease, at each step of the request's life:
another replica takes the lapsed lease, finishes the request, and Sectigo holds one batch for it.

Server-key requests (the order route is ``create_batch``); leases of 2 s."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from tests.fleet import Fleet
from tests.reliability.lab import Backstage
from tests.replicas.conftest import FleetFactory
from tests.service.helpers import PROCESSING, READY, poll, server_key_request, wait_for

LEASE_SECONDS = 2.0
ORDER = "create_batch"
MOMENTS = ("recorded, not sent", "during submit", "while polling", "during download")


def _arrange(moment: str, backstage: Backstage) -> Callable[[Fleet, str], None]:
    """Stage the faults that hold a request at ``moment``; returns how to wait until it is
    there."""

    def arrived(route: str, status: int | str | None = None) -> Callable[[Fleet, str], None]:
        def wait(_: Fleet, __: str) -> None:
            def reached() -> bool | None:
                entries = backstage.journal(route)
                return True if any(status in (None, e["status"]) for e in entries) else None

            poll(reached, f"{route} to reach Sectigo")

        return wait

    if moment == "recorded, not sent":
        # Sectigo says come back in a minute: the request stays recorded and unordered.
        backstage.fault(kind="throttle", routes=[ORDER], count=1, retry_after=60)
        return arrived(ORDER, 429)
    if moment == "during submit":
        # The order is taken but its answer never comes back.
        backstage.fault(kind="hang", routes=[ORDER], count=1, hang_seconds=10)
        return arrived(ORDER, "hang")
    if moment == "while polling":
        backstage.settings(stuck=True)

        def processing(fleet: Fleet, request_id: str) -> None:
            wait_for(fleet[0].stub, request_id, [PROCESSING])

        return processing
    assert moment == "during download"
    backstage.fault(kind="slow", routes=["download"], count=1, latency_ms=10_000)
    return arrived("download", 200)


@pytest.mark.parametrize("moment", MOMENTS)
def test_kill_9_of_the_lease_holder_hands_the_request_over_with_one_batch(
    moment: str, fleet_factory: FleetFactory
) -> None:
    fleet = fleet_factory(3, lease_seconds=LEASE_SECONDS)
    backstage = Backstage(fleet.emulator)
    reached = _arrange(moment, backstage)
    request_id = f"killed-{moment.replace(' ', '-').replace(',', '')}"
    creator = fleet[1]
    reply = creator.stub.IssueCertificate(
        server_key_request(request_id, "handed.example.com"), timeout=10
    )
    reached(fleet, request_id)

    holder = fleet.holder_of(request_id)
    assert holder is creator, f"the lease is held by {fleet.lease_of(request_id)}"
    ordered_before = len(backstage.batches())
    holder.kill()
    backstage.clear()
    backstage.settings(stuck=False)

    survivor = fleet.others(holder)[0]
    done = wait_for(survivor.stub, request_id, [READY], timeout=30)
    taker = fleet.holder_of(request_id)
    assert taker is not None and taker is not holder
    assert taker.logs.wait_for("requests taken over")["from_other_replicas"] == 1
    assert ordered_before == (0 if moment == "recorded, not sent" else 1)
    assert [b["batch_name"] for b in backstage.batches()] == [reply.batch_name]
    assert done.batch_id == backstage.batches()[0]["batch_id"]
    assert survivor.stub.DownloadCertificate(
        pb.DownloadCertificateRequest(request_id=request_id), timeout=10
    ).certificate_pem
