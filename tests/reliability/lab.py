"""The reliability lab: callers in both key modes, the emulator seen from outside, and the figures
every scenario is judged by.

A scenario issues requests through the service while the emulator injects faults, waits for them
to settle, and reports :class:`Figures`: how many batches Sectigo holds for how many requests
(duplicates), requests whose paid batch never reached the caller (lost), requests still unfinished
(stuck), INTERNAL answers, and how long recovery took. Every figure but the counts of operations
must read 0. Sizes come from :class:`Scale`: small in ``make test``, large in ``make reliability``.

Every scenario runs in two topologies (:mod:`tests.reliability.topology`): ``sqlite x1``, one
replica on its SQLite store, and ``postgres x3``, three replicas on one PostgreSQL database with
each call sent to the next replica. The figures are judged the same way and recorded with the
topology. ``make reliability`` (long scale) runs every scenario in every topology and key mode;
to keep ``make test`` within its time, at short scale ``postgres x3`` runs each scenario in one
key mode (server-key for some scenarios, csr for the others, see :func:`setups`) and kill -9 of
the lease holder at every other moment, the key modes alternating (see test_crashes.py).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, cast

import grpc
import pytest
import requests

from sectigo.ca.v1 import ca_pb2 as pb
from tests.reliability.topology import TOPOLOGIES, Calls, Topology
from tests.service.helpers import (
    HTTP_TIMEOUT,
    READY,
    TERMINAL,
    Upstream,
    csr_request,
    make_csr,
    server_key_request,
)

KEY_MODES = ("server-key", "csr")
ISSUED = frozenset({"READY_FOR_DOWNLOAD", "COLLECTED"})
RESULTS_ENV = "RELIABILITY_RESULTS"
RETRIED_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


@dataclass(frozen=True)
class Scale:
    """How big each scenario is. ``short`` runs in ``make test``; ``long`` in ``make
    reliability``. Every field can be set on its own as ``RELIABILITY_<FIELD>``."""

    name: str = "short"
    requests: int = 3  # requests per key mode in the simple scenarios
    trials: int = 1  # kill -9 trials per moment and key mode
    concurrent: int = 24  # issuances in the fault-mix run (both key modes together)
    outage: float = 4.0  # seconds Sectigo is down
    wrong_password: float = 4.0  # seconds the service's password is wrong
    skew_calls: int = 12  # issuances under clock skew
    read_timeouts: tuple[float, ...] = (2.0,)  # the service's Sectigo read timeouts to try

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Scale:
        base = LONG if environ.get("RELIABILITY_SCALE", "short") == "long" else cls()
        changes: dict[str, Any] = {}
        for spec in fields(cls):
            raw = environ.get(f"RELIABILITY_{spec.name.upper()}")
            if raw is None or spec.name == "name":
                continue
            current = getattr(base, spec.name)
            if isinstance(current, tuple):
                changes[spec.name] = tuple(float(v) for v in raw.split(","))
            else:
                changes[spec.name] = type(current)(raw)
        return replace(base, **changes)


LONG = Scale(
    name="long",
    requests=20,
    trials=10,
    concurrent=200,
    outage=120.0,
    wrong_password=60.0,
    skew_calls=50,
    read_timeouts=(30.0, 2.0),
)


def setups(postgres_key_mode: str = KEY_MODES[0]) -> list[object]:
    """The runs of a scenario, for ``pytest.mark.parametrize(("topology", "key_mode"), ...)``,
    with ids such as ``postgres x3-csr``: each topology in each key mode, except that at short
    scale ``postgres x3`` runs in ``postgres_key_mode`` only (see the module docstring)."""
    every_mode = Scale.from_env().name == "long"
    return [
        pytest.param(topology, key_mode, id=f"{topology}-{key_mode}")
        for topology in TOPOLOGIES
        for key_mode in KEY_MODES
        if every_mode or not topology.postgres or key_mode == postgres_key_mode
    ]


@dataclass
class Figures:
    """What one scenario run did and how it ended; see the module docstring."""

    scenario: str
    topology: str
    key_mode: str
    injected: str
    operations: int
    batches: int
    distinct: int
    lost: int
    stuck: int
    failed: int
    internal: int
    recovery_seconds: float | None = None
    notes: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return self.batches - self.distinct

    def problems(self) -> list[str]:
        """Every figure that is not what the promise requires, as text for the assertion."""
        found = [
            f"{name}={value}"
            for name, value in (
                ("duplicates", self.duplicates),
                ("lost", self.lost),
                ("stuck", self.stuck),
                ("failed", self.failed),
                ("internal", self.internal),
            )
            if value
        ]
        if self.distinct != self.operations:
            found.append(f"{self.operations} requests but batches for {self.distinct}")
        return found

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"duplicates": self.duplicates}


def record(figures: Figures, scale: Scale) -> None:
    """Append the figures to the results file named by ``RELIABILITY_RESULTS``, if any (one JSON
    line each, so parallel test workers can share the file)."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    line = json.dumps(figures.to_json() | {"scale": asdict(scale)}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def assert_promise_kept(figures: Figures, scale: Scale) -> None:
    record(figures, scale)
    where = f"{figures.scenario} ({figures.topology}, {figures.key_mode})"
    assert not figures.problems(), f"{where}: {figures.problems()}"


