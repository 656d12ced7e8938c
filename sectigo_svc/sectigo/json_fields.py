"""Readers for Sectigo's JSON reply fields: lenient where the API is known to vary, strict on type.

The real API, the upstream mock and the emulators disagree on details (ids as int or string, dates
in three formats, fields missing or null), so readers accept those variants and turn anything else
into :class:`SchemaError`, which the client reports as an unexpected response.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

# Sectigo's own form: milliseconds and a "+0000" offset without a colon.
_COLONLESS_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")
# More than six fractional digits (the emulator writes nanoseconds); Python keeps microseconds.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


class SchemaError(ValueError):
    """A reply field is missing or has the wrong type; the message names the field."""


def as_object(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` as a JSON object, or :class:`SchemaError` naming ``what`` it should have been."""
    if not isinstance(value, Mapping):
        raise SchemaError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    """``value`` as a JSON array (null reads as empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise SchemaError(f"{what}: expected a JSON array, got {type(value).__name__}")
    return value


def as_int(value: Any, what: str) -> int:
    """An integer, also accepted as a decimal string (some clients and mocks quote ids)."""
    if isinstance(value, bool):
        raise SchemaError(f"{what}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise SchemaError(f"{what}: expected an integer, got {type(value).__name__}")


def required_int(data: Mapping[str, Any], key: str) -> int:
    """A field that must be present: ids the caller needs to go on."""
    if data.get(key) is None:
        raise SchemaError(f"{key}: missing")
    return as_int(data[key], key)


def optional_int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key)
    return default if value is None else as_int(value, key)


def optional_str(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise SchemaError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def id_str(data: Mapping[str, Any], key: str) -> str:
    """An identifier typed as a string by one API version and as an integer by another."""
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SchemaError(f"{key}: expected a string or integer, got {type(value).__name__}")
    return str(value)


def optional_bool(data: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SchemaError(f"{key}: expected a boolean, got {type(value).__name__}")
    return value


def str_tuple(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    items = as_list(data.get(key), key)
    if not all(isinstance(item, str) for item in items):
        raise SchemaError(f"{key}: expected an array of strings")
    return tuple(items)


def str_mapping(data: Mapping[str, Any], key: str) -> Mapping[str, str]:
    """A read-only string-to-string object (non-string values are shown as text)."""
    value = data.get(key)
    mapping = {} if value is None else as_object(value, key)
    return MappingProxyType(
        {str(k): v if isinstance(v, str) else str(v) for k, v in mapping.items()}
    )


def parse_datetime(text: str) -> datetime | None:
    """Parse Sectigo's ``2020-12-10T16:35:32.805+0000``, RFC 3339 and RFC 3339 with nanoseconds.

    Returns an aware datetime (naive input is read as UTC), or None when the text is empty or in
    none of those forms: a date is informative, never worth failing a call over.
    """
    cleaned = text.strip()
    if not cleaned:
        return None
    cleaned = _COLONLESS_OFFSET.sub(r"\1:\2", cleaned)
    cleaned = _LONG_FRACTION.sub(r"\1", cleaned)
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
