"""What ``sectigo-ca`` prints: JSON for machines, aligned tables and lists for people, progress.

Results go to stdout, progress and errors to stderr, so that ``--json`` output always parses.
Fields declared ``repr=False`` (passwords, keys, PKCS#12 bytes) are never printed, in either form.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from sectigo_client.errors import (
    CertificateAuthorityError,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from sectigo_client.models import (
    Authority,
    CertificateRecord,
    FoundCertificate,
    Licenses,
    Profile,
    ProfileSummary,
    RequestState,
    Revocation,
    RevocationReason,
    SavedFiles,
)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as objects without their secret fields, enums by
    name, times in ISO 8601, paths as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def to_json(value: Any, lines: bool = False) -> str:
    """One JSON document (indented), or one compact line for JSON Lines streams."""
    return json.dumps(plain(value), indent=None if lines else 2)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; ``(none)`` when there are no rows."""
    cells = [[_cell(v) for v in row] for row in rows]
    if not cells:
        return "(none)"
    widths = [max(len(r[i]) for r in [list(headers), *cells]) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [list(headers), *cells]
    ]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, tuple | list):
        return ",".join(map(_cell, value)) or "-"
    return str(value) if value != "" else "-"


def fields(pairs: Iterable[tuple[str, object]]) -> str:
    """``name: value`` lines, names aligned."""
    listed = list(pairs)
    width = max(len(name) for name, _ in listed)
    return "\n".join(f"{name + ':':<{width + 1}} {_cell(value)}" for name, value in listed)


def record(value: CertificateRecord) -> str:
    return fields(
        [
            ("request id", value.request_id),
            ("owner", value.owner),
            ("state", value.state),
            ("reason", value.reason),
            ("key source", value.key_source),
            ("common name", value.common_name),
            ("dns names", value.dns_names),
            ("authority", value.authority_id),
            ("profile", value.profile_id),
            ("batch", f"{value.batch_id} {value.batch_name}" if value.batch_id else None),
            ("sectigo status", value.sectigo_status),
            ("serial number", value.serial_number),
            ("created", value.create_time),
            ("updated", value.update_time),
            ("not before", value.not_before),
            ("not after", value.not_after),
        ]
    )


def records(values: Iterable[CertificateRecord], with_owner: bool) -> str:
    headers = ["REQUEST ID", "STATE", "COMMON NAME", "SERIAL", "UPDATED"]
    rows: list[list[object]] = []
    for v in values:
        row: list[object] = [v.request_id, v.state, v.common_name, v.serial_number, v.update_time]
        rows.append([*row, v.owner] if with_owner else row)
    return table([*headers, "OWNER"] if with_owner else headers, rows)


def state_line(value: CertificateRecord) -> str:
    """One line per version: ``request-id  STATE  reason``."""
    return f"{value.request_id}  {value.state.name}  {value.reason}".rstrip()


def saved(value: SavedFiles) -> str:
    paths = [
        value.certificate,
        value.chain,
        value.key,
        value.pkcs12,
        value.sectigo_pkcs12,
        value.pkcs12_password,
    ]
    written = "\n".join(f"  {path}" for path in paths if path is not None)
    head = f"certificate {value.serial_number} written to {value.directory}:\n{written}"
    if value.state in _NOT_VALID:
        head += f"\nwarning: the request is {value.state.name}: {_NOT_VALID[value.state]}"
    return head


_NOT_VALID = {
    RequestState.ON_HOLD: "the certificate is on hold (on the CRL) until removed from the CRL",
    RequestState.REVOKED: "the certificate is revoked",
}


def revocation(value: Revocation) -> str:
    owner = f" (request {value.record.request_id})" if value.record else ""
    if value.reason is RevocationReason.CERTIFICATE_HOLD:
        return f"put {value.serial_number} on hold{owner}"
    if value.reason is RevocationReason.REMOVE_FROM_CRL:
        return f"removed {value.serial_number} from the CRL{owner}"
    return f"revoked {value.serial_number}{owner}"


def found(values: Sequence[FoundCertificate]) -> str:
    return table(
        ["SERIAL", "COMMON NAME", "STATUS", "DEVICE", "CREATED"],
        [(v.serial_number, v.common_name, v.status, v.device_id, v.create_time) for v in values],
    )


def authorities(values: Sequence[Authority]) -> str:
    return table(
        ["ID", "PROFILE", "PROFILE NAME", "ECOSYSTEM", "BALANCE", "ENABLED"],
        [
            (v.id, v.profile_id, v.profile_name, v.ecosystem_name, v.balance, v.enabled)
            for v in values
        ],
    )


def licenses(value: Licenses) -> str:
    return fields([("ordered", value.ordered), ("issued", value.issued)])


def profiles(values: Sequence[ProfileSummary]) -> str:
    return table(
        ["PROFILE", "ALGORITHMS", "CA"], [(v.profile_id, v.algorithms, v.ca) for v in values]
    )


def profile(value: Profile) -> str:
    head = fields(
        [("profile", value.profile_id), ("name", value.name), ("keys", value.key_algorithm_info)]
    )
    parameters = table(
        ["PARAMETER", "REQUIRED", "TYPE", "PATTERN"],
        [(p.name, p.required, p.input_type, p.validation_pattern) for p in value.parameters],
    )
    return f"{head}\n\n{parameters}"


def error(exc: CertificateAuthorityError) -> str:
    """One line: the code, the message, the field or retry hint when the server gave one, and
    the notes a command added (e.g. the request id to retry with)."""
    extra = ""
    if isinstance(exc, InvalidArgument) and exc.field:
        extra = f" (field: {exc.field})"
    if exc.retry_after is not None:
        extra = f" (retry after {exc.retry_after:g} s)"
    extra += "".join(f" ({note})" for note in _notes(exc))
    return " ".join(str(exc).split()) + extra


def error_json(exc: CertificateAuthorityError) -> str:
    body: dict[str, object] = {
        "code": exc.code.name if exc.code else type(exc).__name__,
        "message": exc.message,
    }
    if isinstance(exc, InvalidArgument):
        body["field"] = exc.field
    if isinstance(exc, Unavailable | ResourceExhausted):
        body["retry_after"] = exc.retry_after
    if notes := _notes(exc):
        body["notes"] = notes
    return json.dumps({"error": body})


def _notes(exc: BaseException) -> list[str]:
    """The notes added with ``add_note`` (the attribute exists only once one was added)."""
    return list(getattr(exc, "__notes__", ()))


class Progress:
    """Shows a request's states while waiting: on a terminal one line redrawn in place, with the
    time waited; elsewhere one plain line per change (fit for logs)."""

    def __init__(
        self,
        stream: TextIO,
        interactive: bool,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        self._stream = stream
        self._interactive = interactive
        self._clock = clock
        self._width = width or shutil.get_terminal_size().columns
        self._started = clock()
        self._drawn = 0

    def __call__(self, value: CertificateRecord) -> None:
        if not self._interactive:
            self._stream.write(state_line(value) + "\n")
        else:
            waited = self._clock() - self._started
            state = f"{value.request_id}: {value.state.name} after {waited:.0f} s"
            text = f"{state}  {value.reason}".rstrip()[: self._width - 1]  # must not wrap
            self._stream.write("\r" + text.ljust(self._drawn))
            self._drawn = len(text)
        self._stream.flush()

    def finish(self) -> None:
        """End the redrawn line, if any."""
        if self._interactive and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
