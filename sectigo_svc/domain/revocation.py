"""Revocation at Sectigo, made safe to retry: an unclear or repeated revoke is checked with find.

Three kinds of revoke share Sectigo's one call, told apart by the RFC 5280 reason:

- CERTIFICATE_HOLD puts a READY certificate on hold (the request becomes ON_HOLD);
- REMOVE_FROM_CRL releases a certificate on hold (ON_HOLD becomes READY). It is refused with
  FailedPrecondition, before anything is sent, for a certificate not on hold; and since it makes a
  certificate valid again, it counts only once a find shows the certificate valid, even after a
  2xx (a CA that took code 8 for an ordinary revocation must not leave a request READY);
- any other reason revokes a READY or ON_HOLD certificate for good (REVOKED, which is final).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from sectigo_svc.domain.errors import FailedPrecondition, NotFound, Unavailable
from sectigo_svc.domain.models import CertificateRequest, RequestState
from sectigo_svc.domain.notifier import Notifier
from sectigo_svc.domain.upstream import RETRY_SECONDS, translate, upstream
from sectigo_svc.sectigo import errors as sectigo
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.reasons import RevocationReason
from sectigo_svc.store.base import RequestStore, StaleUpdate

# Sectigo's find statuses. REVOKED is documented; ON_HOLD is the emulator's word for a certificate
# revoked with certificateHold (Sectigo's is not documented); a valid certificate reads ISSUED (the
# emulator) or a batch status such as READY_FOR_DOWNLOAD (Sectigo's staging emulator).
REVOKED = "REVOKED"
ON_HOLD = "ON_HOLD"
VALID = frozenset({"ISSUED", "READY_FOR_DOWNLOAD", "COLLECTED"})

HOLD = RevocationReason.CERTIFICATE_HOLD
RELEASE = RevocationReason.REMOVE_FROM_CRL

# Each kind of revoke: the request state it leads to, and the states it may start from.
_TARGET = {HOLD: RequestState.ON_HOLD, RELEASE: RequestState.READY}
_SOURCES = {
    RequestState.ON_HOLD: frozenset({RequestState.READY}),
    RequestState.READY: frozenset({RequestState.ON_HOLD}),
    RequestState.REVOKED: frozenset({RequestState.READY, RequestState.ON_HOLD}),
}


def target_state(reason: RevocationReason) -> RequestState:
    """The state a revoke with ``reason`` leaves a request in."""
    return _TARGET.get(reason, RequestState.REVOKED)


def _shows(reason: RevocationReason, status: str) -> bool:
    """Whether a certificate Sectigo lists with ``status`` is where a revoke with ``reason`` puts
    it: on hold, valid again, or revoked."""
    status = status.upper()
    if reason is HOLD:
        return status == ON_HOLD
    if reason is RELEASE:
        return status in VALID
    return status == REVOKED


class Revoker:
    def __init__(
        self,
        store: RequestStore,
        sectigo_client: SectigoClient,
        notifier: Notifier,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._store = store
        self._sectigo = sectigo_client
        self._notifier = notifier
        self._clock = clock

    def revoke_serial(
        self, profile_id: int, serial: str, reason: RevocationReason, deadline: Deadline | None
    ) -> None:
        """Revoke; when Sectigo refuses or the outcome is unclear, a find decides. A release
        (REMOVE_FROM_CRL) is always confirmed by a find."""
        try:
            self._sectigo.revoke(profile_id, serial, reason, deadline)
        except (sectigo.ValidationError, sectigo.OutcomeUnknown, sectigo.ServerError) as exc:
            if self._done_at_sectigo(serial, reason, deadline):
                return
            if isinstance(exc, sectigo.ValidationError):
                raise translate(exc, "revoke") from exc
            raise Unavailable("revoke: the outcome is unknown; retry the revocation") from exc
        except sectigo.SectigoError as exc:
            raise translate(exc, "revoke") from exc
        if reason is RELEASE and not self._done_at_sectigo(serial, reason, deadline):
            raise Unavailable(
                "remove from CRL: Sectigo took it but does not list the certificate as valid "
                "yet; retry",
                retry_after=RETRY_SECONDS,
            )

    def _done_at_sectigo(
        self, serial: str, reason: RevocationReason, deadline: Deadline | None
    ) -> bool:
        return any(_shows(reason, status) for status in self.statuses(serial, deadline))

    def statuses(self, serial: str, deadline: Deadline | None) -> list[str]:
        """Sectigo's status of each certificate it lists under ``serial`` (normally one)."""
        with upstream("check revocation"):
            found = self._sectigo.find(serial_number=serial, deadline=deadline)
        return [item.status for item in found.items]

    def check_release(self, serial: str, deadline: Deadline | None) -> None:
        """For a certificate no request of ours issued: a release is sent only for one Sectigo
        lists as on hold; otherwise FailedPrecondition (NotFound when Sectigo lists nothing)."""
        statuses = self.statuses(serial, deadline)
        if not statuses:
            raise NotFound(f"certificate {serial}: Sectigo does not know it")
        if not any(status.upper() == ON_HOLD for status in statuses):
            raise FailedPrecondition(
                f"certificate {serial} is not on hold (Sectigo lists it as "
                f"{', '.join(statuses)}); only a certificate on hold can be removed from the CRL"
            )

    def revoke_request(
        self, request: CertificateRequest, reason: RevocationReason, deadline: Deadline | None
    ) -> CertificateRequest:
        target = target_state(reason)
        if reason is RELEASE and request.state is not RequestState.ON_HOLD:
            raise FailedPrecondition(
                f"request {request.request_id} is {request.state.value}; only a certificate "
                "ON_HOLD can be removed from the CRL"
            )
        if request.state in (target, RequestState.REVOKED):
            return request  # a repeated hold or revocation; REVOKED is final
        if request.state not in _SOURCES[target]:
            allowed = " or ".join(s.value for s in sorted(_SOURCES[target]))
            raise FailedPrecondition(
                f"request {request.request_id} is {request.state.value}; only {allowed} ones "
                f"{'go on hold' if reason is HOLD else 'revoke'}"
            )
        self.revoke_serial(request.spec.profile_id, request.serial_number, reason, deadline)
        try:
            # Written only over the version this call started from: a hold, release or revoke
            # that finished meanwhile may have come after this one at Sectigo.
            return self._move(request, target, _reason_text(reason))
        except StaleUpdate:
            return self._reconcile(request, deadline)

    def _move(
        self, request: CertificateRequest, state: RequestState, reason: str
    ) -> CertificateRequest:
        updated = self._store.update(
            dataclasses.replace(request, state=state, reason=reason, updated_at=self._clock())
        )
        self._notifier.changed(updated.key, final=True)
        return updated

    def _reconcile(
        self, request: CertificateRequest, deadline: Deadline | None
    ) -> CertificateRequest:
        """The request changed while Sectigo was asked: Sectigo's own status now decides its
        state (revoked, on hold, or valid again)."""
        statuses = {status.upper() for status in self.statuses(request.serial_number, deadline)}
        if REVOKED in statuses:
            state, reason = RequestState.REVOKED, "revoked (as Sectigo lists it)"
        elif ON_HOLD in statuses:
            state, reason = RequestState.ON_HOLD, _reason_text(HOLD)
        elif statuses & VALID:
            state, reason = RequestState.READY, _reason_text(RELEASE)
        else:
            raise Unavailable(
                f"request {request.request_id} changed while Sectigo was asked, and Sectigo's "
                "status of its certificate is unclear; look again",
                retry_after=RETRY_SECONDS,
            )
        for _ in range(3):
            current = self._store.get(*request.key) or request
            if current.state is state or current.state is RequestState.REVOKED:
                return current
            try:
                return self._move(current, state, reason)
            except StaleUpdate:
                continue
        raise Unavailable(
            f"request {request.request_id} keeps changing; look again", retry_after=RETRY_SECONDS
        )


def _reason_text(reason: RevocationReason) -> str:
    if reason is HOLD:
        return "on hold (certificate hold): revoked until removed from the CRL"
    if reason is RELEASE:
        return "removed from the CRL: no longer on hold"
    return f"revoked: {reason.label}"
