"""``sectigo-svc emulator``: run the Sectigo emulator from the command line until a signal."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from sectigo_svc.emulator.config import Account, EmulatorConfig, EmulatorConfigError
from sectigo_svc.emulator.faults import CHAOS_PRESET, FaultRule
from sectigo_svc.emulator.server import Emulator

_ENV = "SECTIGO_EMULATOR_"


def _env(name: str) -> str:
    return _ENV + name.upper().replace("-", "_")


def _balance(
    _: click.Context, __: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[int, int], ...]:
    parsed = []
    for value in values:
        authority, sep, amount = value.partition("=")
        if not sep or not authority.strip().isdigit() or not amount.strip().isdigit():
            raise click.BadParameter(f"{value!r}: expected AUTHORITY_ID=N, e.g. 42=100")
        parsed.append((int(authority), int(amount)))
    return tuple(parsed)


def _accounts(
    _: click.Context, __: click.Parameter, values: tuple[str, ...]
) -> tuple[Account, ...]:
    accounts = []
    for value in values:
        name, sep, password = value.partition(":")
        if not sep or not name or not password:
            raise click.BadParameter("expected NAME:PASSWORD")
        accounts.append(Account(name, password, authorized=False))
    return tuple(accounts)


def _rate(_: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise click.BadParameter(f"{param.name}: a rate is between 0 and 1")
    return value


def _start_faults(options: dict[str, Any]) -> tuple[FaultRule, ...]:
    rules: list[FaultRule] = list(CHAOS_PRESET) if options["chaos"] else []
    if options["latency_ms"]:
        rules.append(FaultRule(kind="latency", latency_ms=options["latency_ms"]))
    if options["error_rate"]:
        rules.append(FaultRule(kind="error", rate=options["error_rate"]))
    if options["throttle_rate"]:
        rules.append(
            FaultRule(
                kind="throttle", rate=options["throttle_rate"], retry_after=options["retry_after"]
            )
        )
    if options["drop_rate"]:
        rules.append(FaultRule(kind="drop", rate=options["drop_rate"]))
    if options["hang_rate"]:
        rules.append(FaultRule(kind="hang", rate=options["hang_rate"]))
    return tuple(rules)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar=_env("host"))
@click.option(
    "--port", default=8831, show_default=True, type=click.IntRange(0, 65535), envvar=_env("port")
)
@click.option(
    "--management-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar=_env("management_port"),
    help="Test-only management API port (0: any free port).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=_env("state_dir"),
    help="Keep the CA, batches, certificates and revocations across restarts here.",
)
@click.option("--username", default="tester", show_default=True, envvar=_env("username"))
@click.option(
    "--password", default="supersecretsquirrel", envvar=_env("password"), show_default=False
)
@click.option(
    "--unauthorized-user",
    multiple=True,
    callback=_accounts,
    envvar=_env("unauthorized_user"),
    help="NAME:PASSWORD of an account without authority (login gets 403).",
)
@click.option(
    "--issue-delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    envvar=_env("issue_delay"),
)
@click.option(
    "--access-lifetime",
    default=600,
    show_default=True,
    type=click.IntRange(1),
    envvar=_env("access_lifetime"),
)
@click.option(
    "--refresh-lifetime",
    default=7200,
    show_default=True,
    type=click.IntRange(1),
    envvar=_env("refresh_lifetime"),
)
@click.option(
    "--authority-ids",
    type=click.Choice(["profile", "distinct"]),
    default="profile",
    show_default=True,
    envvar=_env("authority_ids"),
    help="profile: authorities 42 and 85, as their profiles; distinct: authorities 1 and 2.",
)
@click.option(
    "--balance",
    multiple=True,
    callback=_balance,
    envvar=_env("balance"),
    help="AUTHORITY_ID=N licence balance (default 100 each); repeatable.",
)
@click.option(
    "--reject-common-name",
    multiple=True,
    envvar=_env("reject_common_name"),
    help="Reject batches whose common name matches this regex; repeatable.",
)
@click.option(
    "--status-text",
    type=click.Choice(["prose", "constant"]),
    default="prose",
    show_default=True,
    envvar=_env("status_text"),
)
@click.option(
    "--pkcs12-encryption",
    type=click.Choice(["rc2", "3des", "aes"]),
    default="rc2",
    show_default=True,
    envvar=_env("pkcs12_encryption"),
    help="rc2: as Sectigo (RC2-40 certificates, 3DES key; OpenSSL 3 needs -legacy); aes: PBES2.",
)
@click.option(
    "--key-type",
    type=click.Choice(["rsa2048", "rsa4096", "ec256"]),
    default="rsa2048",
    show_default=True,
    envvar=_env("key_type"),
)
@click.option("--latency-ms", type=click.IntRange(0), default=0, envvar=_env("latency_ms"))
@click.option("--error-rate", type=float, callback=_rate, envvar=_env("error_rate"))
@click.option("--throttle-rate", type=float, callback=_rate, envvar=_env("throttle_rate"))
@click.option("--retry-after", type=click.IntRange(0), default=1, envvar=_env("retry_after"))
@click.option("--drop-rate", type=float, callback=_rate, envvar=_env("drop_rate"))
@click.option("--hang-rate", type=float, callback=_rate, envvar=_env("hang_rate"))
@click.option("--stuck", is_flag=True, envvar=_env("stuck"), help="Keep new batches in PROCESSING.")
@click.option(
    "--ignore-list-filters",
    is_flag=True,
    envvar=_env("ignore_list_filters"),
    help="The batch list ignores batchName and status, as an API might.",
)
@click.option(
    "--visibility-lag",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    envvar=_env("visibility_lag"),
    help="Seconds before a new batch shows in reads (list, detail, status, download).",
)
@click.option(
    "--clock-offset",
    default=0.0,
    show_default=True,
    type=float,
    envvar=_env("clock_offset"),
    help="Seconds added to wall time for the token clock; negative = Sectigo behind.",
)
@click.option(
    "--chaos", is_flag=True, envvar=_env("chaos"), help="A mild mix of latency and faults."
)
def emulator(**options: Any) -> None:
    """Run the Sectigo IoT Manager emulator until SIGTERM or SIGINT."""
    try:
        config = EmulatorConfig(
            host=options["host"],
            port=options["port"],
            management_port=options["management_port"],
            state_dir=options["state_dir"],
            username=options["username"],
            password=options["password"],
            unauthorized_users=options["unauthorized_user"],
            issue_delay=options["issue_delay"],
            access_lifetime=options["access_lifetime"],
            refresh_lifetime=options["refresh_lifetime"],
            authority_ids=options["authority_ids"],
            balances=options["balance"],
            reject_common_names=tuple(options["reject_common_name"]),
            status_text=options["status_text"],
            pkcs12_encryption=options["pkcs12_encryption"],
            key_type=options["key_type"],
            faults=_start_faults(options),
            stuck=options["stuck"],
            ignore_list_filters=options["ignore_list_filters"],
            visibility_lag=options["visibility_lag"],
            clock_offset=options["clock_offset"],
        )
        server = Emulator(config)
    except (EmulatorConfigError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    ready = {
        "event": "emulator listening",
        "api": server.api_url,
        "management": server.management_url,
        "username": config.username,
    }
    click.echo(json.dumps(ready))
    sys.stdout.flush()
    while not stop.wait(1.0):
        pass
    server.stop()
    click.echo(json.dumps({"event": "emulator stopped"}))
