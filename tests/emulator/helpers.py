"""Shared helpers for the emulator tests: a tiny HTTP client, CSRs, ZIPs, openssl and assertions.

Everything talks to the emulator over real HTTP with plain ``requests``; nothing here imports the
emulator's internals, so the tests check the wire contract of ``docs/emulator.md`` only.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from email.message import Message
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.wire import BATCH_KEYS

USERNAME = "tester"
PASSWORD = "supersecretsquirrel"  # the emulator's documented default test account
P12_PASSWORD = "secrtpasswrd"

JSON_CT = "application/json;charset=UTF-8"
TIMEOUT = (3.05, 10.0)

AUTHORITY_1 = 42  # the default account: each authority has its profile's id
PROFILE_1 = 42
AUTHORITY_2 = 85
PROFILE_2 = 85

OPENSSL = "/usr/bin/openssl"

BATCH_FIELDS = frozenset(BATCH_KEYS)

TERMINAL_STATUSES = frozenset({"READY_FOR_DOWNLOAD", "COLLECTED", "REJECTED", "BROKEN", "FAILED"})

_UNSET: Any = object()

# one multipart part for ``requests``: (field, (filename, body)) or (field, (filename, body, type))
Part = tuple[str, tuple[str | None, bytes | str] | tuple[str | None, bytes | str, str]]


class Api:
    """A minimal client for the emulator's API port: one session, explicit timeouts."""

    def __init__(self, base_url: str, *, keep_alive: bool = False) -> None:
        """``keep_alive`` reuses one connection; by default every request opens its own."""
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session() if keep_alive else None
        self.access_token: str | None = None
        self.refresh_token: str | None = None

    def close(self) -> None:
        if self.session is not None:
            self.session.close()

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = _UNSET,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        timeout: float | tuple[float, float] = TIMEOUT,
        params: Mapping[str, str | int] | None = None,
        files: Sequence[Part] | None = None,
    ) -> requests.Response:
        """Send one request the way the Go client does (JSON content type, bearer token)."""
        sent: dict[str, str] = {"Accept": JSON_CT}
        if json_body is not _UNSET:
            data = json.dumps(json_body).encode()
            sent["Content-Type"] = JSON_CT
        if auth and self.access_token is not None:
            sent["Authorization"] = f"Bearer {self.access_token}"
        if headers:
            sent.update(headers)
        send = self.session.request if self.session is not None else requests.request
        return send(
            method,
            self.url(path),
            data=data,
            headers=sent,
            timeout=timeout,
            params=params,
            files=files,
            allow_redirects=False,
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def login(self, username: str = USERNAME, password: str = PASSWORD) -> requests.Response:
        response = self.request(
            "POST",
            "/auth/pwd",
            json_body={"username": username, "password": password},
            auth=False,
        )
        if response.status_code == 200:
            pair = response.json()
            self.access_token = pair["accessToken"]
            self.refresh_token = pair["refreshToken"]
        return response

    def refresh(self, token: str | None = None) -> requests.Response:
        raw = token if token is not None else self.refresh_token
        assert raw is not None
        return self.request(
            "POST",
            "/auth/refresh",
            data=raw.encode(),
            headers={"Content-Type": JSON_CT},
            auth=False,
        )

    def create_batch(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        authority_id: int = AUTHORITY_1,
        batch_name: str = "example.com certs",
        timeout: float | tuple[float, float] = TIMEOUT,
    ) -> requests.Response:
        body = {
            "authorityId": authority_id,
            "batchName": batch_name,
            "profileParams": dict(params) if params is not None else server_params(),
        }
        return self.request(
            "PUT", "/api/v1/batches/createSingleCertBatch", json_body=body, timeout=timeout
        )

    def created_batch_id(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        authority_id: int = AUTHORITY_1,
        batch_name: str = "example.com certs",
    ) -> int:
        response = self.create_batch(params, authority_id=authority_id, batch_name=batch_name)
        assert response.status_code == 200, response.text
        batch_id = response.json()["batchId"]
        assert isinstance(batch_id, int)
        return batch_id

    def batch(self, batch_id: int | str) -> dict[str, Any]:
        response = self.get(f"/api/v1/batches/{batch_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def batches(self, **query: str | int) -> list[dict[str, Any]]:
        response = self.get("/api/v1/batches", params=query)
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body

    def wait_for_batch(
        self, batch_id: int, statuses: Iterable[str] = TERMINAL_STATUSES, deadline: float = 5.0
    ) -> dict[str, Any]:
        """Poll the batch detail until its status is one of ``statuses`` (bounded)."""
        wanted = frozenset(statuses)
        end = time.monotonic() + deadline
        while True:
            detail = self.batch(batch_id)
            if detail["status"] in wanted:
                return detail
            if time.monotonic() > end:
                raise AssertionError(f"batch {batch_id} stuck in {detail['status']}, want {wanted}")
            time.sleep(0.05)

    def download(self, batch_id: int) -> requests.Response:
        return self.get(
            f"/api/v1/batches/{batch_id}/download",
            headers={
                "Accept": "application/octet-stream",
                "Content-Type": "application/octet-stream",
            },
        )

    def balance(self, authority_id: int) -> int:
        response = self.get(f"/api/v1/authorities/{authority_id}/balanceavailable")
        assert response.status_code == 200, response.text
        value = response.json()
        assert isinstance(value, int) and not isinstance(value, bool)
        return value

    def devices(self) -> dict[str, int]:
        response = self.get("/api/v1/devices")
        assert response.status_code == 200, response.text
        body: dict[str, int] = response.json()
        return body

    def find(self, **query: str) -> dict[str, Any]:
        response = self.request("POST", "/api/v1/certificates/find", json_body=query)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def revoke(self, profile_id: int, body: Mapping[str, Any]) -> requests.Response:
        return self.request(
            "POST", f"/api/v1/certificates/{profile_id}/revoke", json_body=dict(body)
        )

    def upload(
        self,
        payload: bytes,
        *,
        filename: str = "request.csr",
        content_type: str = "application/octet-stream",
        profile_id: int = PROFILE_1,
        params: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """The multipart layout of sectigo-iot-api.md section 3.4, parts in order."""
        batch_request = json.dumps(
            {"profileId": profile_id, "batchType": "BATCH", "profileParams": dict(params or {})}
        )
        files: list[Part] = [
            ("profileId", (None, str(profile_id))),
            ("csrBatchRequest", ("blob", batch_request, "application/json")),
            ("files", (filename, payload, content_type)),
        ]
        return self.request("POST", "/api/v1/batches/upload", files=files)


class Management:
    """The test-only management port."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def _call(self, method: str, path: str, body: Any = _UNSET) -> requests.Response:
        kwargs: dict[str, Any] = {"timeout": TIMEOUT}
        if body is not _UNSET:
            kwargs["json"] = body
        return requests.request(method, f"{self.base_url}{path}", **kwargs)

    def add_faults(self, *rules: Mapping[str, Any]) -> list[dict[str, Any]]:
        body: Any = dict(rules[0]) if len(rules) == 1 else {"rules": [dict(r) for r in rules]}
        response = self._call("POST", "/faults", body)
        assert response.status_code in (200, 201), response.text
        reply = response.json()
        added = reply["rules"] if isinstance(reply, dict) and "rules" in reply else reply
        if isinstance(added, dict):
            added = [added]
        assert isinstance(added, list)
        assert len(added) == len(rules), reply
        for rule in added:
            assert isinstance(rule["id"], int)
        return added

    def faults(self) -> dict[str, Any]:
        response = self._call("GET", "/faults")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def clear_faults(self) -> None:
        response = self._call("DELETE", "/faults")
        assert response.status_code in (200, 204), response.text

    def delete_fault(self, rule_id: int) -> requests.Response:
        return self._call("DELETE", f"/faults/{rule_id}")

    def patch_settings(self, **settings: Any) -> requests.Response:
        response = self._call("PATCH", "/settings", settings)
        assert response.status_code == 200, response.text
        return response

    def stats(self) -> dict[str, Any]:
        response = self._call("GET", "/stats")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def rotate_signing_key(self) -> None:
        response = self._call("POST", "/rotate-signing-key")
        assert response.status_code in (200, 204), response.text

    def journal(self, *routes: str) -> list[dict[str, Any]]:
        """The journal's entries, oldest first; only those of ``routes`` when given."""
        response = requests.get(
            f"{self.base_url}/journal", params={"route": list(routes)}, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    def clear_journal(self) -> None:
        response = self._call("DELETE", "/journal")
        assert response.status_code == 200, response.text

    def batches(self) -> list[dict[str, Any]]:
        """The ledger summary: every batch, lag or not."""
        response = self._call("GET", "/batches")
        assert response.status_code == 200, response.text
        batches: list[dict[str, Any]] = response.json()["batches"]
        return batches


def server_params(
    common_name: str = "example.com",
    dns_names: Sequence[str] = (),
    password: str = P12_PASSWORD,
    **extra: str,
) -> dict[str, str]:
    """profileParams for a server-side key batch; ``dNSName`` = CN plus ``dns_names``."""
    params = {
        "commonName": common_name,
        "dNSName": "\n".join([common_name, *dns_names]),
        "pkcs12Password": password,
    }
    params.update(extra)
    return params


def end_entity_params(common_name: str = "ee.example.com", **overrides: str) -> dict[str, str]:
    """profileParams for authority 2 / profile 85, every required field filled in."""
    params = server_params(common_name)
    params.update(
        organizationName="Example Org",
        localityName="Queenstown",
        stateOrProvinceName="MD",
        countryName="US",
    )
    params.update(overrides)
    return params


def status_counts(stats: Mapping[str, Any], route: str) -> dict[int, int]:
    """``responses[route]`` of /stats with the status keys as ints (JSON keys are strings)."""
    per_route = stats.get("responses", {}).get(route, {})
    return {int(status): int(n) for status, n in per_route.items()}


def faults_applied(stats: Mapping[str, Any], kind: str) -> int:
    return int(stats.get("faults_applied", {}).get(kind, 0))


# -- assertions on the wire format -------------------------------------------------------------


def media_type(response: requests.Response) -> tuple[str, dict[str, str]]:
    """The Content-Type as (lower-case media type, {lower-case param: value})."""
    raw = response.headers.get("Content-Type", "")
    parts = [p.strip() for p in raw.split(";")]
    params: dict[str, str] = {}
    for part in parts[1:]:
        if "=" in part:
            key, value = part.split("=", 1)
            params[key.strip().lower()] = value.strip().strip('"')
    return parts[0].lower(), params


def assert_json_content_type(response: requests.Response) -> None:
    """JSON replies are ``application/json;charset=UTF-8`` (docs/emulator.md)."""
    kind, params = media_type(response)
    assert kind == "application/json", response.headers.get("Content-Type")
    assert params.get("charset", "").upper() == "UTF-8", response.headers.get("Content-Type")


def assert_error(response: requests.Response, status: int, error_code: int | None) -> None:
    """A Sectigo-shaped error: {status, message, errorCode, timestamp} as JSON."""
    assert response.status_code == status, (response.status_code, response.text)
    assert_json_content_type(response)
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) >= {"status", "message", "errorCode", "timestamp"}, body
    assert body["status"] == status, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["errorCode"], int), body
    if error_code is not None:
        assert body["errorCode"] == error_code, body
    timestamp = body["timestamp"]
    assert isinstance(timestamp, int) and not isinstance(timestamp, bool), body
    assert abs(timestamp - time.time() * 1000) < 120_000, body  # epoch milliseconds


def assert_batch_response(body: Mapping[str, Any]) -> None:
    assert set(body) >= BATCH_FIELDS, sorted(set(BATCH_FIELDS) - set(body))
    assert isinstance(body["batchId"], int)
    assert isinstance(body["size"], int)
    assert isinstance(body["creationDate"], str) and body["creationDate"]
    assert isinstance(body["active"], bool)
    assert isinstance(body["downloadable"], bool)
    assert isinstance(body["rejectable"], bool)


def content_disposition_filename(response: requests.Response) -> str | None:
    message = Message()
    message["Content-Disposition"] = response.headers.get("Content-Disposition", "")
    return message.get_filename()


# -- certificates, CSRs, ZIPs, openssl ---------------------------------------------------------


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_csr(
    common_name: str,
    dns_names: Sequence[str] | None = None,
    *,
    key: rsa.RSAPrivateKey | None = None,
    with_san: bool = True,
) -> tuple[bytes, rsa.RSAPrivateKey]:
    """A PEM CSR with CN and (unless ``with_san`` is false) a SAN of ``dns_names`` (default CN)."""
    key = key or new_key()
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if with_san:
        names = list(dns_names) if dns_names is not None else [common_name]
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM), key


def tamper_csr_signature(pem: bytes) -> bytes:
    """The same CSR with one bit of its signature flipped: parses, but does not verify."""
    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the signature BIT STRING is the last element
    tampered = x509.load_der_x509_csr(bytes(der))
    assert not tampered.is_signature_valid
    return tampered.public_bytes(serialization.Encoding.PEM)


def zip_bytes(members: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def fetch_chain(api_url: str) -> tuple[x509.Certificate, x509.Certificate]:
    """(issuing CA, root CA) from ``/ca/chain.pem`` (no token)."""
    response = requests.get(f"{api_url}/ca/chain.pem", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    certs = x509.load_pem_x509_certificates(response.content)
    assert len(certs) == 2, len(certs)
    return certs[0], certs[1]


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert len(values) == 1
    value = values[0].value
    assert isinstance(value, str)
    return value


def san_dns_names(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


def pem_blocks(text: bytes) -> list[tuple[str, bytes]]:
    """Every PEM block in ``text`` as (label, block bytes), in order."""
    return [(m.group(1).decode(), m.group(0)) for m in _PEM_BLOCK.finditer(text)]


def openssl(*args: str, input_bytes: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [OPENSSL, *args], input=input_bytes, capture_output=True, timeout=30, check=False
    )


def open_p12_with_openssl(
    p12: bytes, password: str, tmp_dir: Path, *, legacy: bool = False
) -> tuple[Any, list[x509.Certificate]]:
    """Decrypt a PKCS#12 with ``openssl pkcs12 -nodes`` (``-legacy`` only when asked for):
    (key, certificates)."""
    path = tmp_dir / "bundle.p12"
    path.write_bytes(p12)
    flags = ("-legacy",) if legacy else ()
    result = openssl("pkcs12", *flags, "-in", str(path), "-nodes", "-passin", f"pass:{password}")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    blocks = pem_blocks(result.stdout)
    keys = [block for label, block in blocks if label.endswith("PRIVATE KEY")]
    assert len(keys) == 1, [label for label, _ in blocks]
    key = serialization.load_pem_private_key(keys[0], password=None)
    certs = [x509.load_pem_x509_certificate(b) for label, b in blocks if label == "CERTIFICATE"]
    return key, certs


def crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey), type(key)
    return crl.is_signature_valid(key)


def public_der(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def leaf_for_key(key: Any, certs: Sequence[x509.Certificate]) -> x509.Certificate:
    wanted = public_der(key.public_key())
    matches = [c for c in certs if public_der(c.public_key()) == wanted]
    assert len(matches) == 1, "exactly one certificate must match the private key"
    return matches[0]


def p12_member_name(cn: str) -> str:
    """The documented file name rule: lower-case, characters outside a-z0-9.- become ``_``."""
    return re.sub(r"[^a-z0-9.-]", "_", cn.lower())


def issue_and_download(
    api: Api, params: Mapping[str, str] | None = None, *, authority_id: int = AUTHORITY_1
) -> tuple[int, dict[str, bytes]]:
    """Create a batch, wait until it is ready, download and unzip it."""
    batch_id = api.created_batch_id(params, authority_id=authority_id)
    detail = api.wait_for_batch(batch_id)
    assert detail["status"] == "READY_FOR_DOWNLOAD", detail
    response = api.download(batch_id)
    assert response.status_code == 200, response.text
    return batch_id, unzip(response.content)


def held_licences(api: Api) -> int:
    """Licences held by batches that are not issued yet (CREATED / PROCESSING)."""
    return sum(b["size"] for b in api.batches() if b["status"] in ("CREATED", "PROCESSING"))


def balances(api: Api) -> dict[int, int]:
    response = api.get("/api/v1/authorities/allowed")
    assert response.status_code == 200, response.text
    return {int(a["id"]): int(a["balance"]) for a in response.json()}


def assert_licence_invariant(api: Api) -> None:
    """ordered == issued + held + sum(balances) (docs/emulator.md, Batches)."""
    devices = api.devices()
    held = held_licences(api)
    total_balance = sum(balances(api).values())
    assert devices["ordered"] == devices["issued"] + held + total_balance, (
        devices,
        held,
        total_balance,
    )


def p12_algorithms(p12: bytes, password: str, tmp_dir: Path) -> str:
    """``openssl pkcs12 -info`` on the file (with ``-legacy``): its algorithm lines, lower case."""
    path = tmp_dir / "info.p12"
    path.write_bytes(p12)
    result = openssl(
        "pkcs12", "-legacy", "-info", "-noout", "-in", str(path), "-passin", f"pass:{password}"
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stderr.decode().lower()
