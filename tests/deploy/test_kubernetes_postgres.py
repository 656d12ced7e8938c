"""Static checks of deploy/kubernetes/postgres, several replicas on one PostgreSQL database: read
with PyYAML, and rendered with kustomize when the machine has it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.expectations import (
    KUBE,
    REPLICA_REQUIRED,
    REQUIRED,
    SECRET_VALUE,
    SETTINGS,
)

POSTGRES = KUBE / "postgres"
# The base's container fields that the PostgreSQL variant must keep as they are.
SAME_CONTAINER = (
    "image",
    "args",
    "ports",
    "readinessProbe",
    "livenessProbe",
    "resources",
    "securityContext",
)


def _manifests(directory: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in directory.glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found


def _pod(directory: Path) -> dict[str, Any]:
    spec: dict[str, Any] = _manifests(directory)["Deployment"]["spec"]["template"]["spec"]
    return spec


def _kustomization(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return data


def _generated(directory: Path) -> dict[str, set[str]]:
    """Generated Secret and ConfigMap names -> the keys each holds."""
    kustomization = _kustomization(directory)
    made = {}
    for generator in kustomization["secretGenerator"] + kustomization["configMapGenerator"]:
        made[generator["name"]] = {entry.split("=")[0] for entry in generator["files"]}
    return made


def _source(pod: dict[str, Any], container: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume that a file path in ``container`` lives on."""
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    mount = next(m for m in mounts if path.startswith(m + "/"))
    volumes = {v["name"]: v for v in pod["volumes"]}
    volume: dict[str, Any] = volumes[mounts[mount]]
    return volume


def test_at_least_two_replicas_rolling_with_no_pod_down_and_spread_over_nodes() -> None:
    spec = _manifests(POSTGRES)["Deployment"]["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spread = spec["template"]["spec"]["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname"


def test_the_disruption_budget_keeps_one_pod_up_and_selects_the_pods() -> None:
    manifests = _manifests(POSTGRES)
    budget = manifests["PodDisruptionBudget"]["spec"]
    assert budget["minAvailable"] == 1
    assert "maxUnavailable" not in budget
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()


def test_no_persistent_volume_claim_or_read_write_once_volume() -> None:
    assert "PersistentVolumeClaim" not in _manifests(POSTGRES)
    kustomization = _kustomization(POSTGRES)
    assert not any(Path(r).name == "pvc.yaml" for r in kustomization["resources"])
    for volume in _pod(POSTGRES)["volumes"]:
        assert "persistentVolumeClaim" not in volume, volume["name"]
    for path in POSTGRES.glob("*.yaml"):
        assert "ReadWriteOnce" not in path.read_text(), path.name


def test_probes_grace_period_and_lockdown_are_the_single_replica_deployments() -> None:
    base, pod = _pod(KUBE), _pod(POSTGRES)
    assert pod["terminationGracePeriodSeconds"] == base["terminationGracePeriodSeconds"]
    assert pod["securityContext"] == base["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    container, base_container = pod["containers"][0], base["containers"][0]
    for field in SAME_CONTAINER:
        assert container[field] == base_container[field], field
    env = {e["name"]: e for e in container["env"]}
    for entry in base_container["env"]:
        if entry["name"] != "SECTIGO_SVC_STATE_DIR":
            assert env[entry["name"]] == entry, entry["name"]
    for name in ("service.yaml", "policy.toml"):
        assert (POSTGRES / name).read_text() == (KUBE / name).read_text(), name


def test_the_database_url_and_password_come_from_a_secret_the_password_as_a_file() -> None:
    pod = _pod(POSTGRES)
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    generated = _generated(POSTGRES)
    assert set(env) >= REQUIRED | REPLICA_REQUIRED
    assert not {k for k in env if k.startswith("SECTIGO_SVC_")} - SETTINGS
    assert not any(SECRET_VALUE.search(f"{k}={e.get('value', '')}") for k, e in env.items())
    url = env["SECTIGO_SVC_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert url["key"] in generated[url["name"]]
    password = env["SECTIGO_SVC_DATABASE_PASSWORD_FILE"]["value"]
    secret = _source(pod, container, password)["secret"]
    assert secret["secretName"] in generated
    item = next(i for i in secret["items"] if password.endswith("/" + i["path"]))
    assert item["key"] == "password" and "password" in generated[secret["secretName"]]
    for name in REQUIRED:
        path = env[name]["value"]
        volume = _source(pod, container, path)
        source = volume.get("secret", {}).get("secretName") or volume["configMap"]["name"]
        assert source in generated, f"{name} comes from {source}, which nothing makes"


def test_the_shared_data_key_comes_from_a_secret_copied_0600_before_the_service_starts() -> None:
    """Under fsGroup a Secret volume's files are group-readable, which the service refuses for a
    data key; an init container copies it 0600 into a memory volume."""
    pod = _pod(POSTGRES)
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    key_file = env["SECTIGO_SVC_DATA_KEY_FILE"]["value"]
    copy = _source(pod, container, key_file)
    assert copy["emptyDir"]["medium"] == "Memory"
    init = next(c for c in pod["initContainers"] if c["name"] == "data-key")
    command = init["command"]
    assert command[:3] == ["install", "-m", "0600"]
    source, target = command[3:]
    assert target == key_file
    assert _source(pod, init, target)["name"] == copy["name"]
    secret = _source(pod, init, source)["secret"]
    assert Path(source).name in _generated(POSTGRES)[secret["secretName"]]
    assert init["image"] == container["image"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert set(init["resources"]) == {"requests", "limits"}


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.skipif(_kustomize() is None, reason="neither kustomize nor kubectl is installed")
def test_both_variants_render_and_every_reference_resolves(tmp_path: Path) -> None:
    tree = tmp_path / "kubernetes"
    shutil.copytree(KUBE, tree)
    for directory in (tree, tree / "postgres"):
        (directory / "secrets").mkdir(exist_ok=True)
        for generator in _kustomization(directory)["secretGenerator"]:
            for entry in generator["files"]:
                (directory / entry.split("=")[1]).write_text("placeholder\n")
    command = _kustomize()
    assert command
    rendered = {}
    for variant, directory in (("sqlite", tree), ("postgres", tree / "postgres")):
        done = subprocess.run(
            [*command, str(directory)], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        rendered[variant] = list(yaml.safe_load_all(done.stdout))
    kinds = {d["kind"] for d in rendered["postgres"]}
    assert "PersistentVolumeClaim" not in kinds
    assert "PersistentVolumeClaim" in {d["kind"] for d in rendered["sqlite"]}
    made = {
        d["metadata"]["name"] for d in rendered["postgres"] if d["kind"] in ("Secret", "ConfigMap")
    }
    deployment = next(d for d in rendered["postgres"] if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        name = volume.get("secret", {}).get("secretName") or volume.get("configMap", {}).get("name")
        assert name is None or name in made, f"{volume['name']} names {name}, which is not made"
    for entry in pod["containers"][0]["env"]:
        reference = entry.get("valueFrom", {}).get("secretKeyRef")
        assert reference is None or reference["name"] in made, entry["name"]
