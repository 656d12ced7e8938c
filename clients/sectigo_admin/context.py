"""The global options, and the Sectigo client built from them only when a command needs one.

``auth --cache`` and ``auth --debug`` look at the local token cache and must work without a password
or a network, so nothing is built while the options are parsed: a command asks for a client (which
demands credentials) or for a cache-only client (which needs just the username to find the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import structlog
from structlog.typing import EventDict, WrappedLogger

from sectigo_svc import __version__
from sectigo_svc.sectigo import (
    Credentials,
    Environment,
    Secret,
    SectigoClient,
    SectigoConfig,
)
from sectigo_svc.sectigo.errors import ConfigurationError
from sectigo_svc.sectigo.guard import is_loopback
from sectigo_svc.sectigo.token_cache import default_cache_dir

# An operator at a terminal would rather rerun a command than wait out four attempts.
CLI_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Settings:
    """What the global options said. The password stays a :class:`Secret` until it is sent."""

    username: str | None
    password: Secret | None
    endpoint: str
    environment: Environment
    cache_dir: Path | None
    verbose: bool

    def config(self) -> SectigoConfig:
        return SectigoConfig(
            endpoint=self.endpoint,
            environment=self.environment,
            token_cache_dir=self.cache_dir,
            max_attempts=CLI_MAX_ATTEMPTS,
            user_agent=f"sectigo-admin/{__version__}",
        )

    def cache_directory(self) -> Path:
        """Where token caches live: ``--cache-dir``, else the platform's user cache directory."""
        return self.cache_dir if self.cache_dir is not None else default_cache_dir()


def open_client(settings: Settings) -> SectigoClient:
    """A client with the account's credentials, closed when the running command ends."""
    credentials = Credentials.load(settings.username, settings.password)
    return _attach(settings, credentials)


def open_cache_client(settings: Settings, username: str) -> SectigoClient:
    """A client that only reads the token cache: it holds no password, so it cannot log in."""
    return _attach(settings, Credentials(username, Secret("")))


def _attach(settings: Settings, credentials: Credentials) -> SectigoClient:
    client = SectigoClient.build(settings.config(), credentials, logger=_logger(settings.verbose))
    return click.get_current_context().with_resource(client)


def _logger(verbose: bool) -> Any:
    """The configured structlog logger with ``--verbose``; otherwise one that drops every event.

    Passing a dropping logger (instead of reconfiguring structlog) keeps a quiet run from touching
    process-wide logging, which matters when the command runs inside another program or a test.
    """
    if verbose:
        return None
    return structlog.wrap_logger(structlog.ReturnLogger(), processors=[_drop])


def _drop(_: WrappedLogger, __: str, ___: EventDict) -> EventDict:
    raise structlog.DropEvent


def default_environment(endpoint: str) -> Environment:
    """``testing`` for a loopback endpoint (a local emulator), ``production`` for anything else.

    Only a loopback host gets the lenient default: every other endpoint must name its environment,
    so a typo never turns a paid account into a test target or the reverse.
    """
    try:
        host = urlsplit(endpoint).hostname or ""
    except ValueError:
        return Environment.PRODUCTION
    return Environment.TESTING if is_loopback(host) else Environment.PRODUCTION


class EnvironmentType(click.ParamType[Environment]):
    """An environment name as the client spells it (trimmed, any case)."""

    name = "environment"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Environment:
        if isinstance(value, Environment):
            return value
        try:
            return Environment.parse(str(value))
        except ConfigurationError as exc:
            self.fail(str(exc), param, ctx)
