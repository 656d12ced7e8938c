"""Batches: creation and its errors, detail/status/processing_info/download, listing, states."""

from __future__ import annotations

import datetime
import re
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Connect
from tests.emulator.helpers import (
    AUTHORITY_1,
    AUTHORITY_2,
    JSON_CT,
    P12_PASSWORD,
    Api,
    Management,
    assert_batch_response,
    assert_error,
    assert_json_content_type,
    assert_licence_invariant,
    content_disposition_filename,
    end_entity_params,
    media_type,
    server_params,
    unzip,
)

VALIDATION = -10
NOT_FOUND = -11
NOT_READY = -12
NO_LICENCE = -13


def parse_creation_date(text: str) -> datetime.datetime:
    """Sectigo's ``…SSS+0000`` or RFC 3339 (possibly with nanoseconds)."""
    found = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)", text)
    assert found is not None, text
    seconds, fraction, zone = found.groups()
    zone = "+00:00" if zone == "Z" else f"{zone[:3]}:{zone[-2:]}"
    micros = (fraction or "0")[:6].ljust(6, "0")
    return datetime.datetime.fromisoformat(f"{seconds}.{micros}{zone}")


def test_create_batch_happy_path(api: Api) -> None:
    before = time.time()
    response = api.create_batch(server_params(), batch_name="first batch")
    assert response.status_code == 200, response.text
    assert_json_content_type(response)
    batch = response.json()
    assert_batch_response(batch)
    assert batch["status"] == "CREATED"
    assert batch["batchId"] == 10000
    assert batch["orderNumber"] == 10000 + 90000
    assert batch["userId"] == 10
    assert batch["size"] == 1
    assert batch["batchName"] == "first batch"
    assert batch["profile"] == "TRISA Profile"
    assert batch["rejectable"] is True
    assert batch["downloadable"] is False
    created = parse_creation_date(batch["creationDate"]).timestamp()
    assert before - 5 <= created <= time.time() + 5

    second = api.create_batch(server_params("two.example.com"))
    assert second.json()["batchId"] == 10001
    assert second.json()["orderNumber"] == 100001


def test_create_batch_end_entity_profile(api: Api) -> None:
    batch_id = api.created_batch_id(end_entity_params(), authority_id=AUTHORITY_2)
    detail = api.wait_for_batch(batch_id)
    assert detail["status"] == "READY_FOR_DOWNLOAD", detail
    assert detail["profile"] == "TRISA End Entity"


def _invalid_bodies() -> list[tuple[str, Any]]:
    good = server_params()
    unknown = {**good, "favouriteColour": "blue"}
    missing = {k: v for k, v in good.items() if k != "pkcs12Password"}
    empty_value = {**good, "commonName": ""}
    int_value = {**good, "pkcs12Password": 12345678}
    null_value = {**good, "pkcs12Password": None}
    list_value = {**good, "dNSName": ["example.com"]}
    return [
        ("unknown-parameter", {"authorityId": 42, "batchName": "b", "profileParams": unknown}),
        ("missing-parameter", {"authorityId": 42, "batchName": "b", "profileParams": missing}),
        ("empty-value", {"authorityId": 42, "batchName": "b", "profileParams": empty_value}),
        ("int-value", {"authorityId": 42, "batchName": "b", "profileParams": int_value}),
        ("null-value", {"authorityId": 42, "batchName": "b", "profileParams": null_value}),
        ("list-value", {"authorityId": 42, "batchName": "b", "profileParams": list_value}),
        ("empty-batch-name", {"authorityId": 42, "batchName": "", "profileParams": good}),
        ("no-profile-params", {"authorityId": 42, "batchName": "b"}),
        ("missing-ee-field", {"authorityId": 85, "batchName": "b", "profileParams": good}),
    ]


@pytest.mark.parametrize(
    ("case", "body"), _invalid_bodies(), ids=[case for case, _ in _invalid_bodies()]
)
def test_create_batch_invalid_400(api: Api, case: str, body: Any) -> None:
    response = api.request("PUT", "/api/v1/batches/createSingleCertBatch", json_body=body)
    assert_error(response, 400, VALIDATION)
    assert api.batches() == [], case
    assert api.balance(42) == 100
    assert api.balance(85) == 100


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b"null"])
def test_create_batch_bad_json_400(api: Api, raw: bytes) -> None:
    response = api.request(
        "PUT",
        "/api/v1/batches/createSingleCertBatch",
        data=raw,
        headers={"Content-Type": JSON_CT},
    )
    assert_error(response, 400, VALIDATION)
    assert api.batches() == []


@pytest.mark.parametrize("authority", [999, 0, 1])
def test_create_batch_unknown_authority_404(api: Api, authority: int) -> None:
    assert_error(api.create_batch(server_params(), authority_id=authority), 404, NOT_FOUND)
    assert api.batches() == []


