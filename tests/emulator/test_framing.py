"""The HTTP layer over raw sockets: strict request framing, HEAD replies, vanished clients.

``requests`` always frames its requests correctly, so these tests write the bytes themselves.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest

from sectigo_svc.emulator import Emulator
from tests.emulator.helpers import PASSWORD, USERNAME, Management

LOGIN = json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
DIGITS = str(len(LOGIN))
MAX_BODY = 16 * 1024 * 1024  # docs/emulator.md: larger request bodies get 400
READ_TIMEOUT = 5.0


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return socket.create_connection((parts.hostname, parts.port), timeout=READ_TIMEOUT)


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; a server that never does fails the test."""
    received = bytearray()
    # A server closing with unread input resets the connection once its reply is out.
    with contextlib.suppress(ConnectionResetError):
        while data := sock.recv(65536):
            received += data
    return bytes(received)


def exchange(url: str, payload: bytes, *, half_close: bool = False) -> bytes:
    """Send ``payload`` (then EOF when ``half_close``) and return all the server answers."""
    with connect(url) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_to_eof(sock)


def parse_reply(data: bytes) -> tuple[int, str, dict[str, str], bytes]:
    """(status, reason, lower-case headers, everything after the blank line)."""
    head, blank, rest = data.partition(b"\r\n\r\n")
    assert blank, data
    status_line, *lines = head.decode("latin-1").split("\r\n")
    _, status, reason = status_line.split(" ", 2)
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status), reason, headers, rest


def request_bytes(head: str, headers: Mapping[str, str], body: bytes = b"") -> bytes:
    lines = [head, "Host: emulator", *(f"{name}: {value}" for name, value in headers.items())]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def login_request(headers: Mapping[str, str], body: bytes = b"") -> bytes:
    sent = {"Content-Type": "application/json", **headers}
    return request_bytes("POST /auth/pwd HTTP/1.1", sent, body)


def chunked_login(*chunks: bytes) -> bytes:
    return login_request({"Transfer-Encoding": "chunked"}, b"".join(chunks))


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def assert_refused(data: bytes) -> None:
    """One 400 in Sectigo's error shape, announced as the connection's last reply."""
    status, _, headers, body = parse_reply(data)
    assert status == 400, data
    assert headers.get("connection") == "close", headers
    assert len(body) == int(headers["content-length"]), data
    error = json.loads(body)
    assert set(error) >= {"status", "message", "errorCode", "timestamp"}, error
    assert error["status"] == 400, error


def test_chunked_login_with_extension_and_trailer_works(emulator: Emulator) -> None:
    """The strict reading still accepts everything well formed."""
    half = len(LOGIN) // 2
    payload = chunked_login(
        f"{half:X};note=first\r\n".encode() + LOGIN[:half] + b"\r\n",
        chunk(LOGIN[half:]),
        b"0\r\nX-Trailer: yes\r\n\r\n",
    )
    status, _, _, body = parse_reply(exchange(emulator.api_url, payload, half_close=True))
    assert status == 200, body
    assert "accessToken" in json.loads(body)


def test_negative_chunk_size_refused_at_once(emulator: Emulator) -> None:
    """``-1`` once meant "read until EOF": the thread waited on a client that kept the line open."""
    with connect(emulator.api_url) as sock:
        sock.sendall(chunked_login(b"-1\r\n"))
        assert_refused(read_to_eof(sock))


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(chunked_login(chunk(LOGIN)), id="chunked-without-last-chunk"),
        pytest.param(chunked_login(b"ff\r\n" + LOGIN), id="chunk-shorter-than-its-size"),
        pytest.param(chunked_login(chunk(LOGIN), b"0\r\n"), id="chunked-without-final-line"),
        pytest.param(
            login_request({"Content-Length": str(len(LOGIN) + 10)}, LOGIN),
            id="content-length-longer-than-body",
        ),
    ],
)
def test_body_cut_short_by_eof_refused(emulator: Emulator, payload: bytes) -> None:
    """A complete login JSON followed by EOF where more was announced is not a login."""
    assert_refused(exchange(emulator.api_url, payload, half_close=True))


@pytest.mark.parametrize(
    "length",
    [f"{DIGITS[0]}_{DIGITS[1:]}", f"+{DIGITS}", f"{DIGITS}.0", hex(len(LOGIN)), "", f"{DIGITS}, 1"],
)
def test_bad_content_length_refused(emulator: Emulator, length: str) -> None:
    """Each of these once passed ``int()`` or meant an empty body; the login must not happen."""
    payload = login_request({"Content-Length": length}, LOGIN)
    assert_refused(exchange(emulator.api_url, payload))


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(login_request({"Content-Length": str(MAX_BODY + 1)}), id="content-length"),
        pytest.param(chunked_login(f"{MAX_BODY + 1:x}\r\n".encode()), id="one-chunk"),
        pytest.param(
            chunked_login(f"{MAX_BODY:x}\r\n".encode() + b"x" * MAX_BODY + b"\r\n1\r\n"),
            id="chunks-add-up",
        ),
        pytest.param(chunked_login(b"0" * 2000 + b"1\r\n"), id="chunk-size-line-too-long"),
    ],
)
def test_oversize_body_refused(emulator: Emulator, payload: bytes) -> None:
    assert_refused(exchange(emulator.api_url, payload))


def test_head_reply_has_headers_only(emulator: Emulator) -> None:
    """A body after a HEAD reply would be read as the start of the next reply on the connection.

    No route answers HEAD, so it gets the documented 405, announcing the body it leaves out.
    """
    payload = request_bytes("HEAD /status HTTP/1.1", {}) + request_bytes(
        "GET /status HTTP/1.1", {"Connection": "close"}
    )
    status, _, headers, rest = parse_reply(exchange(emulator.api_url, payload))
    assert status == 405
    assert headers["content-type"].startswith("application/json")
    assert int(headers["content-length"]) > 0
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest[:80]
    status, _, headers, body = parse_reply(rest)
    assert len(body) == int(headers["content-length"])
    assert json.loads(body)["status"] == "ok"


def wait_for(condition: Callable[[], bool], deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param([{"kind": "latency", "latency_ms": 300}], id="reply"),
        pytest.param([{"kind": "latency", "latency_ms": 300}, {"kind": "drop"}], id="drop"),
        pytest.param([{"kind": "hang", "hang_seconds": 0.3}], id="hang"),
    ],
)
def test_client_gone_before_reply_leaves_no_traceback(
    emulator: Emulator, mgmt: Management, capfd: pytest.CaptureFixture[str], rules: list[Any]
) -> None:
    """The client resets the connection while its request is held back; answering it, dropping
    it or ending the hang then fails on the socket, which must stay quiet."""
    mgmt.add_faults(*({**rule, "routes": ["devices"]} for rule in rules))
    before = set(threading.enumerate())
    sock = connect(emulator.api_url)
    sock.sendall(request_bytes("GET /api/v1/devices HTTP/1.1", {}))
    wait_for(lambda: mgmt.stats()["requests"].get("devices") == 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # with a zero linger time: a reset, as from a client that crashed
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=READ_TIMEOUT)
        assert not thread.is_alive(), thread
    _, err = capfd.readouterr()
    assert "Traceback" not in err, err
    assert "Exception occurred" not in err, err
