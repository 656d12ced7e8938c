"""The packaging metadata of both distributions (the server at the root, the client in clients/)
builds without deprecation warnings (offline, with the setuptools of this environment) and declares
its licence as an SPDX expression; the server depends on the client of the same version."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients"


def _metadata(project: Path, tmp_path: Path) -> list[str]:
    """The METADATA lines of a wheel built from ``project``'s pyproject.toml and README.md alone
    (no packages, so the build leaves nothing in the working tree)."""
    source = tmp_path / "src"
    (source / "clients").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(project / name, source / name)

    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(tmp_path / "out"),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert "deprecat" not in output.lower(), output
    (wheel,) = (tmp_path / "out").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode().splitlines()


@pytest.mark.parametrize("project", [ROOT, CLIENT], ids=["server", "client"])
def test_the_wheel_metadata_builds_without_warnings(project: Path, tmp_path: Path) -> None:
    metadata = _metadata(project, tmp_path)

    assert "License-Expression: Apache-2.0" in metadata
    assert not any(line.startswith("License:") for line in metadata)


def test_the_server_depends_on_the_client_of_its_own_version() -> None:
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    client = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]

    assert f"{client['name']}=={client['version']}" in server["dependencies"]
    assert "sectigo-ca" not in server["scripts"]
    assert client["scripts"] == {"sectigo-ca": "sectigo_client.command:main"}
