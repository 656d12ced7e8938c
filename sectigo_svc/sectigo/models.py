"""Immutable models of Sectigo's replies; camelCase stays here, at the wire boundary.

Each ``from_json`` takes the decoded JSON and returns a frozen dataclass with snake_case fields, or
raises :class:`~sectigo_svc.sectigo.json_fields.SchemaError` naming the field that does not fit.
Fields the client does not need to act on are read leniently (missing or null -> empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sectigo_svc.sectigo.batch_status import BatchStatus, normalise_status
from sectigo_svc.sectigo.json_fields import (
    SchemaError,
    as_list,
    as_object,
    id_str,
    optional_bool,
    optional_int,
    optional_str,
    parse_datetime,
    required_int,
    str_mapping,
    str_tuple,
)


@dataclass(frozen=True)
class Tokens:
    """The pair login and refresh return. Never shown in ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Tokens:
        obj = as_object(data, "tokens")
        access = optional_str(obj, "accessToken")
        if not access:
            raise SchemaError("accessToken: missing")
        return cls(access, optional_str(obj, "refreshToken"))


@dataclass(frozen=True)
class BatchResponse:
    """A batch (certificate order), as create, upload, detail and list return it.

    ``status`` is the understood state; ``status_raw`` is what Sectigo sent, kept for states the
    client does not know (``status`` is then ``UNKNOWN``). ``creation_date`` is None when the date
    is missing or in an unknown format; ``creation_date_raw`` keeps the text.
    """

    batch_id: int
    order_number: int
    creation_date: datetime | None
    creation_date_raw: str
    profile: str
    size: int
    status: BatchStatus
    status_raw: str
    active: bool
    batch_name: str
    reject_reason: str
    generator_parameters_values: Any
    user_id: int
    downloadable: bool
    rejectable: bool

    @classmethod
    def from_json(cls, data: Any) -> BatchResponse:
        obj = as_object(data, "batch")
        raw_date = optional_str(obj, "creationDate")
        raw_status = optional_str(obj, "status")
        return cls(
            batch_id=required_int(obj, "batchId"),
            order_number=optional_int(obj, "orderNumber"),
            creation_date=parse_datetime(raw_date),
            creation_date_raw=raw_date,
            profile=optional_str(obj, "profile"),
            size=optional_int(obj, "size"),
            status=normalise_status(raw_status),
            status_raw=raw_status,
            active=optional_bool(obj, "active"),
            batch_name=optional_str(obj, "batchName"),
            reject_reason=optional_str(obj, "rejectReason"),
            generator_parameters_values=obj.get("generatorParametersValues"),
            user_id=optional_int(obj, "userId"),
            downloadable=optional_bool(obj, "downloadable"),
            rejectable=optional_bool(obj, "rejectable"),
        )


def batch_list_from_json(data: Any) -> tuple[BatchResponse, ...]:
    """The batch list: a JSON array of BatchResponse."""
    return tuple(BatchResponse.from_json(item) for item in as_list(data, "batches"))


@dataclass(frozen=True)
class ProcessingInfo:
    """Certificates of a batch still being processed, issued, and failed."""

    active: int
    success: int
    failed: int

    @classmethod
    def from_json(cls, data: Any) -> ProcessingInfo:
        obj = as_object(data, "processing info")
        return cls(
            active=optional_int(obj, "active"),
            success=optional_int(obj, "success"),
            failed=optional_int(obj, "failed"),
        )


@dataclass(frozen=True)
class Licenses:
    """Licences ordered and issued across all authorities (``/devices``)."""

    ordered: int
    issued: int

    @classmethod
    def from_json(cls, data: Any) -> Licenses:
        obj = as_object(data, "licenses")
        return cls(ordered=optional_int(obj, "ordered"), issued=optional_int(obj, "issued"))


@dataclass(frozen=True)
class Authority:
    """An authority the user may order from; ``id`` is what create-batch needs."""

    id: int
    ecosystem_id: int
    signer_certificate_id: int
    ecosystem_name: str
    balance: int
    enabled: bool
    profile_id: int
    profile_name: str

    @classmethod
    def from_json(cls, data: Any) -> Authority:
        obj = as_object(data, "authority")
        return cls(
            id=required_int(obj, "id"),
            ecosystem_id=optional_int(obj, "ecosystemId"),
            signer_certificate_id=optional_int(obj, "signerCertificateId"),
            ecosystem_name=optional_str(obj, "ecosystemName"),
            balance=optional_int(obj, "balance"),
            enabled=optional_bool(obj, "enabled"),
            profile_id=optional_int(obj, "profileId"),
            profile_name=optional_str(obj, "profileName"),
        )


def authorities_from_json(data: Any) -> tuple[Authority, ...]:
    return tuple(Authority.from_json(item) for item in as_list(data, "authorities"))


