"""Request bytes that do not parse: a deserializer that never raises, and where the fault lies.

grpcio answers INTERNAL, before any interceptor runs, when a deserializer raises (a string field
holding invalid UTF-8 is the common case), so nothing would be logged or counted. The service
registers :func:`lenient` deserializers instead: they hand an :class:`Undecodable` to the handler,
which the interceptor turns into INVALID_ARGUMENT naming the field, like any other bad request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

# The field named when the fault cannot be placed in one (e.g. truncated bytes).
WHOLE_REQUEST = "request"
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class Undecodable:
    """What arrived instead of a request: the dotted path of the bad field and why."""

    field: str
    reason: str


def lenient(
    parse: Callable[[bytes], Message], descriptor: Descriptor
) -> Callable[[bytes], Message | Undecodable]:
    """``parse`` (a message class's ``FromString``) that returns :class:`Undecodable` instead of
    raising on bytes that are not a ``descriptor`` message."""

    def deserialize(data: bytes) -> Message | Undecodable:
        try:
            return parse(data)
        except Exception:  # DecodeError above all; anything raised here would be INTERNAL
            return locate(descriptor, data)

    return deserialize


def locate(descriptor: Descriptor, data: bytes) -> Undecodable:
    """Where ``data`` fails to be a ``descriptor`` message: the first string field that is not
    UTF-8, else the whole request."""
    try:
        found = _bad_string(descriptor, data, "")
    except (IndexError, ValueError):
        found = None
    if found is None:
        return Undecodable(WHOLE_REQUEST, "the request bytes are not a valid message")
    return Undecodable(found, "is not valid UTF-8")


def _bad_string(descriptor: Descriptor, data: bytes, prefix: str) -> str | None:
    """The dotted path of the first non-UTF-8 string field in ``data``, None if there is none;
    IndexError or ValueError when the bytes are not wire format at all."""
    position = 0
    while position < len(data):
        tag, position = _varint(data, position)
        number, kind = tag >> 3, tag & 7
        if kind == _VARINT:
            _, position = _varint(data, position)
        elif kind == _FIXED64:
            position += 8
        elif kind == _FIXED32:
            position += 4
        elif kind == _LENGTH:
            size, position = _varint(data, position)
            value, position = data[position : position + size], position + size
            if len(value) != size:
                raise IndexError("truncated field")
            field: FieldDescriptor | None = descriptor.fields_by_number.get(number)
            if field is None:
                continue
            path = f"{prefix}{field.name}"
            if field.type == FieldDescriptor.TYPE_STRING:
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    return path
            elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
                inner = _bad_string(field.message_type, value, f"{path}.")
                if inner is not None:
                    return inner
        else:
            raise ValueError(f"wire type {kind} is not used by this API")
    if position > len(data):
        raise IndexError("truncated field")
    return None


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
