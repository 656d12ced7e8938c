"""The server's TLS files: refused at start when they cannot serve, naming the setting and the fix;
a certificate near its expiry warned about and exported as a metric; files replaced on disk (as a
mounted secret is rotated) served to new connections without a restart, a broken replacement
logged and the previous certificate kept."""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import json
import os
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sectigo_svc.devcerts import CertKey, DevCerts
from sectigo_svc.devstack import loopback_settings
from sectigo_svc.rpc import tls
from sectigo_svc.rpc.tls import TlsFiles, TlsWatcher
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import (
    PASSWORD,
    SECTIGO_SVC,
    USERNAME,
    health_status,
    listening_port,
    mtls_channel,
    openssl,
    serve_process,
)

DAY = dt.timedelta(days=1)


def issue_server_cert(
    pki: DevCerts,
    directory: Path,
    *,
    expires_in: dt.timedelta,
    key: CertificateIssuerPrivateKeyTypes | None = None,
) -> CertKey:
    """A server certificate for localhost from the development CA, with a fresh key (EC P-256
    unless ``key`` is given) and serial, expiring ``expires_in`` from now (negative: expired),
    valid from a day before that or now."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    not_after = now + expires_in
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rotated server")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - DAY)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertKey(directory / "tls.crt", directory / "tls.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pair


def serial_of(pair: CertKey) -> int:
    return x509.load_pem_x509_certificate(pair.cert.read_bytes()).serial_number


def _serve_environ(pki: DevCerts, state: Path, files: dict[str, Path]) -> dict[str, str]:
    """The whole environment of a `sectigo-svc serve` on port 0 with the development PKI, but
    ``files``, against a Sectigo that is never reached."""
    settings = loopback_settings(pki, state, "http://127.0.0.1:9") | files
    environ = {f"SECTIGO_SVC_{name.upper()}": str(value) for name, value in settings.items()} | {
        "SECTIGO_SVC_LISTEN": "127.0.0.1:0",
        "SECTIGO_SVC_LOG_FORMAT": "json",
        "SECTIGO_USERNAME": USERNAME,
        "SECTIGO_PASSWORD": PASSWORD,
    }
    return {k: v for k, v in os.environ.items() if not k.startswith("SECTIGO")} | environ


BOM = b"\xef\xbb\xbf"  # what an editor on Windows puts before a UTF-8 file's text


# Refused at start ---------------------------------------------------------------------------------


def _mismatched(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    return {"tls_key": pki.client("reader").key}


def _swapped(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    return {"tls_cert": pki.server_key, "tls_key": pki.server_cert}


def _encrypted(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    encrypted = tmp / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return {"tls_key": encrypted}


def _expired(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    cert, key = issue_server_cert(pki, tmp / "expired", expires_in=-DAY)
    return {"tls_cert": cert, "tls_key": key}


def _ed25519(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    cert, key = issue_server_cert(
        pki, tmp / "ed25519", expires_in=90 * DAY, key=ed25519.Ed25519PrivateKey.generate()
    )
    return {"tls_cert": cert, "tls_key": key}


def _ed448(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    cert, key = issue_server_cert(
        pki, tmp / "ed448", expires_in=90 * DAY, key=ed448.Ed448PrivateKey.generate()
    )
    return {"tls_cert": cert, "tls_key": key}


def _p521(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    key = ec.generate_private_key(ec.SECP521R1())
    cert, key_file = issue_server_cert(pki, tmp / "p521", expires_in=90 * DAY, key=key)
    return {"tls_cert": cert, "tls_key": key_file}


def _leaf_as_client_ca(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    return {"tls_client_ca": pki.client("reader").cert}


def _unparseable_client_ca(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    bundle = tmp / "client-ca.pem"
    bundle.write_text(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    )
    return {"tls_client_ca": bundle}


@pytest.mark.parametrize(
    ("files", "named", "fix"),
    [
        (_mismatched, "SECTIGO_SVC_TLS_KEY", "is not the private key of the certificate"),
        (_swapped, "SECTIGO_SVC_TLS_CERT", "swapped"),
        (_encrypted, "SECTIGO_SVC_TLS_KEY", "unencrypted"),
        (_expired, "SECTIGO_SVC_TLS_CERT", "expired on"),
        (_unparseable_client_ca, "SECTIGO_SVC_TLS_CLIENT_CA", "CA bundle"),
        (_ed25519, "SECTIGO_SVC_TLS_KEY", "an Ed25519 key"),
        (_ed448, "SECTIGO_SVC_TLS_KEY", "give an EC P-256 or an RSA"),
        (_p521, "SECTIGO_SVC_TLS_KEY", "give an EC P-256 or an RSA"),
        (_leaf_as_client_ca, "SECTIGO_SVC_TLS_CLIENT_CA", "holds no CA certificate"),
    ],
    ids=[
        "mismatched",
        "swapped",
        "encrypted-key",
        "expired",
        "client-ca",
        "ed25519",
        "ed448",
        "p521",
        "leaf-as-client-ca",
    ],
)
def test_serve_refuses_tls_files_it_cannot_serve_naming_the_setting(
    pki: DevCerts, tmp_path: Path, files: Any, named: str, fix: str
) -> None:
    state = tmp_path / "state"

    done = subprocess.run(
        [SECTIGO_SVC, "serve"],
        env=_serve_environ(pki, state, files(pki, tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert named in output and fix in output, output
    assert "Traceback" not in output
    assert "cannot listen" not in output
    assert not (state / "requests.db").exists(), "nothing opened for a failed start"


# Served as checked --------------------------------------------------------------------------------


def _with_bom(path: Path, tmp: Path) -> Path:
    copy = tmp / f"bom-{path.name}"
    copy.write_bytes(BOM + path.read_bytes())
    return copy


def _bom_cert(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    return {"tls_cert": _with_bom(pki.server_cert, tmp)}


def _bom_key(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    return {"tls_key": _with_bom(pki.server_key, tmp)}


def _bom_client_ca(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    return {"tls_client_ca": _with_bom(pki.ca, tmp)}


def _pkcs12_export(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    """What `openssl pkcs12 -nodes` writes (Bag Attributes before each block), then saved with
    CRLF line ends: one file for both settings."""
    bundle = tmp / "server.p12"
    openssl(
        "pkcs12", "-export", "-in", pki.server_cert, "-inkey", pki.server_key,
        "-out", bundle, "-passout", "pass:export",
    )  # fmt: skip
    combined = tmp / "server.pem"
    openssl("pkcs12", "-in", bundle, "-nodes", "-passin", "pass:export", "-out", combined)
    assert combined.read_text().startswith("Bag Attributes")
    combined.write_bytes(combined.read_bytes().replace(b"\n", b"\r\n"))
    return {"tls_cert": combined, "tls_key": combined}


def _v1_root(pki: DevCerts, tmp: Path) -> dict[str, Path]:
    """The development CA again, as a version 1 self-signed certificate (no extensions, so no
    basicConstraints): an old root, still a CA to TLS libraries."""
    request = tmp / "ca.csr"
    root = tmp / "v1-ca.pem"
    openssl("x509", "-x509toreq", "-in", pki.ca, "-signkey", pki.ca_key, "-out", request)
    openssl("x509", "-req", "-in", request, "-signkey", pki.ca_key, "-days", "30", "-out", root)
    assert x509.load_pem_x509_certificate(root.read_bytes()).version is x509.Version.v1
    return {"tls_client_ca": root}


@pytest.mark.parametrize(
    "files",
    [_bom_cert, _bom_key, _bom_client_ca, _pkcs12_export, _v1_root],
    ids=["bom-cert", "bom-key", "bom-client-ca", "pkcs12-export-crlf", "v1-root-client-ca"],
)
def test_serve_serves_what_its_check_accepts(
    pki: DevCerts, tmp_path: Path, files: Callable[[DevCerts, Path], dict[str, Path]]
) -> None:
    environ = _serve_environ(pki, tmp_path / "state", files(pki, tmp_path))

    with serve_process(env=environ) as (_, logs):
        port = listening_port(logs)
        channel = mtls_channel(f"127.0.0.1:{port}", pki, "reader")
        try:
            # answered over mutual TLS (NOT_SERVING: this Sectigo is never reached)
            assert health_status(channel) == "NOT_SERVING"
        finally:
            channel.close()
        assert served_serial(port, pki) == serial_of(CertKey(pki.server_cert, pki.server_key))


# Expiry -------------------------------------------------------------------------------------------


def _events(captured: io.StringIO) -> list[dict[str, Any]]:
    events = []
    for line in captured.getvalue().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def _expiry_metric(service: Service) -> float:
    url = f"http://127.0.0.1:{service.app.metrics_port}/metrics"
    for line in requests.get(url, timeout=(3.05, 10)).text.splitlines():
        if line.startswith("sectigo_svc_tls_certificate_expiry_seconds "):
            return float(line.split()[1])
    raise AssertionError("no sectigo_svc_tls_certificate_expiry_seconds in the scrape")


def test_a_certificate_near_expiry_is_warned_about_and_exported(
    pki: DevCerts, tmp_path: Path, service_factory: ServiceFactory, captured: io.StringIO
) -> None:
    cert, key = issue_server_cert(pki, tmp_path / "tls", expires_in=3 * DAY)

    service = service_factory(tls_cert=cert, tls_key=key, metrics_listen="127.0.0.1:0")

    warnings = [e for e in _events(captured) if e["event"].startswith("tls certificate expires")]
    assert len(warnings) == 1, captured.getvalue()
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["serial"] == format(serial_of(CertKey(cert, key)), "x")
    assert 2.9 < warnings[0]["days_left"] <= 3
    assert (
        3 * DAY - dt.timedelta(minutes=5) < dt.timedelta(seconds=_expiry_metric(service)) <= 3 * DAY
    )
    assert health_status(service.channel("reader")) == "SERVING"


def test_a_certificate_far_from_expiry_is_not_warned_about(
    pki: DevCerts, service_factory: ServiceFactory, captured: io.StringIO
) -> None:
    service_factory(tls_expiry_warning_days=7.0)

    assert not [e for e in _events(captured) if e["event"].startswith("tls certificate")]


# Rotation -----------------------------------------------------------------------------------------


class SecretVolume:
    """A directory laid out as Kubernetes mounts a Secret: ``tls.crt`` and ``tls.key`` are symlinks
    into ``..data``, itself a symlink to a timestamped directory; an update writes a new directory
    and swaps ``..data`` in one rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0
        root.mkdir()
        for name in ("tls.crt", "tls.key"):
            (root / name).symlink_to(Path("..data") / name)

    @property
    def files(self) -> CertKey:
        return CertKey(self.root / "tls.crt", self.root / "tls.key")

    def publish(self, cert: bytes, key: bytes) -> None:
        self.generation += 1
        directory = self.root / f"..generation_{self.generation}"
        directory.mkdir()
        (directory / "tls.crt").write_bytes(cert)
        (directory / "tls.key").write_bytes(key)
        (self.root / "..data_tmp").symlink_to(directory.name)
        (self.root / "..data_tmp").replace(self.root / "..data")


