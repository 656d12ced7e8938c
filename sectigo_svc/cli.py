"""``sectigo-svc``: the operator command: serve, make development certificates, run the emulator,
back up or copy the store."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click
import psycopg
from psycopg.conninfo import conninfo_to_dict

from sectigo_svc import logs
from sectigo_svc.app import Application
from sectigo_svc.authz import PolicyError
from sectigo_svc.backup import back_up
from sectigo_svc.config import ConfigError, ServiceConfig, settings_markdown
from sectigo_svc.devcerts import DEFAULT_CLIENTS, DEFAULT_HOSTS, DevCertsError, make_dev_certs
from sectigo_svc.devfleet import FleetError, start_fleet
from sectigo_svc.devfleet import usage as fleet_usage
from sectigo_svc.devstack import start_dev_stack, usage
from sectigo_svc.emulator.cli import emulator
from sectigo_svc.healthcheck import probe
from sectigo_svc.sealing import Sealer, SealingError, load_or_create_key
from sectigo_svc.sectigo.answers import render_page
from sectigo_svc.sectigo.credentials import Credentials
from sectigo_svc.sectigo.errors import SectigoError
from sectigo_svc.store.base import StoreError
from sectigo_svc.store.database_url import connection_url
from sectigo_svc.store.transfer import copy_to_postgres


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sectigo-svc")
def main() -> None:
    """Run and operate the sectigo-svc certificate authority service."""


main.add_command(emulator)


@main.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="SECTIGO_SVC_CONFIG",
    help="TOML settings file; SECTIGO_SVC_* environment variables override it.",
)
@click.option("--listen", help="host:port to listen on (overrides SECTIGO_SVC_LISTEN).")
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Plain text, no client authentication: development only.",
)
def serve(config_file: Path | None, listen: str | None, insecure: bool | None) -> None:
    """Serve the CertificateAuthority gRPC API until SIGTERM or SIGINT."""
    overrides = {k: v for k, v in (("listen", listen), ("insecure", insecure)) if v is not None}
    try:
        config = ServiceConfig.load(config_file, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    logs.configure(config.log_level, config.log_format)
    try:
        credentials = Credentials.load(
            config.sectigo_username or None, password_file=config.sectigo_password_file
        )
        app = Application(config, credentials)
    except (SectigoError, SealingError, StoreError, PolicyError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    app.start()
    again = _wait_for_signal()
    # Readiness NOT_SERVING for the pre-stop window while RPCs are still served, then the drain;
    # a second signal ends the window early.
    app.stop(prestop=config.prestop_seconds, cut_short=again)


def _wait_for_signal() -> threading.Event:
    """Block until SIGTERM or SIGINT; the event returned is set by the next one."""
    first, again = threading.Event(), threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        (again if first.is_set() else first).set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not first.wait(1.0):
        pass
    return again


@main.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".state"),
    show_default=True,
)
@click.option("--listen", default="127.0.0.1:9443", show_default=True)
@click.option("--emulator-port", default=8831, show_default=True)
@click.option("--management-port", default=8832, show_default=True)
@click.option("--issue-delay", default=2.0, show_default=True)
@click.option(
    "--replicas",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="More than 1: that many `serve` processes on a PostgreSQL cluster of their own in the "
    "state directory; replica N (from 0) listens on the --listen port + 10 N, its health probe "
    "on + 1 and its metrics on + 2.",
)
def dev(
    state_dir: Path,
    listen: str,
    emulator_port: int,
    management_port: int,
    issue_delay: float,
    replicas: int,
) -> None:
    """Run the emulator and the service together with development certificates."""
    logs.configure("info", "console")
    if replicas > 1:
        _run_fleet(state_dir, listen, emulator_port, management_port, issue_delay, replicas)
        return
    try:
        stack = start_dev_stack(state_dir, listen, emulator_port, management_port, issue_delay)
    except (SectigoError, SealingError, StoreError, DevCertsError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(usage(stack, grpcurl=str(Path(sys.executable).with_name("grpcurl"))))
    _wait_for_signal()
    stack.stop()


def _run_fleet(
    state_dir: Path,
    listen: str,
    emulator_port: int,
    management_port: int,
    issue_delay: float,
    replicas: int,
) -> None:
    host, _, port = listen.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise click.UsageError("--listen: the replicas listen on loopback, 127.0.0.1:PORT")
    try:
        fleet = start_fleet(
            state_dir, replicas, int(port), emulator_port, management_port, issue_delay
        )
    except (FleetError, DevCertsError, SealingError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        click.echo(fleet_usage(fleet, grpcurl=str(Path(sys.executable).with_name("grpcurl"))))
        _wait_for_signal()
    finally:
        fleet.stop()


@main.command()
@click.option("--target", default="127.0.0.1:9444", show_default=True, envvar="SECTIGO_SVC_PROBE")
@click.option("--service", default="", help="Service name to check; empty: the whole server.")
@click.option("--timeout", default=3.0, show_default=True)
@click.option("--ca", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--cert", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--key", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def healthcheck(
    target: str,
    service: str,
    timeout: float,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
) -> None:
    """Exit 0 when the server's gRPC health is SERVING, 1 otherwise (container probes)."""
    if (ca, cert, key).count(None) not in (0, 3):
        raise click.UsageError("give all of --ca, --cert and --key, or none (plain text)")
    tls = (ca, cert, key) if ca and cert and key else None
    status = probe(target, service, timeout, tls)
    click.echo(status)
    if status != "SERVING":
        raise SystemExit(1)


