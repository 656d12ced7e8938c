"""Reading the HTTP headers the client acts on: Content-Type, Content-Disposition, Retry-After.

Headers are parsed, never compared as strings: ``application/json;charset=UTF-8`` and
``Application/JSON; charset=utf-8`` are the same media type, and a server-chosen file name is
untrusted input that must not pick where a file lands.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime

# A download's file name: one path segment, no leading dot, a .zip ending, nothing exotic.
_SAFE_ZIP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,126}\.zip")


@dataclass(frozen=True)
class MediaType:
    """A parsed Content-Type: lower-case ``type/subtype`` and the charset parameter, if any."""

    essence: str
    charset: str | None

    @property
    def is_json(self) -> bool:
        return self.essence == "application/json" or self.essence.endswith("+json")

    @property
    def is_text(self) -> bool:
        return self.essence == "text/plain"


def parse_media_type(header: str | None) -> MediaType:
    """Parse a Content-Type header; a missing or garbled one reads as ``""`` with no charset."""
    if not header:
        return MediaType("", None)
    message = Message()
    message["content-type"] = header
    essence = message.get_content_type() if "/" in header else ""
    charset = message.get_content_charset()
    return MediaType(essence, charset)


def decode_text(content: bytes, charset: str | None) -> str:
    """Decode a body in its declared charset, falling back to UTF-8; never fails."""
    encoding = "utf-8"
    if charset:
        try:
            encoding = codecs.lookup(charset).name
        except LookupError:
            encoding = "utf-8"
    return content.decode(encoding, errors="replace")


def safe_download_name(disposition: str | None, fallback: str) -> str:
    """The file name to save a download under: the server's only if it is a plain ``*.zip`` name.

    The name comes from ``Content-Disposition`` (parsed with :class:`email.message.Message`, which
    also decodes RFC 2231 ``filename*``). Anything with a path separator, a leading dot, control or
    unusual characters, or another extension is refused and ``fallback`` is used instead: the
    server never chooses the directory, and a refused name is not "repaired" into a guess.
    """
    if not disposition:
        return fallback
    message = Message()
    message["content-disposition"] = disposition
    name = message.get_filename()
    if name is None or not _SAFE_ZIP_NAME.fullmatch(name) or ".." in name:
        return fallback
    return name


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
