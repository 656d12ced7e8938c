"""DownloadCertificate hands out a PKCS#12 that current OpenSSL opens without ``-legacy``.

The emulator, like Sectigo, sends RC2-40 certificates and a SHA-1 MAC; the service re-encodes the
same key and certificates under the same password, and keeps Sectigo's bytes for those who ask.
Everything is checked with the real ``openssl`` binary.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import Service
from tests.service.helpers import (
    ADMIN,
    OPENSSL,
    issue_ready,
    key_public_der,
    public_der,
    server_key_request,
)

_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\n", re.DOTALL)


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=30, check=False
    )


def _blocks(text: str, label: str) -> list[str]:
    return [m.group(0) for m in _PEM.finditer(text) if m.group(1) == label]


def _download(
    service: Service, client: str = "registration", owner: str = "", sectigo: bool = False
) -> pb.DownloadCertificateResponse:
    request = pb.DownloadCertificateRequest(
        request_id="p12-1", owner=owner, include_sectigo_pkcs12=sectigo
    )
    return service.stub(client).DownloadCertificate(request, timeout=10)


def _issue(service: Service) -> str:
    reply = issue_ready(service.stub(), server_key_request("p12-1", "p12.example.com"))
    return reply.pkcs12_password


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_the_pkcs12_opens_without_legacy(service: Service, tmp_path: Path) -> None:
    password = _issue(service)
    got = _download(service)
    assert got.sectigo_pkcs12 == b""  # only on request
    path = _write(tmp_path, "bundle.p12", got.pkcs12)

    opened = _openssl("pkcs12", "-in", path, "-nodes", "-passin", f"pass:{password}")

    assert opened.returncode == 0, opened.stderr
    keys = _blocks(opened.stdout, "PRIVATE KEY")
    certificates = _blocks(opened.stdout, "CERTIFICATE")
    assert len(keys) == 1
    assert key_public_der(keys[0]) == public_der(got.certificate_pem)
    assert len(certificates) == 3  # leaf, issuing CA, root
    assert public_der(certificates[0]) == public_der(got.certificate_pem)
    info = _openssl("pkcs12", "-in", path, "-info", "-noout", "-passin", f"pass:{password}")
    assert "AES-256-CBC" in info.stderr and "RC2" not in info.stderr, info.stderr
    wrong = _openssl("pkcs12", "-in", path, "-nodes", "-passin", "pass:not-the-password")
    assert wrong.returncode != 0


def test_sectigo_bytes_on_request_need_legacy(service: Service, tmp_path: Path) -> None:
    password = _issue(service)
    got = _download(service, sectigo=True)
    original = _write(tmp_path, "sectigo.p12", got.sectigo_pkcs12)

    plain = _openssl("pkcs12", "-in", original, "-nodes", "-passin", f"pass:{password}")
    assert plain.returncode != 0
    assert "RC2" in plain.stderr, plain.stderr
    legacy = _openssl("pkcs12", "-legacy", "-in", original, "-nodes", "-passin", f"pass:{password}")
    assert legacy.returncode == 0, legacy.stderr
    keys = _blocks(legacy.stdout, "PRIVATE KEY")
    assert key_public_der(keys[0]) == public_der(got.certificate_pem)
    assert got.pkcs12 != got.sectigo_pkcs12


def test_only_the_owner_gets_either_file(service: Service) -> None:
    _issue(service)
    seen = _download(service, "admin", owner=_owner(service), sectigo=True)
    assert (seen.pkcs12, seen.sectigo_pkcs12, seen.pkcs12_password) == (b"", b"", "")
    assert seen.certificate_pem


def _owner(service: Service) -> str:
    record = service.stub().GetCertificateRequest(
        pb.GetCertificateRequestRequest(request_id="p12-1"), timeout=10
    )
    assert record.owner != ADMIN
    return record.owner
