"""Routing rules: unknown paths, wrong methods, content types, the open routes (/status, /ca)."""

from __future__ import annotations

import time

import pytest
import requests
from cryptography import x509

from sectigo_svc.emulator import Emulator
from tests.conftest import EmulatorFactory
from tests.emulator.helpers import (
    JSON_CT,
    TIMEOUT,
    Api,
    assert_error,
    assert_json_content_type,
    common_name,
    fetch_chain,
    server_params,
)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nothing", "/api/v1/batches/1/nothing", "/nothing", "/api/v2/devices"],
)
def test_unknown_path_404(api: Api, path: str) -> None:
    assert_error(api.get(path), 404, None)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/pwd"),
        ("PUT", "/auth/refresh"),
        ("POST", "/api/v1/batches/createSingleCertBatch"),
        ("DELETE", "/api/v1/devices"),
        ("POST", "/api/v1/authorities/allowed"),
        ("GET", "/api/v1/certificates/find"),
        ("GET", "/api/v1/certificates/42/revoke"),
        ("POST", "/status"),
    ],
)
def test_known_path_wrong_method_405(api: Api, method: str, path: str) -> None:
    assert_error(api.request(method, path), 405, None)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml"],
)
def test_json_body_with_wrong_content_type_415(api: Api, content_type: str) -> None:
    body = (
        '{"authorityId": 42, "batchName": "b", "profileParams": '
        '{"commonName": "example.com", "dNSName": "example.com", "pkcs12Password": "secrtpasswrd"}}'
    )
    response = api.request(
        "PUT",
        "/api/v1/batches/createSingleCertBatch",
        data=body,
        headers={"Content-Type": content_type},
    )
    assert_error(response, 415, -15)
    assert api.batches() == []


def test_json_body_without_content_type_415(api: Api) -> None:
    response = api.request(
        "POST",
        "/api/v1/certificates/find",
        data=b'{"commonName": "example.com"}',
    )
    assert "Content-Type" not in response.request.headers
    assert_error(response, 415, -15)


def test_json_body_any_charset_accepted(api: Api) -> None:
    for content_type in ("application/json", "application/json; charset=utf-8"):
        response = api.request(
            "POST",
            "/api/v1/certificates/find",
            data=b'{"commonName": "example.com"}',
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 200, (content_type, response.text)


def test_status_route_open_and_json(emulator: Emulator) -> None:
    response = requests.get(f"{emulator.api_url}/status", timeout=TIMEOUT)
    assert response.status_code == 200
    assert_json_content_type(response)
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["uptime"], int | float | str)


def test_ca_chain_open_and_well_formed(emulator: Emulator) -> None:
    response = requests.get(f"{emulator.api_url}/ca/chain.pem", timeout=TIMEOUT)
    assert response.status_code == 200
    issuing, root = fetch_chain(emulator.api_url)
    assert common_name(issuing.subject) == "Sectigo Emulator Issuing CA"
    assert common_name(root.subject) == "Sectigo Emulator Root CA"
    assert issuing.issuer == root.subject
    assert root.issuer == root.subject
    issuing.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    for ca in (issuing, root):
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert constraints.ca is True


def test_two_emulators_have_different_cas(
    emulator_factory: EmulatorFactory, emulator: Emulator
) -> None:
    other = emulator_factory()
    assert fetch_chain(emulator.api_url)[1] != fetch_chain(other.api_url)[1]


def test_json_replies_declare_utf8(api: Api) -> None:
    for path in (
        "/api/v1/devices",
        "/api/v1/authorities/allowed",
        "/api/v1/authorities/42/balanceavailable",
        "/api/v1/profiles",
        "/api/v1/profiles/42",
        "/api/v1/profiles/42/parameters",
        "/api/v1/organizations/user",
        "/api/v1/batches",
    ):
        response = api.get(path)
        assert response.status_code == 200, (path, response.text)
        assert_json_content_type(response)
        assert response.headers["Content-Type"].replace(" ", "") == JSON_CT, path


def test_batch_routes_reply_json(api: Api) -> None:
    response = api.create_batch(server_params())
    assert response.status_code == 200
    assert_json_content_type(response)


def test_keep_alive_connection_serves_many_requests(emulator: Emulator) -> None:
    """One persistent connection (as the Go client and requests.Session use) works and is prompt.

    Not in docs/emulator.md; it guards against replies written in two TCP segments without
    TCP_NODELAY, which costs every keep-alive request a delayed-ACK stall (~40 ms).
    """
    api = Api(emulator.api_url, keep_alive=True)
    try:
        assert api.login().status_code == 200
        start = time.monotonic()
        for _ in range(20):
            assert api.get("/api/v1/devices").status_code == 200
        elapsed = time.monotonic() - start
    finally:
        api.close()
    assert elapsed < 0.5, f"20 keep-alive requests took {elapsed:.2f}s"
