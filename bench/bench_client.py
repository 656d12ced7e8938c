"""How much does the Sectigo client cost over bare ``requests``?

N threads call ``GET /api/v1/authorities/allowed`` through ``SectigoClient.authorities()`` and then
with a bare shared ``requests.Session`` (the same token pasted into the header, the JSON decoded),
against an emulator this script starts in a child process on free ports (so its work does not
compete for this process's GIL). Rounds alternate between the two so drift hits both alike. It
prints calls/s, p50 and p99 for each and the client/bare ratios, plus this process's CPU time per
call: when the server's latency dominates the wall clock, CPU per call still shows what the
client's extra work (retry wrapper, token check, models, one log line) costs.

    .venv/bin/python bench/bench_client.py [--threads 8] [--calls 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
import structlog
from requests.adapters import HTTPAdapter

from sectigo_svc.sectigo import Credentials, Environment, SectigoClient, SectigoConfig

EMULATOR_SCRIPT = """
import json, sys
from sectigo_svc.emulator import Emulator, EmulatorConfig
emulator = Emulator(EmulatorConfig(host="127.0.0.1", port=0, management_port=0))
emulator.start()
print(json.dumps({"api": emulator.api_url}), flush=True)
sys.stdin.read()
emulator.stop()
"""


@dataclass(frozen=True)
class Result:
    """Latencies (seconds) of every call in a run, the run's wall time and this process's CPU."""

    latencies: list[float]
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    @property
    def cpu_per_call(self) -> float:
        return self.cpu / len(self.latencies)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def emulator() -> Iterator[str]:
    """Run the emulator in a child process; yield its API URL."""
    child = subprocess.Popen(
        [sys.executable, "-c", EMULATOR_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield str(json.loads(child.stdout.readline())["api"])
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


def run(threads: int, calls: int, call: Callable[[], object]) -> Result:
    """``threads`` threads released together, each making ``calls`` timed calls."""
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def worker(index: int) -> None:
        barrier.wait()
        for _ in range(calls):
            started = time.perf_counter()
            call()
            latencies[index].append(time.perf_counter() - started)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started, cpu = time.perf_counter(), time.process_time()
    for thread in pool:
        thread.join()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Result([x for per_thread in latencies for x in per_thread], wall, cpu)


def bare_call(session: requests.Session, url: str, token: str) -> Callable[[], object]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json;charset=UTF-8"}

    def call() -> object:
        response = session.get(url, headers=headers, timeout=(5.0, 30.0))
        response.raise_for_status()
        return response.json()

    return call


def merge(results: list[Result]) -> Result:
    return Result(
        [x for r in results for x in r.latencies],
        sum(r.wall for r in results),
        sum(r.cpu for r in results),
    )


def report(name: str, result: Result) -> None:
    print(
        f"{name:<8} {result.rate:>9.1f} calls/s   p50 {result.percentile(0.5) * 1000:7.2f} ms"
        f"   p99 {result.percentile(0.99) * 1000:7.2f} ms"
        f"   cpu {result.cpu_per_call * 1000:6.3f} ms/call   ({len(result.latencies)} calls)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=100, help="calls per thread per round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    # The client logs one line per call: render it as in production (JSON), but to /dev/null.
    sink = Path(os.devnull).open("w")  # noqa: SIM115 (closed at the end of main)
    structlog.configure(
        processors=[
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sink),
    )
    with emulator() as api_url, tempfile.TemporaryDirectory() as cache:
        config = SectigoConfig(
            endpoint=api_url,
            environment=Environment.TESTING,
            pool_size=args.threads,
            token_cache_dir=Path(cache),
        )
        credentials = Credentials.load("tester", "supersecretsquirrel", environ={})
        with SectigoClient.build(config, credentials) as client, requests.Session() as session:
            client.login()
            token = client.credential_store.access_token()
            session.mount("http://", HTTPAdapter(pool_maxsize=args.threads))
            bare = bare_call(session, f"{api_url}/api/v1/authorities/allowed", token)
            run(args.threads, 5, bare)  # warm both pools
            run(args.threads, 5, client.authorities)
            bare_runs, client_runs = [], []
            for _ in range(args.rounds):
                bare_runs.append(run(args.threads, args.calls, bare))
                client_runs.append(run(args.threads, args.calls, client.authorities))
    sink.close()

    bare_result, client_result = merge(bare_runs), merge(client_runs)
    print(f"authorities, {args.threads} threads, emulator at {api_url}")
    report("bare", bare_result)
    report("client", client_result)
    ratios = {
        "throughput": client_result.rate / bare_result.rate,
        "p50": client_result.percentile(0.5) / bare_result.percentile(0.5),
        "p99": client_result.percentile(0.99) / bare_result.percentile(0.99),
        "cpu/call": client_result.cpu_per_call / bare_result.cpu_per_call,
    }
    shown = ", ".join(f"{name} {value:.3f}" for name, value in ratios.items())
    extra = (client_result.mean - bare_result.mean) * 1000
    print(f"ratio    client/bare: {shown}; mean latency {extra:+.3f} ms/call")


if __name__ == "__main__":
    main()
