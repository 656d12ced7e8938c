"""Fixtures of the reliability suite: the service and emulator fixtures of the service tests, and
the scale the scenarios run at."""

from __future__ import annotations

import pytest

from tests.reliability.lab import Scale
from tests.service.conftest import pki, service_factory

__all__ = ["pki", "scale", "service_factory"]


@pytest.fixture(scope="session")
def scale() -> Scale:
    """``RELIABILITY_SCALE=long`` (``make reliability``) or the short default of ``make test``."""
    return Scale.from_env()
