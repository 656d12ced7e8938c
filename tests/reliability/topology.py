"""Where the scenarios run: one replica on its embedded SQLite store, or three replicas in this
process on one new PostgreSQL database, against one emulator with one data key.

A :class:`Deployment` hands out :class:`Spread` stubs: each call goes to the next replica in turn,
as a load balancer would send it, so a request is created on one replica, polled on the others,
and a caller's retry lands elsewhere. With one replica that is plain calls to it. (The kill -9
scenarios run real processes instead: :mod:`tests.fleet`.)
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import Service
from tests.service.helpers import Stub, Upstream

# Short, so a replica starved of CPU long enough to lose a lease is taken over within a settle.
LEASE_SECONDS = 3.0


@dataclass(frozen=True)
class Topology:
    """How many replicas share which store; ``name`` is what the figures record."""

    name: str
    replicas: int
    postgres: bool

    def __str__(self) -> str:
        return self.name


SQLITE = Topology("sqlite x1", 1, postgres=False)
POSTGRES = Topology("postgres x3", 3, postgres=True)
TOPOLOGIES = (SQLITE, POSTGRES)


class Calls(Protocol):
    """The RPCs the scenarios make, on one replica's stub or spread over several."""

    @property
    def IssueCertificate(
        self,
    ) -> grpc.UnaryUnaryMultiCallable[pb.IssueCertificateRequest, pb.CertificateRequest]: ...

    @property
    def GetCertificateRequest(
        self,
    ) -> grpc.UnaryUnaryMultiCallable[pb.GetCertificateRequestRequest, pb.CertificateRequest]: ...

    @property
    def RevokeCertificate(
        self,
    ) -> grpc.UnaryUnaryMultiCallable[
        pb.RevokeCertificateRequest, pb.RevokeCertificateResponse
    ]: ...

    @property
    def GetLicenses(
        self,
    ) -> grpc.UnaryUnaryMultiCallable[pb.GetLicensesRequest, pb.Licenses]: ...


class Spread:
    """Stubs of several replicas behind one: every call goes to the next replica in turn
    (thread-safe)."""

    def __init__(self, stubs: Sequence[Stub]) -> None:
        assert stubs, "no replica to call"
        self._stubs = list(stubs)
        self._turns = itertools.count()
        self._lock = threading.Lock()

    def _next(self) -> Stub:
        with self._lock:
            return self._stubs[next(self._turns) % len(self._stubs)]

    @property
    def IssueCertificate(
        self,
    ) -> grpc.UnaryUnaryMultiCallable[pb.IssueCertificateRequest, pb.CertificateRequest]:
        return self._next().IssueCertificate

    @property
    def GetCertificateRequest(
        self,
    ) -> grpc.UnaryUnaryMultiCallable[pb.GetCertificateRequestRequest, pb.CertificateRequest]:
        return self._next().GetCertificateRequest

    @property
    def RevokeCertificate(
        self,
    ) -> grpc.UnaryUnaryMultiCallable[pb.RevokeCertificateRequest, pb.RevokeCertificateResponse]:
        return self._next().RevokeCertificate

    @property
    def GetLicenses(
        self,
    ) -> grpc.UnaryUnaryMultiCallable[pb.GetLicensesRequest, pb.Licenses]:
        return self._next().GetLicenses


@dataclass
class Deployment:
    """The running replicas of one topology and the emulator behind them."""

    topology: Topology
    replicas: list[Service]
    emulator: Upstream

    def stub(self) -> Spread:
        """A stub whose calls go to the replicas in turn."""
        return Spread([replica.stub() for replica in self.replicas])

    def health(self, service: str = "") -> list[str]:
        """Each replica's health of ``service`` ("" = readiness), e.g. ``["SERVING"] * 3``."""
        return [replica.health(service) for replica in self.replicas]

    def channels(self, client: str = "reader") -> list[grpc.Channel]:
        """A channel to each replica, closed when the deployment stops."""
        return [replica.channel(client) for replica in self.replicas]

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


Deploy = Callable[..., Deployment]
"""``deploy(topology, emulator, **settings)``: start the replicas of ``topology`` with the
service settings given (see tests/service/conftest.py), each ready to serve."""
