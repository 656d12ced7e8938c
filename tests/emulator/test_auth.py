"""Login, refresh and bearer-token rules (docs/emulator.md: login, refresh, token rules)."""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from sectigo_svc.emulator import Emulator
from sectigo_svc.emulator.config import Account
from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Connect
from tests.emulator.helpers import (
    JSON_CT,
    PASSWORD,
    USERNAME,
    Api,
    Management,
    assert_error,
    assert_json_content_type,
    status_counts,
)

INVALID_CREDENTIALS = -16
NO_AUTHORITY = -17
VALIDATION = -10
UNSUPPORTED_MEDIA = -15


def claims(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def wait_past_exp(token: str, deadline: float = 5.0) -> None:
    """Sleep until the token's ``exp`` claim is in the past (bounded)."""
    exp = claims(token)["exp"]
    assert isinstance(exp, int | float)
    wait = float(exp) - time.time() + 0.3
    assert wait < deadline, f"token lives {wait:.1f}s more, expected a short lifetime"
    if wait > 0:
        time.sleep(wait)


def test_login_returns_a_token_pair(emulator: Emulator, connect: Connect) -> None:
    api = connect(emulator, login=False)
    response = api.login()
    assert response.status_code == 200, response.text
    assert_json_content_type(response)
    pair = response.json()
    assert set(pair) >= {"accessToken", "refreshToken"}
    access, refresh = claims(pair["accessToken"]), claims(pair["refreshToken"])
    for token in (access, refresh):
        assert isinstance(token["iat"], int)
        assert isinstance(token["exp"], int)
        assert token["exp"] > token["iat"]
    assert access["sub"] == "/account/7/user/10"
    assert pair["accessToken"] != pair["refreshToken"]
    # the default access lifetime is 600 s and refresh 7200 s
    assert abs(int(str(access["exp"])) - int(str(access["iat"])) - 600) <= 1
    assert abs(int(str(refresh["exp"])) - int(str(refresh["iat"])) - 7200) <= 1
    assert api.get("/api/v1/devices").status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [(USERNAME, "wrong-password"), ("nobody", PASSWORD), ("", "")],
    ids=["wrong-password", "unknown-user", "empty"],
)
def test_login_bad_credentials_401(
    emulator: Emulator, connect: Connect, username: str, password: str
) -> None:
    api = connect(emulator, login=False)
    assert_error(api.login(username, password), 401, INVALID_CREDENTIALS)
    assert api.access_token is None


def test_login_unauthorized_account_403(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    emulator = emulator_factory(
        unauthorized_users=(Account("viewer", "viewerpass", authorized=False),)
    )
    api = connect(emulator, login=False)
    assert_error(api.login("viewer", "viewerpass"), 403, NO_AUTHORITY)
    # the right account still works, the viewer with a wrong password is a plain 401
    assert api.login("viewer", "wrongpass").status_code == 401
    assert api.login().status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"[]", b'"tester"'],
    ids=["malformed", "empty", "array", "string"],
)
def test_login_bad_json_400(emulator: Emulator, connect: Connect, body: bytes) -> None:
    api = connect(emulator, login=False)
    response = api.request(
        "POST", "/auth/pwd", data=body, headers={"Content-Type": JSON_CT}, auth=False
    )
    assert_error(response, 400, VALIDATION)


def test_login_wrong_content_type_415(emulator: Emulator, connect: Connect) -> None:
    api = connect(emulator, login=False)
    body = f'{{"username": "{USERNAME}", "password": "{PASSWORD}"}}'
    response = api.request(
        "POST", "/auth/pwd", data=body, headers={"Content-Type": "text/plain"}, auth=False
    )
    assert_error(response, 415, UNSUPPORTED_MEDIA)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", JSON_CT]
)
def test_login_accepts_any_json_charset(
    emulator: Emulator, connect: Connect, content_type: str
) -> None:
    api = connect(emulator, login=False)
    body = f'{{"username": "{USERNAME}", "password": "{PASSWORD}"}}'
    response = api.request(
        "POST", "/auth/pwd", data=body, headers={"Content-Type": content_type}, auth=False
    )
    assert response.status_code == 200, response.text


