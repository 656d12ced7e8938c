"""gRPC health tells the truth: readiness (``""`` and the service name) is about this process (the
store, the start-up credential check, stopping), and Sectigo's state is its own health service
``sectigo`` with a metric, so a Sectigo outage never empties the load balancer."""

from __future__ import annotations

import io
import json

import pytest
import requests

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc import app as application
from sectigo_svc.sectigo.credentials import Credentials
from sectigo_svc.store.base import StoreError
from tests.conftest import EmulatorFactory
from tests.service.conftest import ServiceFactory
from tests.service.helpers import USERNAME, EmulatorApi, poll

SERVICE = "sectigo.ca.v1.CertificateAuthority"
QUICK = {
    "sectigo_check_interval": 0.2,
    "sectigo_down_after": 2,
    "sectigo_up_after": 2,
    "metrics_listen": "127.0.0.1:0",
}


def _login_answers(sectigo: EmulatorApi, status: int) -> int:
    return int(sectigo.stats()["responses"].get("login", {}).get(str(status), 0))


def _metric(port: int, name: str) -> dict[str, float]:
    """The samples of ``name`` on the metrics endpoint, by their label text."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key.removeprefix(name)] = float(value)
    return samples


def test_wrong_sectigo_credentials_keep_health_not_serving(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(
        credentials=Credentials.load(USERNAME, "not the password"), ready=False, **QUICK
    )
    sectigo = service.sectigo

    poll(lambda: True if _login_answers(sectigo, 401) >= 2 else None, "two refused logins")

    assert service.health() == "NOT_SERVING"
    assert service.health(SERVICE) == "NOT_SERVING"
    assert service.health("sectigo") == "NOT_SERVING"
    assert service.health("liveness") == "SERVING"
    assert not service.app.wait_ready(0)


def test_health_turns_serving_once_the_credentials_work(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory()
    sectigo = EmulatorApi(emulator)
    sectigo.add_fault(kind="error", status=503, routes=["login"])
    service = service_factory(emulator=emulator, ready=False)
    poll(lambda: True if _login_answers(sectigo, 503) >= 1 else None, "a failed login")
    assert service.health() == "NOT_SERVING"

    sectigo.clear_faults()

    poll(lambda: True if service.health() == "SERVING" else None, "health SERVING", timeout=10)
    assert service.health(SERVICE) == "SERVING"


def test_readiness_follows_the_store_and_comes_back_by_itself(
    service_factory: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(application, "STORE_CHECK_INTERVAL", 0.1)
    service = service_factory()
    assert service.health() == "SERVING"
    working_ping = service.app.store.ping

    def broken_ping() -> None:
        raise StoreError("disk I/O error")

    monkeypatch.setattr(service.app.store, "ping", broken_ping)
    poll(lambda: True if service.health() == "NOT_SERVING" else None, "readiness NOT_SERVING")
    assert service.health(SERVICE) == "NOT_SERVING"
    assert service.health("liveness") == "SERVING"

    monkeypatch.setattr(service.app.store, "ping", working_ping)
    poll(lambda: True if service.health() == "SERVING" else None, "readiness SERVING again")
    assert service.health(SERVICE) == "SERVING"


def test_a_sectigo_outage_shows_on_its_own_and_leaves_readiness_alone(
    service_factory: ServiceFactory, captured: io.StringIO
) -> None:
    service = service_factory(**QUICK)
    stub = service.stub()
    stub.IssueCertificate(
        pb.IssueCertificateRequest(
            request_id="before-outage", server_key=pb.ServerKeySpec(common_name="a.example.com")
        ),
        timeout=10,
    )
    poll(lambda: True if service.health("sectigo") == "SERVING" else None, "sectigo SERVING")
    port = service.app.metrics_port
    assert _metric(port, "sectigo_svc_sectigo_up") == {"": 1.0}

    service.sectigo.add_fault(kind="error", status=503)
    poll(lambda: True if service.health("sectigo") == "NOT_SERVING" else None, "sectigo down")

    # Readiness is about this pod: callers keep status and list while Sectigo is down.
    assert service.health() == "SERVING"
    assert service.health(SERVICE) == "SERVING"
    found = stub.GetCertificateRequest(
        pb.GetCertificateRequestRequest(request_id="before-outage"), timeout=5
    )
    assert found.request_id == "before-outage"
    assert _metric(port, "sectigo_svc_sectigo_up") == {"": 0.0}

    service.sectigo.clear_faults()
    poll(lambda: True if service.health("sectigo") == "SERVING" else None, "sectigo up again")

    assert _metric(port, "sectigo_svc_sectigo_up") == {"": 1.0}
    changes = _metric(port, "sectigo_svc_sectigo_changes_total")
    assert changes == {'{to="down"}': 1.0, '{to="up"}': 1.0}
    events = [json.loads(line).get("event") for line in captured.getvalue().splitlines()]
    logged = ("sectigo unavailable", "sectigo available again")
    assert [e for e in events if e in logged] == list(logged), "one log line per change"


def test_refused_credentials_after_start_show_on_sectigo_not_on_readiness(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory(**QUICK)
    poll(lambda: True if service.health("sectigo") == "SERVING" else None, "sectigo SERVING")

    service.sectigo.settings(password="a-new-password-nobody-told-us")
    reply = requests.post(f"{service.emulator.management_url}/rotate-signing-key", timeout=5)
    reply.raise_for_status()

    poll(lambda: True if service.health("sectigo") == "NOT_SERVING" else None, "sectigo down")
    assert service.health() == "SERVING"
    cause = service.app.sectigo.availability.cause
    assert "credentials" in cause.lower()
    assert "nobody-told-us" not in cause
