"""``GET /journal``: every API request in arrival order, with its answer and its batch name."""

from __future__ import annotations

import time

import pytest
import requests

from sectigo_svc.emulator import Emulator
from sectigo_svc.emulator.journal import Journal
from tests.emulator.helpers import TIMEOUT, Api, Management, make_csr, server_params


def test_journal_records_route_method_arrival_and_status(api: Api, mgmt: Management) -> None:
    mgmt.clear_journal()
    before = time.time()
    assert api.get("/api/v1/devices").status_code == 200
    assert api.get("/api/v1/profiles/999").status_code == 404
    assert api.get("/no/such/path").status_code == 404
    assert api.request("DELETE", "/api/v1/devices").status_code == 405
    api.access_token = "not-a-token"
    assert api.get("/api/v1/devices").status_code == 401
    after = time.time()

    entries = mgmt.journal()
    assert [(e["route"], e["method"], e["status"]) for e in entries] == [
        ("devices", "GET", 200),
        ("profile_detail", "GET", 404),
        ("unknown", "GET", 404),
        ("unknown", "DELETE", 405),
        ("devices", "GET", 401),
    ]
    assert entries[1]["path"] == "/api/v1/profiles/999"
    arrivals = [e["arrived"] for e in entries]
    assert arrivals == sorted(arrivals)
    assert before <= arrivals[0] and arrivals[-1] <= after
    assert all(isinstance(a, float) for a in arrivals)
    assert all("batchName" not in e for e in entries)


def test_journal_names_the_batch_of_creates_and_uploads(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "throttle", "count": 1, "routes": ["create_batch"]})
    assert api.create_batch(server_params(), batch_name="wanted").status_code == 429
    assert api.create_batch(server_params(), batch_name="wanted").status_code == 200
    assert api.create_batch({"commonName": "x"}, batch_name="refused").status_code == 400
    csr, _ = make_csr("upload.example.com")
    assert api.upload(csr, filename="one.csr").status_code == 200

    creates = mgmt.journal("create_batch")
    assert [(e["batchName"], e["status"]) for e in creates] == [
        ("wanted", 429),
        ("wanted", 200),
        ("refused", 400),
    ]
    (upload,) = mgmt.journal("upload_batch")
    assert upload["batchName"] == "CSR upload one.csr"
    assert upload["status"] == 200


def test_unreadable_create_body_has_no_batch_name(api: Api, mgmt: Management) -> None:
    response = api.request(
        "PUT",
        "/api/v1/batches/createSingleCertBatch",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    (entry,) = mgmt.journal("create_batch")
    assert "batchName" not in entry


def test_journal_marks_answers_that_never_came(emulator: Emulator, mgmt: Management) -> None:
    api = Api(emulator.api_url)
    try:
        assert api.login().status_code == 200
        mgmt.clear_journal()
        for kind in ("drop", "lost", "hang"):
            mgmt.add_faults(
                {"kind": kind, "count": 1, "hang_seconds": 0.2, "routes": ["create_batch"]}
            )
            with pytest.raises(requests.ConnectionError):
                api.create_batch(server_params(), batch_name=kind, timeout=(2.0, 5.0))
        assert [(e["batchName"], e["status"]) for e in mgmt.journal()] == [
            ("drop", "dropped"),
            ("lost", "lost"),
            ("hang", "hang"),
        ]
    finally:
        api.close()


def test_journal_shows_gaps_between_attempts(api: Api, mgmt: Management) -> None:
    """What tests use it for: the time a client waited between two attempts."""
    mgmt.clear_journal()
    assert api.get("/api/v1/devices").status_code == 200
    time.sleep(0.3)
    assert api.get("/api/v1/devices").status_code == 200
    first, second = mgmt.journal("devices")
    assert second["arrived"] - first["arrived"] >= 0.3


def test_clearing_and_filtering(api: Api, mgmt: Management) -> None:
    assert api.get("/api/v1/devices").status_code == 200
    assert api.get("/api/v1/profiles").status_code == 200
    assert [e["route"] for e in mgmt.journal("profiles", "devices")] == ["devices", "profiles"]
    assert [e["route"] for e in mgmt.journal("profiles")] == ["profiles"]
    cleared = requests.delete(f"{mgmt.base_url}/journal", timeout=TIMEOUT)
    assert cleared.json() == {"entries": [], "evicted": 0}
    assert mgmt.journal() == []
    assert api.get("/api/v1/profiles").status_code == 200
    assert [e["route"] for e in mgmt.journal()] == ["profiles"]


def test_management_requests_are_not_journaled(mgmt: Management) -> None:
    mgmt.stats()
    mgmt.faults()
    assert mgmt.journal() == []


def test_journal_keeps_the_latest_entries() -> None:
    ticks = iter(range(100))
    journal = Journal(lambda: float(next(ticks)), capacity=3)
    for index in range(5):
        entry = journal.arrive("devices", "GET", f"/{index}", None)
        journal.settle(entry, 200)
    shown = journal.to_json()
    assert [e["path"] for e in shown["entries"]] == ["/2", "/3", "/4"]
    assert [e["arrived"] for e in shown["entries"]] == [2.0, 3.0, 4.0]
    assert shown["evicted"] == 2
    journal.clear()
    assert journal.to_json() == {"entries": [], "evicted": 0}


def test_pending_entry_has_no_status_yet() -> None:
    journal = Journal(lambda: 1.5)
    journal.arrive("create_batch", "PUT", "/x", "name")
    assert journal.to_json()["entries"] == [
        {
            "route": "create_batch",
            "method": "PUT",
            "path": "/x",
            "arrived": 1.5,
            "status": None,
            "batchName": "name",
        }
    ]
