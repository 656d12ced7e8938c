"""HTTP transport for the Sectigo API: the one place that owns the session and talks to the wire.

It holds a single :class:`requests.Session` shared by all threads. That is safe here because nothing
mutates it after construction: headers, timeouts and the bearer token are passed per request,
cookies are refused (the API authenticates with tokens, so the jar stays empty), and urllib3's
connection pool, sized by ``pool_size``, is thread-safe by design. Redirects are never followed.

Every call gets ``(connect, read)`` timeouts capped by the caller's deadline, is retried according
to :mod:`~sectigo_svc.sectigo.retry_policy`, turns error replies into typed exceptions, replays
once after a 401 with a re-authenticated token, and logs one structlog line per attempt with the
endpoint name, method, status, attempt, duration and Sectigo error code, never a secret.

Before each attempt the call passes the :class:`~sectigo_svc.sectigo.rate_gate.RateGate` (closed
by any 429, for every call) and the :class:`~sectigo_svc.sectigo.availability.Availability`
monitor (which refuses calls while Sectigo is down, except checks); each attempt's outcome feeds
the monitor. Calls held back this way raise a ``HeldBack`` error and send nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol, TypeVar

import requests
import structlog
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception

from sectigo_svc.sectigo.answers import Answer, classify
from sectigo_svc.sectigo.availability import Availability
from sectigo_svc.sectigo.config import SectigoConfig
from sectigo_svc.sectigo.deadline import Deadline, MonotonicClock
from sectigo_svc.sectigo.endpoints import Auth, Endpoint
from sectigo_svc.sectigo.error_mapping import error_from_response
from sectigo_svc.sectigo.errors import (
    ConnectionFailed,
    DeadlineExceeded,
    OutcomeUnknown,
    RateLimited,
    SectigoError,
    SectigoHTTPError,
    Unauthenticated,
    UnexpectedResponse,
)
from sectigo_svc.sectigo.guard import check_environment
from sectigo_svc.sectigo.json_fields import SchemaError
from sectigo_svc.sectigo.observer import NoObserver, Observer
from sectigo_svc.sectigo.rate_gate import RateGate
from sectigo_svc.sectigo.retry_policy import Backoff, GiveUp, connection_failure, should_retry

T = TypeVar("T")

JSON_TYPE = "application/json;charset=UTF-8"
# The shortest timeout worth starting an attempt with when the deadline is nearly spent.
MIN_TIMEOUT = 0.001
NOT_IMPLEMENTED = 501

# Set while this thread makes a check: its calls bypass the DOWN refusal and are tried once.
_CHECKING: contextvars.ContextVar[bool] = contextvars.ContextVar("sectigo_check", default=False)


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
        clock: MonotonicClock = time.monotonic,
        logger: Any = None,
        observer: Observer | None = None,
    ) -> None:
        """``sleep`` and ``clock`` (monotonic) go together: tests inject both or neither."""
        check_environment(config.endpoint, config.environment)
        self._observer: Observer = observer if observer is not None else NoObserver()
        self._config = config
        self._base_url = config.base_url
        self._session = session if session is not None else self._new_session(config)
        self._sleep = sleep
        self._log = logger if logger is not None else structlog.get_logger("sectigo_svc.sectigo")
        self._backoff = Backoff(config.backoff_initial, config.backoff_max)
        self._gate = RateGate(
            max_wait=config.max_retry_after, clock=clock, sleep=sleep, logger=self._log
        )
        self._availability = Availability(
            down_after=config.down_after,
            up_after=config.up_after,
            check_interval=config.check_interval,
            calls_probe=config.calls_probe,
            clock=clock,
            logger=self._log,
        )

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
    def gate(self) -> RateGate:
        """The rate-limit gate every call of this transport passes."""
        return self._gate

    @property
    def availability(self) -> Availability:
        """The monitor every attempt of this transport feeds."""
        return self._availability

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """Make the calls of this thread inside the block checks: sent even while Sectigo is
        DOWN (the rate gate still applies), tried once, and counted towards UP when they work."""
        token = _CHECKING.set(True)
        try:
            yield
        finally:
            _CHECKING.reset(token)

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

        Raises ``Throttled`` when a 429's wait does not fit the deadline and
        ``SectigoUnavailable`` while the availability monitor says Sectigo is down, both before
        anything is sent.
        """
        url = self._base_url + endpoint.render(**(ids or {}))
        request = _Request(endpoint, url, params, body, accept, stream, tuple(redact))
        if not _CHECKING.get() and self._availability.admit(endpoint.name):
            with self.checking():
                return self._send(request, handle, tokens, deadline)
        return self._send(request, handle, tokens, deadline)

    def _send(
        self,
        request: _Request,
        handle: Handler[T],
        tokens: TokenSource | None,
        deadline: Deadline | None,
    ) -> T:
        endpoint = request.endpoint
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
        attempts_allowed = 1 if _CHECKING.get() else self._config.max_attempts
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: should_retry(endpoint, exc)),
            wait=self._wait,
            stop=GiveUp(attempts_allowed, self._config.max_retry_after, deadline),
            sleep=self._sleep,
            reraise=True,
        )
        attempts = itertools.count(1)
        try:
            return retrying(lambda: self._attempt(request, handle, token, deadline, next(attempts)))
        except SectigoError as exc:
            if classify(endpoint, exc) is Answer.IN_DOUBT:
                raise _in_doubt(endpoint, exc) from exc
            if isinstance(exc, ConnectionFailed) and deadline is not None and deadline.expired():
                # The timeout was the caller's deadline, not Sectigo being unreachable.
                raise DeadlineExceeded(endpoint.name) from exc
            raise

    def _wait(self, state: RetryCallState) -> float:
        """After a 429, what the gate says (it holds every call); else the backoff."""
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, RateLimited):
            return self._gate.remaining()
        return self._backoff(state)

    def _attempt(
        self,
        request: _Request,
        handle: Handler[T],
        token: str | None,
        deadline: Deadline | None,
        attempt: int,
    ) -> T:
        endpoint = request.endpoint
        checking = _CHECKING.get()
        if not checking and attempt > 1:
            self._availability.refuse_if_down(endpoint.name)
        self._gate.wait(endpoint.name, deadline)
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
                    error = error_from_response(response, endpoint, secrets)
                    if isinstance(error, RateLimited):
                        wait = error.retry_after
                        held = self._backoff.delay(attempt) if wait is None else wait
                        self._gate.close(held, endpoint.name)
                        self._availability.throttled(
                            held, f"{endpoint.name}: HTTP 429, every call held for {held:g} s"
                        )
                    raise error
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
            self._feed_availability(endpoint, status, failure, checking)

    def _feed_availability(
        self,
        endpoint: Endpoint,
        status: int | None,
        failure: BaseException | None,
        checking: bool,
    ) -> None:
        """Tell the monitor whether an attempt that reached the wire proved Sectigo works."""
        if isinstance(failure, ConnectionFailed):
            ok, cause = False, f"{endpoint.name}: {failure.reason}"
        elif status is None:
            return
        elif status >= 500 and status != NOT_IMPLEMENTED:
            ok, cause = False, f"{endpoint.name}: HTTP {status}"
        else:
            ok, cause = True, ""
        counts_as_check = checking and endpoint.auth is Auth.BEARER
        self._availability.record(ok, cause, check=counts_as_check)

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


def _in_doubt(endpoint: Endpoint, exc: SectigoError) -> OutcomeUnknown:
    """The ``OutcomeUnknown`` for a call the answer table says may have been processed."""
    if isinstance(exc, ConnectionFailed):
        reason, status = f"no answer after sending ({exc.reason})", None
    elif isinstance(exc, SectigoHTTPError):
        reason, status = f"HTTP {exc.status}: {exc.message}", exc.status
    elif isinstance(exc, UnexpectedResponse):
        reason, status = f"unreadable reply ({exc.problem})", None
    else:
        reason, status = type(exc).__name__, None
    return OutcomeUnknown(endpoint.name, endpoint.method, reason, status)


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
