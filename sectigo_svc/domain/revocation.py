"""Revocation at Sectigo, made safe to retry: an unclear or repeated revoke is checked with find."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from sectigo_svc.domain.errors import FailedPrecondition, Unavailable
from sectigo_svc.domain.models import CertificateRequest, RequestState
from sectigo_svc.domain.notifier import Notifier
from sectigo_svc.domain.upstream import translate, upstream
from sectigo_svc.sectigo import errors as sectigo
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.reasons import RevocationReason
from sectigo_svc.store.base import RequestStore, StaleUpdate

REVOKED = "REVOKED"


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
        """Revoke; when Sectigo refuses or the outcome is unclear, a find decides."""
        try:
            self._sectigo.revoke(profile_id, serial, reason, deadline)
        except (sectigo.ValidationError, sectigo.OutcomeUnknown, sectigo.ServerError) as exc:
            if self._revoked_at_sectigo(serial, deadline):
                return
            if isinstance(exc, sectigo.ValidationError):
                raise translate(exc, "revoke") from exc
            raise Unavailable("revoke: the outcome is unknown; retry the revocation") from exc
        except sectigo.SectigoError as exc:
            raise translate(exc, "revoke") from exc

    def _revoked_at_sectigo(self, serial: str, deadline: Deadline | None) -> bool:
        with upstream("check revocation"):
            found = self._sectigo.find(serial_number=serial, deadline=deadline)
        return any(item.status.upper() == REVOKED for item in found.items)

    def revoke_request(
        self, request: CertificateRequest, reason: RevocationReason, deadline: Deadline | None
    ) -> CertificateRequest:
        if request.state is RequestState.REVOKED:
            return request
        if request.state is not RequestState.READY:
            raise FailedPrecondition(
                f"request {request.request_id} is {request.state.value}; only READY ones revoke"
            )
        self.revoke_serial(request.spec.profile_id, request.serial_number, reason, deadline)
        while True:
            current = self._store.get(*request.key) or request
            if current.state is RequestState.REVOKED:
                return current
            try:
                updated = self._store.update(
                    dataclasses.replace(
                        current,
                        state=RequestState.REVOKED,
                        reason=f"revoked: {reason.label}",
                        updated_at=self._clock(),
                    )
                )
            except StaleUpdate:
                continue
            self._notifier.changed(updated.key, final=True)
            return updated
