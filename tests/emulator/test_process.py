"""The emulator as a process: start-up line, SIGTERM, --state-dir persistence, environment."""

from __future__ import annotations

import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization

from tests.emulator.helpers import PASSWORD, TIMEOUT, Api, Management, fetch_chain

REPO = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "sectigo-svc"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


def emulator_command() -> list[str]:
    """The installed console script when present, else its entry point through the interpreter.

    (``python -m sectigo_svc.cli`` is not used: the module has no ``__main__`` guard.)
    """
    if CONSOLE_SCRIPT.exists() and os.access(CONSOLE_SCRIPT, os.X_OK):
        return [str(CONSOLE_SCRIPT), "emulator"]
    return [sys.executable, "-c", "from sectigo_svc.cli import main; main()", "emulator"]


def read_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The first stdout line, or fail after ``timeout`` seconds."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    end = time.monotonic() + timeout
    try:
        while b"\n" not in buffer:
            remaining = end - time.monotonic()
            assert remaining > 0, f"no start-up line within {timeout}s: {buffer!r}"
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise AssertionError(f"emulator exited before its start-up line: {stderr}")
            buffer += chunk
    finally:
        selector.close()
    return buffer.split(b"\n", 1)[0]


@contextmanager
def running_emulator(
    *args: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    """Start the emulator process on free ports; yield it with its parsed start-up line."""
    command = [
        *emulator_command(),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--management-port",
        "0",
        *args,
    ]
    full_env = {**os.environ, **(env or {})}
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = read_line(process, START_TIMEOUT)
        announcement = json.loads(line)
        assert isinstance(announcement, dict), line
        yield process, announcement
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=STOP_TIMEOUT)


def test_console_script_or_module_is_runnable() -> None:
    command = emulator_command()
    result = subprocess.run(
        [*command, "--help"], cwd=REPO, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    help_text = result.stdout.decode()
    for option in ("--port", "--management-port", "--state-dir", "--issue-delay", "--chaos"):
        assert option in help_text, option


def test_start_serve_and_sigterm() -> None:
    with running_emulator() as (process, line):
        assert line["event"] == "emulator listening"
        assert line["username"] == "tester"
        api_url, management_url = line["api"], line["management"]
        assert api_url.startswith("http://127.0.0.1:")
        assert management_url.startswith("http://127.0.0.1:")
        assert api_url != management_url
        assert not api_url.endswith(":0")
        status = requests.get(f"{api_url}/status", timeout=TIMEOUT)
        assert status.status_code == 200
        assert status.json()["status"] == "ok"
        api = Api(api_url)
        try:
            assert api.login().status_code == 200
            assert api.get("/api/v1/devices").status_code == 200
        finally:
            api.close()
        assert requests.get(f"{management_url}/stats", timeout=TIMEOUT).status_code == 200
        start = time.monotonic()
        assert stop(process) == 0
        assert time.monotonic() - start < STOP_TIMEOUT


def test_command_line_options_are_applied() -> None:
    args = (
        *("--username", "alice", "--balance", "42=3", "--issue-delay", "0.2"),
        *("--visibility-lag", "2.5", "--clock-offset", "-900", "--ignore-list-filters"),
    )
    with running_emulator(*args, env={"SECTIGO_EMULATOR_PASSWORD": "alicepassword"}) as (
        process,
        line,
    ):
        assert line["username"] == "alice"
        assert "alicepassword" not in json.dumps(line)
        api = Api(line["api"])
        try:
            assert api.login("tester", PASSWORD).status_code == 401
            assert api.login("alice", "alicepassword").status_code == 200
            assert api.balance(42) == 3
            settings = Management(line["management"]).faults()["settings"]
            assert settings["visibility_lag"] == 2.5
            assert settings["clock_offset"] == -900
            assert settings["ignore_list_filters"] is True
        finally:
            api.close()
        assert stop(process) == 0


def _root_pem(api_url: str) -> bytes:
    return fetch_chain(api_url)[1].public_bytes(serialization.Encoding.PEM)


def _key_files(state_dir: Path) -> list[Path]:
    found = []
    for path in sorted(state_dir.rglob("*")):
        if not path.is_file():
            continue
        if "key" in path.name.lower() or b"PRIVATE KEY" in path.read_bytes():
            found.append(path)
    return found


def test_state_dir_keeps_the_ca(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with running_emulator("--state-dir", str(state_dir)) as (process, line):
        first_issuing, first_root = fetch_chain(line["api"])
        assert stop(process) == 0
    keys = _key_files(state_dir)
    assert keys, sorted(p.name for p in state_dir.rglob("*"))
    for key_file in keys:
        mode = stat.S_IMODE(key_file.stat().st_mode)
        assert mode == 0o600, (key_file.name, oct(mode))
    # the second run finds the directory through the environment
    env = {"SECTIGO_EMULATOR_STATE_DIR": str(state_dir)}
    with running_emulator(env=env) as (process, line):
        issuing, root = fetch_chain(line["api"])
        assert root == first_root
        assert issuing == first_issuing
        assert stop(process) == 0


def test_without_state_dir_the_ca_is_fresh() -> None:
    with running_emulator() as (process, line):
        first_root = _root_pem(line["api"])
        assert stop(process) == 0
    with running_emulator() as (process, line):
        assert _root_pem(line["api"]) != first_root
        assert stop(process) == 0
