"""A Watch on one replica follows a request that another replica creates and tracks."""

from __future__ import annotations

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.replicas.conftest import FleetFactory
from tests.service.helpers import PROCESSING, READY, WAIT, server_key_request


def test_a_watch_on_replica_a_sees_ready_made_by_replica_b(
    fleet_factory: FleetFactory, emulator_factory: EmulatorFactory
) -> None:
    fleet = fleet_factory(3, emulator=emulator_factory(issue_delay=1.0))
    watching, working = fleet[0], fleet[2]
    working.stub.IssueCertificate(server_key_request("watched", "watched.example.com"), timeout=10)
    stream = iter(
        watching.stub.WatchCertificateRequest(
            pb.WatchCertificateRequestRequest(request_id="watched"), timeout=WAIT
        )
    )
    first = next(stream)
    assert first.state != READY, "the watch started too late to see READY arrive"
    assert fleet.holder_of("watched") is working

    states = [first.state] + [message.state for message in stream]

    assert states[-1] == READY
    assert PROCESSING in states
    assert fleet.holder_of("watched") is working
