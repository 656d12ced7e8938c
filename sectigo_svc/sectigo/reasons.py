"""RFC 5280 revocation reasons, parsed the way operators type them.

Input is lower-cased and stripped of all whitespace (spaces, tabs, newlines), so
``"Key Compromise"`` and ``"keycompromise"`` are the same; the empty string means unspecified. Names
follow section 6.4 of the API reference; the decimal code is accepted too. Code 7 is unused in RFC
5280 and is refused (the Go CLI would send it), and so is anything unknown, with a message that
lists what is accepted.
"""

from __future__ import annotations

import enum

from sectigo_svc.sectigo.errors import InvalidReason

UNUSED_CODE = 7


class RevocationReason(enum.IntEnum):
    """The CRLReason codes Sectigo accepts for revocation (7 does not exist)."""

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    CA_COMPROMISE = 2
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4
    CESSATION_OF_OPERATION = 5
    CERTIFICATE_HOLD = 6
    REMOVE_FROM_CRL = 8
    PRIVILEGE_WITHDRAWN = 9
    AA_COMPROMISE = 10

    @property
    def label(self) -> str:
        """The name as RFC 5280 and the Go client print it, e.g. ``key compromise``."""
        return self.name.lower().replace("_", " ")


def parse_reason(text: str) -> RevocationReason:
    """Read a reason name or code; raise :class:`InvalidReason` if it is not one to send."""
    key = "".join(text.split()).lower()
    if not key:
        return RevocationReason.UNSPECIFIED
    if key == "value7isnotused" or (key.isdigit() and int(key) == UNUSED_CODE):
        raise InvalidReason("revocation reason 7 is not used by RFC 5280 and cannot be sent")
    if key.isdigit() and int(key) in RevocationReason._value2member_map_:
        return RevocationReason(int(key))
    for reason in RevocationReason:
        if key == reason.name.replace("_", "").lower():
            return reason
    accepted = ", ".join(reason.label for reason in RevocationReason)
    raise InvalidReason(f"unknown revocation reason {key[:40]!r}; expected one of: {accepted}")
