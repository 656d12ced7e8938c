"""The local fleet behind ``make run-replicas``: several replicas on one PostgreSQL database, on
loopback, with the Sectigo emulator and the development PKI.

Everything lives under one state directory, so a restart keeps the CA, the cluster and its
requests:

- ``pki/``: the development PKI (as ``make run`` makes it); ``emulator/``: the emulator's state;
- ``data.key``: the data key every replica shares (0600); ``sectigo-password``: the emulator
  account's password (0600), read by the replicas as a deployment reads its secret;
- ``postgres/``: a PostgreSQL cluster of the fleet's own (``initdb`` once, ``pg_ctl`` on every
  start, on a free loopback port, password authentication only); its password is
  ``postgres/password`` (0600). PostgreSQL refuses to run as root, so as root the cluster belongs
  to the ``postgres`` system user (created when missing), which must be able to enter the state
  directory;
- ``replica-N/``: replica N's token cache and its log, ``replica.log`` (JSON lines).

Each replica is a ``sectigo-svc serve`` process configured only by environment and files, as a
container is: one can be killed (``kill -9``) to watch another take its requests over once the
lease lapses, and none shares memory with another. Every child runs in a session of its own, so a
Ctrl-C in the terminal reaches only the fleet, which then stops the replicas, the emulator and the
cluster in that order.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from sectigo_svc.atomicfile import write_atomic
from sectigo_svc.config import ENV_PREFIX
from sectigo_svc.devcerts import DevCerts, make_dev_certs
from sectigo_svc.devstack import (
    EMULATOR_PASSWORD,
    EMULATOR_USERNAME,
    SERVICE,
    dev_emulator,
    grpcurl_flags,
    loopback_settings,
)
from sectigo_svc.emulator import Emulator
from sectigo_svc.healthcheck import probe
from sectigo_svc.sealing import load_or_create_key

CLUSTER_USER = "postgres"
DATABASE = "sectigo_svc"
PORTS_PER_REPLICA = 10  # replica N (from 0) listens on base + 10 N: gRPC +0, health +1, metrics +2
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0


class FleetError(Exception):
    """The fleet cannot start; the message says what to fix."""


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise FleetError(
        f"PostgreSQL's {name} is not installed; the fleet runs a cluster of its own "
        "(Debian: apt-get install postgresql; `make system-deps` does it)"
    )


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Cluster:
    """The fleet's PostgreSQL cluster in ``directory``: made by ``initdb`` the first time, started
    on a free loopback port by :meth:`start`, stopped by :meth:`stop`.

    ``url`` names the superuser and the fleet's database, never the password, which is in
    ``password_file``. Raises :class:`FleetError` when a command fails, with its output.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.password_file = directory / "password"
        self.log = directory / "postgres.log"
        self.port = 0
        self._prefix = self._cluster_user()

    @property
    def url(self) -> str:
        return f"postgresql://{CLUSTER_USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while the data directory says one runs, else None."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.strip().isdigit() else None

    @staticmethod
    def _cluster_user() -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam(CLUSTER_USER)
        except KeyError:
            subprocess.run(  # noqa: S603 - fixed arguments
                ["useradd", "--system", "--no-create-home", CLUSTER_USER],  # noqa: S607 - root's PATH
                check=True,
                capture_output=True,
                timeout=COMMAND_TIMEOUT,
            )
        return ["runuser", "-u", CLUSTER_USER, "--"]

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(  # noqa: S603 - PostgreSQL's own tools, arguments built here
            [*self._prefix, *command],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            start_new_session=True,  # the server it starts must not see the terminal's Ctrl-C
        )
        if check and done.returncode != 0:
            raise FleetError(f"{Path(command[0]).name} failed: {done.stdout}{done.stderr}".strip())
        return done

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.password_file.exists():
            write_atomic(self.password_file, secrets.token_urlsafe(24).encode() + b"\n", 0o600)
        if self._prefix:
            shutil.chown(self.directory, CLUSTER_USER)
            shutil.chown(self.password_file, CLUSTER_USER)
            if self._run("test", "-w", str(self.directory), check=False).returncode != 0:
                raise FleetError(
                    f"the {CLUSTER_USER} user cannot enter {self.directory}: choose a state "
                    "directory every user may traverse (e.g. under /tmp)"
                )
        if not (self.data / "PG_VERSION").exists():
            self._run(
                _pg_bin("initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                CLUSTER_USER,
                "--auth",
                "scram-sha-256",
                f"--pwfile={self.password_file}",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            )

    def start(self) -> None:
        """Initialise the cluster if needed, start it (stopping one a killed fleet left running
        first) and create the fleet's database if missing."""
        self._prepare()
        pg_ctl = _pg_bin("pg_ctl")
        if self.pid is not None:
            status = self._run(pg_ctl, "status", "-D", str(self.data), check=False)
            if status.returncode == 0:
                self._run(pg_ctl, "stop", "-D", str(self.data), "-m", "fast", "-w", check=False)
        self.port = _free_port()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._run(pg_ctl, "start", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w")
        password = self.password_file.read_text().strip()
        admin = f"postgresql://{CLUSTER_USER}@127.0.0.1:{self.port}/postgres"
        try:
            with psycopg.connect(admin, password=password, autocommit=True) as connection:
                found = connection.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                ).fetchone()
                if found is None:
                    connection.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE))
                    )
        except psycopg.Error as exc:
            self.stop()
            raise FleetError(f"the fleet's cluster does not take connections: {exc}") from exc

    def stop(self) -> None:
        """Stop the server (fast: sessions are ended) and wait until its process is gone."""
        pid = self.pid
        if pid is None:
            return
        self._run(_pg_bin("pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w", check=False)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


@dataclass(frozen=True)
class ReplicaPorts:
    grpc: int
    health: int
    metrics: int


def replica_ports(count: int, base_port: int) -> list[ReplicaPorts]:
    """Ports of ``count`` replicas: replica N at ``base_port + 10 N`` (+0 gRPC, +1 health,
    +2 metrics), or free ports chosen by the system when ``base_port`` is 0."""
    if base_port == 0:
        return [ReplicaPorts(_free_port(), _free_port(), _free_port()) for _ in range(count)]
    return [
        ReplicaPorts(*(base_port + PORTS_PER_REPLICA * n + k for k in range(3)))
        for n in range(count)
    ]


def replica_environment(
    name: str,
    ports: ReplicaPorts,
    pki: DevCerts,
    directory: Path,
    emulator_url: str,
    cluster: Cluster,
    data_key: Path,
    sectigo_password: Path,
) -> dict[str, str]:
    """The ``SECTIGO_SVC_*`` variables of one replica: mutual TLS with the development PKI, the
    shared database (URL without password, password from its file) and data key, its own ports,
    token cache (under ``directory``) and name."""
    settings = loopback_settings(pki, directory, emulator_url) | {
        "listen": f"127.0.0.1:{ports.grpc}",
        "health_listen": f"127.0.0.1:{ports.health}",
        "metrics_listen": f"127.0.0.1:{ports.metrics}",
        "database_url": cluster.url,
        "database_password_file": cluster.password_file,
        "data_key_file": data_key,
        "replica_name": name,
        "sectigo_username": EMULATOR_USERNAME,
        "sectigo_password_file": sectigo_password,
        "poll_min_interval": 0.5,
        "poll_max_interval": 5.0,
        "prestop_seconds": 0,  # no load balancer to move callers away first
        "log_format": "json",
    }
    return {ENV_PREFIX + key.upper(): str(value) for key, value in settings.items()}


@dataclass
class Replica:
    """One ``sectigo-svc serve`` process of the fleet."""

    name: str
    ports: ReplicaPorts
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def target(self) -> str:
        return f"localhost:{self.ports.grpc}"

    def health(self) -> str:
        """Readiness on the probe port: ``SERVING``, ``NOT_SERVING``, ``UNREACHABLE``..."""
        return probe(f"127.0.0.1:{self.ports.health}", "", 2.0)

    def stop(self, signalled: bool = False) -> None:
        """SIGTERM (unless ``signalled`` already), then the drain; SIGKILL if it has not ended
        within a minute. One SIGTERM only: a second one may reach a process that has finished
        its stop and is exiting, past its handler, and end it by the signal."""
        if self.process.poll() is not None:
            return
        if not signalled:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _launch(name: str, environment: dict[str, str], log: Path, ports: ReplicaPorts) -> Replica:
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("SECTIGO_", "PG", "XDG_CACHE"))
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "sectigo_svc.cli", "serve"],
            env=inherited | environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Replica(name, ports, process, log)


