"""Row encoding shared by the store backends: columns, timestamps, the spec as JSON, sealing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sectigo_svc.domain.models import (
    AuditEntry,
    CertificateRequest,
    IssuedCertificate,
    IssueSpec,
    KeySource,
    RequestState,
    SendState,
    Subject,
)
from sectigo_svc.sealing import Sealer
from sectigo_svc.store.base import ListQuery, Page

AUDIT_COLUMNS = "at, identity, action, owner, request_id, detail"
CERTIFICATE_COLUMNS = "certificate_pem, chain_pem, pkcs12, private_key"
REQUEST_COLUMNS = (
    "owner, request_id, spec, fingerprint, batch_name, state, created_at, updated_at, version, "
    "batch_id, sectigo_status, reason, submit_attempts, send_state, last_send_at, serial_number, "
    "not_before, not_after, common_name, order_failures, order_error"
)


def to_timestamp(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def from_timestamp(value: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.UTC) if value is not None else None


def _spec_json(spec: IssueSpec) -> str:
    return json.dumps(
        {
            "key_source": spec.key_source.value,
            "common_name": spec.common_name,
            "dns_names": list(spec.dns_names),
            "subject": vars(spec.subject),
            "authority_id": spec.authority_id,
            "profile_id": spec.profile_id,
            "csr_pem": spec.csr_pem,
        },
        sort_keys=True,
    )


def _spec_from_json(text: str) -> IssueSpec:
    data = json.loads(text)
    return IssueSpec(
        key_source=KeySource(data["key_source"]),
        common_name=data["common_name"],
        dns_names=tuple(data["dns_names"]),
        subject=Subject(**data["subject"]),
        authority_id=int(data["authority_id"]),
        profile_id=int(data["profile_id"]),
        csr_pem=data["csr_pem"],
    )


def request_values(request: CertificateRequest) -> dict[str, Any]:
    """Column values of a request row, in ``REQUEST_COLUMNS`` order."""
    return {
        "owner": request.owner,
        "request_id": request.request_id,
        "spec": _spec_json(request.spec),
        "fingerprint": request.fingerprint,
        "batch_name": request.batch_name,
        "state": request.state.value,
        "created_at": to_timestamp(request.created_at),
        "updated_at": to_timestamp(request.updated_at),
        "version": request.version,
        "batch_id": request.batch_id,
        "sectigo_status": request.sectigo_status,
        "reason": request.reason,
        "submit_attempts": request.submit_attempts,
        "send_state": request.send_state.value,
        "last_send_at": to_timestamp(request.last_send_at),
        "serial_number": request.serial_number,
        "not_before": to_timestamp(request.not_before),
        "not_after": to_timestamp(request.not_after),
        "common_name": request.spec.common_name,
        "order_failures": request.order_failures,
        "order_error": request.order_error,
    }


def request_from_row(row: dict[str, Any]) -> CertificateRequest:
    created = from_timestamp(row["created_at"])
    updated = from_timestamp(row["updated_at"])
    assert created is not None and updated is not None
    return CertificateRequest(
        owner=row["owner"],
        request_id=row["request_id"],
        spec=_spec_from_json(row["spec"]),
        fingerprint=row["fingerprint"],
        batch_name=row["batch_name"],
        state=RequestState(row["state"]),
        created_at=created,
        updated_at=updated,
        version=int(row["version"]),
        batch_id=row["batch_id"],
        sectigo_status=row["sectigo_status"],
        reason=row["reason"],
        submit_attempts=int(row["submit_attempts"]),
        send_state=SendState(row.get("send_state") or SendState.NEVER.value),
        last_send_at=from_timestamp(row.get("last_send_at")),
        serial_number=row["serial_number"],
        not_before=from_timestamp(row["not_before"]),
        not_after=from_timestamp(row["not_after"]),
        order_failures=int(row.get("order_failures") or 0),
        order_error=row.get("order_error") or "",
    )


class Sealed:
    """Seals a request's secret columns, bound to (owner, request_id, column)."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    @staticmethod
    def _context(owner: str, request_id: str, column: str) -> str:
        return f"{owner}\0{request_id}\0{column}"

    def password(self, request: CertificateRequest, password: str | None) -> bytes | None:
        if password is None:
            return None
        context = self._context(request.owner, request.request_id, "pkcs12_password")
        return self._sealer.seal(password.encode(), context)

    def open_password(self, owner: str, request_id: str, sealed: bytes) -> str:
        context = self._context(owner, request_id, "pkcs12_password")
        return self._sealer.open(sealed, context).decode()

    def blob(self, request: CertificateRequest, column: str, data: bytes) -> bytes | None:
        if not data:
            return None
        return self._sealer.seal(data, self._context(request.owner, request.request_id, column))

    def open_blob(self, owner: str, request_id: str, column: str, sealed: bytes | None) -> bytes:
        if sealed is None:
            return b""
        return self._sealer.open(bytes(sealed), self._context(owner, request_id, column))

    def certificate_values(
        self, request: CertificateRequest, certificate: IssuedCertificate
    ) -> tuple[Any, ...]:
        """A ``certificates`` row: the key, the PEMs, and the key material sealed."""
        return (
            *request.key,
            certificate.certificate_pem,
            certificate.chain_pem,
            self.blob(request, "pkcs12", certificate.pkcs12),
            self.blob(request, "private_key", certificate.private_key_pem.encode()),
        )

    def certificate(self, owner: str, request_id: str, row: Mapping[str, Any]) -> IssuedCertificate:
        """The certificate of a ``CERTIFICATE_COLUMNS`` row, its key material opened."""
        return IssuedCertificate(
            certificate_pem=row["certificate_pem"],
            chain_pem=row["chain_pem"],
            pkcs12=self.open_blob(owner, request_id, "pkcs12", row["pkcs12"]),
            private_key_pem=self.open_blob(
                owner, request_id, "private_key", row["private_key"]
            ).decode(),
        )


