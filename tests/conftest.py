"""Shared fixtures: real emulators on port 0, started and stopped by the test that needs them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sectigo_svc.emulator import Emulator, EmulatorConfig
from tests.postgres_cluster import own_postgres, postgres_cluster, postgres_server, postgres_url

__all__ = ["own_postgres", "postgres_cluster", "postgres_server", "postgres_url"]

EmulatorFactory = Callable[..., Emulator]


@pytest.fixture
def emulator_factory() -> Iterator[EmulatorFactory]:
    """Start emulators with config overrides on free loopback ports; all are stopped afterwards."""
    started: list[Emulator] = []

    def make(**overrides: Any) -> Emulator:
        settings: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "management_port": 0}
        settings.update(overrides)
        emulator = Emulator(EmulatorConfig(**settings))
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(emulator_factory: EmulatorFactory) -> Emulator:
    """A fresh emulator with default settings (no issue delay, no faults)."""
    return emulator_factory()
