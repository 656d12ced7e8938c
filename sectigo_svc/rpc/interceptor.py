"""The interceptor every CertificateAuthority RPC passes through.

In order: fresh log context, the API version the caller states (:mod:`sectigo_svc.rpc.api_version`),
the caller's identity from its verified certificate, the role the RPC
needs, the deadline for upstream work, a request that could not be decoded refused, a turn or a
slot from :mod:`sectigo_svc.rpc.admission` (which also picks the thread pool), then the handler;
errors become gRPC statuses through the one table in :mod:`sectigo_svc.rpc.status` (with
RetryInfo, BadRequest and the retry pushback in the trailers), and one log line records the call.
Text the caller chose (request id, identity, error messages quoting the request) is clipped
before it is logged.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import grpc
import structlog
from google.protobuf import descriptor_pool

from sectigo_svc.authz import Identity, IdentityError, Policy, Role, identity_from_pem
from sectigo_svc.domain.errors import (
    DeadlineExceeded,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from sectigo_svc.domain.service import Caller
from sectigo_svc.rpc import calls
from sectigo_svc.rpc.admission import Admission, Turn
from sectigo_svc.rpc.api_version import ApiVersions
from sectigo_svc.rpc.status import INTERNAL_MESSAGE, Outcome, outcome_of
from sectigo_svc.rpc.undecodable import Undecodable, lenient
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.store.base import StoreError

INSECURE_IDENTITY = "anonymous"
# When the service's own cap on upstream work ran out before the caller's deadline: come back after.
UPSTREAM_RETRY_SECONDS = 1.0
# Less time than this left for the caller means its own deadline is what ran out.
CALLER_DEADLINE_SLACK = 0.25
# Longest caller-chosen text (request id, identity) and error message put into a log line.
LOGGED_TEXT_LIMIT = 256
LOGGED_MESSAGE_LIMIT = 1024
LOGGED_TRACEBACK_LIMIT = 16_384
Behavior = Callable[[Any, grpc.ServicerContext], Any]


if TYPE_CHECKING:
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor


class CallInterceptor(_Interceptor):
    """Authenticates, authorizes, bounds, logs and maps errors for one service's RPCs.

    ``roles`` maps each RPC name to the role it needs; RPCs of other services (health,
    reflection) pass through untouched. ``admission`` decides which calls get a thread: streams
    within their share, calls that wait on Sectigo within theirs.
    """

    def __init__(
        self,
        service: str,
        roles: Mapping[str, Role],
        policy: Policy | None,
        insecure: bool,
        max_upstream_seconds: float,
        admission: Admission,
        observe: Callable[[str, str, float], None] = lambda method, code, seconds: None,
        versions: ApiVersions | None = None,
    ) -> None:
        self._prefix = f"/{service}/"
        self._roles = roles
        self._policy = policy
        self._insecure = insecure
        self._max_upstream = max_upstream_seconds
        self._admission = admission
        self._inputs = {
            method.name: method.input_type
            for method in descriptor_pool.Default().FindServiceByName(service).methods
        }
        self._observe = observe
        self._versions = versions if versions is not None else ApiVersions()
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
        deserializer = lenient(handler.request_deserializer, self._inputs[name])
        if handler.unary_unary is not None:
            turn = self._admission.arrive(name)
            return grpc.unary_unary_rpc_method_handler(
                self._admission.placed(self._unary(name, role, handler.unary_unary, turn), turn),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(name, role, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _begin(self, name: str, request: Any, context: grpc.ServicerContext) -> None:
        structlog.contextvars.clear_contextvars()
        request_id = getattr(request, "request_id", "")
        structlog.contextvars.bind_contextvars(
            rpc=name, request_id=clip(request_id, LOGGED_TEXT_LIMIT) or None
        )

    def _admit(self, role: Role, request: Any, context: grpc.ServicerContext) -> Caller:
        """The caller, allowed ``role``, with its deadline set for the handler; a request that
        could not be decoded is refused only now, so that a stranger learns nothing from it."""
        self._versions.check(context.invocation_metadata())
        identity = self._identity(context)
        structlog.contextvars.bind_contextvars(identity=clip(identity.name, LOGGED_TEXT_LIMIT))
        if self._policy is None:
            admin = True
        elif not self._policy.allows(identity, role):
            raise PermissionDenied(f"{identity.name} does not have the {role.value} role")
        else:
            admin = self._policy.is_admin(identity)
        remaining = context.time_remaining()
        seconds = self._max_upstream if remaining is None else min(remaining, self._max_upstream)
        calls.set_call(Caller(identity.name, admin), Deadline.after(seconds))
        if isinstance(request, Undecodable):
            raise InvalidArgument(request.field, request.reason)
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
            self._log.error(
                "rpc failed unexpectedly",
                error=clip(f"{type(exc).__name__}: {exc}", LOGGED_MESSAGE_LIMIT),
                traceback=clip("".join(traceback.format_exception(exc)), LOGGED_TRACEBACK_LIMIT),
            )
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
            "rpc",
            code=code.name,
            duration_ms=round(seconds * 1000, 1),
            error=clip(message, LOGGED_MESSAGE_LIMIT) or None,
        )

    def _unary(self, name: str, role: Role, behavior: Behavior, turn: Turn) -> Behavior:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.monotonic()
            self._begin(name, request, context)
            try:
                self._admit(role, request, context)
                self._admission.begin(turn)
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
                caller = self._admit(role, request, context)
                with self._admission.stream(caller.identity):
                    yield from behavior(request, context)
            except Exception as exc:  # every failure becomes a status here
                outcome = self._fail(exc, context)
                self._finish(name, started, outcome.code, outcome.message)
                context.abort(outcome.code, outcome.message)
            code = grpc.StatusCode.OK if context.is_active() else grpc.StatusCode.CANCELLED
            self._finish(name, started, code)

        return handle


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text) - limit} more characters)"
