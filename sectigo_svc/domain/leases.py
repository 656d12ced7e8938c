"""Which unfinished requests this replica tracks: leases in the store, renewed in the background.

A lease lasts ``lease_seconds`` on the store's clock. The keeper renews every lease it holds a
third of that apart, and on each round also claims requests whose lease lapsed (their replica
died or lost the database) or that no one holds (a replica stopped and let them go). Locally a
lease counts as held only until ``lease_seconds`` after the round that last renewed it began, so
a replica cut off from the database stops stepping its requests before another may claim them.

Each claim carries the request's lease epoch; the tracker writes under :meth:`LeaseKeeper.fence`,
so a step that lost its lease unawares (a paused process) cannot write over the new holder's work.
A replica whose clock is skewed from the store's (see :mod:`sectigo_svc.domain.store_clock`)
takes nothing over until the skew ends.

A lease whose row another transaction keeps locked is not renewed, and keeps the local deadline of
the round that last renewed it; the others are renewed as usual. Each round is reported to
``on_renewal``: complete, or failed (the store failed, or a lease's row stayed locked since the
round before, i.e. for over a third of a lease), and a failed round is logged as a warning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from sectigo_svc.domain.store_clock import StoreClock
from sectigo_svc.store.base import Claim, Fence, Key, RequestStore, StoreError

_LOGGED_IDS = 20  # request ids named in one warning at most


class LeaseKeeper:
    """Claims, renews and releases this replica's leases; ``on_claimed`` gets each round's new
    claims (requests another replica or an earlier process tracked)."""

    def __init__(
        self,
        store: RequestStore,
        lease_seconds: float,
        on_claimed: Callable[[list[Claim]], None],
        scan_limit: int = 500,
        monotonic: Callable[[], float] = time.monotonic,
        clock: StoreClock | None = None,
        on_renewal: Callable[[bool], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ttl = lease_seconds
        self._on_claimed = on_claimed
        self._scan_limit = scan_limit
        self._mono = monotonic
        self._log = structlog.get_logger("sectigo_svc.leases")
        self._lock = threading.Lock()
        self._held: dict[Key, float] = {}
        self._epochs: dict[Key, int] = {}
        self._tracked: set[Key] = set()  # keys claimed through this keeper and not dropped
        self._untracked: set[Key] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        # Renewal reports (see _report): ``on_renewal(complete)`` after every round.
        self._on_renewal = on_renewal or _ignore
        self._locked: frozenset[Key] = frozenset()  # leases whose rows were locked last round

    def start(self) -> list[Claim]:
        """Claim what is free now and start renewing; returns the first claims."""
        if self._clock is not None:
            self._clock.measure()
        claims = self._scan()
        self._thread.start()
        return claims

    def stop(self, release: bool) -> None:
        """Stop renewing; with ``release``, give every lease up so others take over at once."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        if release:
            try:
                self._store.release()
            except StoreError as exc:
                self._log.warning("leases not released; they lapse by themselves", cause=str(exc))

    def holds(self, key: Key) -> bool:
        with self._lock:
            return self._held.get(key, float("-inf")) > self._mono()

    @property
    def _skewed(self) -> bool:
        """Whether this replica must take nothing over: its clock is off the store's, so it
        could misjudge another replica's quarantine."""
        return self._clock is not None and self._clock.skewed

    def fence(self, key: Key) -> Fence | None:
        """The lease this replica writes ``key`` under (None: not claimed through this keeper)."""
        with self._lock:
            epoch = self._epochs.get(key)
        return None if epoch is None else Fence(self._store.holder, epoch)

    def claim(self, key: Key) -> Claim | None:
        """Lease one request now; None when another replica holds it (or it is finished)."""
        began = self._mono()
        claims = self._store.claim([key], own_only=self._skewed)
        self._note(claims, began)
        return claims[0] if claims else None

    def drop(self, key: Key) -> None:
        """Forget a finished request (or one this replica lost)."""
        with self._lock:
            self._held.pop(key, None)
            self._epochs.pop(key, None)
            self._tracked.discard(key)

    def _scan(self) -> list[Claim]:
        if self._skewed:
            return []
        began = self._mono()
        claims = self._store.claim(None, self._scan_limit)
        self._note(claims, began)
        return claims

    def _note(self, claims: list[Claim], began: float) -> None:
        with self._lock:
            for claim in claims:
                self._held[claim.key] = began + self._ttl
                self._epochs[claim.key] = claim.epoch
                self._tracked.add(claim.key)

    def _renew(self) -> list[Claim]:
        """Renew; returns leases this replica held two rounds running without tracking them
        (created here but never stepped), which would otherwise be renewed unworked forever."""
        began = self._mono()
        try:
            renewal = self._store.renew()
        except StoreError:
            self._on_renewal(False)
            raise
        kept, locked = set(renewal.renewed), renewal.locked
        with self._lock:
            lost = [key for key in self._held if key not in kept and key not in locked]
            untracked = kept - self._tracked
            self._tracked &= kept | locked
            self._held = {key: self._held[key] for key in locked if key in self._held} | (
                dict.fromkeys(kept, began + self._ttl)
            )
            self._epochs = {k: e for k, e in self._epochs.items() if k in kept or k in locked}
        self._report(locked)
        orphans, self._untracked = untracked & self._untracked, untracked
        for owner, request_id in lost:
            self._log.debug("lease ended", owner=owner, request_id=request_id)
        with self._lock:
            self._tracked |= orphans
        return [Claim(key, taken_over=False) for key in sorted(orphans)]

    def _run(self) -> None:
        while not self._stopping.wait(self._ttl / 3):
            if self._clock is not None:
                self._clock.measure()
            try:
                claims = self._renew() + self._scan()
            except StoreError as exc:
                with self._lock:
                    held = sorted(request_id for _, request_id in self._held)
                self._log.warning(
                    "leases not renewed",
                    cause=str(exc),
                    count=len(held),
                    request_ids=held[:_LOGGED_IDS],
                )
                continue
            if claims:
                self._log.info(
                    "requests taken over",
                    count=len(claims),
                    from_other_replicas=sum(c.taken_over for c in claims),
                )
                self._on_claimed(claims)

    # Renewal reports ----------------------------------------------------------------------------

    def _report(self, locked: frozenset[Key]) -> None:
        """Report a round that renewed what it could: failed if a lease's row was locked in
        this round and the one before (a row locked for a moment, by this replica's own write,
        is renewed next round)."""
        stuck = locked & self._locked
        self._locked = locked
        if stuck:
            ids = sorted(request_id for _, request_id in stuck)
            self._log.warning(
                "leases not renewed: their rows are locked by another transaction",
                count=len(stuck),
                request_ids=ids[:_LOGGED_IDS],
            )
        self._on_renewal(not stuck)


def _ignore(complete: bool) -> None:
    """The default renewal report: nothing."""
