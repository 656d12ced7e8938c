"""Downloading Sectigo's own PKCS#12 beside the re-encoded one, against a real service, each file
opened with the real ``openssl``: ``bundle.p12`` without ``-legacy``, ``bundle.sectigo.p12``
only with it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from sectigo_client import CertificateAuthorityClient, RequestState
from sectigo_client.files import PASSWORD_FILE, PKCS12_FILE, SECTIGO_PKCS12_FILE
from tests.client.conftest import Cli
from tests.service.helpers import OPENSSL, WAIT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def pkcs12(path: Path, password: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``openssl pkcs12 -in path -passin env:PW`` plus ``extra``; the password never on argv."""
    return subprocess.run(
        [OPENSSL, "pkcs12", "-in", str(path), "-passin", "env:PW", *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "PW": password},
        timeout=30,
        check=False,
    )


def public_key(pem_source: Path, *, of_key: bool = False) -> str:
    args = ["pkey", "-pubout"] if of_key else ["x509", "-noout", "-pubkey"]
    done = subprocess.run(
        [OPENSSL, *args, "-in", str(pem_source)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def issued_by_sectigo(ca: CertificateAuthorityClient, common_name: str) -> tuple[str, str]:
    """A READY request whose key Sectigo made: its id and PKCS#12 password."""
    record = ca.issue(common_name=common_name)
    assert ca.wait(record.request_id, timeout=WAIT).state is RequestState.READY
    return record.request_id, record.pkcs12_password


def test_sectigo_pkcs12_is_written_beside_the_bundle_and_needs_legacy(
    ca: CertificateAuthorityClient, cli: Cli, tmp_path: Path
) -> None:
    request_id, password = issued_by_sectigo(ca, "orig.example.com")
    out = tmp_path / "tls"

    result = cli("--json", "download", request_id, "-o", str(out), "--sectigo-pkcs12")

    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    bundle, original = out / PKCS12_FILE, out / SECTIGO_PKCS12_FILE
    assert written["sectigo_pkcs12"] == str(original)
    assert written["pkcs12"] == str(bundle)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["cert.pem", "chain.pem", PKCS12_FILE, SECTIGO_PKCS12_FILE, PASSWORD_FILE]
    )
    assert [mode(bundle), mode(original), mode(out / PASSWORD_FILE)] == [0o600] * 3
    assert (out / PASSWORD_FILE).read_text() == password + "\n"
    assert password not in result.output

    assert pkcs12(bundle, password, "-noout").returncode == 0
    refused = pkcs12(original, password, "-noout")
    assert refused.returncode != 0, "Sectigo's layout should need -legacy"
    assert pkcs12(original, password, "-noout", "-legacy").returncode == 0

    # Both files hold the same key, the certificate's.
    for path, legacy in [(bundle, ()), (original, ("-legacy",))]:
        key = out / f"{path.name}.key.pem"
        opened = pkcs12(path, password, "-nocerts", "-nodes", "-out", str(key), *legacy)
        assert opened.returncode == 0, opened.stderr
        assert public_key(key, of_key=True) == public_key(out / "cert.pem")


def test_without_the_option_the_bundle_alone_and_an_old_original_is_removed(
    ca: CertificateAuthorityClient, cli: Cli, tmp_path: Path
) -> None:
    first, _ = issued_by_sectigo(ca, "first.example.com")
    second, password = issued_by_sectigo(ca, "second.example.com")
    out = tmp_path / "tls"
    assert cli("download", first, "-o", str(out), "--sectigo-pkcs12").exit_code == 0
    assert (out / SECTIGO_PKCS12_FILE).exists()

    plain = cli("download", second, "-o", str(out))

    assert plain.exit_code == 0, plain.output
    assert not (out / SECTIGO_PKCS12_FILE).exists(), "it is another certificate's"
    assert (out / PASSWORD_FILE).read_text() == password + "\n"
    assert pkcs12(out / PKCS12_FILE, password, "-noout").returncode == 0


def test_the_library_returns_the_original_bytes_only_when_asked(
    ca: CertificateAuthorityClient, tmp_path: Path
) -> None:
    request_id, _ = issued_by_sectigo(ca, "lib.example.com")

    plain = ca.download(request_id)
    asked = ca.download(request_id, include_sectigo_pkcs12=True)
    saved = ca.download_to(request_id, tmp_path / "tls", include_sectigo_pkcs12=True)

    assert plain.sectigo_pkcs12 == b""
    assert asked.sectigo_pkcs12 and asked.sectigo_pkcs12 != asked.pkcs12
    assert "sectigo_pkcs12" not in repr(asked)
    assert saved.sectigo_pkcs12 == tmp_path / "tls" / SECTIGO_PKCS12_FILE
    assert saved.sectigo_pkcs12.read_bytes() == asked.sectigo_pkcs12, "the same bytes every time"


def test_a_csr_request_has_no_pkcs12_to_write_even_when_asked(
    ca: CertificateAuthorityClient, tmp_path: Path
) -> None:
    issued = ca.issue_with_new_key("csr.example.com")
    assert ca.wait(issued.request_id, timeout=WAIT).state is RequestState.READY

    saved = ca.download_to(issued.request_id, tmp_path / "tls", include_sectigo_pkcs12=True)

    assert (saved.pkcs12, saved.sectigo_pkcs12, saved.pkcs12_password) == (None, None, None)
    assert sorted(p.name for p in saved.directory.iterdir()) == ["cert.pem", "chain.pem"]


def test_the_text_output_lists_the_original_too(
    ca: CertificateAuthorityClient, cli: Cli, tmp_path: Path
) -> None:
    request_id, password = issued_by_sectigo(ca, "listed.example.com")
    out = tmp_path / "tls"

    result = cli("download", request_id, "-o", str(out), "--sectigo-pkcs12")

    assert result.exit_code == 0, result.output
    assert str(out / SECTIGO_PKCS12_FILE) in result.stdout
    assert str(out / PKCS12_FILE) in result.stdout
    assert password not in result.output
