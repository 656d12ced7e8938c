"""The image's entrypoint logic run directly: configured as the Dockerfile configures it, probed by
the health-check command, scraped for metrics while it issues a certificate."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.devcerts import DevCerts
from tests.conftest import EmulatorFactory
from tests.deploy.dockerfile import parse
from tests.service.conftest import ServiceFactory

ROOT = Path(__file__).resolve().parents[2]
SECTIGO_SVC = Path(sys.executable).with_name("sectigo-svc")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SECTIGO_SVC), "healthcheck", "--target", f"127.0.0.1:{port}", "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def image_environment(pki: DevCerts, state: Path, emulator_url: str) -> dict[str, str]:
    """The service stage's ENV, with its mount points mapped onto this test's files."""
    service = next(stage for stage in parse(ROOT / "Dockerfile") if stage.name == "service")
    env = service.env()
    password = state / "sectigo-password"
    password.write_text("supersecretsquirrel\n")
    mounts = {
        "/etc/sectigo-svc/tls/tls.crt": pki.server_cert,
        "/etc/sectigo-svc/tls/tls.key": pki.server_key,
        "/etc/sectigo-svc/tls/client-ca.crt": pki.ca,
        "/etc/sectigo-svc/policy/policy.toml": pki.policy,
        "/etc/sectigo-svc/sectigo/password": password,
        "/var/lib/sectigo-svc": state / "volume",
    }
    mapped = {key: str(mounts.get(value, value)) for key, value in env.items()}
    assert set(mounts.values()) - {state / "volume"} <= {Path(v) for v in mapped.values()}
    for name in ("LISTEN", "HEALTH_LISTEN", "METRICS_LISTEN"):
        mapped[f"SECTIGO_SVC_{name}"] = f"127.0.0.1:{free_port()}"
    mapped |= {
        "SECTIGO_SVC_SECTIGO_ENDPOINT": emulator_url,
        "SECTIGO_SVC_SECTIGO_ENVIRONMENT": "testing",
        "SECTIGO_SVC_SECTIGO_USERNAME": "tester",
        "SECTIGO_SVC_SECTIGO_TOKEN_CACHE_DIR": str(state / "volume" / "tokens"),
    }
    return mapped


def test_the_entrypoint_serves_and_the_health_check_tells_serving_from_stopped(
    pki: DevCerts, tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    env = image_environment(pki, tmp_path, emulator.api_url)
    probe_port = int(env["SECTIGO_SVC_HEALTH_LISTEN"].rsplit(":", 1)[1])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SECTIGO_", "XDG_"))}
    process = subprocess.Popen(
        [str(SECTIGO_SVC), "serve"],
        env=clean | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        result = healthcheck(probe_port)
        while result.stdout.strip() != "SERVING" and time.monotonic() < deadline:
            time.sleep(0.2)
            result = healthcheck(probe_port)
        assert result.returncode == 0 and result.stdout.strip() == "SERVING"
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors[-2000:]
    stopped = healthcheck(probe_port)
    assert stopped.returncode != 0
    assert stopped.stdout.strip() == "UNREACHABLE"


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_move_during_an_issuance(service_factory: ServiceFactory) -> None:
    service = service_factory(metrics_listen="127.0.0.1:0", health_listen="127.0.0.1:0")
    url = f"http://127.0.0.1:{service.app.metrics_port}/metrics"
    before = requests.get(url, timeout=5).text
    stub = service.stub("registration")
    stub.IssueCertificate(
        pb.IssueCertificateRequest(
            request_id="metrics-1", server_key=pb.ServerKeySpec(common_name="metrics.example.com")
        ),
        timeout=10,
    )
    for update in stub.WatchCertificateRequest(
        pb.WatchCertificateRequestRequest(request_id="metrics-1"), timeout=30
    ):
        last = update.state
    assert last == pb.REQUEST_STATE_READY
    after = requests.get(url, timeout=5).text

    issued = ("sectigo_svc_rpcs_total", {"method": "IssueCertificate", "code": "OK"})
    assert _sample(after, issued[0], **issued[1]) == _sample(before, issued[0], **issued[1]) + 1
    created = {"endpoint": "create_batch", "status": "200", "attempt": "1"}
    assert _sample(after, "sectigo_svc_sectigo_calls_total", **created) == 1
    assert _sample(after, "sectigo_svc_sectigo_calls_total", endpoint="download") >= 1
    assert _sample(after, "sectigo_svc_sectigo_token_renewals_total", how="login") >= 1
    assert _sample(after, "sectigo_svc_requests", state="READY") == 1
    assert _sample(before, "sectigo_svc_requests", state="READY") == 0
    assert _sample(after, "sectigo_svc_licence_balance", authority="42") > 0
    latency = {"method": "IssueCertificate", "code": "OK"}
    assert _sample(after, "sectigo_svc_rpc_duration_seconds_count", **latency) >= 1


def test_scrapes_leave_no_connections_or_files_open(service_factory: ServiceFactory) -> None:
    service = service_factory(metrics_listen="127.0.0.1:0")
    url = f"http://127.0.0.1:{service.app.metrics_port}/metrics"
    with requests.Session() as http:
        http.get(url, timeout=5)
        before = len(list(Path("/proc/self/fd").iterdir()))
        for _ in range(40):
            assert "sectigo_svc_requests" in http.get(url, timeout=5).text
        after = len(list(Path("/proc/self/fd").iterdir()))
    assert after - before < 5, f"{after - before} descriptors left open by 40 scrapes"
