"""Issued certificates, PKCS#12 files, find, revoke and the CRL."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sectigo_svc.emulator import Emulator, EmulatorConfig
from sectigo_svc.emulator.config import EmulatorConfigError
from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Connect
from tests.emulator.helpers import (
    AUTHORITY_1,
    AUTHORITY_2,
    P12_PASSWORD,
    PROFILE_1,
    PROFILE_2,
    TIMEOUT,
    Api,
    assert_error,
    assert_json_content_type,
    common_name,
    crl_signed_by,
    end_entity_params,
    fetch_chain,
    issue_and_download,
    leaf_for_key,
    make_csr,
    media_type,
    open_p12_with_openssl,
    openssl,
    p12_algorithms,
    p12_member_name,
    public_der,
    san_dns_names,
    server_params,
)

VALIDATION = -10
NOT_FOUND = -11
ALREADY_REVOKED = -14


def issue_leaf(
    api: Api,
    tmp_path: Path,
    params: dict[str, str] | None = None,
    *,
    authority_id: int = AUTHORITY_1,
) -> tuple[x509.Certificate, list[x509.Certificate], Any]:
    """Issue a server-side key batch; return (leaf, every cert in the .p12, key)."""
    params = params or server_params()
    _, members = issue_and_download(api, params, authority_id=authority_id)
    name = f"{p12_member_name(params['commonName'])}.p12"
    assert list(members) == [name]
    key, certs = open_p12_with_openssl(
        members[name], params["pkcs12Password"], tmp_path, legacy=True
    )
    return leaf_for_key(key, certs), certs, key


def test_leaf_certificate_profile(api: Api, tmp_path: Path) -> None:
    params = server_params("example.com", ["www.example.com", "api.example.com"])
    leaf, certs, key = issue_leaf(api, tmp_path, params)
    issuing, root = fetch_chain(api.base_url)
    assert len(certs) == 3
    assert set(certs) == {leaf, issuing, root}
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048

    assert common_name(leaf.subject) == "example.com"
    assert san_dns_names(leaf) == ["example.com", "www.example.com", "api.example.com"]
    assert common_name(leaf.issuer) == "Sectigo Emulator Issuing CA"
    leaf.verify_directly_issued_by(issuing)

    key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical is True
    assert key_usage.value.digital_signature is True
    assert key_usage.value.key_encipherment is True
    assert key_usage.value.key_cert_sign is False
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is False

    crl_points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    uris = [
        n.value
        for point in crl_points
        for n in point.full_name or []
        if isinstance(n, x509.UniformResourceIdentifier)
    ]
    assert uris == [f"{api.base_url}/crl/issuing.crl"]

    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert abs(lifetime - datetime.timedelta(days=395)) < datetime.timedelta(days=1)
    now = datetime.datetime.now(datetime.UTC)
    assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc
    assert 0 < leaf.serial_number < 2**128
    assert leaf.serial_number.bit_length() > 64


def test_serials_are_random_and_distinct(api: Api, tmp_path: Path) -> None:
    serials = {
        issue_leaf(api, tmp_path, server_params(f"s{i}.example.com"))[0].serial_number
        for i in range(3)
    }
    assert len(serials) == 3
    assert all(s.bit_length() > 64 for s in serials)


def test_end_entity_subject_fields(api: Api, tmp_path: Path) -> None:
    params = end_entity_params(
        "ee.example.com",
        organizationName="Example Org",
        localityName="Queenstown",
        stateOrProvinceName="MD",
        countryName="US",
    )
    leaf, _, _ = issue_leaf(api, tmp_path, params, authority_id=AUTHORITY_2)
    subject = leaf.subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example Org"
    assert subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == "Queenstown"
    assert subject.get_attributes_for_oid(NameOID.STATE_OR_PROVINCE_NAME)[0].value == "MD"
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "US"
    assert common_name(subject) == "ee.example.com"


def test_base_profile_subject_has_only_cn(api: Api, tmp_path: Path) -> None:
    leaf, _, _ = issue_leaf(api, tmp_path)
    assert [a.oid for a in leaf.subject] == [NameOID.COMMON_NAME]


def test_wildcard_common_name_file_name(api: Api, tmp_path: Path) -> None:
    params = server_params("*.example.org", ["example.org"])
    _, members = issue_and_download(api, params)
    assert list(members) == ["_.example.org.p12"]
    key, certs = open_p12_with_openssl(
        members["_.example.org.p12"], P12_PASSWORD, tmp_path, legacy=True
    )
    leaf = leaf_for_key(key, certs)
    assert common_name(leaf.subject) == "*.example.org"
    assert san_dns_names(leaf) == ["*.example.org", "example.org"]


def test_p12_wrong_password_fails(api: Api, tmp_path: Path) -> None:
    _, members = issue_and_download(api, server_params())
    path = tmp_path / "example.com.p12"
    path.write_bytes(members["example.com.p12"])
    result = openssl(
        "pkcs12", "-legacy", "-in", str(path), "-nodes", "-passin", "pass:wrongpassword"
    )
    assert result.returncode != 0
    assert b"mac verify error" in result.stderr.lower(), result.stderr


def test_p12_opens_with_cryptography(api: Api) -> None:
    _, members = issue_and_download(api, server_params())
    key, cert, extra = pkcs12.load_key_and_certificates(
        members["example.com.p12"], P12_PASSWORD.encode()
    )
    assert key is not None and cert is not None
    assert public_der(key.public_key()) == public_der(cert.public_key())
    issuing, root = fetch_chain(api.base_url)
    assert set(extra) == {issuing, root}


SECTIGO_LAYOUT = (
    "mac: sha1, iteration 1",
    "pkcs7 encrypted data: pbewithsha1and40bitrc2-cbc, iteration 2048",
    "shrouded keybag: pbewithsha1and3-keytripledes-cbc, iteration 2048",
)


@pytest.mark.parametrize(
    ("encryption", "markers", "absent"),
    [
        (None, SECTIGO_LAYOUT, "aes-256-cbc"),
        ("rc2", SECTIGO_LAYOUT, "aes-256-cbc"),
        ("3des", ("pkcs7 encrypted data: pbewithsha1and3-keytripledes-cbc",), "rc2"),
        ("aes", ("aes-256-cbc", "mac: sha256"), "pbewithsha1"),
    ],
)
def test_pkcs12_encryption_setting(
    emulator_factory: EmulatorFactory,
    connect: Connect,
    tmp_path: Path,
    encryption: str | None,
    markers: tuple[str, ...],
    absent: str,
) -> None:
    """The default is Sectigo's own layout: RC2-40 certificates, a 3DES key, a one-round SHA-1
    MAC, which OpenSSL 3 opens only with -legacy; 3des and aes open without it."""
    options = {} if encryption is None else {"pkcs12_encryption": encryption}
    api = connect(emulator_factory(**options))
    _, members = issue_and_download(api, server_params())
    p12 = members["example.com.p12"]
    report = p12_algorithms(p12, P12_PASSWORD, tmp_path)
    for marker in markers:
        assert marker in report, report
    assert absent not in report, report
    path = tmp_path / "example.com.p12"
    path.write_bytes(p12)
    plain = openssl("pkcs12", "-in", str(path), "-nodes", "-passin", f"pass:{P12_PASSWORD}")
    assert (plain.returncode == 0) is (encryption in ("3des", "aes")), plain.stderr
    key, certs = open_p12_with_openssl(p12, P12_PASSWORD, tmp_path, legacy=True)
    assert certs[0] == leaf_for_key(key, certs)
    assert len(certs) == 3


@pytest.mark.parametrize(
    ("key_type", "check"),
    [
        (
            "ec256",
            lambda k: isinstance(k, ec.EllipticCurvePrivateKey) and k.curve.name == "secp256r1",
        ),
        ("rsa4096", lambda k: isinstance(k, rsa.RSAPrivateKey) and k.key_size == 4096),
    ],
)
def test_key_type_setting(
    emulator_factory: EmulatorFactory,
    connect: Connect,
    tmp_path: Path,
    key_type: str,
    check: Any,
) -> None:
    api = connect(emulator_factory(key_type=key_type))
    _, _, key = issue_leaf(api, tmp_path)
    assert check(key), key


# -- find --------------------------------------------------------------------------------------


def test_find_by_common_name_and_serial(api: Api, tmp_path: Path) -> None:
    leaf, _, _ = issue_leaf(api, tmp_path)
    found = api.find(commonName="example.com")
    assert found["totalCount"] == 1
    (item,) = found["items"]
    assert set(item) >= {"deviceId", "commonName", "serialNumber", "creationDate", "status"}
    assert isinstance(item["deviceId"], str) and item["deviceId"]
    assert item["commonName"] == "example.com"
    assert item["status"] == "ISSUED"
    serial = item["serialNumber"]
    assert serial == serial.upper()
    assert all(c in "0123456789ABCDEF" for c in serial), serial
    assert int(serial, 16) == leaf.serial_number

    by_serial = api.find(serialNumber=serial)
    assert by_serial["totalCount"] == 1
    assert by_serial["items"][0]["serialNumber"] == serial
    by_lower = api.find(serialNumber=serial.lower())
    assert by_lower["totalCount"] == 1
    assert by_lower["items"][0]["serialNumber"] == serial
    assert by_lower["items"][0]["deviceId"] == item["deviceId"]


def test_find_lists_every_certificate_for_a_name(api: Api, tmp_path: Path) -> None:
    first, _, _ = issue_leaf(api, tmp_path)
    second, _, _ = issue_leaf(api, tmp_path)
    issue_leaf(api, tmp_path, server_params("other.example.com"))
    found = api.find(commonName="example.com")
    assert found["totalCount"] == 2
    assert {int(i["serialNumber"], 16) for i in found["items"]} == {
        first.serial_number,
        second.serial_number,
    }


def test_find_unknown_is_empty(api: Api) -> None:
    assert api.find(commonName="nothing.example.com") == {"totalCount": 0, "items": []}
    assert api.find(serialNumber="ABCDEF0123") == {"totalCount": 0, "items": []}


def test_find_needs_a_field_400(api: Api) -> None:
    response = api.request("POST", "/api/v1/certificates/find", json_body={})
    assert_error(response, 400, VALIDATION)


def test_find_does_not_list_unissued_batches(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    api = connect(emulator_factory(stuck=True))
    api.created_batch_id(server_params("pending.example.com"))
    assert api.find(commonName="pending.example.com")["totalCount"] == 0


def test_find_csr_certificate(api: Api) -> None:
    csr, _ = make_csr("csr.example.com")
    response = api.upload(csr)
    assert response.status_code == 200, response.text
    api.wait_for_batch(response.json()["batchId"])
    found = api.find(commonName="csr.example.com")
    assert found["totalCount"] == 1
    assert found["items"][0]["status"] == "ISSUED"


# -- revoke and CRL ----------------------------------------------------------------------------


def _serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "X")


def fetch_crl(api_url: str) -> x509.CertificateRevocationList:
    response = requests.get(f"{api_url}/crl/issuing.crl", timeout=TIMEOUT)
    assert response.status_code == 200
    assert media_type(response)[0] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.content)
    issuing, _ = fetch_chain(api_url)
    assert crl.issuer == issuing.subject
    assert crl_signed_by(crl, issuing)
    return crl


def test_revoke_then_find_and_crl(api: Api, tmp_path: Path) -> None:
    leaf, _, _ = issue_leaf(api, tmp_path)
    keep, _, _ = issue_leaf(api, tmp_path, server_params("keep.example.com"))
    assert (
        fetch_crl(api.base_url).get_revoked_certificate_by_serial_number(leaf.serial_number) is None
    )

    response = api.revoke(PROFILE_1, {"reasonCode": 1, "serialNumber": _serial_hex(leaf).lower()})
    assert response.status_code == 200, response.text
    assert_json_content_type(response)
    assert response.json() == {"success": True}

    item = api.find(serialNumber=_serial_hex(leaf))["items"][0]
    assert item["status"] == "REVOKED"
    assert api.find(serialNumber=_serial_hex(keep))["items"][0]["status"] == "ISSUED"

    crl = fetch_crl(api.base_url)
    revoked = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert revoked is not None
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(keep.serial_number) is None


@pytest.mark.parametrize("reason", [7, 11, -1, 99])
def test_revoke_bad_reason_400(api: Api, tmp_path: Path, reason: int) -> None:
    leaf, _, _ = issue_leaf(api, tmp_path)
    response = api.revoke(PROFILE_1, {"reasonCode": reason, "serialNumber": _serial_hex(leaf)})
    assert_error(response, 400, VALIDATION)
    assert api.find(serialNumber=_serial_hex(leaf))["items"][0]["status"] == "ISSUED"


def test_revoke_missing_serial_400(api: Api) -> None:
    assert_error(api.revoke(PROFILE_1, {"reasonCode": 1}), 400, VALIDATION)
    assert_error(api.revoke(PROFILE_1, {"reasonCode": 1, "serialNumber": ""}), 400, VALIDATION)


def test_revoke_unknown_serial_404(api: Api, tmp_path: Path) -> None:
    issue_leaf(api, tmp_path)
    response = api.revoke(PROFILE_1, {"reasonCode": 1, "serialNumber": "0123456789ABCDEF"})
    assert_error(response, 404, NOT_FOUND)


def test_revoke_under_wrong_profile_400(api: Api, tmp_path: Path) -> None:
    leaf, _, _ = issue_leaf(api, tmp_path)
    response = api.revoke(PROFILE_2, {"reasonCode": 1, "serialNumber": _serial_hex(leaf)})
    assert_error(response, 400, VALIDATION)
    assert api.find(serialNumber=_serial_hex(leaf))["items"][0]["status"] == "ISSUED"


def test_revoke_twice_400(api: Api, tmp_path: Path) -> None:
    leaf, _, _ = issue_leaf(api, tmp_path)
    body = {"reasonCode": 4, "serialNumber": _serial_hex(leaf)}
    assert api.revoke(PROFILE_1, body).status_code == 200
    assert_error(api.revoke(PROFILE_1, body), 400, ALREADY_REVOKED)


def _crl_reason(api: Api, cert: x509.Certificate) -> x509.ReasonFlags | None:
    """The reason ``cert`` is listed with in the CRL; None when it is not listed."""
    entry = fetch_crl(api.base_url).get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return None
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def _status(api: Api, cert: x509.Certificate) -> str:
    status: str = api.find(serialNumber=_serial_hex(cert))["items"][0]["status"]
    return status


def test_hold_then_remove_from_crl(api: Api, tmp_path: Path) -> None:
    leaf, _, _ = issue_leaf(api, tmp_path)
    body = {"serialNumber": _serial_hex(leaf)}

    held = api.revoke(PROFILE_1, {**body, "reasonCode": 6})
    assert held.status_code == 200, held.text
    assert _status(api, leaf) == "ON_HOLD"
    assert _crl_reason(api, leaf) == x509.ReasonFlags.certificate_hold
    assert_error(api.revoke(PROFILE_1, {**body, "reasonCode": 6}), 400, ALREADY_REVOKED)

    released = api.revoke(PROFILE_1, {**body, "reasonCode": 8})
    assert released.status_code == 200, released.text
    assert released.json() == {"success": True}
    assert _status(api, leaf) == "ISSUED"
    assert _crl_reason(api, leaf) is None

    # Released, it can be held again, and revoked as any issued certificate.
    assert api.revoke(PROFILE_1, {**body, "reasonCode": 6}).status_code == 200
    assert _status(api, leaf) == "ON_HOLD"


def test_remove_from_crl_of_a_certificate_not_on_hold_400(api: Api, tmp_path: Path) -> None:
    leaf, _, _ = issue_leaf(api, tmp_path)
    gone, _, _ = issue_leaf(api, tmp_path, server_params("gone.example.com"))
    assert api.revoke(PROFILE_1, {"reasonCode": 1, "serialNumber": _serial_hex(gone)}).ok

    for cert, status in ((leaf, "ISSUED"), (gone, "REVOKED")):
        response = api.revoke(PROFILE_1, {"reasonCode": 8, "serialNumber": _serial_hex(cert)})
        assert_error(response, 400, VALIDATION)
        assert "not on hold" in response.json()["message"]
        assert _status(api, cert) == status
    assert _crl_reason(api, leaf) is None
    assert _crl_reason(api, gone) == x509.ReasonFlags.key_compromise


def test_a_certificate_on_hold_revoked_with_another_reason_is_revoked_for_good(
    api: Api, tmp_path: Path
) -> None:
    leaf, _, _ = issue_leaf(api, tmp_path)
    body = {"serialNumber": _serial_hex(leaf)}
    assert api.revoke(PROFILE_1, {**body, "reasonCode": 6}).status_code == 200

    revoked = api.revoke(PROFILE_1, {**body, "reasonCode": 9})

    assert revoked.status_code == 200, revoked.text
    assert _status(api, leaf) == "REVOKED"
    assert _crl_reason(api, leaf) == x509.ReasonFlags.privilege_withdrawn
    assert_error(api.revoke(PROFILE_1, {**body, "reasonCode": 8}), 400, VALIDATION)
    assert_error(api.revoke(PROFILE_1, {**body, "reasonCode": 6}), 400, ALREADY_REVOKED)
    assert _status(api, leaf) == "REVOKED"


def test_revoke_bad_json_400(api: Api) -> None:
    response = api.request(
        "POST",
        f"/api/v1/certificates/{PROFILE_1}/revoke",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, VALIDATION)


def test_crl_is_open_and_empty_at_start(emulator: Emulator) -> None:
    crl = fetch_crl(emulator.api_url)
    assert len(crl) == 0
    now = datetime.datetime.now(datetime.UTC)
    assert crl.last_update_utc <= now
    assert crl.next_update_utc is None or crl.next_update_utc > now


def test_rc2_without_openssl_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The RC2-40 layout needs the openssl binary: without it the emulator says so at start,
    instead of failing every download later; aes needs nothing."""
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EmulatorConfigError, match="pkcs12_encryption rc2: no openssl binary"):
        Emulator(EmulatorConfig(port=0, management_port=0))
    Emulator(EmulatorConfig(port=0, management_port=0, pkcs12_encryption="aes")).stop()
