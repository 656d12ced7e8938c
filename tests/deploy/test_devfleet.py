"""The local fleet (``make run-replicas``): replicas as ``sectigo-svc serve`` processes on one
PostgreSQL cluster of the fleet's own, with the emulator; everything stops, the cluster included."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo.ca.v1 import ca_pb2_grpc
from sectigo_svc.config import ServiceConfig
from sectigo_svc.devcerts import DevCerts
from sectigo_svc.devfleet import (
    Cluster,
    Fleet,
    FleetError,
    ReplicaPorts,
    replica_environment,
    replica_ports,
    start_fleet,
    usage,
)
from sectigo_svc.sealing import load_or_create_key
from tests.deploy.expectations import SETTINGS, url_parts
from tests.service.helpers import READY, WAIT, mtls_channel, server_key_request, wait_for


@pytest.fixture
def state() -> Iterator[Path]:
    """A state directory the cluster's system user may enter (pytest's own is 0700 root)."""
    directory = Path(tempfile.mkdtemp(prefix="sectigo-fleet-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_replica_ports_follow_the_base_or_are_all_distinct_free_ones() -> None:
    assert replica_ports(2, 9443) == [
        ReplicaPorts(9443, 9444, 9445),
        ReplicaPorts(9453, 9454, 9455),
    ]
    free = replica_ports(3, 0)
    numbers = [port for ports in free for port in (ports.grpc, ports.health, ports.metrics)]
    assert len(set(numbers)) == 9 and all(numbers)


def test_every_replica_loads_a_valid_config_sharing_one_database_and_one_data_key(
    pki: DevCerts, tmp_path: Path
) -> None:
    cluster = Cluster(tmp_path / "postgres")
    cluster.port = 5999
    cluster.directory.mkdir()
    cluster.password_file.write_text("not-in-any-url\n")
    key = tmp_path / "data.key"
    load_or_create_key(key, create=True)
    password = tmp_path / "sectigo-password"
    password.write_text("supersecretsquirrel\n")
    configs = []
    for number, ports in enumerate(replica_ports(2, 0), start=1):
        env = replica_environment(
            f"replica-{number}",
            ports,
            pki,
            tmp_path / f"replica-{number}",
            "http://127.0.0.1:8831",
            cluster,
            key,
            password,
        )
        assert set(env) <= SETTINGS
        assert "not-in-any-url" not in "".join(env.values())
        configs.append(ServiceConfig.load(environ=env))
    first, second = configs
    assert first.database_url == second.database_url
    assert "password" not in url_parts(first.database_url)
    assert first.database_password_file == second.database_password_file == cluster.password_file
    assert first.data_key_file == second.data_key_file == key
    assert first.replica_name != second.replica_name
    assert first.listen != second.listen and first.health_listen != second.health_listen
    assert first.sectigo_token_cache_dir != second.sectigo_token_cache_dir


@pytest.fixture
def channels() -> Iterator[list[grpc.Channel]]:
    opened: list[grpc.Channel] = []
    yield opened
    for channel in opened:
        channel.close()


def _stub(
    fleet: Fleet, number: int, channels: list[grpc.Channel]
) -> ca_pb2_grpc.CertificateAuthorityStub:
    channels.append(mtls_channel(fleet.replicas[number].target, fleet.pki, "registration"))
    return ca_pb2_grpc.CertificateAuthorityStub(channels[-1])


def _start(state: Path) -> Fleet:
    return start_fleet(
        state, replicas=2, base_port=0, emulator_port=0, management_port=0, issue_delay=0
    )


def test_the_fleet_issues_through_each_replica_and_stops_everything(
    state: Path, channels: list[grpc.Channel]
) -> None:
    fleet = _start(state)
    cluster_pid = fleet.cluster.pid
    assert cluster_pid is not None and Path(f"/proc/{cluster_pid}").exists()
    try:
        text = usage(fleet)
        for replica in fleet.replicas:
            assert replica.target in text and str(replica.process.pid) in text
        assert fleet.cluster.password_file.read_text().strip() not in text
        first, second = _stub(fleet, 0, channels), _stub(fleet, 1, channels)
        first.IssueCertificate(server_key_request("fleet-1", "one.example.com"), timeout=WAIT)
        second.IssueCertificate(server_key_request("fleet-2", "two.example.com"), timeout=WAIT)
        # One database: each request is seen, to the end, on the replica that did not take it.
        assert wait_for(second, "fleet-1", [READY]).common_name == "one.example.com"
        assert wait_for(first, "fleet-2", [READY]).common_name == "two.example.com"
    finally:
        fleet.stop()
    ends = {r.name: r.process.returncode for r in fleet.replicas}
    assert set(ends.values()) == {0}, [r.log.read_text()[-3000:] for r in fleet.replicas]
    assert all(r.health() == "UNREACHABLE" for r in fleet.replicas)
    assert fleet.cluster.pid is None, "the postmaster left its pid file"
    assert not Path(f"/proc/{cluster_pid}").exists(), "the cluster still runs"

    again = _start(state)  # the same cluster and data key: the requests are still there
    try:
        found = _stub(again, 1, channels).GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id="fleet-1"), timeout=WAIT
        )
        assert found.state == READY
    finally:
        again.stop()
    assert again.cluster.pid is None


def test_a_state_directory_the_cluster_user_cannot_enter_is_refused_by_name(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root runs the cluster as another user")
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    tmp_path.chmod(0o700)
    with pytest.raises(FleetError, match="cannot enter"):
        Cluster(hidden / "postgres").start()
