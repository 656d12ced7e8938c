"""Sending a request's order to Sectigo: the one place that decides whether an order may leave.

Every order spends a paid licence, so one leaves only when nothing can have been sent for the
request before, or when lookups by its batch name have shown, for a whole quarantine window after
the last send could have reached Sectigo, that the earlier send never became a batch. The states
(:class:`~sectigo_svc.domain.models.SendState`, stored with the request):

- ``NEVER``: nothing has left from this store. The attempt is recorded (and synced) before the
  order is sent, so the store proves it; only a store restored from a backup cannot, and there
  every request it held starts in doubt.
- ``SENDING``: the attempt is recorded and the order is on its way. A step that finds this state
  was not the sender: the sender died (``kill -9``), so the outcome is unknown, as ``IN_DOUBT``.
- ``IN_DOUBT``: the outcome is unknown (read timeout, reset after the body left, a 5xx, a crash, a
  restore). Look the name up with backoff until ``quarantine`` seconds after the last send (or the
  restore) on the store's clock, and ``quarantine`` seconds on this process's monotonic clock since
  it sent the order or first found it in doubt; found: adopt that batch; window over and still
  absent: send again. No clock, skewed or stepped, can shorten a window.
- ``NOT_TAKEN``: the answer proved the order was not taken (429, a refused connection, a call the
  client held back); send again when allowed, after ``Retry-After`` for a 429.

No order leaves without a lookup first: every step that would send looks the batch name up once
(one list call per order) and adopts a batch it finds. So a store that lost the request's history
(a restore from a backup taken before the request, a lost or recreated database, a pg_dump
restore) never pays twice for a request the caller sends again. The residual risk is Sectigo's
own visibility lag: a batch created moments before the lookup that Sectigo does not list yet.

An order Sectigo keeps answering with the same 5xx while lookups show no batch is not retried for
ever: after ``max_failed_orders`` such answers the request ends FAILED with Sectigo's message.

What each Sectigo answer means is read from the one table in :mod:`sectigo_svc.sectigo.answers`.
If two batches ever carry one request's name, one is used (the first that Sectigo did not refuse),
the others are logged as an error and counted, and docs/operations.md says what to do with them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from sectigo_svc.domain.errors import DomainError, InvalidArgument
from sectigo_svc.domain.models import CertificateRequest, KeySource, RequestState, SendState
from sectigo_svc.domain.scheduler import Key
from sectigo_svc.sectigo import endpoints
from sectigo_svc.sectigo import errors as sectigo
from sectigo_svc.sectigo.answers import Answer, classify
from sectigo_svc.sectigo.batch_status import BatchStatus
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.models import BatchResponse
from sectigo_svc.store.base import StaleUpdate

REFUSED_STATES = frozenset(
    {BatchStatus.REJECTED, BatchStatus.NOT_ACCEPTABLE, BatchStatus.BROKEN, BatchStatus.FAILED}
)
LIST_PAGE = 100
MAX_LIST_PAGES = 50

OrderParams = Callable[[CertificateRequest, str, Deadline], dict[str, str]]


class LookupIncomplete(sectigo.SectigoError):
    """Sectigo's batch list was longer than a lookup reads (its name filter ignored at a large
    account): the name's absence is not proved, so nothing may be ordered on it."""


Save = Callable[..., CertificateRequest]


@dataclass(frozen=True)
class Adopt:
    """The request's batch is known: ``how`` is ``created`` (our send) or ``found`` (a lookup)."""

    batch: BatchResponse
    how: str


@dataclass(frozen=True)
class Retry:
    """Look again later: after ``after`` seconds when Sectigo said so, else the usual backoff."""

    note: str
    after: float | None = None


@dataclass(frozen=True)
class Finish:
    """A terminal outcome decided before any batch exists (refused, or given up)."""

    state: RequestState
    reason: str
    gave_up: bool = False


Decision = Adopt | Retry | Finish


