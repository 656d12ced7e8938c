"""Sectigo's clock, availability and credentials change under a running service: it keeps its
promise, says truthfully what is wrong, and recovers by itself."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.reliability.lab import (
    Backstage,
    Callers,
    Scale,
    assert_promise_kept,
    judge,
    settle,
    setups,
)
from tests.reliability.test_pressure import RENEWAL_ROUTES
from tests.reliability.topology import Deploy, Topology
from tests.service.helpers import PASSWORD, failure, health_status, poll

SKEW = 15 * 60


@pytest.mark.parametrize("ahead", [True, False], ids=["service-ahead", "service-behind"])
@pytest.mark.parametrize(("topology", "key_mode"), setups())
def test_clock_skew_costs_no_extra_logins(
    topology: Topology,
    key_mode: str,
    ahead: bool,
    scale: Scale,
    emulator_factory: EmulatorFactory,
    deploy: Deploy,
) -> None:
    """Sectigo's clock 15 minutes behind (or ahead of) the service's, 10-minute tokens: the token
    is judged by when it arrived and how long it lives, so calls do not renew it each time."""
    emulator = emulator_factory(access_lifetime=600, clock_offset=-SKEW if ahead else SKEW)
    backstage = Backstage(emulator)
    service = deploy(topology, emulator)
    callers = Callers(key_mode, "skew")
    started = time.monotonic()

    ids = callers.issue_all(service.stub(), scale.skew_calls)
    final, seconds = settle(service.stub(), ids, timeout=60 + 2 * scale.skew_calls)

    renewals = len(backstage.journal(*RENEWAL_ROUTES))
    calls = len(backstage.journal())
    side = "ahead of" if ahead else "behind"
    figures = judge(
        "clock skew",
        topology,
        callers,
        f"the service's clock 15 minutes {side} Sectigo's; 10-minute tokens",
        backstage,
        final,
        seconds,
        token_renewals=renewals,
        sectigo_calls=calls,
        token_lifetimes=round((time.monotonic() - started) / 600, 2),
    )
    assert_promise_kept(figures, scale)
    assert renewals <= 2, f"{renewals} logins/refreshes for {calls} Sectigo calls"


def _health_trace(
    channels: list[grpc.Channel], stop: threading.Event, seen: list[dict[str, set[str]]]
) -> None:
    """Record every readiness and ``sectigo`` health each replica reports until ``stop``."""
    while not stop.is_set():
        for channel, replica in zip(channels, seen, strict=True):
            for name in ("", "sectigo"):
                try:
                    replica[name].add(health_status(channel, name))
                except grpc.RpcError:
                    replica[name].add("UNREACHABLE")
        stop.wait(0.2)


@pytest.mark.parametrize(("topology", "key_mode"), setups(postgres_key_mode="csr"))
def test_a_sectigo_outage_mid_run_loses_nothing_and_keeps_the_pod_in_rotation(
    topology: Topology,
    key_mode: str,
    scale: Scale,
    emulator_factory: EmulatorFactory,
    deploy: Deploy,
) -> None:
    """Every replica stays ready through the outage while its ``sectigo`` health drops and
    comes back."""
    emulator = emulator_factory(issue_delay=1.0)
    backstage = Backstage(emulator)
    service = deploy(topology, emulator, sectigo_check_interval=0.5)
    callers = Callers(key_mode, "outage")
    ids = callers.issue_all(service.stub(), scale.requests)
    seen: list[dict[str, set[str]]] = [{"": set(), "sectigo": set()} for _ in service.replicas]
    stop = threading.Event()
    channels = service.channels("reader")
    tracer = threading.Thread(target=_health_trace, args=(channels, stop, seen), daemon=True)
    tracer.start()

    def every_replica(name: str, status: str) -> bool | None:
        return True if all(status in replica[name] for replica in seen) else None

    down = backstage.fault(kind="drop")
    poll(lambda: every_replica("sectigo", "NOT_SERVING"), "sectigo health to drop everywhere")
    time.sleep(scale.outage)
    backstage.remove(down)
    recovered_at = time.monotonic()
    poll(
        lambda: True if set(service.health("sectigo")) == {"SERVING"} else None,
        "sectigo to recover everywhere",
    )
    ids.append(callers.issue(service.stub(), callers.request(scale.requests)))
    final, _ = settle(service.stub(), ids, timeout=120, codes=callers.codes)
    recovery = time.monotonic() - recovered_at
    stop.set()
    tracer.join()

    readiness = set().union(*(replica[""] for replica in seen))
    sectigo_health = set().union(*(replica["sectigo"] for replica in seen))
    figures = judge(
        "Sectigo down mid-run",
        topology,
        callers,
        f"every Sectigo connection dropped for {scale.outage:g} s while requests were under way",
        backstage,
        final,
        recovery,
        readiness_seen="/".join(sorted(readiness)),
        sectigo_health_seen="/".join(sorted(sectigo_health)),
    )
    assert_promise_kept(figures, scale)
    for number, replica in enumerate(seen):
        assert replica[""] == {"SERVING"}, f"replica {number} left rotation: {replica['']}"
        assert {"SERVING", "NOT_SERVING"} <= replica["sectigo"], (number, replica["sectigo"])


@pytest.mark.parametrize(("topology", "key_mode"), setups())
def test_a_wrong_password_for_a_while_causes_no_login_storm_and_heals_by_itself(
    topology: Topology,
    key_mode: str,
    scale: Scale,
    emulator_factory: EmulatorFactory,
    deploy: Deploy,
) -> None:
    """Requests are under way when Sectigo starts refusing the service's password (and ends its
    sessions): logins back off, calls that need Sectigo fail fast saying why, and everything
    finishes once the password works again, without a restart. Each replica backs off on its own,
    so a fleet may make that many times one replica's attempts."""
    emulator = emulator_factory(stuck=True)
    backstage = Backstage(emulator)
    service = deploy(topology, emulator, login_backoff_initial=1.0, login_backoff_max=8.0)
    stub = service.stub()
    callers = Callers(key_mode, "password")
    ids = callers.issue_all(stub, scale.requests)
    logins_before = len(backstage.journal("login"))
    backstage.settings(password="rotated-elsewhere")
    backstage.rotate_signing_key()
    wrong_from = time.monotonic()
    poll(
        lambda: True if set(service.health("sectigo")) == {"NOT_SERVING"} else None,
        "sectigo down on every replica",
    )
    asked = time.monotonic()
    refused = failure(lambda: stub.GetLicenses(pb.GetLicensesRequest(), timeout=20))
    answered_in = time.monotonic() - asked
    remaining = scale.wrong_password - (time.monotonic() - wrong_from)
    if remaining > 0:
        time.sleep(remaining)
    attempts = len(backstage.journal("login")) - logins_before
    wrong_for = time.monotonic() - wrong_from
    backstage.settings(password=PASSWORD, stuck=False)
    fixed_at = time.monotonic()
    final, _ = settle(stub, ids, timeout=60, codes=callers.codes)

    # One attempt, then at most one per back-off interval (1 s doubling to 8 s), per replica.
    per_replica = 2 + sum(1 for k in range(40) if sum(min(8, 2**i) for i in range(k)) < wrong_for)
    allowed = topology.replicas * per_replica
    figures = judge(
        "wrong password, then the right one",
        topology,
        callers,
        f"Sectigo refuses the service's password for {wrong_for:.0f} s and ends its sessions",
        backstage,
        final,
        time.monotonic() - fixed_at,
        login_attempts_while_wrong=attempts,
        login_attempts_allowed=allowed,
        refused_rpc_seconds=round(answered_in, 2),
    )
    assert_promise_kept(figures, scale)
    assert attempts <= allowed, f"{attempts} login attempts in {wrong_for:.0f} s"
    assert refused.code == grpc.StatusCode.UNAVAILABLE
    assert "credentials" in refused.details and "retry-after-ms" in refused.trailers
    assert answered_in < 2.0, "a call that needs Sectigo must fail fast while it refuses us"
    assert PASSWORD not in refused.details
