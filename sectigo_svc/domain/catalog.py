"""The account's authorities and profile parameters, cached briefly.

Issuing checks an order against these before recording it; fetching them on every request would
put two Sectigo reads in front of every issuance for data that changes rarely.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sectigo_svc.domain.errors import InvalidArgument, NotFound, ResourceExhausted, Unavailable
from sectigo_svc.domain.upstream import upstream
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.models import Authority, Profile, ProfileParameter

PROFILE_RETRY_SECONDS = 1.0


class Catalog:
    """Cached reads of authorities and profile parameters; thread-safe."""

    def __init__(
        self, sectigo: SectigoClient, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._sectigo = sectigo
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._authorities: tuple[float, tuple[Authority, ...]] | None = None
        self._parameters: dict[int, tuple[float, tuple[ProfileParameter, ...]]] = {}
        self._profiles: tuple[float, tuple[Profile, ...]] | None = None

    def _fresh(self, fetched_at: float) -> bool:
        return self._clock() - fetched_at < self._ttl

    def authorities(self, deadline: Deadline | None) -> tuple[Authority, ...]:
        with self._lock:
            cached = self._authorities
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        with upstream("list authorities"):
            found = self._sectigo.authorities(deadline)
        with self._lock:
            self._authorities = (self._clock(), found)
        return found

    def authority(self, authority_id: int, deadline: Deadline | None) -> Authority:
        """The enabled authority to issue through, with licences left, or a clear refusal."""
        for authority in self.authorities(deadline):
            if authority.id == authority_id:
                if not authority.enabled:
                    raise InvalidArgument("authority_id", f"authority {authority_id} is disabled")
                if authority.balance <= 0:
                    raise ResourceExhausted(f"authority {authority_id} has no licences left")
                return authority
        raise InvalidArgument("authority_id", f"authority {authority_id} is not available")

    def parameters(
        self, profile_id: int, deadline: Deadline | None
    ) -> tuple[ProfileParameter, ...]:
        with self._lock:
            cached = self._parameters.get(profile_id)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        try:
            with upstream("read profile parameters"):
                found = self._sectigo.profile_parameters(profile_id, deadline)
        except NotFound as exc:
            # The profile id comes from Sectigo's own authority list: a 404 is transient.
            raise Unavailable(
                f"read profile parameters: Sectigo did not find profile {profile_id}, which its "
                "authorities name; try again",
                retry_after=PROFILE_RETRY_SECONDS,
            ) from exc
        with self._lock:
            self._parameters[profile_id] = (self._clock(), found)
        return found

    def profile(self, profile_id: int, deadline: Deadline | None) -> Profile:
        """The profile as ``GET /profiles`` lists it (its ``algorithms``), cached like the rest.

        A profile Sectigo's own authorities name but the list lacks is a passing fault:
        :class:`Unavailable` with a retry time.
        """
        with self._lock:
            cached = self._profiles
        if cached is None or not self._fresh(cached[0]):
            with upstream("list profiles"):
                found = self._sectigo.profiles(deadline)
            cached = (self._clock(), found)
            with self._lock:
                self._profiles = cached
        profile = next((p for p in cached[1] if p.profile_id == profile_id), None)
        if profile is None:
            raise Unavailable(
                f"Sectigo does not list profile {profile_id}, which its authorities name; "
                "try again",
                retry_after=PROFILE_RETRY_SECONDS,
            )
        return profile

    def forget_authorities(self) -> None:
        """Drop cached balances, e.g. after Sectigo refused an order for lack of licences."""
        with self._lock:
            self._authorities = None
