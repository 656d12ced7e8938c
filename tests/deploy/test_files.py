"""Static checks of the Dockerfile and the single-replica Kubernetes manifests (no Docker here)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from sectigo_svc.config import settings_markdown
from sectigo_svc.sectigo.answers import render_page
from tests.deploy.dockerfile import Stage, parse
from tests.deploy.expectations import KUBE, REQUIRED, ROOT, SECRET_VALUE, SETTINGS


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return {stage.name: stage for stage in parse(ROOT / "Dockerfile")}


def test_the_dockerfile_is_multi_stage_on_a_pinned_slim_base(stages: dict[str, Stage]) -> None:
    assert list(stages) == ["build", "runtime", "emulator", "service"]
    base = stages["build"].base
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base), base
    assert stages["runtime"].base == base
    assert stages["emulator"].base == stages["service"].base == "runtime"


def test_wheels_are_built_first_and_the_final_stages_have_no_build_tools(
    stages: dict[str, Stage],
) -> None:
    assert any("pip wheel" in run for run in stages["build"].all("RUN"))
    for name in ("runtime", "emulator", "service"):
        runs = " ".join(stages[name].all("RUN"))
        assert not re.search(r"\b(gcc|build-essential|apt-get install)\b", runs), name
        assert "[dev]" not in runs
    assert any("--no-index" in run for run in stages["runtime"].all("RUN"))
    copies = stages["runtime"].all("COPY")
    assert copies == ["--from=build /wheels /wheels"], "runtime copies only the built wheels"


def test_the_client_distribution_is_built_before_the_server_that_needs_it(
    stages: dict[str, Stage],
) -> None:
    builds = [
        command.strip()
        for run in stages["build"].all("RUN")
        for command in run.split("&&")
        if "pip wheel" in command
    ]
    assert len(builds) == 2, builds
    client, server = builds
    assert client.endswith(" ./clients") and "--no-deps" in client
    assert server.endswith(" .") and "--find-links /wheels" in server
    installs = " ".join(stages["runtime"].all("RUN"))
    assert "--find-links=/wheels sectigo-svc" in installs


def test_both_images_run_as_a_non_root_user(stages: dict[str, Stage]) -> None:
    assert any("useradd" in run and "10001" in run for run in stages["runtime"].all("RUN"))
    for name in ("emulator", "service"):
        user = stages[name].all("USER")
        assert user, f"{name} sets no USER"
        assert user[-1].split(":")[0] not in ("root", "0")


def test_the_health_check_uses_our_command_on_the_probe_port(stages: dict[str, Stage]) -> None:
    service = stages["service"]
    command = service.exec_form("HEALTHCHECK")
    assert command[:2] == ["sectigo-svc", "healthcheck"]
    probe = command[command.index("--target") + 1]
    env = service.env()
    assert env["SECTIGO_SVC_HEALTH_LISTEN"].rsplit(":", 1)[1] == probe.rsplit(":", 1)[1]
    assert stages["emulator"].all("HEALTHCHECK"), "the emulator image has a health check"


def test_the_service_image_is_configured_by_environment_and_files_only(
    stages: dict[str, Stage],
) -> None:
    service = stages["service"]
    env = service.env()
    unknown = {k for k in env if k.startswith("SECTIGO_") and k not in SETTINGS}
    assert not unknown, f"unknown settings in the image: {unknown}"
    assert set(env) >= REQUIRED
    for name in REQUIRED:
        assert env[name].startswith("/etc/sectigo-svc/"), "mounted files, not baked-in values"
    text = (ROOT / "Dockerfile").read_text()
    assert not SECRET_VALUE.search(text), "a secret value is baked into the image"
    assert service.exec_form("CMD") == ["serve"]
    assert stages["runtime"].exec_form("ENTRYPOINT") == ["sectigo-svc"]


def test_the_build_context_is_limited() -> None:
    text = (ROOT / ".dockerignore").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*", "ignore everything, then allow what the build copies"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "sectigo_svc", "clients"}


def _manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in KUBE.glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found


def test_the_deployment_probes_the_grpc_health_port() -> None:
    deployment = _manifests()["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["grpc"]["port"] == ports["grpc-health"]
    assert container["livenessProbe"]["grpc"]["port"] == ports["grpc-health"]
    assert container["livenessProbe"]["grpc"]["service"] == "liveness"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env.get("SECTIGO_SVC_HEALTH_LISTEN", "0.0.0.0:9444").endswith(f":{ports['grpc-health']}")
    assert ports["grpc"] == 9443


def test_the_deployment_is_locked_down_with_resources_set() -> None:
    spec = _manifests()["Deployment"]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    container = spec["containers"][0]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(container["resources"]) == {"requests", "limits"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "persistentVolumeClaim" in volumes[mounts["/var/lib/sectigo-svc"]], "state on a volume"


def test_the_deployment_gets_every_setting_from_secrets_and_the_config_map() -> None:
    manifests = _manifests()
    spec = manifests["Deployment"]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert not {k for k in env if k.startswith("SECTIGO_SVC_")} - SETTINGS
    assert set(env) >= REQUIRED
    assert "secretKeyRef" in env["SECTIGO_SVC_SECTIGO_USERNAME"]["valueFrom"]
    assert not any(SECRET_VALUE.search(f"{k}={e.get('value', '')}") for k, e in env.items())
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    secrets = {s["name"] for s in kustomization["secretGenerator"]}
    configs = {c["name"] for c in kustomization["configMapGenerator"]}
    for name in REQUIRED:
        path = env[name]["value"]
        mount = next(m for m in mounts if path.startswith(m + "/"))
        volume = volumes[mounts[mount]]
        source = volume.get("secret", {}).get("secretName") or volume["configMap"]["name"]
        assert source in secrets | configs, f"{name} comes from {source}, which nothing makes"
    assert "policy.toml" in kustomization["configMapGenerator"][0]["files"]
    assert (KUBE / "policy.toml").is_file()


def test_the_service_and_disruption_budget_select_the_pods() -> None:
    manifests = _manifests()
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        spec = manifests[kind]["spec"]
        selector = spec.get("selector", {})
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind
    ports = {p["name"]: p["targetPort"] for p in manifests["Service"]["spec"]["ports"]}
    assert ports["grpc"] == "grpc"


def test_the_generated_documentation_matches_the_code() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == settings_markdown(), "run make docs"
    assert (ROOT / "docs" / "sectigo-answers.md").read_text() == render_page(), "run make docs"
    for variable in SETTINGS:
        assert f"`{variable}`" in settings_markdown()


def test_the_operations_guide_names_only_real_settings() -> None:
    text = (ROOT / "docs" / "operations.md").read_text() + (ROOT / "README.md").read_text()
    named = set(re.findall(r"SECTIGO_SVC_[A-Z0-9_]*[A-Z0-9]", text))
    assert named, "the guide names settings"
    assert not named - SETTINGS, f"unknown settings in the docs: {sorted(named - SETTINGS)}"
