"""The real ``grpcurl`` binary against the service: reflection, describe, calls over mutual TLS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.conftest import Service
from tests.service.helpers import READY, wait_for

GRPCURL = Path(sys.executable).with_name("grpcurl")
SERVICE = "sectigo.ca.v1.CertificateAuthority"


def _grpcurl(
    service: Service, *args: str, client: str = "registration", data: object = None
) -> subprocess.CompletedProcess[str]:
    """grpcurl with mutual TLS as ``client``; flags go before the address, as grpcurl needs."""
    cert, key = service.pki.client(client)
    flags = ["-cacert", str(service.pki.ca), "-cert", str(cert), "-key", str(key)]
    if data is not None:
        flags += ["-d", json.dumps(data)]
    return subprocess.run(
        [str(GRPCURL), *flags, service.target, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module", autouse=True)
def _grpcurl_installed() -> None:
    assert GRPCURL.exists(), f"{GRPCURL} is missing: install the dev extras"


def test_list_shows_the_services_through_reflection(service: Service) -> None:
    services = _ok(_grpcurl(service, "list")).split()

    assert SERVICE in services
    assert "grpc.health.v1.Health" in services
    assert any(name.startswith("grpc.reflection.") for name in services)


def test_describe_shows_every_rpc(service: Service) -> None:
    described = _ok(_grpcurl(service, "describe", SERVICE))

    assert f"{SERVICE} is a service:" in described
    for rpc in ("IssueCertificate", "GetCertificateRequest", "WatchCertificateRequest"):
        assert f"rpc {rpc} (" in described
    assert "returns ( stream .sectigo.ca.v1.CertificateRequest )" in described


def test_issue_and_get_with_json(service: Service) -> None:
    issue = {
        "request_id": "grpcurl-1",
        "server_key": {"common_name": "grpcurl.example.com", "dns_names": ["www.example.com"]},
    }

    issued = json.loads(_ok(_grpcurl(service, f"{SERVICE}/IssueCertificate", data=issue)))

    assert issued["request_id"] == "grpcurl-1"
    assert issued["owner"] == "spiffe://sectigo-svc.test/registration"
    assert issued["state"] == "REQUEST_STATE_PENDING"
    assert issued["dns_names"] == ["grpcurl.example.com", "www.example.com"]
    assert len(issued["pkcs12_password"]) >= 16
    wait_for(service.stub(), "grpcurl-1", [READY])
    got = json.loads(
        _ok(_grpcurl(service, f"{SERVICE}/GetCertificateRequest", data={"request_id": "grpcurl-1"}))
    )
    assert got["state"] == "REQUEST_STATE_READY"
    assert got["batch_name"] == issued["batch_name"]
    assert "pkcs12_password" not in got


def test_errors_show_the_status_and_the_field(service: Service) -> None:
    bad = _grpcurl(
        service,
        f"{SERVICE}/IssueCertificate",
        data={"request_id": "bad id", "server_key": {"common_name": "a.example.com"}},
    )
    denied = _grpcurl(
        service,
        f"{SERVICE}/IssueCertificate",
        client="reader",
        data={"request_id": "ok", "server_key": {"common_name": "a.example.com"}},
    )

    assert bad.returncode != 0
    assert "Code: InvalidArgument" in bad.stderr
    assert "request_id" in bad.stderr
    assert denied.returncode != 0
    assert "Code: PermissionDenied" in denied.stderr


def test_health_check_is_serving(service: Service) -> None:
    server = json.loads(_ok(_grpcurl(service, "grpc.health.v1.Health/Check")))
    named = json.loads(
        _ok(_grpcurl(service, "grpc.health.v1.Health/Check", data={"service": SERVICE}))
    )

    assert server == {"status": "SERVING"}
    assert named == {"status": "SERVING"}
