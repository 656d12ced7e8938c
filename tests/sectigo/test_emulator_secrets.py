"""Secrets (password, tokens, PKCS#12 password) never reach logs, exception text or repr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from sectigo_svc.sectigo import SectigoClient
from sectigo_svc.sectigo.errors import InvalidCredentials, SectigoError
from tests.conftest import EmulatorFactory
from tests.sectigo.conftest import ClientFactory, Management, client_config
from tests.sectigo.fakes import PASSWORD
from tests.sectigo.test_emulator_endpoints import P12_PASSWORD, credentials_, server_params


def test_a_full_run_logs_no_secret(
    make_client: ClientFactory, management: Management, tmp_path: Path
) -> None:
    client = make_client()
    errors: list[str] = []
    with capture_logs() as logs:
        batch = client.create_single_cert_batch(1, "secret-run", server_params())
        client.download(batch.batch_id, tmp_path)
        management.rotate_signing_key()
        client.authorities()
        try:
            client.create_single_cert_batch(
                1, "bad", server_params() | {"pkcs12Password": "pw-7chr"}
            )
        except SectigoError as exc:
            errors.append(f"{exc!s} {exc!r}")
    path = client.credential_store.cache_path
    assert path is not None
    cached = json.loads(path.read_text())
    secrets = [PASSWORD, P12_PASSWORD, "pw-7chr", cached["accessToken"], cached["refreshToken"]]
    shown = repr(logs) + "".join(errors) + repr(client.credential_store)
    assert [s for s in secrets if s in shown] == []
    assert any(e["event"] == "sectigo call" and e["endpoint"] == "login" for e in logs)


def test_failed_logins_do_not_echo_the_password(
    emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    emulator = emulator_factory()
    wrong = "wrong-but-still-secret"
    with (
        SectigoClient.build(
            client_config(emulator, tmp_path), credentials_(password=wrong)
        ) as client,
        capture_logs() as logs,
        pytest.raises(InvalidCredentials) as caught,
    ):
        client.authorities()
    assert wrong not in f"{caught.value!s} {caught.value!r} {logs!r}"
