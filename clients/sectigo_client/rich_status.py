"""Reads the ``google.rpc.Status`` a failed call carries, with protobuf alone.

The service puts a ``google.rpc.Status`` (with ``RetryInfo`` and ``BadRequest`` details) in the
``grpc-status-details-bin`` trailer. Decoding it usually takes grpcio-status and
googleapis-common-protos; this client needs only the three messages it reads, so it declares
their wire-compatible shapes (same package, names and field numbers as googleapis) in a private
descriptor pool, which never clashes with the real ones when those are installed too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2, message_factory
from google.protobuf.message import DecodeError, Message

DETAILS_TRAILER = "grpc-status-details-bin"
_TYPE_URL_PREFIX = "type.googleapis.com/"

_T = descriptor_pb2.FieldDescriptorProto
_REPEATED = _T.LABEL_REPEATED
_OPTIONAL = _T.LABEL_OPTIONAL


def _message(name: str, *fields: tuple[str, int, int, int, str]) -> descriptor_pb2.DescriptorProto:
    proto = descriptor_pb2.DescriptorProto(name=name)
    for field_name, number, label, kind, type_name in fields:
        added = proto.field.add(name=field_name, number=number, label=label, type=kind)
        if type_name:
            added.type_name = type_name
    return proto


def _classes() -> dict[str, type[Message]]:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(duration_pb2.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(
        name="sectigo_client/google_rpc_subset.proto",
        package="google.rpc",
        syntax="proto3",
        dependency=[any_pb2.DESCRIPTOR.name, duration_pb2.DESCRIPTOR.name],
    )
    proto.message_type.extend(
        [
            _message(
                "Status",
                ("code", 1, _OPTIONAL, _T.TYPE_INT32, ""),
                ("message", 2, _OPTIONAL, _T.TYPE_STRING, ""),
                ("details", 3, _REPEATED, _T.TYPE_MESSAGE, ".google.protobuf.Any"),
            ),
            _message(
                "RetryInfo",
                ("retry_delay", 1, _OPTIONAL, _T.TYPE_MESSAGE, ".google.protobuf.Duration"),
            ),
            _message("FieldViolation", ("field", 1, _OPTIONAL, _T.TYPE_STRING, "")),
            _message(
                "BadRequest",
                ("field_violations", 1, _REPEATED, _T.TYPE_MESSAGE, ".google.rpc.FieldViolation"),
            ),
        ]
    )
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"google.rpc.{name}"))
        for name in ("Status", "RetryInfo", "BadRequest")
    }


_CLASSES = _classes()


@dataclass
class StatusDetails:
    """What the details of a failure say: ``retry_after`` in seconds (None: no RetryInfo, or a
    negative delay) and the ``fields`` the BadRequest violations name, in order."""

    retry_after: float | None = None
    fields: list[str] = field(default_factory=list)


def details_of(call: grpc.Call) -> StatusDetails:
    """The RetryInfo and BadRequest of a failed call. A status that does not parse, or whose code
    and message differ from the call's own, is ignored (empty details): the caller then falls
    back on the plain trailers."""
    found = StatusDetails()
    encoded = _details_trailer(call)
    if encoded is None:
        return found
    try:
        status: Any = _CLASSES["Status"].FromString(encoded)
    except DecodeError:
        return found
    if status.code != call.code().value[0] or status.message != (call.details() or ""):
        return found
    for detail in status.details:
        kind = detail.type_url.removeprefix(_TYPE_URL_PREFIX)
        try:
            if kind == "google.rpc.RetryInfo":
                info: Any = _CLASSES["RetryInfo"].FromString(detail.value)
                seconds = info.retry_delay.ToMilliseconds() / 1000
                found.retry_after = seconds if seconds >= 0 else None
            elif kind == "google.rpc.BadRequest":
                request: Any = _CLASSES["BadRequest"].FromString(detail.value)
                found.fields.extend(v.field for v in request.field_violations if v.field)
        except DecodeError:
            continue
    return found


def _details_trailer(call: grpc.Call) -> bytes | None:
    try:
        metadata = call.trailing_metadata() or ()
    except (AttributeError, TypeError, ValueError):
        return None
    for key, value in metadata:
        if key == DETAILS_TRAILER and isinstance(value, bytes):
            return value
    return None
