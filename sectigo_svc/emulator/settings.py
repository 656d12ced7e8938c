"""The settings a test may change while the emulator runs, through the management API."""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class SettingsError(ValueError):
    """A run-time setting that cannot be applied; the message names it (never its value)."""


@dataclass(frozen=True)
class Settings:
    """``visibility_lag`` and ``clock_offset`` are seconds; ``password`` is the main account's."""

    access_lifetime: int
    refresh_lifetime: int
    issue_delay: float
    stuck: bool
    password: str = field(repr=False)
    ignore_list_filters: bool = False
    visibility_lag: float = 0.0
    clock_offset: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Every setting but the password, which is never shown."""
        data = asdict(self)
        del data["password"]
        return data


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _check(name: str, value: Any) -> None:
    if name in ("access_lifetime", "refresh_lifetime"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingsError(f"{name}: must be a whole number of seconds >= 1")
    elif name in ("issue_delay", "visibility_lag"):
        if not _number(value) or value < 0:
            raise SettingsError(f"{name}: must be a number of seconds >= 0")
    elif name == "clock_offset":
        if not _number(value):
            raise SettingsError("clock_offset: must be a number of seconds (may be negative)")
    elif name in ("stuck", "ignore_list_filters"):
        if not isinstance(value, bool):
            raise SettingsError(f"{name}: must be true or false")
    elif name == "password":
        if not isinstance(value, str) or not value:
            raise SettingsError("password: must be a non-empty string")
    else:
        raise SettingsError(f"{name}: unknown setting")


class LiveSettings:
    """Thread-safe holder of the current :class:`Settings`."""

    def __init__(self, initial: Settings) -> None:
        self._lock = threading.Lock()
        self._current = initial

    def get(self) -> Settings:
        with self._lock:
            return self._current

    def update(self, changes: dict[str, Any]) -> tuple[Settings, Settings]:
        """Apply a partial change; returns (before, after). Refuses unknown or bad values, and
        then changes nothing."""
        for name, value in changes.items():
            _check(name, value)
        with self._lock:
            before = self._current
            self._current = replace(before, **changes)
            return before, self._current
