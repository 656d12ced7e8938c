"""Every client method against the emulator over real HTTP: happy paths and error mapping."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sectigo_svc.emulator.config import Account
from sectigo_svc.sectigo import (
    BatchStatus,
    Credentials,
    RevocationReason,
    SectigoClient,
    open_pem_zip,
    open_pkcs12_zip,
)
from sectigo_svc.sectigo.errors import (
    InsufficientLicences,
    InvalidCredentials,
    InvalidRequest,
    NotAuthorized,
    NotFound,
    ValidationError,
)
from tests.conftest import EmulatorFactory
from tests.sectigo.conftest import ClientFactory, Management, client_config

P12_PASSWORD = "p12-Secret-42"


def server_params(common_name: str = "a.example.com") -> dict[str, str]:
    return {"commonName": common_name, "dNSName": common_name, "pkcs12Password": P12_PASSWORD}


def make_csr(common_name: str, *, san: bool = True) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_account_and_catalogue_reads(client: SectigoClient) -> None:
    authorities = client.authorities()
    assert [(a.id, a.profile_id) for a in authorities] == [(1, 42), (2, 85)]
    assert client.balance_available(1) == authorities[0].balance == 100
    licenses = client.licenses()
    assert (licenses.ordered, licenses.issued) == (200, 0)
    assert [p.profile_id for p in client.profiles()] == [42, 85]
    detail = client.profile_detail(42)
    assert (detail.profile_id, detail.profile_name) == (42, "TRISA Profile")
    params = {p.name: p for p in client.profile_parameters(85)}
    assert {"commonName", "dNSName", "pkcs12Password", "countryName"} <= set(params)
    assert params["commonName"].required and params["countryName"].validation_pattern
    organization = client.organization()
    assert (organization.organization_id, organization.organization_name) == (
        1042,
        "TRISA Emulated",
    )
    assert [a.id for a in organization.authorities] == [1, 2]


def test_server_side_key_batch_from_order_to_revocation(
    client: SectigoClient, tmp_path: Path
) -> None:
    created = client.create_single_cert_batch(1, "req-order-1", server_params())
    assert created.status is BatchStatus.CREATED and created.batch_name == "req-order-1"
    assert created.creation_date is not None
    ready = client.batch_detail(created.batch_id)
    assert ready.status is BatchStatus.READY_FOR_DOWNLOAD and ready.downloadable
    assert client.batch_status(created.batch_id).status is BatchStatus.READY_FOR_DOWNLOAD
    info = client.processing_info(created.batch_id)
    assert (info.active, info.success, info.failed) == (0, 1, 0)
    assert [b.batch_id for b in client.list_batches(batch_name="req-order-1")] == [created.batch_id]

    path = client.download(created.batch_id, tmp_path)
    assert path == tmp_path / f"{created.batch_id}.zip"
    opened = open_pkcs12_zip(path, P12_PASSWORD)
    assert (
        opened.leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "a.example.com"
    )
    assert [c.subject.rfc4514_string().split(",")[0] for c in opened.chain] == [
        "CN=Sectigo Emulator Issuing CA",
        "CN=Sectigo Emulator Root CA",
    ]
    assert client.batch_detail(created.batch_id).status is BatchStatus.COLLECTED
    in_memory = open_pkcs12_zip(client.download_bytes(created.batch_id), P12_PASSWORD)
    assert in_memory.leaf == opened.leaf

    serial = f"{opened.leaf.serial_number:X}"
    found = client.find(common_name="a.example.com")
    assert [item.serial_number for item in found.items] == [serial]
    client.revoke(42, serial.lower(), RevocationReason.SUPERSEDED)
    assert client.find(serial_number=serial).items[0].status == "REVOKED"
    with pytest.raises(ValidationError) as again:
        client.revoke(42, serial, RevocationReason.SUPERSEDED)
    assert again.value.error_code == -14
    assert client.licenses().issued == 1


def test_csr_batches_as_pem_text_and_as_zip(client: SectigoClient) -> None:
    pem = make_csr("one.example.com") + make_csr("two.example.com")
    batch = client.upload_csr_batch(42, pem.decode(), filename="two.csr")
    assert batch.size == 2
    chains = open_pem_zip(client.download_bytes(batch.batch_id))
    assert sorted(c.leaf.subject.rfc4514_string() for c in chains) == [
        "CN=one.example.com",
        "CN=two.example.com",
    ]
    assert all(len(c.chain) == 2 for c in chains)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("three.csr", make_csr("three.example.com"))
    zipped = client.upload_csr_batch(42, buffer.getvalue())
    assert zipped.size == 1
    assert client.batch_detail(zipped.batch_id).status is BatchStatus.READY_FOR_DOWNLOAD


def test_a_named_csr_upload_can_be_found_by_its_batch_name(client: SectigoClient) -> None:
    batch = client.upload_csr_batch(42, make_csr("named.example.com"), batch_name="svc-named-1")
    found = client.list_batches(batch_name="svc-named-1")
    assert [b.batch_id for b in found] == [batch.batch_id]
    assert client.list_batches(batch_name="svc-named-2") == ()


def test_a_csr_without_a_san_breaks_the_batch(client: SectigoClient) -> None:
    batch = client.upload_csr_batch(42, make_csr("nosan.example.com", san=False))
    assert client.batch_detail(batch.batch_id).status is BatchStatus.BROKEN
    assert client.batch_status(batch.batch_id).status is BatchStatus.FAILED


def test_a_rejected_batch_reads_as_not_acceptable_with_detail(
    emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    emulator = emulator_factory(reject_common_names=("^bad\\.",))
    with SectigoClient.build(client_config(emulator, tmp_path), credentials_()) as client:
        batch = client.create_single_cert_batch(1, "rejected", server_params("bad.example.com"))
        detail = client.batch_detail(batch.batch_id)
        assert detail.status is BatchStatus.REJECTED and detail.reject_reason
        text = client.batch_status(batch.batch_id)
        assert (text.status, text.detail) == (BatchStatus.NOT_ACCEPTABLE, "Rejected")


def credentials_(username: str = "tester", password: str = "supersecretsquirrel") -> Credentials:
    return Credentials.load(username, password, environ={})


def test_login_errors(emulator_factory: EmulatorFactory, tmp_path: Path) -> None:
    emulator = emulator_factory(unauthorized_users=(Account("intern", "right-password", False),))
    config = client_config(emulator, tmp_path)
    with SectigoClient.build(config, credentials_(password="wrong")) as client:
        with pytest.raises(InvalidCredentials) as bad:
            client.authorities()
        assert (bad.value.status, bad.value.endpoint) == (401, "login")
    intern = credentials_("intern", "right-password")
    with SectigoClient.build(config, intern) as client, pytest.raises(NotAuthorized):
        client.login()


def test_not_found_and_validation_errors(client: SectigoClient) -> None:
    with pytest.raises(NotFound) as missing:
        client.batch_detail(99999)
    assert (missing.value.status, missing.value.error_code) == (404, -11)
    for call in (
        lambda: client.batch_status(99999),
        lambda: client.processing_info(99999),
        lambda: client.profile_detail(1),
        lambda: client.profile_parameters(1),
        lambda: client.balance_available(999),
        lambda: client.revoke(42, "ABCDEF"),
    ):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(NotFound):
        client.create_single_cert_batch(999, "x", server_params())
    with pytest.raises(ValidationError) as invalid:
        client.create_single_cert_batch(1, "x", {"commonName": "a.example.com"})
    assert invalid.value.error_code == -10 and invalid.value.endpoint == "create_batch"
    with pytest.raises(InvalidRequest):
        client.find()
    with pytest.raises(InvalidRequest):
        client.create_single_cert_batch(1, " ", server_params())


def test_download_of_an_unfinished_batch_is_refused(
    client: SectigoClient, management: Management, tmp_path: Path
) -> None:
    management.settings(stuck=True)
    batch = client.create_single_cert_batch(1, "stuck", server_params())
    assert client.batch_detail(batch.batch_id).status in (
        BatchStatus.CREATED,
        BatchStatus.PROCESSING,
    )
    assert client.batch_status(batch.batch_id).status is BatchStatus.PROCESSING
    target = tmp_path / "downloads"
    target.mkdir()
    with pytest.raises(ValidationError) as not_ready:
        client.download(batch.batch_id, target)
    assert not_ready.value.error_code == -12
    assert list(target.iterdir()) == []


def test_no_licence_left(emulator_factory: EmulatorFactory, tmp_path: Path) -> None:
    emulator = emulator_factory(balances=((1, 0),))
    with SectigoClient.build(client_config(emulator, tmp_path), credentials_()) as client:
        with pytest.raises(InsufficientLicences) as caught:
            client.create_single_cert_batch(1, "broke", server_params())
        assert caught.value.status == 402


def test_list_batches_filters_and_pages(make_client: ClientFactory) -> None:
    client = make_client()
    for name in ("alpha", "beta", "alpha"):
        client.create_single_cert_batch(1, name, server_params())
    assert len(client.list_batches(batch_name="alpha")) == 2
    assert len(client.list_batches()) == 3
    assert len(client.list_batches(offset=1, limit=1)) == 1
    assert client.list_batches(batch_name="gamma") == ()