@main.command()
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="SECTIGO_SVC_CONFIG",
    help="The service's TOML settings file; SECTIGO_SVC_* variables override it.",
)
def backup(destination: Path, config_file: Path | None) -> None:
    """Copy the request store and its data key into DESTINATION, online and consistent."""
    try:
        config = ServiceConfig.load(config_file)
        store_copy, key_copy = back_up(config.database_path, config.data_key_path, destination)
    except (ConfigError, StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"store:    {store_copy}")
    click.echo(f"data key: {key_copy} (keep it as secret as the Sectigo password)")


@main.command()
def settings() -> None:
    """Print every setting (variable, TOML key, default, meaning) as Markdown."""
    click.echo(settings_markdown(), nl=False)


@main.command()
def answers() -> None:
    """Print what each Sectigo answer means for each endpoint (docs/sectigo-answers.md)."""
    click.echo(render_page(), nl=False)


@main.command("dev-certs")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", "hosts", multiple=True, help="Server name or IP (repeatable).")
@click.option("--client", "clients", multiple=True, help="Client identity name (repeatable).")
@click.option("--overwrite", is_flag=True, help="Make a new CA and reissue everything.")
def dev_certs(
    directory: Path, hosts: tuple[str, ...], clients: tuple[str, ...], overwrite: bool
) -> None:
    """Make a development CA, a server certificate and client certificates in DIRECTORY."""
    try:
        made = make_dev_certs(
            directory,
            hosts=hosts or DEFAULT_HOSTS,
            clients=clients or DEFAULT_CLIENTS,
            overwrite=overwrite,
        )
    except DevCertsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"development PKI in {made.directory}")
    click.echo(f"  CA:      {made.ca}")
    click.echo(f"  server:  {made.server_cert} / {made.server_key}")
    for name in made.clients:
        cert, key = made.client(name)
        click.echo(f"  client:  {name}: {cert} / {key}")
    click.echo(f"  policy:  {made.policy}")


@main.command("copy-store")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The SQLite store file (stop the service using it first).",
)
@click.option(
    "--to",
    "url",
    required=True,
    help="The empty PostgreSQL database: postgresql://user@host:port/db, without the password.",
)
@click.option(
    "--data-key-file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The SQLite store's data key; the PostgreSQL replicas must use the same one.",
)
@click.option(
    "--database-password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File holding the database password (else libpq's PGPASSWORD or ~/.pgpass).",
)
def copy_store(
    source: Path, url: str, data_key_file: Path, database_password_file: Path | None
) -> None:
    """Copy every request, certificate, secret and audit row of a SQLite store into an empty
    PostgreSQL database in one transaction, and verify the row counts before committing."""
    try:
        has_password = bool(conninfo_to_dict(url).get("password"))
    except psycopg.Error:
        raise click.ClickException(
            "--to: not a PostgreSQL URL (postgresql://user@host:port/db)"
        ) from None
    if has_password:
        raise click.ClickException(
            "--to must not hold the password, since every user of this host can read the "
            "command line: put it in --database-password-file or PGPASSWORD"
        )
    try:
        sealer = Sealer(load_or_create_key(data_key_file, create=False))
        report = copy_to_postgres(source, connection_url(url, database_password_file), sealer)
    except (StoreError, SealingError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"copied {report.source} into {report.target}")
    for table, count in report.counts.items():
        click.echo(f"  {table}: {count}")
    click.echo("verified: every table holds as many rows as in the source")


if __name__ == "__main__":
    main()
