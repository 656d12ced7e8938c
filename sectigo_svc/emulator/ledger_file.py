"""The ledger's events on disk: one JSON object per line, appended, in the state directory.

The file is created owner-only (0600): it holds issued keys and PKCS#12 passwords, as Sectigo's
own database would. A line cut short by a crash is dropped when the file is opened again.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

FILE_NAME = "ledger.jsonl"


class LedgerFileError(ValueError):
    """The file holds a line that is not a ledger event; the message names the line."""


class LedgerFile:
    """Appends events and reads them back in order; every method is thread-safe."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = state_dir / FILE_NAME
        self._lock = threading.Lock()
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._file = os.fdopen(descriptor, "r+b")
        self._drop_torn_tail()

    def _drop_torn_tail(self) -> None:
        data = self._file.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            self._file.truncate(end)
        self._file.seek(end)

    def events(self) -> list[dict[str, Any]]:
        """Every event written so far, oldest first."""
        with self._lock:
            self._file.seek(0)
            lines = self._file.read().splitlines()
            self._file.seek(0, os.SEEK_END)
        events = []
        for number, line in enumerate(lines, start=1):
            try:
                event = json.loads(line)
            except ValueError as exc:
                raise LedgerFileError(f"{self.path}: line {number} is not JSON") from exc
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise LedgerFileError(f"{self.path}: line {number} is not a ledger event")
            events.append(event)
        return events

    def append(self, event: dict[str, Any]) -> None:
        """Write one event; it is in the file (not yet necessarily on disk) when this returns."""
        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