@dataclass(frozen=True)
class Profile:
    """A certificate profile: its id, key algorithms and CA."""

    profile_id: int
    algorithms: tuple[str, ...]
    ca: str

    @classmethod
    def from_json(cls, data: Any) -> Profile:
        obj = as_object(data, "profile")
        return cls(
            profile_id=required_int(obj, "profileId"),
            algorithms=str_tuple(obj, "algorithms"),
            ca=optional_str(obj, "ca"),
        )


def profiles_from_json(data: Any) -> tuple[Profile, ...]:
    return tuple(Profile.from_json(item) for item in as_list(data, "profiles"))


@dataclass(frozen=True)
class ProfileDetail:
    """One profile's description."""

    profile_name: str
    profile_id: int
    raw_profile_config: str
    name: str
    key_algorithm_info: str

    @classmethod
    def from_json(cls, data: Any) -> ProfileDetail:
        obj = as_object(data, "profile detail")
        return cls(
            profile_name=optional_str(obj, "profileName"),
            profile_id=required_int(obj, "profileId"),
            raw_profile_config=optional_str(obj, "rawProfileConfig"),
            name=optional_str(obj, "name"),
            key_algorithm_info=optional_str(obj, "keyAlgorithmInfo"),
        )


@dataclass(frozen=True)
class ProfileParameter:
    """One parameter a profile takes: key, whether required, and its validation rule."""

    name: str
    input_type: str
    required: bool
    placeholder: Any
    validation_pattern: str
    message: str
    value: Any
    title: str
    scopes: tuple[str, ...]
    dynamic: bool

    @classmethod
    def from_json(cls, data: Any) -> ProfileParameter:
        obj = as_object(data, "profile parameter")
        name = optional_str(obj, "name")
        if not name:
            raise SchemaError("name: missing")
        return cls(
            name=name,
            input_type=optional_str(obj, "inputType"),
            required=optional_bool(obj, "required"),
            placeholder=obj.get("placeholder"),
            validation_pattern=optional_str(obj, "validationPattern"),
            message=optional_str(obj, "message"),
            value=obj.get("value"),
            title=optional_str(obj, "title"),
            scopes=str_tuple(obj, "scopes"),
            dynamic=optional_bool(obj, "dynamic"),
        )


def profile_parameters_from_json(data: Any) -> tuple[ProfileParameter, ...]:
    return tuple(ProfileParameter.from_json(item) for item in as_list(data, "parameters"))


@dataclass(frozen=True)
class Organization:
    """The current user's organization and the authorities it holds."""

    organization_id: int
    organization_name: str
    address: str
    primary_contact_name: str
    primary_contact_email: str
    primary_contact_phone: str
    manufacture_id: str
    logo: str
    authorities: tuple[Authority, ...]
    ecosystem_id: int
    organization_parameters: Mapping[str, str]
    org_status: str

    @classmethod
    def from_json(cls, data: Any) -> Organization:
        obj = as_object(data, "organization")
        return cls(
            organization_id=required_int(obj, "organizationId"),
            organization_name=optional_str(obj, "organizationName"),
            address=optional_str(obj, "address"),
            primary_contact_name=optional_str(obj, "primaryContactName"),
            primary_contact_email=optional_str(obj, "primaryContactEmail"),
            primary_contact_phone=optional_str(obj, "primaryContactPhone"),
            manufacture_id=optional_str(obj, "manufactureId"),
            logo=optional_str(obj, "logo"),
            authorities=authorities_from_json(obj.get("authorities")),
            ecosystem_id=optional_int(obj, "ecosystemId"),
            organization_parameters=str_mapping(obj, "organizationParameters"),
            org_status=optional_str(obj, "orgStatus"),
        )


@dataclass(frozen=True)
class FoundCertificate:
    """A certificate found by common name or serial. ``device_id`` is a string whatever was sent."""

    device_id: str
    common_name: str
    serial_number: str
    creation_date: datetime | None
    creation_date_raw: str
    status: str

    @classmethod
    def from_json(cls, data: Any) -> FoundCertificate:
        obj = as_object(data, "certificate")
        raw_date = optional_str(obj, "creationDate")
        return cls(
            device_id=id_str(obj, "deviceId"),
            common_name=optional_str(obj, "commonName"),
            serial_number=optional_str(obj, "serialNumber"),
            creation_date=parse_datetime(raw_date),
            creation_date_raw=raw_date,
            status=optional_str(obj, "status"),
        )


@dataclass(frozen=True)
class FindResult:
    """The reply of a certificate search."""

    total_count: int
    items: tuple[FoundCertificate, ...]

    @classmethod
    def from_json(cls, data: Any) -> FindResult:
        obj = as_object(data, "find result")
        items = tuple(FoundCertificate.from_json(i) for i in as_list(obj.get("items"), "items"))
        return cls(total_count=optional_int(obj, "totalCount", len(items)), items=items)
