"""The plumbing of ``sectigo-ca``: global options, the client made from them, how results and
errors are printed, and the one table from errors to exit codes (documented in :mod:`.cli`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from sectigo_client import cli_output as show
from sectigo_client.channel import ENV_CACERT, ENV_CERT, ENV_KEY, ENV_TARGET, ConnectionSettings
from sectigo_client.client import CertificateAuthorityClient
from sectigo_client.errors import (
    CertificateAuthorityError,
    ConfigurationError,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DENIED = 3
EXIT_UNAVAILABLE = 4
EXIT_NOT_FOUND = 5
_EXIT_CODES: tuple[tuple[type[CertificateAuthorityError], int], ...] = (
    (ConfigurationError, EXIT_USAGE),
    (InvalidArgument, EXIT_USAGE),
    (PermissionDenied, EXIT_DENIED),
    (Unauthenticated, EXIT_DENIED),
    (Unavailable, EXIT_UNAVAILABLE),
    (DeadlineExceeded, EXIT_UNAVAILABLE),
    (NotFound, EXIT_NOT_FOUND),
)

T = TypeVar("T")


def exit_code(exc: CertificateAuthorityError) -> int:
    return next((code for kind, code in _EXIT_CODES if isinstance(exc, kind)), EXIT_FAILURE)


@dataclass
class Session:
    """The global options, and the client made from them on first use."""

    target: str | None
    cert: str | None
    key: str | None
    ca: str | None
    timeout: float
    json: bool
    _client: CertificateAuthorityClient | None = field(default=None, repr=False)

    def client(self) -> CertificateAuthorityClient:
        if self._client is None:
            given = (
                ("--target", ENV_TARGET, self.target),
                ("--cert", ENV_CERT, self.cert),
                ("--key", ENV_KEY, self.key),
                ("--ca", ENV_CACERT, self.ca),
            )
            missing = [f"{flag} (or {env})" for flag, env, value in given if not value]
            if missing:
                raise click.UsageError(f"missing {', '.join(missing)}")
            settings = ConnectionSettings.from_files(
                self.target or "", self.cert or "", self.key or "", self.ca or ""
            )
            self._client = CertificateAuthorityClient.connect(settings, timeout=self.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def emit(self, value: T, human: Callable[[T], str], json_value: object = None) -> None:
        """Print a result: ``json_value`` (default ``value``) as JSON, or ``human(value)``."""
        if self.json:
            click.echo(show.to_json(value if json_value is None else json_value))
        else:
            click.echo(human(value))


class CommandGroup(click.Group):
    """Turns the client's errors into one-line messages and exit codes, in one place: its own
    errors by :func:`exit_code`, files that cannot be written and values the client refuses
    (ValueError) as other failures (exit 1), never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CertificateAuthorityError as exc:
            as_json = isinstance(ctx.obj, Session) and ctx.obj.json
            click.echo(show.error_json(exc) if as_json else f"Error: {show.error(exc)}", err=True)
            ctx.exit(exit_code(exc))
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or 'file'}: {exc.strerror}") from exc
        except ValueError as exc:  # e.g. a key that does not belong to the downloaded certificate
            raise click.ClickException(str(exc)) from exc


pass_session = click.make_pass_decorator(Session)
