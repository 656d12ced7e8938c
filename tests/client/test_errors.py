"""gRPC failures become typed errors in one place, with the server's trailers read."""

from __future__ import annotations

import socket

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from sectigo_client import (
    AlreadyExists,
    CertificateAuthorityClient,
    CertificateAuthorityError,
    ConfigurationError,
    ConnectionSettings,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from sectigo_client.errors import from_rpc_error
from sectigo_svc.devcerts import DevCerts
from tests.client.conftest import ClientFactory, environment


class FakeRpcError(grpc.RpcError):
    """What a failed call raises, as the parts the client reads."""

    def __init__(
        self, code: grpc.StatusCode, details: str | None, trailers: grpc.Metadata = ()
    ) -> None:
        super().__init__(details)
        self._code = code
        self._details = details
        self._trailers = trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details

    def trailing_metadata(self) -> grpc.Metadata:  # type: ignore[override]
        return self._trailers


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
        (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.ALREADY_EXISTS, AlreadyExists),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted),
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
        (grpc.StatusCode.INTERNAL, Internal),
    ],
)
def test_each_code_has_its_class_carrying_code_message_and_method(
    code: grpc.StatusCode, kind: type[CertificateAuthorityError]
) -> None:
    error = from_rpc_error(FakeRpcError(code, "what went wrong"), "GetCertificateRequest")

    assert type(error) is kind
    assert (error.code, error.message, error.method) == (
        code,
        "what went wrong",
        "GetCertificateRequest",
    )
    assert str(error) == f"{code.name}: what went wrong"


def test_other_codes_are_the_base_class_and_a_missing_message_is_the_codes_name() -> None:
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.CANCELLED, None))

    assert type(error) is CertificateAuthorityError
    assert error.message == "cancelled"
    assert error.transient


def test_invalid_argument_names_the_field_from_the_trailer() -> None:
    rpc = FakeRpcError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "request_id: must be 1 to 128 characters",
        (("sectigo-svc-field", "request_id"), ("other-bin", b"\x00")),
    )

    error = from_rpc_error(rpc)

    assert isinstance(error, InvalidArgument)
    assert error.field == "request_id"
    assert not error.transient


def test_unavailable_carries_the_retry_hint_in_seconds() -> None:
    hinted = from_rpc_error(
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "throttled", (("retry-after-ms", "1500"),))
    )
    unhinted = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down"))
    garbled = from_rpc_error(
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down", (("retry-after-ms", "soon"),))
    )

    assert isinstance(hinted, Unavailable) and hinted.retry_after == 1.5
    assert isinstance(unhinted, Unavailable) and unhinted.retry_after is None
    assert isinstance(garbled, Unavailable) and garbled.retry_after is None
    assert hinted.transient


def test_the_service_names_the_bad_field(client_factory: ClientFactory) -> None:
    with pytest.raises(InvalidArgument) as raised:
        client_factory().issue(common_name="not a dns name!")

    assert raised.value.field == "server_key.common_name"
    assert raised.value.method == "IssueCertificate"
    assert isinstance(raised.value.__cause__, grpc.RpcError)


def test_denials_and_unknown_requests(client_factory: ClientFactory) -> None:
    with pytest.raises(PermissionDenied):
        client_factory("verification").issue(common_name="denied.example.com")
    with pytest.raises(NotFound):
        client_factory().get("never-issued")
    with pytest.raises(PermissionDenied):
        client_factory("stranger").licenses()


def test_a_reused_request_id_with_another_body_already_exists(
    client_factory: ClientFactory,
) -> None:
    ca = client_factory()
    first = ca.issue(common_name="same.example.com", request_id="reused-1")
    again = ca.issue(common_name="same.example.com", request_id="reused-1")

    assert again.request_id == first.request_id == "reused-1"
    assert again.pkcs12_password == first.pkcs12_password
    with pytest.raises(AlreadyExists):
        ca.issue(common_name="other.example.com", request_id="reused-1")


def test_a_stopped_server_is_unavailable(pki: DevCerts) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ConnectionSettings.from_env(environment(f"localhost:{port}", pki))
    with (
        CertificateAuthorityClient.connect(settings, timeout=5) as ca,
        pytest.raises(Unavailable) as raised,
    ):
        ca.authorities()

    assert raised.value.retry_after is None
    assert raised.value.method == "ListAuthorities"


def test_settings_name_what_is_missing_or_unreadable(pki: DevCerts) -> None:
    env = environment("localhost:1", pki)
    with pytest.raises(ConfigurationError, match="SECTIGO_CA_CERT, SECTIGO_CA_KEY"):
        ConnectionSettings.from_env({"SECTIGO_CA_TARGET": "x:1", "SECTIGO_CA_CACERT": "ca.pem"})
    with pytest.raises(ConfigurationError, match="cannot read the client private key"):
        ConnectionSettings.from_env(env | {"SECTIGO_CA_KEY": "/nonexistent/key.pem"})
    with pytest.raises(ConfigurationError, match="not an unencrypted PEM private key"):
        ConnectionSettings.from_env(env | {"SECTIGO_CA_KEY": env["SECTIGO_CA_CERT"]})
    with pytest.raises(ConfigurationError, match="CA bundle holds no PEM certificate"):
        ConnectionSettings.from_env(env | {"SECTIGO_CA_CACERT": env["SECTIGO_CA_KEY"]})
    assert "PRIVATE KEY" not in repr(ConnectionSettings.from_env(env))


def _rich(code: grpc.StatusCode, message: str, *details: Message) -> tuple[str, str | bytes]:
    """The ``grpc-status-details-bin`` trailer of a google.rpc.Status with ``details``."""
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    status = status_pb2.Status(code=code.value[0], message=message, details=packed)
    key, value = rpc_status.to_status(status).trailing_metadata[0]
    return key, value


def test_retry_info_in_the_status_details_wins_over_the_old_trailer() -> None:
    delay = duration_pb2.Duration(seconds=2, nanos=500_000_000)
    retry = error_details_pb2.RetryInfo(retry_delay=delay)
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        trailers = (_rich(code, "slow down", retry), ("retry-after-ms", "100"))

        error = from_rpc_error(FakeRpcError(code, "slow down", trailers))

        assert isinstance(error, Unavailable | ResourceExhausted)
        assert error.retry_after == 2.5


def test_bad_request_names_the_field() -> None:
    violation = error_details_pb2.BadRequest.FieldViolation(field="csr_pem", description="bad")
    details = error_details_pb2.BadRequest(field_violations=[violation])
    code = grpc.StatusCode.INVALID_ARGUMENT

    error = from_rpc_error(
        FakeRpcError(code, "csr_pem: bad", (_rich(code, "csr_pem: bad", details),))
    )

    assert isinstance(error, InvalidArgument) and error.field == "csr_pem"


def test_details_that_do_not_match_the_call_are_ignored_for_the_trailers() -> None:
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=9))
    forged = _rich(grpc.StatusCode.UNAVAILABLE, "another message", retry)
    garbled = ("grpc-status-details-bin", b"\xff\xfe not a status")

    for details in (forged, garbled):
        trailers = (details, ("retry-after-ms", "1500"))
        error = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down", trailers))
        assert isinstance(error, Unavailable) and error.retry_after == 1.5
