"""Fault injection: every knob, through the management API and through start-up config."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sectigo_svc.emulator import Emulator, FaultRule
from sectigo_svc.emulator.faults import CHAOS_PRESET
from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Connect
from tests.emulator.helpers import (
    TIMEOUT,
    Api,
    Management,
    assert_error,
    faults_applied,
    server_params,
    status_counts,
)

INJECTED = -1


def timed_get(api: Api, path: str) -> tuple[requests.Response, float]:
    start = time.monotonic()
    response = api.get(path)
    return response, time.monotonic() - start


def test_fault_rules_round_trip(mgmt: Management) -> None:
    added = mgmt.add_faults(
        {"kind": "latency", "latency_ms": 10, "routes": ["devices"]},
        {"kind": "error", "status": 500, "rate": 0.5, "count": 3},
    )
    assert [r["kind"] for r in added] == ["latency", "error"]
    assert len({r["id"] for r in added}) == 2
    listed = mgmt.faults()
    assert [r["id"] for r in listed["rules"]] == [r["id"] for r in added]
    error_rule = listed["rules"][1]
    assert error_rule["status"] == 500
    assert error_rule["rate"] == 0.5
    assert error_rule["count"] == 3
    assert listed["rules"][0]["routes"] == ["devices"]
    assert set(listed["settings"]) >= {
        "access_lifetime",
        "refresh_lifetime",
        "issue_delay",
        "stuck",
    }

    response = mgmt.delete_fault(added[0]["id"])
    assert response.status_code in (200, 204)
    assert [r["id"] for r in mgmt.faults()["rules"]] == [added[1]["id"]]
    mgmt.clear_faults()
    assert mgmt.faults()["rules"] == []


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "explode"},
        {"kind": "error", "rate": 2},
        {"kind": "latency"},
        {"kind": "slow"},
        {"kind": "error", "status": 200},
        {"kind": "error", "colour": "red"},
        {"rate": 1},
    ],
    ids=["kind", "rate", "latency-ms", "slow-latency-ms", "status", "unknown-field", "no-kind"],
)
def test_bad_fault_rule_refused(mgmt: Management, rule: dict[str, object]) -> None:
    response = requests.post(f"{mgmt.base_url}/faults", json=rule, timeout=TIMEOUT)
    assert response.status_code == 400, response.text
    assert mgmt.faults()["rules"] == []


def test_latency_rule(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "latency", "latency_ms": 300, "routes": ["devices"]})
    response, elapsed = timed_get(api, "/api/v1/devices")
    assert response.status_code == 200
    assert elapsed >= 0.3
    other, other_elapsed = timed_get(api, "/api/v1/authorities/allowed")
    assert other.status_code == 200
    assert other_elapsed < 0.25
    assert faults_applied(mgmt.stats(), "latency") == 1


def test_latency_adds_up_and_lets_other_rules_run(api: Api, mgmt: Management) -> None:
    mgmt.add_faults(
        {"kind": "latency", "latency_ms": 150, "routes": ["devices"]},
        {"kind": "latency", "latency_ms": 150, "routes": ["devices"]},
        {"kind": "error", "status": 502, "routes": ["devices"]},
    )
    response, elapsed = timed_get(api, "/api/v1/devices")
    assert_error(response, 502, INJECTED)
    assert elapsed >= 0.3


def test_error_rule_does_not_process(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "error", "status": 500, "routes": ["create_batch"]})
    before = mgmt.stats()
    response = api.create_batch(server_params(), batch_name="failing")
    assert_error(response, 500, INJECTED)
    after = mgmt.stats()
    assert after["batches_created"] == before["batches_created"]
    assert faults_applied(after, "error") == faults_applied(before, "error") + 1
    assert status_counts(after, "create_batch").get(500) == 1
    assert api.batches(batchName="failing") == []
    assert api.balance(42) == 100

    mgmt.clear_faults()
    assert api.create_batch(server_params(), batch_name="working").status_code == 200
    assert mgmt.stats()["batches_created"] == before["batches_created"] + 1


def test_error_rule_default_status_503(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "error", "routes": ["devices"]})
    assert_error(api.get("/api/v1/devices"), 503, INJECTED)


@pytest.mark.parametrize("status", [599, 420, 499, 520])
def test_error_rule_any_error_status(api: Api, mgmt: Management, status: int) -> None:
    """Statuses Python's ``HTTPStatus`` does not know are answered too, with a generic reason."""
    mgmt.add_faults({"kind": "error", "status": status, "routes": ["devices"]})
    response = api.get("/api/v1/devices")
    assert_error(response, status, INJECTED)
    assert response.reason == "Error"
    assert status_counts(mgmt.stats(), "devices") == {status: 1}


