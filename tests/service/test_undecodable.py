"""Requests the service cannot take as sent: bytes that do not decode (INVALID_ARGUMENT, logged and
counted like any call, never INTERNAL), and caller text too long to log whole (clipped)."""

from __future__ import annotations

import io
import json
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.rpc.server import SERVICE_NAME
from sectigo_svc.rpc.undecodable import WHOLE_REQUEST, Undecodable, locate
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import REGISTRATION, Failure, failure

NOT_UTF8 = b"\xff\xfe\xfd"
MAX_LOG_LINE = 64 * 1024


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field in wire format (payloads under 128 bytes)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def _number(message: type[Message], name: str) -> int:
    number: int = message.DESCRIPTOR.fields_by_name[name].number
    return number


def _raw(service: Service, method: str, data: bytes, client: str = "registration") -> Failure:
    """Send ``data`` as the request of ``method`` and describe the failure."""
    channel = service.channel(client)
    path = f"/{SERVICE_NAME}/{method}"
    if method == "WatchCertificateRequest":
        stream = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
        return failure(lambda: stream(data, timeout=10))
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    return failure(lambda: call(data, timeout=10))


def _rpc_lines(captured: io.StringIO) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in captured.getvalue().splitlines()]
    return [e for e in events if e["event"] == "rpc"]


def _count(service: Service, method: str, code: str) -> float:
    sample = service.app.metrics.registry.get_sample_value(
        "sectigo_svc_rpcs_total", {"method": method, "code": code}
    )
    return sample or 0.0


BAD_REQUEST_ID = _field(_number(pb.GetCertificateRequestRequest, "request_id"), NOT_UTF8)
BAD_COMMON_NAME = _field(
    _number(pb.IssueCertificateRequest, "server_key"),
    _field(_number(pb.ServerKeySpec, "common_name"), NOT_UTF8),
)


@pytest.mark.parametrize(
    ("method", "data", "field"),
    [
        ("GetCertificateRequest", BAD_REQUEST_ID, "request_id"),
        ("WatchCertificateRequest", BAD_REQUEST_ID, "request_id"),
        ("IssueCertificate", BAD_COMMON_NAME, "server_key.common_name"),
        ("ListCertificateRequests", b"\xff\xff\xff", WHOLE_REQUEST),
    ],
)
def test_undecodable_bytes_are_invalid_argument_logged_and_counted(
    captured: io.StringIO, service_factory: ServiceFactory, method: str, data: bytes, field: str
) -> None:
    service = service_factory()
    before = _count(service, method, "INVALID_ARGUMENT")

    refused = _raw(service, method, data)

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.field == field
    assert refused.details.startswith(f"{field}: ")
    assert _count(service, method, "INVALID_ARGUMENT") == before + 1
    (line,) = [e for e in _rpc_lines(captured) if e["rpc"] == method]
    assert (line["code"], line["identity"]) == ("INVALID_ARGUMENT", REGISTRATION)
    assert line["error"] == refused.details
    assert line.get("request_id") is None


def test_a_caller_without_the_role_learns_nothing_from_undecodable_bytes(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()

    refused = _raw(service, "GetCertificateRequest", BAD_REQUEST_ID, client="stranger")

    assert refused.code == grpc.StatusCode.PERMISSION_DENIED


def test_caller_text_in_log_lines_is_clipped(
    captured: io.StringIO, service_factory: ServiceFactory
) -> None:
    service = service_factory()
    stub = service.stub()
    huge = "x" * 200_000

    got = failure(
        lambda: stub.GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id=huge), timeout=10
        )
    )

    assert got.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    lines = captured.getvalue().splitlines()
    assert max(len(line) for line in lines) < MAX_LOG_LINE
    (line,) = [e for e in _rpc_lines(captured) if e["rpc"] == "GetCertificateRequest"]
    assert line["request_id"].startswith("x" * 256)
    assert len(line["request_id"]) < 300
    assert line["request_id"].endswith(f"({200_000 - 256} more characters)")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (BAD_COMMON_NAME, Undecodable("server_key.common_name", "is not valid UTF-8")),
        (
            _field(_number(pb.GetCertificateRequestRequest, "owner"), b"ok")
            + _field(_number(pb.GetCertificateRequestRequest, "request_id"), NOT_UTF8),
            Undecodable("request_id", "is not valid UTF-8"),
        ),
        (b"\x0a\x05ab", Undecodable(WHOLE_REQUEST, "the request bytes are not a valid message")),
        (b"\x0b", Undecodable(WHOLE_REQUEST, "the request bytes are not a valid message")),
    ],
)
def test_locate_names_the_first_string_that_is_not_utf8(data: bytes, where: Undecodable) -> None:
    descriptor = (
        pb.IssueCertificateRequest.DESCRIPTOR
        if data == BAD_COMMON_NAME
        else pb.GetCertificateRequestRequest.DESCRIPTOR
    )

    assert locate(descriptor, data) == where
