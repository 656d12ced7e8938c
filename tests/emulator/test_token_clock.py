"""Tokens and credentials are judged on arrival, on the emulator's own clock (wall + offset)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import jwt
import requests

from tests.emulator.helpers import TIMEOUT, Api, Management, assert_error

INVALID_CREDENTIALS = -16


def claims(token: str | None) -> dict[str, int]:
    assert token is not None
    decoded: dict[str, int] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def arrived(mgmt: Management, route: str, deadline: float = 3.0) -> None:
    """Wait until the journal shows a request on ``route`` (it has reached the emulator)."""
    end = time.monotonic() + deadline
    while not mgmt.journal(route):
        assert time.monotonic() < end, f"no {route} request arrived"
        time.sleep(0.02)
    time.sleep(0.2)  # admission follows the journal entry at once; leave it ample time


def during_latency(
    mgmt: Management,
    route: str,
    call: Callable[[], requests.Response],
    change: Callable[[], object],
) -> requests.Response:
    """Send ``call`` delayed by a latency rule, and ``change`` the emulator while it waits."""
    mgmt.add_faults({"kind": "latency", "latency_ms": 1200, "routes": [route], "count": 1})
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[requests.Response] = pool.submit(call)
        arrived(mgmt, route)
        assert not pending.done()
        change()
        return pending.result(timeout=10)


def test_access_token_valid_on_arrival_survives_a_latency_delay(api: Api, mgmt: Management) -> None:
    """During the delay the emulator's clock jumps past the token's expiry: still accepted."""
    response = during_latency(
        mgmt,
        "devices",
        lambda: api.get("/api/v1/devices"),
        lambda: mgmt.patch_settings(clock_offset=700),
    )
    assert response.status_code == 200, response.text
    # the same token arriving now is expired on the emulator's clock
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)


def test_refresh_token_valid_on_arrival_survives_a_latency_delay(
    api: Api, mgmt: Management
) -> None:
    token = api.refresh_token
    response = during_latency(
        mgmt, "refresh", lambda: api.refresh(token), lambda: mgmt.patch_settings(clock_offset=7300)
    )
    assert response.status_code == 200, response.text
    assert_error(api.refresh(token), 401, INVALID_CREDENTIALS)


def test_credentials_are_judged_on_arrival(api: Api, mgmt: Management) -> None:
    """A password changed while a login waits out its delay does not refuse that login."""
    response = during_latency(
        mgmt, "login", api.login, lambda: mgmt.patch_settings(password="another-password")
    )
    assert response.status_code == 200, response.text
    assert_error(api.login(), 401, INVALID_CREDENTIALS)


def test_expired_token_is_refused_on_arrival_even_when_slow(api: Api, mgmt: Management) -> None:
    """The control: a token already expired when it arrives gets 401, delay or not."""
    mgmt.patch_settings(clock_offset=700)
    mgmt.add_faults({"kind": "slow", "latency_ms": 200, "routes": ["devices"]})
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)


def test_negative_clock_offset_mints_tokens_in_the_past(api: Api, mgmt: Management) -> None:
    """Offset -900: Sectigo's clock is 15 minutes behind the client's."""
    minted_before = api.access_token
    mgmt.patch_settings(clock_offset=-900)
    assert mgmt.faults()["settings"]["clock_offset"] == -900
    # a token minted at offset 0 is not yet valid on a clock 15 minutes behind
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)

    assert api.login().status_code == 200
    now = time.time()
    token = claims(api.access_token)
    assert abs(token["iat"] - (now - 900)) <= 5, (token, now)
    assert token["nbf"] == token["iat"]
    assert token["exp"] - token["iat"] == 600
    assert abs(claims(api.refresh_token)["iat"] - (now - 900)) <= 5
    assert api.get("/api/v1/devices").status_code == 200
    assert api.refresh().status_code == 200

    mgmt.patch_settings(clock_offset=0)
    api.access_token = minted_before
    assert api.get("/api/v1/devices").status_code == 200


def test_positive_clock_offset_expires_tokens_early(api: Api, mgmt: Management) -> None:
    mgmt.patch_settings(clock_offset=601)
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)
    assert api.login().status_code == 200
    assert abs(claims(api.access_token)["iat"] - (time.time() + 601)) <= 5
    assert api.get("/api/v1/devices").status_code == 200


def test_bad_clock_offset_refused(mgmt: Management) -> None:
    for value in ("soon", True, None):
        response = requests.patch(
            f"{mgmt.base_url}/settings", json={"clock_offset": value}, timeout=TIMEOUT
        )
        assert response.status_code == 400, (value, response.text)
        assert "clock_offset" in response.json()["error"]
    assert mgmt.faults()["settings"]["clock_offset"] == 0
