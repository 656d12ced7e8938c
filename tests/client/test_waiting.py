"""The wait algorithm alone, with scripted streams and reads and a fake clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

import grpc
import pytest

from sectigo_client import (
    CertificateAuthorityError,
    CertificateRecord,
    Internal,
    KeySource,
    NotFound,
    PermissionDenied,
    RequestState,
    ResourceExhausted,
    Unavailable,
    WaitTimeout,
)
from sectigo_client.waiting import Stream, Waiter

BASE = CertificateRecord(
    request_id="r-1",
    owner="me",
    state=RequestState.PENDING,
    key_source=KeySource.SERVER,
    common_name="w.example.com",
    dns_names=("w.example.com",),
    authority_id=1,
    profile_id=42,
    batch_id=0,
    batch_name="b",
    sectigo_status="",
    reason="",
    serial_number="",
    create_time=None,
    update_time=None,
    not_before=None,
    not_after=None,
)


def at(state: RequestState, second: int) -> CertificateRecord:
    stamp = dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=second)
    return dataclasses.replace(BASE, state=state, update_time=stamp)


class Script:
    """A stream that yields some records then fails (or ends); reads answered in turn."""

    def __init__(
        self,
        streamed: Iterable[CertificateRecord],
        breaks_with: CertificateAuthorityError | None,
        reads: Iterable[CertificateRecord | CertificateAuthorityError],
    ) -> None:
        self.streamed = list(streamed)
        self.breaks_with = breaks_with
        self.reads = list(reads)
        self.now = 0.0
        self.slept: list[float] = []
        self.read_deadlines: list[float] = []

    def watch(self, deadline: float) -> Stream:
        yield from self.streamed
        if self.breaks_with is not None:
            raise self.breaks_with

    def get(self, deadline: float) -> CertificateRecord:
        self.read_deadlines.append(deadline)
        self.now += 0.1
        answer = self.reads.pop(0)
        if isinstance(answer, CertificateAuthorityError):
            raise answer
        return answer

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def waiter(self) -> Waiter:
        return Waiter(self.watch, self.get, 5.0, 1.0, lambda: self.now, self.sleep)


def test_a_stream_that_reaches_a_terminal_state_needs_no_polling() -> None:
    script = Script([at(RequestState.PENDING, 0), at(RequestState.READY, 1)], None, [])
    seen: list[RequestState] = []

    done = script.waiter().wait("r-1", 60, lambda r: seen.append(r.state))

    assert done.state is RequestState.READY
    assert seen == [RequestState.PENDING, RequestState.READY]
    assert script.read_deadlines == []


def test_a_broken_stream_falls_back_to_polling_through_the_outage() -> None:
    down = Unavailable("connection refused")
    script = Script(
        [at(RequestState.PENDING, 0), at(RequestState.PROCESSING, 1)],
        CertificateAuthorityError("stream reset", grpc.StatusCode.CANCELLED),
        [down, down, at(RequestState.PROCESSING, 1), at(RequestState.READY, 2)],
    )
    seen: list[RequestState] = []

    done = script.waiter().wait("r-1", 60, lambda r: seen.append(r.state))

    assert done.state is RequestState.READY
    assert seen == [RequestState.PENDING, RequestState.PROCESSING, RequestState.READY]
    assert script.slept == [1.0, 1.0, 1.0]
    assert script.read_deadlines == [5.0] * 4


def test_a_stream_ending_early_falls_back_to_polling() -> None:
    script = Script([at(RequestState.PENDING, 0)], None, [at(RequestState.FAILED, 3)])

    assert script.waiter().wait("r-1", 60).state is RequestState.FAILED


def test_an_error_about_the_request_ends_the_wait() -> None:
    script = Script([], NotFound("no request r-1"), [])

    with pytest.raises(NotFound):
        script.waiter().wait("r-1", 60)


def test_the_time_is_bounded_and_the_last_state_reported() -> None:
    script = Script(
        [at(RequestState.SUBMITTED, 0)],
        Unavailable("gone"),
        [at(RequestState.SUBMITTED, 0)] * 10,
    )

    with pytest.raises(WaitTimeout) as raised:
        script.waiter().wait("r-1", 2.5)

    assert raised.value.last_state == "SUBMITTED"
    assert script.now == pytest.approx(2.5)
    assert all(deadline <= 2.5 for deadline in script.read_deadlines)


def test_a_service_shedding_load_is_polled_again() -> None:
    shedding = ResourceExhausted("too many RPCs in flight")
    script = Script([], shedding, [shedding, at(RequestState.READY, 1)])

    done = script.waiter().wait("r-1", 60)

    assert done.state is RequestState.READY
    assert script.slept == [1.0]


@pytest.mark.parametrize(
    "error",
    [
        Internal("boom", grpc.StatusCode.INTERNAL),
        PermissionDenied("not yours", grpc.StatusCode.PERMISSION_DENIED),
        NotFound("gone", grpc.StatusCode.NOT_FOUND),
    ],
)
def test_any_other_error_of_a_poll_ends_the_wait(error: CertificateAuthorityError) -> None:
    # A stream reset may show as INTERNAL: that only hands over to polling.
    reset = Internal("RST_STREAM", grpc.StatusCode.INTERNAL)
    script = Script([at(RequestState.PENDING, 0)], reset, [error, at(RequestState.READY, 1)])

    with pytest.raises(type(error)):
        script.waiter().wait("r-1", 60)

    assert len(script.read_deadlines) == 1
    assert script.slept == []


def test_the_servers_retry_after_spaces_the_polls_when_longer() -> None:
    script = Script(
        [],
        Unavailable("down"),
        [
            Unavailable("busy", retry_after=3.0),
            Unavailable("busy", retry_after=0.2),
            Unavailable("busy"),
            at(RequestState.READY, 1),
        ],
    )

    assert script.waiter().wait("r-1", 60).state is RequestState.READY
    assert script.slept == [3.0, 1.0, 1.0]


def test_a_retry_after_beyond_the_timeout_sleeps_only_until_it() -> None:
    script = Script([], Unavailable("down"), [Unavailable("busy", retry_after=10.0)])

    with pytest.raises(WaitTimeout):
        script.waiter().wait("r-1", 2.5)

    assert script.slept == [pytest.approx(2.4)]
    assert script.now == pytest.approx(2.5)


def test_follow_yields_each_version_once_across_a_broken_stream() -> None:
    script = Script(
        [at(RequestState.PENDING, 0), at(RequestState.PROCESSING, 1)],
        Unavailable("the service restarted"),
        [Unavailable("down"), at(RequestState.PROCESSING, 1), at(RequestState.READY, 2)],
    )

    followed = list(script.waiter().follow("r-1", 60))

    assert [r.state for r in followed] == [
        RequestState.PENDING,
        RequestState.PROCESSING,
        RequestState.READY,
    ]
    assert script.reads == []
