"""The environment guard refuses endpoints outside an environment, when the client is built."""

from __future__ import annotations

import pytest

from sectigo_svc.sectigo import Environment, SectigoClient, SectigoConfig
from sectigo_svc.sectigo.errors import ConfigurationError, EnvironmentGuardError
from sectigo_svc.sectigo.guard import check_environment
from tests.sectigo.fakes import credentials

P, S, T = Environment.PRODUCTION, Environment.STAGING, Environment.TESTING


@pytest.mark.parametrize(
    ("endpoint", "environment"),
    [
        ("https://iot.sectigo.com", P),
        ("https://iot.sectigo.com/", P),
        ("https://IOT.Sectigo.com:443", P),
        ("http://cathy:8831", S),
        ("https://cathy.test-net.io", S),
        ("http://10.0.0.5:8080", S),
        ("http://localhost:8831", T),
        ("http://127.0.0.1:1", T),
        ("http://127.8.9.10", T),
        ("http://[::1]:8831", T),
        ("https://localhost", T),
    ],
)
def test_allowed_endpoints(endpoint: str, environment: Environment) -> None:
    check_environment(endpoint, environment)


@pytest.mark.parametrize(
    ("endpoint", "environment", "reason"),
    [
        ("http://iot.sectigo.com", P, "production talks only to https://iot.sectigo.com"),
        ("https://iot.sectigo.com:8443", P, "production"),
        ("https://iot.sectigo.com.evil.example", P, "production"),
        ("https://cathy.test-net.io", P, "production"),
        ("https://iot.sectigo.com", S, "staging must never reach a sectigo.com host"),
        ("https://staging.sectigo.com", S, "staging must never"),
        ("http://IOT.SECTIGO.COM.", S, "staging must never"),
        ("http://notsectigo.com", S, "staging must never"),
        ("http://cathy:8831", T, "testing talks only to loopback"),
        ("http://10.0.0.1", T, "testing talks only to loopback"),
        ("http://localhost.example.com", T, "testing talks only to loopback"),
        ("http://[::2]", T, "testing talks only to loopback"),
        ("http://[::ffff:127.0.0.1]", T, "testing talks only to loopback"),
        ("ftp://localhost", T, "scheme must be http or https"),
        ("localhost:8831", T, "scheme must be http or https"),
        ("http://", T, "has no host"),
        ("http://user:pw@localhost", T, "must not carry user info"),
        ("http://localhost/?x=1", T, "must not carry a query"),
        ("http://localhost:99999", T, "not a valid URL"),
    ],
)
def test_refused_endpoints(endpoint: str, environment: Environment, reason: str) -> None:
    with pytest.raises(EnvironmentGuardError, match=reason):
        check_environment(endpoint, environment)


def test_the_guard_runs_when_the_client_is_built(tmp_path: object) -> None:
    config = SectigoConfig(endpoint="http://127.0.0.1:9", environment=P, token_cache=False)
    with pytest.raises(EnvironmentGuardError, match="production"):
        SectigoClient.build(config, credentials())
    config = SectigoConfig(endpoint="https://iot.sectigo.com", environment=T, token_cache=False)
    with pytest.raises(EnvironmentGuardError, match="loopback"):
        SectigoClient.build(config, credentials())


def test_user_info_never_echoed_in_the_error() -> None:
    with pytest.raises(EnvironmentGuardError) as caught:
        check_environment("http://tester:supersecretsquirrel@localhost", T)
    assert "supersecretsquirrel" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"), [(" Production ", P), ("STAGING", S), ("testing", T)]
)
def test_environment_names(text: str, expected: Environment) -> None:
    assert Environment.parse(text) is expected


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not one of production, staging, testing"):
        Environment.parse("docker")
