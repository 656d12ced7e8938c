"""``sectigo auth``: login, refresh with a fallback to login, and the offline cache views."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import jwt
import structlog

from sectigo_svc.sectigo.models import Tokens
from sectigo_svc.sectigo.token_cache import TokenCache
from tests.admin.helpers import PASSWORD, USERNAME, Cli, Management, closed_port_url


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def seed_cache(directory: Path, endpoint: str, access_exp: int, refresh_exp: int) -> None:
    """Cached tokens as a previous run would have left them (the claims are all that is read)."""
    now = int(time.time())

    def token(exp: int) -> str:
        return jwt.encode({"sub": "/account/7/user/10", "iat": now - 7200, "exp": exp}, "k" * 32)

    cache = TokenCache(directory, endpoint, USERNAME, lock_timeout=5, logger=structlog.get_logger())
    cache.save(Tokens(token(access_exp), token(refresh_exp)))


def test_auth_logs_in_then_refreshes(run: Cli, management: Management) -> None:
    assert run("auth").ok().stdout.startswith("user authenticated and credentials cached")
    assert run("auth").ok().stdout.startswith("user authenticated and credentials cached")
    stats = management.stats()
    assert (stats["logins"], stats["refreshes"]) == (1, 1)


def test_auth_falls_back_to_login_when_refresh_fails(run: Cli, management: Management) -> None:
    run("auth").ok()
    management.rotate_signing_key()  # the cached refresh token is now foreign
    assert run("auth").ok().stdout.startswith("user authenticated")
    stats = management.stats()
    assert stats["logins"] == 2
    assert "401" in stats["responses"]["refresh"]


def test_cache_path_lives_in_the_cache_dir(run: Cli, tmp_path: Path) -> None:
    assert run("auth", "--cache").ok().stdout.startswith("no credentials cache file exists (it")
    run("auth").ok()
    path = Path(run("auth", "--cache").ok().stdout.strip())
    assert path.parent == tmp_path / "cache" / "tokens"
    assert path.stat().st_mode & 0o777 == 0o600
    other = tmp_path / "elsewhere"
    run("--cache-dir", str(other), "auth").ok()
    assert Path(run("--cache-dir", str(other), "auth", "--cache").ok().stdout.strip()).parent == (
        other
    )


def test_cache_default_follows_xdg_cache_home(run: Cli, tmp_path: Path) -> None:
    run("auth", env={"SECTIGO_CACHE_DIR": None}).ok()
    path = Path(run("auth", "--cache", env={"SECTIGO_CACHE_DIR": None}).ok().stdout.strip())
    assert path.parent == tmp_path / "cache" / "sectigo-svc" / "tokens"


def test_cache_views_need_no_password_and_no_network(run: Cli, tmp_path: Path) -> None:
    offline = {"SECTIGO_ENDPOINT": closed_port_url(), "SECTIGO_PASSWORD": None}
    assert "no credentials cache file exists" in run("auth", "--cache", env=offline).ok().stdout
    assert run("auth", "--debug", env=offline).ok().stdout.startswith("no cached credentials")
    nobody = offline | {"SECTIGO_USERNAME": None}
    listing = run("auth", "--cache", env=nobody).ok().stdout
    assert listing.startswith("no credentials cache file exists in ")
    assert "needs the account" in run("auth", "--debug", env=nobody).failed(2)
    assert not (tmp_path / "cache" / "tokens").exists()  # looking created nothing


def test_cache_listing_without_a_username(run: Cli) -> None:
    run("auth").ok()
    path = run("auth", "--cache").ok().stdout.strip()
    assert run("auth", "--cache", env={"SECTIGO_USERNAME": None}).ok().stdout.strip() == path


def test_debug_reports_each_token_state_offline(run: Cli, tmp_path: Path) -> None:
    endpoint = closed_port_url()
    env = {"SECTIGO_ENDPOINT": endpoint, "SECTIGO_PASSWORD": None}
    cache = tmp_path / "cache" / "tokens"
    now = int(time.time())

    seed_cache(cache, endpoint, now + 600, now + 3600)
    assert run("auth", "--debug", env=env).ok().stdout == (
        f"credentials are valid until {iso(now + 600)} (refreshable until {iso(now + 3600)})\n"
    )
    seed_cache(cache, endpoint, now - 60, now + 3600)
    assert run("auth", "--debug", env=env).ok().stdout == (
        f"credentials are refreshable until {iso(now + 3600)}\n"
    )
    seed_cache(cache, endpoint, now - 60, now - 30)
    assert run("auth", "--debug", env=env).ok().stdout == "credentials are expired or invalid\n"


def test_auth_needs_credentials(run: Cli) -> None:
    line = run("auth", env={"SECTIGO_PASSWORD": None}).failed(1)
    assert "password missing" in line


def test_password_on_the_command_line_is_warned_about(run: Cli) -> None:
    outcome = run("-u", USERNAME, "-p", PASSWORD, "licenses", env={"SECTIGO_PASSWORD": None}).ok()
    assert outcome.stderr == (
        "sectigo: warning: a password on the command line is visible to other users; "
        "use SECTIGO_PASSWORD\n"
    )
    assert PASSWORD not in outcome.stdout + outcome.stderr
    assert run("licenses").ok().stderr == ""
