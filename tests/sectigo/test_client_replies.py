"""Client replies the emulator cannot produce: downloads, odd bodies, secrets and log lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from structlog.testing import capture_logs

from sectigo_svc.sectigo.endpoints import CREATE_BATCH
from sectigo_svc.sectigo.errors import (
    InvalidCredentials,
    InvalidRequest,
    ServerError,
    UnexpectedResponse,
    ValidationError,
)
from sectigo_svc.sectigo.replies import json_reply
from tests.sectigo.fakes import credentials
from tests.sectigo.mocked_http import BASE, JSON, Sleeps, Tokens, authorities, client, transport

# Downloads -------------------------------------------------------------------------------------

ZIP = b"PK\x03\x04" + b"\x00" * 60


def download_url(batch_id: int = 10000) -> str:
    return f"{BASE}/api/v1/batches/{batch_id}/download"


def test_hostile_content_disposition_cannot_escape_the_directory(
    mocked: responses.RequestsMock, sleeps: Sleeps, tmp_path: Path
) -> None:
    target = tmp_path / "downloads"
    target.mkdir()
    mocked.get(
        download_url(),
        body=ZIP,
        content_type="application/octet-stream",
        headers={"Content-Disposition": 'attachment; filename="../../etc/x.zip"'},
    )
    path = client(sleeps).download(10000, target)
    assert path == target / "10000.zip"
    assert path.read_bytes() == ZIP
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["10000.zip", "downloads"]


def test_a_safe_server_name_is_kept(
    mocked: responses.RequestsMock, sleeps: Sleeps, tmp_path: Path
) -> None:
    mocked.get(
        download_url(),
        body=ZIP,
        content_type="application/zip",
        headers={"Content-Disposition": "attachment; filename=certificate.zip"},
    )
    assert client(sleeps).download(10000, tmp_path).name == "certificate.zip"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error"),
    [
        (200, b"<html>Error</html>", "text/html", UnexpectedResponse),
        (200, b"<html>Error</html>", "application/octet-stream", UnexpectedResponse),
        (200, b"", "application/zip", UnexpectedResponse),
        (400, b'{"message": "not ready", "errorCode": -12}', JSON, ValidationError),
        (500, b"<html>oops</html>", "text/html", ServerError),
    ],
)
def test_error_pages_are_never_saved_as_zips(
    mocked: responses.RequestsMock,
    sleeps: Sleeps,
    tmp_path: Path,
    status: int,
    body: bytes,
    content_type: str,
    error: type[Exception],
) -> None:
    mocked.get(download_url(), status=status, body=body, content_type=content_type)
    with pytest.raises(error):
        client(sleeps, max_attempts=1).download(10000, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_downloads_are_size_bounded_and_can_return_bytes(
    mocked: responses.RequestsMock, sleeps: Sleeps, tmp_path: Path
) -> None:
    mocked.get(download_url(), body=ZIP, content_type="application/octet-stream")
    assert client(sleeps).download_bytes(10000) == ZIP
    with pytest.raises(UnexpectedResponse, match="larger than the 10-byte limit"):
        client(sleeps, max_download_bytes=10).download(10000, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_needs_an_existing_directory(sleeps: Sleeps, tmp_path: Path) -> None:

    with pytest.raises(InvalidRequest, match="does not exist"):
        client(sleeps).download(1, tmp_path / "missing")


# Text status and other reply shapes ----------------------------------------------------------


def test_text_status_in_any_charset_or_as_a_json_string(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/batches/7/status"
    mocked.get(url, body="Not Acceptable. Status: Rejected", content_type="text/plain")
    status = client(sleeps).batch_status(7)
    assert (status.status.value, status.detail) == ("NOT_ACCEPTABLE", "Rejected")
    mocked.replace(responses.GET, url, body='"Ready for download"', content_type=JSON)
    assert client(sleeps).batch_status(7).status.value == "READY_FOR_DOWNLOAD"


def test_unknown_batch_states_are_reported_in_the_log(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(f"{BASE}/api/v1/batches/7", json={"batchId": 7, "status": "BATCH_ISSUED_PARTLY"})
    with capture_logs() as logs:
        batch = client(sleeps).batch_detail(7)
    assert batch.status_raw == "BATCH_ISSUED_PARTLY"
    assert {"event": "sectigo batch status unknown", "batch_id": 7}.items() <= next(
        e for e in logs if e["event"] == "sectigo batch status unknown"
    ).items()


def test_balance_must_be_a_bare_integer(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    url = f"{BASE}/api/v1/authorities/1/balanceavailable"
    mocked.get(url, body="100", content_type=JSON)
    assert client(sleeps).balance_available(1) == 100
    mocked.replace(responses.GET, url, body='{"balance": 100}', content_type=JSON)
    with pytest.raises(UnexpectedResponse, match="bare integer"):
        client(sleeps).balance_available(1)


# Secrets ----------------------------------------------------------------------------------------


def test_server_echoes_of_secrets_are_redacted(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.put(
        f"{BASE}/api/v1/batches/createSingleCertBatch",
        status=400,
        json={"message": "pkcs12Password 'hunter2-p12' is too weak", "errorCode": -10},
    )
    with capture_logs() as logs, pytest.raises(ValidationError) as caught:
        client(sleeps).create_single_cert_batch(
            1, "b", {"commonName": "a.example.com", "pkcs12Password": "hunter2-p12"}
        )
    assert "hunter2-p12" not in str(caught.value)
    assert "[redacted]" in caught.value.message
    assert "hunter2-p12" not in repr(logs)


def test_an_echoed_bearer_token_is_redacted(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(
        f"{BASE}/api/v1/authorities/allowed",
        status=400,
        json={"message": "bad request with token t1", "errorCode": -10},
    )
    with pytest.raises(ValidationError) as caught:
        authorities(transport(sleeps))
    assert "t1" not in str(caught.value)
    assert "[redacted]" in caught.value.message


def test_login_errors_never_carry_the_password(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    from sectigo_svc.sectigo.auth_api import AuthApi

    mocked.post(
        f"{BASE}/auth/pwd",
        status=401,
        body="bad password supersecretsquirrel",
        content_type="text/plain",
    )
    with capture_logs() as logs, pytest.raises(InvalidCredentials) as caught:
        AuthApi(transport(sleeps)).login(credentials(), None)
    assert "supersecretsquirrel" not in str(caught.value) + repr(logs)
    body = mocked.calls[0].request.body
    assert isinstance(body, bytes) and json.loads(body) == {
        "username": "tester",
        "password": "supersecretsquirrel",
    }


def test_one_log_line_per_attempt_with_the_wire_facts(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/authorities/allowed"
    mocked.get(url, status=503, json={"message": "busy", "errorCode": -1})
    mocked.get(url, json=[])
    with capture_logs() as logs:
        authorities(transport(sleeps))
    calls = [e for e in logs if e["event"] == "sectigo call"]
    assert [(e["attempt"], e["status"], e.get("error_code")) for e in calls] == [
        (1, 503, -1),
        (2, 200, None),
    ]
    assert all(e["endpoint"] == "authorities" and e["method"] == "GET" for e in calls)
    assert all("duration_ms" in e for e in calls)
    assert "t1" not in repr(logs)


def test_wire_headers_and_bodies(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    from sectigo_svc.sectigo.auth_api import AuthApi

    pair = {"accessToken": "a.b.c", "refreshToken": "r.s.t"}
    mocked.post(f"{BASE}/auth/pwd", json=pair, headers={"Set-Cookie": "lb=abc; Path=/"})
    mocked.post(f"{BASE}/auth/refresh", json=pair)
    mocked.put(f"{BASE}/api/v1/batches/createSingleCertBatch", json={"batchId": 1})
    t = transport(sleeps, user_agent="sectigo-svc/test")
    api = AuthApi(t)
    api.login(credentials(), None)
    api.refresh("r.s.t", None)
    t.call(CREATE_BATCH, json_reply(lambda d: d), tokens=Tokens(), body=None)
    login, refresh, create = (call.request for call in mocked.calls)
    for request in (login, refresh, create):
        assert request.headers["User-Agent"] == "sectigo-svc/test"
        assert request.headers["Accept"] == JSON
    assert "Authorization" not in login.headers and "Authorization" not in refresh.headers
    assert login.headers["Content-Type"] == JSON
    assert (refresh.body, refresh.headers["Content-Type"]) == (b"r.s.t", JSON)
    assert create.headers["Authorization"] == "Bearer t1"
    assert "Cookie" not in create.headers
