"""The service's logs: one JSON line per RPC, and never a secret in any line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import grpc

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import ServiceFactory
from tests.service.helpers import (
    PASSWORD,
    READY,
    REGISTRATION,
    download,
    failure,
    server_key_request,
)

CALLER_PASSWORD = "caller-chosen-p12-secret"


def _key_body(pem: str) -> list[str]:
    """The base64 lines of a PEM private key (what would leak if it were logged)."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def test_no_secret_reaches_any_log_line_and_every_rpc_has_one_line(
    captured: io.StringIO, service_factory: ServiceFactory
) -> None:
    service = service_factory()
    stub = service.stub()
    calls: list[tuple[str, str]] = []

    generated = stub.IssueCertificate(server_key_request("log-1", "log1.example.com"))
    given = stub.IssueCertificate(
        server_key_request("log-2", "log2.example.com", password=CALLER_PASSWORD)
    )
    calls += [("IssueCertificate", "OK")] * 2
    for request_id in ("log-1", "log-2"):
        watched = list(
            stub.WatchCertificateRequest(
                pb.WatchCertificateRequestRequest(request_id=request_id), timeout=20
            )
        )
        assert watched[-1].state == READY
        calls.append(("WatchCertificateRequest", "OK"))
    keys = [download(stub, r, include_private_key=True) for r in ("log-1", "log-2")]
    calls += [("DownloadCertificate", "OK")] * 2
    stub.RevokeCertificate(pb.RevokeCertificateRequest(request_id="log-1"))
    calls.append(("RevokeCertificate", "OK"))
    short = failure(
        lambda: stub.IssueCertificate(
            server_key_request("log-3", "a.example.com", password="tinypw7")
        )
    )
    reused = failure(
        lambda: stub.IssueCertificate(
            server_key_request("log-2", "log2.example.com", password="another-password-9")
        )
    )
    calls += [("IssueCertificate", short.code.name), ("IssueCertificate", reused.code.name)]
    assert (short.code, reused.code) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
    )
    service.stop()

    lines = captured.getvalue().splitlines()
    tokens = _cached_tokens(service.config.sectigo_token_cache_dir)
    secrets = {
        "the Sectigo password": [PASSWORD],
        "a Sectigo token": tokens,
        "a generated PKCS#12 password": [generated.pkcs12_password],
        "a caller's PKCS#12 password": [CALLER_PASSWORD, "another-password-9", "tinypw7"],
        "a private key": [line for got in keys for line in _key_body(got.private_key_pem)],
    }
    assert tokens and all(secrets.values()), "every kind of secret must be there to look for"
    assert given.pkcs12_password == CALLER_PASSWORD
    leaks = [
        f"{kind} in: {line[:200]}"
        for line in lines
        for kind, values in secrets.items()
        if any(value in line for value in values)
    ]
    assert leaks == []

    events = [json.loads(line) for line in lines]  # every line is JSON
    rpcs = [e for e in events if e["event"] == "rpc"]
    assert [(e["rpc"], e["code"]) for e in rpcs] == calls
    for event in rpcs:
        assert event["identity"] == REGISTRATION
        assert isinstance(event["duration_ms"], float | int)
        assert event["request_id"]
        assert event["level"] == "info"
    assert any(e["event"] == "sectigo call" for e in events)


def _cached_tokens(directory: Path | None) -> list[str]:
    """The access and refresh tokens in the service's token cache files."""
    assert directory is not None
    found: list[str] = []
    for path in directory.glob("*.json"):
        data = json.loads(path.read_text())
        found += [data["accessToken"], data["refreshToken"]]
    return found
