"""Throwaway PostgreSQL clusters for tests: started by the test session, stopped and removed after.

The server refuses to run as root, so as root a cluster belongs to the ``postgres`` system user
(created when missing); it listens on 127.0.0.1 on a free port with trust authentication.
:class:`Cluster` can also be stopped and started again, for tests of a database that goes away.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

CLUSTER_USER = "postgres"


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    pytest.fail(
        f"PostgreSQL's {name} is not installed: these tests need a PostgreSQL server "
        "(Debian: apt-get install postgresql; `make system-deps` does it)"
    )


def _as_cluster_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(CLUSTER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", CLUSTER_USER], check=True)
    return ["runuser", "-u", CLUSTER_USER, "--"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One PostgreSQL cluster in a temporary directory; ``url`` is its superuser's libpq URL
    (no database name)."""

    def __init__(self) -> None:
        self._prefix = _as_cluster_user()
        self._pg_ctl = _pg_bin("pg_ctl")
        # Not under pytest's tmp dir: that is 0700 root, and the server runs as another user.
        self.root = Path(tempfile.mkdtemp(prefix="sectigo-pg-"))
        self.data = self.root / "data"
        if self._prefix:
            shutil.chown(self.root, CLUSTER_USER)
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"
        self._databases = itertools.count(1)
        self._run(
            _pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"
        )
        self.start()

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._prefix, *command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"{command[0]} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        log = str(self.root / "log")
        self._run(self._pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def server_processes(self) -> list[int]:
        """The postmaster's pid (its ``postmaster.pid`` file) and those of its children."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(postmaster)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,  # ps exits 1 when there is none
        ).stdout.split()
        return [postmaster, *map(int, children)]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every server process stopped (SIGSTOP) within the block, continued after: a server
        that accepts TCP connections (the kernel does) but never answers, as a paused host."""
        stopped: list[int] = []
        try:
            for pid in self.server_processes():
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            yield
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def database(self) -> str:
        """The URL of a new, empty database."""
        name = f"db_{os.getpid()}_{next(self._databases)}"
        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}".encode())
        return f"{self.url}/{name}"

    def recreate(self, url: str, dump: Path | None = None) -> None:
        """Drop the database of ``url`` and make it again: empty, or from a ``pg_dump -Fc``
        file (pg_restore), as after a lost database or a restore."""
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())
            admin.execute(f"CREATE DATABASE {name}".encode())
        if dump is not None:
            subprocess.run(
                [_pg_bin("pg_restore"), "--no-owner", "-d", url, str(dump)],
                check=True,
                capture_output=True,
                timeout=120,
            )

    def dump(self, url: str, path: Path) -> None:
        """``pg_dump -Fc`` of the database of ``url`` into ``path``."""
        subprocess.run(
            [_pg_bin("pg_dump"), "-Fc", "-f", str(path), url],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def remove(self) -> None:
        for pid in self.server_processes() if (self.data / "postmaster.pid").exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a stopped server would not stop
        subprocess.run(
            [*self._prefix, self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """The session's shared cluster; tests take a database each (``postgres_url``)."""
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def postgres_server(postgres_cluster: Cluster) -> str:
    """The shared cluster's superuser URL (no database name)."""
    return postgres_cluster.url


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> str:
    """A URL of a new, empty database in the shared cluster."""
    return postgres_cluster.database()


@pytest.fixture
def own_postgres() -> Iterator[Cluster]:
    """A cluster of the test's own, which it may stop and start."""
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.remove()
