"""A PostgreSQL store that lost recent work (recreated from an older pg_dump, or lost and made
anew): callers send their requests again, and each is adopted from the batch Sectigo already
holds under its name. No second batch, no second licence."""

from __future__ import annotations

from pathlib import Path

import pytest

from sectigo_svc.emulator import Emulator
from sectigo_svc.sealing import load_or_create_key
from tests.conftest import EmulatorFactory
from tests.postgres_cluster import Cluster
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import (
    assert_adopted_when_sent_again,
    issue_ready,
    issue_work_to_lose,
    server_key_request,
)


@pytest.mark.parametrize("loss", ["restored from an older pg_dump", "database lost"])
def test_requests_sent_again_after_the_database_lost_them_are_adopted(
    loss: str,
    service_factory: ServiceFactory,
    emulator_factory: EmulatorFactory,
    postgres_cluster: Cluster,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    emulator: Emulator = emulator_factory()
    key_file = tmp_path / "data.key"
    load_or_create_key(key_file, create=True)

    def start() -> Service:
        return service_factory(
            emulator=emulator,
            state=tmp_path / "replica",
            database_url=postgres_url,
            data_key_file=key_file,
        )

    service = start()
    sectigo = service.sectigo
    stub = service.stub()
    issue_ready(stub, server_key_request("before-dump", "before.example.com"))
    dump = tmp_path / "store.dump"
    postgres_cluster.dump(postgres_url, dump)
    lost = issue_work_to_lose(stub)
    assert sectigo.batches_created() == 3
    service.stop()

    postgres_cluster.recreate(postgres_url, dump if loss.startswith("restored") else None)
    again = start()
    assert_adopted_when_sent_again(again.stub(), sectigo, lost)
    assert sectigo.batches_created() == 3
    adopted = again.app.metrics.registry.get_sample_value(
        "sectigo_svc_batches_adopted_total", {"phase": "never"}
    )
    assert adopted == 2
