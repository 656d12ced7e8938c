"""The development stack behind ``make run``: emulator + service with mutual TLS, on loopback.

Everything lives under one state directory (development PKI, emulator CA, store, data key), so a
restart keeps the same CA, the same requests and the same client certificates.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sectigo_svc.app import Application
from sectigo_svc.config import ServiceConfig
from sectigo_svc.devcerts import DevCerts, make_dev_certs
from sectigo_svc.emulator import Emulator, EmulatorConfig
from sectigo_svc.sectigo.credentials import Credentials

EMULATOR_USERNAME = "tester"
EMULATOR_PASSWORD = "supersecretsquirrel"  # noqa: S105 - the emulator's fixed development account
SERVICE = "sectigo.ca.v1.CertificateAuthority"


@dataclass
class DevStack:
    pki: DevCerts
    emulator: Emulator
    app: Application

    def stop(self) -> None:
        self.app.stop()
        self.emulator.stop()


def loopback_settings(pki: DevCerts, state_dir: Path, endpoint: str) -> dict[str, Any]:
    """Settings of a service with the development PKI against an emulator on loopback: mutual
    TLS, the PKI's policy, state and token cache under ``state_dir``, the testing environment."""
    return {
        "tls_cert": pki.server_cert,
        "tls_key": pki.server_key,
        "tls_client_ca": pki.ca,
        "policy_file": pki.policy,
        "state_dir": state_dir,
        "sectigo_endpoint": endpoint,
        "sectigo_environment": "testing",
        "sectigo_token_cache_dir": state_dir / "tokens",
    }


def dev_emulator(
    state: Path, emulator_port: int, management_port: int, issue_delay: float
) -> Emulator:
    """The development emulator (not started): the test account, its ledger in ``state``."""
    return Emulator(
        EmulatorConfig(
            port=emulator_port,
            management_port=management_port,
            state_dir=state / "emulator",
            username=EMULATOR_USERNAME,
            password=EMULATOR_PASSWORD,
            issue_delay=issue_delay,
        )
    )


def start_dev_stack(
    state: Path, listen: str, emulator_port: int, management_port: int, issue_delay: float
) -> DevStack:
    pki = make_dev_certs(state / "pki")
    emulator = dev_emulator(state, emulator_port, management_port, issue_delay)
    emulator.start()
    config = ServiceConfig.load(
        overrides=loopback_settings(pki, state / "service", emulator.api_url)
        | {
            "listen": listen,
            "health_listen": "127.0.0.1:0",
            "metrics_listen": "127.0.0.1:0",
            "poll_min_interval": 0.5,
            "poll_max_interval": 5.0,
        }
    )
    try:
        app = Application(config, Credentials.load(EMULATOR_USERNAME, EMULATOR_PASSWORD))
        app.start()
    except BaseException:
        emulator.stop()
        raise
    return DevStack(pki, emulator, app)


def grpcurl_flags(pki: DevCerts, client: str = "registration") -> str:
    """grpcurl's mutual-TLS flags for ``client`` of the development PKI, quoted for a shell."""
    cert, key = pki.client(client)
    return (
        f"-cacert {shlex.quote(str(pki.ca))} -cert {shlex.quote(str(cert))} "
        f"-key {shlex.quote(str(key))}"
    )


def usage(stack: DevStack, grpcurl: str = "grpcurl") -> str:
    """Ready-to-paste commands for the running stack."""
    flags = grpcurl_flags(stack.pki)
    target = f"localhost:{stack.app.port}"

    def call(rest: str, data: str = "") -> str:
        body = f"-d '{data}' " if data else ""
        return f"{grpcurl} {flags} {body}{target} {rest}"

    issue = '{"request_id": "demo-1", "server_key": {"common_name": "demo.example.com"}}'
    get = '{"request_id": "demo-1"}'
    return "\n".join(
        [
            f"sectigo-svc is serving on localhost:{stack.app.port} (mutual TLS)",
            f"Sectigo emulator: {stack.emulator.api_url}",
            f"  (test-only management API: {stack.emulator.management_url})",
            "",
            "List and describe the API (reflection: no .proto files needed):",
            f"  {call('list')}",
            f"  {call('describe ' + SERVICE)}",
            "Issue a certificate, follow it, download it:",
            f"  {call(SERVICE + '/IssueCertificate', issue)}",
            f"  {call(SERVICE + '/WatchCertificateRequest', get)}",
            f"  {call(SERVICE + '/DownloadCertificate', get)}",
            "Health (also plain text on the probe port, as container probes use it):",
            f"  {call('grpc.health.v1.Health/Check')}",
            f"  {Path(grpcurl).with_name('sectigo-svc')} healthcheck"
            f" --target 127.0.0.1:{stack.app.hosted.probe_port}",
            f"Metrics: curl -s http://127.0.0.1:{stack.app.metrics_port}/metrics",
            "",
            "Ctrl-C stops both.",
        ]
    )
