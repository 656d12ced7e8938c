"""Access and refresh tokens: HS512 JWTs shaped like Sectigo's, checked strictly.

The signing key is random per start (and on demand, through the management API), so a restart
makes every token a client holds foreign, exactly as the real service's key rotation would.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from sectigo_svc.emulator.catalog import ISSUER, SUBJECT

ACCESS_SCOPE = "ROLE_USER"
REFRESH_SCOPE = "ROLE_REFRESH_TOKEN"
_ALGORITHM = "HS512"


class TokenRejected(Exception):
    """A token that must not be honoured; the message is safe to send back."""


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str

    def to_json(self) -> dict[str, str]:
        return {"accessToken": self.access, "refreshToken": self.refresh}


class TokenIssuer:
    """Mints and verifies token pairs; lifetimes are read at mint time from the live settings."""

    def __init__(
        self, lifetimes: Callable[[], tuple[int, int]], clock: Callable[[], float]
    ) -> None:
        self._lifetimes = lifetimes
        self._clock = clock
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(64)

    def rotate(self) -> None:
        with self._lock:
            self._key = secrets.token_bytes(64)

    def _signing_key(self) -> bytes:
        with self._lock:
            return self._key

    def mint(self) -> TokenPair:
        access_lifetime, refresh_lifetime = self._lifetimes()
        now = int(self._clock())
        jti = str(uuid.uuid4())
        common = {"sub": SUBJECT, "iss": ISSUER, "iat": now, "nbf": now}
        access = {
            **common,
            "exp": now + access_lifetime,
            "scopes": [ACCESS_SCOPE],
            "first-login": False,
        }
        refresh = {**common, "exp": now + refresh_lifetime, "scopes": [REFRESH_SCOPE], "jti": jti}
        key = self._signing_key()
        return TokenPair(
            jwt.encode(access, key, algorithm=_ALGORITHM),
            jwt.encode(refresh, key, algorithm=_ALGORITHM),
        )

    def verify(self, token: str, scope: str) -> dict[str, Any]:
        """The token's claims if it is ours, in its window and of the given scope."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._signing_key(),
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                # Time claims are checked below against the emulator's own clock, without leeway.
                options={
                    "require": ["exp", "iat", "nbf", "sub"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected("invalid or expired token") from exc
        now = self._clock()
        if not claims["nbf"] <= now < claims["exp"]:
            raise TokenRejected("invalid or expired token")
        if scope not in claims.get("scopes", []):
            raise TokenRejected("token has the wrong scope for this call")
        return claims


def wall_clock() -> float:
    return time.time()
