"""CSR upload (sectigo-iot-api.md section 3.4): PEM and ZIP uploads, errors, BROKEN batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import EmulatorFactory
from tests.emulator.conftest import Connect
from tests.emulator.helpers import (
    PROFILE_2,
    Api,
    Part,
    assert_batch_response,
    assert_error,
    assert_json_content_type,
    common_name,
    fetch_chain,
    make_csr,
    openssl,
    pem_blocks,
    public_der,
    san_dns_names,
    tamper_csr_signature,
    unzip,
    zip_bytes,
)

VALIDATION = -10

BROKEN_REASON = "Cert subject name error: SubjectAlternativeName dNSName value is missing"


def _download_pems(api: Api, batch_id: int) -> dict[str, bytes]:
    detail = api.wait_for_batch(batch_id)
    assert detail["status"] == "READY_FOR_DOWNLOAD", detail
    response = api.download(batch_id)
    assert response.status_code == 200, response.text
    return unzip(response.content)


def _check_chain_file(
    api_url: str, pem: bytes, public_key: object, tmp_path: Path, cn: str, sans: list[str]
) -> None:
    """<cn>.pem holds leaf, issuing CA, root; no key; the leaf verifies with openssl."""
    labels = [label for label, _ in pem_blocks(pem)]
    assert labels == ["CERTIFICATE"] * 3, labels
    leaf, issuing, root = x509.load_pem_x509_certificates(pem)
    expected_issuing, expected_root = fetch_chain(api_url)
    assert issuing == expected_issuing
    assert root == expected_root
    assert public_der(leaf.public_key()) == public_der(public_key)
    assert common_name(leaf.subject) == cn
    assert san_dns_names(leaf) == sans
    leaf_path, issuing_path, root_path = (tmp_path / f"{n}.pem" for n in ("leaf", "ca", "root"))
    leaf_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    issuing_path.write_bytes(issuing.public_bytes(serialization.Encoding.PEM))
    root_path.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    result = openssl(
        "verify", "-CAfile", str(root_path), "-untrusted", str(issuing_path), str(leaf_path)
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode().strip().endswith(": OK")


def test_upload_one_csr(api: Api, tmp_path: Path) -> None:
    csr, key = make_csr("device.example.com", ["device.example.com", "alt.example.com"])
    response = api.upload(csr)
    assert response.status_code == 200, response.text
    assert_json_content_type(response)
    batch = response.json()
    assert_batch_response(batch)
    assert batch["size"] == 1
    assert batch["status"] == "CREATED"
    assert batch["profile"] == "TRISA Profile"
    assert api.balance(42) == 99
    members = _download_pems(api, batch["batchId"])
    assert list(members) == ["device.example.com.pem"]
    _check_chain_file(
        api.base_url,
        members["device.example.com.pem"],
        key.public_key(),
        tmp_path,
        "device.example.com",
        ["device.example.com", "alt.example.com"],
    )
    assert api.devices()["issued"] == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-x509-ca-cert"])
def test_upload_pem_other_accepted_content_types(api: Api, content_type: str) -> None:
    csr, _ = make_csr("typed.example.com")
    response = api.upload(csr, content_type=content_type)
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 1


def test_upload_two_csrs_in_one_pem(api: Api, tmp_path: Path) -> None:
    first, first_key = make_csr("one.example.com")
    second, second_key = make_csr("two.example.com")
    response = api.upload(first + second)
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["size"] == 2
    assert api.balance(42) == 98
    members = _download_pems(api, batch["batchId"])
    assert sorted(members) == ["one.example.com.pem", "two.example.com.pem"]
    info = api.get(f"/api/v1/batches/{batch['batchId']}/processing_info").json()
    assert info == {"active": 0, "success": 2, "failed": 0}
    assert api.devices()["issued"] == 2
    for cn, key in (("one.example.com", first_key), ("two.example.com", second_key)):
        _check_chain_file(api.base_url, members[f"{cn}.pem"], key.public_key(), tmp_path, cn, [cn])


def test_upload_zip_of_csrs(api: Api, tmp_path: Path) -> None:
    first, first_key = make_csr("zip1.example.com")
    second, second_key = make_csr("zip2.example.com")
    archive = zip_bytes({"zip1.csr": first, "zip2.pem": second})
    response = api.upload(archive, filename="csrs.zip", content_type="application/zip")
    assert response.status_code == 200, response.text
    batch = response.json()
    assert batch["size"] == 2
    assert api.balance(42) == 98
    members = _download_pems(api, batch["batchId"])
    assert sorted(members) == ["zip1.example.com.pem", "zip2.example.com.pem"]
    _check_chain_file(
        api.base_url,
        members["zip2.example.com.pem"],
        second_key.public_key(),
        tmp_path,
        "zip2.example.com",
        ["zip2.example.com"],
    )
    leaf = x509.load_pem_x509_certificates(members["zip1.example.com.pem"])[0]
    assert public_der(leaf.public_key()) == public_der(first_key.public_key())


def test_upload_zip_labelled_octet_stream_400(api: Api) -> None:
    csr, _ = make_csr("zip.example.com")
    archive = zip_bytes({"one.csr": csr})
    response = api.upload(archive, filename="csrs.zip", content_type="application/octet-stream")
    assert_error(response, 400, VALIDATION)
    assert api.batches() == []
    assert api.balance(42) == 100


@pytest.mark.parametrize(
    "payload",
    [
        b"-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
    ],
    ids=["not-der", "not-base64"],
)
def test_upload_invalid_csr_400(api: Api, payload: bytes) -> None:
    assert_error(api.upload(payload), 400, VALIDATION)
    assert api.batches() == []


@pytest.mark.parametrize("payload", [b"", b"hello, no CSR in here\n"], ids=["empty", "text"])
def test_upload_without_csr_400(api: Api, payload: bytes) -> None:
    assert_error(api.upload(payload), 400, VALIDATION)
    assert api.batches() == []


def test_upload_bad_signature_400(api: Api) -> None:
    csr, _ = make_csr("forged.example.com")
    assert_error(api.upload(tamper_csr_signature(csr)), 400, VALIDATION)
    assert api.batches() == []
    assert api.balance(42) == 100


def test_upload_one_bad_csr_spoils_the_batch(api: Api) -> None:
    good, _ = make_csr("good.example.com")
    bad, _ = make_csr("bad.example.com")
    assert_error(api.upload(good + tamper_csr_signature(bad)), 400, VALIDATION)
    assert api.batches() == []


def test_upload_unknown_profile_404(api: Api) -> None:
    csr, _ = make_csr("device.example.com")
    assert_error(api.upload(csr, profile_id=999), 404, -11)


def test_upload_not_enough_licences_402(
    emulator_factory: EmulatorFactory, connect: Connect
) -> None:
    api = connect(emulator_factory(balances=((42, 1), (85, 100))))
    first, _ = make_csr("a.example.com")
    second, _ = make_csr("b.example.com")
    assert_error(api.upload(first + second), 402, -13)
    assert api.balance(42) == 1
    assert api.batches() == []
    response = api.upload(first)
    assert response.status_code == 200, response.text
    assert api.balance(42) == 0


def test_upload_end_entity_profile(api: Api) -> None:
    csr, _ = make_csr("ee-device.example.com")
    response = api.upload(csr, profile_id=PROFILE_2)
    assert response.status_code == 200, response.text
    assert response.json()["profile"] == "TRISA End Entity"
    assert api.balance(85) == 99
    assert api.balance(42) == 100


def test_upload_csr_without_san_is_broken(api: Api) -> None:
    csr, _ = make_csr("nosan.example.com", with_san=False)
    response = api.upload(csr)
    assert response.status_code == 200, response.text
    batch_id = response.json()["batchId"]
    detail = api.wait_for_batch(batch_id)
    assert detail["status"] == "BROKEN", detail
    assert detail["rejectReason"] == BROKEN_REASON
    assert detail["downloadable"] is False
    assert api.get(f"/api/v1/batches/{batch_id}/status").text == "Failed"
    assert_error(api.download(batch_id), 400, -12)
    assert api.devices()["issued"] == 0


BATCH_REQUEST = '{"profileId": 42, "batchType": "BATCH", "profileParams": {}}'


def test_upload_without_files_part_400(api: Api) -> None:
    """No ``files`` part is "no CSR"."""
    parts: list[Part] = [
        ("profileId", (None, "42")),
        ("csrBatchRequest", ("blob", BATCH_REQUEST, "application/json")),
    ]
    response = api.request("POST", "/api/v1/batches/upload", files=parts)
    assert_error(response, 400, VALIDATION)
    assert api.batches() == []


def test_upload_without_batch_request_part_400(api: Api) -> None:
    """Strict reading: the documented ``csrBatchRequest`` part is required."""
    csr, _ = make_csr("device.example.com")
    parts: list[Part] = [
        ("profileId", (None, "42")),
        ("files", ("request.csr", csr, "application/octet-stream")),
    ]
    response = api.request("POST", "/api/v1/batches/upload", files=parts)
    assert_error(response, 400, VALIDATION)
    assert api.batches() == []


def test_upload_is_multipart_only(api: Api) -> None:
    csr, _ = make_csr("device.example.com")
    response = api.request(
        "POST",
        "/api/v1/batches/upload",
        data=csr,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code in (400, 415), response.text
    assert_error(response, response.status_code, None)
    assert api.batches() == []


def _csr_for(key: Any, common_name: str = "k.example.com") -> bytes:
    """A CSR with a SAN for ``key``; EdDSA keys sign without a digest."""
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, digest)
    )
    return csr.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("make_key", "found"),
    [
        (lambda: rsa.generate_private_key(65537, 1024), "an RSA key of 1024 bits"),
        (lambda: dsa.generate_private_key(2048), "DSA"),
        (ed25519.Ed25519PrivateKey.generate, "Ed25519"),
        (lambda: ec.generate_private_key(ec.SECP521R1()), "an EC key on secp521r1"),
    ],
    ids=["rsa-1024", "dsa", "ed25519", "ec-p521"],
)
def test_upload_refuses_keys_the_profile_does_not_take(
    api: Api, make_key: Callable[[], Any], found: str
) -> None:
    """Profiles take RSA >= 2048 and EC P-256/P-384: anything else is a 400, nothing is ordered."""
    good, _ = make_csr("good.example.com")
    response = api.upload(good + _csr_for(make_key()))
    assert_error(response, 400, VALIDATION)
    message = response.json()["message"]
    assert "CSR 2 has" in message and found in message, message
    assert "RSA of 2048 bits or more" in message
    assert api.batches() == []
    assert api.balance(42) == 100


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: rsa.generate_private_key(65537, 2048),
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: ec.generate_private_key(ec.SECP384R1()),
    ],
    ids=["rsa-2048", "ec-p256", "ec-p384"],
)
def test_upload_takes_the_keys_the_profile_offers(api: Api, make_key: Callable[[], Any]) -> None:
    response = api.upload(_csr_for(make_key()))
    assert response.status_code == 200, response.text
    assert api.wait_for_batch(response.json()["batchId"])["status"] == "READY_FOR_DOWNLOAD"
