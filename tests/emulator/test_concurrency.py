"""Many clients at once: distinct batch ids and exact licence accounting."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sectigo_svc.emulator import Emulator
from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Connect
from tests.emulator.helpers import Api, assert_licence_invariant, server_params

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
    assert api.balance(1) == 100 - THREADS
    assert api.balance(2) == 100
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
    emulator = emulator_factory(balances=((1, 5), (2, 100)))
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
    assert admin.balance(1) == 0
    assert len(admin.batches()) == 5
    for batch in admin.batches():
        admin.wait_for_batch(batch["batchId"])
    assert admin.devices() == {"ordered": 105, "issued": 5}
    assert_licence_invariant(admin)
