"""Static checks of the compose files (no Docker engine here): compose.yaml runs two replicas on
one PostgreSQL database, compose.sqlite.yaml the single replica on the embedded store."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sectigo_svc.config import ServiceConfig
from sectigo_svc.devcerts import DevCerts
from sectigo_svc.sealing import load_or_create_key
from sectigo_svc.sectigo.config import Environment
from sectigo_svc.sectigo.guard import check_environment
from tests.deploy.dockerfile import parse
from tests.deploy.expectations import (
    REPLICA_REQUIRED,
    REQUIRED,
    ROOT,
    SECRET_VALUE,
    SETTINGS,
    url_parts,
)

REPLICAS = ("replica-1", "replica-2")
SECRETS_DIR = "/run/secrets/"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return data


@pytest.fixture(scope="module")
def fleet() -> dict[str, Any]:
    return _load("compose.yaml")


@pytest.fixture(scope="module")
def single() -> dict[str, Any]:
    return _load("compose.sqlite.yaml")


def _image_port(name: str) -> str:
    """The container port the service image listens on for ``SECTIGO_SVC_<name>``."""
    service = next(stage for stage in parse(ROOT / "Dockerfile") if stage.name == "service")
    return service.env()[f"SECTIGO_SVC_{name}"].rsplit(":", 1)[1]


def _secret_name(path: str) -> str:
    assert path.startswith(SECRETS_DIR), f"{path} is not a compose secret"
    return path.removeprefix(SECRETS_DIR)


def _published(spec: dict[str, Any]) -> dict[str, str]:
    """container port -> host address:port of one service."""
    found = {}
    for port in spec.get("ports", []):
        address, _, container = port.rpartition(":")
        found[container] = address
    return found


def test_every_port_is_on_loopback_and_no_host_port_is_published_twice(
    fleet: dict[str, Any], single: dict[str, Any]
) -> None:
    for compose in (fleet, single):
        seen: set[str] = set()
        for name, spec in compose["services"].items():
            for container, address in _published(spec).items():
                assert address.startswith("127.0.0.1:"), f"{name}: {container} beyond loopback"
                assert address not in seen, f"{name} publishes {address} again"
                seen.add(address)


def test_the_fleet_is_postgres_the_emulator_and_two_replicas_all_with_health_checks(
    fleet: dict[str, Any],
) -> None:
    services = fleet["services"]
    assert set(services) == {"postgres", "emulator", *REPLICAS}
    for name, spec in services.items():
        assert spec["healthcheck"]["test"][0] == "CMD", name
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    health_port = _image_port("HEALTH_LISTEN")
    for name in REPLICAS:
        spec = services[name]
        assert spec["build"]["target"] == "service"
        test = spec["healthcheck"]["test"]
        assert test[1:3] == ["sectigo-svc", "healthcheck"]
        assert test[test.index("--target") + 1] == f"127.0.0.1:{health_port}"
        for dependency in ("postgres", "emulator"):
            assert spec["depends_on"][dependency]["condition"] == "service_healthy", name


def test_each_replica_publishes_grpc_health_and_metrics_on_its_own_host_ports(
    fleet: dict[str, Any],
) -> None:
    wanted = {_image_port(n) for n in ("LISTEN", "HEALTH_LISTEN", "METRICS_LISTEN")}
    for name in REPLICAS:
        assert set(_published(fleet["services"][name])) == wanted, name
    assert "ports" not in fleet["services"]["postgres"], "the database stays inside the network"


def test_postgres_is_a_pinned_15_with_its_data_on_a_volume_and_its_password_from_a_secret(
    fleet: dict[str, Any],
) -> None:
    postgres = fleet["services"]["postgres"]
    assert re.fullmatch(r"postgres:15\.\d+(-\w+)?", postgres["image"]), postgres["image"]
    volume, _, mount = postgres["volumes"][0].partition(":")
    assert mount == "/var/lib/postgresql/data"
    assert volume in fleet["volumes"], "a named volume, not a bind mount or the container layer"
    env = postgres["environment"]
    assert "POSTGRES_PASSWORD" not in env
    secret = _secret_name(env["POSTGRES_PASSWORD_FILE"])
    assert secret in postgres["secrets"]
    assert (ROOT / fleet["secrets"][secret]["file"]).read_text().strip()


def test_both_replicas_share_one_database_one_password_and_one_data_key(
    fleet: dict[str, Any],
) -> None:
    services = fleet["services"]
    first, second = (dict(services[name]["environment"]) for name in REPLICAS)
    assert first.pop("SECTIGO_SVC_REPLICA_NAME") != second.pop("SECTIGO_SVC_REPLICA_NAME")
    assert first == second, "the replicas differ only by name"
    postgres = services["postgres"]["environment"]
    url = url_parts(first["SECTIGO_SVC_DATABASE_URL"])
    assert "password" not in url
    assert url["host"] == "postgres" and url["port"] == "5432"
    assert url["user"] == postgres["POSTGRES_USER"]
    assert url["dbname"] == postgres["POSTGRES_DB"]
    assert first["SECTIGO_SVC_DATABASE_PASSWORD_FILE"] == postgres["POSTGRES_PASSWORD_FILE"]
    key = _secret_name(first["SECTIGO_SVC_DATA_KEY_FILE"])
    for name in REPLICAS:
        spec = services[name]
        for path in ("SECTIGO_SVC_DATABASE_PASSWORD_FILE", "SECTIGO_SVC_DATA_KEY_FILE"):
            assert _secret_name(first[path]) in spec["secrets"], f"{name} lacks {path}"
        mounts = [volume.split(":")[1] for volume in spec.get("volumes", [])]
        assert "/var/lib/sectigo-svc" not in mounts, "no state volume: the state is in PostgreSQL"
    assert fleet["secrets"][key]["file"] == "./.state/compose/data.key"


def test_the_replicas_environment_is_a_valid_configuration(
    fleet: dict[str, Any], pki: DevCerts, tmp_path: Path
) -> None:
    """The replicas' settings, their mounted files mapped onto real ones, load as one config."""
    env: dict[str, str] = fleet["services"]["replica-1"]["environment"]
    assert not {k for k in env if k.startswith("SECTIGO_SVC_")} - SETTINGS
    assert set(env) >= REQUIRED | REPLICA_REQUIRED
    mounts = {"/etc/sectigo-svc/pki/": pki.directory}
    for name, secret in fleet["secrets"].items():
        copy = tmp_path / name
        if name == "data_key":  # made by `make compose-certs`, absent from a fresh checkout
            load_or_create_key(copy, create=True)
        else:
            shutil.copyfile(ROOT / secret["file"], copy)
        mounts[SECRETS_DIR + name] = copy
    mapped = {}
    for key, value in env.items():
        prefix = next((p for p in mounts if value.startswith(p)), None)
        if prefix is None:
            mapped[key] = value
        elif prefix.endswith("/"):
            mapped[key] = str(mounts[prefix] / value.removeprefix(prefix))
        else:
            mapped[key] = str(mounts[prefix])
    config = ServiceConfig.load(environ=mapped)
    assert config.database_url and config.data_key_file and config.database_password_file
    check_environment(config.sectigo_endpoint, Environment.parse(config.sectigo_environment))


