"""The transport under the client: the channel, the stub, each call's deadline, error decoding.

:class:`CertificateAuthorityClient` says *what* to call; this says *how*: every unary call gets
the default deadline unless the caller gives one, every call states the API version this client
speaks (:data:`API_VERSION` in the ``sectigo-ca-api-version`` header), and every gRPC failure
leaves here as a
:class:`~sectigo_client.errors.CertificateAuthorityError` (the gRPC original chained as cause).
Tests may hand the client a transport over any channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import grpc

from sectigo.ca.v1 import VERSION, VERSION_HEADER, ca_pb2_grpc
from sectigo_client.errors import from_rpc_error

DEFAULT_TIMEOUT = 30.0
# The version of the sectigo.ca.v1 API this client was generated from, "<major>.<minor>".
API_VERSION = VERSION
VERSION_METADATA = ((VERSION_HEADER, API_VERSION),)

Request = TypeVar("Request")
Response = TypeVar("Response")


class Transport:
    """One channel and its stub. Closing the transport closes the channel."""

    def __init__(self, channel: grpc.Channel, timeout: float = DEFAULT_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError("the default deadline must be positive")
        self._channel = channel
        self.timeout = timeout
        self.stub = ca_pb2_grpc.CertificateAuthorityStub(channel)

    def unary(
        self,
        method: grpc.UnaryUnaryMultiCallable[Request, Response],
        name: str,
        request: Request,
        timeout: float | None = None,
    ) -> Response:
        """Call ``method`` (named ``name`` in errors) with ``timeout`` or the default deadline."""
        try:
            return method(
                request,
                timeout=self.timeout if timeout is None else timeout,
                metadata=VERSION_METADATA,
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, name) from exc

    def stream(
        self,
        method: grpc.UnaryStreamMultiCallable[Request, Response],
        name: str,
        request: Request,
        timeout: float | None = None,
    ) -> Iterator[Response]:
        """The messages of a server stream; ``timeout`` None means no deadline at all.

        Leaving the iteration early (``break``, or closing the generator) cancels the call.
        """
        call = method(request, timeout=timeout, metadata=VERSION_METADATA)
        try:
            yield from call
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, name) from exc
        finally:
            call.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs

    def close(self) -> None:
        self._channel.close()
