"""Every failure of a command becomes one line on stderr and an exit status, decided here only.

Operators read these lines, and scripts read the status: 2 for what the command line alone gets
wrong (as click does for usage errors), 1 for what Sectigo, the network, the account or the local
files refuse. The client's messages already carry the wire facts (endpoint, method, HTTP status,
Sectigo's errorCode) and never a password or token, so they are shown as they are, with a hint
where the fix is not obvious. Nothing reaches the user as a traceback.
"""

from __future__ import annotations

from typing import IO, Any

import click

from sectigo_svc.sectigo.errors import (
    ConfigurationError,
    ConnectionFailed,
    CredentialsError,
    EnvironmentGuardError,
    InvalidCredentials,
    InvalidRequest,
    OutcomeUnknown,
    SectigoError,
)

PREFIX = "sectigo: error: "
USAGE = 2
FAILURE = 1


class CommandError(click.ClickException):
    """A failure shown as ``sectigo: error: <one line>``; exits 1."""

    exit_code = FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(PREFIX + self.format_message(), file=file, err=True)


class CommandUsageError(CommandError):
    """A failure of the command line itself; exits 2, as click's usage errors do."""

    exit_code = USAGE


def from_usage(exc: click.ClickException) -> CommandError:
    """Click's own errors (usage, bad values, unreadable files) without the usage banner."""
    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message = f"{message} (see '{ctx.command_path} --help')"
    return CommandUsageError(message) if exc.exit_code == USAGE else CommandError(message)


def from_exception(exc: Exception, endpoint: str | None) -> CommandError:
    """The line and status for anything a command raised."""
    if isinstance(exc, SectigoError):
        return _from_sectigo(exc, endpoint)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CommandError(f"{where}{exc.strerror or type(exc).__name__}")
    # A bug, not an operator's mistake: still one line, naming the exception so it can be reported.
    return CommandError(f"unexpected {type(exc).__name__}: {exc}")


def _from_sectigo(exc: SectigoError, endpoint: str | None) -> CommandError:
    # The client starts its messages with "sectigo ", which the line's own prefix already says.
    message = str(exc).removeprefix("sectigo ")
    if isinstance(exc, EnvironmentGuardError):
        return CommandUsageError(
            f"{message} (set SECTIGO_ENVIRONMENT or --environment/-E to match the endpoint, "
            "or fix SECTIGO_ENDPOINT/--endpoint)"
        )
    if isinstance(exc, ConfigurationError | InvalidRequest):
        return CommandUsageError(message)
    if isinstance(exc, InvalidCredentials):
        return CommandError(f"{message} (check SECTIGO_USERNAME and SECTIGO_PASSWORD)")
    if isinstance(exc, CredentialsError):
        return CommandError(f"{message}, or pass --username/-u and --password/-p")
    if isinstance(exc, ConnectionFailed):
        hint = f" (is {endpoint} reachable?)" if endpoint else ""
        return CommandError(message + hint)
    if isinstance(exc, OutcomeUnknown):
        return CommandError(
            f"{message}; it may have taken effect: check (batches, find) before trying again"
        )
    return CommandError(message)


def usage_error(message: str) -> click.UsageError:
    """A usage error of the running command, so the line can point at that command's help."""
    return click.UsageError(message, click.get_current_context())
