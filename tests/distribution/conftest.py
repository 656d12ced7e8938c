"""Fixtures of the distribution tests: the client distribution built once per session (sdist, then
the wheel from that sdist, as ``make dist`` does), and fresh virtual environments holding that
wheel alone, without and with its ``cli`` extra. The service fixtures are shared so that the
environments' programs can reach a real service in front of a real emulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.service import conftest as service_fixtures

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
# Building, and installing grpcio, protobuf and cryptography (from pip's cache or the index).
INSTALL_TIMEOUT = 600

pki = service_fixtures.pki
service_factory = service_fixtures.service_factory
service = service_fixtures.service


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Environment:
    """A virtual environment; ``run`` runs one of its programs with the given environment."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def program(self, name: str) -> Path:
        return self.root / "bin" / name

    def run(
        self, *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        # Nothing of this checkout may leak in: no PYTHONPATH, and the child starts elsewhere.
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        return subprocess.run(
            [str(a) for a in args],
            capture_output=True,
            text=True,
            env={**clean, **(env or {})},
            cwd=self.root,
            timeout=timeout,
            check=False,
        )


def _checked(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The client distribution's sdist and wheel, built from a copy of clients/ (which also holds
    sectigo_admin, a server package, so that leaving it out is tested too)."""
    work = tmp_path_factory.mktemp("client-dist")
    source = work / "clients"
    shutil.copytree(
        CLIENTS,
        source,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"),
    )
    out = work / "dist"
    _checked(
        subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    )
    (wheel,) = out.glob("sectigo_ca_client-*.whl")
    (sdist,) = out.glob("sectigo_ca_client-*.tar.gz")
    return Built(wheel, sdist)


def _environment(root: Path, requirement: str) -> Environment:
    environment = Environment(root)
    _checked(
        subprocess.run(
            [sys.executable, "-m", "venv", str(root)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    )
    _checked(
        environment.run(
            environment.python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
            timeout=INSTALL_TIMEOUT,
        )
    )
    return environment


@pytest.fixture(scope="session")
def library_env(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Environment:
    """A fresh environment with the client wheel alone, no extra."""
    return _environment(tmp_path_factory.mktemp("venv-library") / "venv", str(built.wheel))


@pytest.fixture(scope="session")
def cli_env(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Environment:
    """A fresh environment with the client wheel and its ``cli`` extra."""
    return _environment(tmp_path_factory.mktemp("venv-cli") / "venv", f"{built.wheel}[cli]")
