"""ServiceConfig: defaults, then a TOML file, then SECTIGO_SVC_* variables; every refusal names the
setting as an operator would set it. And ``serve --insecure`` warns."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner

from sectigo_svc.cli import main
from sectigo_svc.config import ConfigError, ServiceConfig
from sectigo_svc.devcerts import DevCerts
from tests.conftest import EmulatorFactory
from tests.service.helpers import (
    PASSWORD,
    USERNAME,
    health_status,
    listening_port,
    poll,
    serve_process,
    write_toml,
)


def _tls(pki: DevCerts) -> dict[str, str]:
    return {
        "SECTIGO_SVC_TLS_CERT": str(pki.server_cert),
        "SECTIGO_SVC_TLS_KEY": str(pki.server_key),
        "SECTIGO_SVC_TLS_CLIENT_CA": str(pki.ca),
        "SECTIGO_SVC_POLICY_FILE": str(pki.policy),
    }


def test_environment_overrides_the_file_and_values_are_typed(pki: DevCerts, tmp_path: Path) -> None:
    file = write_toml(
        tmp_path / "svc.toml",
        {
            "listen": "0.0.0.0:9000",
            "grpc_workers": 8,
            "sectigo_timeout": 12.5,
            "batch_prefix": "from-file",
        },
    )
    environ = _tls(pki) | {
        "SECTIGO_SVC_GRPC_WORKERS": "3",
        "SECTIGO_SVC_POLL_MIN_INTERVAL": "0.25",
        "SECTIGO_SVC_STATE_DIR": str(tmp_path / "state"),
        "SECTIGO_SVC_INSECURE": "no",
    }

    config = ServiceConfig.load(file, environ=environ)

    assert config.listen == "0.0.0.0:9000"
    assert config.grpc_workers == 3
    assert config.sectigo_timeout == 12.5
    assert config.poll_min_interval == 0.25
    assert config.batch_prefix == "from-file"
    assert config.insecure is False
    assert config.tls_cert == pki.server_cert
    assert config.database_path == tmp_path / "state" / "requests.db"
    assert config.data_key_path == tmp_path / "state" / "data.key"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"SECTIGO_SVC_GRPC_WORKERS": "many"}, "SECTIGO_SVC_GRPC_WORKERS"),
        ({"SECTIGO_SVC_GRPC_WORKERS": "0"}, "SECTIGO_SVC_GRPC_WORKERS"),
        ({"SECTIGO_SVC_LISTEN": "nowhere"}, "SECTIGO_SVC_LISTEN"),
        ({"SECTIGO_SVC_LISTEN": "127.0.0.1:70000"}, "SECTIGO_SVC_LISTEN"),
        ({"SECTIGO_SVC_INSECURE": "maybe"}, "SECTIGO_SVC_INSECURE"),
        ({"SECTIGO_SVC_TLS_CERT": ""}, "SECTIGO_SVC_TLS_CERT"),
        ({"SECTIGO_SVC_TLS_KEY": "/no/such/key.pem"}, "SECTIGO_SVC_TLS_KEY"),
        ({"SECTIGO_SVC_POLICY_FILE": ""}, "SECTIGO_SVC_POLICY_FILE"),
        ({"SECTIGO_SVC_POLL_MIN_INTERVAL": "60"}, "SECTIGO_SVC_POLL_MIN_INTERVAL"),
        ({"SECTIGO_SVC_GIVE_UP_AFTER": "0"}, "SECTIGO_SVC_GIVE_UP_AFTER"),
        ({"SECTIGO_SVC_SECTIGO_TIMEOUT": "-1"}, "SECTIGO_SVC_SECTIGO_TIMEOUT"),
        ({"SECTIGO_SVC_LOG_FORMAT": "xml"}, "SECTIGO_SVC_LOG_FORMAT"),
        ({"SECTIGO_SVC_LOG_LEVEL": "loud"}, "SECTIGO_SVC_LOG_LEVEL"),
        ({"SECTIGO_SVC_BATCH_PREFIX": "x" * 41}, "SECTIGO_SVC_BATCH_PREFIX"),
        (
            {"SECTIGO_SVC_SECTIGO_PASSWORD_FILE": "/no/such/file"},
            "SECTIGO_SVC_SECTIGO_PASSWORD_FILE",
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    pki: DevCerts, environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        ServiceConfig.load(environ=_tls(pki) | environ)

    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("setting", "value", "fix"),
    [
        ("SUBJECT_ORGANIZATION", "O" * 65, "at most 64"),
        ("SUBJECT_LOCALITY", "L" * 129, "at most 128"),
        ("SUBJECT_STATE", "S" * 129, "at most 128"),
        ("SUBJECT_STATE", "Line one\nline two", "on one line"),
        ("SUBJECT_ORGANIZATION", " Example Ltd", "surrounding spaces"),
        ("SUBJECT_COUNTRY", "USA", "two-letter code"),
        ("SUBJECT_COUNTRY", "us", "two capital letters"),
    ],
)
def test_subject_defaults_are_held_to_rfc_5280_bounds_at_load(
    pki: DevCerts, setting: str, value: str, fix: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        ServiceConfig.load(environ=_tls(pki) | {f"SECTIGO_SVC_{setting}": value})

    message = str(refused.value)
    assert message.startswith(f"SECTIGO_SVC_{setting}: "), message
    assert fix in message


def test_subject_defaults_at_their_bounds_load(pki: DevCerts) -> None:
    config = ServiceConfig.load(
        environ=_tls(pki)
        | {
            "SECTIGO_SVC_SUBJECT_ORGANIZATION": "O" * 64,
            "SECTIGO_SVC_SUBJECT_LOCALITY": "Zürich " + "L" * 121,
            "SECTIGO_SVC_SUBJECT_STATE": "S" * 128,
            "SECTIGO_SVC_SUBJECT_COUNTRY": "CH",
        }
    )

    assert len(config.subject_locality) == 128
    assert config.subject_country == "CH"


def test_mutual_tls_settings_are_required_unless_insecure(pki: DevCerts) -> None:
    with pytest.raises(ConfigError) as refused:
        ServiceConfig.load(environ={})

    message = str(refused.value)
    for name in ("SECTIGO_SVC_TLS_CERT", "SECTIGO_SVC_TLS_KEY", "SECTIGO_SVC_TLS_CLIENT_CA"):
        assert name in message
    assert "SECTIGO_SVC_INSECURE" in message
    assert ServiceConfig.load(environ={"SECTIGO_SVC_INSECURE": "true"}).insecure


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("lisen = '127.0.0.1:1'\n", "'lisen'"),
        ("listen = \n", "svc.toml"),
        ("grpc_workers = 'lots'\n", "SECTIGO_SVC_GRPC_WORKERS"),
    ],
)
def test_a_bad_config_file_is_refused_naming_the_problem(
    pki: DevCerts, tmp_path: Path, text: str, named: str
) -> None:
    file = tmp_path / "svc.toml"
    file.write_text(text)

    with pytest.raises(ConfigError) as refused:
        ServiceConfig.load(file, environ=_tls(pki))

    assert named in str(refused.value)


def test_serve_reports_a_bad_setting_and_exits(pki: DevCerts) -> None:
    result = CliRunner().invoke(
        main, ["serve"], env=_tls(pki) | {"SECTIGO_SVC_GRPC_WORKERS": "zero"}
    )

    assert result.exit_code != 0
    assert "SECTIGO_SVC_GRPC_WORKERS" in result.output


def test_serve_insecure_warns_and_serves_plain_text(
    tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    environ = {
        "SECTIGO_SVC_STATE_DIR": str(tmp_path / "state"),
        "SECTIGO_SVC_SECTIGO_ENDPOINT": emulator.api_url,
        "SECTIGO_SVC_SECTIGO_ENVIRONMENT": "testing",
        "SECTIGO_SVC_SECTIGO_TOKEN_CACHE_DIR": str(tmp_path / "tokens"),
        "SECTIGO_SVC_LOG_FORMAT": "json",
        "SECTIGO_USERNAME": USERNAME,
        "SECTIGO_PASSWORD": PASSWORD,
    }

    with serve_process("--insecure", "--listen", "127.0.0.1:0", env=environ) as (process, logs):
        warning = logs.wait_for(
            "serving PLAIN TEXT without client authentication: development only"
        )
        assert warning["level"] == "warning"
        channel = grpc.insecure_channel(f"127.0.0.1:{listening_port(logs)}")
        try:
            poll(lambda: True if health_status(channel) == "SERVING" else None, "SERVING")
        finally:
            channel.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_serve_reports_a_taken_address_in_one_line(
    tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        environ = {
            "SECTIGO_SVC_STATE_DIR": str(tmp_path / "state"),
            "SECTIGO_SVC_SECTIGO_ENDPOINT": emulator.api_url,
            "SECTIGO_SVC_SECTIGO_ENVIRONMENT": "testing",
            "SECTIGO_SVC_SECTIGO_TOKEN_CACHE_DIR": str(tmp_path / "tokens"),
            "SECTIGO_USERNAME": USERNAME,
            "SECTIGO_PASSWORD": PASSWORD,
        }
        result = CliRunner().invoke(
            main, ["serve", "--insecure", "--listen", f"127.0.0.1:{port}"], env=environ
        )

    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_serve_reports_a_broken_policy_in_one_line(pki: DevCerts, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[identities."spiffe://x/y"]\nroles = ["issue", "fly"]\n')
    environ = _tls(pki) | {
        "SECTIGO_SVC_POLICY_FILE": str(policy),
        "SECTIGO_SVC_STATE_DIR": str(tmp_path / "state"),
        "SECTIGO_SVC_SECTIGO_ENDPOINT": "http://127.0.0.1:9",
        "SECTIGO_SVC_SECTIGO_ENVIRONMENT": "testing",
        "SECTIGO_USERNAME": USERNAME,
        "SECTIGO_PASSWORD": PASSWORD,
    }

    result = CliRunner().invoke(main, ["serve"], env=environ)

    assert result.exit_code == 1
    assert "fly" in result.output and str(policy) in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "state" / "requests.db").exists(), "nothing opened for a failed start"