def test_throttle_rule(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "throttle", "retry_after": 7, "routes": ["create_batch"]})
    response = api.create_batch(server_params(), batch_name="throttled")
    assert_error(response, 429, INJECTED)
    assert response.headers["Retry-After"] == "7"
    assert api.batches() == []
    assert faults_applied(mgmt.stats(), "throttle") == 1
    assert mgmt.stats()["batches_created"] == 0


def test_throttle_default_retry_after(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "throttle", "routes": ["devices"]})
    response = api.get("/api/v1/devices")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"


def test_drop_rule(emulator: Emulator, mgmt: Management) -> None:
    api = Api(emulator.api_url)
    try:
        assert api.login().status_code == 200
        mgmt.add_faults({"kind": "drop", "routes": ["create_batch"]})
        with pytest.raises(requests.ConnectionError):
            api.create_batch(server_params(), batch_name="dropped")
        mgmt.clear_faults()
        assert api.batches(batchName="dropped") == []
        assert mgmt.stats()["batches_created"] == 0
        assert faults_applied(mgmt.stats(), "drop") == 1
    finally:
        api.close()


def test_hang_rule_processes_but_never_answers(emulator: Emulator, mgmt: Management) -> None:
    api = Api(emulator.api_url)
    try:
        assert api.login().status_code == 200
        mgmt.add_faults({"kind": "hang", "hang_seconds": 1, "routes": ["create_batch"]})
        start = time.monotonic()
        with pytest.raises(requests.ReadTimeout):
            api.create_batch(server_params(), batch_name="hung", timeout=(2.0, 0.4))
        assert time.monotonic() - start < 1.0
        mgmt.clear_faults()
        found = api.batches(batchName="hung")
        assert len(found) == 1
        assert found[0]["batchName"] == "hung"
        assert api.wait_for_batch(found[0]["batchId"])["status"] == "READY_FOR_DOWNLOAD"
        assert faults_applied(mgmt.stats(), "hang") == 1
        assert mgmt.stats()["batches_created"] == 1
    finally:
        api.close()


def test_hang_closes_connection_after_hang_seconds(
    emulator: Emulator, connect: Connect, mgmt: Management
) -> None:
    api = connect(emulator)
    mgmt.add_faults({"kind": "hang", "hang_seconds": 0.5, "routes": ["devices"]})
    start = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        api.get("/api/v1/devices", timeout=(2.0, 5.0))
    elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 4.0, elapsed


def test_count_retires_a_rule(api: Api, mgmt: Management) -> None:
    (rule,) = mgmt.add_faults({"kind": "error", "count": 2, "routes": ["devices"]})
    assert api.get("/api/v1/devices").status_code == 503
    remaining = [r for r in mgmt.faults()["rules"] if r["id"] == rule["id"]]
    assert [r["count"] for r in remaining] == [1]
    assert api.get("/api/v1/devices").status_code == 503
    assert api.get("/api/v1/devices").status_code == 200
    assert api.get("/api/v1/devices").status_code == 200
    assert mgmt.faults()["rules"] == []
    assert faults_applied(mgmt.stats(), "error") == 2


def test_routes_filter(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "error", "status": 500, "routes": ["devices", "balance"]})
    assert api.get("/api/v1/devices").status_code == 500
    assert api.get("/api/v1/authorities/42/balanceavailable").status_code == 500
    assert api.get("/api/v1/authorities/allowed").status_code == 200
    assert api.get("/api/v1/profiles").status_code == 200
    assert api.login().status_code == 200


