"""Models read the wire leniently (dates, ids, unknown states); wrong types name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sectigo_svc.sectigo.batch_status import BatchStatus, normalise_status, parse_status_text
from sectigo_svc.sectigo.json_fields import SchemaError, parse_datetime
from sectigo_svc.sectigo.models import (
    BatchResponse,
    FindResult,
    Organization,
    ProfileParameter,
    Tokens,
    batch_list_from_json,
)

BATCH: dict[str, Any] = {
    "batchId": 10000,
    "orderNumber": 100000,
    "creationDate": "2020-12-10T16:35:32.805+0000",
    "profile": "TRISA Profile",
    "size": 1,
    "status": "CREATED",
    "active": True,
    "batchName": "req-1",
    "rejectReason": "",
    "generatorParametersValues": None,
    "userId": 10,
    "downloadable": False,
    "rejectable": True,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-12-10T16:35:32.805+0000", datetime(2020, 12, 10, 16, 35, 32, 805000, UTC)),
        ("2020-12-10T16:35:32Z", datetime(2020, 12, 10, 16, 35, 32, tzinfo=UTC)),
        ("2020-12-10T16:35:32.123456789Z", datetime(2020, 12, 10, 16, 35, 32, 123456, UTC)),
        ("2020-12-10T18:35:32.5+02:00", datetime(2020, 12, 10, 16, 35, 32, 500000, UTC)),
        ("2020-12-10T16:35:32", datetime(2020, 12, 10, 16, 35, 32, tzinfo=UTC)),
    ],
)
def test_dates_in_every_seen_form(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "10/12/2020", "2020-13-45T00:00:00Z"])
def test_unreadable_dates_are_none_not_errors(text: str) -> None:
    assert parse_datetime(text) is None


def test_batch_response_maps_camel_case_to_snake_case() -> None:
    batch = BatchResponse.from_json(BATCH)
    assert batch.batch_id == 10000
    assert batch.order_number == 100000
    assert batch.status is BatchStatus.CREATED
    assert batch.creation_date == datetime(2020, 12, 10, 16, 35, 32, 805000, UTC)
    assert batch.batch_name == "req-1"
    assert batch.rejectable and not batch.downloadable


def test_unknown_batch_states_are_kept_not_fatal() -> None:
    batch = BatchResponse.from_json(BATCH | {"status": "PENDING_CREATION"})
    assert batch.status is BatchStatus.UNKNOWN
    assert batch.status_raw == "PENDING_CREATION"


def test_missing_optional_fields_read_as_empty_and_ids_may_be_strings() -> None:
    batch = BatchResponse.from_json({"batchId": "42"})
    assert batch.batch_id == 42
    assert batch.status is BatchStatus.UNKNOWN
    assert batch.creation_date is None
    assert batch_list_from_json(None) == ()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "batchId"),
        ({"batchId": True}, "batchId"),
        ({"batchId": 1, "size": "many"}, "size"),
        ({"batchId": 1, "active": "yes"}, "active"),
        ({"batchId": 1, "batchName": 5}, "batchName"),
    ],
)
def test_wrong_types_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(SchemaError, match=field):
        BatchResponse.from_json(data)


def test_a_list_where_an_object_belongs_is_refused() -> None:
    with pytest.raises(SchemaError, match="expected a JSON object"):
        BatchResponse.from_json([BATCH])


@pytest.mark.parametrize(
    ("raw", "status", "detail"),
    [
        ("Ready for download", BatchStatus.READY_FOR_DOWNLOAD, ""),
        ("  ready   for download\n", BatchStatus.READY_FOR_DOWNLOAD, ""),
        ("READY_FOR_DOWNLOAD", BatchStatus.READY_FOR_DOWNLOAD, ""),
        ("Processing", BatchStatus.PROCESSING, ""),
        ("Failed", BatchStatus.FAILED, ""),
        ("Not Acceptable. Status: Rejected", BatchStatus.NOT_ACCEPTABLE, "Rejected"),
        ("Not Acceptable", BatchStatus.NOT_ACCEPTABLE, ""),
        ("NOT_ACCEPTABLE", BatchStatus.NOT_ACCEPTABLE, ""),
        ("Zip removed after expiration", BatchStatus.REMOVED_AFTER_EXPIRATION, ""),
        ("Batch Issued Partly", BatchStatus.UNKNOWN, ""),
        ("", BatchStatus.UNKNOWN, ""),
    ],
)
def test_text_status_normalisation(raw: str, status: BatchStatus, detail: str) -> None:
    parsed = parse_status_text(raw)
    assert parsed.status is status
    assert parsed.detail == detail
    assert parsed.raw == raw


def test_collected_and_created_are_known_states() -> None:
    assert normalise_status("COLLECTED") is BatchStatus.COLLECTED
    assert normalise_status("created") is BatchStatus.CREATED


@pytest.mark.parametrize("device_id", ["5f0c-uuid", 42])
def test_find_accepts_string_and_integer_device_ids(device_id: object) -> None:
    result = FindResult.from_json(
        {
            "totalCount": 1,
            "items": [
                {
                    "deviceId": device_id,
                    "commonName": "a.example.com",
                    "serialNumber": "0A1B",
                    "creationDate": "2020-12-10T16:35:32Z",
                    "status": "ISSUED",
                }
            ],
        }
    )
    assert result.items[0].device_id == str(device_id)
    assert result.items[0].creation_date is not None


def test_find_without_total_count_counts_items() -> None:
    assert FindResult.from_json({"items": [{"deviceId": "x"}]}).total_count == 1


def test_organization_parameters_are_read_only() -> None:
    org = Organization.from_json({"organizationId": 1, "organizationParameters": {"a": "b"}})
    assert dict(org.organization_parameters) == {"a": "b"}
    with pytest.raises(TypeError):
        org.organization_parameters["a"] = "c"  # type: ignore[index]


def test_profile_parameter_keeps_rule_fields() -> None:
    param = ProfileParameter.from_json(
        {"name": "commonName", "required": True, "validationPattern": "^x$", "scopes": None}
    )
    assert param.required and param.validation_pattern == "^x$" and param.scopes == ()


def test_tokens_never_show_in_repr() -> None:
    tokens = Tokens.from_json({"accessToken": "AAA.secret", "refreshToken": "RRR.secret"})
    assert "secret" not in repr(tokens)
    with pytest.raises(SchemaError, match="accessToken"):
        Tokens.from_json({"refreshToken": "x"})
