"""Every failure is one ``sectigo: error:`` line on stderr, nothing on stdout, and a non-zero exit:
1 for what Sectigo, the network or the account refuse, 2 for what the command line gets wrong."""

from __future__ import annotations

import pytest

from sectigo_svc.emulator import Emulator
from tests.admin.helpers import Cli, closed_port_url


def test_bad_credentials(cli: Cli) -> None:
    line = cli("licenses", env={"SECTIGO_PASSWORD": "not-the-password"}).failed(1)
    assert "HTTP 401" in line
    assert "SECTIGO_PASSWORD" in line


def test_missing_credentials(cli: Cli) -> None:
    line = cli("licenses", env={"SECTIGO_USERNAME": None, "SECTIGO_PASSWORD": None}).failed(1)
    assert "no Sectigo credentials" in line


def test_unknown_batch(cli: Cli) -> None:
    line = cli("batches", "-i", "999999").failed(1)
    assert "HTTP 404" in line
    assert "999999" in line


@pytest.mark.parametrize("reason", ["bogus", "7", "value 7 is not used", "Value 7 Is\tNot Used"])
def test_wrong_revocation_reason(run: Cli, reason: str) -> None:
    line = run("revoke", "-p", "42", "-r", reason, "-s", "ABCDEF").failed(2)
    assert "--reason" in line


def test_reason_7_refused_by_the_script(cli: Cli) -> None:
    assert "7 is not used by RFC 5280" in cli("revoke", "-p", "42", "-r", "7", "-s", "AB").failed(2)


def test_unreachable_endpoint(cli: Cli) -> None:
    url = closed_port_url()
    line = cli("licenses", env={"SECTIGO_ENDPOINT": url}).failed(1)
    assert "connection failed" in line
    assert f"is {url} reachable?" in line


def test_production_guard(cli: Cli, emulator: Emulator) -> None:
    line = cli("-e", emulator.api_url, "-E", "production", "licenses").failed(2)
    assert "production talks only to https://iot.sectigo.com" in line
    assert "SECTIGO_ENVIRONMENT" in line


def test_non_loopback_endpoint_needs_an_environment(cli: Cli) -> None:
    line = cli("licenses", env={"SECTIGO_ENDPOINT": "http://cathy.example:8831"}).failed(2)
    assert "SECTIGO_ENVIRONMENT" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-E", "docker", "licenses"), "is not one of production, staging, testing"),
        (("profiles", "-p"), "must specify id"),
        (("batches",), "Missing option '--id'"),
        (("find",), "give --common-name/-n or --serial-number/-s"),
        (("create", "-d", "example.com"), "Missing option '--authority'"),
        (("upload", "no-such.csr", "-p", "42"), "does not exist"),
        (("download", "-i", "1", "--extract"), "--extract needs the PKCS#12 password"),
        (("no-such-command",), "No such command"),
    ],
)
def test_usage_errors(run: Cli, args: tuple[str, ...], expected: str) -> None:
    assert expected in run(*args).failed(2)


def test_usage_error_from_the_script_is_one_line(cli: Cli) -> None:
    assert "Missing option '--id'" in cli("batches").failed(2)
