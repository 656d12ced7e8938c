"""The settings a test may change while the emulator runs, through the management API."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from typing import Any


class SettingsError(ValueError):
    """A run-time setting that cannot be applied; the message names it."""


@dataclass(frozen=True)
class Settings:
    access_lifetime: int
    refresh_lifetime: int
    issue_delay: float
    stuck: bool
    ignore_list_filters: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class LiveSettings:
    """Thread-safe holder of the current :class:`Settings`."""

    def __init__(self, initial: Settings) -> None:
        self._lock = threading.Lock()
        self._current = initial

    def get(self) -> Settings:
        with self._lock:
            return self._current

    def update(self, changes: dict[str, Any]) -> tuple[Settings, Settings]:
        """Apply a partial change; returns (before, after). Refuses unknown or bad values."""
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("access_lifetime", "refresh_lifetime"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise SettingsError(f"{name}: must be a whole number of seconds >= 1")
            elif name == "issue_delay":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise SettingsError("issue_delay: must be a number of seconds >= 0")
            elif name in ("stuck", "ignore_list_filters"):
                if not isinstance(value, bool):
                    raise SettingsError(f"{name}: must be true or false")
            else:
                raise SettingsError(f"{name}: unknown setting")
            checked[name] = value
        with self._lock:
            before = self._current
            self._current = replace(before, **checked)
            return before, self._current
