"""Transport: error decoding, retries and the 401 replay, for shapes the emulator cannot produce."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses

from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.endpoints import CREATE_BATCH, LOGIN
from sectigo_svc.sectigo.errors import (
    ConnectionFailed,
    DeadlineExceeded,
    InsufficientLicences,
    InvalidCredentials,
    NotAuthorized,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    SectigoHTTPError,
    ServerError,
    TLSAuthRequired,
    Unauthenticated,
    UnexpectedRedirect,
    UnexpectedResponse,
    UnsupportedMediaType,
    ValidationError,
)
from sectigo_svc.sectigo.replies import json_reply
from tests.sectigo.mocked_http import BASE, JSON, Sleeps, Tokens, authorities, client, transport

# Error replies become typed exceptions --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, ValidationError),
        (401, Unauthenticated),
        (402, InsufficientLicences),
        (403, NotAuthorized),
        (404, NotFound),
        (415, UnsupportedMediaType),
        (418, SectigoHTTPError),
        (429, RateLimited),
        (500, ServerError),
        (302, UnexpectedRedirect),
    ],
)
def test_status_decides_the_error_class(
    mocked: responses.RequestsMock, sleeps: Sleeps, status: int, error_class: type[Exception]
) -> None:
    mocked.get(f"{BASE}/api/v1/authorities/allowed", status=status, json={"message": "no"})
    with pytest.raises(error_class) as caught:
        authorities(transport(sleeps, max_attempts=1))
    assert type(caught.value) is error_class


@pytest.mark.parametrize(
    ("body", "content_type", "message", "code"),
    [
        (
            {"status": 400, "message": "bad param", "errorCode": -10, "timestamp": 1},
            JSON,
            "bad param",
            -10,
        ),
        (
            {"status": 400, "message": "x", "errorCode": "-10", "timestamp": "2020"},
            "application/json; charset=utf-8",
            "x",
            -10,
        ),
        (
            {"success": False, "error": "unknown profile"},
            "application/json",
            "unknown profile",
            None,
        ),
        ("a bare string", "Application/JSON", "a bare string", None),
    ],
)
def test_json_error_bodies_in_every_shape(
    mocked: responses.RequestsMock,
    sleeps: Sleeps,
    body: Any,
    content_type: str,
    message: str,
    code: int | None,
) -> None:
    mocked.get(
        f"{BASE}/api/v1/authorities/allowed",
        status=400,
        body=json.dumps(body),
        content_type=content_type,
    )
    with pytest.raises(ValidationError) as caught:
        authorities(transport(sleeps))
    error = caught.value
    assert (error.status, error.message, error.error_code) == (400, message, code)
    assert (error.endpoint, error.method) == ("authorities", "GET")


def test_text_plain_errors_in_any_charset(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(
        f"{BASE}/api/v1/authorities/allowed",
        status=404,
        body="Autorität unbekannt".encode("latin-1"),
        content_type="text/plain; charset=ISO-8859-1",
    )
    with pytest.raises(NotFound, match="Autorität unbekannt"):
        authorities(transport(sleeps))


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("<html><body>Bad Gateway from nginx</body></html>", "text/html", "(text/html)"),
        ("{oops", JSON, "malformed JSON error body"),
        ("", "", "no content type"),
    ],
)
def test_error_pages_are_not_dumped_into_messages(
    mocked: responses.RequestsMock, sleeps: Sleeps, body: str, content_type: str, message: str
) -> None:
    mocked.get(
        f"{BASE}/api/v1/authorities/allowed", status=403, body=body, content_type=content_type
    )
    with pytest.raises(NotAuthorized) as caught:
        authorities(transport(sleeps))
    assert message in caught.value.message and "nginx" not in caught.value.message


def test_login_statuses(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    t = transport(sleeps)
    mocked.post(f"{BASE}/auth/pwd", status=307, headers={"Location": "https://iot.sectigo.com/tls"})
    with pytest.raises(TLSAuthRequired, match=r"redirect to https://iot\.sectigo\.com/tls"):
        t.call(LOGIN, json_reply(lambda d: d))
    mocked.replace(responses.POST, f"{BASE}/auth/pwd", status=401, json={"message": "nope"})
    with pytest.raises(InvalidCredentials):
        t.call(LOGIN, json_reply(lambda d: d))
    assert len(mocked.calls) == 2


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        ("[]", "text/html", "expected a JSON reply, got text/html"),
        ("[1,", JSON, "malformed JSON reply"),
        ("{}", JSON, "expected a JSON array"),
        ('[{"id": "one"}]', JSON, "id: expected an integer"),
    ],
)
def test_unexpected_success_replies(
    mocked: responses.RequestsMock, sleeps: Sleeps, body: str, content_type: str, problem: str
) -> None:
    mocked.get(f"{BASE}/api/v1/authorities/allowed", body=body, content_type=content_type)
    with pytest.raises(UnexpectedResponse, match=problem):
        client(sleeps).authorities()
    assert len(mocked.calls) == 1  # malformed replies are not retried


# Retries ---------------------------------------------------------------------------------------


def test_reads_retry_5xx_with_growing_jittered_backoff(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/authorities/allowed"
    for _ in range(3):
        mocked.get(url, status=503, json={"message": "busy"})
    mocked.get(url, json=[])
    assert authorities(transport(sleeps)) == []
    assert len(sleeps.waits) == 3
    for attempt, wait in enumerate(sleeps.waits, start=1):
        ceiling = 0.5 * 2 ** (attempt - 1)
        assert ceiling / 2 <= wait <= ceiling


def test_attempts_are_bounded_and_the_original_error_surfaces(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(f"{BASE}/api/v1/authorities/allowed", status=502, json={"message": "gw"})
    with pytest.raises(ServerError, match="gw"):
        authorities(transport(sleeps))
    assert len(mocked.calls) == 4


def test_429_honours_retry_after(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    url = f"{BASE}/api/v1/authorities/allowed"
    mocked.get(url, status=429, headers={"Retry-After": "3"}, json={"message": "slow"})
    mocked.get(url, json=[])
    assert authorities(transport(sleeps)) == []
    assert sleeps.waits == [3.0]


def test_a_retry_after_beyond_the_limit_is_not_waited_for(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(f"{BASE}/api/v1/authorities/allowed", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited) as caught:
        authorities(transport(sleeps))
    assert caught.value.retry_after == 3600.0 and sleeps.waits == []


def test_the_deadline_bounds_the_retry_budget(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    mocked.get(f"{BASE}/api/v1/authorities/allowed", status=503, headers={"Retry-After": "2"})
    deadline = Deadline(sleeps.now + 5, sleeps.clock)
    with pytest.raises(ServerError):
        authorities(transport(sleeps), deadline=deadline)
    assert sleeps.waits == [2.0, 2.0]
    with pytest.raises(DeadlineExceeded):
        authorities(transport(sleeps), deadline=Deadline(sleeps.now - 1, sleeps.clock))


def test_reads_retry_connection_errors_even_after_sending(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/authorities/allowed"
    mocked.get(url, body=requests.ReadTimeout("slow"))
    mocked.get(url, body=requests.ConnectionError("reset"))
    mocked.get(url, json=[])
    assert authorities(transport(sleeps)) == []


def test_a_mutating_call_is_not_resent_once_it_may_have_arrived(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/batches/createSingleCertBatch"
    t = transport(sleeps)
    for failure, reason in [
        (requests.ReadTimeout("slow"), "no answer after sending"),
        (requests.ConnectionError("reset"), "no answer after sending"),
    ]:
        mocked.upsert(responses.PUT, url, body=failure)
        with pytest.raises(OutcomeUnknown, match=reason) as caught:
            t.call(CREATE_BATCH, json_reply(lambda d: d), tokens=Tokens())
        assert isinstance(caught.value.__cause__, ConnectionFailed)
    mocked.upsert(responses.PUT, url, status=500, json={"message": "boom"})
    with pytest.raises(OutcomeUnknown, match="HTTP 500: boom") as unknown:
        t.call(CREATE_BATCH, json_reply(lambda d: d), tokens=Tokens())
    assert unknown.value.status == 500
    assert len(mocked.calls) == 3 and sleeps.waits == []


def test_a_mutating_call_is_sent_again_after_a_429_and_its_wait(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/batches/createSingleCertBatch"
    mocked.put(url, status=429, headers={"Retry-After": "1"}, json={"message": "slow"})
    mocked.put(url, json={"batchId": 1})
    t = transport(sleeps)
    assert t.call(CREATE_BATCH, json_reply(lambda d: d), tokens=Tokens()) == {"batchId": 1}
    assert len(mocked.calls) == 2 and sleeps.waits == [1.0]


def test_a_mutating_call_out_of_time_after_a_429_is_rate_limited_not_in_doubt(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/batches/createSingleCertBatch"
    mocked.put(url, status=429, headers={"Retry-After": "5"}, json={"message": "slow"})
    deadline = Deadline(sleeps.now + 3, sleeps.clock)
    with pytest.raises(RateLimited):
        transport(sleeps).call(
            CREATE_BATCH, json_reply(lambda d: d), tokens=Tokens(), deadline=deadline
        )
    assert len(mocked.calls) == 1 and sleeps.waits == []


def test_a_mutating_call_is_retried_when_it_provably_never_left(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/batches/createSingleCertBatch"
    mocked.put(url, body=requests.ConnectTimeout("no route"))
    mocked.put(url, json={"batchId": 1})
    t = transport(sleeps)
    assert t.call(CREATE_BATCH, json_reply(lambda d: d), tokens=Tokens()) == {"batchId": 1}
    assert len(mocked.calls) == 2


# 401: invalidate, re-authenticate once, replay once ------------------------------------------


def test_a_401_replays_once_with_a_new_token(
    mocked: responses.RequestsMock, sleeps: Sleeps
) -> None:
    url = f"{BASE}/api/v1/authorities/allowed"
    mocked.get(url, status=401, json={"message": "expired"})
    mocked.get(url, json=[])
    tokens = Tokens()
    assert authorities(transport(sleeps), tokens) == []
    assert tokens.invalidated == ["t1"]
    sent = [call.request.headers["Authorization"] for call in mocked.calls]
    assert sent == ["Bearer t1", "Bearer t2"]


def test_a_second_401_surfaces(mocked: responses.RequestsMock, sleeps: Sleeps) -> None:
    mocked.get(f"{BASE}/api/v1/authorities/allowed", status=401, json={"message": "no"})
    with pytest.raises(Unauthenticated):
        authorities(transport(sleeps))
    assert len(mocked.calls) == 2