def test_refresh_with_raw_token_gives_a_new_pair(api: Api) -> None:
    response = api.refresh()
    assert response.status_code == 200, response.text
    assert_json_content_type(response)
    pair = response.json()
    assert set(pair) >= {"accessToken", "refreshToken"}
    assert claims(pair["accessToken"])["sub"] == "/account/7/user/10"
    api.access_token = pair["accessToken"]
    assert api.get("/api/v1/authorities/allowed").status_code == 200


def test_refresh_rejects_access_token(api: Api) -> None:
    assert_error(api.refresh(api.access_token), 401, INVALID_CREDENTIALS)


@pytest.mark.parametrize(
    "token",
    ["garbage", "", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
    ids=["garbage", "empty", "three-parts", "alg-none"],
)
def test_refresh_rejects_garbage(api: Api, token: str) -> None:
    assert_error(api.refresh(token), 401, INVALID_CREDENTIALS)


def test_refresh_rejects_quoted_json_token(api: Api) -> None:
    """The body is the raw token; a JSON string is not a refresh token."""
    assert api.refresh_token is not None
    assert_error(api.refresh(f'"{api.refresh_token}"'), 401, INVALID_CREDENTIALS)


def test_refresh_rejects_foreign_token_after_key_rotation(api: Api, mgmt: Management) -> None:
    refresh = api.refresh_token
    mgmt.rotate_signing_key()
    assert_error(api.refresh(refresh), 401, INVALID_CREDENTIALS)
    # the access token is foreign too
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)
    # a fresh login works again
    assert api.login().status_code == 200
    assert api.get("/api/v1/devices").status_code == 200


def test_refresh_rejects_expired_refresh_token(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    emulator = emulator_factory(refresh_lifetime=1)
    api = connect(emulator)
    assert api.refresh_token is not None
    wait_past_exp(api.refresh_token)
    assert_error(api.refresh(), 401, INVALID_CREDENTIALS)


def test_refresh_lifetime_patched_at_run_time(api: Api, mgmt: Management) -> None:
    mgmt.patch_settings(refresh_lifetime=1)
    assert api.login().status_code == 200
    assert api.refresh_token is not None
    refresh = claims(api.refresh_token)
    assert int(str(refresh["exp"])) - int(str(refresh["iat"])) <= 2
    wait_past_exp(api.refresh_token)
    assert_error(api.refresh(), 401, INVALID_CREDENTIALS)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer ", "Token abc", "Basic dGVzdGVyOnN1cGVyc2VjcmV0c3F1aXJyZWw=", "x"],
    ids=["missing", "bearer-only", "bearer-empty", "token-scheme", "basic", "junk"],
)
def test_missing_or_malformed_bearer_401(emulator: Emulator, authorization: str | None) -> None:
    headers = {"Accept": JSON_CT}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = requests.get(f"{emulator.api_url}/api/v1/devices", headers=headers, timeout=5)
    assert_error(response, 401, INVALID_CREDENTIALS)


def test_garbage_bearer_401(api: Api) -> None:
    api.access_token = "not.a.jwt"
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)


def test_refresh_token_is_not_a_bearer_token(api: Api) -> None:
    api.access_token = api.refresh_token
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)


def test_tampered_bearer_401(api: Api) -> None:
    assert api.access_token is not None
    header, payload, signature = api.access_token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    api.access_token = f"{header}.{payload}.{flipped}"
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)


def test_expired_access_token_401_start_up_setting(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    emulator = emulator_factory(access_lifetime=1)
    api = connect(emulator)
    assert api.access_token is not None
    access = claims(api.access_token)
    assert int(str(access["exp"])) - int(str(access["iat"])) <= 2
    wait_past_exp(api.access_token)
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)
    # the refresh token still works and gives a usable access token
    response = api.refresh()
    assert response.status_code == 200, response.text
    api.access_token = response.json()["accessToken"]
    assert api.get("/api/v1/devices").status_code == 200


