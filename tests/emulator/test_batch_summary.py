"""``GET /batches`` on the management port: every batch, its name, status and downloads."""

from __future__ import annotations

import time

import pytest
import requests

from tests.emulator.helpers import Api, Management, server_params


def test_summary_lists_every_batch_with_its_downloads(api: Api, mgmt: Management) -> None:
    assert mgmt.batches() == []
    before = time.time()
    first = api.created_batch_id(server_params("a.example.com"), batch_name="twice")
    second = api.created_batch_id(server_params("b.example.com"), batch_name="twice")
    third = api.created_batch_id(server_params("c.example.com"), batch_name="once")
    after = time.time()
    for batch_id in (first, first, third):
        api.wait_for_batch(batch_id)
        assert api.download(batch_id).status_code == 200

    summary = mgmt.batches()
    assert [(b["batch_id"], b["batch_name"], b["downloads"]) for b in summary] == [
        (first, "twice", 2),
        (second, "twice", 0),
        (third, "once", 1),
    ]
    assert [b["status"] for b in summary] == ["COLLECTED", "READY_FOR_DOWNLOAD", "COLLECTED"]
    for batch in summary:
        assert before - 1 <= batch["created"] <= after + 1
        assert set(batch) == {"batch_id", "batch_name", "status", "created", "downloads"}
    names = [b["batch_name"] for b in summary]
    assert names.count("twice") == 2


def test_summary_counts_only_downloads_that_ran(api: Api, mgmt: Management) -> None:
    batch_id = api.created_batch_id(server_params())
    api.wait_for_batch(batch_id)
    mgmt.add_faults({"kind": "error", "status": 503, "count": 1, "routes": ["download"]})
    assert api.download(batch_id).status_code == 503
    assert mgmt.batches()[0]["downloads"] == 0
    mgmt.add_faults({"kind": "slow", "latency_ms": 100, "count": 1, "routes": ["download"]})
    assert api.download(batch_id).status_code == 200
    assert mgmt.batches()[0]["downloads"] == 1


def test_summary_shows_a_batch_whose_reply_was_lost(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "lost", "count": 1, "routes": ["create_batch"]})
    with pytest.raises(requests.ConnectionError):
        api.create_batch(server_params(), batch_name="lost reply")
    assert [b["batch_name"] for b in mgmt.batches()] == ["lost reply"]
