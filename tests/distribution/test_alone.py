"""The client distribution installed alone: a fresh environment holding only its wheel (and its
dependencies) issues, waits for and downloads a certificate by CSR from a real service, with the
library and with ``sectigo-ca``; nothing of the server comes along."""

from __future__ import annotations

import json
import re
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from tests.client.conftest import environment
from tests.distribution.conftest import Built, Environment
from tests.service.conftest import Service
from tests.service.helpers import make_csr, public_der

# The venvs are built once per session: keep every test that uses them on one xdist worker.
pytestmark = pytest.mark.xdist_group("client-distribution")

SERVER_ONLY = (
    "sectigo_svc",
    "sectigo_admin",
    "prometheus_client",
    "tenacity",
    "structlog",
    "requests",
    "jwt",
    "filelock",
    "psycopg",
    "grpc_status",
    "grpc_health",
    "grpc_reflection",
)
LIBRARY = """
import json, sys
from sectigo_client import API_VERSION, CertificateAuthorityClient

csr_file, out = sys.argv[1], sys.argv[2]
with CertificateAuthorityClient.from_env() as ca:
    issued = ca.issue(csr=open(csr_file).read())
    finished = ca.wait(issued.request_id, timeout=60)
    saved = ca.download_to(issued.request_id, out)
print(json.dumps({
    "request_id": issued.request_id,
    "state": finished.state.value,
    "api_version": API_VERSION,
    "files": sorted(p.name for p in saved.directory.iterdir()),
}))
"""
FIND_SPEC = (
    "import importlib.util, sys; "
    "print(' '.join(n for n in sys.argv[1:] if importlib.util.find_spec(n) is not None))"
)


def test_the_distributions_hold_the_client_and_nothing_of_the_server(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = wheel.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(wheel.read(metadata_name).decode())
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"sectigo", "sectigo_client"}
    for stub in ("ca_pb2.pyi", "ca_pb2_grpc.pyi", "ca_pb2.py", "ca_pb2_grpc.py"):
        assert f"sectigo/ca/v1/{stub}" in names
    assert {"sectigo/py.typed", "sectigo_client/py.typed"} <= set(names)
    requires = sorted(metadata.get_all("Requires-Dist") or [])
    assert [re.split(r"[^A-Za-z0-9_.-]", r)[0] for r in requires] == [
        "click",
        "cryptography",
        "grpcio",
        "protobuf",
    ]
    assert [r for r in requires if "extra" in r] == [r for r in requires if r.startswith("click")]
    assert metadata.get_all("Provides-Extra") == ["cli"]
    with tarfile.open(built.sdist) as sdist:
        members = sdist.getnames()
    assert not [m for m in members if "sectigo_admin" in m or "sectigo_svc" in m]
    assert any(m.endswith("sectigo/ca/v1/ca_pb2.pyi") for m in members)


def test_the_library_environment_has_no_server_and_no_click(library_env: Environment) -> None:
    failed = library_env.run(library_env.python, "-c", "import sectigo_svc")
    assert failed.returncode != 0
    assert "No module named 'sectigo_svc'" in failed.stderr
    present = library_env.run(library_env.python, "-c", FIND_SPEC, *SERVER_ONLY, "click")
    assert present.returncode == 0, present.stderr
    assert present.stdout.split() == []
    checked = library_env.run(library_env.python, "-m", "pip", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_sectigo_ca_without_the_extra_says_how_to_install_it(library_env: Environment) -> None:
    ran = library_env.run(library_env.program("sectigo-ca"), "--help")
    assert ran.returncode == 2
    assert "pip install 'sectigo-ca-client[cli]'" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_the_library_alone_issues_waits_and_downloads_by_csr(
    library_env: Environment, service: Service, tmp_path: Path
) -> None:
    csr = make_csr("alone.example.com", ["alone.example.com"])
    csr_file = tmp_path / "request.csr"
    csr_file.write_text(csr.pem)
    script = tmp_path / "issue.py"
    script.write_text(LIBRARY)
    out = tmp_path / "tls"

    ran = library_env.run(
        library_env.python,
        script,
        csr_file,
        out,
        env=environment(service.target, service.pki),
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout)
    assert result["state"] == "READY"
    assert result["api_version"].startswith("1.")
    assert result["files"] == ["cert.pem", "chain.pem"]
    assert public_der((out / "cert.pem").read_text()) == csr.public_der
    sample = service.app.metrics.registry.get_sample_value(
        "sectigo_svc_client_api_versions_total", {"version": result["api_version"]}
    )
    assert sample is not None and sample >= 3  # issue, watch or get, download


def test_sectigo_ca_alone_issues_waits_and_downloads_by_csr(
    cli_env: Environment, service: Service, tmp_path: Path
) -> None:
    checked = cli_env.run(cli_env.python, "-m", "pip", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    present = cli_env.run(cli_env.python, "-c", FIND_SPEC, *SERVER_ONLY)
    assert present.stdout.split() == []
    csr = make_csr("cli-alone.example.com", ["cli-alone.example.com"])
    csr_file = tmp_path / "request.csr"
    csr_file.write_text(csr.pem)
    out = tmp_path / "tls"

    ran = cli_env.run(
        cli_env.program("sectigo-ca"),
        "--json",
        "issue",
        "--csr",
        csr_file,
        "--out",
        out,
        env=environment(service.target, service.pki),
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout)["request"]["state"] == "READY"
    assert public_der((out / "cert.pem").read_text()) == csr.public_der
    version = cli_env.run(cli_env.program("sectigo-ca"), "--version")
    assert version.returncode == 0, version.stderr
    assert "API sectigo.ca.v1, version 1." in version.stdout
