"""Fixtures for the service: a real server on port 0 with mutual TLS, against a real emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from sectigo_svc.api.v1 import ca_pb2_grpc
from sectigo_svc.app import Application
from sectigo_svc.config import ServiceConfig
from sectigo_svc.devcerts import DevCerts, make_dev_certs
from sectigo_svc.emulator import Emulator
from sectigo_svc.sectigo.credentials import Credentials
from tests.conftest import EmulatorFactory

READY_TIMEOUT = 20.0


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    """Development CA, server and client certificates, made once per test session."""
    return make_dev_certs(tmp_path_factory.mktemp("pki"))


@dataclass
class Service:
    """A running service, how to reach it, and the emulator behind it."""

    app: Application
    emulator: Emulator
    pki: DevCerts
    config: ServiceConfig

    @property
    def target(self) -> str:
        return f"localhost:{self.app.port}"

    def channel(self, client: str = "registration", ca: Path | None = None) -> grpc.Channel:
        """A mutual-TLS channel presenting ``client``'s certificate (``intruder``: wrong CA)."""
        cert, key = self.pki.intruder if client == "intruder" else self.pki.client(client)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(ca or self.pki.ca).read_bytes(),
            private_key=key.read_bytes(),
            certificate_chain=cert.read_bytes(),
        )
        return grpc.secure_channel(self.target, credentials)

    def stub(self, client: str = "registration") -> ca_pb2_grpc.CertificateAuthorityStub:
        return ca_pb2_grpc.CertificateAuthorityStub(self.channel(client))


ServiceFactory = Callable[..., Service]


def service_config(pki: DevCerts, state: Path, emulator: Emulator, **overrides: Any) -> ServiceConfig:
    settings: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "tls_cert": pki.server_cert,
        "tls_key": pki.server_key,
        "tls_client_ca": pki.ca,
        "policy_file": pki.policy,
        "state_dir": state,
        "sectigo_endpoint": emulator.api_url,
        "sectigo_environment": "testing",
        "sectigo_token_cache_dir": state / "tokens",
        "sectigo_timeout": 5.0,
        "poll_min_interval": 0.05,
        "poll_max_interval": 0.5,
        "shutdown_grace": 1.0,
    }
    settings.update(overrides)
    return ServiceConfig(**settings)


@pytest.fixture
def service_factory(
    pki: DevCerts, tmp_path: Path, emulator_factory: EmulatorFactory
) -> Iterator[ServiceFactory]:
    """Start services (sharing one emulator and state dir unless told otherwise)."""
    started: list[Application] = []
    shared: list[Emulator] = []

    def make(emulator: Emulator | None = None, state: Path | None = None, **overrides: Any) -> Service:
        if emulator is None:
            if not shared:
                shared.append(emulator_factory())
            emulator = shared[0]
        config = service_config(pki, state or tmp_path / "state", emulator, **overrides)
        app = Application(config, Credentials.load("tester", "supersecretsquirrel"))
        app.start()
        started.append(app)
        assert app.wait_ready(READY_TIMEOUT), "the service never became ready"
        return Service(app, emulator, pki, config)

    yield make
    for app in started:
        app.stop(grace=0.5)


@pytest.fixture
def service(service_factory: ServiceFactory) -> Service:
    return service_factory()
