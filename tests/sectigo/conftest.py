"""Fixtures for the Sectigo client's tests against the emulator over real HTTP."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from sectigo_svc.emulator import Emulator
from sectigo_svc.sectigo import Environment, SectigoClient, SectigoConfig
from tests.conftest import EmulatorFactory
from tests.sectigo.fakes import credentials
from tests.sectigo.mocked_http import Sleeps

ClientFactory = Callable[..., SectigoClient]


class Management:
    """The emulator's test-only management API (faults, settings, stats, key rotation)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def add_fault(self, **rule: Any) -> None:
        self.session.post(f"{self.url}/faults", json=rule, timeout=5).raise_for_status()

    def clear_faults(self) -> None:
        self.session.delete(f"{self.url}/faults", timeout=5).raise_for_status()

    def settings(self, **values: Any) -> None:
        self.session.patch(f"{self.url}/settings", json=values, timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = self.session.get(f"{self.url}/stats", timeout=5)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def requests_to(self, route: str) -> int:
        return int(self.stats()["requests"].get(route, 0))

    def rotate_signing_key(self) -> None:
        self.session.post(f"{self.url}/rotate-signing-key", timeout=5).raise_for_status()


@pytest.fixture
def emulator_factory(emulator_factory: EmulatorFactory) -> EmulatorFactory:
    """Emulators whose authorities (1, 2) have other ids than their profiles (42, 85), so that a
    client passing one where the other belongs fails here."""
    return functools.partial(emulator_factory, authority_ids="distinct")


def client_config(emulator: Emulator, cache_dir: Path, **overrides: Any) -> SectigoConfig:
    """Fast settings for tests: short backoff, a private token cache, the testing environment."""
    settings: dict[str, Any] = {
        "endpoint": emulator.api_url,
        "environment": Environment.TESTING,
        "token_cache_dir": cache_dir,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "max_attempts": 5,
    }
    settings.update(overrides)
    return SectigoConfig(**settings)


@pytest.fixture
def management(emulator: Emulator) -> Iterator[Management]:
    helper = Management(emulator.management_url)
    yield helper
    helper.session.close()


@pytest.fixture
def make_client(emulator: Emulator, tmp_path: Path) -> Iterator[ClientFactory]:
    """Build clients of the ``emulator`` fixture; all share one token cache directory by default."""
    built: list[SectigoClient] = []

    def make(**overrides: Any) -> SectigoClient:
        client = SectigoClient.build(
            client_config(emulator, tmp_path / "token-cache", **overrides), credentials()
        )
        built.append(client)
        return client

    yield make
    for client in built:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> SectigoClient:
    return make_client()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """``responses`` for reply shapes the emulator cannot produce."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
