"""The one table from errors to gRPC statuses, with the details that tell callers how to react.

A failed call carries a ``google.rpc.Status`` in ``grpc-status-details-bin`` (built with
grpcio-status) holding ``RetryInfo`` when the server knows when to come back, and ``BadRequest``
naming the field of an INVALID_ARGUMENT. The same facts also go out as plain trailers:
``retry-after-ms`` and ``sectigo-svc-field`` for older clients, and ``grpc-retry-pushback-ms``,
which gRPC channel retries obey (they wait that long before the next attempt, or do not retry at
all when it is negative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import (
    error_details_pb2,
    status_pb2,
)
from grpc_status import rpc_status

from sectigo_svc.domain import errors
from sectigo_svc.store.base import StoreError

FIELD_TRAILER = "sectigo-svc-field"
RETRY_TRAILER = "retry-after-ms"
PUSHBACK_TRAILER = "grpc-retry-pushback-ms"
NO_RETRY_PUSHBACK = "-1"  # gRFC A6: a negative pushback means "do not retry this call"
INTERNAL_MESSAGE = "internal error; the server log has the details"
# A status message travels up to three times in the trailers (grpc-message, the rich status, the
# field violation); clients refuse metadata over 8-16 KiB, so no message may exceed this.
MAX_MESSAGE_CHARS = 1024
MAX_FIELD_CHARS = 256

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
# Codes whose retry time, when the error has one, is sent as RetryInfo and pushback.
_COME_BACK = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


# When a caller may try again after the store failed (readiness checks it every 2 s).
STORE_RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class Outcome:
    """How a call failed: the code, the caller's message, the offending ``field`` of an
    INVALID_ARGUMENT, and ``retry_after`` (seconds) when the caller should come back later."""

    code: grpc.StatusCode
    message: str
    field: str | None = None
    retry_after: float | None = None

    def trailers(self, time_remaining: float | None) -> tuple[tuple[str, str | bytes], ...]:
        """Every trailer of the failure: the rich status first, then the plain ones.

        ``time_remaining`` is the call's remaining deadline in seconds (None: none). A channel
        retry that could not start before the deadline is refused by a negative pushback, so the
        caller gets this status (and its RetryInfo) rather than DEADLINE_EXCEEDED later.
        """
        details = []
        plain: list[tuple[str, str | bytes]] = []
        if self.field is not None:
            violation = error_details_pb2.BadRequest.FieldViolation(
                field=self.field, description=self.message
            )
            details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
            plain.append((FIELD_TRAILER, self.field))
        if self.retry_after is not None:
            milliseconds = math.ceil(self.retry_after * 1000)
            delay = duration_pb2.Duration()
            delay.FromMilliseconds(milliseconds)
            details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
            plain.append((RETRY_TRAILER, str(milliseconds)))
            too_late = time_remaining is not None and self.retry_after >= time_remaining
            plain.append((PUSHBACK_TRAILER, NO_RETRY_PUSHBACK if too_late else str(milliseconds)))
        if not details:
            return tuple(plain)
        rich = status_pb2.Status(code=self.code.value[0], message=self.message, details=details)
        status: grpc.Status = rpc_status.to_status(rich)
        return (*status.trailing_metadata, *plain)


def outcome_of(exc: Exception) -> Outcome | None:
    """The status for a known error, or None for an unexpected one (which becomes INTERNAL).

    The message is cut to :data:`MAX_MESSAGE_CHARS` characters and the field to
    :data:`MAX_FIELD_CHARS`, whatever the error holds.

    A domain error with a ``retry_after`` (seconds, e.g. :class:`errors.Unavailable`) mapped to
    UNAVAILABLE or RESOURCE_EXHAUSTED keeps it; a negative one counts as none.
    """
    code = next((code for kind, code in _CODES if isinstance(exc, kind)), None)
    if code is None:
        return None
    if isinstance(exc, StoreError):
        return Outcome(
            code, "the request store is unavailable; retry later", retry_after=STORE_RETRY_SECONDS
        )
    assert isinstance(exc, errors.DomainError)
    field = _cut(exc.field, MAX_FIELD_CHARS) if isinstance(exc, errors.InvalidArgument) else None
    retry_after: float | None = getattr(exc, "retry_after", None) if code in _COME_BACK else None
    if retry_after is not None and retry_after < 0:
        retry_after = None
    return Outcome(code, _cut(exc.message, MAX_MESSAGE_CHARS), field, retry_after)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _packed(message: error_details_pb2.BadRequest | error_details_pb2.RetryInfo) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
