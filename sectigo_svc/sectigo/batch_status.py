"""Batch states, from the constants of batch detail and from the prose of the text-status endpoint.

Sectigo documents some states, its UI shows others, and real replies have surprised clients before
(``COLLECTED``). A state the client does not know becomes :attr:`BatchStatus.UNKNOWN` with the raw
text kept beside it, so callers can report it and keep polling instead of crashing.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_NOT_ACCEPTABLE = re.compile(
    r"not\s+acceptable\.?\s*(?:status\s*:\s*(?P<detail>.*))?$", re.I | re.S
)


class BatchStatus(enum.StrEnum):
    """The batch states the client understands; ``UNKNOWN`` stands for any other string."""

    CREATED = "CREATED"
    PROCESSING = "PROCESSING"
    READY_FOR_DOWNLOAD = "READY_FOR_DOWNLOAD"
    COLLECTED = "COLLECTED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    BROKEN = "BROKEN"
    REMOVED_AFTER_EXPIRATION = "REMOVED_AFTER_EXPIRATION"
    REVOKED = "REVOKED"
    UNKNOWN = "UNKNOWN"


# Spellings seen in Sectigo's UI guide that name a state the API also has.
_ALIASES = {"ZIP_REMOVED_AFTER_EXPIRATION": BatchStatus.REMOVED_AFTER_EXPIRATION}


def normalise_status(raw: str) -> BatchStatus:
    """Map a constant (``READY_FOR_DOWNLOAD``) or prose (``Ready for download``) to a state.

    Whitespace runs become ``_`` after trimming and upper-casing; anything still unrecognised is
    :attr:`BatchStatus.UNKNOWN` (an empty string too).
    """
    key = "_".join(raw.strip().upper().split())
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        status = BatchStatus(key)
    except ValueError:
        return BatchStatus.UNKNOWN
    return status


@dataclass(frozen=True)
class StatusText:
    """The text-status endpoint's answer: the state, the raw text, and any detail it carried.

    ``Not Acceptable. Status: Rejected`` reads as ``NOT_ACCEPTABLE`` with detail ``Rejected``.
    """

    status: BatchStatus
    raw: str
    detail: str = ""


def parse_status_text(raw: str) -> StatusText:
    """Read the prose or constant the text-status endpoint returns."""
    text = raw.strip()
    match = _NOT_ACCEPTABLE.match(text)
    if match:
        return StatusText(BatchStatus.NOT_ACCEPTABLE, raw, (match.group("detail") or "").strip())
    return StatusText(normalise_status(text), raw)
