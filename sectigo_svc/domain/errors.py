"""The domain's errors: a small typed family that the gRPC layer maps to status codes in one place.

Messages are written for the caller and never hold a secret; details meant for operators go to the
log, not into these messages.
"""

from __future__ import annotations

# How much of a caller's own text an error message may quote, in characters.
ECHO_LIMIT = 200


def quoted(value: str, limit: int = ECHO_LIMIT) -> str:
    """``value`` as a message may show it: ``repr`` form (control characters escaped), cut to
    ``limit`` characters with the full length noted, so no caller can make a message large."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


class DomainError(Exception):
    """Base of every error the service reports to a caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """The request is malformed; ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(DomainError):
    """No such request, certificate, profile or authority (or not visible to the caller)."""


class PermissionDenied(DomainError):
    """The caller's identity lacks the role, or the object belongs to someone else."""


class Unauthenticated(DomainError):
    """The caller presented no usable identity."""


class AlreadyExists(DomainError):
    """The request id is taken by a request with a different body."""


class FailedPrecondition(DomainError):
    """The object is not in a state that allows the operation (e.g. not ready yet)."""


class ResourceExhausted(DomainError):
    """A limit is reached, e.g. the authority has no licences left."""


class Unavailable(DomainError):
    """Sectigo (or the store) cannot be reached now; retrying later may work."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(DomainError):
    """The caller's deadline passed before the work upstream finished."""
