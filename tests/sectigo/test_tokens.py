"""Token claims and states under an injected clock."""

from __future__ import annotations

import pytest

from sectigo_svc.sectigo.errors import InvalidTokens
from sectigo_svc.sectigo.models import Tokens
from sectigo_svc.sectigo.tokens import TokenSet, TokenState
from tests.sectigo.fakes import FakeClock, make_jwt, make_tokens


def test_fresh_then_stale_within_the_margin_then_expired() -> None:
    clock = FakeClock()
    tokens = TokenSet.parse(make_tokens(clock(), access_lifetime=600), clock(), clock())
    assert tokens.state(clock(), margin=60) is TokenState.FRESH
    clock.advance(539)
    assert tokens.state(clock(), margin=60) is TokenState.FRESH
    clock.advance(1)
    assert tokens.state(clock(), margin=60) is TokenState.STALE
    clock.advance(60)
    assert tokens.state(clock(), margin=60) is TokenState.EXPIRED


def test_margin_is_capped_at_half_the_lifetime_for_short_tokens() -> None:
    clock = FakeClock()
    tokens = TokenSet.parse(make_tokens(clock(), access_lifetime=10), clock(), clock())
    assert tokens.state(clock() + 4, margin=60) is TokenState.FRESH
    assert tokens.state(clock() + 5, margin=60) is TokenState.STALE


def test_refresh_window_uses_nbf_else_iat() -> None:
    now = 1_800_000_000.0
    access = make_jwt(iat=now, exp=now + 600)
    with_nbf = TokenSet.parse(
        Tokens(access, make_jwt(iat=now, exp=now + 7200, nbf=now + 100)), now, now
    )
    assert not with_nbf.refreshable(now + 99)
    assert with_nbf.refreshable(now + 100)
    assert not with_nbf.refreshable(now + 7200)
    without = TokenSet.parse(Tokens(access, make_jwt(iat=now, exp=now + 7200)), now, now)
    assert without.refreshable(now)
    assert without.subject == "/account/7/user/10"


@pytest.mark.parametrize(
    ("access", "refresh", "problem"),
    [
        ("", "x", "access token: missing"),
        ("not-a-jwt", "x", "access token: not a readable JWT"),
        (make_jwt(iat=1, exp=2), "", "refresh token: missing"),
    ],
)
def test_unreadable_tokens_are_refused(access: str, refresh: str, problem: str) -> None:
    with pytest.raises(InvalidTokens, match=problem):
        TokenSet.parse(Tokens(access, refresh), 0.0, 0.0)


def test_missing_claims_are_refused_without_echoing_the_token() -> None:
    import jwt

    no_exp = jwt.encode({"iat": 1}, "k" * 32, algorithm="HS256")
    with pytest.raises(InvalidTokens, match="'exp' claim") as caught:
        TokenSet.parse(Tokens(no_exp, no_exp), 0.0, 0.0)
    assert no_exp not in str(caught.value)
    pair = make_tokens(1.0)
    assert pair.access_token not in repr(TokenSet.parse(pair, 0.0, 0.0))
