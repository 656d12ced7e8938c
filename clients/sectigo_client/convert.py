"""Pure conversions between the generated protobuf messages and the client's dataclasses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_client.models import (
    Authority,
    Certificate,
    CertificateRecord,
    FoundCertificate,
    KeySource,
    Licenses,
    Profile,
    ProfileParameter,
    ProfileSummary,
    RequestState,
    RevocationReason,
    Subject,
)

_STATE_PREFIX = "REQUEST_STATE_"
_KEY_PREFIX = "KEY_SOURCE_"


def _time(message: Message, name: str) -> dt.datetime | None:
    """A Timestamp field as an aware UTC datetime; None when the server left it unset."""
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=dt.UTC)


def state(value: pb.RequestState.ValueType) -> RequestState:
    """A state number; numbers this client does not know (a newer server) read UNSPECIFIED."""
    if value not in pb.RequestState.values():
        return RequestState.UNSPECIFIED
    return RequestState(pb.RequestState.Name(value).removeprefix(_STATE_PREFIX))


def state_number(value: RequestState) -> pb.RequestState.ValueType:
    return pb.RequestState.Value(_STATE_PREFIX + value.value)


def reason_number(value: RevocationReason) -> pb.RevocationReason.ValueType:
    return pb.RevocationReason.ValueType(int(value))


def subject_message(subject: Subject) -> pb.Subject:
    return pb.Subject(
        organization=subject.organization,
        locality=subject.locality,
        state=subject.state,
        country=subject.country,
    )


def record(message: pb.CertificateRequest) -> CertificateRecord:
    known = message.key_source in pb.KeySource.values()
    key_source = (
        KeySource(pb.KeySource.Name(message.key_source).removeprefix(_KEY_PREFIX))
        if known
        else KeySource.UNSPECIFIED
    )
    return CertificateRecord(
        request_id=message.request_id,
        owner=message.owner,
        state=state(message.state),
        key_source=key_source,
        common_name=message.common_name,
        dns_names=tuple(message.dns_names),
        authority_id=message.authority_id,
        profile_id=message.profile_id,
        batch_id=message.batch_id,
        batch_name=message.batch_name,
        sectigo_status=message.sectigo_status,
        reason=message.reason,
        serial_number=message.serial_number,
        create_time=_time(message, "create_time"),
        update_time=_time(message, "update_time"),
        not_before=_time(message, "not_before"),
        not_after=_time(message, "not_after"),
        pkcs12_password=message.pkcs12_password,
    )


def certificate(message: pb.DownloadCertificateResponse) -> Certificate:
    return Certificate(
        certificate_pem=message.certificate_pem,
        chain_pem=message.chain_pem,
        serial_number=message.serial_number,
        not_before=_time(message, "not_before"),
        not_after=_time(message, "not_after"),
        sha256_fingerprint=message.sha256_fingerprint,
        sha1_fingerprint=message.sha1_fingerprint,
        pkcs12=message.pkcs12,
        pkcs12_password=message.pkcs12_password,
        private_key_pem=message.private_key_pem,
        sectigo_pkcs12=message.sectigo_pkcs12,
        state=state(message.state),
    )


def found(messages: Iterable[pb.FoundCertificate]) -> tuple[FoundCertificate, ...]:
    return tuple(
        FoundCertificate(
            device_id=m.device_id,
            common_name=m.common_name,
            serial_number=m.serial_number,
            status=m.status,
            create_time=_time(m, "create_time"),
        )
        for m in messages
    )


def authorities(messages: Iterable[pb.Authority]) -> tuple[Authority, ...]:
    return tuple(
        Authority(
            id=m.id,
            ecosystem_id=m.ecosystem_id,
            ecosystem_name=m.ecosystem_name,
            profile_id=m.profile_id,
            profile_name=m.profile_name,
            balance=m.balance,
            enabled=m.enabled,
        )
        for m in messages
    )


def licenses(message: pb.Licenses) -> Licenses:
    return Licenses(ordered=message.ordered, issued=message.issued)


def profiles(messages: Iterable[pb.ProfileSummary]) -> tuple[ProfileSummary, ...]:
    return tuple(
        ProfileSummary(profile_id=m.profile_id, algorithms=tuple(m.algorithms), ca=m.ca)
        for m in messages
    )


def profile(message: pb.Profile) -> Profile:
    return Profile(
        profile_id=message.profile_id,
        name=message.name,
        key_algorithm_info=message.key_algorithm_info,
        raw_profile_config=message.raw_profile_config,
        parameters=tuple(
            ProfileParameter(
                name=p.name,
                title=p.title,
                input_type=p.input_type,
                required=p.required,
                validation_pattern=p.validation_pattern,
                message=p.message,
            )
            for p in message.parameters
        ),
    )
