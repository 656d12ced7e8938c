"""The one table from errors to gRPC status codes, with the trailers that help callers react."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from sectigo_svc.domain import errors
from sectigo_svc.store.base import StoreError

FIELD_TRAILER = "sectigo-svc-field"
RETRY_TRAILER = "retry-after-ms"
INTERNAL_MESSAGE = "internal error; the server log has the details"

_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (StoreError, grpc.StatusCode.UNAVAILABLE),
)


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    message: str
    trailers: tuple[tuple[str, str], ...] = ()


def outcome_of(exc: Exception) -> Outcome | None:
    """The status for a known error, or None for an unexpected one (which becomes INTERNAL)."""
    code = next((code for kind, code in _CODES if isinstance(exc, kind)), None)
    if code is None:
        return None
    if isinstance(exc, StoreError):
        return Outcome(code, "the request store is unavailable; retry later")
    trailers: tuple[tuple[str, str], ...] = ()
    if isinstance(exc, errors.InvalidArgument):
        trailers = ((FIELD_TRAILER, exc.field),)
    if isinstance(exc, errors.Unavailable) and exc.retry_after is not None:
        trailers = ((RETRY_TRAILER, str(int(exc.retry_after * 1000))),)
    assert isinstance(exc, errors.DomainError)
    return Outcome(code, exc.message, trailers)