class Submitter:
    """Decides and performs the next submission step of a PENDING request."""

    def __init__(
        self,
        sectigo_client: SectigoClient,
        save: Save,
        order_params: OrderParams,
        password: Callable[[CertificateRequest], str],
        out_of_licences: Callable[[], None],
        quarantine: float,
        restored_at: dt.datetime | None,
        on_duplicate: Callable[[int], None],
        clock: Callable[[], dt.datetime],
        max_failed_orders: int = 3,
        on_adopt: Callable[[str], None] = lambda phase: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``save(request, **changes)`` writes a request (compare-and-set); ``quarantine`` is in
        seconds; ``restored_at`` is when the store was restored from a backup (None if never);
        ``on_duplicate(n)`` counts ``n`` surplus batches found under one request's name;
        ``on_adopt(phase)`` counts batches a lookup found before an order; ``clock`` is the
        store's clock (shared by every replica); ``monotonic`` times each quarantine in this
        process as well, so no clock step (a restart under another clock) can shorten one."""
        self._sectigo = sectigo_client
        self._save = save
        self._order_params = order_params
        self._password = password
        self._out_of_licences = out_of_licences
        self._quarantine = dt.timedelta(seconds=quarantine)
        self._restored_at = restored_at
        self._on_duplicate = on_duplicate
        self._clock = clock
        self._max_failed_orders = max_failed_orders
        self._on_adopt = on_adopt
        self._mono = monotonic
        # When this process sent each request's order, or first found it in doubt.
        self._watched: dict[Key, float] = {}
        self._log = structlog.get_logger("sectigo_svc.submission")
        self._reported: set[int] = set()

    def forget(self, key: Key) -> None:
        """The request needs no more steps here (finished, or tracked elsewhere now)."""
        self._watched.pop(key, None)

    def phase(self, request: CertificateRequest) -> SendState:
        """The send state that holds at the start of a step (see the module docstring)."""
        if self._restored_before_send(request):
            return SendState.IN_DOUBT
        if request.send_state is SendState.SENDING:
            return SendState.IN_DOUBT
        return request.send_state

    def quarantine_ends(self, request: CertificateRequest) -> dt.datetime:
        """When an in-doubt request may be sent again if its batch name is still unknown."""
        since = [request.last_send_at or request.created_at]
        if self._restored_before_send(request):
            assert self._restored_at is not None
            since.append(self._restored_at)
        return max(since) + self._quarantine

    def _restored_before_send(self, request: CertificateRequest) -> bool:
        restored = self._restored_at
        if restored is None or request.created_at >= restored:
            return False
        return request.last_send_at is None or request.last_send_at < restored

    def step(self, request: CertificateRequest, deadline: Deadline, expired: bool) -> Decision:
        """Look the batch name up, then adopt, wait, finish or send: never send unlooked."""
        phase = self.phase(request)
        try:
            found = self.find(request, deadline)
        except sectigo.SectigoError as exc:
            if expired:
                return Finish(
                    RequestState.FAILED,
                    f"Sectigo could not be asked whether batch {request.batch_name} exists",
                    gave_up=True,
                )
            return Retry(
                f"Sectigo could not be asked for batch {request.batch_name}: {exc}",
                retry_after(exc),
            )
        if found is not None:
            self._on_adopt(phase.value.lower())
            if phase is not SendState.IN_DOUBT:
                self._log.warning(
                    "batch found before ordering; adopted",
                    owner=request.owner,
                    request_id=request.request_id,
                    batch_id=found.batch_id,
                    send_state=phase.value,
                )
            return Adopt(found, "found")
        if phase is SendState.IN_DOUBT:
            now = self._clock()
            ends = self.quarantine_ends(request)
            # The window also runs in full on this process's monotonic clock.
            seen = self._watched.setdefault(request.key, self._mono())
            left_here = seen + self._quarantine.total_seconds() - self._mono()
            if left_here > 0:
                ends = max(ends, now + dt.timedelta(seconds=left_here))
            if now < ends:
                return Retry(
                    f"in doubt: the order's outcome is unknown and batch {request.batch_name} "
                    f"is not at Sectigo yet; looking it up until {ends.isoformat()} before "
                    "ordering again"
                )
            if request.order_failures >= self._max_failed_orders:
                return Finish(
                    RequestState.FAILED,
                    f"Sectigo failed the order {request.order_failures} times with the same "
                    f"answer and created no batch: {request.order_error}",
                )
        if expired:
            return Finish(
                RequestState.FAILED, "the order was never accepted by Sectigo", gave_up=True
            )
        return self._send(request, deadline)

    def _send(self, request: CertificateRequest, deadline: Deadline) -> Decision:
        spec = request.spec
        try:
            params = (
                self._order_params(request, self._password(request), deadline)
                if spec.key_source is KeySource.SERVER
                else {}
            )
        except InvalidArgument as exc:
            return Finish(RequestState.REJECTED, f"the profile refuses it: {exc}")
        except DomainError as exc:
            return Retry(
                f"the profile's parameters could not be read: {exc.message}", retry_after(exc)
            )
        self._watched[request.key] = self._mono()
        try:
            request = self._save(
                request,
                submit_attempts=request.submit_attempts + 1,
                send_state=SendState.SENDING,
                last_send_at=self._clock(),
                reason="sending the order to Sectigo",
            )
        except StaleUpdate:
            return Retry("the request changed; looking again", 0.0)
        endpoint = endpoints.CREATE_BATCH
        try:
            if spec.key_source is KeySource.SERVER:
                batch = self._sectigo.create_single_cert_batch(
                    spec.authority_id, request.batch_name, params, deadline
                )
            else:
                endpoint = endpoints.UPLOAD_BATCH
                batch = self._sectigo.upload_csr_batch(
                    spec.profile_id,
                    spec.csr_pem,
                    filename=f"{request.request_id}.csr",
                    batch_name=request.batch_name,
                    deadline=deadline,
                )
        except sectigo.SectigoError as exc:
            return self._after_failed_send(request, endpoint, exc)
        return Adopt(batch, "created")

    def _after_failed_send(
        self, request: CertificateRequest, endpoint: endpoints.Endpoint, exc: sectigo.SectigoError
    ) -> Decision:
        answer = classify(endpoint, exc)
        if answer is Answer.REFUSED:
            if isinstance(exc, sectigo.InsufficientLicences):
                self._out_of_licences()
                authority = request.spec.authority_id
                return Finish(RequestState.FAILED, f"no licences left under authority {authority}")
            if isinstance(exc, sectigo.NotFound):
                return Finish(RequestState.FAILED, f"Sectigo does not know it: {exc.message}")
            message = exc.message if isinstance(exc, sectigo.SectigoHTTPError) else str(exc)
            return Finish(RequestState.REJECTED, f"Sectigo refused the order: {message}")
        if answer is Answer.NOT_TAKEN:
            note = f"Sectigo did not take the order ({type(exc).__name__}); it will be sent again"
            self._save(request, send_state=SendState.NOT_TAKEN, reason=note)
            return Retry(note, retry_after(exc))
        note = (
            f"in doubt: the order's outcome is unknown ({type(exc).__name__}); batch "
            f"{request.batch_name} is looked up before anything is sent again"
        )
        failures, error = answered_failure(request, exc)
        self._save(
            request,
            send_state=SendState.IN_DOUBT,
            reason=note,
            order_failures=failures,
            order_error=error,
        )
        self._log.warning(
            "order in doubt",
            owner=request.owner,
            request_id=request.request_id,
            error=type(exc).__name__,
        )
        return Retry(note)

    def find(self, request: CertificateRequest, deadline: Deadline) -> BatchResponse | None:
        """The batch named after the request, if Sectigo shows one.

        Names are compared here, page by page, so a list endpoint that ignores its filter cannot
        make a request adopt another's batch; a list longer than a lookup reads proves nothing
        (:class:`LookupIncomplete`). With several, the first one Sectigo did not refuse
        (lowest id) is used and the others are reported as duplicates.
        """
        matches = self.batches_named(request, deadline)
        if not matches:
            return None
        chosen = min(matches, key=lambda b: (b.status in REFUSED_STATES, b.batch_id))
        if len(matches) > 1:
            self.report_duplicates(request, chosen.batch_id, (b.batch_id for b in matches))
        return chosen

    def batches_named(self, request: CertificateRequest, deadline: Deadline) -> list[BatchResponse]:
        """Every batch Sectigo lists under the request's batch name."""
        matches: list[BatchResponse] = []
        for page in range(MAX_LIST_PAGES):
            batches = self._sectigo.list_batches(
                batch_name=request.batch_name,
                offset=page * LIST_PAGE,
                limit=LIST_PAGE,
                deadline=deadline,
            )
            matches.extend(b for b in batches if b.batch_name == request.batch_name)
            if len(batches) < LIST_PAGE:
                return matches
        if matches:
            return matches
        self._log.warning(
            "batch lookup incomplete: Sectigo lists more batches than a lookup reads",
            owner=request.owner,
            request_id=request.request_id,
            batch_name=request.batch_name,
            pages=MAX_LIST_PAGES,
        )
        raise LookupIncomplete(
            f"Sectigo's list under batch name {request.batch_name} runs past "
            f"{MAX_LIST_PAGES * LIST_PAGE} batches (its name filter seems ignored); the name's "
            "absence is not proved, so nothing is ordered"
        )

    def check_duplicates(self, request: CertificateRequest, deadline: Deadline) -> None:
        """After a request that was sent more than once (or adopted) is done: report surplus
        batches under its name. A failed lookup is only logged; the request is not affected."""
        try:
            matches = self.batches_named(request, deadline)
        except sectigo.SectigoError as exc:
            self._log.warning(
                "duplicate check skipped",
                owner=request.owner,
                request_id=request.request_id,
                error=type(exc).__name__,
            )
            return
        chosen = next((b for b in matches if b.batch_id == request.batch_id), None)
        if chosen is not None and len(matches) > 1:
            self.report_duplicates(request, chosen.batch_id, (b.batch_id for b in matches))

    def report_duplicates(
        self, request: CertificateRequest, used: int, batch_ids: Iterable[int]
    ) -> None:
        """Log (at error level, once per surplus batch) and count the batches under the request's
        name other than ``used``."""
        surplus = sorted({batch_id for batch_id in batch_ids if batch_id != used})
        new = [batch_id for batch_id in surplus if batch_id not in self._reported]
        if not new:
            return
        self._reported.update(new)
        self._on_duplicate(len(new))
        self._log.error(
            "duplicate batches for one request",
            owner=request.owner,
            request_id=request.request_id,
            batch_name=request.batch_name,
            used_batch_id=used,
            surplus_batch_ids=surplus,
            action="see docs/operations.md, 'Duplicate batches'",
        )


def answered_failure(request: CertificateRequest, exc: sectigo.SectigoError) -> tuple[int, str]:
    """The request's count of orders Sectigo answered with the same 5xx, and that answer: one
    more when ``exc`` repeats the last, one when it is a new 5xx, none when Sectigo gave no
    answer (a timeout or a lost connection proves nothing either way)."""
    cause = exc.__cause__ if isinstance(exc, sectigo.OutcomeUnknown) else exc
    if not isinstance(cause, sectigo.ServerError):
        return 0, ""
    error = f"HTTP {cause.status}: {cause.message}"
    if error == request.order_error:
        return request.order_failures + 1, error
    return 1, error


def retry_after(exc: BaseException) -> float | None:
    """How long Sectigo (Retry-After) or the client (a held-back call) asked to wait, if at all."""
    value: Any = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) and value > 0 else None
