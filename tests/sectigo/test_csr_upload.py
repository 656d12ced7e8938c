"""The CSR upload body is multipart exactly as section 3.4 lays it out, with honest part types."""

from __future__ import annotations

import io
import json
import zipfile
from email import message_from_bytes
from email.message import Message

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sectigo_svc.sectigo.csr_upload import upload_body
from sectigo_svc.sectigo.errors import InvalidRequest


def make_csr(common_name: str = "a.example.com") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def parts(content: bytes, content_type: str) -> list[Message]:
    parsed = message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + content)
    payload = parsed.get_payload()
    assert isinstance(payload, list)
    return [part for part in payload if isinstance(part, Message)]


def test_pem_upload_layout_is_exact() -> None:
    csr = make_csr()
    body = upload_body(42, csr.decode(), filename="/some/dir/my.csr", boundary="XyZ")
    expected = (
        b'--XyZ\r\nContent-Disposition: form-data; name="profileId"\r\n\r\n42\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="csrBatchRequest"; filename="blob"\r\n'
        b"Content-Type: application/json\r\n\r\n"
        b'{"profileId": 42, "batchType": "BATCH", "profileParams": {}}\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="files"; filename="my.csr"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + csr + b"\r\n--XyZ--\r\n"
    )
    assert body.content == expected
    assert body.content_type == "multipart/form-data; boundary=XyZ"


def test_a_batch_name_travels_in_the_batch_request() -> None:
    body = upload_body(42, make_csr(), batch_name="svc-abc", boundary="XyZ")
    payload = parts(body.content, body.content_type)[1].get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert json.loads(payload) == {
        "profileId": 42,
        "batchType": "BATCH",
        "profileParams": {},
        "batchName": "svc-abc",
    }


def test_zip_upload_is_labelled_application_zip() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("a.csr", make_csr("a.example.com"))
        bundle.writestr("b.pem", make_csr("b.example.com"))
    body = upload_body(85, buffer.getvalue(), profile_params={"organizationName": "Org"})
    files, request = (
        parts(body.content, body.content_type)[2],
        parts(body.content, body.content_type)[1],
    )
    assert files.get_content_type() == "application/zip"
    assert files.get_filename() == "csrs.zip"
    assert files.get_payload(decode=True) == buffer.getvalue()
    assert json.loads(str(request.get_payload())) == {
        "profileId": 85,
        "batchType": "BATCH",
        "profileParams": {"organizationName": "Org"},
    }


def test_several_pem_csrs_in_one_file_and_a_fresh_boundary() -> None:
    data = make_csr("a.example.com") + make_csr("b.example.com")
    body = upload_body(42, data)
    boundary = body.content_type.split("boundary=")[1]
    assert boundary.encode() not in data
    files = parts(body.content, body.content_type)[2]
    assert (files.get_content_type(), files.get_filename()) == ("text/plain", "csrs.pem")


@pytest.mark.parametrize("data", [b"", b"hello", b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_anything_but_csrs_is_refused_before_sending(data: bytes) -> None:
    with pytest.raises(InvalidRequest, match="expected PEM certificate requests or a ZIP"):
        upload_body(42, data)


def test_header_breaking_file_names_are_neutralised() -> None:
    body = upload_body(42, make_csr(), filename='x".csr\r\nEvil: 1')
    assert b'filename="x_.csr__Evil__1"' in body.content


def test_bad_profile_ids_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="profile_id"):
        upload_body(-1, make_csr())