def test_create_batch_402_when_balance_exhausted(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    api = connect(emulator_factory(balances=((42, 1), (85, 100))))
    api.created_batch_id(server_params("one.example.com"))
    assert api.balance(42) == 0
    assert_error(api.create_batch(server_params("two.example.com")), 402, NO_LICENCE)
    assert len(api.batches()) == 1
    # the other authority is unaffected
    api.created_batch_id(end_entity_params(), authority_id=AUTHORITY_2)


@pytest.mark.parametrize("route", ["", "/status", "/processing_info", "/download"])
def test_batch_routes_non_numeric_id_400(api: Api, route: str) -> None:
    assert_error(api.get(f"/api/v1/batches/abc{route}"), 400, VALIDATION)


@pytest.mark.parametrize("route", ["", "/status", "/processing_info", "/download"])
def test_batch_routes_unknown_id_404(api: Api, route: str) -> None:
    api.created_batch_id(server_params())
    assert_error(api.get(f"/api/v1/batches/99999{route}"), 404, NOT_FOUND)


def test_batch_detail_status_processing_download(api: Api) -> None:
    batch_id = api.created_batch_id(server_params())
    detail = api.wait_for_batch(batch_id)
    assert_batch_response(detail)
    assert detail["status"] == "READY_FOR_DOWNLOAD"
    assert detail["downloadable"] is True
    assert detail["rejectable"] is False
    assert detail["batchId"] == batch_id

    status = api.get(f"/api/v1/batches/{batch_id}/status")
    assert status.status_code == 200
    kind, params = media_type(status)
    assert kind == "text/plain"
    assert params.get("charset", "").upper() == "UTF-8"
    assert status.text == "Ready for download"

    info = api.get(f"/api/v1/batches/{batch_id}/processing_info")
    assert info.status_code == 200
    assert_json_content_type(info)
    assert info.json() == {"active": 0, "success": 1, "failed": 0}

    download = api.download(batch_id)
    assert download.status_code == 200
    assert media_type(download)[0] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert content_disposition_filename(download) == f"{batch_id}.zip"
    assert list(unzip(download.content)) == ["example.com.p12"]

    # the first download turns the batch COLLECTED; it stays downloadable
    collected = api.batch(batch_id)
    assert collected["status"] == "COLLECTED"
    assert collected["downloadable"] is True
    assert [b["status"] for b in api.batches()] == ["COLLECTED"]
    assert api.get(f"/api/v1/batches/{batch_id}/status").text == "Ready for download"
    again = api.download(batch_id)
    assert again.status_code == 200
    assert content_disposition_filename(again) == f"{batch_id}.zip"
    first_p12 = unzip(download.content)["example.com.p12"]
    second_p12 = unzip(again.content)["example.com.p12"]
    first_cert = pkcs12.load_key_and_certificates(first_p12, P12_PASSWORD.encode())[1]
    second_cert = pkcs12.load_key_and_certificates(second_p12, P12_PASSWORD.encode())[1]
    assert first_cert is not None
    assert first_cert == second_cert


def test_download_before_ready_400_and_states_in_order(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    delay = 1.0
    api = connect(emulator_factory(issue_delay=delay))
    start = time.monotonic()
    response = api.create_batch(server_params())
    assert response.json()["status"] == "CREATED"
    batch_id = response.json()["batchId"]

    assert_error(api.download(batch_id), 400, NOT_READY)
    assert api.get(f"/api/v1/batches/{batch_id}/status").text == "Processing"
    info = api.get(f"/api/v1/batches/{batch_id}/processing_info").json()
    assert info == {"active": 1, "success": 0, "failed": 0}
    early = api.batch(batch_id)
    assert early["downloadable"] is False
    assert early["rejectable"] is True

    seen: list[str] = []
    ready_at = 0.0
    while time.monotonic() - start < delay + 3:
        detail = api.batch(batch_id)
        status = detail["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("CREATED", "PROCESSING"):
            assert detail["rejectable"] is True, detail
            assert detail["downloadable"] is False, detail
        if status == "READY_FOR_DOWNLOAD":
            ready_at = time.monotonic() - start
            break
        time.sleep(0.05)
    assert seen == ["CREATED", "PROCESSING", "READY_FOR_DOWNLOAD"], seen
    assert ready_at >= delay - 0.05, ready_at
    assert api.download(batch_id).status_code == 200


def test_issue_delay_patched_at_run_time(api: Api, mgmt: Management) -> None:
    mgmt.patch_settings(issue_delay=0.6)
    assert mgmt.faults()["settings"]["issue_delay"] == pytest.approx(0.6)
    batch_id = api.created_batch_id(server_params())
    time.sleep(0.1)
    assert api.batch(batch_id)["status"] in ("CREATED", "PROCESSING")
    assert api.wait_for_batch(batch_id)["status"] == "READY_FOR_DOWNLOAD"


def test_list_batches_filters_and_paging(api: Api) -> None:
    ids = [
        api.created_batch_id(server_params(f"host{i}.example.com"), batch_name=name)
        for i, name in enumerate(["alpha", "beta", "alpha", "gamma"])
    ]
    for batch_id in ids:
        api.wait_for_batch(batch_id)
    listing = api.batches()
    assert [b["batchId"] for b in listing] == sorted(ids)
    for batch in listing:
        assert_batch_response(batch)
    alpha = api.batches(batchName="alpha")
    assert [b["batchId"] for b in alpha] == [ids[0], ids[2]]
    assert api.batches(batchName="delta") == []
    assert len(api.batches(status="READY_FOR_DOWNLOAD")) == 4
    assert api.batches(status="REJECTED") == []
    assert [b["batchId"] for b in api.batches(offset=1, limit=2)] == ids[1:3]
    assert [b["batchId"] for b in api.batches(limit=1)] == ids[:1]


@pytest.mark.parametrize(
    "query", [{"offset": "-1"}, {"offset": "x"}, {"limit": "-5"}, {"limit": "many"}]
)
def test_list_batches_bad_paging_400(api: Api, query: dict[str, str]) -> None:
    assert_error(api.get("/api/v1/batches", params=query), 400, VALIDATION)


def _assert_rejected(api: Api, batch_id: int) -> dict[str, Any]:
    detail = api.wait_for_batch(batch_id)
    assert detail["status"] == "REJECTED", detail
    assert isinstance(detail["rejectReason"], str) and detail["rejectReason"]
    assert detail["downloadable"] is False
    assert detail["rejectable"] is False
    status = api.get(f"/api/v1/batches/{batch_id}/status")
    assert status.text == "Not Acceptable. Status: Rejected"
    info = api.get(f"/api/v1/batches/{batch_id}/processing_info").json()
    assert info == {"active": 0, "success": 0, "failed": 1}
    assert_error(api.download(batch_id), 400, NOT_READY)
    return detail


@pytest.mark.parametrize(
    ("authority", "params"),
    [
        (AUTHORITY_2, end_entity_params(countryName="usa")),
        (AUTHORITY_2, end_entity_params(countryName="us")),
        (AUTHORITY_2, end_entity_params(organizationName="x" * 65)),
        (AUTHORITY_1, server_params(password="short")),
        (AUTHORITY_1, server_params(password="x" * 129)),
        (AUTHORITY_1, server_params("not a domain")),
        (AUTHORITY_1, {**server_params(), "dNSName": "example.com\nbad domain!"}),
    ],
    ids=[
        "country-usa",
        "country-lower",
        "org-too-long",
        "password-short",
        "password-long",
        "cn-not-dns",
        "dns-bad-entry",
    ],
)
def test_validation_pattern_failure_rejects_and_returns_licence(
    api: Api, authority: int, params: dict[str, str]
) -> None:
    response = api.create_batch(params, authority_id=authority)
    assert response.status_code == 200, response.text
    batch_id = response.json()["batchId"]
    _assert_rejected(api, batch_id)
    assert api.balance(authority) == 100
    assert api.devices() == {"ordered": 200, "issued": 0}


def test_reject_common_names(emulator_factory: EmulatorFactory, connect: Connect) -> None:
    api = connect(emulator_factory(reject_common_names=(r".*\.evil\.test", r"^blocked\.")))
    rejected = api.created_batch_id(server_params("www.evil.test"))
    blocked = api.created_batch_id(server_params("blocked.example.com"))
    fine = api.created_batch_id(server_params("good.example.com"))
    _assert_rejected(api, rejected)
    _assert_rejected(api, blocked)
    assert api.wait_for_batch(fine)["status"] == "READY_FOR_DOWNLOAD"
    assert api.balance(42) == 99
    assert api.devices()["issued"] == 1


def test_status_text_constant(emulator_factory: EmulatorFactory, connect: Connect) -> None:
    api = connect(emulator_factory(status_text="constant"))
    batch_id = api.created_batch_id(server_params())
    api.wait_for_batch(batch_id)
    response = api.get(f"/api/v1/batches/{batch_id}/status")
    assert media_type(response)[0] == "text/plain"
    assert response.text == "READY_FOR_DOWNLOAD"


def test_licence_invariant_through_the_lifecycle(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    emulator = emulator_factory(
        balances=((42, 10), (85, 5)), reject_common_names=(r"^reject\.",), stuck=True
    )
    api = connect(emulator)
    mgmt = Management(emulator.management_url)
    assert_licence_invariant(api)
    good = [api.created_batch_id(server_params(f"ok{i}.example.com")) for i in range(3)]
    bad_pattern = api.created_batch_id(
        end_entity_params(countryName="usa"), authority_id=AUTHORITY_2
    )
    bad_name = api.created_batch_id(server_params("reject.example.com"))
    ee = api.created_batch_id(end_entity_params(), authority_id=AUTHORITY_2)
    time.sleep(0.1)
    # stuck: every batch holds its licence
    assert api.balance(42) == 10 - 4
    assert api.balance(85) == 5 - 2
    assert api.devices() == {"ordered": 15, "issued": 0}
    assert_licence_invariant(api)

    mgmt.patch_settings(stuck=False)
    for batch_id in [*good, ee]:
        assert api.wait_for_batch(batch_id)["status"] == "READY_FOR_DOWNLOAD"
    for batch_id in (bad_pattern, bad_name):
        assert api.wait_for_batch(batch_id)["status"] == "REJECTED"
    assert api.devices() == {"ordered": 15, "issued": 4}
    assert api.balance(42) == 10 - 3
    assert api.balance(85) == 5 - 1
    assert_licence_invariant(api)
