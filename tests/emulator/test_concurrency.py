"""Many clients at once: distinct batch ids, exact licence accounting, settings changed mid-way."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sectigo_svc.emulator import Emulator
from sectigo_svc.emulator.settings import Settings
from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Connect
from tests.emulator.helpers import Api, Management, assert_licence_invariant, server_params

THREADS = 32


def test_parallel_batch_creation(emulator: Emulator, api: Api) -> None:
    barrier = threading.Barrier(THREADS)
    token = api.access_token

    def create(index: int) -> int:
        client = Api(emulator.api_url)
        client.access_token = token
        try:
            barrier.wait(timeout=10)
            return client.created_batch_id(
                server_params(f"host{index}.example.com"), batch_name=f"parallel-{index}"
            )
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        ids = list(pool.map(create, range(THREADS)))

    assert len(set(ids)) == THREADS
    assert sorted(ids) == list(range(10000, 10000 + THREADS))
    assert api.balance(42) == 100 - THREADS
    assert api.balance(85) == 100
    for batch_id in ids:
        assert api.wait_for_batch(batch_id)["status"] == "READY_FOR_DOWNLOAD"
    assert api.devices() == {"ordered": 200, "issued": THREADS}
    listing = api.batches()
    assert sorted(b["batchId"] for b in listing) == sorted(ids)
    assert {b["batchName"] for b in listing} == {f"parallel-{i}" for i in range(THREADS)}
    assert_licence_invariant(api)


def test_parallel_creation_never_overspends(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    emulator = emulator_factory(balances=((42, 5), (85, 100)))
    admin = connect(emulator)
    barrier = threading.Barrier(16)

    def create(index: int) -> int:
        client = Api(emulator.api_url)
        client.access_token = admin.access_token
        try:
            barrier.wait(timeout=10)
            return client.create_batch(server_params(f"h{index}.example.com")).status_code
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(create, range(16)))
    assert statuses.count(200) == 5
    assert statuses.count(402) == 11
    assert admin.balance(42) == 0
    assert len(admin.batches()) == 5
    for batch in admin.batches():
        admin.wait_for_batch(batch["batchId"])
    assert admin.devices() == {"ordered": 105, "issued": 5}
    assert_licence_invariant(admin)


def test_stuck_switched_while_batches_are_created(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    """A batch created as ``stuck`` goes off must not miss the release and stay stuck forever."""
    emulator = emulator_factory(key_type="ec256", balances=((42, 10_000), (85, 100)))
    admin = connect(emulator)
    mgmt = Management(emulator.management_url)
    flipping = threading.Event()
    flipping.set()

    def create(index: int) -> list[int]:
        client = Api(emulator.api_url, keep_alive=True)
        client.access_token = admin.access_token
        created: list[int] = []
        try:
            while flipping.is_set():
                name = f"c{index}-{len(created)}.example.com"
                created.append(client.created_batch_id(server_params(name)))
        finally:
            client.close()
        return created

    with ThreadPoolExecutor(max_workers=4) as pool:
        creators = [pool.submit(create, index) for index in range(4)]
        for _ in range(40):
            mgmt.patch_settings(stuck=True)
            mgmt.patch_settings(stuck=False)
        flipping.clear()
        ids = [batch_id for creator in creators for batch_id in creator.result()]

    assert len(ids) > 4
    deadline = time.monotonic() + 5.0
    while waiting := [b for b in admin.batches(limit=1000) if b["status"] != "READY_FOR_DOWNLOAD"]:
        assert time.monotonic() < deadline, waiting
        time.sleep(0.05)
    assert len(admin.batches(limit=1000)) == len(ids)


def test_batch_replies_agree_with_themselves_while_batches_settle(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    """Each reply reads one snapshot: never PROCESSING yet downloadable, nor settled yet active."""
    emulator = emulator_factory(key_type="ec256", issue_delay=0.3)
    admin = connect(emulator)
    ids = [admin.created_batch_id(server_params(f"s{i}.example.com")) for i in range(8)]

    def poll(batch_id: int) -> list[tuple[str, bool, bool]]:
        client = Api(emulator.api_url, keep_alive=True)
        client.access_token = admin.access_token
        seen: list[tuple[str, bool, bool]] = []
        try:
            while not seen or seen[-1][0] != "READY_FOR_DOWNLOAD":
                detail = client.batch(batch_id)
                seen.append((detail["status"], detail["downloadable"], detail["active"]))
                info = client.get(f"/api/v1/batches/{batch_id}/processing_info").json()
                assert info["active"] + info["success"] == 1 and info["failed"] == 0, info
        finally:
            client.close()
        return seen

    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        observations = [seen for result in pool.map(poll, ids) for seen in result]

    assert {status for status, _, _ in observations} == {
        "CREATED",
        "PROCESSING",
        "READY_FOR_DOWNLOAD",
    }
    for status, downloadable, active in observations:
        settled = status == "READY_FOR_DOWNLOAD"
        assert (downloadable, active) == (settled, not settled), (status, downloadable, active)


def test_stuck_turned_off_right_after_a_create_read_its_settings(
    emulator: Emulator, api: Api, mgmt: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race above, made certain: ``stuck`` goes off between the create's read of the
    settings and its ledger entry. The batch must still finish."""
    mgmt.patch_settings(stuck=True)
    read_settings = emulator.settings.get
    armed = threading.Event()
    armed.set()

    def read_then_release() -> Settings:
        current = read_settings()
        if armed.is_set():
            armed.clear()
            mgmt.patch_settings(stuck=False)
        return current

    monkeypatch.setattr(emulator.settings, "get", read_then_release)
    batch_id = api.created_batch_id(server_params())
    assert not armed.is_set()
    assert api.wait_for_batch(batch_id, deadline=2.0)["status"] == "READY_FOR_DOWNLOAD"


def test_concurrent_setting_changes_reach_the_ledger_in_order(
    emulator: Emulator, api: Api, mgmt: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second PATCH arriving while the first is under way must not overtake it on its way
    to the ledger, or the ledger keeps ``stuck`` on while the settings say off."""
    set_stuck = emulator.ledger.set_stuck
    second: list[threading.Thread] = []

    def set_while_another_patch_arrives(stuck: bool) -> None:
        if not second:
            second.append(threading.Thread(target=mgmt.patch_settings, kwargs={"stuck": False}))
            second[0].start()
            second[0].join(timeout=0.3)  # in vain when the PATCHes take turns, as they should
        set_stuck(stuck)

    monkeypatch.setattr(emulator.ledger, "set_stuck", set_while_another_patch_arrives)
    mgmt.patch_settings(stuck=True)
    second[0].join(timeout=5.0)
    assert not second[0].is_alive()
    assert mgmt.faults()["settings"]["stuck"] is False
    batch_id = api.created_batch_id(server_params())
    assert api.wait_for_batch(batch_id, deadline=2.0)["status"] == "READY_FOR_DOWNLOAD"