# The emulator's management API ---------------------------------------------------------------


class Backstage:
    """The emulator's management port: faults, settings, the ledger and the request journal."""

    def __init__(self, emulator: Upstream) -> None:
        self.url = emulator.management_url

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        reply = requests.request(method, self.url + path, json=body, timeout=HTTP_TIMEOUT)
        assert reply.status_code < 300, f"{method} {path}: {reply.status_code} {reply.text}"
        return reply.json()

    def fault(self, **rule: Any) -> int:
        return int(self._call("POST", "/faults", rule)["rules"][0]["id"])

    def remove(self, rule_id: int) -> None:
        self._call("DELETE", f"/faults/{rule_id}")

    def clear(self) -> None:
        self._call("DELETE", "/faults")

    def settings(self, **changes: Any) -> None:
        self._call("PATCH", "/settings", changes)

    def batches(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "/batches")["batches"])

    def journal(self, *routes: str) -> list[dict[str, Any]]:
        query = "&".join(f"route={r}" for r in routes)
        found = self._call("GET", f"/journal?{query}" if query else "/journal")
        return cast(list[dict[str, Any]], found["entries"])

    def rotate_signing_key(self) -> None:
        """Sectigo ends every session: every token handed out so far is refused."""
        self._call("POST", "/rotate-signing-key")

    def stats(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "/stats"))

    def arrived(self, route: str, at_least: int = 1) -> bool:
        return len(self.journal(route)) >= at_least


# Callers ---------------------------------------------------------------------------------------


class Callers:
    """Issue requests of one key mode as a backend would, retrying what the service says is
    worth retrying after the time it names, and counting every status code seen."""

    def __init__(self, key_mode: str, prefix: str) -> None:
        assert key_mode in KEY_MODES
        self.key_mode = key_mode
        self.prefix = prefix
        self.codes: Counter[str] = Counter()
        self.batch_names: dict[str, str] = {}

    def request(self, number: int) -> pb.IssueCertificateRequest:
        request_id = f"{self.prefix}-{self.key_mode}-{number}"
        name = f"{request_id}.example.com"
        if self.key_mode == "server-key":
            return server_key_request(request_id, name)
        return csr_request(request_id, make_csr(name, [name]).pem)

    def issue(self, stub: Calls, request: pb.IssueCertificateRequest, give_up: float = 60.0) -> str:
        """IssueCertificate until it is accepted; returns the request id."""
        end = time.monotonic() + give_up
        while True:
            try:
                reply = stub.IssueCertificate(request, timeout=15)
            except grpc.RpcError as exc:
                call = cast(grpc.Call, exc)
                self.codes[call.code().name] += 1
                if call.code() not in RETRIED_CODES and call.code() is not (
                    grpc.StatusCode.DEADLINE_EXCEEDED
                ):
                    raise
                assert time.monotonic() < end, f"{request.request_id}: never accepted: {exc}"
                time.sleep(min(2.0, retry_seconds(call) or 0.2))
                continue
            self.codes["OK"] += 1
            self.batch_names[request.request_id] = reply.batch_name
            return request.request_id

    def issue_all(self, stub: Calls, count: int, give_up: float = 60.0) -> list[str]:
        return [self.issue(stub, self.request(n), give_up) for n in range(count)]


