"""wait(): Watch first, polling when the stream breaks; a restart of the service mid-watch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import grpc
import pytest

from sectigo_client import (
    CertificateAuthorityClient,
    CertificateRecord,
    NotFound,
    RequestState,
    Transport,
    WaitTimeout,
)
from sectigo_client.transport import Request, Response
from tests.client.conftest import ClientFactory, settings
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import WAIT, poll


class RecordingTransport(Transport):
    """A transport that notes the name of every call made through it."""

    def __init__(self, channel: grpc.Channel) -> None:
        super().__init__(channel)
        self.calls: list[str] = []

    def unary(
        self,
        method: grpc.UnaryUnaryMultiCallable[Request, Response],
        name: str,
        request: Request,
        timeout: float | None = None,
    ) -> Response:
        self.calls.append(name)
        return super().unary(method, name, request, timeout)

    def stream(
        self,
        method: grpc.UnaryStreamMultiCallable[Request, Response],
        name: str,
        request: Request,
        timeout: float | None = None,
    ) -> Iterator[Response]:
        self.calls.append(name)
        return super().stream(method, name, request, timeout)


def wait_in_thread(
    ca: CertificateAuthorityClient, request_id: str
) -> tuple[Future[CertificateRecord], threading.Event]:
    """Start ``wait`` in a thread: its outcome, and an event set once it has seen a state."""
    done: Future[CertificateRecord] = Future()
    following = threading.Event()

    def run() -> None:
        try:
            done.set_result(ca.wait(request_id, timeout=WAIT, on_change=lambda _: following.set()))
        except BaseException as exc:  # handed to the test through the future
            done.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return done, following


def test_wait_survives_a_restart_of_the_service_mid_watch(
    service_factory: ServiceFactory,
) -> None:
    first = service_factory()
    first.sectigo.settings(stuck=True)
    port = first.app.port
    transport = RecordingTransport(settings(first.target, first.pki).channel())
    with CertificateAuthorityClient(transport, poll_interval=0.2) as ca:
        record = ca.issue(common_name="restart.example.com")
        poll(
            lambda: True if ca.get(record.request_id).state is RequestState.PROCESSING else None,
            "the request to be stuck in PROCESSING",
        )
        transport.calls.clear()
        waiting, following = wait_in_thread(ca, record.request_id)
        assert following.wait(WAIT), "the watch never delivered the current state"
        first.stop(grace=0.2)
        time.sleep(1.0)  # the service stays down a while
        assert not waiting.done(), "wait must ride out the outage"

        second = service_factory(
            emulator=first.emulator, state=first.config.state_dir, listen=f"127.0.0.1:{port}"
        )
        second.sectigo.settings(stuck=False)

        done = waiting.result(timeout=WAIT)
    assert done.state is RequestState.READY
    assert done.request_id == record.request_id
    assert second.app.port == port
    assert transport.calls[0] == "WatchCertificateRequest"
    assert "GetCertificateRequest" in transport.calls, "the broken stream was followed by polling"


def test_wait_reports_each_version_once_and_returns_the_terminal_record(
    ca: CertificateAuthorityClient,
) -> None:
    seen: list[CertificateRecord] = []
    record = ca.issue(common_name="seen.example.com")

    done = ca.wait(record.request_id, timeout=WAIT, on_change=seen.append)

    assert done.state is RequestState.READY
    assert seen[-1].state is RequestState.READY
    # A state may repeat (a PENDING request records its send attempt) but no version twice.
    updates = [r.update_time for r in seen if r.update_time is not None]
    assert len(updates) == len(seen)
    assert updates == sorted(set(updates)), seen


def test_wait_gives_up_after_its_timeout_with_the_last_state(
    service: Service, ca: CertificateAuthorityClient
) -> None:
    service.sectigo.settings(stuck=True)
    record = ca.issue(common_name="stuck.example.com")

    with pytest.raises(WaitTimeout) as raised:
        ca.wait(record.request_id, timeout=0.5)

    assert raised.value.last_state in ("PENDING", "SUBMITTED", "PROCESSING")
    assert "did not finish within 0.5 s" in str(raised.value)


def test_wait_for_an_unknown_request_fails_at_once(client_factory: ClientFactory) -> None:
    with pytest.raises(NotFound):
        client_factory().wait("no-such-request", timeout=WAIT)


def test_watch_yields_states_until_terminal(ca: CertificateAuthorityClient) -> None:
    record = ca.issue(common_name="watched.example.com")

    states: Iterator[CertificateRecord] = ca.watch(record.request_id, timeout=WAIT)

    seen = [r.state for r in states]
    assert seen[-1] is RequestState.READY
    assert all(not s.terminal for s in seen[:-1])
