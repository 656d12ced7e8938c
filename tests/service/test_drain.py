"""SIGTERM on the real ``sectigo-svc serve`` process: readiness NOT_SERVING at once while RPCs are
still served for the pre-stop window, then the drain of in-flight RPCs, then a clean exit."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo.ca.v1 import ca_pb2_grpc
from sectigo_svc.devcerts import DevCerts
from tests.conftest import EmulatorFactory
from tests.service.helpers import (
    PASSWORD,
    EmulatorApi,
    health_status,
    listening_port,
    mtls_channel,
    poll,
    serve_config,
    serve_process,
)

SERVICE = "sectigo.ca.v1.CertificateAuthority"
PRESTOP = 3.0


def _serving(channel: grpc.Channel) -> bool | None:
    return True if health_status(channel) == "SERVING" else None


def test_sigterm_turns_readiness_not_serving_while_rpcs_are_still_served(
    pki: DevCerts, tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    config = serve_config(
        tmp_path / "sectigo-svc.toml",
        pki,
        tmp_path / "state",
        emulator,
        prestop_seconds=PRESTOP,
        shutdown_grace=2.0,
    )

    with serve_process("--config", str(config)) as (process, logs):
        channel = mtls_channel(f"localhost:{listening_port(logs)}", pki, "reader")
        stub = ca_pb2_grpc.CertificateAuthorityStub(channel)
        try:
            poll(lambda: _serving(channel), "the served process to become SERVING")

            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            poll(
                lambda: True if health_status(channel) == "NOT_SERVING" else None,
                "readiness NOT_SERVING",
                timeout=2,
            )
            seen = []
            # Well inside the window (the margin is for a loaded machine): health answers, and
            # says NOT_SERVING, and RPCs still work.
            while time.monotonic() - signalled < PRESTOP / 2:
                seen.append((health_status(channel), health_status(channel, SERVICE)))
                time.sleep(0.1)
            assert set(seen) == {("NOT_SERVING", "NOT_SERVING")}
            assert health_status(channel, "liveness") == "SERVING"
            assert stub.GetLicenses(pb.GetLicensesRequest(), timeout=5).ordered > 0
            assert process.poll() is None
        finally:
            channel.close()
        assert process.wait(timeout=PRESTOP + 10) == 0
        assert time.monotonic() - signalled >= PRESTOP
        logs.wait_for("sectigo-svc stopped", timeout=5)
    assert all(PASSWORD not in line for line in logs.lines)


def test_an_rpc_in_flight_after_the_window_is_drained_not_cut_off(
    pki: DevCerts, tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    config = serve_config(
        tmp_path / "sectigo-svc.toml",
        pki,
        tmp_path / "state",
        emulator,
        prestop_seconds=0.0,
        shutdown_grace=2.0,
    )
    sectigo = EmulatorApi(emulator)

    with serve_process("--config", str(config)) as (process, logs):
        channel = mtls_channel(f"localhost:{listening_port(logs)}", pki, "reader")
        stub = ca_pb2_grpc.CertificateAuthorityStub(channel)
        try:
            poll(lambda: _serving(channel), "the served process to become SERVING")
            # "find" is a route only this RPC uses (the Sectigo health checks read "devices").
            sectigo.add_fault(kind="latency", latency_ms=1000, routes=["find"], count=1)
            find = pb.FindCertificatesRequest(common_name="nobody.example.com")
            with ThreadPoolExecutor(1) as pool:
                in_flight = pool.submit(stub.FindCertificates, find, timeout=10)
                poll(lambda: sectigo.requests_to("find") or None, "the RPC to reach Sectigo")

                process.send_signal(signal.SIGTERM)

                assert list(in_flight.result().certificates) == []
        finally:
            channel.close()
        assert process.wait(timeout=10) == 0
        logs.wait_for("sectigo-svc stopped", timeout=5)


def test_a_second_signal_ends_the_window_early(
    pki: DevCerts, tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    config = serve_config(
        tmp_path / "sectigo-svc.toml",
        pki,
        tmp_path / "state",
        emulator,
        prestop_seconds=60.0,
        shutdown_grace=1.0,
    )

    with serve_process("--config", str(config)) as (process, logs):
        channel = mtls_channel(f"localhost:{listening_port(logs)}", pki, "reader")
        try:
            poll(lambda: _serving(channel), "the served process to become SERVING")
            process.send_signal(signal.SIGTERM)
            logs.wait_for("stopping: readiness NOT_SERVING, still serving", timeout=5)

            process.send_signal(signal.SIGINT)

            assert process.wait(timeout=20) == 0
        finally:
            channel.close()
