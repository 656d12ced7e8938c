"""Throttling and load: 429 with Retry-After on every endpoint, and many concurrent issuances
under a fault mix with slow orders and short-lived tokens."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import grpc
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.reliability.lab import (
    KEY_MODES,
    Backstage,
    Callers,
    Scale,
    assert_promise_kept,
    judge,
    settle,
    setups,
)
from tests.reliability.test_orders import ORDER_ROUTE
from tests.reliability.topology import TOPOLOGIES, Deploy, Topology

# A request another thread sent just before a 429 closed the gate may arrive a moment after it.
IN_FLIGHT = 0.15
RENEWAL_ROUTES = ("login", "refresh")
# Every replica calls these with the same path; the rest name one request's batch, which only the
# replica tracking (or revoking) that request calls.
SHARED_ROUTES = (*RENEWAL_ROUTES, "authorities", "profile_parameters")


def gaps_after_throttling(entries: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
    """For each route answered 429: the seconds until that very call (same path and batch name)
    was sent again; and the shortest wait before any request that was not already in flight."""
    same: dict[str, float] = {}
    any_route = float("inf")
    for index, entry in enumerate(entries):
        if entry["status"] != 429:
            continue
        at = entry["arrived"]
        later = entries[index + 1 :]
        call = (entry["path"], entry.get("batchName"))
        again = next((e for e in later if (e["path"], e.get("batchName")) == call), None)
        if again is not None:
            gap = again["arrived"] - at
            same[entry["route"]] = min(same.get(entry["route"], gap), gap)
        fresh = [e["arrived"] - at for e in later if e["arrived"] - at > IN_FLIGHT]
        if fresh:
            any_route = min(any_route, *fresh)
    return same, any_route


@pytest.mark.parametrize(("topology", "key_mode"), setups(postgres_key_mode="csr"))
def test_429_with_retry_after_on_every_endpoint_is_honoured(
    topology: Topology,
    key_mode: str,
    scale: Scale,
    emulator_factory: EmulatorFactory,
    deploy: Deploy,
) -> None:
    """One 429 on each endpoint: no call goes out again before its Retry-After. The gate is each
    replica's own, and the journal does not say which replica called: with several replicas only
    calls one replica alone makes (one request's batch, one revoke at a time) are judged; the
    shortest gap on the routes every replica calls (login, refresh, catalog) is recorded."""
    wait = 2 if scale.name == "short" else 5
    emulator = emulator_factory(access_lifetime=4, refresh_lifetime=3600)
    backstage = Backstage(emulator)
    service = deploy(topology, emulator)
    stub = service.stub()
    routes = (
        *RENEWAL_ROUTES,
        "authorities",
        "profile_parameters",
        ORDER_ROUTE[key_mode],
        "batch_detail",
        "processing_info",
        "download",
        "revoke",
    )
    time.sleep(4)  # the first tokens expire: the next call renews them, into the 429
    for route in routes:
        backstage.fault(kind="throttle", routes=[route], count=1, retry_after=wait)
    callers = Callers(key_mode, "throttled")
    ids = callers.issue_all(stub, scale.requests)
    final, seconds = settle(stub, ids, timeout=60 + 10 * scale.requests, codes=callers.codes)
    for request_id in ids:
        try:
            stub.RevokeCertificate(
                pb.RevokeCertificateRequest(
                    request_id=request_id, reason=pb.REVOCATION_REASON_SUPERSEDED
                ),
                timeout=30,
            )
        except grpc.RpcError as exc:
            callers.codes[f"revoke {cast(grpc.Call, exc).code().name}"] += 1

    entries = backstage.journal()
    throttled = sorted({e["route"] for e in entries if e["status"] == 429})
    same, any_route = gaps_after_throttling(entries)
    one_replica = topology.replicas == 1
    judged = {r: gap for r, gap in same.items() if one_replica or r not in SHARED_ROUTES}
    gaps = {"shortest_gap_same_route": round(min(judged.values()), 2)}
    if one_replica:
        gaps["shortest_gap_any_route"] = round(any_route, 2)
    elif shared := [gap for r, gap in same.items() if r in SHARED_ROUTES]:
        gaps["shortest_gap_shared_route_any_replica"] = round(min(shared), 2)
    figures = judge(
        "429 with Retry-After on every endpoint",
        topology,
        callers,
        f"one 429 with Retry-After: {wait} on each of {', '.join(routes)}",
        backstage,
        final,
        seconds,
        retry_after=wait,
        throttled_routes=len(throttled),
        **gaps,
    )
    assert_promise_kept(figures, scale)
    assert {ORDER_ROUTE[key_mode], "revoke", "batch_detail", "download"} <= set(throttled), (
        throttled
    )
    assert not [code for code in callers.codes if code.startswith("revoke ")], callers.codes
    too_soon = {route: gap for route, gap in judged.items() if gap < wait * 0.95}
    assert not too_soon, f"sent again sooner than Retry-After: {too_soon}"
    if one_replica:
        assert any_route >= wait * 0.95, f"a call left {any_route:.2f} s after a 429 of {wait} s"


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=str)
def test_concurrent_issuances_under_a_fault_mix_with_slow_orders_and_short_tokens(
    topology: Topology, scale: Scale, emulator_factory: EmulatorFactory, deploy: Deploy
) -> None:
    read_timeout, lifetime = 2.0, 3
    emulator = emulator_factory(
        access_lifetime=lifetime, refresh_lifetime=3600, balances=((42, 2 * scale.concurrent),)
    )
    backstage = Backstage(emulator)
    service = deploy(topology, emulator, sectigo_timeout=read_timeout, quarantine=read_timeout + 6)
    slow_ms = int((read_timeout + 1) * 1000)
    for route in ORDER_ROUTE.values():
        backstage.fault(kind="slow", routes=[route], rate=0.3, latency_ms=slow_ms)
    backstage.fault(kind="latency", latency_ms=25)
    backstage.fault(kind="error", rate=0.05, status=503)
    backstage.fault(kind="throttle", rate=0.03, retry_after=1)
    backstage.fault(kind="drop", rate=0.01)
    per_mode = scale.concurrent // 2
    everyone = {mode: Callers(mode, "mix") for mode in KEY_MODES}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        issued = [
            pool.submit(callers.issue, service.stub(), callers.request(n))
            for n in range(per_mode)
            for callers in everyone.values()
        ]
        for future in issued:
            future.result()
    backstage.clear()  # the faults end; what matters now is that everything finishes
    for callers in everyone.values():
        final, _ = settle(
            service.stub(), callers.batch_names, timeout=120 + scale.concurrent, codes=callers.codes
        )
        elapsed = time.monotonic() - started
        logins = len(backstage.journal("login"))
        renewals = logins + len(backstage.journal("refresh"))
        figures = judge(
            "concurrent issuances under a fault mix",
            topology,
            callers,
            f"{scale.concurrent} concurrent issuances (both key modes); 30 % of orders answered "
            f"after the {read_timeout:g} s read timeout; 5 % 503, 3 % 429, 1 % dropped, 25 ms "
            f"latency; {lifetime} s access tokens",
            backstage,
            final,
            elapsed,
            logins=logins,
            token_renewals=renewals,
            token_lifetimes=round(elapsed / lifetime, 1),
        )
        assert_promise_kept(figures, scale)
        # The margin renews at half-life; anything near one renewal per call would be far more.
        assert renewals <= 3 * elapsed / lifetime + 5, (renewals, elapsed)
