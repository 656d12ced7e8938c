"""The request store's contract, which every backend (SQLite now, PostgreSQL later) satisfies.

Promises: a request is keyed by (owner, request_id) and created at most once, atomically, even under
concurrent identical calls; updates are compare-and-set on ``version``; a request and its issued
certificate become READY together; secrets are sealed at rest by the backend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sectigo_svc.domain.models import (
    AuditEntry,
    CertificateRequest,
    IssuedCertificate,
    RequestState,
)


class StoreError(Exception):
    """The store cannot be used (unreachable, corrupt, or a newer schema than this code)."""


class StaleUpdate(StoreError):
    """Someone else changed the request since it was read; read it again and retry."""


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
    requests: Sequence[CertificateRequest]
    next_cursor: int | None


class RequestStore(Protocol):
    def create(
        self, request: CertificateRequest, pkcs12_password: str | None
    ) -> tuple[CertificateRequest, bool]:
        """Insert unless (owner, request_id) exists; returns the stored row and whether it's new."""
        ...

    def get(self, owner: str, request_id: str) -> CertificateRequest | None: ...

    def pkcs12_password(self, owner: str, request_id: str) -> str | None: ...

    def update(
        self, request: CertificateRequest, certificate: IssuedCertificate | None = None
    ) -> CertificateRequest:
        """Write ``request`` if its version is still current (else :class:`StaleUpdate`).

        With ``certificate``, the certificate is stored in the same transaction.
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

    def restored_at(self) -> dt.datetime | None:
        """When this store was first opened after being restored from a backup, else None.

        Requests it held then may have been ordered by the original after the backup was taken.
        """
        ...

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the store answers."""
        ...

    def close(self) -> None: ...
