"""Faults the emulator injects on demand, so that clients prove they survive them.

A rule matches requests by route name, fires with a probability, and can retire after a number of
hits. Rules are checked in the order they were added; the first one that fires decides the fault,
except ``latency``, which adds up and lets the request go on to the next rule.

``error``, ``throttle`` and ``drop`` answer instead of the handler: the request has no effect.
``slow``, ``lost`` and ``hang`` let the handler run (a batch is created, a licence is spent) and
then delay, lose or withhold its answer.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

FaultKind = Literal["latency", "error", "throttle", "drop", "hang", "slow", "lost"]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "latency",
    "error",
    "throttle",
    "drop",
    "hang",
    "slow",
    "lost",
)
# Kinds that let the request take effect and only then act on its answer.
AFTER_EFFECT_KINDS = frozenset({"hang", "slow", "lost"})

# Routes that stay reachable whatever the rules say, so tests and probes can always look.
EXEMPT_ROUTES = frozenset({"status", "crl", "ca"})


class FaultRuleError(ValueError):
    """A fault rule that cannot be understood; the message names the field."""


@dataclass(frozen=True)
class FaultRule:
    """One fault: what happens, to which routes, how often, how many times."""

    kind: FaultKind
    rate: float = 1.0
    count: int | None = None
    routes: tuple[str, ...] = ()
    latency_ms: int = 0
    status: int = 503
    retry_after: int = 1
    hang_seconds: float = 300.0
    id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FaultRuleError(f"kind: must be one of {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise FaultRuleError("rate: must be between 0 and 1")
        if self.count is not None and self.count < 1:
            raise FaultRuleError("count: must be at least 1 when given")
        if self.kind in ("latency", "slow") and self.latency_ms <= 0:
            raise FaultRuleError(f"latency_ms: must be positive for a {self.kind} rule")
        if self.kind == "error" and not 400 <= self.status <= 599:
            raise FaultRuleError("status: must be an HTTP error status (400-599)")
        if self.retry_after < 0:
            raise FaultRuleError("retry_after: must not be negative")
        if self.hang_seconds <= 0:
            raise FaultRuleError("hang_seconds: must be positive")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from the management API's JSON, refusing unknown fields."""
        allowed = {f for f in cls.__dataclass_fields__ if f != "id"}
        unknown = set(data) - allowed
        if unknown:
            raise FaultRuleError(f"{sorted(unknown)[0]}: unknown fault rule field")
        if "kind" not in data:
            raise FaultRuleError("kind: required")
        values = dict(data)
        routes = values.get("routes", ())
        if isinstance(routes, str) or not isinstance(routes, list | tuple):
            raise FaultRuleError("routes: must be a list of route names")
        values["routes"] = tuple(str(r) for r in routes)
        try:
            return cls(**values)
        except TypeError as exc:
            raise FaultRuleError(str(exc)) from exc

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["routes"] = list(self.routes)
        return data

    def matches(self, route: str) -> bool:
        return route not in EXEMPT_ROUTES and (not self.routes or route in self.routes)

    @property
    def takes_effect(self) -> bool:
        """Whether the request is processed when this rule fires (``hang``, ``slow``, ``lost``)."""
        return self.kind in AFTER_EFFECT_KINDS


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request: wait, then maybe answer with a fault instead."""

    delay_seconds: float = 0.0
    rule: FaultRule | None = None


CHAOS_PRESET: tuple[FaultRule, ...] = (
    FaultRule(kind="latency", latency_ms=25),
    FaultRule(kind="error", rate=0.05, status=503),
    FaultRule(kind="throttle", rate=0.03, retry_after=1),
    FaultRule(kind="drop", rate=0.01),
)


@dataclass
class FaultInjector:
    """The live set of rules; thread-safe, changed at run time by the management API."""

    rng: random.Random = field(default_factory=random.Random)
    _rules: list[FaultRule] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rules: Iterable[FaultRule]) -> list[FaultRule]:
        with self._lock:
            added = [replace(rule, id=next(self._ids)) for rule in rules]
            self._rules.extend(added)
            return added

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def decide(self, route: str) -> FaultDecision:
        """Roll the dice for one request, spending the count of every rule that fires."""
        delay = 0.0
        with self._lock:
            kept: list[FaultRule] = []
            chosen: FaultRule | None = None
            for rule in self._rules:
                fires = (
                    (chosen is None or rule.kind == "latency")
                    and rule.matches(route)
                    and self.rng.random() < rule.rate
                )
                if fires:
                    if rule.kind == "latency":
                        delay += rule.latency_ms / 1000.0
                    else:
                        chosen = rule
                    if rule.count is not None:
                        if rule.count > 1:
                            kept.append(replace(rule, count=rule.count - 1))
                        continue
                kept.append(rule)
            self._rules = kept
        return FaultDecision(delay_seconds=delay, rule=chosen)
