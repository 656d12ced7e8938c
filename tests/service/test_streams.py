"""Admission: Watch slots shared fairly (one identity cannot take every slot from the others), and
calls that wait on Sectigo on a pool of their own, refused at once when slow calls hold it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

import grpc
import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.config import ConfigError
from sectigo_svc.devcerts import DevCerts
from sectigo_svc.domain.errors import Unavailable
from sectigo_svc.rpc.admission import (
    QUEUE_SECONDS,
    SECTIGO_RETRY_SECONDS,
    STREAM_RETRY_SECONDS,
    Admission,
    Limits,
    StreamRefused,
)
from tests.conftest import EmulatorFactory
from tests.service.conftest import ServiceFactory, service_config
from tests.service.helpers import REGISTRATION, WAIT, Stub, failure, poll, server_key_request


class _OpenWatch:
    """A watch stream that has delivered its first message and stays open until closed."""

    def __init__(self, stub: Stub, request_id: str, owner: str = "") -> None:
        request = pb.WatchCertificateRequestRequest(request_id=request_id, owner=owner)
        self._call = stub.WatchCertificateRequest(request, timeout=WAIT)
        self.first: pb.CertificateRequest = next(iter(self._call))

    def close(self) -> None:
        cast("grpc.Future[pb.CertificateRequest]", self._call).cancel()  # the call is a Future


def test_one_identity_holds_at_most_its_share_of_the_watch_slots(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(
        emulator=emulator_factory(stuck=True), max_streams=3, max_streams_per_identity=2
    )
    mine, admin = service.stub(), service.stub("admin")
    mine.IssueCertificate(server_key_request("share-1", "share.example.com"), timeout=10)

    held = [_OpenWatch(mine, "share-1") for _ in range(2)]
    over_share = failure(lambda: _OpenWatch(mine, "share-1"))
    others = _OpenWatch(admin, "share-1", owner=REGISTRATION)
    all_taken = failure(lambda: _OpenWatch(admin, "share-1", owner=REGISTRATION))
    held[0].close()

    def reopened() -> _OpenWatch | None:
        try:
            return _OpenWatch(admin, "share-1", owner=REGISTRATION)
        except grpc.RpcError:
            return None

    again = poll(reopened, "the closed watch's slot to free up")

    assert over_share.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "its share" in over_share.details
    assert over_share.trailers["retry-after-ms"] == str(int(STREAM_RETRY_SECONDS * 1000))
    assert others.first.request_id == "share-1"
    assert all_taken.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "3 streams are open already" in all_taken.details
    assert again.first.request_id == "share-1"
    for watch in (held[1], others, again):
        watch.close()


def test_default_limits_leave_half_the_server_pool_to_store_reads() -> None:
    assert Limits.for_workers(16) == Limits(streams=8, streams_per_identity=2, sectigo_calls=8)
    assert Limits.for_workers(64) == Limits(32, 8, 32)
    assert Limits.for_workers(4) == Limits(2, 2, 2)
    assert Limits.for_workers(16, streams=12, per_identity=0, sectigo_calls=2) == Limits(12, 3, 2)


class _Nowhere:
    api_url = "http://127.0.0.1:9"
    management_url = "http://127.0.0.1:9"


def test_limits_that_leave_no_thread_for_reads_are_refused(pki: DevCerts, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(ConfigError, match="SECTIGO_SVC_MAX_STREAMS: 8 streams would leave none"):
        service_config(pki, state, _Nowhere(), grpc_workers=8, max_streams=8)
    with pytest.raises(ConfigError, match="must not exceed SECTIGO_SVC_MAX_STREAMS"):
        service_config(pki, state, _Nowhere(), max_streams=2, max_streams_per_identity=3)
    with pytest.raises(ConfigError, match="SECTIGO_SVC_MAX_SECTIGO_RPCS: must not be negative"):
        service_config(pki, state, _Nowhere(), max_sectigo_rpcs=-1)


def test_a_stream_slot_is_freed_when_its_block_ends_even_by_an_error() -> None:
    admission = Admission(Limits(2, 1, 1), sectigo_methods=())

    with admission.stream("a"):
        with pytest.raises(StreamRefused, match="its share"):
            admission.stream("a").__enter__()
        with admission.stream("b"), pytest.raises(StreamRefused, match="2 streams"):
            admission.stream("c").__enter__()
    with pytest.raises(RuntimeError), admission.stream("a"):
        raise RuntimeError("the watch failed")
    with admission.stream("a"), admission.stream("b"):
        pass


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sectigo_calls_queue_for_their_pool_until_slow_calls_hold_it() -> None:
    clock = _Clock()
    admission = Admission(Limits(1, 1, 2), sectigo_methods={"GetLicenses"}, clock=clock)
    release, started = threading.Event(), threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(10)

    try:
        read = admission.arrive("GetCertificateRequest")
        first = admission.arrive("GetLicenses")
        assert (read.pool, read.refused) == (None, False)
        assert first.pool is not None and not first.refused
        held = [first.pool.submit(hold) for _ in range(2)]
        for _ in held:
            assert started.acquire(timeout=10)
        queued = admission.arrive("GetLicenses")  # quick calls may still be ahead of it
        admission.begin(queued)
        clock.now += QUEUE_SECONDS + 0.1
        late = admission.arrive("GetLicenses")
        with pytest.raises(Unavailable) as waited:
            admission.begin(queued)
        with pytest.raises(Unavailable) as refused:
            admission.begin(late)
        admission.begin(read)  # reads are never refused here
    finally:
        release.set()
        admission.close()

    assert queued.pool is not None and not queued.refused
    assert late.pool is None and late.refused
    assert waited.value.retry_after == refused.value.retry_after == SECTIGO_RETRY_SECONDS