def retry_seconds(call: grpc.Call) -> float | None:
    """The server's retry hint in seconds (the ``retry-after-ms`` trailer), if any."""
    for key, value in call.trailing_metadata() or ():
        if key == "retry-after-ms" and isinstance(value, str) and value.isdigit():
            return int(value) / 1000
    return None


def settle(
    stub: Calls, request_ids: Iterable[str], timeout: float, codes: Counter[str] | None = None
) -> tuple[dict[str, pb.CertificateRequest | None], float]:
    """Poll until every request is terminal or ``timeout`` passes; returns the last state seen
    of each (None: the service does not know it) and the seconds it took."""
    started = time.monotonic()
    pending = list(request_ids)
    final: dict[str, pb.CertificateRequest | None] = dict.fromkeys(pending)
    while pending and time.monotonic() - started < timeout:
        still: list[str] = []
        for request_id in pending:
            try:
                found = stub.GetCertificateRequest(
                    pb.GetCertificateRequestRequest(request_id=request_id), timeout=5
                )
            except grpc.RpcError as exc:
                code = cast(grpc.Call, exc).code()
                if codes is not None:
                    codes[code.name] += 1
                if code is grpc.StatusCode.NOT_FOUND:
                    final[request_id] = None
                    continue
                still.append(request_id)
                continue
            final[request_id] = found
            if found.state not in TERMINAL:
                still.append(request_id)
        pending = still
        if pending:
            time.sleep(0.1)
    return final, time.monotonic() - started


def judge(
    scenario: str,
    topology: Topology,
    callers: Callers,
    injected: str,
    backstage: Backstage,
    final: Mapping[str, pb.CertificateRequest | None],
    recovery_seconds: float | None = None,
    **notes: float | int | str,
) -> Figures:
    """The figures of a finished scenario, from the emulator's ledger and the service's view."""
    names = callers.batch_names
    wanted = set(names.values())
    ledger = [b for b in backstage.batches() if b["batch_name"] in wanted]
    issued_names = {b["batch_name"] for b in ledger if b["status"] in ISSUED}
    lost = stuck = failed = 0
    for request_id, batch_name in names.items():
        state = final.get(request_id)
        if state is None:
            lost += 1
        elif state.state not in TERMINAL:
            stuck += 1
            notes.setdefault("stuck_reason", state.reason[:200])
        elif state.state != READY:
            if batch_name in issued_names:
                lost += 1
            else:
                failed += 1
                notes.setdefault("failed_reason", state.reason[:200])
    twice = sum(1 for b in ledger if b["downloads"] > 1)
    if twice:
        notes["downloaded_twice"] = twice
    return Figures(
        scenario=scenario,
        topology=topology.name,
        key_mode=callers.key_mode,
        injected=injected,
        operations=len(names),
        batches=len(ledger),
        distinct=len({b["batch_name"] for b in ledger}),
        lost=lost,
        stuck=stuck,
        failed=failed,
        internal=callers.codes["INTERNAL"] + callers.codes["UNKNOWN"],
        recovery_seconds=None if recovery_seconds is None else round(recovery_seconds, 1),
        notes=dict(notes),
    )
