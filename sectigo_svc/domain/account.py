"""Reads across the Sectigo account: certificates by name or serial, authorities, licences and
profiles. Certificates found are scoped like requests: a caller sees only those its own requests
issued, unless it is admin."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Callable
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


@dataclass(frozen=True)
class FoundPage:
    certificates: list[FoundCertificate]
    next_page_token: str


MAX_FIND_PAGE = 500
_FIND_TOKEN = re.compile(r"f1:([0-9A-F]{1,40}):([0-9a-f]{32})")
_MAX_FIND_TOKEN_CHARS = 128


def _order_key(item: sectigo.FoundCertificate) -> tuple[int, str] | None:
    """Where a certificate goes in the find order: its serial number, then (for the rare equal
    serials of two issuing CAs) a digest of its device id, which keeps tokens small."""
    try:
        serial = int(validation.serial_number(item.serial_number), 16)
    except InvalidArgument:
        return None
    return serial, hashlib.sha256(item.device_id.encode()).hexdigest()[:32]


def _encode_find_token(key: tuple[int, str] | None) -> str:
    assert key is not None
    serial, device_id = key
    return base64.urlsafe_b64encode(f"f1:{serial:X}:{device_id}".encode()).decode()


def _decode_find_token(token: str) -> tuple[int, str] | None:
    """The last (serial, device id) a :func:`_encode_find_token` token showed, or
    InvalidArgument for anything that token could not be."""
    if not token:
        return None
    key = None
    if len(token) <= _MAX_FIND_TOKEN_CHARS:
        try:
            text = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
            found = _FIND_TOKEN.fullmatch(text.decode("ascii"))
        except (ValueError, binascii.Error):
            found = None
        if found is not None:
            key = (int(found[1], 16), found[2])
            if _encode_find_token(key) != token:
                key = None
    if key is None:
        raise InvalidArgument("page_token", "is not a token this service returned")
    return key


class AccountReads:
    def __init__(self, store: RequestStore, sectigo: SectigoClient) -> None:
        self._store = store
        self._sectigo = sectigo

    def find(
        self,
        caller: Caller,
        common_name: str,
        serial_number: str,
        deadline: Deadline | None,
        *,
        page_size: int = 0,
        page_token: str = "",
        measure: Callable[[FoundCertificate], int] | None = None,
        budget: int = 0,
    ) -> FoundPage:
        """A page of the certificates Sectigo finds, in ascending serial number order (then
        device id): at most ``page_size`` (0: no count limit) and, with ``measure``, at most
        ``budget`` by it, never fewer than one. The token holds the last certificate shown, so
        pages stay right while Sectigo's list grows. Certificates whose serial number is not
        hexadecimal cannot be placed in that order and are left out."""
        if bool(common_name) == bool(serial_number):
            raise InvalidArgument("criterion", "give exactly one of common_name and serial_number")
        if not 0 <= page_size <= MAX_FIND_PAGE:
            raise InvalidArgument(
                "page_size", f"must be between 0 and {MAX_FIND_PAGE} (0: as many as fit)"
            )
        serial = validation.serial_number(serial_number) if serial_number else ""
        name = validation.dns_name(common_name, "common_name") if common_name else ""
        after = _decode_find_token(page_token)
        with upstream("find certificates"):
            found = self._sectigo.find(common_name=name, serial_number=serial, deadline=deadline)
        ordered = sorted(
            (key, item) for item in found.items if (key := _order_key(item)) is not None
        )
        shown: list[FoundCertificate] = []
        last: tuple[int, str] | None = None
        total = 0
        for key, item in ordered:
            if after is not None and key <= after:
                continue
            if not (caller.admin or self._owns(caller, item)):
                continue
            certificate = FoundCertificate(
                item.device_id,
                item.common_name,
                item.serial_number,
                item.status,
                item.creation_date,
            )
            total += measure(certificate) if measure is not None else 0
            if shown and (len(shown) == page_size or (measure is not None and total > budget)):
                return FoundPage(shown, _encode_find_token(last))
            shown.append(certificate)
            last = key
        return FoundPage(shown, "")

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
