"""The three-line path (issue, wait, download) for both key modes, against a real service; the
files it writes, checked with the real openssl."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from sectigo_client import CertificateAuthorityClient, KeySource, RequestState, SavedFiles
from tests.service.helpers import WAIT, openssl


def mode(path: Path | None) -> int:
    assert path is not None
    return stat.S_IMODE(path.stat().st_mode)


def dns_names(path: Path) -> list[str]:
    leaf = x509.load_pem_x509_certificate(path.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def assert_key_matches(saved: SavedFiles) -> None:
    """openssl reads the key and the certificate, and their public keys are the same."""
    assert saved.key is not None
    from_key = openssl("pkey", "-in", saved.key, "-pubout")
    from_cert = openssl("x509", "-in", saved.certificate, "-noout", "-pubkey")
    assert from_key == from_cert


def test_a_key_made_here_in_three_lines(ca: CertificateAuthorityClient, tmp_path: Path) -> None:
    issued = ca.issue_with_new_key("api.example.com", ["www.example.com"])
    ca.wait(issued.request_id, timeout=WAIT)
    saved = ca.download_to(issued.request_id, tmp_path / "tls", private_key=issued.private_key)

    assert issued.record.key_source is KeySource.CSR
    assert (saved.certificate.name, saved.chain.name) == ("cert.pem", "chain.pem")
    assert saved.key == tmp_path / "tls" / "key.pem"
    assert (saved.pkcs12, saved.pkcs12_password) == (None, None)
    assert mode(saved.key) == 0o600
    assert mode(saved.certificate) == 0o644
    assert dns_names(saved.certificate) == ["api.example.com", "www.example.com"]
    assert_key_matches(saved)
    text = openssl("x509", "-in", saved.certificate, "-noout", "-subject", "-serial")
    assert "CN = api.example.com" in text
    printed = text.split("serial=", 1)[1].split()[0]
    assert int(printed, 16) == int(saved.serial_number, 16)
    chain = saved.chain.read_text()
    openssl("verify", "-CAfile", saved.chain, "-untrusted", saved.chain, saved.certificate)
    assert chain.count("BEGIN CERTIFICATE") == 2
    assert sorted(p.name for p in saved.directory.iterdir()) == ["cert.pem", "chain.pem", "key.pem"]


def test_a_key_made_by_sectigo_in_three_lines(
    ca: CertificateAuthorityClient, tmp_path: Path
) -> None:
    record = ca.issue(common_name="srv.example.com", dns_names=["alt.example.com"])
    done = ca.wait(record.request_id, timeout=WAIT)
    saved = ca.download_to(record.request_id, tmp_path / "tls", include_private_key=True)

    assert record.key_source is KeySource.SERVER
    assert record.pkcs12_password, "the issue reply carries the generated password"
    assert done.state is RequestState.READY
    assert done.serial_number == saved.serial_number
    assert [mode(saved.key), mode(saved.pkcs12), mode(saved.pkcs12_password)] == [0o600] * 3
    assert saved.pkcs12 is not None and saved.pkcs12_password is not None
    assert saved.pkcs12_password.read_text() == record.pkcs12_password + "\n"
    assert_key_matches(saved)
    bundle = openssl(
        "pkcs12", "-in", saved.pkcs12, "-nodes", "-passin", f"file:{saved.pkcs12_password}"
    )
    assert "BEGIN PRIVATE KEY" in bundle
    assert "srv.example.com" in bundle
    assert dns_names(saved.certificate) == ["srv.example.com", "alt.example.com"]


def test_download_to_objects_carries_the_secrets_only_when_asked(
    ca: CertificateAuthorityClient,
) -> None:
    record = ca.issue(common_name="objects.example.com")
    ca.wait(record.request_id, timeout=WAIT)

    plain = ca.download(record.request_id)
    with_key = ca.download(record.request_id, include_private_key=True)

    assert plain.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert plain.pkcs12 and plain.pkcs12_password == record.pkcs12_password
    assert plain.private_key_pem == ""
    assert with_key.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert len(plain.sha256_fingerprint) == 64
    assert record.pkcs12_password not in repr(plain), "secrets stay out of reprs"


def test_a_key_that_is_not_the_certificates_is_refused_before_writing(
    ca: CertificateAuthorityClient, tmp_path: Path
) -> None:
    first = ca.issue_with_new_key("one.example.com")
    second = ca.issue_with_new_key("two.example.com")
    ca.wait(first.request_id, timeout=WAIT)

    with pytest.raises(ValueError, match="does not belong"):
        ca.download_to(first.request_id, tmp_path / "tls", private_key=second.private_key_pem)
    assert not (tmp_path / "tls").exists()
