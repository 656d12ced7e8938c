"""Pure conversions between protobuf messages and domain values; no logic beyond the mapping."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf.timestamp_pb2 import Timestamp

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.domain.account import (
    Authority,
    FoundCertificate,
    Licences,
    ProfileDescription,
    ProfileSummary,
)
from sectigo_svc.domain.errors import InvalidArgument
from sectigo_svc.domain.models import (
    CertificateRequest,
    KeySource,
    RequestState,
    RevocationReason,
    Subject,
)
from sectigo_svc.domain.service import Download, IssueInput, ServerKeyInput

_STATES = {state: pb.RequestState.Value(f"REQUEST_STATE_{state.value}") for state in RequestState}
_STATES_BACK = {number: state for state, number in _STATES.items()}
_KEY_SOURCES = {
    KeySource.CSR: pb.KEY_SOURCE_CSR,
    KeySource.SERVER: pb.KEY_SOURCE_SERVER,
}


def _timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(dt.UTC).replace(tzinfo=None))
    return stamp


def issue_input(message: pb.IssueCertificateRequest) -> IssueInput:
    key = message.WhichOneof("key")
    server_key = None
    if key == "server_key":
        spec = message.server_key
        server_key = ServerKeyInput(
            common_name=spec.common_name,
            dns_names=tuple(spec.dns_names),
            subject=Subject(
                organization=spec.subject.organization,
                locality=spec.subject.locality,
                state=spec.subject.state,
                country=spec.subject.country,
            ),
            pkcs12_password=spec.pkcs12_password,
        )
    return IssueInput(
        request_id=message.request_id,
        csr_pem=message.csr_pem if key == "csr_pem" else "",
        server_key=server_key,
        authority_id=message.authority_id,
    )


# Sectigo's own texts (a rejection reason, a raw batch status) are shown up to this many
# characters, so that one request's message stays small whatever Sectigo sends; everything a
# caller sends is bounded by validation.
MAX_SECTIGO_TEXT = 1024


def _clipped(text: str) -> str:
    return text if len(text) <= MAX_SECTIGO_TEXT else text[: MAX_SECTIGO_TEXT - 3] + "..."


def _field_bytes(size: int) -> int:
    """What an embedded message of ``size`` bytes takes in a repeated field: a one-byte tag,
    its length as a varint, and itself."""
    return 1 + max(1, (size.bit_length() + 6) // 7) + size


def request_size(request: CertificateRequest) -> int:
    """The bytes ``request`` adds to a ListCertificateRequestsResponse."""
    return _field_bytes(request_message(request).ByteSize())


def request_message(
    request: CertificateRequest, pkcs12_password: str = ""
) -> pb.CertificateRequest:
    spec = request.spec
    return pb.CertificateRequest(
        request_id=request.request_id,
        owner=request.owner,
        state=_STATES[request.state],
        key_source=_KEY_SOURCES[spec.key_source],
        common_name=spec.common_name,
        dns_names=list(spec.dns_names),
        authority_id=spec.authority_id,
        profile_id=spec.profile_id,
        batch_id=request.batch_id or 0,
        batch_name=request.batch_name,
        sectigo_status=_clipped(request.sectigo_status),
        reason=_clipped(request.reason),
        serial_number=request.serial_number,
        create_time=_timestamp(request.created_at),
        update_time=_timestamp(request.updated_at),
        not_before=_timestamp(request.not_before),
        not_after=_timestamp(request.not_after),
        pkcs12_password=pkcs12_password,
    )


MAX_STATES = 32


def states(values: Sequence[pb.RequestState.ValueType]) -> frozenset[RequestState]:
    if len(values) > MAX_STATES:
        raise InvalidArgument("states", f"at most {MAX_STATES} states")
    found = set()
    for value in values:
        if value not in _STATES_BACK:
            raise InvalidArgument("states", f"{value} is not a request state")
        found.add(_STATES_BACK[value])
    return frozenset(found)


def reason(value: pb.RevocationReason.ValueType) -> RevocationReason:
    try:
        return RevocationReason(value)
    except ValueError:
        raise InvalidArgument("reason", f"{value} is not an RFC 5280 reason in use") from None


def download_message(download: Download) -> pb.DownloadCertificateResponse:
    leaf = x509.load_pem_x509_certificate(download.certificate_pem.encode())
    der = leaf.public_bytes(Encoding.DER)
    return pb.DownloadCertificateResponse(
        certificate_pem=download.certificate_pem,
        chain_pem=download.chain_pem,
        serial_number=format(leaf.serial_number, "X"),
        not_before=_timestamp(leaf.not_valid_before_utc),
        not_after=_timestamp(leaf.not_valid_after_utc),
        sha256_fingerprint=hashlib.sha256(der).hexdigest(),
        sha1_fingerprint=hashlib.sha1(der).hexdigest(),  # noqa: S324 - a fingerprint, not security
        pkcs12=download.pkcs12,
        pkcs12_password=download.pkcs12_password,
        sectigo_pkcs12=download.sectigo_pkcs12,
        private_key_pem=download.private_key_pem,
        state=_STATES[download.request.state],
    )


def _found_message(item: FoundCertificate) -> pb.FoundCertificate:
    return pb.FoundCertificate(
        device_id=item.device_id,
        common_name=item.common_name,
        serial_number=item.serial_number,
        status=item.status,
        create_time=_timestamp(item.created),
    )


def found_size(item: FoundCertificate) -> int:
    """The bytes ``item`` adds to a FindCertificatesResponse."""
    return _field_bytes(_found_message(item).ByteSize())


def find_message(
    found: Iterable[FoundCertificate], next_page_token: str = ""
) -> pb.FindCertificatesResponse:
    return pb.FindCertificatesResponse(
        certificates=[_found_message(item) for item in found],
        next_page_token=next_page_token,
    )


def authorities_message(authorities: Iterable[Authority]) -> pb.ListAuthoritiesResponse:
    return pb.ListAuthoritiesResponse(
        authorities=[
            pb.Authority(
                id=a.id,
                ecosystem_id=a.ecosystem_id,
                ecosystem_name=a.ecosystem_name,
                profile_id=a.profile_id,
                profile_name=a.profile_name,
                balance=a.balance,
                enabled=a.enabled,
            )
            for a in authorities
        ]
    )


def licences_message(licences: Licences) -> pb.Licenses:
    return pb.Licenses(ordered=licences.ordered, issued=licences.issued)


def profiles_message(profiles: Iterable[ProfileSummary]) -> pb.ListProfilesResponse:
    return pb.ListProfilesResponse(
        profiles=[
            pb.ProfileSummary(profile_id=p.profile_id, algorithms=list(p.algorithms), ca=p.ca)
            for p in profiles
        ]
    )


def profile_message(profile: ProfileDescription) -> pb.Profile:
    return pb.Profile(
        profile_id=profile.profile_id,
        name=profile.name,
        key_algorithm_info=profile.key_algorithm_info,
        raw_profile_config=profile.raw_profile_config,
        parameters=[
            pb.ProfileParameter(
                name=p.name,
                title=p.title,
                input_type=p.input_type,
                required=p.required,
                validation_pattern=p.validation_pattern,
                message=p.message,
            )
            for p in profile.parameters
        ],
    )
