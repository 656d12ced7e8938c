"""Sectigo's JWT pair and what its claims say about when to refresh or log in again.

The client cannot verify Sectigo's signature (the key is Sectigo's), so claims are read with PyJWT
without verification, only to schedule refreshes; Sectigo remains the judge, and a 401 overrides
whatever the claims say.

Claims are on Sectigo's clock, which need not agree with ours: a service 15 minutes ahead would
see every token as expired. So claims only give durations (``exp - iat`` of the access token, and
the refresh token's ``nbf``/``exp`` counted from the same ``iat``), and expiry is judged on the
local monotonic clock from the moment the pair was received. Wall-clock times (epoch seconds)
appear only for display and for the token cache, which outlives the process.
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
    """A token pair, when it was received, and how long each token lasts from then.

    ``received_at`` is on the local monotonic clock, ``received_wall`` the matching wall-clock
    time; durations are in seconds from receipt. Tokens never appear in ``repr``.
    """

    tokens: Tokens = field(repr=False)
    subject: str
    lifetime: float
    refresh_opens: float
    refresh_lifetime: float
    received_at: float
    received_wall: float

    @classmethod
    def parse(cls, tokens: Tokens, received_at: float, received_wall: float) -> TokenSet:
        """Read the claims of a pair received now; both tokens need ``exp`` and ``iat`` (the
        refresh token may have ``nbf`` instead of ``iat``)."""
        access = _claims(tokens.access_token, "access token")
        refresh = _claims(tokens.refresh_token, "refresh token")
        issued = _time(access, "iat", "access token")
        opens = _time(refresh, "nbf" if "nbf" in refresh else "iat", "refresh token")
        return cls(
            tokens=tokens,
            subject=str(access.get("sub", "")),
            lifetime=max(0.0, _time(access, "exp", "access token") - issued),
            refresh_opens=opens - issued,
            refresh_lifetime=max(0.0, _time(refresh, "exp", "refresh token") - issued),
            received_at=received_at,
            received_wall=received_wall,
        )

    @classmethod
    def adopt(
        cls,
        tokens: Tokens,
        received_wall: float | None,
        written_wall: float,
        *,
        now: float,
        wall_now: float,
    ) -> TokenSet:
        """A pair read from the token cache, received at wall time ``received_wall``.

        The receipt is moved onto the monotonic clock (``now``) by its age on the wall clock,
        clamped so that it is neither in the future nor older than the longer of the two
        lifetimes (beyond that both tokens are expired anyway).
        A cache entry without a receipt time counts as received when it was written
        (``written_wall``, the file's mtime), or at the token's ``iat`` if that is earlier, so an
        old entry never looks fresher than its claims say.
        """
        parsed = cls.parse(tokens, now, wall_now)
        if received_wall is None:
            issued = _time(_claims(tokens.access_token, "access token"), "iat", "access token")
            received_wall = min(written_wall, issued)
        longest = max(parsed.lifetime, parsed.refresh_lifetime)
        age = min(max(wall_now - received_wall, 0.0), longest)
        return cls(
            tokens=tokens,
            subject=parsed.subject,
            lifetime=parsed.lifetime,
            refresh_opens=parsed.refresh_opens,
            refresh_lifetime=parsed.refresh_lifetime,
            received_at=now - age,
            received_wall=wall_now - age,
        )

    @property
    def expires(self) -> float:
        """When the access token expires, on the monotonic clock."""
        return self.received_at + self.lifetime

    @property
    def expires_at(self) -> float:
        """When the access token expires, in local epoch seconds."""
        return self.received_wall + self.lifetime

    @property
    def refresh_expires_at(self) -> float:
        """When the refresh token expires, in local epoch seconds."""
        return self.received_wall + self.refresh_lifetime

    def state(self, now: float, margin: float) -> TokenState:
        """Where the access token stands at monotonic ``now`` with a refresh ``margin``.

        The margin is capped at half the token's lifetime, so that short-lived tokens (tests,
        strict accounts) are used for a while instead of being refreshed on every call.
        """
        if now >= self.expires:
            return TokenState.EXPIRED
        if now >= self.expires - min(margin, self.lifetime / 2):
            return TokenState.STALE
        return TokenState.FRESH

    def refreshable(self, now: float) -> bool:
        """Whether the refresh token may be used at monotonic ``now``."""
        elapsed = now - self.received_at
        return self.refresh_opens <= elapsed < self.refresh_lifetime


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
