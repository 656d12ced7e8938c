"""The API listener's request pipeline: route, journal, inject faults, admit, handle."""

from __future__ import annotations

import dataclasses
import logging
import threading

from sectigo_svc.emulator import errors
from sectigo_svc.emulator.faults import FaultInjector, FaultRule
from sectigo_svc.emulator.http import (
    ApiError,
    Drop,
    Hang,
    Lost,
    Reply,
    Request,
    Response,
    Route,
    Router,
)
from sectigo_svc.emulator.journal import DROPPED, HANG, LOST, Entry, Journal
from sectigo_svc.emulator.stats import Stats
from sectigo_svc.emulator.tokens import ACCESS_SCOPE, TokenIssuer, TokenRejected

log = logging.getLogger(__name__)


class SectigoApi:
    """Answers one API request, in this order:

    1. the request is journaled and the fault rules are rolled;
    2. ``error``, ``throttle`` and ``drop`` answer after any ``latency``, and nothing else runs;
    3. otherwise the request is admitted *on arrival*: the bearer token, or the route's own check
       (credentials, refresh token), is judged before any injected delay;
    4. after ``latency``, the handler runs (unless admission refused);
    5. ``slow`` sends its answer ``latency_ms`` later, ``lost`` resets the connection instead,
       ``hang`` withholds the answer.
    """

    def __init__(
        self,
        router: Router,
        tokens: TokenIssuer,
        faults: FaultInjector,
        stats: Stats,
        journal: Journal,
        stopping: threading.Event,
    ) -> None:
        self._router = router
        self._tokens = tokens
        self._faults = faults
        self._stats = stats
        self._journal = journal
        self._stopping = stopping

    def dispatch(self, request: Request) -> Reply:
        try:
            route, params = self._router.match(request.method, request.path)
        except ApiError as exc:
            entry = self._journal.arrive("unknown", request.method, request.path, None)
            self._stats.response("unknown", exc.status)
            self._journal.settle(entry, exc.status)
            return exc.to_response()
        request = dataclasses.replace(request, params=params)
        entry = self._journal.arrive(
            route.name, request.method, request.path, self._batch_name(route, request)
        )
        self._stats.request(route.name)
        decision = self._faults.decide(route.name)
        rule = decision.rule
        refusal = (
            None if rule is not None and not rule.takes_effect else self._admit(route, request)
        )
        if decision.delay_seconds:
            self._stats.fault("latency")
            self._stopping.wait(decision.delay_seconds)
        if rule is not None and not rule.takes_effect:
            return self._instead(route, rule, entry)
        response = refusal or self._handle(route, request)
        if rule is None:
            return self._answer(route, response, entry)
        self._stats.fault(rule.kind)
        if rule.kind == "slow":
            self._stopping.wait(rule.latency_ms / 1000.0)
            return self._answer(route, response, entry)
        if rule.kind == "lost":
            self._journal.settle(entry, LOST)
            return Lost()
        self._journal.settle(entry, HANG)
        return Hang(rule.hang_seconds)

    def _instead(self, route: Route, rule: FaultRule, entry: Entry) -> Reply:
        """The reply of a fault that stops the request before it has any effect."""
        self._stats.fault(rule.kind)
        if rule.kind == "drop":
            self._journal.settle(entry, DROPPED)
            return Drop()
        if rule.kind == "throttle":
            fault = ApiError(429, "Too many requests", errors.FAULT).to_response()
            fault = dataclasses.replace(fault, headers=(("Retry-After", str(rule.retry_after)),))
        else:
            fault = errors.injected(rule.status).to_response()
        return self._answer(route, fault, entry)

    def _answer(self, route: Route, response: Response, entry: Entry) -> Response:
        self._stats.response(route.name, response.status)
        self._journal.settle(entry, response.status)
        return response

    @staticmethod
    def _batch_name(route: Route, request: Request) -> str | None:
        if route.batch_name is None:
            return None
        try:
            return route.batch_name(request)
        except Exception:
            log.exception("emulator could not read the batch name of %s", request.path)
            return None

    def _admit(self, route: Route, request: Request) -> Response | None:
        """The refusal to send, or None when the request may go on to its handler."""
        try:
            if route.authenticated:
                self._authenticate(request)
            if route.admit is not None:
                route.admit(request)
        except ApiError as exc:
            return exc.to_response()
        except Exception:
            log.exception("emulator admission failed for %s %s", request.method, request.path)
            return errors.internal().to_response()
        return None

    def _handle(self, route: Route, request: Request) -> Response:
        try:
            return route.handler(request)
        except ApiError as exc:
            return exc.to_response()
        except Exception:
            log.exception("emulator handler failed for %s %s", request.method, request.path)
            return errors.internal().to_response()

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token.strip():
            raise errors.unauthorized("Authentication required: send a Bearer access token")
        try:
            self._tokens.verify(token.strip(), ACCESS_SCOPE)
        except TokenRejected as exc:
            raise errors.unauthorized(str(exc)) from exc
