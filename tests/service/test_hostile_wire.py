"""Raw request bytes on every RPC, sent through a generic channel call: arbitrary bytes are never
INTERNAL or UNKNOWN, and a string field holding invalid UTF-8 is INVALID_ARGUMENT naming it."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given
from hypothesis import strategies as st

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.devcerts import DevCerts
from sectigo_svc.rpc.server import SERVICE_NAME
from tests.service.conftest import Service
from tests.service.helpers import Failure
from tests.service.hostile_inputs import PROPERTY, outcome, refusal_problems, running_service

METHODS_BY_NAME = pb.DESCRIPTOR.services_by_name["CertificateAuthority"].methods_by_name
METHODS = list(METHODS_BY_NAME.values())
# (method, top-level string field) for every string field of every request.
STRING_FIELDS = [
    (method.name, field.name)
    for method in METHODS
    for field in method.input_type.fields
    if field.type == FieldDescriptor.TYPE_STRING
]


@pytest.fixture(scope="module")
def shared(pki: DevCerts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(pki, tmp_path_factory.mktemp("hostile-wire")) as service:
        yield service


def _input(method: str) -> Descriptor:
    return METHODS_BY_NAME[method].input_type


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _send(service: Service, method: str, data: bytes) -> Failure | None:
    channel = service.channel("admin")
    path = f"/{SERVICE_NAME}/{method}"
    if method == "WatchCertificateRequest":
        stream = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
        return outcome(lambda: stream(data, timeout=3))
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    return outcome(lambda: call(data, timeout=10))


@PROPERTY
@given(method=st.sampled_from([m.name for m in METHODS]), data=st.binary(max_size=600))
def test_arbitrary_bytes_are_never_internal(shared: Service, method: str, data: bytes) -> None:
    fields = frozenset(_input(method).fields_by_name) | {"request", "key", "target", "criterion"}

    result = _send(shared, method, data)

    # A Watch of a request that bytes of an earlier example happened to issue runs to its deadline.
    if result is not None and result.code is not grpc.StatusCode.DEADLINE_EXCEEDED:
        assert refusal_problems(result, fields) == []


@PROPERTY
@given(
    target=st.sampled_from(STRING_FIELDS),
    good=st.text(max_size=20).map(str.encode),
    bad=st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"]),
    at=st.integers(0, 20),
)
def test_a_string_field_that_is_not_utf8_is_invalid_argument_naming_it(
    shared: Service, target: tuple[str, str], good: bytes, bad: bytes, at: int
) -> None:
    method, name = target
    input_type = (
        pb.DESCRIPTOR.services_by_name["CertificateAuthority"].methods_by_name[method].input_type
    )
    number = input_type.fields_by_name[name].number
    value = good[:at] + bad + good[at:]

    result = _send(shared, method, _varint(number << 3 | 2) + _varint(len(value)) + value)

    assert result is not None
    assert (result.code, result.field) == (grpc.StatusCode.INVALID_ARGUMENT, name)
