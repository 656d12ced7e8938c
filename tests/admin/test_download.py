"""``batches`` and ``download``: the ZIP lands only inside the chosen directory, and --extract
writes PEM files that openssl reads, the key owner-only."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.admin.helpers import P12_PASSWORD, Cli, InProcess, Management, openssl
from tests.conftest import EmulatorFactory


def order(run: Cli, domain: str = "dl.example.com") -> str:
    created = run("create", "-a", "42", "-d", domain, "-p", P12_PASSWORD).ok().json()
    return str(created["batchId"])


def tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_extract_writes_cert_chain_and_key(run: Cli, workdir: Path) -> None:
    batch_id = order(run)
    out = run("download", "-i", batch_id, "-o", "pems", "--extract", "-p", P12_PASSWORD).ok()
    assert "pems/key.pem" in out.stdout
    pems = workdir / "pems"
    assert (pems / "key.pem").stat().st_mode & 0o777 == 0o600
    assert (pems / "cert.pem").stat().st_mode & 0o777 == 0o644
    subject = openssl("x509", "-in", str(pems / "cert.pem"), "-noout", "-subject").stdout
    assert "dl.example.com" in subject
    openssl("pkey", "-in", str(pems / "key.pem"), "-noout")
    chain = openssl("crl2pkcs7", "-nocrl", "-certfile", str(pems / "chain.pem")).stdout
    assert chain
    verified = openssl("verify", "-CAfile", str(pems / "chain.pem"), str(pems / "cert.pem"))
    assert verified.stdout.strip().endswith("OK")
    cert = x509.load_pem_x509_certificate((pems / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((pems / "key.pem").read_bytes(), None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(serialization.Encoding.DER, spki) == (
        key.public_key().public_bytes(serialization.Encoding.DER, spki)
    )


def test_download_creates_the_directory_and_writes_nothing_outside(run: Cli, workdir: Path) -> None:
    batch_id = order(run)
    before = tree(workdir)
    run("download", "-i", batch_id, "-o", "deep/certs").ok()
    added = tree(workdir) - before
    assert added == {Path("deep"), Path("deep/certs"), Path(f"deep/certs/{batch_id}.zip")}


def test_extract_with_the_wrong_password(run: Cli, workdir: Path) -> None:
    batch_id = order(run)
    outcome = run("download", "-i", batch_id, "-o", "x", "--extract", "-p", "wrong-pass")
    assert outcome.exit_code == 1
    # The ZIP itself was saved and said so; only the extraction failed.
    assert outcome.stdout.startswith(f"downloaded batch {batch_id} to x/{batch_id}.zip\n")
    assert (
        outcome.stderr == "sectigo: error: dl.example.com.p12: wrong password or corrupt PKCS#12\n"
    )
    assert sorted(p.name for p in (workdir / "x").iterdir()) == [f"{batch_id}.zip"]


def test_password_without_extract_is_a_usage_error(run: Cli) -> None:
    assert "only used with --extract" in run("download", "-i", "1", "-p", "pw").failed(2)


def test_batch_not_ready(run: Cli, management: Management) -> None:
    management.settings(stuck=True)
    batch_id = order(run)
    assert run("batches", "-i", batch_id, "-s").ok().json()["status"] == "Processing"
    assert run("batches", "-i", batch_id, "-I").ok().json() == {
        "active": 1,
        "success": 0,
        "failed": 0,
    }
    assert "HTTP 400" in run("download", "-i", batch_id, "-o", "certs").failed(1)


def test_extract_and_hint_for_an_aes_pkcs12(
    emulator_factory: EmulatorFactory, account_env: dict[str, str | None], workdir: Path
) -> None:
    """--extract reads PBES2/AES files as well as Sectigo's RC2-40 ones; the openssl hint asks
    for -legacy only when the file needs it."""
    emulator = emulator_factory(pkcs12_encryption="aes")
    aes_run = InProcess(account_env | {"SECTIGO_ENDPOINT": emulator.api_url})
    batch_id = order(aes_run, "aes.example.com")
    out = aes_run("download", "-i", batch_id, "-o", "a", "--extract", "-p", P12_PASSWORD).ok()
    assert "openssl pkcs12 -in a/aes.example.com.p12 -nodes" in out.stdout
    assert "-legacy" not in out.stdout
    assert "aes.example.com" in openssl("x509", "-in", "a/cert.pem", "-noout", "-subject").stdout


def test_hint_asks_for_legacy_on_sectigo_files(run: Cli) -> None:
    batch_id = order(run)
    out = run("download", "-i", batch_id, "-o", "s").ok().stdout
    assert "openssl pkcs12 -legacy -in s/dl.example.com.p12 -nodes" in out