def test_empty_routes_hit_everything_but_exempt_routes(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "error", "status": 500})
    assert api.get("/api/v1/devices").status_code == 500
    assert api.get("/api/v1/profiles").status_code == 500
    assert api.login().status_code == 500
    for path in ("/status", "/crl/issuing.crl", "/ca/chain.pem"):
        assert requests.get(f"{api.base_url}{path}", timeout=TIMEOUT).status_code == 200, path


def test_rate_zero_never_fires(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "error", "rate": 0})
    for _ in range(30):
        assert api.get("/api/v1/devices").status_code == 200
    assert faults_applied(mgmt.stats(), "error") == 0
    assert len(mgmt.faults()["rules"]) == 1


def test_partial_rate_fires_sometimes(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "error", "rate": 0.5, "routes": ["devices"]})
    statuses = [api.get("/api/v1/devices").status_code for _ in range(60)]
    # P(all equal) = 2 * 0.5**60: negligible
    assert statuses.count(503) > 0
    assert statuses.count(200) > 0
    assert faults_applied(mgmt.stats(), "error") == statuses.count(503)


def test_start_up_faults(emulator_factory: EmulatorFactory, connect: Connect) -> None:
    emulator = emulator_factory(
        faults=(FaultRule(kind="error", status=502, routes=("devices",), count=1),)
    )
    api = connect(emulator)
    assert_error(api.get("/api/v1/devices"), 502, INJECTED)
    assert api.get("/api/v1/devices").status_code == 200
    assert Management(emulator.management_url).faults()["rules"] == []


def test_start_up_latency(emulator_factory: EmulatorFactory, connect: Connect) -> None:
    emulator = emulator_factory(faults=(FaultRule(kind="latency", latency_ms=200),))
    api = connect(emulator)
    _, elapsed = timed_get(api, "/api/v1/profiles")
    assert elapsed >= 0.2


def test_stuck_at_start_up(emulator_factory: EmulatorFactory, connect: Connect) -> None:
    emulator = emulator_factory(stuck=True)
    api = connect(emulator)
    mgmt = Management(emulator.management_url)
    assert mgmt.faults()["settings"]["stuck"] is True
    batch_id = api.created_batch_id(server_params())
    time.sleep(0.4)
    detail = api.batch(batch_id)
    assert detail["status"] == "PROCESSING"
    assert api.get(f"/api/v1/batches/{batch_id}/status").text == "Processing"
    assert api.get(f"/api/v1/batches/{batch_id}/processing_info").json()["active"] == 1
    mgmt.patch_settings(stuck=False)
    assert api.wait_for_batch(batch_id)["status"] == "READY_FOR_DOWNLOAD"


def test_stuck_switched_at_run_time(api: Api, mgmt: Management) -> None:
    mgmt.patch_settings(stuck=True)
    stuck = api.created_batch_id(server_params("stuck.example.com"))
    time.sleep(0.3)
    assert api.batch(stuck)["status"] == "PROCESSING"
    mgmt.patch_settings(stuck=False)
    assert api.wait_for_batch(stuck)["status"] == "READY_FOR_DOWNLOAD"
    free = api.created_batch_id(server_params("free.example.com"))
    assert api.wait_for_batch(free)["status"] == "READY_FOR_DOWNLOAD"


def test_list_filters_can_be_ignored_like_a_careless_api(api: Api, mgmt: Management) -> None:
    api.created_batch_id(server_params("one.example.com"), batch_name="one")
    api.created_batch_id(server_params("two.example.com"), batch_name="two")
    assert [b["batchName"] for b in api.get("/api/v1/batches?batchName=one").json()] == ["one"]
    mgmt.patch_settings(ignore_list_filters=True)
    ignored = api.get("/api/v1/batches?batchName=one").json()
    assert sorted(b["batchName"] for b in ignored) == ["one", "two"]
    mgmt.patch_settings(ignore_list_filters=False)
    assert len(api.get("/api/v1/batches?batchName=two").json()) == 1


def test_bad_settings_refused(mgmt: Management) -> None:
    bad = ({"access_lifetime": 0}, {"issue_delay": -1}, {"colour": "red"}, {"stuck": "yes"})
    for body in bad:
        response = requests.patch(f"{mgmt.base_url}/settings", json=body, timeout=TIMEOUT)
        assert response.status_code == 400, (body, response.text)
    settings = mgmt.faults()["settings"]
    assert settings["access_lifetime"] == 600
    assert settings["issue_delay"] == 0


