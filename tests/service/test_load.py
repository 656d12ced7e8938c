"""Reads served from the store stay fast while Sectigo is slow and callers crowd the calls that
wait on it: those run on a pool of their own, and are refused with a time to come back once slow
calls hold it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import cast

import grpc

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import ServiceFactory
from tests.service.helpers import Stub, download, issue_ready, server_key_request

SECTIGO_LATENCY_MS = 2_500  # below the fixture's 3 s read timeout: the calls succeed, slowly
CROWD = 24  # callers of Sectigo-bound RPCs, more than the 16 threads of the server pool
READ_LIMIT = 1.5  # seconds; a read queued behind the crowd would wait for a Sectigo answer


def _crowd(stub: Stub, stop: threading.Event, codes: Counter[str], lock: threading.Lock) -> None:
    """Call RPCs that wait on Sectigo until told to stop, counting the outcomes."""
    calls: list[Callable[[], object]] = [
        lambda: stub.GetLicenses(pb.GetLicensesRequest(), timeout=10),
        lambda: stub.ListProfiles(pb.ListProfilesRequest(), timeout=10),
        lambda: stub.FindCertificates(
            pb.FindCertificatesRequest(common_name="crowd.example.com"), timeout=10
        ),
    ]
    turn = 0
    while not stop.is_set():
        try:
            calls[turn % len(calls)]()
            code, retry = "OK", ""
        except grpc.RpcError as exc:
            failed = cast(grpc.Call, exc)
            trailers = dict(failed.trailing_metadata() or ())
            code, retry = failed.code().name, str(trailers.get("retry-after-ms", ""))
        with lock:
            codes[code if not retry else f"{code} retry-after-ms={retry}"] += 1
        turn += 1
        stop.wait(0.25)


def test_store_reads_answer_at_once_while_sectigo_calls_crowd_a_slow_sectigo(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()  # the defaults: 16 RPC threads, 64 RPCs admitted
    reader = service.stub("reader")
    mine = service.stub()
    issue_ready(mine, server_key_request("load-1", "load.example.com"))
    service.sectigo.add_fault(kind="latency", latency_ms=SECTIGO_LATENCY_MS)
    stop, lock, codes = threading.Event(), threading.Lock(), Counter[str]()
    crowd = [
        threading.Thread(target=_crowd, args=(service.stub(), stop, codes, lock))
        for _ in range(CROWD)
    ]
    for thread in crowd:
        thread.start()
    reads: list[tuple[str, Callable[[], object]]] = [
        (
            "get",
            lambda: mine.GetCertificateRequest(
                pb.GetCertificateRequestRequest(request_id="load-1"), timeout=10
            ),
        ),
        (
            "list",
            lambda: reader.ListCertificateRequests(pb.ListCertificateRequestsRequest(), timeout=10),
        ),
        ("download", lambda: download(mine, "load-1")),
        (
            "watch",
            lambda: list(
                mine.WatchCertificateRequest(
                    pb.WatchCertificateRequestRequest(request_id="load-1"), timeout=10
                )
            ),
        ),
    ]
    seconds: dict[str, float] = {}
    try:
        time.sleep(0.5)  # the crowd holds every slot it can
        for round_ in range(3):
            for name, read in reads:
                started = time.monotonic()
                read()
                took = time.monotonic() - started
                seconds[f"{name} {round_}"] = took
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in crowd:
            thread.join()
        service.sectigo.clear_faults()

    slow = {read: round(took, 2) for read, took in seconds.items() if took >= READ_LIMIT}
    assert not slow, f"store reads waited behind Sectigo calls: {slow}; crowd: {dict(codes)}"
    assert codes["OK"] > 0, dict(codes)
    assert codes["UNAVAILABLE retry-after-ms=1000"] > 0, dict(codes)
    assert set(codes) <= {"OK", "UNAVAILABLE retry-after-ms=1000"}, dict(codes)