def served_serial(port: int, pki: DevCerts) -> int:
    """The serial of the certificate the server presents to a new connection."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(*map(str, pki.client("reader")))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as connection,
    ):
        der = connection.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _publish(volume: SecretVolume, pair: CertKey) -> None:
    volume.publish(pair.cert.read_bytes(), pair.key.read_bytes())


def test_a_rotated_certificate_is_served_to_new_connections_without_a_restart(
    pki: DevCerts, tmp_path: Path, service_factory: ServiceFactory, captured: io.StringIO
) -> None:
    first = issue_server_cert(pki, tmp_path / "first", expires_in=3 * DAY)
    second = issue_server_cert(pki, tmp_path / "second", expires_in=90 * DAY)
    volume = SecretVolume(tmp_path / "secret")
    _publish(volume, first)
    service = service_factory(
        tls_cert=volume.files.cert, tls_key=volume.files.key, metrics_listen="127.0.0.1:0"
    )
    existing = service.channel("reader")
    assert health_status(existing) == "SERVING"
    assert served_serial(service.app.port, pki) == serial_of(first)

    _publish(volume, second)

    assert served_serial(service.app.port, pki) == serial_of(second)
    assert health_status(existing) == "SERVING", "a call on a channel opened before"
    fresh = mtls_channel(service.target, pki, "reader")
    try:
        assert health_status(fresh) == "SERVING", "a call on a channel opened after"
    finally:
        fresh.close()
    assert dt.timedelta(seconds=_expiry_metric(service)) > 89 * DAY
    reloaded = [e for e in _events(captured) if e["event"] == "tls certificate reloaded"]
    assert [e["serial"] for e in reloaded] == [format(serial_of(second), "x")]


def test_a_rotation_to_files_with_a_byte_order_mark_is_served(
    pki: DevCerts, tmp_path: Path, service_factory: ServiceFactory, captured: io.StringIO
) -> None:
    first = issue_server_cert(pki, tmp_path / "first", expires_in=90 * DAY)
    second = issue_server_cert(pki, tmp_path / "second", expires_in=90 * DAY)
    volume = SecretVolume(tmp_path / "secret")
    _publish(volume, first)
    bundle = tmp_path / "client-ca.pem"
    bundle.write_bytes(pki.ca.read_bytes())
    service = service_factory(
        tls_cert=volume.files.cert, tls_key=volume.files.key, tls_client_ca=bundle
    )
    assert served_serial(service.app.port, pki) == serial_of(first)

    volume.publish(BOM + second.cert.read_bytes(), BOM + second.key.read_bytes())
    bundle.write_bytes(BOM + pki.ca.read_bytes())

    assert served_serial(service.app.port, pki) == serial_of(second)
    channel = mtls_channel(service.target, pki, "reader")
    try:
        assert health_status(channel) == "SERVING", "a call on a channel opened after"
    finally:
        channel.close()
    assert not [e for e in _events(captured) if e["event"].startswith("tls files changed")]


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        ("mismatched", "SECTIGO_SVC_TLS_KEY"),
        ("expired", "SECTIGO_SVC_TLS_CERT"),
        ("ed25519", "SECTIGO_SVC_TLS_KEY"),
    ],
)
def test_a_rotation_to_a_broken_pair_keeps_the_previous_certificate(
    pki: DevCerts,
    tmp_path: Path,
    service_factory: ServiceFactory,
    captured: io.StringIO,
    broken: str,
    named: str,
) -> None:
    first = issue_server_cert(pki, tmp_path / "first", expires_in=90 * DAY)
    second = issue_server_cert(pki, tmp_path / "second", expires_in=90 * DAY)
    expired = issue_server_cert(pki, tmp_path / "expired", expires_in=-DAY)
    volume = SecretVolume(tmp_path / "secret")
    _publish(volume, first)
    service = service_factory(tls_cert=volume.files.cert, tls_key=volume.files.key)

    if broken == "mismatched":
        volume.publish(second.cert.read_bytes(), first.key.read_bytes())
    elif broken == "expired":
        _publish(volume, expired)
    else:
        ed = _ed25519(pki, tmp_path)
        _publish(volume, CertKey(ed["tls_cert"], ed["tls_key"]))

    assert served_serial(service.app.port, pki) == serial_of(first)
    assert served_serial(service.app.port, pki) == serial_of(first)
    channel = mtls_channel(service.target, pki, "reader")
    try:
        assert health_status(channel) == "SERVING"
    finally:
        channel.close()
    errors = [e for e in _events(captured) if e["event"].startswith("tls files changed")]
    assert len(errors) == 1, "one line per change, not one per connection"
    assert errors[0]["level"] == "error"
    assert named in errors[0]["cause"]
    assert errors[0]["serial"] == format(serial_of(first), "x")

    _publish(volume, second)

    assert served_serial(service.app.port, pki) == serial_of(second)


# The watcher's own promises -----------------------------------------------------------------------


def test_unchanged_files_are_only_stat_ed_and_the_fetcher_never_raises(
    pki: DevCerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = TlsWatcher(TlsFiles(pki.server_cert, pki.server_key, pki.ca), 14 * DAY)
    checks: list[TlsFiles] = []
    real_check = tls.check_files

    def counting(files: TlsFiles, now: dt.datetime | None = None) -> tls.Serving:
        checks.append(files)
        return real_check(files, now)

    monkeypatch.setattr(tls, "check_files", counting)
    for _ in range(50):
        assert watcher._fetch() is None
    assert checks == []

    def failing(paths: object) -> object:
        raise RuntimeError("stat failed")

    monkeypatch.setattr(tls, "_stamp", failing)
    assert watcher._fetch() is None
