"""Orders under slow, lagging and failing answers: one request, one licence, one certificate."""

from __future__ import annotations

import pytest

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
from tests.reliability.topology import Deploy, Topology

ORDER_ROUTE = {"server-key": "create_batch", "csr": "upload_batch"}
BURST = 4
READ_ROUTES = (
    "list_batches",
    "batch_detail",
    "batch_status",
    "processing_info",
    "download",
    "authorities",
    "profile_parameters",
)


@pytest.mark.parametrize(("topology", "key_mode"), setups(postgres_key_mode="csr"))
def test_slow_orders_are_paid_once(
    topology: Topology,
    key_mode: str,
    scale: Scale,
    emulator_factory: EmulatorFactory,
    deploy: Deploy,
) -> None:
    """Sectigo takes every order but answers after the service's read timeout, and lists the
    batch only later still: the service must wait for it instead of ordering again."""
    for read_timeout in scale.read_timeouts:
        emulator = emulator_factory()
        backstage = Backstage(emulator)
        late = read_timeout + 1.5
        lag = read_timeout + 2.0
        backstage.settings(visibility_lag=lag)
        backstage.fault(kind="slow", routes=[ORDER_ROUTE[key_mode]], latency_ms=int(late * 1000))
        service = deploy(
            topology, emulator, sectigo_timeout=read_timeout, quarantine=lag + read_timeout + 4
        )
        callers = Callers(key_mode, f"slow{read_timeout:g}")
        ids = callers.issue_all(service.stub(), scale.requests)

        final, _ = settle(service.stub(), ids, timeout=4 * (lag + read_timeout) + 30)

        injected = (
            f"every order answered {late:g} s late (read timeout {read_timeout:g} s); "
            f"batches listed {lag:g} s after creation"
        )
        figures = judge("slow orders", topology, callers, injected, backstage, final)
        assert_promise_kept(figures, scale)
        service.stop()


@pytest.mark.parametrize(("topology", "key_mode"), setups())
def test_bursts_of_404_and_5xx_on_every_read_lose_nothing(
    topology: Topology,
    key_mode: str,
    scale: Scale,
    emulator_factory: EmulatorFactory,
    deploy: Deploy,
) -> None:
    emulator = emulator_factory()
    backstage = Backstage(emulator)
    service = deploy(topology, emulator)
    for route in READ_ROUTES:
        backstage.fault(kind="error", status=404, routes=[route], count=BURST)
        backstage.fault(kind="error", status=503, routes=[route], count=BURST)
    callers = Callers(key_mode, "bursts")
    ids = callers.issue_all(service.stub(), scale.requests, give_up=120)

    final, seconds = settle(service.stub(), ids, timeout=60 + 5 * scale.requests)

    injected = f"{BURST} x 404 then {BURST} x 503 on each read route"
    figures = judge(
        "404 and 5xx bursts on reads", topology, callers, injected, backstage, final, seconds
    )
    assert_promise_kept(figures, scale)
