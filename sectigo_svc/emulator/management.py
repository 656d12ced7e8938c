"""The test-only management API: fault rules, run-time settings, counters, the request journal,
the batch ledger's summary, key rotation."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from typing import Any

from sectigo_svc.emulator.faults import FaultInjector, FaultRule, FaultRuleError
from sectigo_svc.emulator.http import ApiError, Reply, Request, Response, Router
from sectigo_svc.emulator.journal import Journal
from sectigo_svc.emulator.ledger import Ledger
from sectigo_svc.emulator.settings import LiveSettings, SettingsError
from sectigo_svc.emulator.stats import Stats
from sectigo_svc.emulator.tokens import TokenIssuer


def _error(status: int) -> Callable[[str], ApiError]:
    return lambda message: ApiError(status, message, -1)


class Management:
    def __init__(
        self,
        faults: FaultInjector,
        settings: LiveSettings,
        ledger: Ledger,
        stats: Stats,
        tokens: TokenIssuer,
        journal: Journal,
    ) -> None:
        self._faults = faults
        self._settings = settings
        self._ledger = ledger
        self._stats = stats
        self._tokens = tokens
        self._journal = journal
        # Two PATCHes must not hand ``stuck`` to the ledger in the other order than they set it.
        self._patching = threading.Lock()
        self._router = Router(_error(404), _error(405))
        self._router.add("faults", "GET", "/faults", self.get_faults, False)
        self._router.add("add_faults", "POST", "/faults", self.add_faults, False)
        self._router.add("clear_faults", "DELETE", "/faults", self.clear_faults, False)
        self._router.add("remove_fault", "DELETE", "/faults/{rule_id}", self.remove_fault, False)
        self._router.add("settings", "PATCH", "/settings", self.patch_settings, False)
        self._router.add("stats", "GET", "/stats", self.get_stats, False)
        self._router.add("rotate", "POST", "/rotate-signing-key", self.rotate, False)
        self._router.add("journal", "GET", "/journal", self.get_journal, False)
        self._router.add("clear_journal", "DELETE", "/journal", self.clear_journal, False)
        self._router.add("batches", "GET", "/batches", self.get_batches, False)

    def dispatch(self, request: Request) -> Reply:
        try:
            route, params = self._router.match(request.method, request.path)
            return route.handler(dataclasses.replace(request, params=params))
        except ApiError as exc:
            return Response.json(exc.status, {"error": exc.message})

    def _body(self, request: Request) -> Any:
        try:
            return json.loads(request.body or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"malformed JSON: {exc}", -1) from exc

    def _state(self) -> dict[str, Any]:
        return {
            "rules": [rule.to_json() for rule in self._faults.rules()],
            "settings": self._settings.get().to_json(),
        }

    def get_faults(self, _: Request) -> Response:
        return Response.json(200, self._state())

    def add_faults(self, request: Request) -> Response:
        body = self._body(request)
        raw = body.get("rules", [body]) if isinstance(body, dict) else None
        if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
            raise ApiError(400, 'send a rule object or {"rules": [rule, ...]}', -1)
        try:
            rules = [FaultRule.from_json(r) for r in raw]
        except FaultRuleError as exc:
            raise ApiError(400, str(exc), -1) from exc
        added = self._faults.add(rules)
        return Response.json(201, {"rules": [rule.to_json() for rule in added]})

    def clear_faults(self, _: Request) -> Response:
        self._faults.clear()
        return Response.json(200, self._state())

    def remove_fault(self, request: Request) -> Response:
        raw = request.params["rule_id"]
        if not raw.isdigit() or not self._faults.remove(int(raw)):
            raise ApiError(404, f"no fault rule {raw}", -1)
        return Response.json(200, self._state())

    def patch_settings(self, request: Request) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "send an object of settings", -1)
        with self._patching:
            try:
                _, after = self._settings.update(body)
            except SettingsError as exc:
                raise ApiError(400, str(exc), -1) from exc
            self._ledger.set_stuck(after.stuck)
        return Response.json(200, self._state())

    def get_stats(self, _: Request) -> Response:
        return Response.json(200, self._stats.to_json())

    def rotate(self, _: Request) -> Response:
        self._tokens.rotate()
        return Response.json(200, {"rotated": True})

    def get_journal(self, request: Request) -> Response:
        return Response.json(200, self._journal.to_json(request.query.get("route", [])))

    def clear_journal(self, _: Request) -> Response:
        self._journal.clear()
        return Response.json(200, self._journal.to_json())

    def get_batches(self, _: Request) -> Response:
        return Response.json(200, {"batches": self._ledger.summary()})
