"""Fixtures for the ``sectigo`` command: an emulator account, a private cache, and runners."""

from __future__ import annotations

from pathlib import Path

import pytest

from sectigo_svc.emulator import Emulator
from tests.admin.helpers import PASSWORD, USERNAME, Cli, InProcess, Management, Subprocess


@pytest.fixture
def account_env(emulator: Emulator, tmp_path: Path) -> dict[str, str | None]:
    """What an operator exports to use the emulator; the environment is left to the default."""
    cache = tmp_path / "cache"
    return {
        "SECTIGO_ENDPOINT": emulator.api_url,
        "SECTIGO_USERNAME": USERNAME,
        "SECTIGO_PASSWORD": PASSWORD,
        "SECTIGO_CACHE_DIR": str(cache / "tokens"),
        "XDG_CACHE_HOME": str(cache),
    }


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory commands run in (relative paths such as ``certs/`` land here)."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def run(account_env: dict[str, str | None], workdir: Path) -> Cli:
    """The command in process, for most tests."""
    return InProcess(account_env)


@pytest.fixture(params=["in-process", "subprocess"])
def cli(request: pytest.FixtureRequest, account_env: dict[str, str | None], workdir: Path) -> Cli:
    """The command both ways, for the walk-through and the error paths."""
    if request.param == "subprocess":
        return Subprocess(account_env, workdir)
    return InProcess(account_env)


@pytest.fixture
def management(emulator: Emulator) -> Management:
    return Management(emulator.management_url)
