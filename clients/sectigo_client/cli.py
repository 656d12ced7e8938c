"""``sectigo-ca``: issue, follow, download and revoke certificates from the command line.

Needs click, which the client distribution installs only with its extra:
``pip install 'sectigo-ca-client[cli]'`` (the entry point, :mod:`sectigo_client.command`, says so).

Connection settings come from ``--target/--cert/--key/--ca`` or the ``SECTIGO_CA_*`` variables.
Results go to stdout (``--json``: JSON; else tables), progress and errors to stderr. ``--json`` may
stand before the subcommand or among its own options. Exit codes:

== =========================================================================================
0  success
1  any other failure (e.g. FAILED_PRECONDITION, ALREADY_EXISTS, a request ending REJECTED)
2  usage: bad or missing options or settings, or INVALID_ARGUMENT from the service
3  denied: PERMISSION_DENIED or UNAUTHENTICATED
4  unavailable: UNAVAILABLE or DEADLINE_EXCEEDED (including ``--wait-timeout``)
5  not found: NOT_FOUND
== =========================================================================================
"""

from __future__ import annotations

from pathlib import Path

import click

from sectigo_client import cli_output as show
from sectigo_client.channel import ENV_CACERT, ENV_CERT, ENV_KEY, ENV_TARGET
from sectigo_client.cli_issue import issue
from sectigo_client.cli_session import CommandGroup, Session, pass_session
from sectigo_client.client import ALL_OWNERS, DEFAULT_WAIT
from sectigo_client.models import RequestState, RevocationReason
from sectigo_client.transport import API_VERSION, DEFAULT_TIMEOUT


def _reason(ctx: click.Context, param: click.Parameter, value: str) -> RevocationReason:
    try:
        return RevocationReason.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


def _states(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> list[RequestState]:
    return [RequestState(v.upper()) for v in value]


_STATE_NAMES = [s.value for s in RequestState if s is not RequestState.UNSPECIFIED]
_owner = click.option("--owner", default="", help="Another identity's request (admins only).")
_JSON_HELP = "Machine-readable JSON output."


def _json_after_subcommand(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    session = ctx.find_object(Session)
    if value and session is not None:
        session.json = True


class _Commands(CommandGroup):
    """Gives every subcommand its own ``--json``, the same switch as the global one."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(p.name == "json" for p in cmd.params):
            cmd.params.append(
                click.Option(
                    ["--json"],
                    is_flag=True,
                    expose_value=False,
                    callback=_json_after_subcommand,
                    help=_JSON_HELP,
                )
            )
        super().add_command(cmd, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--target", envvar=ENV_TARGET, help=f"Service host:port [{ENV_TARGET}].")
@click.option("--cert", envvar=ENV_CERT, help=f"Client certificate, PEM file [{ENV_CERT}].")
@click.option("--key", envvar=ENV_KEY, help=f"Client private key, PEM file [{ENV_KEY}].")
@click.option("--ca", envvar=ENV_CACERT, help=f"CA bundle the service chains to [{ENV_CACERT}].")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    envvar="SECTIGO_CA_TIMEOUT",
    help="Deadline of each call, seconds [SECTIGO_CA_TIMEOUT].",
)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.version_option(
    package_name="sectigo-ca-client",
    message=f"%(prog)s %(version)s (API sectigo.ca.v1, version {API_VERSION})",
)
@click.pass_context
def main(
    ctx: click.Context,
    target: str | None,
    cert: str | None,
    key: str | None,
    ca: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Issue, follow, download and revoke certificates through sectigo-svc."""
    session = Session(target, cert, key, ca, timeout, as_json)
    ctx.obj = session
    ctx.call_on_close(session.close)


main.add_command(issue)


@main.command()
@click.argument("request_id")
@_owner
@pass_session
def status(session: Session, request_id: str, owner: str) -> None:
    """Show one request."""
    session.emit(session.client().get(request_id, owner=owner), show.record)


@main.command(name="list")
@click.option(
    "--state",
    "states",
    multiple=True,
    callback=_states,
    type=click.Choice(_STATE_NAMES, case_sensitive=False),
    help="Only this state; repeatable.",
)
@click.option("--common-name", "-n", default="", help="Only this common name.")
@click.option("--all", "every_owner", is_flag=True, help="Every identity's requests (admins).")
@click.option(
    "--page-size",
    type=click.IntRange(0, 500),
    default=0,
    help="Requests per call, 1 to 500 (0: the service's default). Every page is listed.",
)
@_owner
@pass_session
def list_requests(
    session: Session,
    states: list[RequestState],
    common_name: str,
    every_owner: bool,
    page_size: int,
    owner: str,
) -> None:
    """List every matching request, newest first (all pages)."""
    if every_owner and owner:
        raise click.UsageError("give --all or --owner, not both")
    scope = ALL_OWNERS if every_owner else owner
    requests = session.client().list(
        states=states, common_name=common_name, owner=scope, page_size=page_size
    )
    found = list(requests)
    session.emit(found, lambda rows: show.records(rows, with_owner=bool(scope)))


@main.command()
@click.argument("request_id")
@_owner
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_WAIT,
    show_default=True,
    help="Seconds to follow before giving up (exit 4).",
)
@pass_session
def watch(session: Session, request_id: str, owner: str, wait_timeout: float) -> None:
    """Follow a request until it is finished.

    One line per state (--json: one JSON object per line). A broken stream or a restart of the
    service is ridden out: the request is then polled until it is finished.
    """
    for record in session.client().follow(request_id, wait_timeout, owner=owner):
        click.echo(show.to_json(record, lines=True) if session.json else show.state_line(record))


@main.command()
@click.argument("request_id")
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write cert.pem, chain.pem (and key.pem, bundle.p12) into.",
)
@click.option("--include-key", is_flag=True, help="Also write key.pem (keys made by Sectigo).")
@click.option(
    "--sectigo-pkcs12",
    is_flag=True,
    help="Also write bundle.sectigo.p12: Sectigo's own PKCS#12, which needs openssl -legacy.",
)
@_owner
@pass_session
def download(
    session: Session,
    request_id: str,
    out: Path,
    include_key: bool,
    sectigo_pkcs12: bool,
    owner: str,
) -> None:
    """Download a certificate into a directory.

    cert.pem and chain.pem; for keys made by Sectigo bundle.p12 (re-encoded so that OpenSSL 3
    opens it without -legacy) and bundle.p12.password, key.pem with --include-key, and
    bundle.sectigo.p12 (Sectigo's bytes, same password) with --sectigo-pkcs12 (those 0600). A
    key.pem or bundle of another certificate left in the directory is removed; the
    certificate's own key.pem stays.
    """
    saved = session.client().download_to(
        request_id,
        out,
        include_private_key=include_key,
        include_sectigo_pkcs12=sectigo_pkcs12,
        owner=owner,
    )
    session.emit(saved, show.saved)


