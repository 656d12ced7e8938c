"""HTTP transport for the Sectigo API: the one place that owns the session and talks to the wire.

It holds a single :class:`requests.Session` shared by all threads. That is safe here because nothing
mutates it after construction: headers, timeouts and the bearer token are passed per request,
cookies are refused (the API authenticates with tokens, so the jar stays empty), and urllib3's
connection pool, sized by ``pool_size``, is thread-safe by design. Redirects are never followed.

Every call gets ``(connect, read)`` timeouts capped by the caller's deadline, is retried according
to :mod:`~sectigo_svc.sectigo.retry_policy`, turns error replies into typed exceptions, replays
once after a 401 with a re-authenticated token, and logs one structlog line per attempt with the
endpoint name, method, status, attempt, duration and Sectigo error code, never a secret.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol, TypeVar

import requests
import structlog
from requests.adapters import HTTPAdapter
from tenacity import Retrying, retry_if_exception

from sectigo_svc.sectigo.config import SectigoConfig
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.endpoints import Auth, Endpoint
from sectigo_svc.sectigo.error_mapping import error_from_response
from sectigo_svc.sectigo.errors import (
    ConnectionFailed,
    DeadlineExceeded,
    OutcomeUnknown,
    ServerError,
    Unauthenticated,
    UnexpectedResponse,
)
from sectigo_svc.sectigo.guard import check_environment
from sectigo_svc.sectigo.json_fields import SchemaError
from sectigo_svc.sectigo.observer import NoObserver, Observer
from sectigo_svc.sectigo.retry_policy import Backoff, GiveUp, connection_failure, should_retry

T = TypeVar("T")

JSON_TYPE = "application/json;charset=UTF-8"
# The shortest timeout worth starting an attempt with when the deadline is nearly spent.
MIN_TIMEOUT = 0.001


class TokenSource(Protocol):
    """Where bearer tokens come from (the credential store)."""

    def access_token(self, deadline: Deadline | None = None) -> str:
        """A usable access token, logging in or refreshing first if needed."""
        ...

    def invalidate(self, token: str) -> None:
        """Forget ``token`` because Sectigo rejected it; a no-op if it is no longer current."""
        ...


@dataclass(frozen=True)
class Body:
    """A request body and its Content-Type, built completely before sending (exact length)."""

    content: bytes
    content_type: str


Handler = Callable[[requests.Response], T]


class Transport:
    """Sends calls to one Sectigo endpoint; built only for endpoints the environment allows."""

    def __init__(
        self,
        config: SectigoConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        logger: Any = None,
        observer: Observer | None = None,
    ) -> None:
        check_environment(config.endpoint, config.environment)
        self._observer: Observer = observer if observer is not None else NoObserver()
        self._config = config
        self._base_url = config.base_url
        self._session = session if session is not None else self._new_session(config)
        self._sleep = sleep
        self._log = logger if logger is not None else structlog.get_logger("sectigo_svc.sectigo")
        self._backoff = Backoff(config.backoff_initial, config.backoff_max)

    @staticmethod
    def _new_session(config: SectigoConfig) -> requests.Session:
        session = requests.Session()
        session.trust_env = config.trust_env
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        session.headers["User-Agent"] = config.user_agent
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=config.pool_size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    @property
    def config(self) -> SectigoConfig:
        return self._config

    @property
    def observer(self) -> Observer:
        """Who is told about every attempt (shared with the credential store)."""
        return self._observer

    @property
    def logger(self) -> Any:
        """The structlog logger calls are reported to (shared with the credential store)."""
        return self._log

    def close(self) -> None:
        """Close pooled connections; the transport must not be used afterwards."""
        self._session.close()

    def call(
        self,
        endpoint: Endpoint,
        handle: Handler[T],
        *,
        ids: Mapping[str, int] | None = None,
        params: Mapping[str, str] | None = None,
        body: Body | None = None,
        accept: str = JSON_TYPE,
        tokens: TokenSource | None = None,
        deadline: Deadline | None = None,
        stream: bool = False,
        redact: Sequence[str] = (),
    ) -> T:
        """Send ``endpoint`` (with retries) and return what ``handle`` makes of the 2xx reply.

        With ``tokens``, the call carries a bearer token; a 401 invalidates it, fetches a new one
        (refresh or login, once for all threads) and replays the call exactly once. ``redact``
        lists secrets to scrub from any server message that ends up in an exception.
        """
        url = self._base_url + endpoint.render(**(ids or {}))
        request = _Request(endpoint, url, params, body, accept, stream, tuple(redact))
        if tokens is None or endpoint.auth is not Auth.BEARER:
            return self._with_retries(request, handle, None, deadline)
        token = tokens.access_token(deadline)
        try:
            return self._with_retries(request, handle, token, deadline)
        except Unauthenticated:
            self._log.info("sectigo token rejected, re-authenticating", endpoint=endpoint.name)
            tokens.invalidate(token)
            token = tokens.access_token(deadline)
            return self._with_retries(request, handle, token, deadline)

    def _with_retries(
        self,
        request: _Request,
        handle: Handler[T],
        token: str | None,
        deadline: Deadline | None,
    ) -> T:
        endpoint = request.endpoint
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: should_retry(endpoint, exc)),
            wait=self._backoff,
            stop=GiveUp(self._config.max_attempts, self._config.max_retry_after, deadline),
            sleep=self._sleep,
            reraise=True,
        )
        attempts = itertools.count(1)
        try:
            return retrying(lambda: self._attempt(request, handle, token, deadline, next(attempts)))
        except ConnectionFailed as exc:
            if endpoint.mutating and exc.sent:
                raise OutcomeUnknown(
                    endpoint.name, endpoint.method, f"no answer after sending ({exc.reason})"
                ) from exc
            if deadline is not None and deadline.expired():
                # The timeout was the caller's deadline, not Sectigo being unreachable.
                raise DeadlineExceeded(endpoint.name) from exc
            raise
        except ServerError as exc:
            if endpoint.mutating:
                raise OutcomeUnknown(
                    endpoint.name, endpoint.method, f"HTTP {exc.status}: {exc.message}", exc.status
                ) from exc
            raise

    def _attempt(
        self,
        request: _Request,
        handle: Handler[T],
        token: str | None,
        deadline: Deadline | None,
        attempt: int,
    ) -> T:
        endpoint = request.endpoint
        timeout = self._timeouts(endpoint, deadline)
        headers = {"Accept": request.accept}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if request.body is not None:
            headers["Content-Type"] = request.body.content_type
        started = time.perf_counter()
        status: int | None = None
        failure: BaseException | None = None
        try:
            response = self._session.request(
                endpoint.method,
                request.url,
                params=request.params,
                data=request.body.content if request.body is not None else None,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                stream=request.stream,
            )
            with response:
                status = response.status_code
                if not 200 <= status < 300:
                    secrets = (*request.redact, token) if token else request.redact
                    raise error_from_response(response, endpoint, secrets)
                return handle(response)
        except requests.RequestException as exc:
            failure = connection_failure(exc, endpoint)
            raise failure from exc
        except SchemaError as exc:
            failure = UnexpectedResponse(endpoint.name, str(exc))
            raise failure from exc
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._log_attempt(endpoint, status, attempt, started, failure)

    def _timeouts(self, endpoint: Endpoint, deadline: Deadline | None) -> tuple[float, float]:
        connect, read = self._config.connect_timeout, self._config.read_timeout
        if deadline is None:
            return connect, read
        remaining = deadline.remaining()
        if remaining <= 0:
            raise DeadlineExceeded(endpoint.name)
        return max(MIN_TIMEOUT, min(connect, remaining)), max(MIN_TIMEOUT, min(read, remaining))

    def _log_attempt(
        self,
        endpoint: Endpoint,
        status: int | None,
        attempt: int,
        started: float,
        failure: BaseException | None,
    ) -> None:
        seconds = time.perf_counter() - started
        error = type(failure).__name__ if failure is not None else None
        self._observer.sectigo_call(endpoint.name, status, attempt, seconds, error)
        fields: dict[str, Any] = {
            "endpoint": endpoint.name,
            "method": endpoint.method,
            "status": status,
            "attempt": attempt,
            "duration_ms": round(seconds * 1000, 1),
            "error_code": getattr(failure, "error_code", None),
        }
        if failure is None:
            self._log.info("sectigo call", **fields)
            return
        fields["error"] = error
        if isinstance(failure, ConnectionFailed):
            fields["sent"] = failure.sent
        self._log.warning("sectigo call", **fields)


@dataclass(frozen=True)
class _Request:
    """Everything needed to send one call again, identically."""

    endpoint: Endpoint
    url: str
    params: Mapping[str, str] | None
    body: Body | None
    accept: str
    stream: bool
    redact: tuple[str, ...]
