"""Account-level reads: licences, authorities and balances, profiles, parameters, organization."""

from __future__ import annotations

from typing import Any

from sectigo_svc.emulator import errors
from sectigo_svc.emulator.catalog import Profile, Profiles, organization_json
from sectigo_svc.emulator.http import Request, Response, Router
from sectigo_svc.emulator.ledger import Ledger


class AccountRoutes:
    def __init__(self, ledger: Ledger, profiles: Profiles) -> None:
        self._ledger = ledger
        self._profiles = profiles

    def register(self, router: Router) -> None:
        router.add("devices", "GET", "/api/v1/devices", self.devices)
        router.add("authorities", "GET", "/api/v1/authorities/allowed", self.authorities)
        router.add(
            "balance", "GET", "/api/v1/authorities/{authority_id}/balanceavailable", self.balance
        )
        router.add("profiles", "GET", "/api/v1/profiles", self.profiles)
        router.add("profile_detail", "GET", "/api/v1/profiles/{profile_id}", self.profile)
        router.add(
            "profile_parameters",
            "GET",
            "/api/v1/profiles/{profile_id}/parameters",
            self.parameters,
        )
        router.add("organization", "GET", "/api/v1/organizations/user", self.organization)

    def devices(self, _: Request) -> Response:
        return Response.json(200, self._ledger.licences())

    def _authorities(self) -> list[dict[str, Any]]:
        balances = self._ledger.balances()
        return [
            p.authority_json(balances[p.authority_id])
            for p in self._profiles.all
            if p.authority_id in balances
        ]

    def authorities(self, _: Request) -> Response:
        return Response.json(200, self._authorities())

    def balance(self, request: Request) -> Response:
        raw = request.params["authority_id"]
        balances = self._ledger.balances()
        if not raw.isdigit() or int(raw) not in balances:
            raise errors.not_found(f"Authority {raw} not found")
        return Response.json(200, balances[int(raw)])

    def profiles(self, _: Request) -> Response:
        return Response.json(200, [p.summary_json() for p in self._profiles.all])

    def _profile(self, request: Request) -> Profile:
        raw = request.params["profile_id"]
        profile = self._profiles.by_id(int(raw)) if raw.isdigit() else None
        if profile is None:
            raise errors.not_found(f"Profile {raw} not found")
        return profile

    def profile(self, request: Request) -> Response:
        return Response.json(200, self._profile(request).detail_json())

    def parameters(self, request: Request) -> Response:
        return Response.json(200, [p.to_json() for p in self._profile(request).parameters])

    def organization(self, _: Request) -> Response:
        return Response.json(200, organization_json(self._authorities()))
