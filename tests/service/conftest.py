"""Fixtures for the service: a real server on port 0 with mutual TLS, against a real emulator."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog

from sectigo.ca.v1 import ca_pb2_grpc
from sectigo_svc import logs
from sectigo_svc.app import Application
from sectigo_svc.config import ServiceConfig
from sectigo_svc.devcerts import DevCerts, make_dev_certs
from sectigo_svc.devstack import loopback_settings
from sectigo_svc.emulator import Emulator
from sectigo_svc.sectigo.credentials import Credentials
from tests.conftest import EmulatorFactory
from tests.service.helpers import (
    PASSWORD,
    USERNAME,
    EmulatorApi,
    Upstream,
    health_status,
    mtls_channel,
)

READY_TIMEOUT = 20.0


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    """Development CA, server and client certificates, made once per test session."""
    return make_dev_certs(tmp_path_factory.mktemp("pki"))


@dataclass
class Service:
    """A running service, how to reach it, and the emulator behind it.

    Channels made here are closed when the test ends (or when the service is stopped).
    """

    app: Application
    emulator: Upstream
    pki: DevCerts
    config: ServiceConfig
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"localhost:{self.app.port}"

    @property
    def sectigo(self) -> EmulatorApi:
        """The emulator behind this service, over its HTTP API and management API."""
        return EmulatorApi(self.emulator)

    def channel(self, client: str = "registration") -> grpc.Channel:
        """A mutual-TLS channel presenting ``client``'s certificate (``intruder``: wrong CA)."""
        return self._keep(mtls_channel(self.target, self.pki, client))

    def anonymous_channel(self) -> grpc.Channel:
        """A TLS channel that trusts the server but presents no client certificate."""
        credentials = grpc.ssl_channel_credentials(root_certificates=self.pki.ca.read_bytes())
        return self._keep(grpc.secure_channel(self.target, credentials))

    def _keep(self, channel: grpc.Channel) -> grpc.Channel:
        self.channels.append(channel)
        return channel

    def stub(self, client: str = "registration") -> ca_pb2_grpc.CertificateAuthorityStub:
        return ca_pb2_grpc.CertificateAuthorityStub(self.channel(client))

    def health(self, service: str = "") -> str:
        """The health of ``service`` ("" = the whole server) by name, e.g. ``SERVING``."""
        return health_status(self.channel("reader"), service)

    def stop(self, grace: float = 0.5) -> None:
        for channel in self.channels:
            channel.close()
        self.channels.clear()
        self.app.stop(grace=grace)


ServiceFactory = Callable[..., Service]


def service_config(
    pki: DevCerts, state: Path, emulator: Upstream, **overrides: Any
) -> ServiceConfig:
    settings: dict[str, Any] = loopback_settings(pki, state, emulator.api_url) | {
        "listen": "127.0.0.1:0",
        "sectigo_timeout": 3.0,
        "quarantine": 4.0,
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
    """Start services (sharing one emulator and state dir unless told otherwise).

    ``credentials`` replaces the emulator's test account; ``ready=False`` returns without waiting
    for health to turn SERVING (for services that must not become ready).
    """
    started: list[Service] = []
    shared: list[Emulator] = []

    def make(
        emulator: Upstream | None = None,
        state: Path | None = None,
        credentials: Credentials | None = None,
        ready: bool = True,
        **overrides: Any,
    ) -> Service:
        if emulator is None:
            if not shared:
                shared.append(emulator_factory())
            emulator = shared[0]
        config = service_config(pki, state or tmp_path / "state", emulator, **overrides)
        app = Application(config, credentials or Credentials.load(USERNAME, PASSWORD))
        app.start()
        service = Service(app, emulator, pki, config)
        started.append(service)
        if ready:
            assert app.wait_ready(READY_TIMEOUT), "the service never became ready"
        return service

    yield make
    for service in started:
        service.stop()


@pytest.fixture
def service(service_factory: ServiceFactory) -> Service:
    return service_factory()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything the process logs while the test runs, as the service would write it (JSON)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure("debug", fmt="json", stream=stream)
    yield stream
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
