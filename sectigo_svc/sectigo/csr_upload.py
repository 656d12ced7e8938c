"""The multipart body of a CSR batch upload, built byte for byte as Sectigo expects.

Parts, in order: ``profileId`` (the decimal id), ``csrBatchRequest`` (a JSON blob named ``blob``)
and ``files`` (the CSRs). The files part is labelled by what it holds: ``text/plain`` for PEM text
with one or more CSRs, ``application/zip`` for a ZIP of ``*.csr``/``*.pem`` files (the Go client
labelled both octet-stream, which Sectigo refuses for ZIPs). The whole body is built before sending
so ``Content-Length`` is exact.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from pathlib import PurePosixPath

from sectigo_svc.sectigo.errors import InvalidRequest
from sectigo_svc.sectigo.transport import Body

ZIP_MAGIC = b"PK\x03\x04"
PEM_CSR_MARKERS = (
    b"-----BEGIN CERTIFICATE REQUEST-----",
    b"-----BEGIN NEW CERTIFICATE REQUEST-----",
)
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def csr_content_type(data: bytes) -> str:
    """``application/zip`` or ``text/plain``; anything else is refused before sending."""
    if data.startswith(ZIP_MAGIC):
        return "application/zip"
    if any(marker in data for marker in PEM_CSR_MARKERS):
        return "text/plain"
    raise InvalidRequest("CSR upload: expected PEM certificate requests or a ZIP of them")


def upload_body(
    profile_id: int,
    csrs: bytes | str,
    *,
    filename: str | None = None,
    profile_params: Mapping[str, str] | None = None,
    batch_name: str | None = None,
    boundary: str | None = None,
) -> Body:
    """The complete multipart/form-data body and its Content-Type for ``POST /batches/upload``."""
    if isinstance(profile_id, bool) or not isinstance(profile_id, int) or profile_id < 0:
        raise InvalidRequest(f"profile_id: must be a non-negative integer, got {profile_id!r}")
    data = csrs.encode("utf-8") if isinstance(csrs, str) else csrs
    content_type = csr_content_type(data)
    default_name = "csrs.zip" if content_type == "application/zip" else "csrs.pem"
    name = _part_filename(filename) or default_name
    request: dict[str, object] = {
        "profileId": profile_id,
        "batchType": "BATCH",
        "profileParams": dict(profile_params or {}),
    }
    if batch_name:
        # Names the batch so that an upload whose answer was lost can be found again.
        request["batchName"] = batch_name
    marker = boundary or _fresh_boundary(data)
    parts = [
        (b'form-data; name="profileId"', None, str(profile_id).encode()),
        (
            b'form-data; name="csrBatchRequest"; filename="blob"',
            b"application/json",
            json.dumps(request).encode(),
        ),
        (f'form-data; name="files"; filename="{name}"'.encode(), content_type.encode(), data),
    ]
    chunks: list[bytes] = []
    for disposition, part_type, content in parts:
        chunks.append(b"--" + marker.encode() + b"\r\n")
        chunks.append(b"Content-Disposition: " + disposition + b"\r\n")
        if part_type is not None:
            chunks.append(b"Content-Type: " + part_type + b"\r\n")
        chunks.append(b"\r\n" + content + b"\r\n")
    chunks.append(b"--" + marker.encode() + b"--\r\n")
    return Body(b"".join(chunks), f"multipart/form-data; boundary={marker}")


def _part_filename(filename: str | None) -> str:
    """The base name only, restricted to characters that need no quoting in a header."""
    if not filename:
        return ""
    base = PurePosixPath(filename.replace("\\", "/")).name
    return _UNSAFE_NAME_CHARS.sub("_", base)


def _fresh_boundary(data: bytes) -> str:
    while True:
        boundary = f"sectigo-svc-{secrets.token_hex(16)}"
        if boundary.encode() not in data:
            return boundary
