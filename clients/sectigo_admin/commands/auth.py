"""``sectigo auth``: log in or refresh, and inspect the token cache without the network.

The cache file is keyed by endpoint and username, so ``--cache`` and ``--debug`` need the username
(to find the file) but never the password, and they make no call: they work on a machine that
cannot reach Sectigo, which is when an operator most needs them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from sectigo_admin.context import Settings, open_cache_client, open_client
from sectigo_admin.errors import usage_error
from sectigo_admin.output import say
from sectigo_svc.sectigo import TokenState, TokenStatus


@click.command()
@click.option(
    "--cache", "-C", "show_cache", is_flag=True, help="Print the token cache file, if any."
)
@click.option(
    "--debug",
    "-d",
    is_flag=True,
    help="Say whether the cached tokens are valid, refreshable or expired (no network).",
)
@click.pass_obj
def auth(settings: Settings, show_cache: bool, debug: bool) -> None:
    """Log in (or refresh the cached tokens) and cache the result."""
    if show_cache:
        _show_cache(settings)
    if debug:
        _show_state(settings)
    if show_cache or debug:
        return
    status = open_client(settings).refresh()
    say(f"user authenticated and credentials cached (valid until {_when(status.expires_at)})")


def _show_cache(settings: Settings) -> None:
    """The account's cache file; without a username, every cache file in the directory."""
    if settings.username:
        path = open_cache_client(settings, settings.username).credential_store.cache_path
        if path is not None and path.is_file():
            say(str(path))
        else:
            say(f"no credentials cache file exists (it would be {path})")
        return
    directory = settings.cache_directory()
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not files:
        say(f"no credentials cache file exists in {directory}")
    for path in files:
        say(str(path))


def _show_state(settings: Settings) -> None:
    if not settings.username:
        raise usage_error(
            "auth --debug needs the account: set SECTIGO_USERNAME or pass --username/-u"
        )
    store = open_cache_client(settings, settings.username).credential_store
    # Reading the cache takes its lock file; with no cache there is nothing to lock or create.
    cached = store.cache_path is not None and store.cache_path.is_file()
    say(_describe(store.status() if cached else None, time.time()))


def _describe(status: TokenStatus | None, now: float) -> str:
    if status is None:
        return "no cached credentials: run 'sectigo auth' to log in"
    if status.state is not TokenState.EXPIRED:
        return (
            f"credentials are valid until {_when(status.expires_at)} "
            f"(refreshable until {_when(status.refresh_expires_at)})"
        )
    if now < status.refresh_expires_at:
        return f"credentials are refreshable until {_when(status.refresh_expires_at)}"
    return "credentials are expired or invalid"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
