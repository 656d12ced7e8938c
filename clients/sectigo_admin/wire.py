"""The client's models back in Sectigo's wire shape: camelCase names in the documented order.

Operators compare this output with Sectigo's documentation and support answers, so it shows the
API's own field names and the raw strings Sectigo sent (a status the client does not know, a date
in an unexpected format) rather than the client's normalised reading of them.
"""

from __future__ import annotations

from typing import Any

from sectigo_svc.sectigo.batch_status import StatusText
from sectigo_svc.sectigo.models import (
    Authority,
    BatchResponse,
    FindResult,
    FoundCertificate,
    Licenses,
    Organization,
    ProcessingInfo,
    Profile,
    ProfileDetail,
    ProfileParameter,
)

Json = dict[str, Any]


def batch(value: BatchResponse) -> Json:
    return {
        "batchId": value.batch_id,
        "orderNumber": value.order_number,
        "creationDate": value.creation_date_raw,
        "profile": value.profile,
        "size": value.size,
        "status": value.status_raw,
        "active": value.active,
        "batchName": value.batch_name,
        "rejectReason": value.reject_reason,
        "generatorParametersValues": _masked(value.generator_parameters_values),
        "userId": value.user_id,
        "downloadable": value.downloadable,
        "rejectable": value.rejectable,
    }


def _masked(values: Any) -> Any:
    """Sectigo may echo the order's parameters here; a PKCS#12 password among them is hidden."""
    if isinstance(values, dict):
        return {
            k: "[redacted]" if "password" in str(k).lower() else _masked(v)
            for k, v in values.items()
        }
    if isinstance(values, list):
        return [_masked(v) for v in values]
    return values


def processing(value: ProcessingInfo) -> Json:
    return {"active": value.active, "success": value.success, "failed": value.failed}


def batch_status(text: StatusText, info: ProcessingInfo) -> Json:
    """The text status as sent, the state it means, then the processing counts."""
    return {"status": text.raw.strip(), "state": text.status.value, **processing(info)}


def licenses(value: Licenses) -> Json:
    return {"ordered": value.ordered, "issued": value.issued}


def authority(value: Authority) -> Json:
    return {
        "id": value.id,
        "ecosystemId": value.ecosystem_id,
        "signerCertificateId": value.signer_certificate_id,
        "ecosystemName": value.ecosystem_name,
        "balance": value.balance,
        "enabled": value.enabled,
        "profileId": value.profile_id,
        "profileName": value.profile_name,
    }


def profile(value: Profile) -> Json:
    return {"profileId": value.profile_id, "algorithms": list(value.algorithms), "ca": value.ca}


def profile_detail(value: ProfileDetail) -> Json:
    return {
        "profileName": value.profile_name,
        "profileId": value.profile_id,
        "rawProfileConfig": value.raw_profile_config,
        "name": value.name,
        "keyAlgorithmInfo": value.key_algorithm_info,
    }


def profile_parameter(value: ProfileParameter) -> Json:
    return {
        "name": value.name,
        "inputType": value.input_type,
        "required": value.required,
        "placeholder": value.placeholder,
        "validationPattern": value.validation_pattern,
        "message": value.message,
        "value": value.value,
        "title": value.title,
        "scopes": list(value.scopes),
        "dynamic": value.dynamic,
    }


def organization(value: Organization) -> Json:
    return {
        "organizationId": value.organization_id,
        "organizationName": value.organization_name,
        "address": value.address,
        "primaryContactName": value.primary_contact_name,
        "primaryContactEmail": value.primary_contact_email,
        "primaryContactPhone": value.primary_contact_phone,
        "manufactureId": value.manufacture_id,
        "logo": value.logo,
        "authorities": [authority(a) for a in value.authorities],
        "ecosystemId": value.ecosystem_id,
        "organizationParameters": dict(value.organization_parameters),
        "orgStatus": value.org_status,
    }


def found_certificate(value: FoundCertificate) -> Json:
    return {
        "deviceId": value.device_id,
        "commonName": value.common_name,
        "serialNumber": value.serial_number,
        "creationDate": value.creation_date_raw,
        "status": value.status,
    }


def find_result(value: FindResult) -> Json:
    return {
        "totalCount": value.total_count,
        "items": [found_certificate(item) for item in value.items],
    }
