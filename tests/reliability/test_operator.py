"""An operator's reality: a store restored from a copy older than recent work, a replica whose
clock runs 15 minutes ahead, a replica frozen (SIGSTOP) while others finish its requests, and the
database down for a while. Each runs in both topologies and is judged by the same figures.

- Lost work: the store is restored from a copy taken before some requests were made (SQLite:
  ``sectigo-svc backup``; PostgreSQL: a database recreated from ``pg_dump``); callers send those
  requests again, and each must be adopted from its batch.
- Skewed clock: orders held in doubt (answer lost, batch not yet listed) when the replica that
  sent them dies; the next one runs under libfaketime 15 minutes ahead (SQLite: a restart on the
  same store; PostgreSQL: a replica allowed to take work over despite the skew) and must keep the
  quarantine, then adopt the batches once Sectigo lists them.
- Paused replica: the replica that sent the orders is frozen; SQLite has no other to take over,
  so the pause only outlasts its leases; on PostgreSQL the others finish the requests and the
  resumed replica's writes are refused.
- Store outage: PostgreSQL is stopped mid-run and started again; the embedded SQLite store's disk
  fills up (a small tmpfs) and is freed again. Calls meanwhile end quickly, UNAVAILABLE at worst.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import psycopg
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.backup import back_up
from sectigo_svc.devcerts import DevCerts
from sectigo_svc.sealing import load_or_create_key
from tests.conftest import EmulatorFactory
from tests.fleet import start_fleet
from tests.postgres_cluster import Cluster
from tests.reliability.lab import (
    Backstage,
    Callers,
    Scale,
    assert_promise_kept,
    judge,
    settle,
    setups,
)
from tests.reliability.test_orders import ORDER_ROUTE
from tests.reliability.topology import Deploy, Spread, Topology
from tests.replicas.test_operator_faults import STATE_RANK, faketime
from tests.service.helpers import (
    Stub,
    listening_port,
    mtls_channel,
    poll,
    serve_config,
    serve_process,
)

SKEW = "+15m"
QUARANTINE = 120.0  # long against the test, short against the skew
PAUSE_LEASE = 2.0


@contextlib.contextmanager
def _serving(
    config: Path, pki: DevCerts, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], Stub]]:
    """A ``sectigo-svc serve`` process on ``config`` and a stub on it (mutual TLS)."""
    with serve_process("--config", str(config), env=env) as (process, logs):
        channel = mtls_channel(f"localhost:{listening_port(logs)}", pki, "registration")
        try:
            yield process, Stub(channel)
        finally:
            channel.close()


# Lost work ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("topology", "key_mode"), setups(postgres_key_mode="server-key"))
def test_a_restore_that_lost_recent_work_orders_nothing_twice(
    topology: Topology,
    key_mode: str,
    scale: Scale,
    tmp_path: Path,
    emulator_factory: EmulatorFactory,
    deploy: Deploy,
    request: pytest.FixtureRequest,
) -> None:
    emulator = emulator_factory()
    backstage = Backstage(emulator)
    original = deploy(topology, emulator)
    config = original.replicas[0].config
    callers = Callers(key_mode, "lost-work")
    before = [callers.request(n) for n in range(scale.requests)]
    after = [callers.request(n) for n in range(scale.requests, 2 * scale.requests)]
    ids = [callers.issue(original.stub(), r) for r in before]
    settle(original.stub(), ids, timeout=60)
    copy = tmp_path / "copy"
    dump = tmp_path / "store.dump"
    if topology.postgres:
        cluster: Cluster = request.getfixturevalue("postgres_cluster")
        cluster.dump(config.database_url, dump)
    else:
        back_up(config.database_path, config.data_key_path, copy)
    ids += [callers.issue(original.stub(), r) for r in after]
    settle(original.stub(), ids, timeout=60)
    for replica in original.replicas:
        replica.stop()

    if topology.postgres:
        cluster.recreate(config.database_url, dump)
        restored = deploy(
            topology,
            emulator,
            database_url=config.database_url,
            data_key_file=config.data_key_path,
        )
    else:
        restored = deploy(topology, emulator, state_dir=copy)
    for again in before + after:  # every caller sends its request once more
        callers.issue(restored.stub(), again)
    final, seconds = settle(restored.stub(), ids, timeout=60, codes=callers.codes)

    how = "a database recreated from pg_dump" if topology.postgres else "sectigo-svc backup"
    injected = (
        f"{len(after)} requests made after the copy ({how}) was taken, the store restored from "
        "it, every request sent again"
    )
    figures = judge("restore that lost recent work", topology, callers, injected, backstage, final)
    figures.recovery_seconds = round(seconds, 1)
    assert_promise_kept(figures, scale)


# Skewed clock ------------------------------------------------------------------------------------


def _in_doubt(stub: Stub, ids: list[str]) -> None:
    def all_in_doubt() -> bool | None:
        for request_id in ids:
            got = stub.GetCertificateRequest(
                pb.GetCertificateRequestRequest(request_id=request_id), timeout=10
            )
            if not got.reason.startswith("in doubt"):
                return None
        return True

    poll(all_in_doubt, "every order to be in doubt", timeout=60)


@pytest.mark.parametrize(("topology", "key_mode"), setups(postgres_key_mode="csr"))
def test_a_clock_15_minutes_ahead_orders_nothing_twice(
    topology: Topology,
    key_mode: str,
    scale: Scale,
    pki: DevCerts,
    tmp_path: Path,
    emulator_factory: EmulatorFactory,
    postgres_url: str,
) -> None:
    emulator = emulator_factory()
    backstage = Backstage(emulator)
    backstage.settings(visibility_lag=3600)
    route = ORDER_ROUTE[key_mode]
    backstage.fault(kind="lost", routes=[route], count=scale.requests)
    callers = Callers(key_mode, "skew")
    count = scale.requests
    if topology.postgres:
        with start_fleet(
            1,
            database_url=postgres_url,
            emulator=emulator,
            pki=pki,
            directory=tmp_path / "fleet",
            quarantine=QUARANTINE,
        ) as fleet:
            ids = callers.issue_all(fleet[0].stub, count)
            _in_doubt(fleet[0].stub, ids)
            fleet[0].kill()
            skewed = fleet.add("skewed", env=faketime(SKEW), max_clock_skew=3600)
            poll(
                lambda: True if all(fleet.holder_of(i) is skewed for i in ids) else None,
                "the skewed replica to take every request over",
                timeout=60,
            )
            final = _lookups_then_adopt(backstage, skewed.stub, ids, callers)
    else:
        state = tmp_path / "state"
        config = serve_config(
            tmp_path / "service.toml", pki, state, emulator, quarantine=QUARANTINE
        )
        with _serving(config, pki) as (process, stub):
            ids = callers.issue_all(stub, count)
            _in_doubt(stub, ids)
            process.kill()
        with _serving(config, pki, env=faketime(SKEW)) as (_, stub):
            final = _lookups_then_adopt(backstage, stub, ids, callers)

    injected = (
        f"{count} orders in doubt (answer lost, batch unlisted) when their replica died; the "
        f"next ran with its clock {SKEW[1:]} ahead; quarantine {QUARANTINE:g} s"
    )
    figures = judge("clock 15 minutes ahead", topology, callers, injected, backstage, final)
    assert_promise_kept(figures, scale)


def _lookups_then_adopt(
    backstage: Backstage, stub: Stub, ids: list[str], callers: Callers
) -> dict[str, pb.CertificateRequest | None]:
    """Let the skewed replica look every name up a few times with the batches still unlisted
    (an order sent now would be a second batch), then list them and settle."""
    looked = len(backstage.journal("list_batches"))
    poll(
        lambda: True if len(backstage.journal("list_batches")) >= looked + 3 * len(ids) else None,
        "lookups by the skewed replica",
        timeout=60,
    )
    backstage.settings(visibility_lag=0)
    final, _ = settle(stub, ids, timeout=60, codes=callers.codes)
    return final


# Paused replica ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("topology", "key_mode"), setups(postgres_key_mode="server-key"))
def test_a_paused_replica_undoes_nothing_and_orders_nothing_twice(
    topology: Topology,
    key_mode: str,
    scale: Scale,
    pki: DevCerts,
    tmp_path: Path,
    emulator_factory: EmulatorFactory,
    postgres_url: str,
) -> None:
    emulator = emulator_factory()
    backstage = Backstage(emulator)
    count = scale.requests
    backstage.fault(kind="slow", routes=[ORDER_ROUTE[key_mode]], count=count, latency_ms=1500)
    callers = Callers(key_mode, "paused")
    if topology.postgres:
        with start_fleet(
            3,
            database_url=postgres_url,
            emulator=emulator,
            pki=pki,
            directory=tmp_path / "fleet",
            lease_seconds=PAUSE_LEASE,
        ) as fleet:
            paused = fleet[0]
            ids = callers.issue_all(paused.stub, count)
            _taken(backstage, count)
            paused.pause()
            try:
                others = Spread([r.stub for r in fleet.others(paused)])
                settle(others, ids, timeout=60, codes=callers.codes)
            finally:
                paused.resume()
            final, seconds = settle(Spread([r.stub for r in fleet]), ids, timeout=60)
            backwards = _backwards(psycopg.connect(fleet.database_url), ids, "%s")
        injected = f"the replica that sent {count} orders frozen (SIGSTOP), the others finish them"
    else:
        state = tmp_path / "state"
        config = serve_config(
            tmp_path / "service.toml", pki, state, emulator, lease_seconds=PAUSE_LEASE
        )
        with _serving(config, pki) as (process, stub):
            ids = callers.issue_all(stub, count)
            _taken(backstage, count)
            process.send_signal(signal.SIGSTOP)
            time.sleep(3 * PAUSE_LEASE)  # the pause outlasts every lease
            process.send_signal(signal.SIGCONT)
            final, seconds = settle(stub, ids, timeout=60, codes=callers.codes)
        backwards = _backwards(sqlite3.connect(state / "requests.db"), ids, "?")
        injected = f"the replica that sent {count} orders frozen (SIGSTOP) for three leases"
    figures = judge(
        "paused replica",
        topology,
        callers,
        injected,
        backstage,
        final,
        seconds,
        backwards=backwards,
    )
    assert backwards == 0, "a request's state moved backwards"
    assert_promise_kept(figures, scale)


def _taken(backstage: Backstage, count: int) -> None:
    poll(lambda: True if len(backstage.batches()) >= count else None, "the orders to be taken")


def _backwards(db: Any, ids: list[str], mark: str) -> int:
    """How many requests' stored histories ever move to an earlier state."""
    with contextlib.closing(db):
        rows = db.execute(
            "SELECT request_id, snapshot FROM request_history "
            f"WHERE request_id IN ({', '.join(mark for _ in ids)}) ORDER BY request_id, version",
            tuple(ids),
        ).fetchall()
    ranks: dict[str, list[int]] = {}
    for request_id, snapshot in rows:
        ranks.setdefault(request_id, []).append(STATE_RANK[json.loads(snapshot)["state"]])
    return sum(1 for seen in ranks.values() if seen != sorted(seen))


