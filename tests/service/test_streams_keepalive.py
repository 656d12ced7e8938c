"""A Watch stays open for a client that pings every 10 s (clients behind load balancers and NATs).

gRPC's default server policy answers such a client with GOAWAY ``too_many_pings`` after about
30 s; the service allows it. This is the suite's one long test (about a minute, mostly asleep).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import grpc
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo.ca.v1 import ca_pb2_grpc
from tests.conftest import EmulatorFactory
from tests.service.conftest import ServiceFactory
from tests.service.helpers import PROCESSING, READY, server_key_request, wait_for

CLIENT_PING_MS = 10_000
OPEN_FOR = 62.0  # seconds the stream must stay open with nothing to say


@dataclass
class Followed:
    """What a watch delivered, from a thread: each message, and how it ended."""

    messages: list[pb.CertificateRequest] = field(default_factory=list)
    ended: grpc.StatusCode | None = None
    details: str = ""
    first: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


def _follow(call: grpc.Call, followed: Followed) -> None:
    try:
        for message in call:  # type: ignore[attr-defined]  # a stream call is iterable
            followed.messages.append(message)
            followed.first.set()
        followed.ended = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        failed: grpc.Call = exc  # type: ignore[assignment]
        followed.ended, followed.details = failed.code(), failed.details() or ""
    finally:
        followed.first.set()
        followed.done.set()


@pytest.mark.timeout(180)
def test_a_watch_outlives_a_minute_of_client_pings_every_ten_seconds(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(stuck=True))
    service.stub().IssueCertificate(server_key_request("ka-1", "ka.example.com"), timeout=10)
    wait_for(service.stub(), "ka-1", [PROCESSING])
    cert, key = service.pki.client("registration")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=service.pki.ca.read_bytes(),
        private_key=key.read_bytes(),
        certificate_chain=cert.read_bytes(),
    )
    options = [
        ("grpc.keepalive_time_ms", CLIENT_PING_MS),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 0),
    ]
    with grpc.secure_channel(service.target, credentials, options=options) as channel:
        stub = ca_pb2_grpc.CertificateAuthorityStub(channel)
        call = stub.WatchCertificateRequest(
            pb.WatchCertificateRequestRequest(request_id="ka-1"), timeout=OPEN_FOR + 60
        )
        followed = Followed()
        threading.Thread(target=_follow, args=(call, followed), daemon=True).start()
        assert followed.first.wait(10)

        time.sleep(OPEN_FOR)
        open_after_a_minute = not followed.done.is_set()
        service.sectigo.settings(stuck=False)
        assert followed.done.wait(30), "the watch never ended"

    assert open_after_a_minute, f"the watch ended early: {followed.ended} {followed.details}"
    assert followed.ended == grpc.StatusCode.OK
    assert followed.messages[0].state == PROCESSING
    assert followed.messages[-1].state == READY
