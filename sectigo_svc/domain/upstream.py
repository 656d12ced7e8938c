"""What a Sectigo failure means to a caller of the service, decided in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sectigo_svc.domain import errors
from sectigo_svc.sectigo import endpoints
from sectigo_svc.sectigo import errors as sectigo

RETRY_SECONDS = 1.0  # when neither Sectigo nor the client said how long to wait
CREDENTIALS_RETRY_SECONDS = 5.0
_NAMING = frozenset(e.name for e in endpoints.ALL if "{" in e.path or e is endpoints.FIND)


def translate(exc: sectigo.SectigoError, what: str) -> errors.DomainError:
    """The domain error for a failed Sectigo call made to do ``what`` (e.g. "find").

    Every UNAVAILABLE carries a time to come back: Sectigo's or the client's own when known,
    else :data:`RETRY_SECONDS`.
    """
    error = _translate(exc, what)
    if isinstance(error, errors.Unavailable) and error.retry_after is None:
        error.retry_after = RETRY_SECONDS
    return error


def _translate(exc: sectigo.SectigoError, what: str) -> errors.DomainError:
    rejected = sectigo.InvalidCredentials | sectigo.NotAuthorized | sectigo.TLSAuthRequired
    if isinstance(exc, sectigo.CredentialsRejected) or (
        isinstance(exc, rejected) and exc.endpoint == endpoints.LOGIN.name
    ):
        return errors.Unavailable(
            f"{what}: Sectigo rejects the service's credentials; operators must fix them",
            retry_after=getattr(exc, "retry_after", None) or CREDENTIALS_RETRY_SECONDS,
        )
    if isinstance(exc, sectigo.Throttled):
        return errors.Unavailable(
            f"{what}: Sectigo asked to slow down", retry_after=exc.retry_after
        )
    if isinstance(exc, sectigo.HeldBack):
        return errors.Unavailable(f"{what}: Sectigo is unavailable", retry_after=exc.retry_after)
    if isinstance(exc, sectigo.DeadlineExceeded):
        return errors.DeadlineExceeded(f"{what}: the deadline passed while Sectigo was working")
    if isinstance(exc, sectigo.InsufficientLicences):
        return errors.ResourceExhausted(f"{what}: no licences left at Sectigo")
    if isinstance(exc, sectigo.NotFound) and not _names_an_object(exc.endpoint):
        # A 404 for a list or an account read names nothing the caller could have got wrong.
        return errors.Unavailable(
            f"{what}: Sectigo answered 404 for a read that names nothing; try again"
        )
    if isinstance(exc, sectigo.NotFound):
        return errors.NotFound(f"{what}: Sectigo does not know it")
    if isinstance(exc, sectigo.ValidationError):
        return errors.FailedPrecondition(f"{what}: Sectigo refused: {exc.message}")
    if isinstance(exc, sectigo.RateLimited | sectigo.ServerError):
        return errors.Unavailable(f"{what}: Sectigo is unavailable", retry_after=exc.retry_after)
    if isinstance(exc, sectigo.ConnectionFailed | sectigo.OutcomeUnknown):
        return errors.Unavailable(f"{what}: Sectigo could not be reached")
    return errors.Unavailable(f"{what}: Sectigo cannot be used now ({type(exc).__name__})")


def _names_an_object(endpoint: str) -> bool:
    """Whether a call of ``endpoint`` names a batch, profile, authority or certificate."""
    return endpoint in _NAMING


@contextlib.contextmanager
def upstream(what: str) -> Iterator[None]:
    """Run Sectigo calls, re-raising their failures as domain errors."""
    try:
        yield
    except sectigo.SectigoError as exc:
        raise translate(exc, what) from exc