# Database outage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("topology", "key_mode"), setups(postgres_key_mode="csr"))
def test_a_database_outage_mid_run_loses_nothing_and_orders_nothing_twice(
    topology: Topology,
    key_mode: str,
    scale: Scale,
    tmp_path: Path,
    emulator_factory: EmulatorFactory,
    deploy: Deploy,
    request: pytest.FixtureRequest,
) -> None:
    """PostgreSQL stopped and started again; for the embedded store, the disk under it full
    (a small tmpfs filled up) and freed again: writes fail meanwhile, reads go on."""
    emulator = emulator_factory()
    backstage = Backstage(emulator)
    backstage.settings(issue_delay=2.0)
    down: Callable[[], None]
    up: Callable[[], None]
    if topology.postgres:
        cluster: Cluster = request.getfixturevalue("own_postgres")
        key_file = tmp_path / "data.key"
        load_or_create_key(key_file, create=True)
        deployment = deploy(
            topology, emulator, database_url=cluster.database(), data_key_file=key_file
        )
        down, up, what = cluster.stop, cluster.start, "PostgreSQL stopped"
    else:
        disk = _small_disk(tmp_path / "disk", request)
        deployment = deploy(topology, emulator, state_dir=disk / "state")
        filler = disk / "filler"
        down, up = (lambda: _fill(filler)), filler.unlink
        what = "the embedded store's disk full"
    callers = Callers(key_mode, "db-outage")
    ids = callers.issue_all(deployment.stub(), scale.requests)
    down()
    slowest = 0.0
    refused: dict[str, int] = {}
    down_until = time.monotonic() + scale.outage
    try:
        while time.monotonic() < down_until:
            began = time.monotonic()
            try:
                deployment.stub().GetCertificateRequest(
                    pb.GetCertificateRequestRequest(request_id=ids[0]), timeout=10
                )
            except grpc.RpcError as exc:
                code = cast(grpc.Call, exc).code().name
                refused[code] = refused.get(code, 0) + 1
                callers.codes[code] += 1
            slowest = max(slowest, time.monotonic() - began)
            time.sleep(0.2)
    finally:
        up()
    back = time.monotonic()
    poll(
        lambda: all(r.health() == "SERVING" for r in deployment.replicas) or None,
        "readiness to come back after the store",
        timeout=30,
    )
    ready_after = time.monotonic() - back
    final, seconds = settle(deployment.stub(), ids, timeout=60, codes=callers.codes)

    injected = f"{what} for {scale.outage:g} s with {len(ids)} requests in flight"
    figures = judge(
        "store outage",
        topology,
        callers,
        injected,
        backstage,
        final,
        seconds,
        slowest_call_during_outage=round(slowest, 2),
        ready_after=round(ready_after, 1),
        refused=",".join(f"{k}={v}" for k, v in sorted(refused.items())) or "none",
    )
    assert set(refused) <= {"UNAVAILABLE"}, f"calls during the outage ended {refused}"
    assert slowest < 5.0, f"a call took {slowest:.1f} s while the store was down"
    assert_promise_kept(figures, scale)


def _small_disk(path: Path, request: pytest.FixtureRequest) -> Path:
    """A 64 MiB tmpfs at ``path`` (root only), unmounted when the test ends."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"a full disk needs a tmpfs of its own (root): {mounted.stderr.strip()}")
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(path)], check=False))
    return path


def _fill(filler: Path) -> None:
    """Write ``filler`` until the disk is full."""
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * (1 << 20))
            out.flush()