@main.command()
@click.option("--common-name", "-n", help="An exact common name.")
@click.option("--serial", "-s", help="A serial number, hex.")
@pass_session
def find(session: Session, common_name: str | None, serial: str | None) -> None:
    """Search Sectigo by common name or serial."""
    if (common_name is None) == (serial is None):
        raise click.UsageError("give exactly one of --common-name and --serial")
    found = session.client().find(common_name=common_name, serial_number=serial)
    session.emit(found, show.found)


@main.command()
@click.argument("request_id", required=False)
@click.option("--serial", "-s", help="Revoke this serial number instead of a request's.")
@click.option(
    "--reason",
    default="unspecified",
    callback=_reason,
    show_default=True,
    help=f"RFC 5280 reason: {', '.join(RevocationReason.names())}, or its code.",
)
@click.option(
    "--profile-id",
    type=click.IntRange(min=0),
    default=0,
    help="With --serial: the issuing profile; 0 for the service's default.",
)
@_owner
@pass_session
def revoke(
    session: Session,
    request_id: str | None,
    serial: str | None,
    reason: RevocationReason,
    profile_id: int,
    owner: str,
) -> None:
    """Revoke the certificate of REQUEST_ID, or of --serial."""
    if (request_id is None) == (serial is None):
        raise click.UsageError("give exactly one of REQUEST_ID and --serial")
    done = session.client().revoke(
        request_id, serial_number=serial, reason=reason, owner=owner, profile_id=profile_id
    )
    session.emit(done, show.revocation)


@main.command()
@pass_session
def authorities(session: Session) -> None:
    """List authorities and licence balances."""
    session.emit(session.client().authorities(), show.authorities)


@main.command()
@pass_session
def licenses(session: Session) -> None:
    """Show licences ordered and issued."""
    session.emit(session.client().licenses(), show.licenses)


@main.command()
@click.argument("profile_id", required=False, type=click.IntRange(min=1))
@pass_session
def profiles(session: Session, profile_id: int | None) -> None:
    """List profiles, or show one in detail."""
    if profile_id is None:
        session.emit(session.client().profiles(), show.profiles)
    else:
        session.emit(session.client().profile(profile_id), show.profile)
