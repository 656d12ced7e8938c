"""Keys and CSRs made locally, files written atomically with the right modes, reasons parsed."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from sectigo_client import Certificate, KeyType, NewKey, RevocationReason, Subject, files, new_key
from sectigo_client.files import write_atomic
from sectigo_client.keys import belongs_to
from tests.service.helpers import openssl


def test_new_key_is_p256_with_every_name_in_the_csr_san(tmp_path: Path) -> None:
    made = new_key(
        "api.example.com",
        ["www.example.com", "api.example.com"],
        Subject(organization="Example Ltd", country="US"),
    )

    csr = x509.load_pem_x509_csr(made.csr_pem.encode())
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example.com", "www.example.com"]
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example Ltd"
    assert not csr.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)
    assert isinstance(made.private_key, ec.EllipticCurvePrivateKey)
    assert made.private_key.curve.name == "secp256r1"
    assert csr.is_signature_valid
    assert "PRIVATE" not in repr(made)
    (tmp_path / "key.pem").write_text(made.private_key_pem)
    assert "ASN1 OID: prime256v1" in openssl("pkey", "-in", tmp_path / "key.pem", "-noout", "-text")


def self_signed(made: NewKey) -> str:
    """A PEM certificate for the public half of ``made``'s key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(made.private_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(made.private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_rsa_keys_on_request_and_belongs_to_tells_keys_apart() -> None:
    made = new_key("rsa.example.com", key_type=KeyType.RSA)

    assert isinstance(made.private_key, rsa.RSAPrivateKey)
    assert made.private_key.key_size == 2048
    assert belongs_to(made.private_key_pem, self_signed(made))
    assert not belongs_to(new_key("other.example.com").private_key_pem, self_signed(made))


def test_write_atomic_sets_the_mode_and_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    target.write_text("old")
    target.chmod(0o644)

    write_atomic(target, b"new", 0o600)

    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"], "no temporary file is left"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "cert.pem"
    target.write_text("old")

    with pytest.raises(TypeError):
        write_atomic(target, "not bytes", 0o644)  # type: ignore[arg-type]

    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["cert.pem"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("keyCompromise", RevocationReason.KEY_COMPROMISE),
        ("KEY_COMPROMISE", RevocationReason.KEY_COMPROMISE),
        ("key-compromise", RevocationReason.KEY_COMPROMISE),
        ("cACompromise", RevocationReason.CA_COMPROMISE),
        ("removeFromCRL", RevocationReason.REMOVE_FROM_CRL),
        ("superseded", RevocationReason.SUPERSEDED),
        ("10", RevocationReason.AA_COMPROMISE),
        ("1", RevocationReason.KEY_COMPROMISE),
        (" 1 ", RevocationReason.KEY_COMPROMISE),
        ("key compromise", RevocationReason.KEY_COMPROMISE),
        ("Key_Compromise\t", RevocationReason.KEY_COMPROMISE),
        ("remove-from crl", RevocationReason.REMOVE_FROM_CRL),
        (4, RevocationReason.SUPERSEDED),
        (RevocationReason.CERTIFICATE_HOLD, RevocationReason.CERTIFICATE_HOLD),
    ],
)
def test_revocation_reasons_by_rfc_name_api_name_or_code(
    given: str | int, expected: RevocationReason
) -> None:
    assert RevocationReason.parse(given) is expected


@pytest.mark.parametrize(
    "given", ["stolen", "7", "-1", "1.0", "+1", "1 0", "11", "\u0661", "key.compromise", ""]
)
def test_unknown_reasons_codes_and_near_codes_are_refused(given: str) -> None:
    # A revocation cannot be undone: "-1" must not become keyCompromise, nor "1.0" aACompromise.
    with pytest.raises(ValueError, match="keyCompromise, cACompromise"):
        RevocationReason.parse(given)


def test_the_names_are_rfc_5280s_in_code_order() -> None:
    assert RevocationReason.names()[:2] == ("unspecified", "keyCompromise")
    assert RevocationReason.names()[-1] == "aACompromise"


# download_to's files -----------------------------------------------------------------------------


def issued_for(made: NewKey, pkcs12: bytes = b"") -> Certificate:
    """A downloaded certificate for ``made``'s key (self-signed: only the key pairing matters)."""
    pem = self_signed(made)
    return Certificate(pem, pem, "01", None, None, "", "", pkcs12=pkcs12, pkcs12_password="pw")


def test_a_download_removes_the_key_and_bundle_of_another_certificate(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text(new_key("old.example.com").private_key_pem)
    (tmp_path / "bundle.p12").write_bytes(b"old bundle")
    (tmp_path / "bundle.p12.password").write_text("old\n")

    saved = files.save(tmp_path, issued_for(new_key("new.example.com")))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "chain.pem"]
    assert (saved.key, saved.pkcs12, saved.pkcs12_password) == (None, None, None)


@pytest.mark.parametrize("kept", ["own", "unreadable"])
def test_a_download_keeps_the_certificates_own_key_and_keys_it_cannot_judge(
    tmp_path: Path, kept: str
) -> None:
    made = new_key("new.example.com")
    text = made.private_key_pem if kept == "own" else "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    (tmp_path / "key.pem").write_text(text)

    saved = files.save(tmp_path, issued_for(made))

    assert (tmp_path / "key.pem").read_text() == text
    assert saved.key is None, "not written by this download"


def test_stale_files_go_first_and_cert_pem_is_written_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "key.pem").write_text(new_key("old.example.com").private_key_pem)
    (tmp_path / "bundle.p12").write_bytes(b"old bundle")
    written: list[tuple[str, list[str]]] = []
    write = files.write_atomic

    def noting(path: Path, data: bytes, mode: int) -> None:
        written.append((path.name, sorted(p.name for p in tmp_path.iterdir())))
        write(path, data, mode)

    monkeypatch.setattr(files, "write_atomic", noting)
    files.save(tmp_path, issued_for(new_key("csr.example.com")))
    first = written.copy()
    written.clear()
    made = new_key("server.example.com")
    files.save(tmp_path, issued_for(made, pkcs12=b"bundle"), made.private_key_pem)

    assert first == [("chain.pem", []), ("cert.pem", ["chain.pem"])], "stale files went first"
    assert [name for name, _ in written] == [
        "key.pem",
        "bundle.p12",
        "bundle.p12.password",
        "chain.pem",
        "cert.pem",
    ]
