"""``create`` and ``upload``: what is sent, what is refused before a licence is spent, and the
generated PKCS#12 password."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from cryptography import x509

from sectigo_admin.commands.orders import dns_names
from tests.admin.helpers import (
    Cli,
    InProcess,
    Management,
    make_csr,
    san_names,
    subject_values,
)
from tests.conftest import EmulatorFactory
from tests.wire import BATCH_KEYS

PASSWORD_LINE = re.compile(r"^sectigo: generated PKCS#12 password .*: (\S+)$", re.M)


def extract(run: Cli, batch_id: int, password: str, directory: Path) -> x509.Certificate:
    run("download", "-i", str(batch_id), "-o", str(directory), "--extract", "-p", password).ok()
    return x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())


def test_end_entity_profile_with_subject_fields(run: Cli, tmp_path: Path) -> None:
    created = run(
        "create",
        "-a", "85",
        "-d", "vasp.example.org",
        "-p", "secrtpasswrd",
        "--dns", "www.vasp.example.org",
        "--dns", "VASP.example.org",
        "-o", "Acme VASP",
        "-l", "Springfield",
        "-s", "Illinois",
        "-c", "US",
    ).ok()  # fmt: skip
    assert created.stderr == ""
    batch = created.json()
    assert batch["profile"] == "TRISA End Entity"
    assert batch["batchName"] == "new certs for vasp.example.org"
    cert = extract(run, batch["batchId"], "secrtpasswrd", tmp_path / "ee")
    assert subject_values(cert) == {
        "CN": "vasp.example.org",
        "O": "Acme VASP",
        "L": "Springfield",
        "ST": "Illinois",
        "C": "US",
    }
    assert san_names(cert) == ["vasp.example.org", "www.vasp.example.org"]


@pytest.fixture
def distinct_run(
    emulator_factory: EmulatorFactory, account_env: dict[str, str | None], workdir: Path
) -> Cli:
    """The command against an account whose authority ids (1, 2) are not its profile ids."""
    emulator = emulator_factory(authority_ids="distinct")
    return InProcess(account_env | {"SECTIGO_ENDPOINT": emulator.api_url})


@pytest.mark.parametrize("given", ["2", "85"])
def test_authority_or_profile_id(distinct_run: Cli, given: str) -> None:
    batch = distinct_run(
        "create", "-a", given, "-d", "x.example.org", "-p", "secrtpasswrd",
        "-o", "O", "-l", "L", "-s", "S", "-c", "US",
    ).ok().json()  # fmt: skip
    assert batch["profile"] == "TRISA End Entity"


def test_unknown_authority_lists_the_known_ones(distinct_run: Cli) -> None:
    line = distinct_run("create", "-a", "999", "-d", "example.com", "-p", "secrtpasswrd").failed(1)
    assert "authority 1 (profile 42 TRISA Profile)" in line


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("-a", "85"), "organizationName (--organization/-o): is required by the profile"),
        (("-a", "85", "-o", "O", "-l", "L", "-s", "S", "-c", "USA"), "countryName"),
        (("-a", "42", "-p", "short"), "pkcs12Password (--password/-p)"),
        (("-a", "42", "--dns", "not a name"), "dNSName"),
    ],
)
def test_refused_before_spending(
    run: Cli, management: Management, args: tuple[str, ...], problem: str
) -> None:
    before = run("licenses").ok().json()
    password = () if "-p" in args else ("-p", "secrtpasswrd")
    outcome = run("create", "-d", "example.com", *password, *args)
    line = outcome.failed(1)
    assert "nothing was sent" in line
    assert problem in line
    assert run("licenses").ok().json() == before
    assert management.stats()["batches_created"] == 0


def test_subject_fields_a_profile_lacks_are_left_out(run: Cli) -> None:
    outcome = run("create", "-a", "42", "-d", "example.com", "-p", "secrtpasswrd", "-o", "Acme")
    assert outcome.ok().json()["status"] == "CREATED"
    assert outcome.stderr == (
        "sectigo: warning: --organization/-o ignored: profile 42 has no organizationName\n"
    )


def test_generated_passwords_are_long_random_and_open_the_p12(run: Cli, tmp_path: Path) -> None:
    passwords = []
    for attempt in range(2):
        outcome = run("create", "-a", "42", "-d", "gen.example.com").ok()
        assert list(outcome.json()) == BATCH_KEYS
        match = PASSWORD_LINE.search(outcome.stderr)
        assert match is not None, outcome.stderr
        password = match.group(1)
        assert len(password) >= 16
        cert = extract(run, outcome.json()["batchId"], password, tmp_path / str(attempt))
        assert subject_values(cert)["CN"] == "gen.example.com"
        passwords.append(password)
    assert passwords[0] != passwords[1]


def test_a_password_from_the_environment_stays_off_argv(run: Cli, tmp_path: Path) -> None:
    secret = "from-the-environment-1"
    outcome = run(
        "create", "-a", "42", "-d", "env.example.com", env={"SECTIGO_PKCS12_PASSWORD": secret}
    ).ok()
    assert PASSWORD_LINE.search(outcome.stderr) is None, "nothing generated, nothing printed"
    assert secret not in outcome.stdout + outcome.stderr
    cert = extract(run, outcome.json()["batchId"], secret, tmp_path)
    assert subject_values(cert)["CN"] == "env.example.com"


def test_generated_password_shown_when_the_order_fails(run: Cli, management: Management) -> None:
    management.add_fault(kind="error", status=402, routes=["create_batch"], count=1)
    outcome = run("create", "-a", "42", "-d", "example.com")
    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    first, second = outcome.stderr.splitlines()
    assert PASSWORD_LINE.match(first)
    assert second.startswith("sectigo: error: create_batch (PUT): HTTP 402")


def test_upload_pem_and_zip(run: Cli, workdir: Path) -> None:
    pem = workdir / "one.csr"
    pem.write_bytes(make_csr("csr.example.com"))
    batch = run("upload", "one.csr", "-p", "42").ok().json()
    assert list(batch) == BATCH_KEYS
    assert batch["size"] == 1

    bundle = workdir / "csrs.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("a.csr", make_csr("a.example.com"))
        archive.writestr("b.csr", make_csr("b.example.com"))
    zipped = run("upload", "csrs.zip", "-p", "42", "-b", "two csrs").ok().json()
    assert zipped["size"] == 2
    assert zipped["batchName"] == "two csrs"

    fetched = run("download", "-i", str(zipped["batchId"]), "-o", "out").ok().stdout
    assert "for the PEM certificates" in fetched
    with zipfile.ZipFile(workdir / "out" / f"{zipped['batchId']}.zip") as archive:
        assert sorted(archive.namelist()) == ["a.example.com.pem", "b.example.com.pem"]


def test_upload_refuses_what_is_not_a_csr(run: Cli, workdir: Path) -> None:
    (workdir / "notes.txt").write_text("hello")
    assert "expected PEM certificate requests" in run("upload", "notes.txt", "-p", "42").failed(2)


def test_dns_names_keep_order_and_drop_duplicates_and_blanks() -> None:
    assert dns_names(["a.example", " B.example ", "", "A.EXAMPLE", "b.example"]) == (
        "a.example\nB.example"
    )