def test_stats_count_requests_and_responses(api: Api, mgmt: Management) -> None:
    before = mgmt.stats()
    for _ in range(3):
        assert api.get("/api/v1/profiles").status_code == 200
    assert api.get("/api/v1/profiles/999").status_code == 404
    api.created_batch_id(server_params())
    after = mgmt.stats()
    assert after["requests"]["profiles"] - before["requests"].get("profiles", 0) == 3
    assert (
        status_counts(after, "profiles")[200] - status_counts(before, "profiles").get(200, 0) == 3
    )
    assert status_counts(after, "profile_detail").get(404) == 1
    assert after["batches_created"] - before["batches_created"] == 1
    assert status_counts(after, "create_batch").get(200) == 1


def _chaos_read(api_url: str, path: str, attempts: int = 12) -> int:
    """A bounded retry loop for one read; returns how many attempts it took."""
    api = Api(api_url)
    try:
        for attempt in range(1, attempts + 1):
            try:
                if api.access_token is None and api.login().status_code != 200:
                    time.sleep(0.02)
                    continue
                response = api.get(path, timeout=(2.0, 5.0))
            except requests.ConnectionError:
                api.close()
                api = Api(api_url)
                time.sleep(0.02)
                continue
            if response.status_code == 200:
                return attempt
            assert response.status_code in (429, 503), response.text
            time.sleep(0.02)
        raise AssertionError(f"{path}: no success in {attempts} attempts")
    finally:
        api.close()


def test_chaos_preset_reads_eventually_succeed(
    emulator_factory: EmulatorFactory,
) -> None:
    emulator = emulator_factory(faults=CHAOS_PRESET)
    mgmt = Management(emulator.management_url)
    paths = ["/api/v1/devices", "/api/v1/profiles", "/api/v1/authorities/allowed"] * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        attempts = list(pool.map(lambda p: _chaos_read(emulator.api_url, p), paths))
    assert len(attempts) == len(paths)
    stats = mgmt.stats()
    assert faults_applied(stats, "latency") >= len(paths)
    disruptive = sum(faults_applied(stats, kind) for kind in ("error", "throttle", "drop"))
    # 240+ requests at ~9 % each: P(no disruptive fault at all) < 1e-9
    assert disruptive >= 1, stats["faults_applied"]
    assert sum(attempts) - len(attempts) <= disruptive


def test_slow_rule_takes_effect_then_answers_late(emulator: Emulator, mgmt: Management) -> None:
    """The batch exists while the answer is still held back; the late answer is the real one."""
    api = Api(emulator.api_url)
    try:
        assert api.login().status_code == 200
        mgmt.add_faults({"kind": "slow", "latency_ms": 1500, "routes": ["create_batch"]})
        with ThreadPoolExecutor(max_workers=1) as pool:
            start = time.monotonic()
            pending = pool.submit(api.create_batch, server_params(), batch_name="slow")
            deadline = start + 1.2
            while not mgmt.batches() and time.monotonic() < deadline:
                time.sleep(0.02)
            (recorded,) = mgmt.batches()
            assert not pending.done()
            response = pending.result(timeout=10)
            elapsed = time.monotonic() - start
        assert response.status_code == 200, response.text
        assert response.json()["batchId"] == recorded["batch_id"]
        assert elapsed >= 1.5
        assert api.balance(42) == 99
        assert faults_applied(mgmt.stats(), "slow") == 1
        assert status_counts(mgmt.stats(), "create_batch") == {200: 1}
    finally:
        api.close()


def test_slow_rule_times_out_a_short_read_timeout_yet_the_order_is_taken(
    emulator: Emulator, mgmt: Management
) -> None:
    api = Api(emulator.api_url)
    try:
        assert api.login().status_code == 200
        mgmt.add_faults({"kind": "slow", "latency_ms": 1000, "routes": ["create_batch"]})
        with pytest.raises(requests.ReadTimeout):
            api.create_batch(server_params(), batch_name="timed-out", timeout=(2.0, 0.3))
        mgmt.clear_faults()
        found = api.batches(batchName="timed-out")
        assert len(found) == 1
        assert api.balance(42) == 99
        assert mgmt.stats()["batches_created"] == 1
    finally:
        api.close()


