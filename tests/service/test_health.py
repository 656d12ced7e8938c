"""gRPC health: NOT_SERVING until Sectigo accepts the credentials, SERVING after; and the real
``sectigo-svc serve`` process: ready, then a clean exit on SIGTERM."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sectigo_svc.api.v1 import ca_pb2 as pb
from sectigo_svc.api.v1 import ca_pb2_grpc
from sectigo_svc.devcerts import DevCerts
from sectigo_svc.sectigo.credentials import Credentials
from tests.conftest import EmulatorFactory
from tests.service.conftest import ServiceFactory
from tests.service.helpers import (
    PASSWORD,
    USERNAME,
    EmulatorApi,
    health_status,
    listening_port,
    mtls_channel,
    poll,
    serve_config,
    serve_process,
)

SERVICE = "sectigo.ca.v1.CertificateAuthority"


def _login_answers(sectigo: EmulatorApi, status: int) -> int:
    return int(sectigo.stats()["responses"].get("login", {}).get(str(status), 0))


def test_wrong_sectigo_credentials_keep_health_not_serving(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(
        credentials=Credentials.load(USERNAME, "not the password"), ready=False
    )
    sectigo = service.sectigo

    poll(lambda: True if _login_answers(sectigo, 401) >= 2 else None, "two refused logins")

    assert service.health() == "NOT_SERVING"
    assert service.health(SERVICE) == "NOT_SERVING"
    assert not service.app.wait_ready(0)


def test_health_turns_serving_once_the_credentials_work(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    sectigo = EmulatorApi(emulator)
    sectigo.add_fault(kind="error", status=503, routes=["login"])
    service = service_factory(emulator=emulator, ready=False)
    poll(lambda: True if _login_answers(sectigo, 503) >= 1 else None, "a failed login")
    assert service.health() == "NOT_SERVING"

    sectigo.clear_faults()

    poll(lambda: True if service.health() == "SERVING" else None, "health SERVING", timeout=10)
    assert service.health(SERVICE) == "SERVING"


def test_serve_process_becomes_serving_and_exits_cleanly_on_sigterm(
    pki: DevCerts, tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    config = serve_config(
        tmp_path / "sectigo-svc.toml", pki, tmp_path / "state", emulator, shutdown_grace=2.0
    )
    sectigo = EmulatorApi(emulator)

    with serve_process("--config", str(config)) as (process, logs):
        port = listening_port(logs)
        channel = mtls_channel(f"localhost:{port}", pki, "reader")
        stub = ca_pb2_grpc.CertificateAuthorityStub(channel)
        try:
            poll(
                lambda: True if health_status(channel) == "SERVING" else None,
                "the served process to become SERVING",
            )
            assert health_status(channel, SERVICE) == "SERVING"
            # An RPC in flight when SIGTERM comes is drained, not cut off.
            sectigo.add_fault(kind="latency", latency_ms=1000, routes=["devices"], count=1)
            with ThreadPoolExecutor(1) as pool:
                in_flight = pool.submit(stub.GetLicenses, pb.GetLicensesRequest(), timeout=10)
                poll(lambda: sectigo.requests_to("devices") or None, "the RPC to reach Sectigo")

                process.send_signal(signal.SIGTERM)

                assert in_flight.result().ordered > 0
        finally:
            channel.close()
        assert process.wait(timeout=10) == 0
        logs.wait_for("sectigo-svc stopped", timeout=5)
    assert all(PASSWORD not in line for line in logs.lines)
