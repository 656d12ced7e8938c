"""Every row of the answer table, for every endpoint: staged at the emulator where it can, with
``responses`` otherwise; the raised class and ``classify`` are checked against the rules."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import structlog

from sectigo_svc.emulator import Emulator, EmulatorConfig
from sectigo_svc.sectigo import SectigoClient, SectigoConfig, open_pkcs12_zip
from sectigo_svc.sectigo import endpoints as ep
from sectigo_svc.sectigo.answers import TABLE, Answer, Outcome, classify, render_markdown
from sectigo_svc.sectigo.auth_api import AuthApi
from sectigo_svc.sectigo.credential_store import CredentialStore
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.endpoints import Auth, Endpoint
from sectigo_svc.sectigo.errors import (
    ConnectionFailed,
    InsufficientLicences,
    InvalidCredentials,
    InvalidRequest,
    NotAuthorized,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    SectigoError,
    SectigoHTTPError,
    ServerError,
    Throttled,
    TLSAuthRequired,
    Unauthenticated,
    UnexpectedRedirect,
    UnexpectedResponse,
    UnsupportedMediaType,
    ValidationError,
)
from sectigo_svc.sectigo.token_cache import TokenCache
from sectigo_svc.sectigo.transport import Transport
from tests.sectigo.conftest import Management, client_config
from tests.sectigo.fakes import FakeAuthenticator, FakeClock, credentials
from tests.sectigo.mocked_http import BASE, Sleeps
from tests.sectigo.mocked_http import config as mocked_config
from tests.sectigo.test_emulator_endpoints import P12_PASSWORD, make_csr, server_params

ENDPOINTS = [value for value in vars(ep).values() if isinstance(value, Endpoint)]
BATCH_READS = {"batch_detail", "batch_status", "processing_info", "download"}
ERROR_STATUSES = {"400", "401", "402", "403", "404", "409", "415", "5xx", "501"}
EMULATED = ERROR_STATUSES | {"2xx", "429", "no_answer", "held_back"}
OUTCOMES = sorted(EMULATED | {"refused", "connect_timeout", "3xx", "unreadable"})


def expected_answer(endpoint: Endpoint, outcome: str) -> Answer:
    """The classification rules, restated independently of the table."""
    auth, write = endpoint.auth is not Auth.BEARER, endpoint.mutating
    if outcome == "2xx":
        return Answer.DONE
    if outcome in ("429", "refused", "connect_timeout", "held_back"):
        return Answer.NOT_TAKEN
    if outcome in ("400", "402", "403", "415", "501"):
        return Answer.REFUSED
    if outcome == "404":
        return Answer.TRANSIENT if endpoint.name in BATCH_READS else Answer.REFUSED
    if outcome in ("5xx", "no_answer", "unreadable"):
        return Answer.IN_DOUBT if write else Answer.TRANSIENT
    if outcome == "409":
        return Answer.REFUSED if auth else Answer.IN_DOUBT if write else Answer.TRANSIENT
    assert outcome in ("401", "3xx")
    return Answer.REFUSED if auth else Answer.NOT_TAKEN if write else Answer.TRANSIENT


def expected_error(endpoint: Endpoint, outcome: str) -> type[SectigoError] | None:
    write, login = endpoint.mutating, endpoint.name == "login"
    unauthenticated = InvalidCredentials if login else Unauthenticated
    redirect = TLSAuthRequired if login else UnexpectedRedirect
    errors: dict[str, type[SectigoError] | None] = {
        "2xx": None,
        "400": ValidationError,
        "401": unauthenticated,
        "402": InsufficientLicences,
        "403": NotAuthorized,
        "404": NotFound,
        "409": OutcomeUnknown if write else SectigoHTTPError,
        "415": UnsupportedMediaType,
        "429": RateLimited,
        "5xx": OutcomeUnknown if write else ServerError,
        "501": ServerError,
        "refused": ConnectionFailed,
        "connect_timeout": ConnectionFailed,
        "no_answer": OutcomeUnknown if write else ConnectionFailed,
        "held_back": Throttled,
        "3xx": redirect,
        "unreadable": OutcomeUnknown if write else UnexpectedResponse,
    }
    return errors[outcome]


@dataclass
class World:
    emulator: Emulator
    management: Management
    directory: Path
    batch_id: int
    serial: str
    refresh_token: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One emulator for the whole table, with a ready batch and an issued certificate."""
    directory = tmp_path_factory.mktemp("answers")
    emulator = Emulator(
        EmulatorConfig(host="127.0.0.1", port=0, management_port=0, authority_ids="distinct")
    )
    emulator.start()
    management = Management(emulator.management_url)
    config = client_config(emulator, directory)
    try:
        with SectigoClient.build(config, credentials()) as client:
            batch = client.create_single_cert_batch(1, "answers-setup", server_params())
            leaf = open_pkcs12_zip(client.download_bytes(batch.batch_id), P12_PASSWORD).leaf
        cached = TokenCache.for_account(config, "tester", structlog.get_logger()).load()
        assert cached is not None
        yield World(
            emulator,
            management,
            directory,
            batch.batch_id,
            f"{leaf.serial_number:X}",
            cached.tokens.refresh_token,
        )
    finally:
        management.session.close()
        emulator.stop()


