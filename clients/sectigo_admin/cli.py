"""``sectigo``: the operators' command for looking straight at the Sectigo IoT Manager API.

The global options say which account and which Sectigo to talk to; the subcommands are the ones
the original CLI documented, so its walk-through works as written, with the faults section 8 of the
API reference lists fixed. Errors of every kind leave as one ``sectigo: error:`` line (see
:mod:`sectigo_admin.errors`); data goes to stdout as JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from sectigo_admin.commands.accounts import authorities, licenses, organization
from sectigo_admin.commands.auth import auth
from sectigo_admin.commands.batches import batches, download
from sectigo_admin.commands.certificates import find, revoke
from sectigo_admin.commands.orders import create, upload
from sectigo_admin.commands.profiles import profiles
from sectigo_admin.context import EnvironmentType, Settings, default_environment
from sectigo_admin.errors import CommandError, from_exception, from_usage
from sectigo_admin.output import warn
from sectigo_svc import logs
from sectigo_svc.sectigo import Environment, Secret
from sectigo_svc.sectigo.config import PRODUCTION_ENDPOINT


class AdminGroup(click.Group):
    """A group whose every failure, click's usage errors included, is one line on stderr."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a bare `sectigo` asks for the help text, not an error line
        except click.ClickException as exc:
            raise from_usage(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, CommandError, BrokenPipeError):
            raise
        except click.ClickException as exc:
            raise from_usage(exc) from exc
        except Exception as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            raise from_exception(exc, settings.endpoint if settings else None) from exc


@click.group(cls=AdminGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sectigo-svc")
@click.option(
    "--username", "-u", envvar="SECTIGO_USERNAME", show_envvar=True, help="Sectigo username."
)
@click.option(
    "--password",
    "-p",
    envvar="SECTIGO_PASSWORD",
    show_envvar=True,
    help="Sectigo password; prefer the environment variable (argv is visible to other users).",
)
@click.option(
    "--endpoint",
    "-e",
    envvar="SECTIGO_ENDPOINT",
    show_envvar=True,
    default=PRODUCTION_ENDPOINT,
    show_default=True,
    help="Base URL of the Sectigo IoT Manager API.",
)
@click.option(
    "--environment",
    "-E",
    type=EnvironmentType(),
    envvar="SECTIGO_ENVIRONMENT",
    show_envvar=True,
    help="production, staging or testing. Default: testing for a loopback endpoint, "
    "else production.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SECTIGO_CACHE_DIR",
    show_envvar=True,
    help="Token cache directory. Default: the user's cache directory.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log each Sectigo call on stderr.")
@click.pass_context
def main(
    ctx: click.Context,
    username: str | None,
    password: str | None,
    endpoint: str,
    environment: Environment | None,
    cache_dir: Path | None,
    verbose: bool,
) -> None:
    """Talk to the Sectigo IoT Manager API: accounts, profiles, orders, batches, certificates.

    Set SECTIGO_USERNAME and SECTIGO_PASSWORD (and SECTIGO_ENDPOINT for anything but the real
    Sectigo), then start with `sectigo auth` and `sectigo authorities`.
    """
    if ctx.get_parameter_source("password") is ParameterSource.COMMANDLINE:
        warn("a password on the command line is visible to other users; use SECTIGO_PASSWORD")
    if verbose:
        logs.configure("info", "console", stream=sys.stderr)
    ctx.obj = Settings(
        username=username or None,
        password=Secret(password) if password else None,
        endpoint=endpoint,
        environment=environment or default_environment(endpoint),
        cache_dir=cache_dir,
        verbose=verbose,
    )


main.add_command(auth)
main.add_command(authorities)
main.add_command(licenses)
main.add_command(organization)
main.add_command(profiles)
main.add_command(profiles, "profile")
main.add_command(create)
main.add_command(upload)
main.add_command(batches)
main.add_command(download)
main.add_command(find)
main.add_command(revoke)
