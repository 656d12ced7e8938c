"""Builds the gRPC server: the servicer behind the interceptor, health, reflection, TLS.

Health names three things, each set by the application:

- readiness, ``""`` and :data:`SERVICE_NAME`: whether THIS process can serve (NOT_SERVING until the
  store and the Sectigo credentials work, while the store fails, and from SIGTERM on);
- :data:`SECTIGO`: whether Sectigo answers and accepts the credentials. Every replica shares
  Sectigo, so its state is reported on its own and never takes a replica out of rotation;
- :data:`LIVENESS`: SERVING as long as the process answers.

Long-lived streams: the server accepts client keepalive pings as often as every
:data:`MIN_CLIENT_PING_INTERVAL_MS` (gRPC's default policy sends GOAWAY ``too_many_pings`` to a
client pinging every 10 s after about 30 s, cutting its Watch), and pings every connection itself
(:class:`Keepalive`), so that load balancers and NATs do not drop a quiet Watch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sectigo.ca.v1 import ca_pb2, ca_pb2_grpc
from sectigo_svc.authz import Role
from sectigo_svc.rpc.interceptor import CallInterceptor
from sectigo_svc.rpc.tls import TlsFiles, TlsWatcher

LIVENESS = "liveness"
SECTIGO = "sectigo"
SERVICE_NAME: str = ca_pb2.DESCRIPTOR.services_by_name["CertificateAuthority"].full_name
ROLES: dict[str, Role] = {
    method.name: Role.READ
    for method in ca_pb2.DESCRIPTOR.services_by_name["CertificateAuthority"].methods
} | {"IssueCertificate": Role.ISSUE, "RevokeCertificate": Role.REVOKE}
# RPCs answered from the store alone; every other RPC may wait on Sectigo (IssueCertificate reads
# the catalog, which asks Sectigo when its copy is stale) and takes a Sectigo slot.
STORE_READS = frozenset(
    {
        "GetCertificateRequest",
        "ListCertificateRequests",
        "WatchCertificateRequest",
        "DownloadCertificate",
    }
)
SECTIGO_METHODS = frozenset(ROLES) - STORE_READS
# Clients may ping this often, with or without calls in flight; a client pinging faster gets
# MAX_PING_STRIKES pings refused, then GOAWAY. Half of the 10 s a client behind a NAT may use.
MIN_CLIENT_PING_INTERVAL_MS = 5_000
MAX_PING_STRIKES = 2


@dataclass(frozen=True)
class Keepalive:
    """The server's own pings on every connection: one each ``interval`` seconds, and the
    connection is closed when an answer takes longer than ``timeout`` seconds."""

    interval: float = 30.0
    timeout: float = 20.0

    def options(self) -> list[tuple[str, int]]:
        """The gRPC server options of this policy and of what clients may do."""
        return [
            ("grpc.keepalive_time_ms", round(self.interval * 1000)),
            ("grpc.keepalive_timeout_ms", round(self.timeout * 1000)),
            ("grpc.http2.max_pings_without_data", 0),  # a quiet Watch sends no data
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
            ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES),
        ]


@dataclass
class Hosted:
    server: grpc.Server
    health: health.HealthServicer
    port: int
    probe: grpc.Server | None = None
    probe_port: int = 0

    def start(self) -> None:
        self.server.start()
        if self.probe is not None:
            self.probe.start()

    def stop(self, grace: float) -> None:
        """Refuse new RPCs, let in-flight ones finish for ``grace`` seconds; the probe port
        answers (with what readiness was set to) until the drain is over."""
        self.server.stop(grace).wait()
        if self.probe is not None:
            self.probe.stop(0)

    def set_serving(self, serving: bool) -> None:
        """Readiness: ``""`` and :data:`SERVICE_NAME`."""
        for name in ("", SERVICE_NAME):
            self.health.set(name, _status(serving))

    def set_sectigo(self, up: bool) -> None:
        """The :data:`SECTIGO` health service."""
        self.health.set(SECTIGO, _status(up))


def _status(serving: bool) -> health_pb2.HealthCheckResponse.ServingStatus:
    if serving:
        return health_pb2.HealthCheckResponse.SERVING
    return health_pb2.HealthCheckResponse.NOT_SERVING


def build_server(
    servicer: ca_pb2_grpc.CertificateAuthorityServicer,
    interceptor: CallInterceptor,
    listen: str,
    tls: TlsFiles | TlsWatcher | None,
    workers: int,
    max_concurrent_rpcs: int,
    probe_listen: str = "",
    keepalive: Keepalive = Keepalive(),
) -> Hosted:
    """Bind (``tls`` None means plain text; a :class:`TlsWatcher` follows the files on disk, a
    :class:`TlsFiles` reads them once) and register everything; not started yet.

    ``probe_listen`` adds a plain-text port serving only the health service, sharing its state,
    for probes that cannot present a client certificate (Kubernetes gRPC probes, HEALTHCHECK).
    """
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        interceptors=[interceptor],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        options=[("grpc.so_reuseport", 0), *keepalive.options()],
    )
    ca_pb2_grpc.add_CertificateAuthorityServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer(
        experimental_non_blocking=True,
        experimental_thread_pool=ThreadPoolExecutor(max_workers=1, thread_name_prefix="health"),
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = _bind(server, listen, tls.credentials() if tls else None)
    hosted = Hosted(server, health_servicer, port)
    if probe_listen:
        probe = grpc.server(ThreadPoolExecutor(max_workers=2, thread_name_prefix="probe"))
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, probe)
        hosted.probe = probe
        hosted.probe_port = _bind(probe, probe_listen, None)
    hosted.set_serving(False)
    hosted.set_sectigo(False)
    health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    return hosted


def _bind(server: grpc.Server, listen: str, credentials: grpc.ServerCredentials | None) -> int:
    """The bound port; a clear OSError (not grpc's RuntimeError) when the address is taken."""
    try:
        if credentials is None:
            return server.add_insecure_port(listen)
        return server.add_secure_port(listen, credentials)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {listen}: the address is in use or not local") from exc
