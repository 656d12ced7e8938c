"""Fixtures for the emulator tests: logged-in clients that are closed before the servers stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from sectigo_svc.emulator import Emulator
from tests.conftest import EmulatorFactory
from tests.emulator.helpers import Api, Management

Connect = Callable[..., Api]


@pytest.fixture
def connect(emulator_factory: EmulatorFactory) -> Iterator[Connect]:
    """``connect(emulator, login=True)``: an Api client for that emulator, closed afterwards."""
    clients: list[Api] = []

    def make(emulator: Emulator, *, login: bool = True) -> Api:
        api = Api(emulator.api_url)
        clients.append(api)
        if login:
            response = api.login()
            assert response.status_code == 200, response.text
        return api

    yield make
    for api in clients:
        api.close()


@pytest.fixture
def api(emulator: Emulator, connect: Connect) -> Api:
    """A logged-in client for the default emulator."""
    return connect(emulator)


@pytest.fixture
def mgmt(emulator: Emulator) -> Management:
    """The management API of the default emulator."""
    return Management(emulator.management_url)