def test_no_secret_value_is_written_into_either_compose_file() -> None:
    for name in ("compose.yaml", "compose.sqlite.yaml"):
        text = (ROOT / name).read_text()
        assert not SECRET_VALUE.search(text), name
        assert not re.search(r"postgres(ql)?://[^/@\s]*:[^/@\s]*@", text), f"{name}: a URL password"


def test_compose_certs_names_every_replica_and_makes_the_shared_data_key() -> None:
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^compose-certs:(.*)\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert rule, "no compose-certs target"
    prerequisites, recipe = rule.group(1), rule.group(2).replace("\\\n", " ")
    hosts = set(re.findall(r"--host (\S+)", recipe))
    assert hosts >= set(REPLICAS)
    assert "$(STATE)/compose/data.key" in prerequisites.split()


@pytest.mark.skipif(not shutil.which("openssl"), reason="the Makefile makes the key with openssl")
def test_the_data_key_target_makes_a_0600_key_once_and_never_overwrites_it(tmp_path: Path) -> None:
    key = tmp_path / "compose" / "data.key"

    def make() -> None:
        subprocess.run(
            ["make", "-s", "-C", str(ROOT), f"STATE={tmp_path}", str(key)],
            check=True,
            capture_output=True,
            timeout=30,
        )

    make()
    assert key.stat().st_mode & 0o777 == 0o600
    first = load_or_create_key(key, create=False)
    make()
    assert load_or_create_key(key, create=False) == first


def test_the_single_replica_variant_runs_emulator_and_service_on_the_embedded_store(
    single: dict[str, Any],
) -> None:
    services = single["services"]
    assert set(services) == {"emulator", "service"}
    assert services["service"]["healthcheck"]["test"][1:3] == ["sectigo-svc", "healthcheck"]
    assert services["service"]["build"]["target"] == "service"
    assert services["emulator"]["build"]["target"] == "emulator"
    assert services["service"]["depends_on"]["emulator"]["condition"] == "service_healthy"
    env = services["service"]["environment"]
    assert not set(env) & REPLICA_REQUIRED
    assert "./.state/compose/service:/var/lib/sectigo-svc" in services["service"]["volumes"]
    assert "compose -f compose.sqlite.yaml up" in (ROOT / "compose.sqlite.yaml").read_text()
    assert "compose -f compose.sqlite.yaml up" in (ROOT / "compose.yaml").read_text()


def test_the_single_replica_gets_every_setting_it_needs(single: dict[str, Any]) -> None:
    service = single["services"]["service"]
    env: dict[str, str] = service["environment"]
    assert not {k for k in env if k.startswith("SECTIGO_SVC_")} - SETTINGS
    assert set(env) >= REQUIRED
    check_environment(
        env["SECTIGO_SVC_SECTIGO_ENDPOINT"],
        Environment.parse(env["SECTIGO_SVC_SECTIGO_ENVIRONMENT"]),
    )
    mounted = {volume.split(":")[1] for volume in service["volumes"]}
    for name in REQUIRED - {"SECTIGO_SVC_SECTIGO_PASSWORD_FILE"}:
        assert any(env[name].startswith(m + "/") for m in mounted), f"{name} is not mounted"
    assert env["SECTIGO_SVC_SECTIGO_PASSWORD_FILE"] == "/run/secrets/sectigo_password"
    secret_file = ROOT / single["secrets"]["sectigo_password"]["file"]
    assert secret_file.read_text().strip() == "supersecretsquirrel", "only the emulator's account"
