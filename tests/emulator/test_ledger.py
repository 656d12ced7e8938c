"""The ledger on its own, with a hand-driven clock: snapshots and the ``stuck`` switch."""

from __future__ import annotations

import dataclasses

import pytest

from sectigo_svc.emulator.catalog import account_profiles
from sectigo_svc.emulator.ledger import BatchView, Ledger, Settled

PASSWORD = "secrtpasswrd"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(clock: Clock) -> Ledger:
    return Ledger({42: 10, 85: 10}, clock)


def create(ledger: Ledger, delay: float = 1.0) -> int:
    profile = account_profiles().by_authority(42)
    assert profile is not None
    created = ledger.create(profile, "batch", 1, Settled("issued"), PASSWORD, delay)
    batch_id = created["batchId"]
    assert isinstance(batch_id, int)
    return batch_id


def view(ledger: Ledger, batch_id: int) -> BatchView:
    found = ledger.view(batch_id)
    assert found is not None
    return found


def assert_consistent(snapshot: BatchView) -> None:
    """Every part of one snapshot tells the same story."""
    detail = snapshot.detail
    assert detail["status"] == snapshot.status
    assert detail["downloadable"] is snapshot.downloadable
    settled = snapshot.status not in ("CREATED", "PROCESSING")
    assert detail["active"] is not settled
    assert snapshot.processing_info["active"] == (0 if settled else 1)
    assert snapshot.downloadable is (snapshot.status in ("READY_FOR_DOWNLOAD", "COLLECTED"))


def test_view_is_a_snapshot_not_the_live_batch(ledger: Ledger, clock: Clock) -> None:
    """A reply built from a view reads one instant, whatever happens to the batch meanwhile."""
    batch_id = create(ledger)
    waiting = view(ledger, batch_id)
    clock.now = 2.0
    ready = view(ledger, batch_id)
    ledger.record_download(batch_id)
    collected = view(ledger, batch_id)

    assert (waiting.status, ready.status, collected.status) == (
        "CREATED",
        "READY_FOR_DOWNLOAD",
        "COLLECTED",
    )
    for snapshot in (waiting, ready, collected):
        assert_consistent(snapshot)
    assert waiting.detail["downloadable"] is False
    assert waiting.processing_info == {"active": 1, "success": 0, "failed": 0}
    assert ready.detail["status"] == "READY_FOR_DOWNLOAD"
    assert ready.password == PASSWORD
    with pytest.raises(dataclasses.FrozenInstanceError):
        waiting.status = "READY_FOR_DOWNLOAD"  # type: ignore[misc]


def test_unknown_batch_has_no_view(ledger: Ledger) -> None:
    assert ledger.view(99999) is None


def test_stuck_applies_to_batches_created_while_it_is_on(ledger: Ledger, clock: Clock) -> None:
    before = create(ledger)
    ledger.set_stuck(True)
    stuck = create(ledger)
    clock.now = 2.0
    assert view(ledger, before).status == "READY_FOR_DOWNLOAD"
    assert view(ledger, stuck).status == "PROCESSING"
    ledger.set_stuck(True)  # setting it again changes nothing
    assert view(ledger, stuck).status == "PROCESSING"
    ledger.set_stuck(False)
    assert view(ledger, stuck).status == "READY_FOR_DOWNLOAD"
    after = create(ledger, delay=0.0)
    assert view(ledger, after).status == "READY_FOR_DOWNLOAD"
