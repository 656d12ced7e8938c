"""The original CLI documentation (seed-sectigo-cli.md), every command exactly as written.

Only SECTIGO_ENDPOINT (plus the account and a private cache) is set, as an operator would; the
emulator issues at once, so the batch is downloadable as soon as it is created.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.admin.helpers import (
    P12_PASSWORD,
    Cli,
    Outcome,
    openssl,
    unzip,
)
from tests.wire import AUTHORITY_KEYS, BATCH_KEYS


def test_seed_walkthrough(cli: Cli, workdir: Path) -> None:
    def step(*args: str) -> Outcome:
        """One documented command: it succeeds and says nothing on stderr."""
        outcome = cli(*args).ok()
        assert outcome.stderr == ""
        return outcome

    # Authentication
    assert step("auth").stdout.startswith("user authenticated and credentials cached")
    cache = Path(step("auth", "--cache").stdout.strip())
    assert cache.is_file()
    assert step("auth", "--debug").stdout.startswith("credentials are valid until ")

    # Authorities and profiles
    listed = step("authorities").json()
    assert [list(a) for a in listed] == [AUTHORITY_KEYS, AUTHORITY_KEYS]
    assert listed[0]["profileId"] == 42
    assert listed[0]["profileName"] == "TRISA Profile"
    licences = step("licenses").json()
    assert list(licences) == ["ordered", "issued"]
    detail = step("profiles", "-i", "42").json()
    assert detail["profileId"] == 42
    assert detail["profileName"] == "TRISA Profile"
    params = step("profile", "-i", "42", "--params").json()
    assert {p["name"] for p in params} == {"commonName", "dNSName", "pkcs12Password"}

    # Creating certificates
    created = step(
        "create", "-a", "42", "-d", "example.com", "-p", "secrtpasswrd", "-b", "example.com certs"
    )
    batch = created.json()
    assert list(batch) == BATCH_KEYS
    assert batch["batchName"] == "example.com certs"
    assert batch["profile"] == "TRISA Profile"
    batch_id = str(batch["batchId"])

    assert step("batches", "-i", batch_id).json()["status"] == "READY_FOR_DOWNLOAD"
    status = step("batches", "-i", batch_id, "--status").json()
    assert status == {
        "status": "Ready for download",
        "state": "READY_FOR_DOWNLOAD",
        "active": 0,
        "success": 1,
        "failed": 0,
    }

    downloaded = step("download", "-i", batch_id, "-o", "certs/").stdout
    archive = workdir / "certs" / f"{batch_id}.zip"
    assert archive.is_file()
    assert f"downloaded batch {batch_id} to certs/{batch_id}.zip" in downloaded
    # Sectigo's files (and the emulator's) use RC2-40: OpenSSL 3 needs -legacy, and the hint says so
    assert "openssl pkcs12 -legacy -in certs/example.com.p12 -nodes" in downloaded
    assert unzip(archive, workdir / "certs") == ["example.com.p12"]
    openssl(
        "pkcs12",
        "-legacy",
        "-in",
        "certs/example.com.p12",
        "-out",
        "certs/example.com.pem",
        "-nodes",
        "-passin",
        f"pass:{P12_PASSWORD}",
    )
    pem = (workdir / "certs" / "example.com.pem").read_text()
    assert "PRIVATE KEY-----" in pem
    assert pem.count("BEGIN CERTIFICATE") == 3

    # Managing certificates
    found = step("find", "-n", "example.com").json()
    assert found["totalCount"] == 1
    serial = found["items"][0]["serialNumber"]
    assert re.fullmatch(r"[0-9A-F]+", serial)
    assert found["items"][0]["status"] == "ISSUED"
    revoked = step("revoke", "-p", "42", "-r", "cessation of operation", "-s", serial)
    assert revoked.stdout.startswith(f"revoked certificate {serial}")
    after = step("find", "-n", "example.com").json()
    assert [item["status"] for item in after["items"]] == ["REVOKED"]