def test_access_lifetime_patched_at_run_time(api: Api, mgmt: Management) -> None:
    old_token = api.access_token
    mgmt.patch_settings(access_lifetime=1)
    assert mgmt.faults()["settings"]["access_lifetime"] == 1
    assert api.login().status_code == 200
    assert api.access_token is not None
    wait_past_exp(api.access_token)
    assert_error(api.get("/api/v1/devices"), 401, INVALID_CREDENTIALS)
    # tokens issued before the change keep their old (600 s) lifetime
    api.access_token = old_token
    assert api.get("/api/v1/devices").status_code == 200


def test_stats_count_logins_and_refreshes(api: Api, mgmt: Management) -> None:
    before = mgmt.stats()
    assert api.login().status_code == 200
    assert api.login().status_code == 200
    assert api.refresh().status_code == 200
    middle = mgmt.stats()
    assert middle["logins"] - before["logins"] == 2
    assert middle["refreshes"] - before["refreshes"] == 1
    assert api.login(USERNAME, "nope").status_code == 401
    after = mgmt.stats()
    assert after["requests"]["login"] - before["requests"].get("login", 0) == 3
    assert after["requests"]["refresh"] - before["requests"].get("refresh", 0) == 1
    assert (
        status_counts(after, "login").get(401, 0) - status_counts(before, "login").get(401, 0) == 1
    )
    assert status_counts(after, "login")[200] - status_counts(before, "login").get(200, 0) == 2


def test_password_changed_at_run_time(emulator: Emulator, connect: Connect) -> None:
    """The service's password is wrong for a while, then right again; neither side restarts."""
    api = connect(emulator, login=False)
    mgmt = Management(emulator.management_url)
    mgmt.patch_settings(password="rotated-password")
    assert_error(api.login(), 401, INVALID_CREDENTIALS)
    assert api.login(USERNAME, "rotated-password").status_code == 200
    mgmt.patch_settings(password=PASSWORD)
    assert_error(api.login(USERNAME, "rotated-password"), 401, INVALID_CREDENTIALS)
    assert api.login().status_code == 200
    stats = mgmt.stats()
    assert (stats["logins"], stats["login_failures"]) == (2, 2)


def test_password_change_leaves_tokens_and_other_accounts_alone(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    emulator = emulator_factory(unauthorized_users=(Account("viewer", "viewer-password", False),))
    api = connect(emulator)
    mgmt = Management(emulator.management_url)
    mgmt.patch_settings(password="rotated-password")
    assert api.get("/api/v1/devices").status_code == 200
    assert api.refresh().status_code == 200
    assert_error(api.login("viewer", "viewer-password"), 403, NO_AUTHORITY)
    assert mgmt.stats()["login_failures"] == 1


def test_password_is_never_shown(emulator: Emulator) -> None:
    secret = "never-echo-this-one"
    mgmt = Management(emulator.management_url)
    reply = mgmt.patch_settings(password=secret)
    assert "password" not in reply.json()["settings"]
    assert secret not in reply.text
    assert PASSWORD not in reply.text
    shown = requests.get(f"{emulator.management_url}/faults", timeout=10)
    assert "password" not in shown.json()["settings"]
    assert secret not in shown.text
    assert secret not in repr(emulator.settings.get())
    assert secret not in requests.get(f"{emulator.management_url}/stats", timeout=10).text


@pytest.mark.parametrize("value", ["", 42, None])
def test_bad_password_setting_refused(emulator: Emulator, connect: Connect, value: object) -> None:
    response = requests.patch(
        f"{emulator.management_url}/settings", json={"password": value}, timeout=10
    )
    assert response.status_code == 400, response.text
    assert "password" in response.json()["error"]
    assert connect(emulator, login=False).login().status_code == 200


def test_failed_logins_counted_beside_logins(emulator: Emulator, connect: Connect) -> None:
    api = connect(emulator, login=False)
    mgmt = Management(emulator.management_url)
    for _ in range(3):
        assert_error(api.login(USERNAME, "wrong-password"), 401, INVALID_CREDENTIALS)
    assert api.login().status_code == 200
    malformed = api.request("POST", "/auth/pwd", json_body=["not", "an", "object"], auth=False)
    assert malformed.status_code == 400
    stats = mgmt.stats()
    assert (stats["logins"], stats["login_failures"]) == (1, 3)
