"""WatchCertificateRequest: the current state at once, then every change, until terminal."""

from __future__ import annotations

import datetime as dt
from typing import cast

import grpc

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.service.conftest import ServiceFactory
from tests.service.helpers import (
    LIFECYCLE,
    PENDING,
    PROCESSING,
    READY,
    REGISTRATION,
    SUBMITTED,
    WAIT,
    Stub,
    failure,
    issue_ready,
    poll,
    server_key_request,
)


def _watch(stub: Stub, request_id: str, owner: str = "") -> list[pb.CertificateRequest]:
    stream = stub.WatchCertificateRequest(
        pb.WatchCertificateRequestRequest(request_id=request_id, owner=owner), timeout=WAIT
    )
    return list(stream)


def test_watch_sees_every_transition_in_lifecycle_order(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(issue_delay=0.5))
    # Hold the order back a little, so the watch surely starts while the request is PENDING.
    service.sectigo.add_fault(kind="latency", latency_ms=300, routes=["create_batch"], count=1)
    stub = service.stub()
    stub.IssueCertificate(server_key_request("watch-1", "watch.example.com"))

    seen = _watch(stub, "watch-1")

    states = [m.state for m in seen]
    assert states[0] == PENDING
    assert states[-1] == READY
    assert {SUBMITTED, PROCESSING} <= set(states), states
    ranks = [LIFECYCLE.index(s) for s in states]
    assert ranks == sorted(ranks), f"states out of lifecycle order: {states}"
    stamps = [m.update_time.ToDatetime(tzinfo=dt.UTC) for m in seen]
    assert stamps == sorted(set(stamps)), "every message is a newer version than the one before"
    # Nothing skipped: from the first message on, the stream is exactly the stored history.
    history = service.app.store.history(REGISTRATION, "watch-1", 0)
    stored = [(r.updated_at, r.state.value, r.reason) for r in history]
    watched = [
        (stamp, pb.RequestState.Name(m.state).removeprefix("REQUEST_STATE_"), m.reason)
        for stamp, m in zip(stamps, seen, strict=True)
    ]
    assert watched == stored[stored.index(watched[0]) :]


def test_watch_of_a_finished_request_sends_it_once_and_ends(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()
    stub = service.stub()
    issue_ready(stub, server_key_request("watch-done", "done.example.com"))

    seen = _watch(stub, "watch-done")

    assert [m.state for m in seen] == [READY]


def test_admin_watches_another_owners_request_by_naming_it(service_factory: ServiceFactory) -> None:
    service = service_factory()
    stub = service.stub()
    stub.IssueCertificate(server_key_request("watch-adm", "adm.example.com"))

    seen = _watch(service.stub("admin"), "watch-adm", owner=REGISTRATION)

    assert seen[-1].state == READY
    assert seen[-1].owner == REGISTRATION


def test_watch_of_an_unknown_request_is_not_found(service_factory: ServiceFactory) -> None:
    stub = service_factory().stub()

    missing = failure(lambda: _watch(stub, "no-such-request"))

    assert missing.code == grpc.StatusCode.NOT_FOUND


class _OpenWatch:
    """A watch stream that has delivered its first message and stays open until closed."""

    def __init__(self, stub: Stub, request_id: str) -> None:
        request = pb.WatchCertificateRequestRequest(request_id=request_id)
        self._call = stub.WatchCertificateRequest(request, timeout=WAIT)
        self.first: pb.CertificateRequest = next(iter(self._call))

    def close(self) -> None:
        cast("grpc.Future[pb.CertificateRequest]", self._call).cancel()  # the call is a Future


def _open_watch(stub: Stub, request_id: str) -> _OpenWatch | None:
    """A new open watch, or None while the server sheds streams."""
    try:
        return _OpenWatch(stub, request_id)
    except grpc.RpcError as exc:
        assert cast(grpc.Call, exc).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return None


def test_watchers_cannot_take_every_rpc_thread(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    # Four RPC threads: at most half of them may hold watch streams.
    service = service_factory(emulator=emulator_factory(stuck=True), grpc_workers=4)
    stub = service.stub()
    stub.IssueCertificate(server_key_request("watch-many", "many.example.com"))
    watches = [_OpenWatch(stub, "watch-many") for _ in range(2)]

    shed = failure(lambda: _watch(stub, "watch-many"))
    answered = stub.GetLicenses(pb.GetLicensesRequest(), timeout=5)
    watches[0].close()
    reopened = poll(lambda: _open_watch(stub, "watch-many"), "a stream slot to free up")

    assert shed.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert answered.ordered == 200
    assert reopened.first.request_id == "watch-many"
    for watch in (watches[1], reopened):
        watch.close()
