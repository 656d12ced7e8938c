"""Fixtures of the reliability suite: the service and emulator fixtures of the service tests, the
scale the scenarios run at, and deployments of each topology."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from sectigo_svc.sealing import load_or_create_key
from tests.postgres_cluster import Cluster
from tests.reliability.lab import Scale
from tests.reliability.topology import LEASE_SECONDS, Deploy, Deployment, Topology
from tests.service.conftest import ServiceFactory, pki, service_factory
from tests.service.helpers import Upstream

__all__ = ["deploy", "pki", "scale", "service_factory"]


@pytest.fixture(scope="session")
def scale() -> Scale:
    """``RELIABILITY_SCALE=long`` (``make reliability``) or the short default of ``make test``."""
    return Scale.from_env()


@pytest.fixture
def deploy(
    request: pytest.FixtureRequest, service_factory: ServiceFactory, tmp_path: Path
) -> Deploy:
    """``deploy(topology, emulator, **settings)``: each call starts new replicas on a new store
    (for PostgreSQL: a new database in the session's cluster and a data key they share); they
    are stopped when the test ends."""
    deployments = itertools.count()

    def make(topology: Topology, emulator: Upstream, **settings: Any) -> Deployment:
        root = tmp_path / f"deployment-{next(deployments)}"
        shared: dict[str, Any] = {}
        if topology.postgres:
            # Asked for only here, so SQLite-only runs start no PostgreSQL cluster.
            cluster: Cluster = request.getfixturevalue("postgres_cluster")
            key_file = root / "data.key"
            load_or_create_key(key_file, create=True)
            shared = {
                "database_url": cluster.database(),
                "data_key_file": key_file,
                "lease_seconds": LEASE_SECONDS,
            }
        replicas = []
        for number in range(topology.replicas):
            own = {"replica_name": f"replica-{number}"} if topology.postgres else {}
            replicas.append(
                service_factory(
                    emulator=emulator,
                    state=root / f"replica-{number}",
                    **(shared | own | settings),
                )
            )
        return Deployment(topology, replicas, emulator)

    return make
