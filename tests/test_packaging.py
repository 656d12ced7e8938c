"""The project's packaging metadata builds without deprecation warnings (offline, with the
setuptools of this environment) and declares its licence as an SPDX expression."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_metadata_builds_without_warnings(tmp_path: Path) -> None:
    # Only the metadata matters: a copy of the project file and its readme, no packages, so the
    # build leaves nothing in the working tree.
    source = tmp_path / "src"
    (source / "clients").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)

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
        metadata = archive.read(name).decode().splitlines()
    assert "License-Expression: Apache-2.0" in metadata
    assert not any(line.startswith("License:") for line in metadata)
