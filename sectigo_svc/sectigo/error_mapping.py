"""Turning an error reply into a typed exception carrying status, errorCode and message.

Bodies come in several shapes and are all read: Sectigo's ``{status, message, errorCode,
timestamp}`` (timestamp int or string), the Go staging emulator's ``{success, error}``, a bare JSON
string, or ``text/plain`` in any charset. HTML error pages and other types are not dumped into the
message; their content type is named instead. Known secrets are redacted from whatever the server
said before it reaches an exception or a log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import requests

from sectigo_svc.sectigo.endpoints import Auth, Endpoint
from sectigo_svc.sectigo.errors import (
    InsufficientLicences,
    InvalidCredentials,
    NotAuthorized,
    NotFound,
    RateLimited,
    SectigoHTTPError,
    ServerError,
    TLSAuthRequired,
    Unauthenticated,
    UnexpectedRedirect,
    UnsupportedMediaType,
    ValidationError,
)
from sectigo_svc.sectigo.http_headers import decode_text, parse_media_type, parse_retry_after

MAX_ERROR_BODY = 64 * 1024
MAX_MESSAGE = 300
REDACTED = "[redacted]"

_BY_STATUS: dict[int, type[SectigoHTTPError]] = {
    400: ValidationError,
    401: Unauthenticated,
    402: InsufficientLicences,
    403: NotAuthorized,
    404: NotFound,
    415: UnsupportedMediaType,
    429: RateLimited,
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def error_from_response(
    response: requests.Response, endpoint: Endpoint, redact: Sequence[str] = ()
) -> SectigoHTTPError:
    """Build the exception for a non-2xx ``response`` to a call of ``endpoint``."""
    status = response.status_code
    message, error_code = _read_message(response)
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        message = f"{message}; redirect to {location}" if location else message
    message = clean_message(message, redact)
    error_class = _error_class(status, endpoint)
    return error_class(
        status=status,
        message=message,
        error_code=error_code,
        method=endpoint.method,
        endpoint=endpoint.name,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def clean_message(message: str, redact: Sequence[str] = ()) -> str:
    """One line, bounded length, with every non-empty secret in ``redact`` replaced."""
    for secret in redact:
        if secret:
            message = message.replace(secret, REDACTED)
    message = _CONTROL.sub(" ", message).strip()
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return message


def _error_class(status: int, endpoint: Endpoint) -> type[SectigoHTTPError]:
    if status == 401 and endpoint.auth is Auth.LOGIN:
        return InvalidCredentials
    if status == 307 and endpoint.auth is Auth.LOGIN:
        return TLSAuthRequired
    if 300 <= status < 400:
        return UnexpectedRedirect
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, SectigoHTTPError)


def _read_message(response: requests.Response) -> tuple[str, int | None]:
    """The server's message and errorCode, or a generic message naming the status and type."""
    media = parse_media_type(response.headers.get("Content-Type"))
    generic = response.reason or f"HTTP {response.status_code}"
    if not (media.is_json or media.is_text):
        shown = media.essence or "no content type"
        return f"{generic} ({shown})", None
    text = decode_text(_read_capped(response), media.charset).strip()
    if media.is_text:
        return (text or generic), None
    try:
        body: Any = json.loads(text)
    except ValueError:
        return f"{generic} (malformed JSON error body)", None
    if isinstance(body, str):
        return (body or generic), None
    if not isinstance(body, dict):
        return generic, None
    message = body.get("message") or body.get("error") or body.get("detail")
    return (str(message) if message else generic), _error_code(body.get("errorCode"))


def _error_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _read_capped(response: requests.Response) -> bytes:
    """At most :data:`MAX_ERROR_BODY` bytes of the body, streamed or not."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(8192):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ERROR_BODY:
            break
    return b"".join(chunks)[:MAX_ERROR_BODY]
