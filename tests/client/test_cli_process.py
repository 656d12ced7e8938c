"""The installed ``sectigo-ca`` as a real process: output, exit codes and files as a shell sees."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.client.conftest import environment
from tests.service.conftest import Service
from tests.service.helpers import openssl

SECTIGO_CA = Path(sys.executable).with_name("sectigo-ca")


def run(
    service: Service, *args: str, client: str = "registration"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **environment(service.target, service.pki, client)}
    return subprocess.run(
        [SECTIGO_CA, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_issue_wait_download_in_a_real_process(service: Service, tmp_path: Path) -> None:
    out = tmp_path / "tls"

    issued = run(
        service, "--json", "issue", "-n", "proc.example.com", "--include-key", "-o", str(out)
    )

    assert issued.returncode == 0, issued.stderr
    record = json.loads(issued.stdout)["request"]
    assert record["state"] == "READY"
    assert issued.stderr.splitlines()[-1].split()[:2] == [record["request_id"], "READY"]
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "bundle.p12").stat().st_mode) == 0o600
    openssl("x509", "-in", out / "cert.pem", "-noout")
    openssl("pkey", "-in", out / "key.pem", "-noout")
    status = run(service, "status", record["request_id"])
    assert status.returncode == 0 and "READY" in status.stdout


def test_exit_codes_of_a_real_process(service: Service) -> None:
    assert run(service, "status", "never-issued").returncode == 5
    assert run(service, "licenses", client="stranger").returncode == 3
    usage = run(service, "find")
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines()[-1] == (
        "Error: give exactly one of --common-name and --serial"
    )