def invoke(endpoint: Endpoint, client: SectigoClient, auth: AuthApi, world: World) -> Any:
    """Call ``endpoint`` with arguments the emulator accepts."""
    deadline = Deadline.after(2.0)
    batch, name = world.batch_id, endpoint.name
    calls: dict[str, Callable[[], Any]] = {
        "login": lambda: auth.login(credentials(), deadline),
        "refresh": lambda: auth.refresh(world.refresh_token, deadline),
        "create_batch": lambda: client.create_single_cert_batch(
            1, "answers", server_params(), deadline
        ),
        "upload_batch": lambda: client.upload_csr_batch(
            42, make_csr("answers.example.com"), deadline=deadline
        ),
        "list_batches": lambda: client.list_batches(batch_name="answers", deadline=deadline),
        "batch_detail": lambda: client.batch_detail(batch, deadline),
        "batch_status": lambda: client.batch_status(batch, deadline),
        "processing_info": lambda: client.processing_info(batch, deadline),
        "download": lambda: client.download_bytes(batch, deadline),
        "devices": lambda: client.licenses(deadline),
        "authorities": lambda: client.authorities(deadline),
        "balance": lambda: client.balance_available(1, deadline),
        "profiles": lambda: client.profiles(deadline),
        "profile_detail": lambda: client.profile_detail(42, deadline),
        "profile_parameters": lambda: client.profile_parameters(42, deadline),
        "organization": lambda: client.organization(deadline),
        "find": lambda: client.find(common_name="answers.example.com", deadline=deadline),
        "revoke": lambda: client.revoke(42, world.serial, deadline=deadline),
    }
    return calls[name]()


def wire(config: SectigoConfig, *, fake_tokens: bool = False, sleeps: Sleeps | None = None) -> Any:
    """A client and the auth API over one transport (tokens from the cache, or a fake)."""
    if sleeps is not None:
        transport = Transport(config, sleep=sleeps, clock=sleeps.clock)
    else:
        transport = Transport(config)
    auth = AuthApi(transport)
    if fake_tokens:
        clock = FakeClock()
        store = CredentialStore(credentials(), FakeAuthenticator(clock), clock=clock)
    else:
        cache = TokenCache.for_account(config, "tester", structlog.get_logger())
        store = CredentialStore(credentials(), auth, cache=cache)
    return SectigoClient(transport, store), auth, transport


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def stage_at_emulator(endpoint: Endpoint, outcome: str, world: World) -> Any:
    config = client_config(world.emulator, world.directory, max_attempts=2)
    client, auth, transport = wire(config)
    route = [endpoint.name]
    if outcome in ERROR_STATUSES:
        status = 503 if outcome == "5xx" else int(outcome)
        world.management.add_fault(kind="error", status=status, routes=route, count=10)
    elif outcome == "429":
        world.management.add_fault(kind="throttle", retry_after=0, routes=route, count=10)
    elif outcome == "no_answer":
        world.management.add_fault(kind="drop", routes=route, count=10)
    elif outcome == "held_back":
        transport.gate.close(30.0, "test")
    try:
        return invoke(endpoint, client, auth, world)
    finally:
        world.management.clear_faults()
        client.close()


def stage_elsewhere(endpoint: Endpoint, outcome: str, world: World) -> Any:
    if outcome == "refused":
        config = mocked_config(endpoint=f"http://127.0.0.1:{closed_port()}", max_attempts=2)
        client, auth, _ = wire(config, fake_tokens=True, sleeps=Sleeps())
        return invoke(endpoint, client, auth, world)
    client, auth, _ = wire(mocked_config(), fake_tokens=True, sleeps=Sleeps())
    with responses.RequestsMock() as mocked:
        anything = re.compile(re.escape(BASE) + ".*")
        if outcome == "connect_timeout":
            mocked.add(endpoint.method, anything, body=requests.ConnectTimeout("slow"))
        elif outcome == "3xx":
            mocked.add(endpoint.method, anything, status=307, headers={"Location": "/elsewhere"})
        else:
            mocked.add(endpoint.method, anything, body="<html/>", content_type="text/html")
        return invoke(endpoint, client, auth, world)


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_every_outcome_of_every_endpoint(world: World, endpoint: Endpoint, outcome: str) -> None:
    if outcome == "unreadable" and endpoint.name == "revoke":
        pytest.skip("revoke reads no body: any 2xx is done")
    stage = stage_at_emulator if outcome in EMULATED else stage_elsewhere
    error: SectigoError | None = None
    try:
        stage(endpoint, outcome, world)
    except SectigoError as exc:
        error = exc
    wanted = expected_error(endpoint, outcome)
    assert (type(error) if error is not None else None) is wanted, error
    assert classify(endpoint, error) is expected_answer(endpoint, outcome)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_errors_raised_before_sending_are_refused_by_the_client(endpoint: Endpoint) -> None:
    assert classify(endpoint, InvalidRequest("batch_name: must not be empty")) is Answer.REFUSED


def test_the_table_covers_every_outcome_and_renders_as_markdown() -> None:
    assert set(TABLE) == set(Outcome)
    text = render_markdown()
    assert len(text.splitlines()) == len(Outcome) + 2
    assert "| 404 | refused | refused | transient | refused |" in text
