"""A fleet: several real ``sectigo-svc serve`` processes on one PostgreSQL database and one
emulator, for tests of replicas that crash, race and hand work over.

Use it as a context manager; every process is killed and every channel closed when the block
ends::

    with start_fleet(3, database_url=postgres_url, emulator=emulator, pki=pki,
                     directory=tmp_path, lease_seconds=2.0) as fleet:
        reply = fleet[0].stub.IssueCertificate(request, timeout=10)
        holder = fleet.holder_of(reply.request_id)   # the Replica leasing it, or None
        holder.kill()                                # kill -9, then reaped
        wait_for(fleet.others(holder)[0].stub, reply.request_id, [READY])

The API (kept stable; other suites build on it):

- ``start_fleet(count, *, database_url, emulator, pki, directory, lease_seconds=2.0,
  names=None, ready=True, env=None, **settings)``: a context manager yielding a :class:`Fleet`.
  Each replica gets its own state dir and config under ``directory/<name>/``, the name
  ``replica-<n>`` unless ``names`` are given, and the shared data key ``directory/data.key``
  (0600). ``settings`` are extra TOML settings for every replica (see
  :func:`tests.service.helpers.serve_config`). All processes are started at once; with ``ready``
  the call returns once each is SERVING (:data:`READY_TIMEOUT` s at most).
- :class:`Fleet`: ``replicas`` (list, also ``fleet[i]``, ``len(fleet)``, iteration),
  ``replica(name)``, ``others(replica)``, ``alive()``, ``sectigo`` (the emulator's
  :class:`~tests.service.helpers.EmulatorApi`), ``database_url``, ``key_file``,
  ``lease_of(request_id, owner=None) -> Lease``, ``holder_of(request_id, owner=None) ->
  Replica | None``, ``add(name=None, ready=True, env=None, **settings) -> Replica`` (one more
  process on the same database, with extra environment and settings of its own), ``stop()``.
- :class:`Replica`: ``name``, ``process`` (the ``Popen``), ``logs``
  (:class:`~tests.service.helpers.LogLines` of its stderr, JSON lines), ``port``, ``target``,
  ``channel`` and ``stub`` (mutual TLS as ``registration``), ``channel_as(client)``,
  ``holder`` (its lease holder string, from its start-up line), ``health()``,
  ``wait_serving()``, ``kill()`` (SIGKILL and reap), ``terminate()`` (SIGTERM and reap),
  ``pause()`` (SIGSTOP), ``resume()`` (SIGCONT), ``alive``.

Lease facts come straight from the ``requests`` table (psycopg), not through the service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psycopg

from sectigo_svc.devcerts import DevCerts
from sectigo_svc.sealing import load_or_create_key
from tests.service.helpers import (
    SECTIGO_SVC,
    EmulatorApi,
    LogLines,
    Stub,
    Upstream,
    health_status,
    listening_port,
    mtls_channel,
    poll,
    serve_config,
)

READY_TIMEOUT = 30.0  # seconds a replica may take to turn SERVING (three start at once on 2 cores)

Setting = str | int | float | Path


@dataclass(frozen=True)
class Lease:
    """A request's lease as stored: ``holder`` is ``<replica_name>/<pid>/<random>`` or None,
    ``expires`` epoch seconds on the database clock or None; ``state`` the stored state name."""

    holder: str | None
    expires: float | None
    state: str

    @property
    def replica_name(self) -> str | None:
        return self.holder.split("/", 1)[0] if self.holder else None


@dataclass
class Replica:
    """One ``sectigo-svc serve`` process of a fleet."""

    name: str
    process: subprocess.Popen[str]
    logs: LogLines
    pki: DevCerts
    directory: Path
    port: int = 0
    holder: str = ""
    channel: grpc.Channel | None = None
    _channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"

    @property
    def stub(self) -> Stub:
        """A stub on the replica's ``registration`` channel."""
        assert self.channel is not None, f"{self.name} has not listened yet"
        return Stub(self.channel)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def channel_as(self, client: str) -> grpc.Channel:
        """A new mutual-TLS channel presenting ``client``'s development certificate; closed with
        the fleet."""
        channel = mtls_channel(self.target, self.pki, client)
        self._channels.append(channel)
        return channel

    def health(self) -> str:
        """The whole server's health by name (``SERVING``, ``NOT_SERVING``...)."""
        return health_status(self.channel_as("reader"))

    def wait_serving(self, timeout: float = READY_TIMEOUT) -> None:
        channel = self.channel_as("reader")

        def serving() -> bool | None:
            with contextlib.suppress(grpc.RpcError):
                if health_status(channel) == "SERVING":
                    return True
            assert self.alive, f"{self.name} exited:\n{''.join(self.logs.lines)[-4000:]}"
            return None

        poll(serving, f"{self.name} to turn SERVING", timeout)

    def _listened(self) -> None:
        started = self.logs.wait_for("sectigo-svc started", READY_TIMEOUT)
        self.port = listening_port(self.logs)
        self.holder = str(started.get("lease_holder", ""))
        self.channel = mtls_channel(self.target, self.pki, "registration")
        self._channels.append(self.channel)

    def kill(self) -> None:
        """``kill -9``: no lease is released, no answer finished."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the process is frozen, as in a long pause (its leases lapse meanwhile)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: the frozen process carries on where it stopped."""
        self.process.send_signal(signal.SIGCONT)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful stop that releases leases); killed if it takes over ``timeout``."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.wait()

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        self.kill()


