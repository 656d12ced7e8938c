"""Batches, issued certificates and licences: the emulator's whole mutable state, behind one lock.

The outcome of a batch (its certificates, or why it is rejected) is computed when it is created,
outside the lock; it becomes visible when the issue delay has passed. Licences move with it: held at
creation, issued or given back when the batch settles, so ``ordered == issued + held + available``
holds at every instant.

Reads by clients may lag behind creation (``lag``, seconds): a batch is invisible to them until it
is that old, as on a service whose read replicas trail its primary. The management summary is never
lagged.

Every change is an event (create, settle, download, revoke, release, unstick) applied by one method
per kind. With a :class:`LedgerFile` each event is also appended to it, and a new ledger replays
the file first: batches, certificates, licences, revocations and holds survive a restart, and batch
ids go on from the highest one seen.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sectigo_svc.emulator.bundles import IssuedItem
from sectigo_svc.emulator.ca import Revocation
from sectigo_svc.emulator.catalog import USER_ID, Profile, Profiles, account_profiles
from sectigo_svc.emulator.ledger_file import LedgerFile, LedgerFileError

Outcome = Literal["issued", "rejected", "broken"]
FIRST_BATCH_ID = 10000
ORDER_NUMBER_OFFSET = 90000


class InsufficientLicences(Exception):
    """The authority has fewer licences left than the batch needs."""


class RevocationRefused(Exception):
    """The revocation request is understood but cannot be carried out."""


class AlreadyRevoked(RevocationRefused):
    """The certificate was revoked before (or is already on hold, for a second hold)."""


class NotOnHold(RevocationRefused):
    """A removeFromCRL (reason 8) for a certificate that is not on hold."""


# RFC 5280 CRLReason codes with a meaning of their own: a hold can be lifted, a removal lifts it.
CERTIFICATE_HOLD = 6
REMOVE_FROM_CRL = 8


@dataclass(frozen=True)
class Settled:
    """What a batch turns into once processed."""

    outcome: Outcome
    items: tuple[IssuedItem, ...] = ()
    reason: str = ""


@dataclass
class Batch:
    batch_id: int
    batch_name: str
    profile: Profile
    size: int
    created: dt.datetime
    started: float
    ready_at: float
    result: Settled
    password: str | None
    stuck: bool
    settled: bool = False
    downloads: int = 0

    @property
    def order_number(self) -> int:
        return self.batch_id + ORDER_NUMBER_OFFSET

    def status(self, now: float) -> str:
        if not self.settled:
            halfway = self.started + (self.ready_at - self.started) / 2
            moving = now > self.started and (self.stuck or now > halfway)
            return "PROCESSING" if moving else "CREATED"
        if self.result.outcome == "rejected":
            return "REJECTED"
        if self.result.outcome == "broken":
            return "BROKEN"
        return "COLLECTED" if self.downloads else "READY_FOR_DOWNLOAD"

    def visible(self, now: float, lag: float) -> bool:
        return now - self.started >= lag

    @property
    def downloadable(self) -> bool:
        return self.settled and self.result.outcome == "issued"

    def processing_info(self) -> dict[str, int]:
        if not self.settled:
            return {"active": self.size, "success": 0, "failed": 0}
        if self.result.outcome == "issued":
            return {"active": 0, "success": self.size, "failed": 0}
        return {"active": 0, "success": 0, "failed": self.size}

    def view(self, now: float) -> BatchView:
        """Everything a reply needs, read at ``now``. Caller holds the ledger's lock."""
        return BatchView(
            batch_id=self.batch_id,
            status=self.status(now),
            detail=self.to_json(now),
            processing_info=self.processing_info(),
            downloadable=self.downloadable,
            items=self.result.items,
            password=self.password,
        )

    def to_json(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        return {
            "batchId": self.batch_id,
            "orderNumber": self.order_number,
            "creationDate": sectigo_time(self.created),
            "profile": self.profile.name,
            "size": self.size,
            "status": status,
            "active": not self.settled,
            "batchName": self.batch_name,
            "rejectReason": self.result.reason if self.settled else "",
            "generatorParametersValues": None,
            "userId": USER_ID,
            "downloadable": self.downloadable,
            "rejectable": status in ("CREATED", "PROCESSING"),
        }


@dataclass(frozen=True)
class BatchView:
    """One batch as read at one instant under the ledger's lock. Routes answer from this, never
    from the live :class:`Batch`, which another thread may settle while a reply is being built
    (a detail reading ``PROCESSING`` yet ``downloadable``)."""

    batch_id: int
    status: str
    detail: dict[str, Any]
    processing_info: dict[str, int]
    downloadable: bool
    items: tuple[IssuedItem, ...]
    password: str | None


@dataclass
class CertificateRecord:
    serial: int
    common_name: str
    profile_id: int
    device_id: str
    created: dt.datetime
    revocation: Revocation | None = None

    @property
    def on_hold(self) -> bool:
        return self.revocation is not None and self.revocation.reason_code == CERTIFICATE_HOLD

    @property
    def status(self) -> str:
        """ISSUED, ON_HOLD (revoked with certificateHold, until removed from the CRL) or
        REVOKED (for good)."""
        if self.revocation is None:
            return "ISSUED"
        return "ON_HOLD" if self.on_hold else "REVOKED"

    def to_json(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "commonName": self.common_name,
            "serialNumber": format(self.serial, "X"),
            "creationDate": sectigo_time(self.created),
            "status": self.status,
        }


def sectigo_time(when: dt.datetime) -> str:
    """Sectigo's own timestamp form: ``2020-12-10T16:35:32.805+0000``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def _item_json(item: IssuedItem) -> dict[str, Any]:
    key = None
    if item.key is not None:
        key = item.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    certificate = item.certificate.public_bytes(serialization.Encoding.PEM).decode()
    return {"common_name": item.common_name, "certificate": certificate, "key": key}


def _item(data: dict[str, Any]) -> IssuedItem:
    key = None
    if data["key"] is not None:
        loaded = serialization.load_pem_private_key(data["key"].encode(), None)
        if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise LedgerFileError("an issued key in the ledger file is neither RSA nor EC")
        key = loaded
    certificate = x509.load_pem_x509_certificate(data["certificate"].encode())
    return IssuedItem(data["common_name"], certificate, key)


def _when(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


@dataclass
class Ledger:
    """All batches, certificates and licence counters; every method is thread-safe.

    ``file``: where events are kept across restarts (None: in memory only); ``wall`` is the
    epoch clock of the timestamps, ``monotonic`` the clock of issue delays and lags.
    """

    starting_balances: dict[int, int]
    monotonic: Callable[[], float]
    profiles: Profiles = field(default_factory=account_profiles)
    file: LedgerFile | None = None
    wall: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = FIRST_BATCH_ID
    _batches: dict[int, Batch] = field(default_factory=dict)
    _certificates: dict[int, CertificateRecord] = field(default_factory=dict)
    _available: dict[int, int] = field(default_factory=dict)
    _held: dict[int, int] = field(default_factory=dict)
    _issued: int = 0
    _stuck: bool = False

    def __post_init__(self) -> None:
        self._available = dict(self.starting_balances)
        self._held = dict.fromkeys(self.starting_balances, 0)
        if self.file is not None:
            for event in self.file.events():
                try:
                    self._apply(event)
                except (KeyError, TypeError, ValueError) as exc:
                    raise LedgerFileError(
                        f"{self.file.path}: a {event['type']} event cannot be replayed: {exc}"
                    ) from exc

    # Events: every change goes through _record, replay through _apply ----------------------------

    def _record(
        self, event: dict[str, Any], started: float | None = None, result: Settled | None = None
    ) -> None:
        """Apply a new event and keep it. Caller holds the lock."""
        self._apply(event, started, result)
        if self.file is not None:
            self.file.append(event)

    def _apply(
        self, event: dict[str, Any], started: float | None = None, result: Settled | None = None
    ) -> None:
        """``started`` and ``result`` of a new batch as they are; a replayed batch's start is
        worked out from its age on the wall clock, its result read back from the event."""
        kind = event["type"]
        if kind == "create":
            self._apply_create(event, started, result)
        elif kind == "settle":
            self._apply_settle(self._batches[event["batch_id"]], event)
        elif kind == "download":
            self._batches[event["batch_id"]].downloads += 1
        elif kind == "revoke":
            record = self._certificates[int(event["serial"], 16)]
            record.revocation = Revocation(record.serial, _when(event["at"]), event["reason"])
        elif kind == "release":
            self._certificates[int(event["serial"], 16)].revocation = None
        elif kind == "unstick":
            for batch in self._batches.values():
                batch.stuck = False
        else:
            raise ValueError(f"unknown event type {kind!r}")

    def _apply_create(
        self, event: dict[str, Any], started: float | None, result: Settled | None
    ) -> None:
        profile = self.profiles.by_id(event["profile_id"])
        if profile is None:
            raise ValueError(f"no profile {event['profile_id']}")
        authority, size = profile.authority_id, event["size"]
        self._available[authority] = self._available.get(authority, 0) - size
        self._held[authority] = self._held.get(authority, 0) + size
        if started is None:
            started = self.monotonic() - max(0.0, self.wall() - event["created"])
        if result is None:
            items = tuple(_item(i) for i in event["items"])
            result = Settled(event["outcome"], items, event["reason"])
        batch = Batch(
            batch_id=event["batch_id"],
            batch_name=event["name"],
            profile=profile,
            size=size,
            created=_when(event["created"]),
            started=started,
            ready_at=started + event["delay"],
            result=result,
            password=event["password"],
            stuck=event["stuck"],
        )
        self._batches[batch.batch_id] = batch
        self._next_id = max(self._next_id, batch.batch_id + 1)

    def _apply_settle(self, batch: Batch, event: dict[str, Any]) -> None:
        batch.settled = True
        authority = batch.profile.authority_id
        self._held[authority] -= batch.size
        if batch.result.outcome != "issued":
            self._available[authority] += batch.size
            return
        self._issued += batch.size
        for item, device_id in zip(batch.result.items, event["device_ids"], strict=True):
            serial = item.certificate.serial_number
            self._certificates[serial] = CertificateRecord(
                serial=serial,
                common_name=item.common_name,
                profile_id=batch.profile.profile_id,
                device_id=device_id,
                created=_when(event["at"]),
            )

    # Operations ----------------------------------------------------------------------------------

    def create(
        self,
        profile: Profile,
        batch_name: str,
        size: int,
        result: Settled,
        password: str | None,
        delay: float,
    ) -> dict[str, Any]:
        """Record a batch and hold its licences; the reply is the BatchResponse JSON. Whether it
        is stuck is read under the lock, so it cannot miss a ``set_stuck(False)``."""
        authority = profile.authority_id
        now = self.monotonic()
        with self._lock:
            if self._available.get(authority, 0) < size:
                raise InsufficientLicences(
                    f"Not enough licences: authority {authority} has "
                    f"{self._available.get(authority, 0)}, the batch needs {size}"
                )
            batch_id = self._next_id
            self._record(
                {
                    "type": "create",
                    "batch_id": batch_id,
                    "name": batch_name,
                    "profile_id": profile.profile_id,
                    "size": size,
                    "created": self.wall(),
                    "delay": delay,
                    "stuck": self._stuck,
                    "password": password,
                    "outcome": result.outcome,
                    "reason": result.reason,
                    "items": [_item_json(i) for i in result.items] if self.file else [],
                },
                started=now,
                result=result,
            )
            return self._batches[batch_id].to_json(now)

    def _settle(self, now: float) -> None:
        """Turn every due batch into its outcome. Caller holds the lock."""
        for batch in self._batches.values():
            if batch.settled or batch.stuck or now < batch.ready_at:
                continue
            device_ids = [str(uuid.uuid4()) for _ in batch.result.items]
            event = {"batch_id": batch.batch_id, "device_ids": device_ids, "at": self.wall()}
            self._record({"type": "settle", **event})

    def set_stuck(self, stuck: bool) -> None:
        """Keep new batches in ``PROCESSING`` (True), or let every batch finish (False). Set
        under the same lock as ``create`` reads it: no batch is created stuck after it is off."""
        with self._lock:
            self._stuck = stuck
            if not stuck and any(b.stuck for b in self._batches.values()):
                self._record({"type": "unstick"})

    def view(self, batch_id: int, lag: float = 0.0) -> BatchView | None:
        """A snapshot of the batch (settled if due), or None when there is no such batch or it
        is younger than ``lag`` seconds."""
        now = self.monotonic()
        with self._lock:
            self._settle(now)
            found = self._batches.get(batch_id)
            return found.view(now) if found and found.visible(now, lag) else None

    def record_download(self, batch_id: int) -> None:
        """Count one download; the batch reads ``COLLECTED`` from the first on."""
        with self._lock:
            self._record({"type": "download", "batch_id": batch_id})

    def list_batches(
        self, name: str | None, status: str | None, lag: float = 0.0
    ) -> list[dict[str, Any]]:
        """BatchResponse JSON by batch id, filtered; batches younger than ``lag`` s are left out."""
        now = self.monotonic()
        with self._lock:
            self._settle(now)
            return [
                b.to_json(now)
                for b in sorted(self._batches.values(), key=lambda b: b.batch_id)
                if b.visible(now, lag)
                and (name is None or b.batch_name == name)
                and (status is None or b.status(now) == status)
            ]

    def summary(self) -> list[dict[str, Any]]:
        """Every batch, by id, ignoring any lag: ``batch_id``, ``batch_name``, ``status``,
        ``created`` (epoch seconds) and ``downloads`` (how many times it was downloaded)."""
        now = self.monotonic()
        with self._lock:
            self._settle(now)
            return [
                {
                    "batch_id": b.batch_id,
                    "batch_name": b.batch_name,
                    "status": b.status(now),
                    "created": b.created.timestamp(),
                    "downloads": b.downloads,
                }
                for b in sorted(self._batches.values(), key=lambda b: b.batch_id)
            ]

    def balances(self) -> dict[int, int]:
        with self._lock:
            self._settle(self.monotonic())
            return dict(self._available)

    def licences(self) -> dict[str, int]:
        with self._lock:
            self._settle(self.monotonic())
            return {"ordered": sum(self.starting_balances.values()), "issued": self._issued}

    def find(self, common_name: str | None, serial: int | None) -> list[dict[str, Any]]:
        with self._lock:
            self._settle(self.monotonic())
            return [
                record.to_json()
                for record in self._certificates.values()
                if (common_name is None or record.common_name.lower() == common_name.lower())
                and (serial is None or record.serial == serial)
            ]

    def revoke(self, profile_id: int, serial: int, reason_code: int) -> bool:
        """Revoke; False when the serial is unknown. Refuses another profile's certificate.

        Reason 6 (certificateHold) puts the certificate on hold: listed on the CRL until a revoke
        with reason 8 (removeFromCRL) releases it, which is refused (:class:`NotOnHold`) for a
        certificate not on hold. Any other reason revokes for good, a certificate on hold too.
        """
        with self._lock:
            self._settle(self.monotonic())
            record = self._certificates.get(serial)
            if record is None:
                return False
            if record.profile_id != profile_id:
                raise RevocationRefused(
                    f"Certificate {serial:X} was not issued under profile {profile_id}"
                )
            if reason_code == REMOVE_FROM_CRL:
                if not record.on_hold:
                    raise NotOnHold(
                        f"Certificate {serial:X} is not on hold; only a certificate on hold can "
                        "be removed from the CRL"
                    )
                self._record({"type": "release", "serial": format(serial, "X"), "at": self.wall()})
                return True
            if record.on_hold and reason_code == CERTIFICATE_HOLD:
                raise AlreadyRevoked(f"Certificate {serial:X} is already on hold")
            if record.revocation is not None and not record.on_hold:
                raise AlreadyRevoked(f"Certificate {serial:X} is already revoked")
            event = {"serial": format(serial, "X"), "at": self.wall(), "reason": reason_code}
            self._record({"type": "revoke", **event})
            return True

    def revocations(self) -> list[Revocation]:
        with self._lock:
            return [r.revocation for r in self._certificates.values() if r.revocation]
