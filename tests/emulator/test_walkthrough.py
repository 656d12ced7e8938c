"""The seed walk-through (seed-sectigo-cli.md) end to end, with plain requests and openssl."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from sectigo_svc.emulator import Emulator
from tests.emulator.conftest import Connect
from tests.emulator.helpers import (
    P12_PASSWORD,
    TIMEOUT,
    common_name,
    content_disposition_filename,
    crl_signed_by,
    fetch_chain,
    leaf_for_key,
    open_p12_with_openssl,
    openssl,
    san_dns_names,
    unzip,
)


def test_seed_walkthrough(emulator: Emulator, connect: Connect, tmp_path: Path) -> None:
    # sectigo auth
    api = connect(emulator, login=False)
    assert api.login().status_code == 200

    # sectigo authorities
    authorities = api.get("/api/v1/authorities/allowed").json()
    authority = next(a for a in authorities if a["id"] == 42)
    assert authority["profileId"] == 42
    assert authority["profileName"] == "TRISA Profile"
    balance_before = authority["balance"]

    # sectigo licenses / profiles -i 42 / profiles -i 42 --params
    assert api.devices()["issued"] == 0
    assert api.get("/api/v1/profiles/42").json()["profileId"] == 42
    required = {
        p["name"] for p in api.get("/api/v1/profiles/42/parameters").json() if p["required"]
    }
    assert required >= {"commonName", "dNSName", "pkcs12Password"}

    # sectigo create -a 42 -d example.com -p secrtpasswrd -b "example.com certs" (plus a SAN)
    params = {
        "commonName": "example.com",
        "dNSName": "example.com\nwww.example.com",
        "pkcs12Password": P12_PASSWORD,
    }
    created = api.create_batch(params, authority_id=42, batch_name="example.com certs")
    assert created.status_code == 200, created.text
    batch = created.json()
    assert batch["status"] == "CREATED"
    assert batch["batchName"] == "example.com certs"
    assert batch["size"] == 1
    batch_id = batch["batchId"]
    assert api.balance(42) == balance_before - 1

    # sectigo batches -i ID (poll), --status, --info
    deadline = time.monotonic() + 5
    while (detail := api.batch(batch_id))["status"] != "READY_FOR_DOWNLOAD":
        assert detail["status"] in ("CREATED", "PROCESSING"), detail
        assert time.monotonic() < deadline, detail
        time.sleep(0.05)
    assert detail["downloadable"] is True
    assert api.get(f"/api/v1/batches/{batch_id}/status").text == "Ready for download"
    info = api.get(f"/api/v1/batches/{batch_id}/processing_info").json()
    assert info == {"active": 0, "success": 1, "failed": 0}

    # sectigo download -i ID -o certs/
    download = api.download(batch_id)
    assert download.status_code == 200
    assert content_disposition_filename(download) == f"{batch_id}.zip"
    certs_dir = tmp_path / "certs"
    certs_dir.mkdir()
    (certs_dir / f"{batch_id}.zip").write_bytes(download.content)

    # unzip certs/ID.zip; openssl pkcs12 -in certs/example.com.p12 -nodes: like Sectigo's own
    # files, OpenSSL 3 opens it only with -legacy (RC2-40)
    members = unzip((certs_dir / f"{batch_id}.zip").read_bytes())
    assert list(members) == ["example.com.p12"]
    p12_path = certs_dir / "example.com.p12"
    p12_path.write_bytes(members["example.com.p12"])
    plain = openssl("pkcs12", "-in", str(p12_path), "-nodes", "-passin", f"pass:{P12_PASSWORD}")
    assert plain.returncode != 0
    assert b"RC2" in plain.stderr, plain.stderr
    key, certs = open_p12_with_openssl(
        members["example.com.p12"], P12_PASSWORD, certs_dir, legacy=True
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    leaf = leaf_for_key(key, certs)
    issuing, root = fetch_chain(emulator.api_url)
    assert set(certs) == {leaf, issuing, root}
    leaf.verify_directly_issued_by(issuing)
    assert common_name(leaf.subject) == "example.com"
    assert san_dns_names(leaf) == ["example.com", "www.example.com"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    crl_points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    crl_url = f"{emulator.api_url}/crl/issuing.crl"
    assert [n.value for p in crl_points for n in p.full_name or []] == [crl_url]

    # the first download made the batch COLLECTED; it still downloads
    assert api.batch(batch_id)["status"] == "COLLECTED"
    again = api.download(batch_id)
    assert again.status_code == 200
    assert unzip(again.content).keys() == members.keys()
    assert api.devices()["issued"] == 1

    # sectigo find -n example.com; find -s SERIAL (lower case in, upper case out)
    found = api.find(commonName="example.com")
    assert found["totalCount"] == 1
    serial = found["items"][0]["serialNumber"]
    assert serial == format(leaf.serial_number, "X")
    by_serial = api.find(serialNumber=serial.lower())
    assert by_serial["totalCount"] == 1
    assert by_serial["items"][0]["serialNumber"] == serial
    assert by_serial["items"][0]["status"] == "ISSUED"

    # sectigo revoke -p 42 -r "cessation of operation" -s SERIAL
    revoked = api.revoke(42, {"reasonCode": 5, "serialNumber": serial})
    assert revoked.status_code == 200, revoked.text
    assert api.find(commonName="example.com")["items"][0]["status"] == "REVOKED"

    # the CRL from the distribution point lists the serial, signed by the issuing CA
    crl_response = requests.get(crl_url, timeout=TIMEOUT)
    assert crl_response.status_code == 200
    crl = x509.load_der_x509_crl(crl_response.content)
    assert crl_signed_by(crl, issuing)
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.cessation_of_operation
    issuing.verify_directly_issued_by(root)
