"""Reads across the Sectigo account: certificates by name or serial, authorities, licences and
profiles. Certificates found are scoped like requests: a caller sees only those its own requests
issued, unless it is admin."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sectigo_svc.domain import validation
from sectigo_svc.domain.errors import InvalidArgument
from sectigo_svc.domain.service import Caller
from sectigo_svc.domain.upstream import upstream
from sectigo_svc.sectigo import models as sectigo
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.store.base import RequestStore


@dataclass(frozen=True)
class FoundCertificate:
    device_id: str
    common_name: str
    serial_number: str
    status: str
    created: dt.datetime | None


@dataclass(frozen=True)
class Authority:
    id: int
    ecosystem_id: int
    ecosystem_name: str
    profile_id: int
    profile_name: str
    balance: int
    enabled: bool


@dataclass(frozen=True)
class Licences:
    ordered: int
    issued: int


@dataclass(frozen=True)
class ProfileSummary:
    profile_id: int
    algorithms: tuple[str, ...]
    ca: str


@dataclass(frozen=True)
class ProfileParameter:
    name: str
    title: str
    input_type: str
    required: bool
    validation_pattern: str
    message: str


@dataclass(frozen=True)
class ProfileDescription:
    profile_id: int
    name: str
    key_algorithm_info: str
    raw_profile_config: str
    parameters: tuple[ProfileParameter, ...]


class AccountReads:
    def __init__(self, store: RequestStore, sectigo: SectigoClient) -> None:
        self._store = store
        self._sectigo = sectigo

    def find(
        self, caller: Caller, common_name: str, serial_number: str, deadline: Deadline | None
    ) -> list[FoundCertificate]:
        if bool(common_name) == bool(serial_number):
            raise InvalidArgument("criterion", "give exactly one of common_name and serial_number")
        serial = validation.serial_number(serial_number) if serial_number else ""
        name = validation.dns_name(common_name, "common_name") if common_name else ""
        with upstream("find certificates"):
            found = self._sectigo.find(common_name=name, serial_number=serial, deadline=deadline)
        return [
            FoundCertificate(
                item.device_id,
                item.common_name,
                item.serial_number,
                item.status,
                item.creation_date,
            )
            for item in found.items
            if caller.admin or self._owns(caller, item)
        ]

    def _owns(self, caller: Caller, item: sectigo.FoundCertificate) -> bool:
        try:
            serial = validation.serial_number(item.serial_number)
        except InvalidArgument:
            return False
        request = self._store.by_serial(serial)
        return request is not None and request.owner == caller.identity

    def authorities(self, deadline: Deadline | None) -> list[Authority]:
        with upstream("list authorities"):
            found = self._sectigo.authorities(deadline)
        return [
            Authority(
                a.id,
                a.ecosystem_id,
                a.ecosystem_name,
                a.profile_id,
                a.profile_name,
                a.balance,
                a.enabled,
            )
            for a in found
        ]

    def licences(self, deadline: Deadline | None) -> Licences:
        with upstream("read licences"):
            counts = self._sectigo.licenses(deadline)
        return Licences(counts.ordered, counts.issued)

    def profiles(self, deadline: Deadline | None) -> list[ProfileSummary]:
        with upstream("list profiles"):
            found = self._sectigo.profiles(deadline)
        return [ProfileSummary(p.profile_id, p.algorithms, p.ca) for p in found]

    def profile(self, profile_id: int, deadline: Deadline | None) -> ProfileDescription:
        if profile_id <= 0:
            raise InvalidArgument("profile_id", "must be a positive profile id")
        with upstream(f"read profile {profile_id}"):
            detail = self._sectigo.profile_detail(profile_id, deadline)
            parameters = self._sectigo.profile_parameters(profile_id, deadline)
        return ProfileDescription(
            profile_id=detail.profile_id,
            name=detail.profile_name or detail.name,
            key_algorithm_info=detail.key_algorithm_info,
            raw_profile_config=detail.raw_profile_config,
            parameters=tuple(
                ProfileParameter(
                    p.name, p.title, p.input_type, p.required, p.validation_pattern, p.message
                )
                for p in parameters
            ),
        )
