"""Whole-file writes that readers never see half done, with the file's mode set from the start.

Used for everything secret the service writes (token cache, keys): a crash leaves the old file or
the new one, and a private file is never readable by others, not even for an instant.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int) -> Path:
    """Replace ``path`` with ``data`` (a temporary file in the same directory, synced, renamed)."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
