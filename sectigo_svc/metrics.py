"""Prometheus metrics on their own HTTP port, from a registry owned by the application.

RPCs and Sectigo calls are counted as they happen; requests by state and licence balances are read
when Prometheus scrapes (balances through the catalog's short cache, so scrapes cost Sectigo at
most one call per cache period).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Gauges(Collector):
    """Gauges computed at scrape time from a callable; a failing source yields no samples."""

    def __init__(
        self, name: str, documentation: str, label: str, read: Callable[[], Mapping[Any, int]]
    ):
        self._name = name
        self._documentation = documentation
        self._label = label
        self._read = read

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The family without samples, so registering never calls the source."""
        yield GaugeMetricFamily(self._name, self._documentation, labels=[self._label])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._documentation, labels=[self._label])
        try:
            values = self._read()
        except Exception:  # a scrape must not fail because a source is down
            values = {}
        for key, value in sorted(values.items(), key=lambda item: str(item[0])):
            family.add_metric([str(key)], value)
        yield family


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
        self.registry.register(
            _Gauges("sectigo_svc_requests", "Certificate requests by state", "state", counts)
        )

    def track_balances(self, balances: Callable[[], Mapping[int, int]]) -> None:
        self.registry.register(
            _Gauges(
                "sectigo_svc_licence_balance",
                "Licences left per Sectigo authority",
                "authority",
                balances,
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
