"""Typed errors of the Sectigo client.

Every failure the client can report is a :class:`SectigoError`. HTTP failures carry the wire facts
(status, Sectigo ``errorCode`` and message, method, endpoint name) and the response decides the
class, so callers branch on types instead of parsing text. Exception text never contains a
password, a token or a PKCS#12 password: it is built only from the endpoint name, the status and
the server's message after known secrets were redacted from it.
"""

from __future__ import annotations


class SectigoError(Exception):
    """Base of every error raised by ``sectigo_svc.sectigo``."""


class ConfigurationError(SectigoError, ValueError):
    """A client setting that cannot work; the message names the setting and what to fix."""


class EnvironmentGuardError(ConfigurationError):
    """The endpoint is not allowed in the configured environment (production, staging, testing)."""


class CredentialsError(SectigoError):
    """No usable username/password: missing, only one of the pair, or an unreadable secret file."""


class InvalidTokens(SectigoError):
    """Sectigo handed out (or the cache holds) tokens without the ``exp``/``iat`` claims we need."""


class InvalidRequest(SectigoError, ValueError):
    """The caller asked for something the client refuses to send (checked before any I/O)."""


class InvalidReason(InvalidRequest):
    """A revocation reason that is not an RFC 5280 reason the client will send."""


class UnexpectedResponse(SectigoError):
    """A 2xx reply whose shape, type or content type is not what the API promises."""

    def __init__(self, endpoint: str, problem: str) -> None:
        super().__init__(f"sectigo {endpoint}: unexpected response: {problem}")
        self.endpoint = endpoint
        self.problem = problem


class ArchiveError(SectigoError):
    """A downloaded archive that is not what a batch should produce (entries, format)."""


class WrongPassword(ArchiveError):
    """The PKCS#12 could not be decrypted: the password is wrong or the file is corrupt."""


class DeadlineExceeded(SectigoError):
    """The caller's deadline passed before the call could be (re)tried."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(f"sectigo {endpoint}: deadline exceeded before the call could be made")
        self.endpoint = endpoint


class ConnectionFailed(SectigoError):
    """No HTTP answer: refused, reset, timed out or broken mid-stream.

    ``sent`` is False only when the request provably never left this process (connection refused,
    name resolution failure, connect timeout); anything else may have reached Sectigo.
    """

    def __init__(self, endpoint: str, method: str, reason: str, *, sent: bool) -> None:
        where = "possibly after sending" if sent else "before sending"
        super().__init__(f"sectigo {endpoint} ({method}): connection failed {where}: {reason}")
        self.endpoint = endpoint
        self.method = method
        self.reason = reason
        self.sent = sent


class OutcomeUnknown(SectigoError):
    """A create, upload or revoke may or may not have taken effect at Sectigo.

    Raised instead of retrying when the request may have been processed (read timeout, connection
    lost after sending, 5xx, 409, a 2xx that cannot be read: the ``IN_DOUBT`` answers of
    :mod:`~sectigo_svc.sectigo.answers`). Reconcile (e.g. look the batch up by name) before
    sending again: every issuance spends a paid licence. The original error is the ``__cause__``.
    """

    def __init__(self, endpoint: str, method: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"sectigo {endpoint} ({method}): outcome unknown: {reason}")
        self.endpoint = endpoint
        self.method = method
        self.reason = reason
        self.status = status


class SectigoHTTPError(SectigoError):
    """Sectigo answered with an error status. Subclasses name the statuses callers act on.

    ``retry_after`` is the wait in seconds the server asked for (``Retry-After``), if any.
    """

    def __init__(
        self,
        *,
        status: int,
        message: str,
        error_code: int | None,
        method: str,
        endpoint: str,
        retry_after: float | None = None,
    ) -> None:
        code = f" [errorCode {error_code}]" if error_code is not None else ""
        super().__init__(f"sectigo {endpoint} ({method}): HTTP {status}: {message}{code}")
        self.status = status
        self.message = message
        self.error_code = error_code
        self.method = method
        self.endpoint = endpoint
        self.retry_after = retry_after


class UnexpectedRedirect(SectigoHTTPError):
    """A 3xx reply. The client never follows redirects: a CA API has no reason to send them."""


class TLSAuthRequired(UnexpectedRedirect):
    """307 at login: the account has TLS client-certificate authentication switched on."""


class ValidationError(SectigoHTTPError):
    """400: Sectigo refused the request's content (parameters, CSR, batch not ready...)."""


class Unauthenticated(SectigoHTTPError):
    """401 on an API or refresh call: the token was rejected (after one re-authentication)."""


class InvalidCredentials(Unauthenticated):
    """401 at login: wrong username or password."""


class InsufficientLicences(SectigoHTTPError):
    """402: the authority has no licence left for this order."""


class NotAuthorized(SectigoHTTPError):
    """403: the credentials are right but the user lacks authority for this call."""


class NotFound(SectigoHTTPError):
    """404: unknown batch, profile, authority or serial number."""


class UnsupportedMediaType(SectigoHTTPError):
    """415: the request body was sent with a content type Sectigo does not accept."""


class RateLimited(SectigoHTTPError):
    """429: slow down. The client's rate gate then holds every call for ``retry_after`` (or the
    backoff) and sends this one again, orders included: a 429 proves the order was not taken."""


class ServerError(SectigoHTTPError):
    """5xx: Sectigo (or something in front of it) failed; reads retry it, orders become
    ``OutcomeUnknown``. A 501 (not implemented) is definitive and not retried."""


# A held-back call is never told to come back "now": that would only ask the same question again.
MIN_RETRY_AFTER = 0.001


class HeldBack(SectigoError):
    """Not sent: the client held this call back; nothing reached Sectigo.

    ``retry_after`` is how many seconds from now (always > 0) the call may be tried again;
    ``endpoint`` names the call that was held back.
    """

    def __init__(
        self, endpoint: str, retry_after: float, reason: str, next_try: str = "try again"
    ) -> None:
        self.endpoint = endpoint
        self.retry_after = max(retry_after, MIN_RETRY_AFTER)
        super().__init__(
            f"sectigo {endpoint}: not sent: {reason}; {next_try} in {self.retry_after:.1f} s"
        )


class Throttled(HeldBack):
    """Sectigo asked the client to slow down (429) and the wait does not fit the deadline."""

    def __init__(self, endpoint: str, retry_after: float) -> None:
        super().__init__(endpoint, retry_after, "Sectigo's rate limit is in effect")


class CredentialsRejected(HeldBack):
    """Sectigo rejected the account's credentials at login; no login is tried again before
    ``retry_after`` seconds, unless the password file changes first."""

    def __init__(self, endpoint: str, retry_after: float, username: str) -> None:
        reason = (
            f"Sectigo rejected the credentials of user {username!r}: "
            "the password is wrong or the user lacks authority"
        )
        super().__init__(endpoint, retry_after, reason, "next login attempt")
        self.username = username


class SectigoUnavailable(HeldBack):
    """The availability monitor says Sectigo is down; ``cause`` is a short, secret-free text."""

    def __init__(self, endpoint: str, retry_after: float, cause: str) -> None:
        super().__init__(endpoint, retry_after, f"Sectigo is unavailable ({cause})")
        self.cause = cause
