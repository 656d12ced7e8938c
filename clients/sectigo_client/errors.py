"""The client's errors: what a failed call told the caller, as a small typed family.

Every gRPC failure becomes one of these in exactly one place, :func:`from_rpc_error`; the status
code decides the class, never the message text. Each error carries the wire facts: the status
``code``, the server's ``message`` and the RPC ``method``; :class:`InvalidArgument` adds the
offending ``field``, and :class:`Unavailable` and :class:`ResourceExhausted` the server's
``retry_after`` hint. Both are read from the ``google.rpc.Status`` details the service sends
(``BadRequest``, ``RetryInfo``), else from its older plain trailers (``sectigo-svc-field``,
``retry-after-ms``).
"""

from __future__ import annotations

from typing import cast

import grpc

from sectigo_client.rich_status import details_of

FIELD_TRAILER = "sectigo-svc-field"
RETRY_TRAILER = "retry-after-ms"
# Codes after which a broken Watch stream is worth following by polling instead of giving up.
_STREAM_BREAKS = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
    }
)


class CertificateAuthorityError(Exception):
    """Base of every error of this package.

    ``code`` is the gRPC status (None for errors raised by the client itself), ``message`` the
    server's (or the client's) explanation, ``method`` the RPC name when a call failed.
    ``retry_after`` is the server's hint, in seconds, of when to try again (None: it gave none);
    only :class:`Unavailable` and :class:`ResourceExhausted` carry one.
    """

    retry_after: float | None = None

    def __init__(self, message: str, code: grpc.StatusCode | None = None, method: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.method = method

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        return f"{self.code.name}: {self.message}"

    @property
    def transient(self) -> bool:
        """Whether the failure says nothing about the request itself (the connection broke)."""
        return self.code in _STREAM_BREAKS


class ConfigurationError(CertificateAuthorityError):
    """The connection settings cannot work: a target or file is missing or unreadable."""


class NotFound(CertificateAuthorityError):
    """No such request, certificate or profile (or not visible to the caller)."""


class PermissionDenied(CertificateAuthorityError):
    """The caller's identity lacks the role, or the object belongs to someone else."""


class Unauthenticated(CertificateAuthorityError):
    """The service could not identify the caller from its client certificate."""


class InvalidArgument(CertificateAuthorityError):
    """The request is malformed; ``field`` names the offending field (dotted path), if known."""

    def __init__(
        self,
        message: str,
        code: grpc.StatusCode | None = grpc.StatusCode.INVALID_ARGUMENT,
        method: str = "",
        field: str | None = None,
    ) -> None:
        super().__init__(message, code, method)
        self.field = field


class AlreadyExists(CertificateAuthorityError):
    """The request id is already used by a request with a different body."""


class FailedPrecondition(CertificateAuthorityError):
    """The request is not in a state that allows the operation (e.g. not READY yet)."""


class ResourceExhausted(CertificateAuthorityError):
    """A limit is reached: no licences left, or the service is shedding load.

    ``retry_after`` is the server's hint in seconds, None when it gave none.
    """

    def __init__(
        self,
        message: str,
        code: grpc.StatusCode | None = grpc.StatusCode.RESOURCE_EXHAUSTED,
        method: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code, method)
        self.retry_after = retry_after


class Unavailable(CertificateAuthorityError):
    """The service (or Sectigo behind it) cannot be reached now; retrying later may work.

    ``retry_after`` is the server's hint in seconds, None when it gave none.
    """

    def __init__(
        self,
        message: str,
        code: grpc.StatusCode | None = grpc.StatusCode.UNAVAILABLE,
        method: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code, method)
        self.retry_after = retry_after


class DeadlineExceeded(CertificateAuthorityError):
    """The call's deadline passed before the service answered."""


class Internal(CertificateAuthorityError):
    """The service failed unexpectedly; its log has the details."""


class WaitTimeout(DeadlineExceeded):
    """:meth:`CertificateAuthorityClient.wait` gave up: the request was not finished in time.

    ``last_state`` is the state last seen (None if the request was never read).
    """

    def __init__(self, request_id: str, timeout: float, last_state: str | None) -> None:
        seen = f"; last seen {last_state}" if last_state else ""
        super().__init__(f"request {request_id} did not finish within {timeout:g} s{seen}")
        self.request_id = request_id
        self.timeout = timeout
        self.last_state = last_state


_CLASSES: tuple[tuple[grpc.StatusCode, type[CertificateAuthorityError]], ...] = (
    (grpc.StatusCode.NOT_FOUND, NotFound),
    (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
    (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
    (grpc.StatusCode.ALREADY_EXISTS, AlreadyExists),
    (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition),
    (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
    (grpc.StatusCode.INTERNAL, Internal),
)


def from_rpc_error(exc: grpc.RpcError, method: str = "") -> CertificateAuthorityError:
    """The typed error for a failed call; raise it ``from exc`` to keep the gRPC original."""
    code = exc.code()
    message = exc.details() or code.name.lower().replace("_", " ")
    trailers = _trailers(exc)
    details = details_of(cast(grpc.Call, exc))
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        field = next(iter(details.fields), None) or trailers.get(FIELD_TRAILER)
        return InvalidArgument(message, code, method, field=field)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        retry_after = details.retry_after
        if retry_after is None:
            retry_after = _seconds(trailers.get(RETRY_TRAILER))
        if code is grpc.StatusCode.UNAVAILABLE:
            return Unavailable(message, code, method, retry_after=retry_after)
        return ResourceExhausted(message, code, method, retry_after=retry_after)
    kind = next((kind for known, kind in _CLASSES if known is code), CertificateAuthorityError)
    return kind(message, code, method)


def _trailers(exc: grpc.RpcError) -> dict[str, str]:
    """The text trailers of a failed call (some failures, e.g. connection errors, have none)."""
    # Text values arrive as str (the stub's _Metadatum claims bytes): take grpc's own Metadata view.
    metadata = cast("grpc.Metadata", exc.trailing_metadata() or ())
    return {key: value for key, value in metadata if isinstance(value, str)}


def _seconds(milliseconds: str | None) -> float | None:
    if milliseconds is None:
        return None
    try:
        value = int(milliseconds)
    except ValueError:
        return None
    return value / 1000 if value >= 0 else None
