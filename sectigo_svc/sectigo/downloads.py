"""Receiving a batch ZIP safely: checked, size-bounded, and written atomically.

The Go client saved whatever came back (error pages included) under a server-chosen path. Here the
reply must be a 2xx (the transport ensures that), labelled as a ZIP or octet-stream, start with a
ZIP signature and stay under a size limit. A file download streams into a temporary file in the
target directory and is renamed into place only when complete, under a safe base name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from sectigo_svc.sectigo.http_headers import parse_media_type, safe_download_name
from sectigo_svc.sectigo.json_fields import SchemaError

ZIP_TYPES = frozenset(
    {
        "application/zip",
        "application/octet-stream",
        "application/x-zip-compressed",
        "application/x-zip",
    }
)
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
CHUNK = 64 * 1024


def bytes_download(limit: int) -> Callable[[requests.Response], bytes]:
    """A handler returning the ZIP's bytes."""

    def handle(response: requests.Response) -> bytes:
        return b"".join(_checked_chunks(response, limit))

    return handle


def file_download(
    directory: Path, fallback_name: str, limit: int
) -> Callable[[requests.Response], Path]:
    """A handler writing the ZIP into ``directory`` and returning its final path.

    The name is the Content-Disposition file name when it is a plain ``*.zip`` base name, else
    ``fallback_name``. An existing file of that name is replaced atomically.
    """

    def handle(response: requests.Response) -> Path:
        target = directory / safe_download_name(
            response.headers.get("Content-Disposition"), fallback_name
        )
        fd, temp_name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=directory)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as handle_out:
                for chunk in _checked_chunks(response, limit):
                    handle_out.write(chunk)
                handle_out.flush()
                os.fsync(handle_out.fileno())
            temp.replace(target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return target

    return handle


def _checked_chunks(response: requests.Response, limit: int) -> Iterator[bytes]:
    media = parse_media_type(response.headers.get("Content-Type"))
    if media.essence not in ZIP_TYPES:
        raise SchemaError(f"expected a ZIP download, got {media.essence or 'no content type'}")
    size = 0
    head = b""
    for chunk in response.iter_content(CHUNK):
        size += len(chunk)
        if size > limit:
            raise SchemaError(f"download larger than the {limit}-byte limit")
        if len(head) < 4:
            head += chunk[: 4 - len(head)]
            if len(head) == 4 and not head.startswith(ZIP_SIGNATURES):
                raise SchemaError("download is not a ZIP archive")
        yield chunk
    if not head.startswith(ZIP_SIGNATURES):
        raise SchemaError("download is not a ZIP archive")
