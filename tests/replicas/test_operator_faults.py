"""Replicas under an operator's reality: a clock that runs ahead of the database's, and a
process frozen (SIGSTOP) while another finishes its requests. Each would order twice or undo
finished work if replicas trusted their own clocks or wrote without their lease."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from sectigo.ca.v1 import ca_pb2 as pb
from tests.fleet import Fleet, Replica
from tests.reliability.lab import Backstage
from tests.replicas.conftest import FleetFactory
from tests.service.helpers import READY, poll, server_key_request, wait_for

LEASE_SECONDS = 2.0
ORDER = "create_batch"
STATE_RANK = {"PENDING": 0, "SUBMITTED": 1, "PROCESSING": 1, "READY": 2}


def faketime(offset: str) -> dict[str, str]:
    """The environment that runs a process under libfaketime with its clock moved by
    ``offset`` (e.g. ``+15m``). ``make system-deps`` installs Debian's faketime."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))
    assert found, "libfaketime is missing: run make system-deps (Debian package faketime)"
    return {"LD_PRELOAD": str(found[0]), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _in_doubt(fleet: Fleet, backstage: Backstage, request_id: str) -> str:
    """Issue on replica 0 with the order's answer lost and the batch not yet listed by Sectigo:
    the request is held in doubt. Returns its batch name."""
    backstage.settings(visibility_lag=600)
    backstage.fault(kind="lost", routes=[ORDER], count=1)
    reply = fleet[0].stub.IssueCertificate(
        server_key_request(request_id, "doubt.example.com"), timeout=10
    )

    def held_in_doubt() -> bool | None:
        got = fleet[0].stub.GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id=request_id), timeout=10
        )
        return True if got.reason.startswith("in doubt") else None

    poll(held_in_doubt, "the order to be in doubt", timeout=30)
    assert len(backstage.batches()) == 1
    return reply.batch_name


def _taken_over_by(fleet: Fleet, request_id: str, replica: Replica) -> None:
    poll(
        lambda: True if fleet.holder_of(request_id) is replica else None,
        f"{replica.name} to take {request_id} over",
        timeout=30,
    )


def test_a_replica_whose_clock_runs_ahead_keeps_the_quarantine_of_the_database_clock(
    fleet_factory: FleetFactory,
) -> None:
    """Replica 0 holds an order in doubt for a 60 s quarantine and dies; a replica whose clock
    is 15 minutes ahead (allowed to take work over) measures the quarantine on the database's
    clock, so it only looks the name up, and adopts the batch once Sectigo lists it."""
    fleet = fleet_factory(1, lease_seconds=LEASE_SECONDS, quarantine=60)
    backstage = Backstage(fleet.emulator)
    batch_name = _in_doubt(fleet, backstage, "skewed-takeover")
    fleet[0].kill()

    skewed = fleet.add("skewed", env=faketime("+15m"), max_clock_skew=3600)
    _taken_over_by(fleet, "skewed-takeover", skewed)
    poll(lambda: True if len(backstage.journal("list_batches")) >= 3 else None, "lookups")
    assert len(backstage.batches()) == 1, "the skewed replica ordered again"

    backstage.settings(visibility_lag=0)
    done = wait_for(skewed.stub, "skewed-takeover", [READY], timeout=30)
    assert [b["batch_name"] for b in backstage.batches()] == [batch_name]
    assert done.batch_id == backstage.batches()[0]["batch_id"]
    measured = skewed.logs.wait_for("store clock measured")
    assert -910 < measured["offset_seconds"] < -890


def test_a_replica_skewed_past_the_bound_takes_no_work_over_and_says_so(
    fleet_factory: FleetFactory,
) -> None:
    fleet = fleet_factory(1, lease_seconds=LEASE_SECONDS, quarantine=60)
    backstage = Backstage(fleet.emulator)
    _in_doubt(fleet, backstage, "skewed-refused")
    fleet[0].kill()

    skewed = fleet.add("skewed", env=faketime("+15m"))
    warning = skewed.logs.wait_for(
        "clock skew: this replica's clock is off the store's; taking no work over"
    )
    assert warning["offset_seconds"] < -890 and warning["max_skew_seconds"] == 5.0
    healthy = fleet.add("healthy")
    _taken_over_by(fleet, "skewed-refused", healthy)
    assert len(backstage.batches()) == 1
    backstage.settings(visibility_lag=0)
    wait_for(healthy.stub, "skewed-refused", [READY], timeout=30)
    assert len(backstage.batches()) == 1


def _states(fleet: Fleet, request_id: str) -> list[str]:
    with psycopg.connect(fleet.database_url) as db:
        rows = db.execute(
            "SELECT snapshot FROM request_history WHERE request_id = %s ORDER BY version",
            (request_id,),
        ).fetchall()
    return [json.loads(row[0])["state"] for row in rows]


def test_a_paused_replica_resumed_after_its_requests_were_finished_elsewhere_changes_nothing(
    fleet_factory: FleetFactory,
) -> None:
    fleet = fleet_factory(2, lease_seconds=LEASE_SECONDS)
    backstage = Backstage(fleet.emulator)
    # The orders are taken at once; their answers come 1.5 s later, by when replica 0 is frozen
    # (a frozen process's read timeout does not run: the answer waits in its socket).
    backstage.fault(kind="slow", routes=[ORDER], count=2, latency_ms=1500)
    paused, other = fleet[0], fleet[1]
    ids = ["paused-1", "paused-2"]
    for request_id in ids:
        paused.stub.IssueCertificate(
            server_key_request(request_id, f"{request_id}.example.com"), timeout=10
        )
    poll(lambda: True if len(backstage.batches()) == 2 else None, "both orders to be taken")
    paused.pause()
    try:
        for request_id in ids:
            wait_for(other.stub, request_id, [READY], timeout=30)
        done = {r: _states(fleet, r) for r in ids}
        before = len(paused.logs.events())
    finally:
        paused.resume()

    # It carries on from its answers: both orders' replies are read and acted on.
    poll(lambda: True if len(paused.logs.events()) >= before + 2 else None, "replica 0 to go on")
    for _ in range(20):
        for request_id in ids:
            for replica in (paused, other):
                got = replica.stub.GetCertificateRequest(
                    pb.GetCertificateRequestRequest(request_id=request_id), timeout=10
                )
                assert got.state == READY
                assert replica.stub.DownloadCertificate(
                    pb.DownloadCertificateRequest(request_id=request_id), timeout=10
                ).certificate_pem
    for request_id in ids:
        states = _states(fleet, request_id)
        assert states[: len(done[request_id])] == done[request_id]
        ranks = [STATE_RANK[s] for s in states]
        assert ranks == sorted(ranks), f"{request_id} moved backwards: {states}"
    assert len(backstage.batches()) == 2
    assert len(backstage.journal("download")) == 2, "a certificate was downloaded twice"
    lost = paused.logs.wait_for("request lost to another replica; dropped", timeout=30)
    assert lost["request_id"] in ids
