"""What a Sectigo call's outcome means for the caller: the one table and ``classify``.

Every failure the client raises is first named as an :class:`Outcome` (the HTTP status class, or
what happened on the wire), then looked up with the endpoint's :class:`Group` in ``TABLE``:

- ``DONE``: Sectigo did it.
- ``NOT_TAKEN``: proved not processed (429, never sent, held back by the client, a 401 on an order
  after the one replay); send it again when allowed, after ``retry_after``.
- ``IN_DOUBT``: a create, upload or revoke may have been processed (5xx, no answer after sending, a
  2xx that cannot be read, 409); reconcile by name before any resend, every order costs a licence.
- ``TRANSIENT``: a read (or login) failed and nothing changed; try again later. A 404 for a batch id
  Sectigo itself returned is transient, never definitive by itself.
- ``REFUSED``: definitive; Sectigo refused this content (400/415, 402 no licences, 403 no
  authority, 404 unknown authority, profile or serial, 501, credentials at login).

The retry policy derives from the same table: a call is tried again within itself only for
``NOT_TAKEN`` or ``TRANSIENT`` answers to outcomes in :data:`RETRIED_IN_CALL`; other outcomes have
their own handling (the 401 replay, the login back-off, the rate gate, the tracker's next poll).
:func:`render_markdown` prints the table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from sectigo_svc.sectigo import endpoints
from sectigo_svc.sectigo.endpoints import Auth, Endpoint
from sectigo_svc.sectigo.errors import (
    ConnectionFailed,
    DeadlineExceeded,
    HeldBack,
    OutcomeUnknown,
    SectigoError,
    SectigoHTTPError,
    UnexpectedResponse,
)


class Answer(enum.Enum):
    """What the caller should do next; see the module docstring."""

    DONE = "done"
    NOT_TAKEN = "not taken"
    IN_DOUBT = "in doubt"
    TRANSIENT = "transient"
    REFUSED = "refused"


class Outcome(enum.Enum):
    """What happened to one call, as far as the client can tell."""

    OK = "2xx"
    REDIRECT = "3xx (never followed)"
    BAD_REQUEST = "400 (and 4xx not listed)"
    UNAUTHENTICATED = "401"
    NO_LICENCE = "402"
    FORBIDDEN = "403"
    NOT_FOUND = "404"
    CONFLICT = "409"
    MEDIA_TYPE = "415"
    RATE_LIMITED = "429"
    SERVER_ERROR = "5xx (not 501)"
    NOT_IMPLEMENTED = "501"
    NEVER_SENT = "connection refused / never sent"
    CONNECT_TIMEOUT = "connect timeout"
    NO_ANSWER = "read timeout / reset after sending"
    HELD_BACK = "held back by the client"
    UNREADABLE = "2xx that cannot be read"
    LOCAL = "refused by the client before sending"


class Group(enum.Enum):
    """Endpoints that share one column of the table."""

    AUTH = "login, refresh"
    READ = "other reads"
    BATCH_READ = "batch detail, status, processing info, download"
    WRITE = "create, upload, revoke"


# Reads of one batch by the id Sectigo returned for it.
BATCH_READS = frozenset({"batch_detail", "batch_status", "processing_info", "download"})

_A, _R, _B, _W = Group.AUTH, Group.READ, Group.BATCH_READ, Group.WRITE
DONE, NOT_TAKEN, IN_DOUBT = Answer.DONE, Answer.NOT_TAKEN, Answer.IN_DOUBT
TRANSIENT, REFUSED = Answer.TRANSIENT, Answer.REFUSED


def _row(auth: Answer, read: Answer, batch_read: Answer, write: Answer) -> dict[Group, Answer]:
    return {_A: auth, _R: read, _B: batch_read, _W: write}


def _all(answer: Answer) -> dict[Group, Answer]:
    return _row(answer, answer, answer, answer)


TABLE: Mapping[Outcome, Mapping[Group, Answer]] = {
    Outcome.OK: _all(DONE),
    Outcome.REDIRECT: _row(REFUSED, TRANSIENT, TRANSIENT, NOT_TAKEN),
    Outcome.BAD_REQUEST: _all(REFUSED),
    Outcome.UNAUTHENTICATED: _row(REFUSED, TRANSIENT, TRANSIENT, NOT_TAKEN),
    Outcome.NO_LICENCE: _all(REFUSED),
    Outcome.FORBIDDEN: _all(REFUSED),
    Outcome.NOT_FOUND: _row(REFUSED, REFUSED, TRANSIENT, REFUSED),
    Outcome.CONFLICT: _row(REFUSED, TRANSIENT, TRANSIENT, IN_DOUBT),
    Outcome.MEDIA_TYPE: _all(REFUSED),
    Outcome.RATE_LIMITED: _all(NOT_TAKEN),
    Outcome.SERVER_ERROR: _row(TRANSIENT, TRANSIENT, TRANSIENT, IN_DOUBT),
    Outcome.NOT_IMPLEMENTED: _all(REFUSED),
    Outcome.NEVER_SENT: _all(NOT_TAKEN),
    Outcome.CONNECT_TIMEOUT: _all(NOT_TAKEN),
    Outcome.NO_ANSWER: _row(TRANSIENT, TRANSIENT, TRANSIENT, IN_DOUBT),
    Outcome.HELD_BACK: _all(NOT_TAKEN),
    Outcome.UNREADABLE: _row(TRANSIENT, TRANSIENT, TRANSIENT, IN_DOUBT),
    Outcome.LOCAL: _all(REFUSED),
}
"""For every outcome and every group of endpoints, the answer."""

# Outcomes a call retries by itself, within its deadline, when the answer allows a resend.
RETRIED_IN_CALL = frozenset(
    {
        Outcome.NEVER_SENT,
        Outcome.CONNECT_TIMEOUT,
        Outcome.NO_ANSWER,
        Outcome.RATE_LIMITED,
        Outcome.SERVER_ERROR,
    }
)

_BY_STATUS = {
    400: Outcome.BAD_REQUEST,
    401: Outcome.UNAUTHENTICATED,
    402: Outcome.NO_LICENCE,
    403: Outcome.FORBIDDEN,
    404: Outcome.NOT_FOUND,
    409: Outcome.CONFLICT,
    415: Outcome.MEDIA_TYPE,
    429: Outcome.RATE_LIMITED,
    501: Outcome.NOT_IMPLEMENTED,
}


def group(endpoint: Endpoint) -> Group:
    """The table column of ``endpoint``."""
    if endpoint.auth is not Auth.BEARER:
        return Group.AUTH
    if endpoint.mutating:
        return Group.WRITE
    return Group.BATCH_READ if endpoint.name in BATCH_READS else Group.READ


def outcome(error: SectigoError | None) -> Outcome:
    """Name what happened; ``None`` means the call succeeded."""
    if error is None:
        return Outcome.OK
    if isinstance(error, HeldBack | DeadlineExceeded):
        return Outcome.HELD_BACK
    if isinstance(error, OutcomeUnknown):
        cause = error.__cause__
        return outcome(cause) if isinstance(cause, SectigoError) else Outcome.NO_ANSWER
    if isinstance(error, ConnectionFailed):
        if error.sent:
            return Outcome.NO_ANSWER
        return Outcome.CONNECT_TIMEOUT if error.reason == "ConnectTimeout" else Outcome.NEVER_SENT
    if isinstance(error, SectigoHTTPError):
        return _http_outcome(error.status)
    if isinstance(error, UnexpectedResponse):
        return Outcome.UNREADABLE
    return Outcome.LOCAL


def _http_outcome(status: int) -> Outcome:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 300 <= status < 400:
        return Outcome.REDIRECT
    if status >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.BAD_REQUEST


def classify(endpoint: Endpoint, error: SectigoError | None) -> Answer:
    """The answer for ``error`` raised by a call of ``endpoint`` (``None``: it succeeded)."""
    return TABLE[outcome(error)][group(endpoint)]


def retried_in_call(endpoint: Endpoint, error: BaseException) -> bool:
    """Whether the call itself sends ``endpoint`` again after ``error`` (within its deadline)."""
    if not isinstance(error, SectigoError):
        return False
    return outcome(error) in RETRIED_IN_CALL and classify(endpoint, error) in (
        Answer.NOT_TAKEN,
        Answer.TRANSIENT,
    )


def render_markdown() -> str:
    """The table as Markdown, one row per outcome and one column per group of endpoints."""
    groups = list(Group)
    lines = [
        "| outcome | " + " | ".join(g.value for g in groups) + " |",
        "|---" * (len(groups) + 1) + "|",
    ]
    for row_outcome, row in TABLE.items():
        cells = " | ".join(row[g].value for g in groups)
        lines.append(f"| {row_outcome.value} | {cells} |")
    return "\n".join(lines) + "\n"


def render_page() -> str:
    """docs/sectigo-answers.md: what each answer means, which endpoints share a column, the
    table. Generated (``make docs``) so that the page and the code cannot drift."""
    columns = {g: [e.name for e in endpoints.ALL if group(e) is g] for g in Group}
    lines = [
        "# What each Sectigo answer means",
        "",
        "Generated by `make docs` from `sectigo_svc/sectigo/answers.py`, the one table the client,",
        "its retry policy and the order state machine read; do not edit by hand. A test stages",
        "every row against the emulator (or `responses` where the emulator cannot).",
        "",
        "- **done**: Sectigo did it.",
        "- **not taken**: proved not processed; sent again when allowed (after `Retry-After`).",
        "- **in doubt**: an order may have been processed; it is looked up by batch name for the",
        "  quarantine window before anything is sent again.",
        "- **transient**: a read failed and nothing changed; asked again later.",
        "- **refused**: definitive for this content; not sent again.",
        "",
        "Columns:",
        "",
    ]
    lines += [f"- {g.value}: {', '.join(f'`{n}`' for n in columns[g])}" for g in Group]
    return "\n".join(lines) + "\n\n" + render_markdown()
