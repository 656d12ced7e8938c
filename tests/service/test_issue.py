"""Issuance end to end: by CSR and by server-side key, through to READY and a usable download."""

from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import (
    ADMIN,
    REGISTRATION,
    csr_request,
    download,
    failure,
    issue_ready,
    key_public_der,
    make_csr,
    openssl,
    public_der,
    server_key_request,
    split_pem,
)


def _verify_chain(service: Service, tmp_path: Path, certificate_pem: str, chain_pem: str) -> None:
    """The real ``openssl verify``: the leaf chains through ``chain_pem`` to the emulator's root."""
    root = split_pem(service.sectigo.ca_chain_pem())[-1]
    (tmp_path / "root.pem").write_text(root)
    (tmp_path / "chain.pem").write_text(chain_pem)
    (tmp_path / "leaf.pem").write_text(certificate_pem)
    out = openssl(
        "verify",
        "-x509_strict",
        "-CAfile",
        tmp_path / "root.pem",
        "-untrusted",
        tmp_path / "chain.pem",
        tmp_path / "leaf.pem",
    )
    assert out.strip().endswith(": OK")


def test_csr_issue_reaches_ready_and_downloads_the_certificate_for_the_csr_key(
    service: Service, tmp_path: Path
) -> None:
    stub = service.stub()
    csr = make_csr("csr.example.com", ["csr.example.com", "www.csr.example.com"])

    reply = issue_ready(stub, csr_request("csr-1", csr.pem))

    assert reply.key_source == pb.KEY_SOURCE_CSR
    assert reply.owner == REGISTRATION
    assert reply.common_name == "csr.example.com"
    assert list(reply.dns_names) == ["csr.example.com", "www.csr.example.com"]
    assert reply.pkcs12_password == ""
    got = download(stub, "csr-1")
    assert public_der(got.certificate_pem) == csr.public_der
    leaf = x509.load_pem_x509_certificate(got.certificate_pem.encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {
        "csr.example.com",
        "www.csr.example.com",
    }
    der = leaf.public_bytes(serialization.Encoding.DER)
    assert got.sha256_fingerprint == hashlib.sha256(der).hexdigest()
    assert got.serial_number == format(leaf.serial_number, "X")
    record = stub.GetCertificateRequest(pb.GetCertificateRequestRequest(request_id="csr-1"))
    assert record.serial_number == got.serial_number
    assert record.batch_id > 0
    assert got.pkcs12 == b""
    assert got.pkcs12_password == ""
    assert got.private_key_pem == ""
    _verify_chain(service, tmp_path, got.certificate_pem, got.chain_pem)
    refused = failure(lambda: download(stub, "csr-1", include_private_key=True))
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION


def test_server_key_issue_returns_a_pkcs12_that_opens_with_the_generated_password(
    service: Service, tmp_path: Path
) -> None:
    stub = service.stub()
    request = server_key_request("srv-1", "srv.example.com", ["alt.example.com"])

    reply = issue_ready(stub, request)

    assert reply.key_source == pb.KEY_SOURCE_SERVER
    assert list(reply.dns_names) == ["srv.example.com", "alt.example.com"]
    password = reply.pkcs12_password
    assert len(password) >= 16
    got = download(stub, "srv-1")
    assert got.pkcs12_password == password
    assert got.private_key_pem == ""
    key, leaf, extra = pkcs12.load_key_and_certificates(got.pkcs12, password.encode())
    assert key is not None and leaf is not None
    assert leaf.public_bytes(serialization.Encoding.PEM).decode() == got.certificate_pem
    assert len(extra) >= 1
    p12 = tmp_path / "srv.p12"
    p12.write_bytes(got.pkcs12)
    opened = openssl("pkcs12", "-in", p12, "-nodes", "-passin", f"pass:{password}")
    assert "PRIVATE KEY-----" in opened
    assert "srv.example.com" in opened
    _verify_chain(service, tmp_path, got.certificate_pem, got.chain_pem)

    with_key = download(stub, "srv-1", include_private_key=True)
    assert key_public_der(with_key.private_key_pem) == public_der(got.certificate_pem)


def test_server_key_issue_with_a_caller_password_uses_that_password(
    service: Service, tmp_path: Path
) -> None:
    stub = service.stub()
    password = "correct horse battery"

    reply = issue_ready(stub, server_key_request("srv-pw", "pw.example.com", password=password))

    assert reply.pkcs12_password == password
    got = download(stub, "srv-pw")
    assert got.pkcs12_password == password
    p12 = tmp_path / "pw.p12"
    p12.write_bytes(got.pkcs12)
    assert "PRIVATE KEY-----" in openssl(
        "pkcs12", "-in", p12, "-nodes", "-passin", f"pass:{password}"
    )
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(got.pkcs12, b"not the password")


def test_end_entity_profile_gets_the_subject_fields(service: Service) -> None:
    stub = service.stub()
    subject = pb.Subject(
        organization="Example VASP Ltd", locality="Menlo Park", state="California", country="US"
    )

    issue_ready(
        stub, server_key_request("ee-1", "ee.example.com", subject=subject, authority_id=85)
    )

    got = download(stub, "ee-1")
    leaf = x509.load_pem_x509_certificate(got.certificate_pem.encode())
    assert "O=Example VASP Ltd" in leaf.subject.rfc4514_string()
    assert "C=US" in leaf.subject.rfc4514_string()
    record = stub.GetCertificateRequest(pb.GetCertificateRequestRequest(request_id="ee-1"))
    assert (record.authority_id, record.profile_id) == (85, 85)


def test_admin_downloads_another_owners_certificate_without_its_secrets(service: Service) -> None:
    owner = service.stub()
    issue_ready(owner, server_key_request("srv-adm", "adm.example.com"))
    admin = service.stub("admin")

    got = download(admin, "srv-adm", owner=REGISTRATION)

    assert "BEGIN CERTIFICATE" in got.certificate_pem
    assert got.chain_pem
    assert got.pkcs12 == b""
    assert got.pkcs12_password == ""
    assert got.private_key_pem == ""
    refused = failure(
        lambda: download(admin, "srv-adm", owner=REGISTRATION, include_private_key=True)
    )
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    audit = service.app.store.audit_log(owner=REGISTRATION, request_id="srv-adm")
    assert [(e.identity, e.action) for e in audit] == [
        (REGISTRATION, "issue"),
        (ADMIN, "download"),
    ]


@pytest.mark.parametrize(
    "emulator_settings",
    [{"pkcs12_encryption": "3des"}, {"key_type": "ec256"}],
    ids=["3des-pkcs12", "ec-key"],
)
def test_server_key_issue_with_other_pkcs12_forms(
    service_factory: ServiceFactory,
    emulator_factory: EmulatorFactory,
    emulator_settings: dict[str, str],
) -> None:
    service = service_factory(emulator=emulator_factory(**emulator_settings))
    stub = service.stub()

    reply = issue_ready(stub, server_key_request("form-1", "form.example.com"))

    got = download(stub, "form-1", include_private_key=True)
    key, leaf, _ = pkcs12.load_key_and_certificates(got.pkcs12, reply.pkcs12_password.encode())
    assert key is not None and leaf is not None
    assert leaf.public_bytes(serialization.Encoding.PEM).decode() == got.certificate_pem
    assert key_public_der(got.private_key_pem) == public_der(got.certificate_pem)
