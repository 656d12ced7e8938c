"""Mutual-TLS channels to the service: where the settings come from, and how the channel behaves.

Settings come from PEM bytes, from files, or from the environment:

=====================  ==========================================================
``SECTIGO_CA_TARGET``  ``host:port`` of the service, e.g. ``ca.internal:9443``
``SECTIGO_CA_CERT``    the client certificate (PEM file) that identifies the caller
``SECTIGO_CA_KEY``     its private key (PEM file)
``SECTIGO_CA_CACERT``  the CA bundle (PEM file) the service's certificate must chain to
=====================  ==========================================================

Every channel retries UNAVAILABLE (the connection failed, or the service could not reach Sectigo)
with exponential backoff for the RPCs in :data:`RETRIED_METHODS`, within each call's deadline.
That is every RPC: reads are side-effect free, IssueCertificate is idempotent per request id, and
RevokeCertificate is idempotent in the service (a request already REVOKED, or ON_HOLD for a hold,
is returned as is, and a revocation whose outcome is unclear is settled by looking the serial up at
Sectigo), so a retry never revokes anything twice or anything else. A REMOVE_FROM_CRL retried after
it took effect fails with FAILED_PRECONDITION (the request is READY again by then).

A retry never comes sooner than the service asked: its failures carry ``grpc-retry-pushback-ms``,
which gRPC obeys in place of its own backoff, and which forbids the retry when the wait would
outlast the call's deadline (the call then fails at once with ``Unavailable.retry_after``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from sectigo.ca.v1 import ca_pb2
from sectigo_client.errors import ConfigurationError

ENV_TARGET = "SECTIGO_CA_TARGET"
ENV_CERT = "SECTIGO_CA_CERT"
ENV_KEY = "SECTIGO_CA_KEY"
ENV_CACERT = "SECTIGO_CA_CACERT"

SERVICE: str = ca_pb2.DESCRIPTOR.services_by_name["CertificateAuthority"].full_name
RETRIED_METHODS = (
    "IssueCertificate",
    "GetCertificateRequest",
    "ListCertificateRequests",
    "WatchCertificateRequest",
    "DownloadCertificate",
    "FindCertificates",
    "RevokeCertificate",
    "ListAuthorities",
    "GetLicenses",
    "ListProfiles",
    "GetProfile",
)
RETRY_POLICY = {
    "maxAttempts": 5,
    "initialBackoff": "0.2s",
    "maxBackoff": "3s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
# Keepalive pings only while calls are active (a long Watch), and no more often than every
# 5 minutes: the default gRPC server refuses more frequent pings with a GOAWAY (too_many_pings).
KEEPALIVE_TIME_MS = 300_000
KEEPALIVE_TIMEOUT_MS = 20_000
# A restarted service is reconnected to within seconds, not gRPC's default of up to 2 minutes.
MAX_RECONNECT_BACKOFF_MS = 5_000


def service_config() -> str:
    """The JSON service config: retry UNAVAILABLE for :data:`RETRIED_METHODS`, throttled."""
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": SERVICE, "method": name} for name in RETRIED_METHODS],
                    "retryPolicy": RETRY_POLICY,
                }
            ],
            # Stop retrying when most calls fail, so that an outage is not made worse.
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        }
    )


def channel_options() -> list[tuple[str, str | int]]:
    return [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config()),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]


@dataclass(frozen=True)
class ConnectionSettings:
    """Where the service is and the PEM material of a mutual-TLS connection to it.

    ``certificate`` may hold the client certificate followed by its intermediates.
    """

    target: str
    certificate: bytes
    private_key: bytes = field(repr=False)
    root_certificates: bytes

    def __post_init__(self) -> None:
        if not self.target.strip():
            raise ConfigurationError(f"no service target: give host:port (or set {ENV_TARGET})")
        _check_certificates(self.certificate, "client certificate")
        _check_certificates(self.root_certificates, "CA bundle")
        try:
            load_pem_private_key(self.private_key, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "the client private key is not an unencrypted PEM private key"
            ) from exc

    @classmethod
    def from_files(
        cls, target: str, cert: str | Path, key: str | Path, ca: str | Path
    ) -> ConnectionSettings:
        """Read the three PEM files now; a missing or unreadable one is a ConfigurationError."""
        return cls(
            target=target,
            certificate=_read(cert, "client certificate"),
            private_key=_read(key, "client private key"),
            root_certificates=_read(ca, "CA bundle"),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
        """From ``SECTIGO_CA_TARGET``, ``SECTIGO_CA_CERT``, ``SECTIGO_CA_KEY`` and
        ``SECTIGO_CA_CACERT`` (``environ`` defaults to the process environment)."""
        env = os.environ if environ is None else environ
        names = (ENV_TARGET, ENV_CERT, ENV_KEY, ENV_CACERT)
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise ConfigurationError(f"set {', '.join(missing)} to reach the service")
        return cls.from_files(env[ENV_TARGET], env[ENV_CERT], env[ENV_KEY], env[ENV_CACERT])

    def channel(self) -> grpc.Channel:
        """A new mutual-TLS channel with keepalive, fast reconnects and the retry policy."""
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate,
        )
        return grpc.secure_channel(self.target, credentials, options=channel_options())


def _read(path: str | Path, what: str) -> bytes:
    if not str(path):
        raise ConfigurationError(f"no {what} file given")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def _check_certificates(pem: bytes, what: str) -> None:
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ConfigurationError(f"the {what} holds no PEM certificate") from exc
