"""The interceptor every CertificateAuthority RPC passes through.

In order: fresh log context, the caller's identity from its verified certificate, the role the RPC
needs, the deadline for upstream work, then the handler; errors become gRPC statuses through the
one table in :mod:`sectigo_svc.rpc.status` (with RetryInfo, BadRequest and the retry pushback in
the trailers), and one log line records the call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import grpc
import structlog

from sectigo_svc.authz import Identity, IdentityError, Policy, Role, identity_from_pem
from sectigo_svc.domain.errors import (
    DeadlineExceeded,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from sectigo_svc.domain.service import Caller
from sectigo_svc.rpc import calls
from sectigo_svc.rpc.status import INTERNAL_MESSAGE, Outcome, outcome_of
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.store.base import StoreError

INSECURE_IDENTITY = "anonymous"
# When the service's own cap on upstream work ran out before the caller's deadline: come back after.
UPSTREAM_RETRY_SECONDS = 1.0
# Less time than this left for the caller means its own deadline is what ran out.
CALLER_DEADLINE_SLACK = 0.05
Behavior = Callable[[Any, grpc.ServicerContext], Any]


if TYPE_CHECKING:
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor


class CallInterceptor(_Interceptor):
    """Authenticates, authorizes, bounds, logs and maps errors for one service's RPCs.

    ``roles`` maps each RPC name to the role it needs; RPCs of other services (health,
    reflection) pass through untouched. At most ``max_streams`` server streams run at once: each
    holds an RPC thread for as long as it lasts, so without a cap a few watchers would leave no
    thread for any other call.
    """

    def __init__(
        self,
        service: str,
        roles: Mapping[str, Role],
        policy: Policy | None,
        insecure: bool,
        max_upstream_seconds: float,
        max_streams: int,
        observe: Callable[[str, str, float], None] = lambda method, code, seconds: None,
    ) -> None:
        self._prefix = f"/{service}/"
        self._roles = roles
        self._policy = policy
        self._insecure = insecure
        self._max_upstream = max_upstream_seconds
        self._max_streams = max_streams
        self._streams = threading.BoundedSemaphore(max_streams)
        self._observe = observe
        self._log = structlog.get_logger("sectigo_svc.rpc")

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or not method.startswith(self._prefix):
            return handler
        name = method.removeprefix(self._prefix)
        role = self._roles[name]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(name, role, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(name, role, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _begin(self, name: str, request: Any, context: grpc.ServicerContext) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            rpc=name, request_id=getattr(request, "request_id", "") or None
        )

    def _admit(self, role: Role, context: grpc.ServicerContext) -> Caller:
        identity = self._identity(context)
        structlog.contextvars.bind_contextvars(identity=identity.name)
        if self._policy is None:
            admin = True
        elif not self._policy.allows(identity, role):
            raise PermissionDenied(f"{identity.name} does not have the {role.value} role")
        else:
            admin = self._policy.is_admin(identity)
        remaining = context.time_remaining()
        seconds = self._max_upstream if remaining is None else min(remaining, self._max_upstream)
        calls.set_call(Caller(identity.name, admin), Deadline.after(seconds))
        return Caller(identity.name, admin)

    def _identity(self, context: grpc.ServicerContext) -> Identity:
        if self._insecure:
            return Identity(INSECURE_IDENTITY, (INSECURE_IDENTITY,))
        auth = cast(dict[str, list[bytes]], context.auth_context())
        certificates = auth.get("x509_pem_cert")
        if not certificates:
            raise Unauthenticated("a verified client certificate is required")
        try:
            return identity_from_pem(certificates[0])
        except IdentityError as exc:
            raise Unauthenticated(f"the client certificate names no identity: {exc}") from exc

    def _fail(self, exc: Exception, context: grpc.ServicerContext) -> Outcome:
        remaining = context.time_remaining()
        if isinstance(exc, DeadlineExceeded) and (
            remaining is None or remaining > CALLER_DEADLINE_SLACK
        ):
            # The service's cap on upstream work ran out, not the caller's deadline: Sectigo is
            # too slow now, which the caller should hear as such, with a time to come back.
            exc = Unavailable(
                f"{exc.message} (Sectigo did not answer within the service's limit of "
                f"{self._max_upstream:g} s)",
                retry_after=UPSTREAM_RETRY_SECONDS,
            )
        outcome = outcome_of(exc)
        if outcome is None:
            self._log.exception("rpc failed unexpectedly")
            outcome = Outcome(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
        elif isinstance(exc, StoreError):
            # The caller gets a generic UNAVAILABLE; the operator needs the store's own words.
            self._log.warning("request store failed", cause=str(exc))
        trailers = outcome.trailers(context.time_remaining())
        if trailers:
            context.set_trailing_metadata(trailers)
        return outcome

    def _finish(self, name: str, started: float, code: grpc.StatusCode, message: str = "") -> None:
        seconds = time.monotonic() - started
        self._observe(name, code.name, seconds)
        self._log.info(
            "rpc", code=code.name, duration_ms=round(seconds * 1000, 1), error=message or None
        )

    def _unary(self, name: str, role: Role, behavior: Behavior) -> Behavior:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.monotonic()
            self._begin(name, request, context)
            try:
                self._admit(role, context)
                response = behavior(request, context)
            except Exception as exc:  # every failure becomes a status here
                outcome = self._fail(exc, context)
                self._finish(name, started, outcome.code, outcome.message)
                context.abort(outcome.code, outcome.message)
            self._finish(name, started, grpc.StatusCode.OK)
            return response

        return handle

    def _stream(self, name: str, role: Role, behavior: Behavior) -> Behavior:
        def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.monotonic()
            self._begin(name, request, context)
            try:
                self._admit(role, context)
                if not self._streams.acquire(blocking=False):
                    raise ResourceExhausted(
                        f"{self._max_streams} streams are open already; retry later, or poll "
                        "GetCertificateRequest instead of watching"
                    )
                try:
                    yield from behavior(request, context)
                finally:
                    self._streams.release()
            except Exception as exc:  # every failure becomes a status here
                outcome = self._fail(exc, context)
                self._finish(name, started, outcome.code, outcome.message)
                context.abort(outcome.code, outcome.message)
            code = grpc.StatusCode.OK if context.is_active() else grpc.StatusCode.CANCELLED
            self._finish(name, started, code)

        return handle
