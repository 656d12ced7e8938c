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

from sectigo_client import KeyType, NewKey, RevocationReason, Subject, new_key
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
        (4, RevocationReason.SUPERSEDED),
        (RevocationReason.CERTIFICATE_HOLD, RevocationReason.CERTIFICATE_HOLD),
    ],
)
def test_revocation_reasons_by_rfc_name_api_name_or_code(
    given: str | int, expected: RevocationReason
) -> None:
    assert RevocationReason.parse(given) is expected


def test_unknown_reasons_and_code_7_are_refused() -> None:
    with pytest.raises(ValueError, match="keyCompromise, cACompromise"):
        RevocationReason.parse("stolen")
    with pytest.raises(ValueError):
        RevocationReason.parse("7")
    assert RevocationReason.names()[-1] == "aACompromise"
