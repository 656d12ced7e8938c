"""The one retry predicate, and what counts as "the request provably never left"."""

from __future__ import annotations

import socket

import pytest
import requests
from structlog.testing import capture_logs

from sectigo_svc.sectigo import Environment, SectigoConfig
from sectigo_svc.sectigo.endpoints import AUTHORITIES, CREATE_BATCH, FIND, LOGIN, REVOKE, Endpoint
from sectigo_svc.sectigo.errors import (
    ConnectionFailed,
    NotFound,
    RateLimited,
    ServerError,
    Unauthenticated,
    UnexpectedResponse,
    ValidationError,
)
from sectigo_svc.sectigo.replies import json_reply
from sectigo_svc.sectigo.retry_policy import connection_failure, should_retry
from sectigo_svc.sectigo.transport import Transport


def http_error(
    kind: type[ServerError] | type[RateLimited] | type[NotFound], status: int
) -> Exception:
    return kind(status=status, message="m", error_code=None, method="GET", endpoint="x")


def never_sent() -> ConnectionFailed:
    return ConnectionFailed("x", "GET", "refused", sent=False)


def maybe_sent() -> ConnectionFailed:
    return ConnectionFailed("x", "GET", "reset", sent=True)


@pytest.mark.parametrize(
    ("error", "read", "write"),
    [
        (never_sent(), True, True),
        (maybe_sent(), True, False),
        (http_error(ServerError, 500), True, False),
        (http_error(ServerError, 503), True, False),
        (http_error(ServerError, 501), False, False),
        (http_error(RateLimited, 429), True, True),
        (http_error(NotFound, 404), False, False),
        (
            ValidationError(status=400, message="", error_code=None, method="", endpoint=""),
            False,
            False,
        ),
        (
            Unauthenticated(status=401, message="", error_code=None, method="", endpoint=""),
            False,
            False,
        ),
        (UnexpectedResponse("x", "bad"), False, False),
        (ValueError("bug"), False, False),
    ],
)
def test_one_predicate_for_reads_and_writes(error: Exception, read: bool, write: bool) -> None:
    for endpoint in (AUTHORITIES, FIND, LOGIN):
        assert should_retry(endpoint, error) is read
    for endpoint in (CREATE_BATCH, REVOKE):
        assert should_retry(endpoint, error) is write


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_refused_connection_provably_never_sent() -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(requests.RequestException) as caught:
        requests.get(url, timeout=2)
    assert connection_failure(caught.value, AUTHORITIES).sent is False


@pytest.mark.parametrize(
    ("error", "sent"),
    [
        (requests.ConnectTimeout("connect"), False),
        (requests.ReadTimeout("read"), True),
        (requests.ConnectionError("reset by peer"), True),
        (requests.exceptions.ChunkedEncodingError("broken"), True),
        (requests.exceptions.SSLError("handshake"), True),
    ],
)
def test_everything_else_may_have_been_sent(error: requests.RequestException, sent: bool) -> None:
    assert connection_failure(error, AUTHORITIES).sent is sent


def test_a_create_to_a_closed_port_is_retried_and_reported_as_not_sent() -> None:
    waits: list[float] = []
    config = SectigoConfig(
        endpoint=f"http://127.0.0.1:{closed_port()}",
        environment=Environment.TESTING,
        token_cache=False,
        max_attempts=3,
    )
    transport = Transport(config, sleep=waits.append)
    endpoint = Endpoint("create_batch", "PUT", "/x", mutating=True)
    with capture_logs() as logs, pytest.raises(ConnectionFailed) as caught:
        transport.call(endpoint, json_reply(lambda d: d))
    assert caught.value.sent is False
    assert [e["attempt"] for e in logs if e["event"] == "sectigo call"] == [1, 2, 3]
    assert all(e["sent"] is False for e in logs if e["event"] == "sectigo call")
    assert len(waits) == 2
