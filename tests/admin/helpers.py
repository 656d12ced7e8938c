"""Running ``sectigo`` two ways (in process through CliRunner, and as the installed script) and
the small checks every test of it repeats.

Both runners see the same isolated environment: the emulator's endpoint and account, a private
token cache, and none of the developer's own ``SECTIGO_*`` variables.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sectigo_admin.cli import main

USERNAME = "tester"
PASSWORD = "supersecretsquirrel"  # the emulator's documented default test account
P12_PASSWORD = "secrtpasswrd"  # the seed document's example
OPENSSL = "/usr/bin/openssl"
SCRIPT = Path(sys.executable).with_name("sectigo")


@dataclass(frozen=True)
class Outcome:
    """What one run of the command left behind."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def ok(self) -> Outcome:
        assert self.exit_code == 0, f"exit {self.exit_code}: {self.stderr}"
        return self

    def failed(self, exit_code: int) -> str:
        """Assert a failure reported as exactly one error line; return that line."""
        assert self.exit_code == exit_code, (self.exit_code, self.stdout, self.stderr)
        assert self.stdout == ""
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("sectigo: error: "), lines[0]
        assert "Traceback" not in self.stderr
        return lines[0]


class Cli(Protocol):
    """Runs ``sectigo ARGS`` with extra environment (None removes a variable)."""

    def __call__(self, *args: str, env: Mapping[str, str | None] | None = None) -> Outcome: ...


def isolated_env(values: Mapping[str, str | None]) -> dict[str, str | None]:
    """``values`` plus the removal of every other SECTIGO_* variable of the developer's shell."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SECTIGO_")}
    return cleared | dict(values)


class InProcess:
    """Through click's CliRunner: fast, and exceptions that escape fail the test with a trace."""

    def __init__(self, env: Mapping[str, str | None]) -> None:
        self._env = dict(env)
        self._runner = CliRunner()

    def __call__(self, *args: str, env: Mapping[str, str | None] | None = None) -> Outcome:
        result = self._runner.invoke(
            main, list(args), env=isolated_env(self._env | dict(env or {})), catch_exceptions=False
        )
        return Outcome(result.exit_code, result.stdout, result.stderr)


class Subprocess:
    """The installed console script, as an operator runs it."""

    def __init__(self, env: Mapping[str, str | None], cwd: Path) -> None:
        self._env = dict(env)
        self._cwd = cwd

    def __call__(self, *args: str, env: Mapping[str, str | None] | None = None) -> Outcome:
        merged: dict[str, str | None] = {
            **os.environ,
            **isolated_env(self._env | dict(env or {})),
        }
        final = {k: v for k, v in merged.items() if v is not None}
        done = subprocess.run(
            [str(SCRIPT), *args],
            env=final,
            cwd=self._cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)


class Management:
    """The emulator's test-only management API: faults, key rotation and statistics."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def add_fault(self, **rule: Any) -> None:
        requests.post(f"{self.url}/faults", json=rule, timeout=5).raise_for_status()

    def settings(self, **values: Any) -> None:
        requests.patch(f"{self.url}/settings", json=values, timeout=5).raise_for_status()

    def rotate_signing_key(self) -> None:
        requests.post(f"{self.url}/rotate-signing-key", timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/stats", timeout=5)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


def closed_port_url() -> str:
    """An endpoint on loopback where nothing listens (the port was just free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done


def unzip(archive: Path, directory: Path) -> list[str]:
    """What ``unzip ARCHIVE -d DIRECTORY`` does, for the walk-through."""
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(directory)
        return bundle.namelist()


def make_csr(common_name: str) -> bytes:
    """A PEM CSR with the SAN dNSName that Sectigo requires."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def subject_values(cert: x509.Certificate) -> dict[str, str]:
    return {attr.rfc4514_attribute_name: str(attr.value) for attr in cert.subject}


def san_names(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)