@dataclass
class Fleet:
    """The replicas of one database and one emulator; see the module docstring."""

    replicas: list[Replica]
    emulator: Upstream
    pki: DevCerts
    directory: Path
    database_url: str
    key_file: Path
    settings: dict[str, Setting]
    env: dict[str, str]

    def __getitem__(self, index: int) -> Replica:
        return self.replicas[index]

    def __len__(self) -> int:
        return len(self.replicas)

    def __iter__(self) -> Iterator[Replica]:
        return iter(self.replicas)

    @property
    def sectigo(self) -> EmulatorApi:
        return EmulatorApi(self.emulator)

    def replica(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def others(self, replica: Replica) -> list[Replica]:
        return [r for r in self.replicas if r is not replica]

    def alive(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive]

    def lease_of(self, request_id: str, owner: str | None = None) -> Lease:
        """The stored lease of a request (by request id, and owner when several callers used the
        same id); AssertionError when there is no such request."""
        query = "SELECT lease_holder, lease_expires, state FROM requests WHERE request_id = %s"
        params: list[str] = [request_id]
        if owner is not None:
            query += " AND owner = %s"
            params.append(owner)
        with psycopg.connect(self.database_url, autocommit=True) as db:
            rows = db.execute(query.encode(), params).fetchall()
        assert len(rows) == 1, f"{len(rows)} stored requests {request_id!r}"
        holder, expires, state = rows[0]
        return Lease(holder, None if expires is None else float(expires), str(state))

    def holder_of(self, request_id: str, owner: str | None = None) -> Replica | None:
        """The replica (by replica_name) that holds the request's lease, None when no one
        does; a lapsed lease still names its last holder."""
        name = self.lease_of(request_id, owner).replica_name
        return next((r for r in self.replicas if r.name == name), None)

    def add(
        self,
        name: str | None = None,
        ready: bool = True,
        env: Mapping[str, str] | None = None,
        **settings: Setting,
    ) -> Replica:
        """Start one more replica on the same database, emulator and data key; ``env`` and
        ``settings`` add to (or override) the fleet's for this replica alone."""
        replica = _launch(self, name or f"replica-{len(self.replicas)}", env or {}, settings)
        self.replicas.append(replica)
        replica._listened()
        if ready:
            replica.wait_serving()
        return replica

    def stop(self) -> None:
        """Kill every process still running and close every channel."""
        for replica in self.replicas:
            replica.close()


def _launch(
    fleet: Fleet,
    name: str,
    env: Mapping[str, str] | None = None,
    settings: Mapping[str, Setting] | None = None,
) -> Replica:
    directory = fleet.directory / name
    directory.mkdir(parents=True, exist_ok=True)
    config = serve_config(
        directory / "service.toml",
        fleet.pki,
        directory / "state",
        fleet.emulator,
        database_url=fleet.database_url,
        data_key_file=fleet.key_file,
        replica_name=name,
        **{**fleet.settings, **(settings or {})},
    )
    process = subprocess.Popen(
        [SECTIGO_SVC, "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **fleet.env, **(env or {})},
    )
    assert process.stderr is not None
    return Replica(name, process, LogLines(process.stderr), fleet.pki, directory)


@contextlib.contextmanager
def start_fleet(
    count: int,
    *,
    database_url: str,
    emulator: Upstream,
    pki: DevCerts,
    directory: Path,
    lease_seconds: float = 2.0,
    names: Sequence[str] | None = None,
    ready: bool = True,
    env: Mapping[str, str] | None = None,
    **settings: Setting,
) -> Iterator[Fleet]:
    """``count`` replicas started at the same moment; see the module docstring."""
    names = list(names) if names is not None else [f"replica-{n}" for n in range(count)]
    assert len(names) == count, "one name per replica"
    key_file = directory / "data.key"
    load_or_create_key(key_file, create=True)
    fleet = Fleet(
        [],
        emulator,
        pki,
        directory,
        database_url,
        key_file,
        {"lease_seconds": lease_seconds, **settings},
        dict(env or {}),
    )
    try:
        fleet.replicas.extend(_launch(fleet, name) for name in names)
        for replica in fleet.replicas:
            replica._listened()
        if ready:
            for replica in fleet.replicas:
                replica.wait_serving()
        yield fleet
    finally:
        fleet.stop()
