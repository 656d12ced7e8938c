"""The request store's contract, which every backend (SQLite, PostgreSQL) satisfies.

Promises: a request is keyed by (owner, request_id) and created at most once, atomically, even under
concurrent identical calls; updates are compare-and-set on ``version``; a request and its issued
certificate become READY together; secrets are sealed at rest by the backend.

Leases: each store object acts for one holder (a replica). An unfinished request is tracked by the
holder of its lease: a request is created leased to its creator, and a lease not renewed within its
time-to-live may be claimed by another holder. SQLite allows one process per store, so there every
lease of another holder is one a dead process left and is claimed at once.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sectigo_svc.domain.models import (
    AuditEntry,
    CertificateRequest,
    IssuedCertificate,
    RequestState,
)

Key = tuple[str, str]
ChangeCallback = Callable[[Key, bool], None]


def holder_name(replica: str = "") -> str:
    """A lease holder's id: ``replica`` (default: the host name), the process id, and a random
    part, so a restarted process never mistakes its predecessor's leases for its own."""
    return f"{replica or socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Fence:
    """The lease a write is made under: its holder and the epoch of the claim that gave it.

    Every claim that takes a lease this holder did not hold live bumps the request's epoch, so a
    write carrying an older epoch comes from a step that lost the request (a paused or cut-off
    replica) and is refused with :class:`LeaseLost`.
    """

    holder: str
    epoch: int


@dataclass(frozen=True)
class Claim:
    """A request leased to this store's holder; ``taken_over``: another holder's lease had lapsed
    (it may have died mid-step, so its outcome is unknown). ``epoch`` fences this holder's writes
    (see :class:`Fence`)."""

    key: Key
    taken_over: bool
    epoch: int = 0


@dataclass(frozen=True)
class Renewal:
    """One round of lease renewal: ``renewed`` leases of the holder now last another lease time;
    ``locked`` ones are the holder's too, but their rows were locked by another transaction, so
    they were left as they were (they lapse unless a later round renews them)."""

    renewed: frozenset[Key]
    locked: frozenset[Key] = frozenset()


class StoreError(Exception):
    """The store cannot be used (unreachable, corrupt, or a newer schema than this code)."""


class StaleUpdate(StoreError):
    """Someone else changed the request since it was read; read it again and retry."""


class LeaseLost(StoreError):
    """The write carried a lease that is no longer current: another holder claimed the request
    since (or it was released). The writer must drop the request and not retry."""


class TransitionRefused(StoreError):
    """The write would move a request's state backwards (for example READY to SUBMITTED); see
    :mod:`sectigo_svc.domain.lifecycle`."""


def refusal(
    request: CertificateRequest, fence: Fence | None, stored: dict[str, object] | None
) -> StoreError:
    """Why a guarded write of ``request`` changed no row, from the row as stored now (None: gone).

    A lost lease comes first (the writer must drop the request), then a concurrent change (read
    again), then a backward transition.
    """
    who = f"request {request.request_id} of {request.owner}"
    if stored is None:
        return StaleUpdate(f"{who} is gone")
    if fence is not None and (stored["lease_holder"], stored["lease_epoch"]) != (
        fence.holder,
        fence.epoch,
    ):
        return LeaseLost(f"{who} is leased to another replica now (epoch {stored['lease_epoch']})")
    if stored["version"] != request.version:
        return StaleUpdate(f"{who} changed concurrently")
    return TransitionRefused(f"{who} is {stored['state']}; it cannot become {request.state.value}")


@dataclass(frozen=True)
class ListQuery:
    """Which requests to list: ``owner`` None means every owner."""

    owner: str | None
    states: frozenset[RequestState] = frozenset()
    common_name: str = ""
    limit: int = 50
    after: int | None = None


@dataclass(frozen=True)
class Page:
    """Requests newest first; ``cursors[i]`` is the cursor that lists what comes after
    ``requests[i]``, so a page may be cut short at any request."""

    requests: Sequence[CertificateRequest]
    next_cursor: int | None
    cursors: Sequence[int] = ()


class RequestStore(Protocol):
    def create(
        self,
        request: CertificateRequest,
        pkcs12_password: str | None,
        audit: AuditEntry | None = None,
    ) -> tuple[CertificateRequest, bool]:
        """Insert unless (owner, request_id) exists; returns the stored row and whether it's new.

        ``audit`` is recorded in the same transaction when the row is new: a request is never
        stored (and so never ordered) without its audit entry.
        """
        ...

    def get(self, owner: str, request_id: str) -> CertificateRequest | None: ...

    def pkcs12_password(self, owner: str, request_id: str) -> str | None: ...

    def update(
        self,
        request: CertificateRequest,
        certificate: IssuedCertificate | None = None,
        fence: Fence | None = None,
    ) -> CertificateRequest:
        """Write ``request`` if its version is still current (else :class:`StaleUpdate`).

        With ``certificate``, the certificate is stored in the same transaction. With ``fence``,
        only while that lease is the request's current one (else :class:`LeaseLost`). A state
        that may not follow the stored one is refused (:class:`TransitionRefused`).
        """
        ...

    def history(self, owner: str, request_id: str, after_version: int) -> list[CertificateRequest]:
        """Every stored version of the request newer than ``after_version``, oldest first."""
        ...

    def list_requests(self, query: ListQuery) -> Page: ...

    def active(self) -> list[CertificateRequest]:
        """Every request not yet in a terminal state, oldest first."""
        ...

    def by_serial(self, serial_number: str) -> CertificateRequest | None: ...

    def count_by_state(self) -> dict[str, int]:
        """How many requests are in each state (states with none are left out)."""
        ...

    def certificate(self, owner: str, request_id: str) -> IssuedCertificate | None: ...

    def record_audit(self, entry: AuditEntry) -> None: ...

    def audit_log(
        self, owner: str | None = None, request_id: str | None = None
    ) -> list[AuditEntry]: ...

    def now(self) -> dt.datetime:
        """The store's clock: the database server's on PostgreSQL, which every replica shares;
        this process's on SQLite, where one process owns the store."""
        ...

    def restored_at(self) -> dt.datetime | None:
        """When this store was first opened after being restored from a backup, else None.

        Requests it held then may have been ordered by the original after the backup was taken.
        """
        ...

    @property
    def holder(self) -> str:
        """The lease holder this store object acts for."""
        ...

    def claim(
        self, keys: Sequence[Key] | None = None, limit: int = 100, own_only: bool = False
    ) -> list[Claim]:
        """Lease unfinished requests to :attr:`holder` for the lease time: those of ``keys``, or
        (None) up to ``limit`` that no one holds or whose lease lapsed, oldest first. Requests
        already held are renewed and returned. Requests another holder holds are left out. A
        claim of a lease not held live by :attr:`holder` bumps the request's lease epoch. With
        ``own_only``, only requests whose lease names :attr:`holder` are claimed (a replica that
        must take nothing over)."""
        ...

    def renew(self) -> Renewal:
        """Extend every lease :attr:`holder` has on unfinished requests whose row no other
        transaction has locked (one locked row never holds up the others)."""
        ...

    def release(self) -> None:
        """Give up every lease of :attr:`holder`, so other holders may claim them at once."""
        ...

    def on_change(self, callback: ChangeCallback) -> None:
        """Call ``callback(key, terminal)`` when another process changes a request.

        PostgreSQL delivers these through LISTEN/NOTIFY (lost while its connection is down);
        SQLite never calls it, since one process owns the store.
        """
        ...

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the store answers."""
        ...

    def close(self) -> None: ...
