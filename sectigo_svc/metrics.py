"""Prometheus metrics on their own HTTP port, from a registry owned by the application.

RPCs and Sectigo calls are counted as they happen. Requests by state and licence balances need
the store or Sectigo: a scrape starts a reading in the background and waits for it at most
:data:`READING_WAIT` seconds, else answers with the last reading, and exports that reading's age;
so a scrape answers at once whatever the database or Sectigo do (balances come through the
catalog's short cache, so scrapes cost Sectigo at most one call per cache period).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
READING_WAIT = 0.3  # seconds a scrape waits for a fresh reading before it takes the last one


class Reading:
    """The last value read from a source, read again in a thread of its own when asked.

    :meth:`latest` starts a reading (unless one is under way), waits for it at most ``wait``
    seconds, and returns the last value read successfully ({} before the first). A source that
    fails or hangs leaves the last value in place; :meth:`age` tells how old it is.
    """

    def __init__(
        self,
        read: Callable[[], Mapping[Any, int]],
        wait: float = READING_WAIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._wait = wait
        self._mono = monotonic
        self._lock = threading.Lock()
        self._value: Mapping[Any, int] = {}
        self._read_at: float | None = None
        self._under_way: threading.Event | None = None

    def latest(self) -> Mapping[Any, int]:
        with self._lock:
            done = self._under_way
            if done is None:
                done = self._under_way = threading.Event()
                threading.Thread(
                    target=self._refresh, args=(done,), name="metrics-reading", daemon=True
                ).start()
        done.wait(self._wait)
        with self._lock:
            return self._value

    def age(self) -> float:
        """Seconds since the last successful reading; infinite before the first."""
        with self._lock:
            read_at = self._read_at
        return math.inf if read_at is None else self._mono() - read_at

    def _refresh(self, done: threading.Event) -> None:
        try:
            value = dict(self._read())
        except Exception:  # the source is down: the last value stays, and ages
            value = None
        with self._lock:
            if value is not None:
                self._value, self._read_at = value, self._mono()
            self._under_way = None
        done.set()


class _Gauges(Collector):
    """Gauges served from a :class:`Reading`, and the reading's age in seconds."""

    def __init__(
        self, name: str, documentation: str, label: str, reading: Reading, age_name: str
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._reading = reading
        self._age_name = age_name

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(self._name, self._documentation, labels=[self._label]),
            GaugeMetricFamily(
                self._age_name,
                f"seconds since {self._name} was last read (+Inf: never); its values are from then",
            ),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families without samples, so registering never calls the source."""
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values = self._reading.latest()
        family, age = self._families()
        for key, value in sorted(values.items(), key=lambda item: str(item[0])):
            family.add_metric([str(key)], value)
        age.add_metric([], self._reading.age())
        yield family
        yield age


class Metrics:
    """Every metric the service exports; also the Sectigo client's observer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.rpcs = Counter(
            "sectigo_svc_rpcs",
            "gRPC calls handled, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "sectigo_svc_rpc_duration_seconds",
            "gRPC call latency by method and status code",
            ["method", "code"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sectigo_calls = Counter(
            "sectigo_svc_sectigo_calls",
            "HTTP attempts to Sectigo by endpoint, status (or error) and attempt number",
            ["endpoint", "status", "attempt"],
            registry=self.registry,
        )
        self.sectigo_seconds = Histogram(
            "sectigo_svc_sectigo_call_duration_seconds",
            "Sectigo HTTP attempt latency by endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sectigo_up = Gauge(
            "sectigo_svc_sectigo_up",
            "1 while Sectigo answers and accepts the credentials (the `sectigo` health), else 0",
            registry=self.registry,
        )
        self.sectigo_changes = Counter(
            "sectigo_svc_sectigo_changes",
            "Changes of Sectigo's state, by the state changed to (up or down)",
            ["to"],
            registry=self.registry,
        )
        self.token_renewals = Counter(
            "sectigo_svc_sectigo_token_renewals",
            "Sectigo tokens obtained, by how (login or refresh)",
            ["how"],
            registry=self.registry,
        )
        self.client_api_versions = Counter(
            "sectigo_svc_client_api_versions",
            "gRPC calls by the API version the client stated (none: no header; unsupported: "
            "refused; other: a served version past the first 32 seen)",
            ["version"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "sectigo_svc_duplicate_batches",
            "surplus Sectigo batches found under the batch name of a request that uses another",
            registry=self.registry,
        )
        self.adopted = Counter(
            "sectigo_svc_batches_adopted",
            "batches a lookup by name found before an order was sent, by the request's send "
            "state then (never: the store had no record of a send, e.g. after a restore)",
            ["phase"],
            registry=self.registry,
        )
        self.offset = Gauge(
            "sectigo_svc_clock_offset_seconds",
            "the store's clock minus this replica's wall clock, as last measured",
            registry=self.registry,
        )
        self.lease_renewal_failures = Counter(
            "sectigo_svc_lease_renewal_failures",
            "lease renewal rounds that failed: the store failed, or a lease's row stayed locked "
            "by another transaction for over a third of a lease",
            registry=self.registry,
        )
        self._renewed_at = time.monotonic()
        renewal_age = Gauge(
            "sectigo_svc_lease_renewal_age_seconds",
            "seconds since this replica last renewed all its leases (or started)",
            registry=self.registry,
        )
        renewal_age.set_function(lambda: time.monotonic() - self._renewed_at)

    def rpc(self, method: str, code: str, seconds: float) -> None:
        self.rpcs.labels(method, code).inc()
        self.rpc_seconds.labels(method, code).observe(seconds)

    def client_api_version(self, label: str) -> None:
        self.client_api_versions.labels(label).inc()

    def sectigo_call(
        self, endpoint: str, status: int | None, attempt: int, seconds: float, error: str | None
    ) -> None:
        label = str(status) if status is not None else (error or "none")
        self.sectigo_calls.labels(endpoint, label, str(attempt)).inc()
        self.sectigo_seconds.labels(endpoint).observe(seconds)

    def sectigo_state(self, up: bool, *, changed: bool) -> None:
        """Sectigo is ``up`` or not; ``changed``: it was the other way before (not at start)."""
        self.sectigo_up.set(1 if up else 0)
        if changed:
            self.sectigo_changes.labels("up" if up else "down").inc()

    def lease_renewal(self, complete: bool) -> None:
        """A lease renewal round ended: ``complete`` (every lease renewed) or failed."""
        if complete:
            self._renewed_at = time.monotonic()
        else:
            self.lease_renewal_failures.inc()

    def tokens_renewed(self, how: str) -> None:
        self.token_renewals.labels(how).inc()

    def batch_adopted(self, phase: str) -> None:
        self.adopted.labels(phase).inc()

    def clock_offset(self, seconds: float) -> None:
        self.offset.set(seconds)

    def duplicate_batches(self, surplus: int) -> None:
        """``surplus`` batches were found under a request's name beside the one it uses."""
        self.duplicates.inc(surplus)

    def track_requests(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """Export the store's requests by state, read off the scrape (see :class:`Reading`)."""
        self.registry.register(
            _Gauges(
                "sectigo_svc_requests",
                "Certificate requests by state",
                "state",
                Reading(counts),
                "sectigo_svc_store_reading_age_seconds",
            )
        )

    def track_balances(self, balances: Callable[[], Mapping[int, int]]) -> None:
        """Export licence balances, read off the scrape (see :class:`Reading`)."""
        self.registry.register(
            _Gauges(
                "sectigo_svc_licence_balance",
                "Licences left per Sectigo authority",
                "authority",
                Reading(balances),
                "sectigo_svc_licence_balance_age_seconds",
            )
        )

    def track_tls_expiry(self, seconds_left: Callable[[], float]) -> None:
        """The serving TLS certificate's time to expiry, read at scrape time."""
        gauge = Gauge(
            "sectigo_svc_tls_certificate_expiry_seconds",
            "Seconds until the server's TLS certificate expires (negative once it has); follows "
            "the certificate files as they are replaced",
            registry=self.registry,
        )
        gauge.set_function(seconds_left)

    def serve(self, listen: str) -> MetricsEndpoint:
        """Serve ``/metrics`` on ``host:port`` (port 0 picks one) from a background thread."""
        host, _, port = listen.rpartition(":")
        server, thread = start_http_server(int(port), host.strip("[]"), registry=self.registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join()

        return MetricsEndpoint(server.server_port, stop)


@dataclass(frozen=True)
class MetricsEndpoint:
    port: int
    stop: Callable[[], None]
