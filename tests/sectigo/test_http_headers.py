"""Header parsing: media types in any spelling, safe download names only, Retry-After forms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sectigo_svc.sectigo.http_headers import (
    decode_text,
    parse_media_type,
    parse_retry_after,
    safe_download_name,
)


@pytest.mark.parametrize(
    ("header", "essence", "charset", "is_json", "is_text"),
    [
        ("application/json;charset=UTF-8", "application/json", "utf-8", True, False),
        ('Application/JSON; charset="utf-8"', "application/json", "utf-8", True, False),
        ("application/problem+json", "application/problem+json", None, True, False),
        ("text/plain; charset=ISO-8859-1", "text/plain", "iso-8859-1", False, True),
        ("text/html", "text/html", None, False, False),
        ("", "", None, False, False),
        (None, "", None, False, False),
        ("garbage", "", None, False, False),
    ],
)
def test_media_types(
    header: str | None, essence: str, charset: str | None, is_json: bool, is_text: bool
) -> None:
    media = parse_media_type(header)
    assert (media.essence, media.charset, media.is_json, media.is_text) == (
        essence,
        charset,
        is_json,
        is_text,
    )


def test_text_in_any_charset_and_unknown_charsets_fall_back() -> None:
    assert decode_text("Zürich".encode("latin-1"), "iso-8859-1") == "Zürich"
    assert decode_text("Zürich".encode(), "no-such-charset") == "Zürich"
    assert decode_text(b"\xff", None) == "\ufffd"


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('attachment; filename="10000.zip"', "10000.zip"),
        ("attachment; filename=certificate.zip", "certificate.zip"),
        ("attachment; filename*=UTF-8''batch-7.zip", "batch-7.zip"),
        ('attachment; filename="../../etc/x.zip"', "fallback.zip"),
        ('attachment; filename="/etc/cron.d/x.zip"', "fallback.zip"),
        ('attachment; filename="..\\\\..\\\\x.zip"', "fallback.zip"),
        ('attachment; filename=".hidden.zip"', "fallback.zip"),
        ('attachment; filename="a..zip"', "fallback.zip"),
        ('attachment; filename="evil.sh"', "fallback.zip"),
        ('attachment; filename="with space.zip"', "fallback.zip"),
        ("attachment; filename*=UTF-8''%2E%2E%2Fx.zip", "fallback.zip"),
        ('attachment; filename="x.zip\\r\\nSet-Cookie: a"', "fallback.zip"),
        ("attachment", "fallback.zip"),
        ("", "fallback.zip"),
        (None, "fallback.zip"),
    ],
)
def test_download_names_are_plain_zip_base_names_or_the_fallback(
    disposition: str | None, expected: str
) -> None:
    assert safe_download_name(disposition, "fallback.zip") == expected


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:05 GMT", now) == 5.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-1", now) is None
    assert parse_retry_after(None, now) is None