def list_filter(query: ListQuery, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause (empty when nothing filters) and its parameters for a request listing;
    ``mark`` is the driver's placeholder (``?`` or ``%s``)."""
    clauses: list[str] = []
    params: list[Any] = []
    if query.owner is not None:
        clauses.append(f"owner = {mark}")
        params.append(query.owner)
    if query.states:
        clauses.append(f"state IN ({', '.join(mark for _ in query.states)})")
        params.extend(sorted(s.value for s in query.states))
    if query.common_name:
        clauses.append(f"lower(common_name) = lower({mark})")
        params.append(query.common_name)
    if query.after is not None:
        clauses.append(f"seq < {mark}")
        params.append(query.after)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def page(rows: Sequence[dict[str, Any]], limit: int) -> Page:
    """A page from up to ``limit + 1`` rows (newest first, with ``seq``): one more means a next
    page, whose cursor is the last shown row's ``seq``."""
    shown = rows[:limit]
    cursor = int(shown[-1]["seq"]) if len(rows) > limit and shown else None
    return Page([request_from_row(r) for r in shown], cursor, [int(r["seq"]) for r in shown])


def audit_values(entry: AuditEntry) -> tuple[Any, ...]:
    """An ``audit`` row in ``AUDIT_COLUMNS`` order."""
    return (
        to_timestamp(entry.at),
        entry.identity,
        entry.action,
        entry.owner,
        entry.request_id,
        entry.detail,
    )


def audit_filter(owner: str | None, request_id: str | None, mark: str) -> tuple[str, list[Any]]:
    """The WHERE clause and parameters of an audit read; ``mark`` is the placeholder."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("owner", owner), ("request_id", request_id)):
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def audit_from_row(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        at=from_timestamp(row["at"]) or dt.datetime.now(dt.UTC),
        identity=row["identity"],
        action=row["action"],
        owner=row["owner"],
        request_id=row["request_id"],
        detail=row["detail"],
    )


def snapshot_json(request: CertificateRequest) -> str:
    """A request's non-secret columns as JSON, for the change history that Watch replays."""
    return json.dumps(request_values(request), sort_keys=True)


def snapshot_from_json(text: str) -> CertificateRequest:
    return request_from_row(json.loads(text))
