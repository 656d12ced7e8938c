"""HTTP plumbing shared by the API and management listeners: requests, replies, routing, serving.

Built on the standard library's threading HTTP server with HTTP/1.1 keep-alive, so clients with
connection pools behave as they would against the real service. A dispatcher may answer, drop the
connection without a word, reset it, or hold it open and never answer.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON_TYPE = "application/json;charset=UTF-8"
MAX_BODY = 16 * 1024 * 1024
# Bounds on a chunk size line (or trailer line) and on the number of trailer fields.
MAX_LINE = 1024
MAX_TRAILERS = 32

_DECIMAL = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)(;[^\r\n]*)?\r?\n")
_LINE_ENDS = (b"\r\n", b"\n")
# ``HTTPStatus`` lacks some statuses a fault rule may ask for (420, 499, 520, 599...).
_REASONS = {status.value: status.phrase for status in HTTPStatus}


class BadBody(Exception):
    """A request body whose framing is wrong: bad length, bad chunk, too large, or cut short."""


class ApiError(Exception):
    """An error reply in Sectigo's shape; ``message`` is sent to the client as is."""

    def __init__(self, status: int, message: str, error_code: int) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code

    def to_response(self) -> Response:
        return Response.json(
            self.status,
            {
                "status": self.status,
                "message": self.message,
                "errorCode": self.error_code,
                "timestamp": int(time.time() * 1000),
            },
        )


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def media_type(self) -> str:
        return self.headers.get_content_type()

    def json(
        self, unsupported: Callable[[str], ApiError], invalid: Callable[[str], ApiError]
    ) -> Any:
        """The JSON body; refuses a body not declared as JSON, or one that does not parse."""
        if self.media_type() != "application/json":
            raise unsupported(f"Content type {self.media_type()} is not supported; send JSON")
        try:
            return json.loads(self.body.decode(self.headers.get_content_charset() or "utf-8"))
        except (UnicodeDecodeError, ValueError, LookupError) as exc:
            raise invalid(f"Malformed JSON body: {exc}") from exc

    def first(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        return cls(status, json.dumps(data).encode(), JSON_TYPE, headers)


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending anything."""


@dataclass(frozen=True)
class Lost:
    """Reset the connection (TCP RST) without sending anything, as a network losing the answer."""


@dataclass(frozen=True)
class Hang:
    """Hold the connection open without answering, then close it."""

    seconds: float


Reply = Response | Drop | Lost | Hang
Handler = Callable[[Request], Response]
# Runs when the request arrives, before any injected delay; raises ApiError to refuse it.
Admission = Callable[[Request], None]
# The batch name a request asks for, for the request journal; None when it names none.
BatchNamer = Callable[[Request], str | None]


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    authenticated: bool
    admit: Admission | None = None
    batch_name: BatchNamer | None = None


class Router:
    """Path templates like ``/api/v1/batches/{batch_id}`` to handlers, with 404 and 405 apart."""

    def __init__(self, not_found: Callable[[str], ApiError], bad_method: Callable[[str], ApiError]):
        self._routes: list[Route] = []
        self._not_found = not_found
        self._bad_method = bad_method

    def add(
        self,
        name: str,
        method: str,
        template: str,
        handler: Handler,
        authenticated: bool = True,
        *,
        admit: Admission | None = None,
        batch_name: BatchNamer | None = None,
    ) -> None:
        """``admit`` (if any) judges the request on arrival; ``handler`` runs only if it passed."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        pattern = re.compile(f"^{regex}$")
        self._routes.append(Route(name, method, pattern, handler, authenticated, admit, batch_name))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed.append(route.method)
        if allowed:
            raise self._bad_method(f"Method {method} is not allowed on {path}")
        raise self._not_found(f"No resource at {path}")


Dispatch = Callable[[Request], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SectigoEmulator/1.0"
    sys_version = ""
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)
        # Headers and body go out in two writes; without this, each keep-alive reply waits for
        # the client's delayed ACK (about 40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs are the stats' job; stay quiet."""

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except BadBody as exc:
            # The rest of the stream cannot be framed any more, so the connection ends here.
            self.close_connection = True
            self._write(ApiError(400, str(exc), -1).to_response())
            return
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        with self.server.in_flight():
            reply = self.server.dispatch(request)
            if isinstance(reply, Response):
                self._write(reply)
                return
        if isinstance(reply, Lost):
            self._reset()
            return
        if isinstance(reply, Hang):
            self.server.stopping.wait(reply.seconds)
        self._hang_up()

    def _reset(self) -> None:
        """Close with a TCP reset: a zero linger time makes the close send RST, not FIN. The
        socket really closes once ``finish`` lets go of its file objects."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _hang_up(self) -> None:
        """End the connection without a reply; the client may be gone already, or ``stop`` may
        have shut the socket first, and neither is worth a traceback."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes:
        """The body, framed strictly: a lenient reading would let one bad request swallow the
        next one on the connection, read without bound, or dispatch half a body."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        header = self.headers.get("Content-Length")
        if header is None:
            return b""
        raw = header.strip(" \t")
        if not _DECIMAL.fullmatch(raw):
            raise BadBody(f"Content-Length {raw!r} is not a decimal number")
        length = int(raw)
        if length > MAX_BODY:
            raise BadBody("request body too large")
        return self._read_exactly(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            found = _CHUNK_SIZE.fullmatch(self.rfile.readline(MAX_LINE + 1))
            if found is None:
                raise BadBody("malformed chunk size line")
            size = int(found.group(1), 16)
            total += size
            if total > MAX_BODY:
                raise BadBody("request body too large")
            if size == 0:
                break
            chunks.append(self._read_exactly(size))
            if self.rfile.readline(MAX_LINE + 1) not in _LINE_ENDS:
                raise BadBody("chunk data not followed by a line end")
        for _ in range(MAX_TRAILERS + 1):
            line = self.rfile.readline(MAX_LINE + 1)
            if line in _LINE_ENDS:
                return b"".join(chunks)
            if not line.endswith(b"\n"):
                raise BadBody("chunked body cut short in its trailer")
        raise BadBody("too many trailer fields")

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise BadBody(f"request body cut short: {len(data)} of {size} bytes")
        return data

    def _write(self, response: Response) -> None:
        """Send the reply; a HEAD reply gets the headers only. A client that went away before
        its reply is no error of ours: the connection is simply closed."""
        try:
            self.send_response(response.status, _REASONS.get(response.status, "Error"))
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle


class HttpServer(ThreadingHTTPServer):
    """One listener; ``serve_in_thread`` and ``stop`` make it easy to embed and to stop cleanly."""

    daemon_threads = True
    block_on_close = False
    # Bursts of concurrent clients (tests start 32 at once) overflow the default backlog of 5.
    request_queue_size = 128

    def __init__(self, host: str, port: int, dispatch: Dispatch) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)
        self.dispatch = dispatch
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = 0
        self._connections: set[socket.socket] = set()
        self._idle = threading.Condition()

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Mark a request as being answered, so that ``stop`` waits for its reply."""
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def serve_in_thread(self, name: str) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )
        self._thread.start()

    def track(self, connection: socket.socket) -> None:
        with self._idle:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._idle:
            self._connections.discard(connection)

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, finish the replies under way (up to ``grace`` s), then close every
        connection, idle keep-alive ones included, so clients see the server go away."""
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=grace)
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()
