"""Shared pieces for the `responses`-based tests: a fake sleep, a token source, builders."""

from __future__ import annotations

from typing import Any

from sectigo_svc.sectigo import Environment, SectigoClient, SectigoConfig
from sectigo_svc.sectigo.credential_store import CredentialStore
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.endpoints import AUTHORITIES
from sectigo_svc.sectigo.replies import json_reply
from sectigo_svc.sectigo.transport import Transport
from tests.sectigo.fakes import FakeAuthenticator, FakeClock, credentials

BASE = "http://127.0.0.1:8831"
JSON = "application/json;charset=UTF-8"


class Sleeps:
    """A fake ``sleep`` that records waits and moves a monotonic clock."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 1000.0

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class Tokens:
    """A token source handing out t1, t2, ... and recording invalidations."""

    def __init__(self) -> None:
        self.issued = 0
        self.invalidated: list[str] = []

    def access_token(self, deadline: Deadline | None = None) -> str:
        del deadline
        if not self.issued or f"t{self.issued}" in self.invalidated:
            self.issued += 1
        return f"t{self.issued}"

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)


def config(**overrides: Any) -> SectigoConfig:
    values: dict[str, Any] = {
        "endpoint": BASE,
        "environment": Environment.TESTING,
        "token_cache": False,
        "max_attempts": 4,
        "backoff_initial": 0.5,
        "backoff_max": 4.0,
        "max_retry_after": 10.0,
        # Retry tests fail many attempts in a row; the availability monitor is tested on its own.
        "down_after": 100,
    }
    values.update(overrides)
    return SectigoConfig(**values)


def transport(sleeps: Sleeps, **overrides: Any) -> Transport:
    return Transport(config(**overrides), sleep=sleeps, clock=sleeps.clock)


def client(sleeps: Sleeps, **overrides: Any) -> SectigoClient:
    clock = FakeClock()
    store = CredentialStore(credentials(), FakeAuthenticator(clock), clock=clock, monotonic=clock)
    return SectigoClient(transport(sleeps, **overrides), store)


def authorities(t: Transport, tokens: Tokens | None = None, **kwargs: Any) -> Any:
    return t.call(AUTHORITIES, json_reply(lambda d: d), tokens=tokens or Tokens(), **kwargs)
