"""The tracker: a background worker pool that drives every unfinished request to a terminal state.

Each step reads the request from the store, does one thing at Sectigo, and writes the outcome back
with compare-and-set, so a step interrupted at any point (even ``kill -9``) is simply done again on
the next start. Submitting follows the state machine in :mod:`sectigo_svc.domain.submission`: an
order whose outcome is unknown is looked up by its batch name for a quarantine window before
anything is sent again. After that, a 404 for the batch is transient until ``give_up_after``.

Replicas sharing a store each step only the requests they hold a lease on
(:mod:`sectigo_svc.domain.leases`): one replica steps a request at a time, and requests of a
replica that died are taken over when its leases lapse. Each taken-over request is looked up at
Sectigo once before its next order, as after any start. Writes stay compare-and-set, so even a
replica that lost its lease unawares cannot record a second send over another's.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from sectigo_svc.domain.harvest import harvest
from sectigo_svc.domain.leases import LeaseKeeper
from sectigo_svc.domain.models import CertificateRequest, IssuedCertificate, RequestState
from sectigo_svc.domain.notifier import Notifier
from sectigo_svc.domain.scheduler import Key, Scheduler
from sectigo_svc.domain.store_clock import StoreClock
from sectigo_svc.domain.submission import (
    REFUSED_STATES,
    Adopt,
    Finish,
    OrderParams,
    Submitter,
    retry_after,
)
from sectigo_svc.sectigo import errors as sectigo
from sectigo_svc.sectigo.batch_status import BatchStatus
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.models import BatchResponse
from sectigo_svc.store.base import (
    Claim,
    LeaseLost,
    RequestStore,
    StoreError,
    TransitionRefused,
)

READY_STATES = frozenset({BatchStatus.READY_FOR_DOWNLOAD, BatchStatus.COLLECTED})


@dataclass(frozen=True)
class TrackerSettings:
    """Polling pace: fast at first, then slower, bounded; and when to give up."""

    workers: int = 4
    min_interval: float = 0.5
    max_interval: float = 30.0
    backoff: float = 1.6
    give_up_after: float = 24 * 3600.0
    step_timeout: float = 60.0
    quarantine: float = 600.0
    lease_seconds: float = 30.0
    max_failed_orders: int = 3


class Tracker:
    def __init__(
        self,
        store: RequestStore,
        sectigo_client: SectigoClient,
        notifier: Notifier,
        order_params: OrderParams,
        settings: TrackerSettings,
        out_of_licences: Callable[[], None],
        clock: StoreClock,
        on_duplicate: Callable[[int], None] = lambda surplus: None,
        on_adopt: Callable[[str], None] = lambda phase: None,
        on_lease_renewal: Callable[[bool], None] | None = None,
    ) -> None:
        """``out_of_licences`` is called when Sectigo refuses an order for lack of licences, so
        that cached balances are dropped and new requests are refused at once; ``on_duplicate``
        counts surplus batches found under one request's name; ``on_adopt(phase)`` counts
        batches found by a lookup before an order (phase: the send state then);
        ``on_lease_renewal`` hears of each lease renewal round (see :class:`LeaseKeeper`)."""
        self._store = store
        self._sectigo = sectigo_client
        self._notifier = notifier
        self._settings = settings
        self._clock = clock.now
        self._log = structlog.get_logger("sectigo_svc.tracker")
        self._jitter = random.Random()  # noqa: S311 - spreading polls, not cryptography
        self._checks: dict[Key, int] = {}
        # Finished requests sent more than once, to be looked up once more after the quarantine.
        self._late_checks: set[Key] = set()
        self._scheduler = Scheduler(self._step_safely, settings.workers, "tracker")
        self._leases = LeaseKeeper(
            store,
            settings.lease_seconds,
            self._taken_over,
            clock=clock,
            on_renewal=on_lease_renewal,
        )
        self._submitter = Submitter(
            sectigo_client,
            self._save,
            order_params,
            self._password,
            out_of_licences,
            settings.quarantine,
            store.restored_at(),
            on_duplicate,
            self._clock,
            max_failed_orders=settings.max_failed_orders,
            on_adopt=on_adopt,
        )

    def start(self) -> int:
        """Claim and resume every unfinished request no other replica holds, start the workers
        and the lease keeper; returns how many resumed."""
        claims = self._leases.start()
        self._taken_over(claims)
        self._scheduler.start()
        self._log.info("tracker started", resumed=len(claims), workers=self._settings.workers)
        return len(claims)

    def stop(self) -> None:
        """Finish the steps under way (each is bounded by ``step_timeout``) and stop; if every
        step ended, give the leases up so other replicas carry on at once."""
        finished = self._scheduler.stop(self._settings.step_timeout + 5.0)
        self._leases.stop(release=finished)

    def _taken_over(self, claims: list[Claim]) -> None:
        """Requests this replica now tracks that it did not create or track before."""
        for claim in claims:
            self.wake(claim.key)

    def wake(self, key: Key) -> None:
        """Look at the request now (or right after the step under way, if there is one)."""
        self._scheduler.wake(key)

    def _step_safely(self, key: Key) -> float | None:
        try:
            delay = self._step(key)
        except LeaseLost as exc:
            # Another replica holds the request now and carries on from what is stored.
            self._log.warning(
                "request lost to another replica; dropped",
                owner=key[0],
                request_id=key[1],
                cause=str(exc),
            )
            self._leases.drop(key)
            delay = None
        except TransitionRefused as exc:
            # A decision made on an older reading; the next step reads the request again.
            self._log.warning(
                "backward transition refused", owner=key[0], request_id=key[1], cause=str(exc)
            )
            delay = self._backoff(key)
        except Exception:
            self._log.exception("tracker step failed", owner=key[0], request_id=key[1])
            delay = self._backoff(key)
        if delay is None:
            self._checks.pop(key, None)
            self._submitter.forget(key)
        return delay

    def _backoff(self, key: Key, at_least: float | None = None) -> float:
        """The next look: growing intervals with jitter, never sooner than ``at_least`` (what
        Sectigo asked for with Retry-After, or how long the client holds calls back)."""
        checks = self._checks.get(key, 0)
        self._checks[key] = checks + 1
        base = min(
            self._settings.max_interval,
            self._settings.min_interval * self._settings.backoff**checks,
        )
        delay = base * self._jitter.uniform(0.8, 1.2)
        if at_least is not None:
            delay = max(delay, at_least * self._jitter.uniform(1.0, 1.1))
        return delay

    # One step ------------------------------------------------------------------------------------

    def _step(self, key: Key) -> float | None:
        """Advance one request; returns when to look again, or None when it needs no more.

        A request past ``give_up_after`` is still looked at once more, so one Sectigo finished
        (or already has) is never abandoned; it fails only when it is still unfinished.
        """
        request = self._store.get(*key)
        if request is not None and key in self._late_checks:
            self._late_checks.discard(key)
            self._submitter.check_duplicates(request, Deadline.after(self._settings.step_timeout))
            return None
        if request is None or request.state.terminal:
            self._leases.drop(key)
            return None
        if not self._leases.holds(key) or self._leases.fence(key) is None:
            try:
                claim = self._leases.claim(key)
            except StoreError as exc:
                self._log.warning(
                    "lease not claimed", owner=key[0], request_id=key[1], cause=str(exc)
                )
                return self._backoff(key)
            if claim is None:
                return None  # another replica tracks it
        age = (self._clock() - request.created_at).total_seconds()
        expired = age > self._settings.give_up_after
        deadline = Deadline.after(self._settings.step_timeout)
        if request.state is RequestState.PENDING:
            return self._submit(request, deadline, expired)
        return self._poll(request, deadline, expired)

    def _give_up(self, request: CertificateRequest, why: str) -> None:
        age = (self._clock() - request.created_at).total_seconds()
        last = request.sectigo_status or "none"
        self._finish(
            request,
            RequestState.FAILED,
            f"gave up after {age:.0f} s: {why}; last Sectigo status: {last}",
        )

    def _save(self, request: CertificateRequest, **changes: Any) -> CertificateRequest:
        certificate: IssuedCertificate | None = changes.pop("certificate", None)
        fence = self._leases.fence(request.key)
        if fence is None:  # the keeper saw the lease go while this step ran
            raise LeaseLost(f"request {request.request_id} is no longer leased to this replica")
        updated = self._store.update(
            dataclasses.replace(request, updated_at=self._clock(), **changes),
            certificate,
            fence=fence,
        )
        self._notifier.changed(updated.key, final=updated.state.terminal)
        return updated

    def _note(self, request: CertificateRequest, reason: str) -> None:
        if request.reason != reason:
            self._save(request, reason=reason)

    def _finish(self, request: CertificateRequest, state: RequestState, reason: str) -> None:
        self._save(request, state=state, reason=reason)
        self._log.info(
            "request finished",
            owner=request.owner,
            request_id=request.request_id,
            state=state.value,
            reason=reason,
        )

    def _submit(
        self, request: CertificateRequest, deadline: Deadline, expired: bool
    ) -> float | None:
        decision = self._submitter.step(request, deadline, expired)
        # The submitter may have saved the request (an attempt, its outcome): continue from that.
        latest = self._store.get(*request.key) or request
        if isinstance(decision, Adopt):
            return self._adopt(latest, decision.batch, decision.how)
        if isinstance(decision, Finish):
            if decision.gave_up:
                self._give_up(latest, decision.reason)
            else:
                self._finish(latest, decision.state, decision.reason)
            return None
        self._note(latest, decision.note)
        return self._backoff(request.key, decision.after)

    def _password(self, request: CertificateRequest) -> str:
        return self._store.pkcs12_password(*request.key) or ""

    def _adopt(self, request: CertificateRequest, batch: BatchResponse, how: str) -> float:
        self._save(
            request,
            state=RequestState.SUBMITTED,
            batch_id=batch.batch_id,
            sectigo_status=batch.status_raw,
            reason=f"Sectigo batch {batch.batch_id} {how}",
        )
        self._log.info(
            "request submitted",
            owner=request.owner,
            request_id=request.request_id,
            batch_id=batch.batch_id,
            how=how,
        )
        self._checks.pop(request.key, None)
        return self._settings.min_interval

    def _batch_missing(
        self, request: CertificateRequest, deadline: Deadline, expired: bool
    ) -> float | None:
        """A 404 for a batch Sectigo itself named is transient until proved otherwise: look the
        name up; a request fails for it only after ``give_up_after``."""
        assert request.batch_id is not None
        try:
            found = self._submitter.find(request, deadline)
        except sectigo.SectigoError as exc:
            found = None
            self._log.info("batch lookup failed", batch_id=request.batch_id, error=str(exc))
        if found is not None and found.batch_id != request.batch_id:
            # Sectigo named our batch, and lists another under the same name: two batches.
            used = min(found.batch_id, request.batch_id)
            self._submitter.report_duplicates(request, used, (found.batch_id, request.batch_id))
            if used == found.batch_id:
                return self._adopt(request, found, "found")
            return self._backoff(request.key)
        if expired:
            self._give_up(request, f"Sectigo answers 404 for batch {request.batch_id}")
            return None
        shown = "though its list shows it" if found is not None else "and does not list it"
        self._note(
            request,
            f"Sectigo answered 404 for batch {request.batch_id} {shown}; "
            "taken as transient, asking again",
        )
        return self._backoff(request.key)

    def _poll(self, request: CertificateRequest, deadline: Deadline, expired: bool) -> float | None:
        assert request.batch_id is not None
        batch_id = request.batch_id
        try:
            batch = self._sectigo.batch_detail(batch_id, deadline)
            status, detail = batch.status, batch.reject_reason
            if status in (BatchStatus.COLLECTED, BatchStatus.UNKNOWN):
                text = self._sectigo.batch_status(batch_id, deadline)
                if text.status is not BatchStatus.UNKNOWN:
                    status, detail = text.status, detail or text.detail
            info = self._sectigo.processing_info(batch_id, deadline)
        except sectigo.NotFound:
            return self._batch_missing(request, deadline, expired)
        except sectigo.SectigoError as exc:
            if expired:
                self._give_up(request, f"Sectigo could not be asked about batch {batch_id}")
                return None
            self._note(request, f"Sectigo could not be asked about batch {batch_id}: {exc}")
            return self._backoff(request.key, retry_after(exc))
        raw = batch.status_raw
        if status in READY_STATES and info.active == 0 and info.success > 0:
            return self._complete(request, raw, deadline)
        if status in REFUSED_STATES or (info.failed > 0 and info.active == 0 and not info.success):
            reason = detail or f"Sectigo reports {raw or status.value}"
            self._save(request, state=RequestState.REJECTED, sectigo_status=raw, reason=reason)
            return None
        if status in (BatchStatus.REMOVED_AFTER_EXPIRATION, BatchStatus.REVOKED):
            reason = f"the batch became {status.value} before it was downloaded"
            self._save(request, state=RequestState.FAILED, sectigo_status=raw, reason=reason)
            return None
        if expired:
            self._give_up(request, f"batch {batch_id} is still unfinished")
            return None
        note = (
            f"Sectigo reports an unknown batch status {raw!r}; still waiting"
            if status is BatchStatus.UNKNOWN
            else f"Sectigo is processing batch {batch_id}"
        )
        if request.state is not RequestState.PROCESSING or request.sectigo_status != raw:
            self._save(request, state=RequestState.PROCESSING, sectigo_status=raw, reason=note)
        return self._backoff(request.key)

    def _complete(self, request: CertificateRequest, raw: str, deadline: Deadline) -> float | None:
        assert request.batch_id is not None
        try:
            archive = self._sectigo.download_bytes(request.batch_id, deadline)
            certificate, leaf = harvest(request, archive, self._password(request))
        except sectigo.WrongPassword:
            why = "the PKCS#12 does not open with its password"
            self._finish(request, RequestState.FAILED, _unmatched(request, why))
            return None
        except sectigo.ArchiveError as exc:
            why = f"the downloaded archive is unusable: {exc}"
            self._finish(request, RequestState.FAILED, _unmatched(request, why))
            return None
        except sectigo.SectigoError as exc:
            self._note(request, f"the download of batch {request.batch_id} failed: {exc}")
            return self._backoff(request.key, retry_after(exc))
        if request.submit_attempts != 1:
            self._submitter.check_duplicates(request, deadline)
        self._save(
            request,
            state=RequestState.READY,
            sectigo_status=raw,
            reason="issued",
            serial_number=format(leaf.serial_number, "X"),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            certificate=certificate,
        )
        self._log.info(
            "request ready",
            owner=request.owner,
            request_id=request.request_id,
            batch_id=request.batch_id,
            serial=format(leaf.serial_number, "X"),
        )
        if request.submit_attempts != 1:
            # An earlier send may still become visible at Sectigo: look once more, later.
            self._late_checks.add(request.key)
            return self._settings.quarantine
        return None


def _unmatched(request: CertificateRequest, why: str) -> str:
    """Why a request's certificate could not be taken from its batch. A batch this service never
    ordered for the request (found by the lookup before its first order: the store had lost the
    request, and the caller sent the request id again) was ordered for an earlier body."""
    if request.submit_attempts:
        return why
    return (
        f"{why}; Sectigo's batch {request.batch_id} under this request's name was ordered before "
        "this store knew of the request (a restore or a lost database) for another body: send "
        "this one under a new request_id; the earlier certificate stays at Sectigo (sectigo "
        f"download -i {request.batch_id})"
    )
