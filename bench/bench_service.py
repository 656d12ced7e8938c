"""What does the service cost over calling Sectigo directly, for a whole issuance?

One issuance = order a server-key certificate, wait until it is ready, download it and open the
PKCS#12. The baseline does that with the Sectigo client straight against the emulator (create,
poll batch detail, download, open); the service does it through the gRPC API over mutual TLS with
the Python client library (IssueCertificate, Watch until READY, DownloadCertificate). Both run in
this process against one emulator started in a child process, with the same poll interval, in
alternating rounds, and the script prints issuances/s, p50 and p99 for each and their ratios.

The service does more than the baseline on purpose (it records the request before ordering,
reconciles, opens and checks the PKCS#12 it stores, seals secrets, audits), and in this benchmark
it shares one process, and so one GIL, with the callers; the ratio is the price of all that.

    .venv/bin/python bench/bench_service.py [--threads 8] [--issuances 40] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.serialization import pkcs12

from sectigo_client import CertificateAuthorityClient, ConnectionSettings
from sectigo_svc.app import Application
from sectigo_svc.config import ServiceConfig
from sectigo_svc.devcerts import make_dev_certs
from sectigo_svc.devstack import loopback_settings
from sectigo_svc.sectigo import Credentials, Environment, SectigoClient, SectigoConfig
from sectigo_svc.sectigo.archive import open_pkcs12_zip
from sectigo_svc.sectigo.batch_status import BatchStatus

POLL = 0.05
PASSWORD = "bench-password-1"
EMULATOR_SCRIPT = """
import json, sys
from sectigo_svc.emulator import Emulator, EmulatorConfig
config = EmulatorConfig(port=0, management_port=0, key_type="ec256", balances=((42, 100000),))
emulator = Emulator(config)
emulator.start()
print(json.dumps({"api": emulator.api_url}), flush=True)
sys.stdin.read()
emulator.stop()
"""


@contextmanager
def emulator() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", EMULATOR_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        yield str(json.loads(process.stdout.readline())["api"])
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def direct(client: SectigoClient) -> Callable[[int], None]:
    """One issuance with the Sectigo client alone."""

    def issue(number: int) -> None:
        params = {
            "commonName": f"d{number}.bench.example.com",
            "dNSName": f"d{number}.bench.example.com",
            "pkcs12Password": PASSWORD,
        }
        batch = client.create_single_cert_batch(1, f"bench-{uuid.uuid4()}", params)
        while client.batch_detail(batch.batch_id).status is not BatchStatus.READY_FOR_DOWNLOAD:
            time.sleep(POLL)
        open_pkcs12_zip(client.download_bytes(batch.batch_id), PASSWORD)

    return issue


def through_service(ca: CertificateAuthorityClient) -> Callable[[int], None]:
    """One issuance through the service."""

    def issue(number: int) -> None:
        record = ca.issue(common_name=f"s{number}.bench.example.com", pkcs12_password=PASSWORD)
        ca.wait(record.request_id, timeout=60)
        bundle = ca.download(record.request_id)
        pkcs12.load_key_and_certificates(bundle.pkcs12, PASSWORD.encode())

    return issue


def run(issue: Callable[[int], None], threads: int, count: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def timed(number: int) -> None:
        started = time.perf_counter()
        issue(number)
        with lock:
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(timed, range(count)))
    return latencies, time.perf_counter() - started


def summary(name: str, latencies: list[float], wall: float) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    rate = len(ordered) / wall
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"{name:<8} {rate:8.1f} issuances/s   p50 {p50:8.1f} ms   p99 {p99:8.1f} ms")
    return rate, p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--issuances", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    with emulator() as api, tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch)
        pki = make_dev_certs(state / "pki")
        credentials = Credentials.load("tester", "supersecretsquirrel")
        sectigo_config = SectigoConfig(
            endpoint=api, environment=Environment.TESTING, token_cache_dir=state / "tokens"
        )
        config = ServiceConfig.load(
            overrides=loopback_settings(pki, state / "service", api)
            | {
                "listen": "127.0.0.1:0",
                "poll_min_interval": POLL,
                "poll_max_interval": POLL,
                "tracker_workers": options.threads,
                "grpc_workers": options.threads * 3,
            }
        )
        app = Application(config, credentials)
        app.start()
        assert app.wait_ready(30)
        cert, key = pki.client("registration")
        settings = ConnectionSettings.from_files(f"localhost:{app.port}", cert, key, pki.ca)
        try:
            with (
                SectigoClient.build(sectigo_config, credentials) as client,
                CertificateAuthorityClient.connect(settings) as ca,
            ):
                contenders = {"direct": direct(client), "service": through_service(ca)}
                results: dict[str, tuple[list[float], float]] = {n: ([], 0.0) for n in contenders}
                for _ in range(options.rounds):
                    for name, issue in contenders.items():
                        latencies, wall = run(issue, options.threads, options.issuances)
                        previous, total = results[name]
                        results[name] = (previous + latencies, total + wall)
        finally:
            app.stop(grace=1)
    print(
        f"{options.rounds} rounds x {options.issuances} issuances, {options.threads} threads, "
        f"poll interval {POLL * 1000:.0f} ms"
    )
    direct_rate, direct_p50, direct_p99 = summary("direct", *results["direct"])
    rate, p50, p99 = summary("service", *results["service"])
    print(
        f"ratio    service/direct: throughput {rate / direct_rate:.3f}, "
        f"p50 {p50 / direct_p50:.3f}, p99 {p99 / direct_p99:.3f}"
    )


if __name__ == "__main__":
    main()
