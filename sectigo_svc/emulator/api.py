"""The API listener's request pipeline: route, count, inject faults, authenticate, handle."""

from __future__ import annotations

import dataclasses
import logging
import threading

from sectigo_svc.emulator import errors
from sectigo_svc.emulator.faults import FaultInjector
from sectigo_svc.emulator.http import (
    ApiError,
    Drop,
    Hang,
    Reply,
    Request,
    Response,
    Route,
    Router,
)
from sectigo_svc.emulator.stats import Stats
from sectigo_svc.emulator.tokens import ACCESS_SCOPE, TokenIssuer, TokenRejected

log = logging.getLogger(__name__)


class SectigoApi:
    """Answers one API request. Faults act before the handler runs, except ``hang``, which lets
    the request take effect and then withholds the answer."""

    def __init__(
        self,
        router: Router,
        tokens: TokenIssuer,
        faults: FaultInjector,
        stats: Stats,
        stopping: threading.Event,
    ) -> None:
        self._router = router
        self._tokens = tokens
        self._faults = faults
        self._stats = stats
        self._stopping = stopping

    def dispatch(self, request: Request) -> Reply:
        try:
            route, params = self._router.match(request.method, request.path)
        except ApiError as exc:
            self._stats.response("unknown", exc.status)
            return exc.to_response()
        self._stats.request(route.name)
        decision = self._faults.decide(route.name)
        if decision.delay_seconds:
            self._stats.fault("latency")
            self._stopping.wait(decision.delay_seconds)
        rule = decision.rule
        if rule is not None and rule.kind != "hang":
            self._stats.fault(rule.kind)
            if rule.kind == "drop":
                return Drop()
            if rule.kind == "throttle":
                fault = ApiError(429, "Too many requests", errors.FAULT).to_response()
                fault = dataclasses.replace(
                    fault, headers=(("Retry-After", str(rule.retry_after)),)
                )
            else:
                fault = errors.injected(rule.status).to_response()
            self._stats.response(route.name, fault.status)
            return fault
        response = self._handle(route, dataclasses.replace(request, params=params))
        if rule is not None:
            self._stats.fault("hang")
            return Hang(rule.hang_seconds)
        self._stats.response(route.name, response.status)
        return response

    def _handle(self, route: Route, request: Request) -> Response:
        try:
            if route.authenticated:
                self._authenticate(request)
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