def _reset_in_chain(exc: BaseException) -> bool:
    """Whether a ConnectionResetError is somewhere in the exception or its arguments."""
    seen: list[object] = [exc]
    while seen:
        current = seen.pop()
        if isinstance(current, ConnectionResetError):
            return True
        if isinstance(current, BaseException):
            seen.extend(current.args)
            seen.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def test_lost_rule_takes_effect_then_resets(emulator: Emulator, mgmt: Management) -> None:
    api = Api(emulator.api_url)
    try:
        assert api.login().status_code == 200
        mgmt.add_faults({"kind": "lost", "routes": ["create_batch"], "count": 1})
        with pytest.raises(requests.ConnectionError) as raised:
            api.create_batch(server_params(), batch_name="lost", timeout=(2.0, 5.0))
        assert _reset_in_chain(raised.value), repr(raised.value)
        found = api.batches(batchName="lost")
        assert len(found) == 1
        assert api.wait_for_batch(found[0]["batchId"])["status"] == "READY_FOR_DOWNLOAD"
        assert api.balance(42) == 99
        stats = mgmt.stats()
        assert faults_applied(stats, "lost") == 1
        assert stats["batches_created"] == 1
        assert "create_batch" not in stats["responses"]
        assert api.create_batch(server_params(), batch_name="after").status_code == 200
    finally:
        api.close()


def test_lost_rule_on_a_kept_alive_connection(emulator: Emulator, mgmt: Management) -> None:
    """A pooled connection is reset too, and the next request opens a fresh one."""
    api = Api(emulator.api_url, keep_alive=True)
    try:
        assert api.login().status_code == 200
        mgmt.add_faults({"kind": "lost", "routes": ["devices"], "count": 1})
        with pytest.raises(requests.ConnectionError):
            api.get("/api/v1/devices")
        assert api.get("/api/v1/devices").status_code == 200
    finally:
        api.close()


def test_throttle_burst_on_create_batch(api: Api, mgmt: Management) -> None:
    mgmt.add_faults({"kind": "throttle", "count": 3, "retry_after": 5, "routes": ["create_batch"]})
    for _ in range(3):
        response = api.create_batch(server_params(), batch_name="burst")
        assert_error(response, 429, INJECTED)
        assert response.headers["Retry-After"] == "5"
    assert api.batches() == []
    assert api.balance(42) == 100
    assert api.create_batch(server_params(), batch_name="burst").status_code == 200
    assert [b["batchName"] for b in api.batches()] == ["burst"]
    assert status_counts(mgmt.stats(), "create_batch") == {429: 3, 200: 1}
    assert mgmt.faults()["rules"] == []


@pytest.mark.parametrize("route", ["login", "refresh", "batch_detail", "download", "find"])
def test_throttle_reaches_every_route(api: Api, mgmt: Management, route: str) -> None:
    batch_id = api.created_batch_id(server_params())
    requests_by_route: dict[str, Callable[[], requests.Response]] = {
        "login": api.login,
        "refresh": api.refresh,
        "batch_detail": lambda: api.get(f"/api/v1/batches/{batch_id}"),
        "download": lambda: api.download(batch_id),
        "find": lambda: api.request(
            "POST", "/api/v1/certificates/find", json_body={"commonName": "example.com"}
        ),
    }
    mgmt.add_faults({"kind": "throttle", "retry_after": 3, "count": 1})
    response = requests_by_route[route]()
    assert_error(response, 429, INJECTED)
    assert response.headers["Retry-After"] == "3"
    assert requests_by_route[route]().status_code == 200


def test_transient_404s_on_batch_detail(api: Api, mgmt: Management) -> None:
    batch_id = api.created_batch_id(server_params())
    mgmt.add_faults({"kind": "error", "status": 404, "count": 2, "routes": ["batch_detail"]})
    path = f"/api/v1/batches/{batch_id}"
    assert_error(api.get(path), 404, INJECTED)
    assert_error(api.get(path), 404, INJECTED)
    answer = api.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.json()["batchId"] == batch_id
    assert status_counts(mgmt.stats(), "batch_detail") == {404: 2, 200: 1}
