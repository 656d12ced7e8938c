"""``--state-dir``: batches, certificates, licences and revocations survive a restart, and batch
ids go on from where they were, so a client's stored batch ids never point at another batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from cryptography import x509

from sectigo_svc.emulator import Emulator, EmulatorConfig
from tests.emulator.helpers import (
    TIMEOUT,
    Api,
    server_params,
    unzip,
)


def _start(state: Path, **overrides: Any) -> Emulator:
    config = EmulatorConfig(port=0, management_port=0, state_dir=state, **overrides)
    emulator = Emulator(config)
    emulator.start()
    return emulator


def _client(emulator: Emulator) -> Api:
    api = Api(emulator.api_url)
    assert api.login().status_code == 200
    return api


def _crl_serials(emulator: Emulator) -> set[int]:
    response = requests.get(f"{emulator.api_url}/crl/issuing.crl", timeout=TIMEOUT)
    assert response.status_code == 200
    return {r.serial_number for r in x509.load_der_x509_crl(response.content)}


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = _start(state)
    try:
        api = _client(first)
        kept = api.created_batch_id(server_params("kept.example.com"), batch_name="kept")
        api.wait_for_batch(kept)
        archive = api.download(kept).content
        revoked = api.created_batch_id(server_params("gone.example.com"), batch_name="gone")
        api.wait_for_batch(revoked)
        serial = api.find(commonName="gone.example.com")["items"][0]["serialNumber"]
        assert api.revoke(42, {"reasonCode": 4, "serialNumber": serial}).status_code == 200
        rejected = api.created_batch_id(server_params(password="short"), batch_name="refused")
        api.wait_for_batch(rejected)
        before = {
            "batches": api.batches(),
            "devices": api.devices(),
            "balance": api.balance(42),
            "found": api.find(commonName="kept.example.com"),
        }
        api.close()
    finally:
        first.stop()
    assert (state / "ledger.jsonl").stat().st_mode & 0o777 == 0o600

    second = _start(state)
    try:
        api = _client(second)
        assert api.batches() == before["batches"]
        assert api.devices() == before["devices"]
        assert api.balance(42) == before["balance"]
        assert api.find(commonName="kept.example.com") == before["found"]
        assert api.find(serialNumber=serial)["items"][0]["status"] == "REVOKED"
        assert int(serial, 16) in _crl_serials(second)
        again = api.download(kept)
        assert again.status_code == 200
        assert unzip(again.content).keys() == unzip(archive).keys()
        assert api.batch(kept)["status"] == "COLLECTED"
        assert api.batch(rejected)["status"] == "REJECTED"
        # a new batch never reuses an id a client may still hold
        fresh = api.created_batch_id(server_params("new.example.com"))
        assert fresh == max(kept, revoked, rejected) + 1
        api.close()
    finally:
        second.stop()


def test_holds_and_releases_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = _start(state)
    try:
        api = _client(first)
        serials = {}
        for name in ("held", "released"):
            batch_id = api.created_batch_id(server_params(f"{name}.example.com"), batch_name=name)
            api.wait_for_batch(batch_id)
            serial = api.find(commonName=f"{name}.example.com")["items"][0]["serialNumber"]
            assert api.revoke(42, {"reasonCode": 6, "serialNumber": serial}).status_code == 200
            serials[name] = serial
        assert api.revoke(42, {"reasonCode": 8, "serialNumber": serials["released"]}).ok
        api.close()
    finally:
        first.stop()

    second = _start(state)
    try:
        api = _client(second)
        assert api.find(serialNumber=serials["held"])["items"][0]["status"] == "ON_HOLD"
        assert api.find(serialNumber=serials["released"])["items"][0]["status"] == "ISSUED"
        assert _crl_serials(second) == {int(serials["held"], 16)}
        assert api.revoke(42, {"reasonCode": 8, "serialNumber": serials["held"]}).ok
        assert _crl_serials(second) == set()
        api.close()
    finally:
        second.stop()


def test_an_unfinished_batch_finishes_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = _start(state, stuck=True)
    try:
        api = _client(first)
        batch_id = api.created_batch_id(server_params("late.example.com"))
        assert api.batch(batch_id)["status"] == "PROCESSING"
        api.close()
    finally:
        first.stop()
    second = _start(state)
    try:
        api = _client(second)
        assert api.wait_for_batch(batch_id)["status"] == "READY_FOR_DOWNLOAD"
        members = unzip(api.download(batch_id).content)
        assert list(members) == ["late.example.com.p12"]
        api.close()
    finally:
        second.stop()


def test_a_line_cut_short_by_a_crash_is_dropped(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = _start(state)
    try:
        api = _client(first)
        batch_id = api.created_batch_id(server_params("whole.example.com"))
        api.wait_for_batch(batch_id)
        api.close()
    finally:
        first.stop()
    with (state / "ledger.jsonl").open("ab") as ledger:
        ledger.write(b'{"type": "create", "batch_id": 99')  # no newline: a torn write
    second = _start(state)
    try:
        api = _client(second)
        assert [b["batchId"] for b in api.batches()] == [batch_id]
        assert api.created_batch_id(server_params("next.example.com")) == batch_id + 1
        api.close()
    finally:
        second.stop()
