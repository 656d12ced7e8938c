"""Fixtures of the client tests: the service fixtures (a real service with mutual TLS in front of
a real emulator), clients of it as each development identity, and ``sectigo-ca`` runs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pytest
import structlog
from click.testing import CliRunner, Result

from sectigo_client import CertificateAuthorityClient, ConnectionSettings
from sectigo_client.channel import ENV_CACERT, ENV_CERT, ENV_KEY, ENV_TARGET
from sectigo_client.cli import main
from sectigo_svc.devcerts import DevCerts
from tests.service import conftest as service_fixtures
from tests.service.conftest import Service

# The service tests' fixtures, shared: the development PKI (once per session), and real services
# with mutual TLS on port 0 in front of a real emulator.
pki = service_fixtures.pki
service_factory = service_fixtures.service_factory
service = service_fixtures.service

ClientFactory = Callable[..., CertificateAuthorityClient]


def environment(target: str, pki: DevCerts, client: str = "registration") -> dict[str, str]:
    """The ``SECTIGO_CA_*`` variables for ``client`` (``intruder``: signed by another CA)."""
    cert, key = pki.intruder if client == "intruder" else pki.client(client)
    return {
        ENV_TARGET: target,
        ENV_CERT: str(cert),
        ENV_KEY: str(key),
        ENV_CACERT: str(pki.ca),
    }


def settings(target: str, pki: DevCerts, client: str = "registration") -> ConnectionSettings:
    return ConnectionSettings.from_env(environment(target, pki, client))


@pytest.fixture(autouse=True)
def service_logs_apart() -> Iterator[None]:
    """The in-process service logs with structlog to whatever ``sys.stdout`` is at that moment,
    and CliRunner swaps ``sys.stdout`` while a command runs: pin the logs to the stream of the
    test, so that a command's output is only its own."""
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(sys.stdout))
    yield
    structlog.configure(**saved)


@pytest.fixture
def client_factory(service: Service) -> Iterator[ClientFactory]:
    """Clients of ``service`` as a development identity; all are closed when the test ends."""
    made: list[CertificateAuthorityClient] = []

    def make(client: str = "registration") -> CertificateAuthorityClient:
        ca = CertificateAuthorityClient.connect(settings(service.target, service.pki, client))
        made.append(ca)
        return ca

    yield make
    for ca in made:
        ca.close()


@pytest.fixture
def ca(client_factory: ClientFactory) -> CertificateAuthorityClient:
    """A client as ``registration`` (roles issue, read and revoke)."""
    return client_factory()


@dataclass(frozen=True)
class Cli:
    """Runs ``sectigo-ca`` in process against a service, configured through the environment."""

    target: str
    pki: DevCerts

    def __call__(
        self, *args: str, client: str = "registration", env: Mapping[str, str] | None = None
    ) -> Result:
        variables = environment(self.target, self.pki, client) | dict(env or {})
        return CliRunner().invoke(main, list(args), env=variables, catch_exceptions=False)


@pytest.fixture
def cli(service: Service) -> Cli:
    return Cli(service.target, service.pki)
