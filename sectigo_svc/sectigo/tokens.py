"""Sectigo's JWT pair and what its claims say about when to refresh or log in again.

The client cannot verify Sectigo's signature (the key is Sectigo's), so claims are read with PyJWT
without verification, only to schedule refreshes; Sectigo remains the judge, and a 401 overrides
whatever the claims say. Times are epoch seconds from an injected wall clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from sectigo_svc.sectigo.errors import InvalidTokens
from sectigo_svc.sectigo.models import Tokens

Clock = Callable[[], float]
"""Wall-clock time in epoch seconds (``time.time`` unless a test injects one)."""


class TokenState(enum.Enum):
    """FRESH: use it. STALE: still valid but within the refresh margin. EXPIRED: unusable."""

    FRESH = "fresh"
    STALE = "stale"
    EXPIRED = "expired"


@dataclass(frozen=True)
class TokenSet:
    """A token pair with the claims that schedule its renewal. Tokens never appear in ``repr``."""

    tokens: Tokens = field(repr=False)
    subject: str
    issued_at: float
    expires_at: float
    refresh_not_before: float
    refresh_expires_at: float

    @classmethod
    def parse(cls, tokens: Tokens) -> TokenSet:
        """Read the claims; both tokens need ``exp`` and ``iat`` (refresh may use ``nbf``)."""
        access = _claims(tokens.access_token, "access token")
        refresh = _claims(tokens.refresh_token, "refresh token")
        return cls(
            tokens=tokens,
            subject=str(access.get("sub", "")),
            issued_at=_time(access, "iat", "access token"),
            expires_at=_time(access, "exp", "access token"),
            refresh_not_before=_time(
                refresh, "nbf" if "nbf" in refresh else "iat", "refresh token"
            ),
            refresh_expires_at=_time(refresh, "exp", "refresh token"),
        )

    def state(self, now: float, margin: float) -> TokenState:
        """Where the access token stands at ``now`` with a refresh ``margin`` in seconds.

        The margin is capped at half the token's lifetime, so that short-lived tokens (tests,
        strict accounts) are used for a while instead of being refreshed on every call.
        """
        if now >= self.expires_at:
            return TokenState.EXPIRED
        lifetime = max(0.0, self.expires_at - self.issued_at)
        if now >= self.expires_at - min(margin, lifetime / 2):
            return TokenState.STALE
        return TokenState.FRESH

    def refreshable(self, now: float) -> bool:
        """Whether the refresh token may be used at ``now``."""
        return self.refresh_not_before <= now < self.refresh_expires_at


def _claims(token: str, what: str) -> Mapping[str, Any]:
    if not token:
        raise InvalidTokens(f"{what}: missing")
    try:
        claims: Mapping[str, Any] = jwt.decode(
            token, options={"verify_signature": False}, algorithms=None
        )
    except jwt.PyJWTError as exc:
        raise InvalidTokens(f"{what}: not a readable JWT ({type(exc).__name__})") from None
    return claims


def _time(claims: Mapping[str, Any], name: str, what: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTokens(f"{what}: the {name!r} claim is missing or not a number")
    return float(value)
