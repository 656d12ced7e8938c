"""The emulator's settings: one frozen object, built once at start and passed in explicitly."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sectigo_svc.emulator.faults import FaultRule

StatusText = Literal["prose", "constant"]
Pkcs12Encryption = Literal["rc2", "3des", "aes"]
KeyType = Literal["rsa2048", "rsa4096", "ec256"]
AuthorityIds = Literal["profile", "distinct"]


class EmulatorConfigError(ValueError):
    """A setting that cannot work; the message names it."""


@dataclass(frozen=True)
class Account:
    """A Sectigo user. ``authorized`` false models correct credentials without authority (403)."""

    username: str
    password: str = field(repr=False)
    authorized: bool = True


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything the emulator can be told at start. See ``docs/emulator.md`` for the meaning.

    ``balances`` are (authority id, licences) pairs; an authority not named has 100.
    """

    host: str = "127.0.0.1"
    port: int = 8831
    management_port: int = 0
    state_dir: Path | None = None
    username: str = "tester"
    password: str = field(default="supersecretsquirrel", repr=False)
    unauthorized_users: tuple[Account, ...] = ()
    issue_delay: float = 0.0
    access_lifetime: int = 600
    refresh_lifetime: int = 7200
    authority_ids: AuthorityIds = "profile"
    balances: tuple[tuple[int, int], ...] = ()
    reject_common_names: tuple[str, ...] = ()
    status_text: StatusText = "prose"
    pkcs12_encryption: Pkcs12Encryption = "rc2"
    key_type: KeyType = "rsa2048"
    faults: tuple[FaultRule, ...] = ()
    stuck: bool = False
    ignore_list_filters: bool = False
    visibility_lag: float = 0.0
    clock_offset: float = 0.0

    def __post_init__(self) -> None:
        for name in ("port", "management_port"):
            value = getattr(self, name)
            if not 0 <= value <= 65535:
                raise EmulatorConfigError(f"{name}: {value} is not a TCP port")
        if not self.username or not self.password:
            raise EmulatorConfigError("username/password: both must be non-empty")
        if self.issue_delay < 0:
            raise EmulatorConfigError("issue_delay: must not be negative")
        if not 0 <= self.visibility_lag < math.inf:
            raise EmulatorConfigError("visibility_lag: must be a number of seconds >= 0")
        if not math.isfinite(self.clock_offset):
            raise EmulatorConfigError("clock_offset: must be a finite number of seconds")
        if self.access_lifetime < 1 or self.refresh_lifetime < 1:
            raise EmulatorConfigError("access_lifetime/refresh_lifetime: must be at least 1 s")
        for authority_id, balance in self.balances:
            if balance < 0:
                raise EmulatorConfigError(f"balance: authority {authority_id} is negative")
        for pattern in self.reject_common_names:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise EmulatorConfigError(f"reject_common_name: {pattern!r}: {exc}") from exc
        if self.status_text not in ("prose", "constant"):
            raise EmulatorConfigError("status_text: must be 'prose' or 'constant'")
        if self.pkcs12_encryption not in ("rc2", "3des", "aes"):
            raise EmulatorConfigError("pkcs12_encryption: must be rc2, 3des or aes")
        if self.authority_ids not in ("profile", "distinct"):
            raise EmulatorConfigError("authority_ids: must be 'profile' or 'distinct'")
        if self.key_type not in ("rsa2048", "rsa4096", "ec256"):
            raise EmulatorConfigError("key_type: must be rsa2048, rsa4096 or ec256")
