"""Fixed data: authorities, balances, devices, profiles, profile parameters, organization."""

from __future__ import annotations

import re

import pytest

from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Connect
from tests.emulator.helpers import (
    Api,
    assert_error,
    assert_json_content_type,
    server_params,
)
from tests.wire import AUTHORITY_KEYS

AUTHORITY_FIELDS = set(AUTHORITY_KEYS)
PARAMETER_FIELDS = {
    "name",
    "inputType",
    "required",
    "placeholder",
    "validationPattern",
    "message",
    "value",
    "title",
    "scopes",
    "dynamic",
}
BASE_PARAMETERS = {"commonName", "dNSName", "pkcs12Password"}
END_ENTITY_PARAMETERS = BASE_PARAMETERS | {
    "organizationName",
    "localityName",
    "stateOrProvinceName",
    "countryName",
}


@pytest.mark.parametrize(("authority_ids", "ids"), [("profile", (42, 85)), ("distinct", (1, 2))])
def test_authorities_allowed(
    emulator_factory: EmulatorFactory, connect: Connect, authority_ids: str, ids: tuple[int, int]
) -> None:
    """By default each authority has its profile's id; the configured account keeps them apart."""
    api = connect(emulator_factory(authority_ids=authority_ids))
    response = api.get("/api/v1/authorities/allowed")
    assert response.status_code == 200
    assert_json_content_type(response)
    authorities = {a["id"]: a for a in response.json()}
    assert set(authorities) == set(ids)
    for authority in authorities.values():
        assert set(authority) >= AUTHORITY_FIELDS
        assert authority["ecosystemId"] == 100
        assert authority["ecosystemName"] == "TRISA"
        assert authority["enabled"] is True
        assert authority["balance"] == 100
    first, second = ids
    assert authorities[first]["profileId"] == 42
    assert authorities[first]["profileName"] == "TRISA Profile"
    assert authorities[second]["profileId"] == 85
    assert authorities[second]["profileName"] == "TRISA End Entity"


