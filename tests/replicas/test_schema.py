"""Replicas started together on an empty database agree on one schema."""

from __future__ import annotations

import psycopg

from tests.replicas.conftest import FleetFactory


def test_three_replicas_started_at_once_on_an_empty_database_make_one_schema(
    fleet_factory: FleetFactory,
) -> None:
    fleet = fleet_factory(3)

    assert [replica.health() for replica in fleet] == ["SERVING"] * 3
    with psycopg.connect(fleet.database_url, autocommit=True) as db:
        versions = [row[0] for row in db.execute(b"SELECT version FROM schema_version")]
    assert sorted(versions) == [1, 2, 3, 4, 5]
