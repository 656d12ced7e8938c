"""Fixtures of the multi-replica process tests: the development PKI of the service tests and a
fleet factory on a new database of the session's PostgreSQL cluster."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sectigo_svc.devcerts import DevCerts
from sectigo_svc.emulator import Emulator
from tests.conftest import EmulatorFactory
from tests.fleet import Fleet, start_fleet
from tests.service.conftest import pki

__all__ = ["fleet_factory", "pki"]

FleetFactory = Callable[..., Fleet]


@pytest.fixture
def fleet_factory(
    pki: DevCerts, tmp_path: Path, postgres_url: str, emulator_factory: EmulatorFactory
) -> Iterator[FleetFactory]:
    """``fleet_factory(count=3, emulator=None, **settings)``: replicas on this test's database
    against ``emulator`` (a new default one when None); stopped when the test ends."""
    with contextlib.ExitStack() as stack:

        def make(count: int = 3, emulator: Emulator | None = None, **settings: Any) -> Fleet:
            return stack.enter_context(
                start_fleet(
                    count,
                    database_url=postgres_url,
                    emulator=emulator or emulator_factory(),
                    pki=pki,
                    directory=tmp_path / "fleet",
                    **settings,
                )
            )

        yield make
