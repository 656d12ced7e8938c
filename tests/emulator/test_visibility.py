"""``visibility_lag``: a new batch is invisible to reads until it is that many seconds old."""

from __future__ import annotations

import time

import pytest
import requests

from sectigo_svc.emulator import Emulator
from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Connect
from tests.emulator.helpers import (
    TIMEOUT,
    Api,
    Management,
    assert_error,
    make_csr,
    server_params,
)

NOT_FOUND = -11
LAG = 1.0


def by_id_routes(batch_id: int) -> list[str]:
    base = f"/api/v1/batches/{batch_id}"
    return [base, f"{base}/status", f"{base}/processing_info", f"{base}/download"]


def assert_invisible(api: Api, batch_id: int, name: str) -> None:
    """Exactly what an unknown batch gets: absent from the list, 404 on every by-id route."""
    assert [b for b in api.batches() if b["batchId"] == batch_id] == []
    assert api.batches(batchName=name) == []
    for path in by_id_routes(batch_id):
        response = api.get(path)
        assert_error(response, 404, NOT_FOUND)
        assert response.json()["message"] == f"Batch {batch_id} not found"


def wait_visible(api: Api, batch_id: int, deadline: float) -> float:
    """Poll the detail until it answers 200; returns when (monotonic)."""
    end = time.monotonic() + deadline
    while api.get(f"/api/v1/batches/{batch_id}").status_code != 200:
        assert time.monotonic() < end, f"batch {batch_id} never became visible"
        time.sleep(0.05)
    return time.monotonic()


def test_new_batch_hidden_until_the_lag_has_passed(api: Api, mgmt: Management) -> None:
    mgmt.patch_settings(visibility_lag=LAG)
    created_at = time.monotonic()
    reply = api.create_batch(server_params(), batch_name="lagging")
    assert reply.status_code == 200, reply.text
    batch_id = reply.json()["batchId"]
    assert reply.json()["batchName"] == "lagging"
    assert_invisible(api, batch_id, "lagging")
    # the ledger holds it all along, with its licence spent
    assert [b["batch_id"] for b in mgmt.batches()] == [batch_id]
    assert api.balance(42) == 99

    seen_at = wait_visible(api, batch_id, deadline=LAG + 5)
    assert seen_at - created_at >= LAG
    assert [b["batchName"] for b in api.batches(batchName="lagging")] == ["lagging"]
    assert api.get(f"/api/v1/batches/{batch_id}/status").status_code == 200
    assert api.get(f"/api/v1/batches/{batch_id}/processing_info").status_code == 200
    assert api.download(batch_id).status_code == 200


def test_uploaded_batch_hidden_too(api: Api, mgmt: Management) -> None:
    mgmt.patch_settings(visibility_lag=LAG)
    csr, _ = make_csr("upload.example.com")
    reply = api.upload(csr)
    assert reply.status_code == 200, reply.text
    batch_id = reply.json()["batchId"]
    assert_invisible(api, batch_id, reply.json()["batchName"])
    wait_visible(api, batch_id, deadline=LAG + 5)


def test_lag_is_applied_when_reading(api: Api, mgmt: Management) -> None:
    """Reads see the ledger as it was ``visibility_lag`` seconds ago: older batches stay
    visible when the lag grows, and a shrinking lag reveals young ones at once."""
    old = api.created_batch_id(server_params("old.example.com"), batch_name="old")
    mgmt.patch_settings(visibility_lag=60)
    young = api.created_batch_id(server_params("young.example.com"), batch_name="young")
    assert [b["batchName"] for b in api.batches()] == []
    assert api.get(f"/api/v1/batches/{old}").status_code == 404
    mgmt.patch_settings(visibility_lag=0)
    assert [b["batchName"] for b in api.batches()] == ["old", "young"]
    assert api.batch(young)["batchName"] == "young"


def test_lag_from_start_up(emulator_factory: EmulatorFactory, connect: Connect) -> None:
    emulator = emulator_factory(visibility_lag=30.0)
    api = connect(emulator)
    assert Management(emulator.management_url).faults()["settings"]["visibility_lag"] == 30.0
    batch_id = api.created_batch_id(server_params())
    assert api.get(f"/api/v1/batches/{batch_id}").status_code == 404


@pytest.mark.parametrize("value", [-0.5, "1", True, None])
def test_bad_visibility_lag_refused(emulator: Emulator, value: object) -> None:
    response = requests.patch(
        f"{emulator.management_url}/settings", json={"visibility_lag": value}, timeout=TIMEOUT
    )
    assert response.status_code == 400, response.text
    assert "visibility_lag" in response.json()["error"]
    assert Management(emulator.management_url).faults()["settings"]["visibility_lag"] == 0
