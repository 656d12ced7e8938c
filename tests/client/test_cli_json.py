"""``sectigo-ca --json``: accepted before the subcommand and among its own options, with the same
result either way, for every subcommand; errors too are JSON from either place."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from sectigo_client.cli import main
from tests.client.conftest import Cli
from tests.client.test_cli import NOT_FOUND, issue_ready

# Each read-only subcommand, with {id} and {serial} standing for a READY request of "registration".
READS: list[tuple[str, list[str]]] = [
    ("registration", ["status", "{id}"]),
    ("registration", ["list", "-n", "json.example.com"]),
    ("registration", ["watch", "{id}"]),
    ("registration", ["find", "-s", "{serial}"]),
    ("reader", ["authorities"]),
    ("reader", ["licenses"]),
    ("reader", ["profiles"]),
    ("reader", ["profiles", "85"]),
]


def test_every_subcommand_has_its_own_json_switch() -> None:
    for name, command in main.commands.items():
        options = [p for p in command.params if isinstance(p, click.Option)]
        assert any("--json" in o.opts for o in options), name


@pytest.mark.parametrize(("client", "args"), READS, ids=[" ".join(a) for _, a in READS])
def test_a_read_gives_the_same_json_either_way(cli: Cli, client: str, args: list[str]) -> None:
    record = issue_ready(cli, "json.example.com")
    filled = [a.format(id=record["request_id"], serial=record["serial_number"]) for a in args]

    before = cli("--json", *filled, client=client)
    after = cli(*filled, "--json", client=client)
    plain = cli(*filled, client=client)

    assert before.exit_code == 0 == after.exit_code, before.output + after.output
    assert after.stdout == before.stdout
    if args[0] == "watch":  # one JSON object per line
        assert [json.loads(line)["state"] for line in after.stdout.splitlines()] == ["READY"]
    else:
        assert json.loads(after.stdout)
    assert plain.exit_code == 0 and plain.stdout != after.stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_issue_download_and_revoke_take_json_either_way(
    cli: Cli, tmp_path: Path, where: str
) -> None:
    def run(*args: str) -> dict[str, object]:
        result = cli("--json", *args) if where == "before" else cli(*args, "--json")
        assert result.exit_code == 0, result.output
        parsed: dict[str, object] = json.loads(result.stdout)
        return parsed

    issued = run("issue", "-n", f"{where}.example.com", "--wait")
    request = issued["request"]
    assert isinstance(request, dict) and request["state"] == "READY"
    saved = run("download", str(request["request_id"]), "-o", str(tmp_path))
    revoked = run("revoke", str(request["request_id"]))

    assert saved["certificate"] == str(tmp_path / "cert.pem")
    assert revoked["serial_number"] == request["serial_number"]


@pytest.mark.parametrize("args", [["--json", "status", "nope"], ["status", "nope", "--json"]])
def test_an_error_is_json_on_stderr_either_way(cli: Cli, args: list[str]) -> None:
    result = cli(*args)

    assert result.exit_code == NOT_FOUND
    assert result.stdout == ""
    assert json.loads(result.stderr)["error"]["code"] == "NOT_FOUND"
