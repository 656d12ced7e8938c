"""Reads across the Sectigo account: certificates by name or serial, authorities, licences and
profiles. Certificates found are scoped like requests: a caller sees only those its own requests
issued, unless it is admin."""

from __future__ import annotations

import dataclasses

from sectigo_svc.domain import validation
from sectigo_svc.domain.errors import InvalidArgument
from sectigo_svc.domain.service import Caller
from sectigo_svc.domain.upstream import upstream
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.models import (
    Authority,
    FindResult,
    FoundCertificate,
    Licenses,
    Profile,
    ProfileDetail,
    ProfileParameter,
)
from sectigo_svc.store.base import RequestStore


class AccountReads:
    def __init__(self, store: RequestStore, sectigo: SectigoClient) -> None:
        self._store = store
        self._sectigo = sectigo

    def find(
        self, caller: Caller, common_name: str, serial_number: str, deadline: Deadline | None
    ) -> FindResult:
        if bool(common_name) == bool(serial_number):
            raise InvalidArgument("criterion", "give exactly one of common_name and serial_number")
        serial = validation.serial_number(serial_number) if serial_number else ""
        name = validation.dns_name(common_name, "common_name") if common_name else ""
        with upstream("find certificates"):
            found = self._sectigo.find(common_name=name, serial_number=serial, deadline=deadline)
        if caller.admin:
            return found
        mine = tuple(item for item in found.items if self._owns(caller, item))
        return dataclasses.replace(found, total_count=len(mine), items=mine)

    def _owns(self, caller: Caller, item: FoundCertificate) -> bool:
        try:
            serial = validation.serial_number(item.serial_number)
        except InvalidArgument:
            return False
        request = self._store.by_serial(serial)
        return request is not None and request.owner == caller.identity

    def authorities(self, deadline: Deadline | None) -> tuple[Authority, ...]:
        with upstream("list authorities"):
            return self._sectigo.authorities(deadline)

    def licenses(self, deadline: Deadline | None) -> Licenses:
        with upstream("read licences"):
            return self._sectigo.licenses(deadline)

    def profiles(self, deadline: Deadline | None) -> tuple[Profile, ...]:
        with upstream("list profiles"):
            return self._sectigo.profiles(deadline)

    def profile(
        self, profile_id: int, deadline: Deadline | None
    ) -> tuple[ProfileDetail, tuple[ProfileParameter, ...]]:
        if profile_id <= 0:
            raise InvalidArgument("profile_id", "must be a positive profile id")
        with upstream(f"read profile {profile_id}"):
            detail = self._sectigo.profile_detail(profile_id, deadline)
            return detail, self._sectigo.profile_parameters(profile_id, deadline)
