"""Fencing and forward-only states: the store refuses a write from a replica that lost its lease
(a paused or cut-off process) and any write that would move a request's state backwards."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from sectigo_svc.domain.lifecycle import MAY_FOLLOW, may_follow
from sectigo_svc.domain.models import RequestState
from sectigo_svc.sealing import Sealer
from sectigo_svc.store.base import (
    Fence,
    LeaseLost,
    RequestStore,
    StaleUpdate,
    TransitionRefused,
)
from sectigo_svc.store.sqlite import SqliteStore
from tests.store.conftest import KEY, Backend
from tests.store.test_contract import _request
from tests.store.test_leases import _replica

S = RequestState


def test_every_state_has_a_rule_and_no_finished_state_goes_back() -> None:
    assert set(MAY_FOLLOW) == set(RequestState)
    for finished in (S.READY, S.REJECTED, S.FAILED, S.REVOKED):
        for earlier in (S.PENDING, S.SUBMITTED, S.PROCESSING):
            assert not may_follow(finished, earlier), (finished, earlier)
    assert not may_follow(S.REVOKED, S.READY)
    assert not may_follow(S.REVOKED, S.ON_HOLD)
    assert may_follow(S.ON_HOLD, S.READY) and may_follow(S.READY, S.ON_HOLD)  # hold, release
    assert may_follow(S.PROCESSING, S.SUBMITTED)  # a lookup found the batch under another id


def test_a_finished_request_never_moves_back(store: RequestStore) -> None:
    request, _ = store.create(_request("done"), None)
    ready = store.update(dataclasses.replace(request, state=S.READY, batch_id=7))

    with pytest.raises(TransitionRefused, match="READY; it cannot become SUBMITTED"):
        store.update(dataclasses.replace(ready, state=S.SUBMITTED, batch_id=8))

    assert store.get(*ready.key) == ready
    assert store.update(dataclasses.replace(ready, reason="noted")).state is S.READY


def test_a_write_under_a_lost_lease_is_refused_and_names_it(
    backend: Backend, tmp_path: Path
) -> None:
    """A replica paused past its lease writes with the epoch it had; the new holder's claim moved
    the epoch on, so that write is refused, while the new holder's writes go through."""
    first = backend.store if backend.name == "sqlite" else _replica(backend.url, "first", 0.3)
    request, _ = first.create(_request("paused"), None)
    (claim,) = first.claim([request.key])
    stale = Fence(first.holder, claim.epoch)
    first.update(dataclasses.replace(request, reason="mine"), fence=stale)

    first.close()
    if backend.name == "sqlite":
        second: RequestStore = SqliteStore(tmp_path / "requests.db", Sealer(KEY))
    else:
        time.sleep(0.5)  # the first holder's lease lapses unrenewed
        second = _replica(backend.url, "second")
    (taken,) = second.claim([request.key])
    assert taken.taken_over and taken.epoch == claim.epoch + 1
    current = second.get(*request.key)
    assert current is not None
    ready = second.update(
        dataclasses.replace(current, state=S.READY, batch_id=1),
        fence=Fence(second.holder, taken.epoch),
    )

    with pytest.raises(LeaseLost):
        second.update(dataclasses.replace(ready, state=S.SUBMITTED, batch_id=2), fence=stale)
    assert second.get(*request.key) == ready
    second.close()


def test_an_own_live_lease_keeps_its_epoch_and_a_lapsed_one_moves_on(backend: Backend) -> None:
    if backend.name == "sqlite":
        store: RequestStore = backend.store
    else:
        store = _replica(backend.url, "short", lease_seconds=0.3)
    request, _ = store.create(_request("epochs"), None)
    (one,) = store.claim([request.key])
    (two,) = store.claim([request.key])
    assert one.epoch == two.epoch
    if backend.name == "postgres":
        time.sleep(0.5)  # the lease lapses: this holder's next claim is a new one
        (three,) = store.claim([request.key])
        assert three.epoch == two.epoch + 1
        with pytest.raises(LeaseLost):
            store.update(request, fence=Fence(store.holder, two.epoch))
        store.close()


def test_a_stale_version_is_still_a_stale_update(store: RequestStore) -> None:
    request, _ = store.create(_request("cas"), None)
    store.update(dataclasses.replace(request, reason="first"))
    with pytest.raises(StaleUpdate):
        store.update(dataclasses.replace(request, reason="second"))


def test_a_claim_of_own_leases_only_takes_nothing_over(postgres_url: str) -> None:
    """A replica whose clock is skewed claims by key only what it holds already."""
    other = _replica(postgres_url, "other", lease_seconds=0.2)
    theirs, _ = other.create(_request("theirs"), None)
    other.close()
    time.sleep(0.4)  # their lease lapses
    skewed = _replica(postgres_url, "skewed")
    mine, _ = skewed.create(_request("mine"), None)

    assert skewed.claim([theirs.key], own_only=True) == []
    assert [c.key for c in skewed.claim([mine.key], own_only=True)] == [mine.key]
    assert [c.key for c in skewed.claim([theirs.key])] == [theirs.key]  # without the guard
    skewed.close()
