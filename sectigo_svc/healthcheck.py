"""A gRPC health probe, so container health checks need no downloaded probe binary."""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def probe(
    target: str,
    service: str = "",
    timeout: float = 3.0,
    tls: tuple[Path, Path, Path] | None = None,
) -> str:
    """The health status name of ``service`` at ``target`` (e.g. ``SERVING``), or ``UNREACHABLE``.

    ``tls`` is (ca, cert, key) for the mutual-TLS port; None speaks plain text (the probe port).
    """
    if tls is None:
        channel = grpc.insecure_channel(target)
    else:
        ca, cert, key = tls
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.read_bytes(),
            private_key=key.read_bytes(),
            certificate_chain=cert.read_bytes(),
        )
        channel = grpc.secure_channel(target, credentials)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
