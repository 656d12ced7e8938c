"""Watch slots are shared fairly: one identity cannot take every slot from the others."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import grpc
import pytest

from sectigo_svc.api.v1 import ca_pb2 as pb
from sectigo_svc.config import ConfigError
from sectigo_svc.devcerts import DevCerts
from sectigo_svc.domain.errors import Unavailable
from sectigo_svc.rpc.admission import (
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


def test_default_limits_leave_a_quarter_of_the_workers_to_store_reads() -> None:
    assert Limits.for_workers(16) == Limits(streams=8, streams_per_identity=2, sectigo_calls=4)
    assert Limits.for_workers(64) == Limits(32, 8, 16)
    assert Limits.for_workers(4) == Limits(2, 2, 1)
    assert Limits.for_workers(16, streams=12, per_identity=0, sectigo_calls=2) == Limits(12, 3, 2)


class _Nowhere:
    api_url = "http://127.0.0.1:9"
    management_url = "http://127.0.0.1:9"


def test_limits_that_leave_no_thread_for_reads_are_refused(pki: DevCerts, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(ConfigError, match="SECTIGO_SVC_GRPC_WORKERS: 8 threads cannot hold"):
        service_config(pki, state, _Nowhere(), grpc_workers=8, max_streams=6)
    with pytest.raises(ConfigError, match="must not exceed SECTIGO_SVC_MAX_STREAMS"):
        service_config(pki, state, _Nowhere(), max_streams=2, max_streams_per_identity=3)
    with pytest.raises(ConfigError, match="SECTIGO_SVC_MAX_SECTIGO_RPCS: must not be negative"):
        service_config(pki, state, _Nowhere(), max_sectigo_rpcs=-1)


def test_admission_frees_a_slot_when_its_block_ends_even_by_an_error() -> None:
    admission = Admission(Limits(2, 1, 1), sectigo_methods={"GetLicenses"})

    with admission.stream("a"):
        with pytest.raises(StreamRefused, match="its share"):
            admission.stream("a").__enter__()
        with admission.stream("b"), pytest.raises(StreamRefused, match="2 streams"):
            admission.stream("c").__enter__()
    with pytest.raises(RuntimeError), admission.call("GetLicenses"):
        raise RuntimeError("the handler failed")
    with admission.call("GetLicenses"):
        with pytest.raises(Unavailable) as busy:
            admission.call("GetLicenses").__enter__()
        with admission.call("GetCertificateRequest"):
            pass  # reads of the store are never limited
    with admission.stream("a"), admission.stream("b"):
        pass

    assert busy.value.retry_after == SECTIGO_RETRY_SECONDS
