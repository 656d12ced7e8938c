"""The server's retry time reaches the client: RetryInfo on the wire, the channel's own retry waits
for it (measured at the server), and the typed errors carry it.

The server here is the real gRPC server build (``build_server``: mutual TLS, the real interceptor
and status table) around a scripted servicer that fails as told, so the gap between attempts is
measured where it happens.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo.ca.v1 import ca_pb2_grpc
from sectigo_client import CertificateAuthorityClient, ResourceExhausted, Unavailable
from sectigo_svc.devcerts import DevCerts
from sectigo_svc.domain import errors
from sectigo_svc.rpc.admission import Admission, Limits
from sectigo_svc.rpc.interceptor import CallInterceptor
from sectigo_svc.rpc.server import (
    ROLES,
    SECTIGO_METHODS,
    SERVICE_NAME,
    Hosted,
    build_server,
)
from sectigo_svc.rpc.tls import TlsFiles
from tests.client.conftest import Cli, ClientFactory, settings
from tests.service.conftest import Service


class Throttled(errors.ResourceExhausted):
    """A load-shedding refusal that knows when to come back."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Script:
    """Failures RevokeCertificate raises, one per call, then success; every call's arrival time."""

    failures: list[Exception] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ScriptedServicer(ca_pb2_grpc.CertificateAuthorityServicer):
    def __init__(self, script: Script) -> None:
        self._script = script

    def RevokeCertificate(
        self, request: pb.RevokeCertificateRequest, context: grpc.ServicerContext
    ) -> pb.RevokeCertificateResponse:
        with self._script.lock:
            self._script.arrivals.append(time.monotonic())
            failure = self._script.failures.pop(0) if self._script.failures else None
        if failure is not None:
            raise failure
        return pb.RevokeCertificateResponse(serial_number=request.serial_number)


@dataclass
class ScriptedServer:
    hosted: Hosted
    script: Script
    pki: DevCerts

    def client(self, timeout: float = 10.0) -> CertificateAuthorityClient:
        target = f"localhost:{self.hosted.port}"
        return CertificateAuthorityClient.connect(settings(target, self.pki), timeout=timeout)


@pytest.fixture
def scripted(pki: DevCerts) -> Iterator[ScriptedServer]:
    script = Script()
    hosted = build_server(
        ScriptedServicer(script),  # type: ignore[abstract]  # only RevokeCertificate is scripted
        CallInterceptor(
            SERVICE_NAME,
            ROLES,
            None,
            False,
            10.0,
            Admission(Limits.for_workers(4), SECTIGO_METHODS),
        ),
        "127.0.0.1:0",
        TlsFiles(pki.server_cert, pki.server_key, pki.ca),
        workers=4,
        max_concurrent_rpcs=8,
    )
    hosted.start()
    yield ScriptedServer(hosted, script, pki)
    hosted.stop(0)


def test_the_channel_retry_waits_as_long_as_the_server_asked(scripted: ScriptedServer) -> None:
    scripted.script.failures = [errors.Unavailable("Sectigo is throttling", retry_after=0.8)]

    with scripted.client() as ca:
        revoked = ca.revoke(serial_number="0A1B")

    assert revoked.serial_number == "0A1B"
    first, second = scripted.script.arrivals
    # The channel's own backoff starts at 0.2 s: only the pushback makes it wait this long.
    assert second - first >= 0.75


def test_a_wait_past_the_deadline_is_not_retried_and_says_when(scripted: ScriptedServer) -> None:
    scripted.script.failures = [errors.Unavailable("Sectigo is throttling", retry_after=30.0)]

    with scripted.client(timeout=5.0) as ca, pytest.raises(Unavailable) as raised:
        ca.revoke(serial_number="0A1B")

    assert raised.value.retry_after == 30.0
    assert raised.value.message == "Sectigo is throttling"
    assert len(scripted.script.arrivals) == 1


def test_retry_info_travels_as_status_details_and_plain_trailers(
    scripted: ScriptedServer,
) -> None:
    scripted.script.failures = [errors.Unavailable("Sectigo is down", retry_after=1.25)]
    target = f"localhost:{scripted.hosted.port}"
    options = [("grpc.enable_retries", 0)]
    credentials = grpc.ssl_channel_credentials(
        root_certificates=scripted.pki.ca.read_bytes(),
        private_key=scripted.pki.client("registration").key.read_bytes(),
        certificate_chain=scripted.pki.client("registration").cert.read_bytes(),
    )
    with grpc.secure_channel(target, credentials, options=options) as channel:
        stub = ca_pb2_grpc.CertificateAuthorityStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.RevokeCertificate(pb.RevokeCertificateRequest(serial_number="01"), timeout=60)

    call: grpc.Call = raised.value  # type: ignore[assignment]
    status = rpc_status.from_call(call)
    assert status is not None
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    (detail,) = status.details
    info = error_details_pb2.RetryInfo()
    assert detail.Unpack(info)
    assert info.retry_delay.ToMilliseconds() == 1250
    trailers = dict(call.trailing_metadata() or ())
    assert trailers["retry-after-ms"] == "1250"
    assert trailers["grpc-retry-pushback-ms"] == "1250"


def test_resource_exhausted_with_a_retry_time_carries_it(scripted: ScriptedServer) -> None:
    scripted.script.failures = [Throttled("too many revocations at once", retry_after=2.5)]

    with scripted.client() as ca, pytest.raises(ResourceExhausted) as raised:
        ca.revoke(serial_number="0A1B")

    assert raised.value.retry_after == 2.5
    assert len(scripted.script.arrivals) == 1, "RESOURCE_EXHAUSTED is not retried by the channel"


def test_an_unavailable_without_a_retry_time_is_retried_at_the_channels_pace(
    scripted: ScriptedServer,
) -> None:
    scripted.script.failures = [errors.Unavailable("Sectigo could not be reached")]

    with scripted.client() as ca:
        ca.revoke(serial_number="0A1B")

    assert len(scripted.script.arrivals) == 2


def test_sectigo_ca_prints_the_retry_time(scripted: ScriptedServer) -> None:
    scripted.script.failures = [
        errors.Unavailable("Sectigo is throttling", retry_after=120.0),
        Throttled("too many revocations at once", retry_after=2.5),
    ]
    cli = Cli(f"localhost:{scripted.hosted.port}", scripted.pki)

    unavailable = cli("revoke", "--serial", "0A1B")
    exhausted = cli("--json", "revoke", "--serial", "0A1B")

    assert unavailable.exit_code == 4
    assert "retry after 120 s" in unavailable.stderr
    assert json.loads(exhausted.stderr)["error"]["retry_after"] == 2.5


def test_sectigo_throttling_reaches_the_caller_with_its_retry_time(
    client_factory: ClientFactory, service: Service
) -> None:
    service.sectigo.add_fault(kind="throttle", retry_after=120, routes=["profiles"])

    with pytest.raises(Unavailable) as raised:
        client_factory().profiles(timeout=10)

    assert raised.value.retry_after == pytest.approx(120, abs=1)
    # One RPC reached the service: the channel did not re-send it before the time asked.
    registry = service.app.metrics.registry
    labels = {"method": "ListProfiles", "code": "UNAVAILABLE"}
    assert registry.get_sample_value("sectigo_svc_rpcs_total", labels) == 1