def test_distinct_authority_ids_are_not_profile_ids(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    api = connect(emulator_factory(authority_ids="distinct"))
    assert_error(api.create_batch(authority_id=42), 404, -11)
    assert_error(api.get("/api/v1/authorities/42/balanceavailable"), 404, -11)
    batch_id = api.created_batch_id(authority_id=1)
    assert api.wait_for_batch(batch_id)["profile"] == "TRISA Profile"
    assert api.balance(1) == 99


def test_balance_is_a_bare_integer(api: Api) -> None:
    response = api.get("/api/v1/authorities/42/balanceavailable")
    assert response.status_code == 200
    assert_json_content_type(response)
    assert response.text.strip() == "100"
    assert api.balance(85) == 100


def test_balance_follows_configuration_and_creation(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    api = connect(emulator_factory(balances=((42, 3), (85, 7))))
    assert api.balance(42) == 3
    assert api.balance(85) == 7
    assert api.devices() == {"ordered": 10, "issued": 0}
    api.created_batch_id(server_params())
    assert api.balance(42) == 2
    assert api.balance(85) == 7
    response = api.get("/api/v1/authorities/allowed")
    assert {a["id"]: a["balance"] for a in response.json()} == {42: 2, 85: 7}


@pytest.mark.parametrize("authority", ["999", "0", "1", "2"])
def test_balance_unknown_authority_404(api: Api, authority: str) -> None:
    assert_error(api.get(f"/api/v1/authorities/{authority}/balanceavailable"), 404, -11)


def test_devices_counts(api: Api) -> None:
    response = api.get("/api/v1/devices")
    assert response.status_code == 200
    assert_json_content_type(response)
    assert response.json() == {"ordered": 200, "issued": 0}
    batch_id = api.created_batch_id(server_params())
    api.wait_for_batch(batch_id, {"READY_FOR_DOWNLOAD"})
    assert api.devices() == {"ordered": 200, "issued": 1}


def test_profiles_list(api: Api) -> None:
    response = api.get("/api/v1/profiles")
    assert response.status_code == 200
    assert_json_content_type(response)
    profiles = {p["profileId"]: p for p in response.json()}
    assert set(profiles) == {42, 85}
    for profile in profiles.values():
        assert isinstance(profile["algorithms"], list)
        assert profile["algorithms"]
        assert all(isinstance(a, str) for a in profile["algorithms"])
        assert isinstance(profile["ca"], str)


@pytest.mark.parametrize(("profile_id", "name"), [(42, "TRISA Profile"), (85, "TRISA End Entity")])
def test_profile_detail(api: Api, profile_id: int, name: str) -> None:
    response = api.get(f"/api/v1/profiles/{profile_id}")
    assert response.status_code == 200
    assert_json_content_type(response)
    detail = response.json()
    assert set(detail) >= {
        "profileName",
        "profileId",
        "rawProfileConfig",
        "name",
        "keyAlgorithmInfo",
    }
    assert detail["profileId"] == profile_id
    assert detail["profileName"] == name
    assert isinstance(detail["rawProfileConfig"], str)


@pytest.mark.parametrize("path", ["/api/v1/profiles/999", "/api/v1/profiles/999/parameters"])
def test_profile_unknown_404(api: Api, path: str) -> None:
    assert_error(api.get(path), 404, -11)


def _parameters(api: Api, profile_id: int) -> dict[str, dict[str, object]]:
    response = api.get(f"/api/v1/profiles/{profile_id}/parameters")
    assert response.status_code == 200
    assert_json_content_type(response)
    parameters = response.json()
    assert isinstance(parameters, list)
    for parameter in parameters:
        assert set(parameter) >= PARAMETER_FIELDS, parameter
    return {p["name"]: p for p in parameters}


def _pattern(parameter: dict[str, object]) -> re.Pattern[str]:
    pattern = parameter["validationPattern"]
    assert isinstance(pattern, str) and pattern
    return re.compile(pattern)


def test_profile_parameters_base_profile(api: Api) -> None:
    parameters = _parameters(api, 42)
    assert set(parameters) >= BASE_PARAMETERS
    for name in BASE_PARAMETERS:
        assert parameters[name]["required"] is True, name
    cn = _pattern(parameters["commonName"])
    assert cn.fullmatch("example.com")
    assert cn.fullmatch("*.example.com")
    assert not cn.fullmatch("not a domain!")
    assert not cn.fullmatch("")
    dns = _pattern(parameters["dNSName"])
    assert dns.fullmatch("example.com")
    assert dns.fullmatch("example.com\nwww.example.com")
    assert not dns.fullmatch("example.com\n\nbad domain")
    password = _pattern(parameters["pkcs12Password"])
    assert password.fullmatch("secrtpasswrd")
    assert password.fullmatch("x" * 128)
    assert not password.fullmatch("short")
    assert not password.fullmatch("x" * 129)


def test_profile_parameters_end_entity(api: Api) -> None:
    parameters = _parameters(api, 85)
    assert set(parameters) >= END_ENTITY_PARAMETERS
    for name in END_ENTITY_PARAMETERS:
        assert parameters[name]["required"] is True, name
    country = _pattern(parameters["countryName"])
    assert country.fullmatch("US")
    assert not country.fullmatch("us")
    assert not country.fullmatch("USA")
    organization = _pattern(parameters["organizationName"])
    assert organization.fullmatch("Example Org")
    assert organization.fullmatch("x" * 64)
    assert not organization.fullmatch("x" * 65)
    assert not organization.fullmatch("")


def test_organization(api: Api) -> None:
    response = api.get("/api/v1/organizations/user")
    assert response.status_code == 200
    assert_json_content_type(response)
    organization = response.json()
    assert set(organization) >= {
        "organizationId",
        "organizationName",
        "address",
        "primaryContactName",
        "primaryContactEmail",
        "primaryContactPhone",
        "manufactureId",
        "logo",
        "authorities",
        "ecosystemId",
        "organizationParameters",
        "orgStatus",
    }
    assert organization["organizationId"] == 1042
    assert organization["organizationName"] == "TRISA Emulated"
    assert organization["ecosystemId"] == 100
    assert isinstance(organization["orgStatus"], str)
    assert {a["id"] for a in organization["authorities"]} == {42, 85}