def _wait_ready(replicas: list[Replica], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(replicas)
    while waiting:
        for replica in list(waiting):
            if replica.process.poll() is not None:
                raise FleetError(
                    f"{replica.name} exited with {replica.process.returncode}; "
                    f"the end of {replica.log}:\n{_tail(replica.log)}"
                )
            if replica.health() == "SERVING":
                waiting.remove(replica)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(r.name for r in waiting)
            raise FleetError(f"{names} not ready after {timeout:g} s; see {waiting[0].log}")
        if waiting:
            time.sleep(0.2)


@dataclass
class Fleet:
    """The running fleet. :meth:`stop` ends the replicas, then the emulator, then the cluster."""

    state: Path
    pki: DevCerts
    emulator: Emulator
    cluster: Cluster
    data_key: Path
    replicas: list[Replica] = field(default_factory=list)

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            replica.stop(signalled=True)
        self.emulator.stop()
        self.cluster.stop()


def start_fleet(
    state: Path,
    replicas: int = 2,
    base_port: int = 9443,
    emulator_port: int = 8831,
    management_port: int = 8832,
    issue_delay: float = 2.0,
    ready_timeout: float = READY_TIMEOUT,
) -> Fleet:
    """Start the cluster, the emulator and ``replicas`` replicas (ports: :func:`replica_ports`;
    0 everywhere picks free ones) and return once every replica's readiness is SERVING.

    Raises :class:`FleetError` (cluster, replica start), ``DevCertsError``, ``SealingError`` or
    ``OSError``; whatever had started is stopped first.
    """
    if replicas < 1:
        raise FleetError("a fleet needs at least one replica")
    state.mkdir(parents=True, exist_ok=True)
    pki = make_dev_certs(state / "pki")
    data_key = state / "data.key"
    load_or_create_key(data_key, create=True)
    sectigo_password = write_atomic(
        state / "sectigo-password", EMULATOR_PASSWORD.encode() + b"\n", 0o600
    )
    cluster = Cluster(state / "postgres")
    cluster.start()
    emulator = dev_emulator(state, emulator_port, management_port, issue_delay)
    try:
        emulator.start()
    except BaseException:
        cluster.stop()
        raise
    fleet = Fleet(state, pki, emulator, cluster, data_key)
    try:
        for number, ports in enumerate(replica_ports(replicas, base_port), start=1):
            name = f"replica-{number}"
            directory = state / name
            directory.mkdir(exist_ok=True, mode=0o700)
            environment = replica_environment(
                name, ports, pki, directory, emulator.api_url, cluster, data_key, sectigo_password
            )
            fleet.replicas.append(_launch(name, environment, directory / "replica.log", ports))
        _wait_ready(fleet.replicas, ready_timeout)
    except BaseException:
        fleet.stop()
        raise
    return fleet


def usage(fleet: Fleet, grpcurl: str = "grpcurl") -> str:
    """Ready-to-paste commands for the running fleet."""
    flags = grpcurl_flags(fleet.pki)
    first, last = fleet.replicas[0], fleet.replicas[-1]
    sectigo_svc = Path(grpcurl).with_name("sectigo-svc")

    def call(replica: Replica, rest: str, data: str = "") -> str:
        body = f"-d '{data}' " if data else ""
        return f"{grpcurl} {flags} {body}{replica.target} {rest}"

    issue = '{"request_id": "fleet-1", "server_key": {"common_name": "fleet.example.com"}}'
    get = '{"request_id": "fleet-1"}'
    password = shlex.quote(str(fleet.cluster.password_file))
    lines = [
        f"{len(fleet.replicas)} sectigo-svc replicas on one PostgreSQL database (mutual TLS):",
    ]
    for replica in fleet.replicas:
        lines.append(
            f"  {replica.name}: {replica.target}  health 127.0.0.1:{replica.ports.health}  "
            f"metrics http://127.0.0.1:{replica.ports.metrics}/metrics  "
            f"pid {replica.process.pid}  log {replica.log}"
        )
    lines += [
        f"PostgreSQL: {fleet.cluster.url} (pid {fleet.cluster.pid}; password in {password})",
        f'  PGPASSWORD="$(cat {password})" psql {fleet.cluster.url}',
        f"Sectigo emulator: {fleet.emulator.api_url}",
        f"  (test-only management API: {fleet.emulator.management_url})",
        "",
        f"Issue on {first.name}, then follow and download on {last.name} (one database):",
        f"  {call(first, SERVICE + '/IssueCertificate', issue)}",
        f"  {call(last, SERVICE + '/WatchCertificateRequest', get)}",
        f"  {call(last, SERVICE + '/DownloadCertificate', get)}",
        "Health of each replica (readiness follows its database connection):",
    ]
    lines += [
        f"  {sectigo_svc} healthcheck --target 127.0.0.1:{r.ports.health}" for r in fleet.replicas
    ]
    lines += [
        "",
        f"kill -9 a replica's pid: another takes its requests over when its lease lapses "
        f"({ENV_PREFIX}LEASE_SECONDS, 30 s by default).",
        "Ctrl-C stops every replica, the emulator and the cluster.",
    ]
    return "\n".join(lines)
