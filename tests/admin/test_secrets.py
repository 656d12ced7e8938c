"""No command prints the account password or a token, on stdout or stderr, in any mode.

Every token the cache held at any point is collected (they change with each login and refresh)
and compared with everything every command printed, errors and ``--verbose`` logs included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.admin.helpers import (
    PASSWORD,
    USERNAME,
    Cli,
    Management,
    Outcome,
    Subprocess,
)

Recorder = Callable[..., Outcome]


def cached_tokens(cache_dir: Path) -> set[str]:
    tokens = set()
    for path in cache_dir.glob("*.json"):
        data = json.loads(path.read_text())
        tokens |= {data["accessToken"], data["refreshToken"]}
    return tokens


def recorder(cli: Cli, cache_dir: Path, printed: list[str], tokens: set[str]) -> Recorder:
    """Run a command, keeping what it printed and the tokens the cache holds afterwards."""

    def record(*args: str, env: dict[str, str | None] | None = None) -> Outcome:
        outcome = cli(*args, env=env)
        printed.append(outcome.stdout + outcome.stderr)
        tokens.update(cached_tokens(cache_dir))
        return outcome

    return record


def assert_nothing_leaked(printed: list[str], tokens: set[str]) -> None:
    assert tokens, "the commands should have cached tokens"
    for text in printed:
        assert PASSWORD not in text
        for token in tokens:
            assert token not in text
            # A JWT's signature alone would be a leak too.
            assert token.rsplit(".", 1)[-1] not in text


def test_no_command_leaks_the_password_or_a_token(
    run: Cli, management: Management, tmp_path: Path
) -> None:
    printed: list[str] = []
    tokens: set[str] = set()
    cmd = recorder(run, tmp_path / "cache" / "tokens", printed, tokens)
    cmd("auth").ok()
    cmd("auth", "--cache").ok()
    cmd("auth", "--debug").ok()
    cmd("authorities", "--balances").ok()
    cmd("licenses").ok()
    cmd("organization").ok()
    cmd("profiles").ok()
    cmd("profiles", "-i", "85").ok()
    cmd("profile", "-i", "85", "--params").ok()
    batch = cmd("create", "-a", "42", "-d", "leak.example.com", "-p", "secrtpasswrd").ok().json()
    batch_id = str(batch["batchId"])
    cmd("batches", "-i", batch_id).ok()
    cmd("batches", "-i", batch_id, "--status").ok()
    cmd("batches", "-i", batch_id, "--info").ok()
    cmd("download", "-i", batch_id, "-o", "out", "--extract", "-p", "secrtpasswrd").ok()
    serial = cmd("find", "-n", "leak.example.com").ok().json()["items"][0]["serialNumber"]
    cmd("find", "-s", serial).ok()
    cmd("revoke", "-p", "42", "-s", serial).ok()
    management.rotate_signing_key()
    cmd("auth").ok()  # refresh refused, login again: new tokens
    cmd("-u", USERNAME, "-p", PASSWORD, "licenses", env={"SECTIGO_PASSWORD": None}).ok()
    cmd("batches", "-i", "424242").failed(1)
    fresh = {"SECTIGO_PASSWORD": PASSWORD + "x", "SECTIGO_CACHE_DIR": str(tmp_path / "empty")}
    cmd("licenses", env=fresh).failed(1)
    assert_nothing_leaked(printed, tokens)


def test_verbose_logs_leak_nothing(
    account_env: dict[str, str | None], workdir: Path, tmp_path: Path
) -> None:
    printed: list[str] = []
    tokens: set[str] = set()
    cmd = recorder(Subprocess(account_env, workdir), tmp_path / "cache" / "tokens", printed, tokens)
    logged = cmd("-v", "auth").ok()
    assert "sectigo call" in logged.stderr
    assert "endpoint=login" in logged.stderr
    cmd("-v", "auth").ok()  # a refresh this time
    cmd("-v", "licenses").ok()
    batch = cmd("-v", "create", "-a", "42", "-d", "v.example.com", "-p", "secrtpasswrd").ok()
    batch_id = str(batch.json()["batchId"])
    cmd("-v", "download", "-i", batch_id, "-o", "v", "--extract", "-p", "secrtpasswrd").ok()
    refused = cmd("-v", "-p", PASSWORD + "x", "licenses", env={"SECTIGO_CACHE_DIR": "empty"})
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[-1].startswith("sectigo: error: login (POST): HTTP 401")
    assert_nothing_leaked(printed, tokens)


def test_a_password_echoed_in_generator_parameters_is_masked() -> None:
    from sectigo_admin.wire import batch
    from sectigo_svc.sectigo.models import BatchResponse

    echoed = BatchResponse.from_json(
        {
            "batchId": 1,
            "status": "CREATED",
            "generatorParametersValues": [{"commonName": "a.example.com", "pkcs12Password": "pw"}],
        }
    )
    shown = batch(echoed)["generatorParametersValues"]
    assert shown == [{"commonName": "a.example.com", "pkcs12Password": "[redacted]"}]
