"""Row encoding shared by the store backends: columns, timestamps, the spec as JSON, sealing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sectigo_svc.domain.models import (
    CertificateRequest,
    IssueSpec,
    KeySource,
    RequestState,
    SendState,
    Subject,
)
from sectigo_svc.sealing import Sealer

REQUEST_COLUMNS = (
    "owner, request_id, spec, fingerprint, batch_name, state, created_at, updated_at, version, "
    "batch_id, sectigo_status, reason, submit_attempts, send_state, last_send_at, serial_number, "
    "not_before, not_after, common_name"
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


def snapshot_json(request: CertificateRequest) -> str:
    """A request's non-secret columns as JSON, for the change history that Watch replays."""
    return json.dumps(request_values(request), sort_keys=True)


def snapshot_from_json(text: str) -> CertificateRequest:
    return request_from_row(json.loads(text))
