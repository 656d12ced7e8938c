"""Readers for 2xx replies, handed to the transport: JSON into a model, text, or nothing.

They check the Content-Type before trusting a body (parsed, so any charset or case passes) and
raise :class:`~sectigo_svc.sectigo.json_fields.SchemaError` for anything else, which the transport
reports as an unexpected response of the endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from sectigo_svc.sectigo.http_headers import decode_text, parse_media_type
from sectigo_svc.sectigo.json_fields import SchemaError

T = TypeVar("T")


def json_reply(parse: Callable[[Any], T]) -> Callable[[requests.Response], T]:
    """A handler that decodes a JSON body and builds a model with ``parse``."""

    def handle(response: requests.Response) -> T:
        media = parse_media_type(response.headers.get("Content-Type"))
        if not media.is_json:
            raise SchemaError(f"expected a JSON reply, got {media.essence or 'no content type'}")
        try:
            data = json.loads(response.content.decode(media.charset or "utf-8"))
        except (ValueError, LookupError) as exc:
            raise SchemaError(f"malformed JSON reply: {type(exc).__name__}") from exc
        return parse(data)

    return handle


def text_reply(response: requests.Response) -> str:
    """A ``text/plain`` body in its declared charset (a JSON string is accepted too)."""
    media = parse_media_type(response.headers.get("Content-Type"))
    if media.is_text:
        return decode_text(response.content, media.charset)
    if media.is_json:
        value = json_reply(lambda data: data)(response)
        if isinstance(value, str):
            return value
    raise SchemaError(f"expected a text reply, got {media.essence or 'no content type'}")


def no_reply(response: requests.Response) -> None:
    """Any 2xx is success and the body is not needed (revoke)."""
    del response


def integer(data: Any) -> int:
    """A bare JSON integer (the balance endpoint)."""
    if isinstance(data, bool) or not isinstance(data, int):
        raise SchemaError(f"expected a bare integer, got {type(data).__name__}")
    return data
