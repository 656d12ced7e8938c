"""The development PKI: files and modes, real openssl verification, reuse, policy, and real mTLS."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sectigo_svc.authz import Policy, Role, identity_from_der, identity_from_pem
from sectigo_svc.devcerts import (
    DEFAULT_CLIENTS,
    DevCerts,
    DevCertsError,
    client_dns_name,
    make_dev_certs,
    spiffe_id,
)

OPENSSL = "/usr/bin/openssl"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    """One PKI shared by the read-only tests; tests that change files make their own."""
    return make_dev_certs(tmp_path_factory.mktemp("pki") / "dev")


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def openssl_verify(ca: Path, cert: Path, purpose: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENSSL, "verify", "-purpose", purpose, "-CAfile", str(ca), str(cert)],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )


def all_pairs(dev: DevCerts) -> list[tuple[Path, Path]]:
    return [
        (dev.ca, dev.ca_key),
        (dev.server_cert, dev.server_key),
        *(dev.client(name) for name in dev.clients),
        (dev.other_ca, dev.other_ca_key),
        dev.intruder,
    ]


# --- files --------------------------------------------------------------------------------------


def test_every_file_exists_keys_are_0600_and_the_directory_0700(dev: DevCerts) -> None:
    assert dev.clients == DEFAULT_CLIENTS
    assert mode(dev.directory) == 0o700
    for cert, key in all_pairs(dev):
        assert cert.is_file()
        assert key.is_file()
        assert mode(key) == 0o600, key
        assert "PRIVATE KEY" in key.read_text()
    assert dev.policy.is_file()
    assert not list(dev.directory.glob(".*.tmp"))


def test_keys_are_owner_only_even_under_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        dev = make_dev_certs(tmp_path / "pki", clients=["registration"])
    finally:
        os.umask(previous)
    assert mode(dev.directory) == 0o700
    assert {mode(key) for _, key in all_pairs(dev)} == {0o600}


def test_unknown_client_lookup_is_refused(dev: DevCerts) -> None:
    with pytest.raises(DevCertsError, match="no development client 'nobody'"):
        dev.client("nobody")


# --- the server certificate ---------------------------------------------------------------------


def test_server_certificate_verifies_with_openssl_against_the_ca(dev: DevCerts) -> None:
    result = openssl_verify(dev.ca, dev.server_cert, "sslserver")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")


def test_server_certificate_names_every_host_and_is_for_servers(dev: DevCerts) -> None:
    cert = load(dev.server_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not constraints.ca


def test_ca_is_a_ten_year_p256_ca(dev: DevCerts) -> None:
    ca = load(dev.ca)
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650


# --- client certificates ------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEFAULT_CLIENTS)
def test_each_client_verifies_and_carries_its_names(dev: DevCerts, name: str) -> None:
    cert_path, _ = dev.client(name)
    result = openssl_verify(dev.ca, cert_path, "sslclient")
    assert result.returncode == 0, result.stdout + result.stderr

    cert = load(cert_path)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [spiffe_id(name)]
    assert san.get_values_for_type(x509.DNSName) == [f"{name}.clients.sectigo-svc.test"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert identity_from_pem(cert_path.read_bytes()).name == f"spiffe://sectigo-svc.test/{name}"
    assert client_dns_name(name) == f"{name}.clients.sectigo-svc.test"


def test_client_certificate_is_not_a_server_certificate(dev: DevCerts) -> None:
    result = openssl_verify(dev.ca, dev.client("registration").cert, "sslserver")
    assert result.returncode != 0


def test_intruder_does_not_verify_against_the_ca(dev: DevCerts) -> None:
    refused = openssl_verify(dev.ca, dev.intruder.cert, "sslclient")
    assert refused.returncode != 0
    assert "unable to get local issuer certificate" in refused.stdout + refused.stderr
    accepted = openssl_verify(dev.other_ca, dev.intruder.cert, "sslclient")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


# --- reuse --------------------------------------------------------------------------------------


def test_second_call_reuses_everything_and_adds_a_missing_client(tmp_path: Path) -> None:
    first = make_dev_certs(tmp_path / "pki")
    before = {path: path.read_bytes() for pair in all_pairs(first) for path in pair}

    second = make_dev_certs(tmp_path / "pki", clients=[*DEFAULT_CLIENTS, "reissuance"])

    assert {path: path.read_bytes() for path in before} == before
    new_cert, new_key = second.client("reissuance")
    assert mode(new_key) == 0o600
    result = openssl_verify(second.ca, new_cert, "sslclient")
    assert result.returncode == 0, result.stdout + result.stderr


def test_overwrite_replaces_the_ca_and_reissues_its_leaves(tmp_path: Path) -> None:
    first = make_dev_certs(tmp_path / "pki", clients=["registration"])
    old_ca = first.ca.read_bytes()
    second = make_dev_certs(tmp_path / "pki", clients=["registration"], overwrite=True)
    assert second.ca.read_bytes() != old_ca
    for cert, purpose in [
        (second.server_cert, "sslserver"),
        (second.client("registration")[0], "sslclient"),
    ]:
        result = openssl_verify(second.ca, cert, purpose)
        assert result.returncode == 0, result.stdout + result.stderr


def test_changed_hosts_reissue_only_the_server(tmp_path: Path) -> None:
    first = make_dev_certs(tmp_path / "pki", clients=["registration"])
    client_before = first.client("registration").cert.read_bytes()
    second = make_dev_certs(
        tmp_path / "pki", hosts=["localhost", "svc.example.test"], clients=["registration"]
    )
    san = load(second.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost", "svc.example.test"]
    assert san.value.get_values_for_type(x509.IPAddress) == []
    assert second.client("registration").cert.read_bytes() == client_before


def test_leaf_with_a_foreign_key_is_reissued(tmp_path: Path) -> None:
    dev = make_dev_certs(tmp_path / "pki", clients=["registration", "reader"])
    registration, reader = dev.client("registration"), dev.client("reader")
    registration.key.write_bytes(reader.key.read_bytes())
    make_dev_certs(tmp_path / "pki", clients=["registration", "reader"])
    cert = load(registration.cert)
    key_pem = registration.key.read_bytes()
    assert serialization.load_pem_private_key(key_pem, None).public_key() == cert.public_key()
    assert key_pem != reader.key.read_bytes()


def test_half_a_ca_is_an_error_not_a_silent_new_ca(tmp_path: Path) -> None:
    dev = make_dev_certs(tmp_path / "pki", clients=[])
    dev.ca_key.unlink()
    with pytest.raises(DevCertsError, match=r"ca\.pem exists but .*ca\.key does not"):
        make_dev_certs(tmp_path / "pki", clients=[])


def test_ca_key_of_another_ca_is_refused(tmp_path: Path) -> None:
    dev = make_dev_certs(tmp_path / "pki", clients=[])
    dev.ca_key.write_bytes(dev.other_ca_key.read_bytes())
    with pytest.raises(DevCertsError, match="is not the EC private key of"):
        make_dev_certs(tmp_path / "pki", clients=[])


@pytest.mark.parametrize(
    ("clients", "hosts", "message"),
    [
        (["Registration"], ["localhost"], "must be a lower-case DNS label"),
        (["../evil"], ["localhost"], "must be a lower-case DNS label"),
        (["intruder"], ["localhost"], "reserved"),
        (["ca"], ["localhost"], "reserved"),
        (["reader"], [], "at least one host"),
        (["reader"], ["bad host"], "neither an IP address nor a DNS name"),
    ],
)
def test_invalid_requests_are_refused_before_writing(
    tmp_path: Path, clients: list[str], hosts: list[str], message: str
) -> None:
    with pytest.raises(DevCertsError, match=message):
        make_dev_certs(tmp_path / "pki", clients=clients, hosts=hosts)
    assert not (tmp_path / "pki").exists()


# --- policy -------------------------------------------------------------------------------------


def test_written_policy_grants_what_is_listed(dev: DevCerts) -> None:
    policy = Policy.load(dev.policy)

    def roles(name: str) -> frozenset[Role]:
        return policy.roles_of(identity_from_pem(dev.client(name).cert.read_bytes()))

    assert roles("registration") == {Role.ISSUE, Role.READ, Role.REVOKE}
    assert roles("verification") == {Role.READ}
    assert roles("reader") == {Role.READ}
    assert roles("admin") == frozenset(Role)
    assert roles("stranger") == frozenset()
    assert set(policy.grants) == {
        spiffe_id(name) for name in ("registration", "verification", "reader", "admin")
    }


def test_existing_policy_is_never_overwritten(tmp_path: Path) -> None:
    dev = make_dev_certs(tmp_path / "pki", clients=[])
    dev.policy.write_text('[identities."x"]\nroles = ["read"]\n')
    make_dev_certs(tmp_path / "pki", clients=[], overwrite=True)
    assert dev.policy.read_text() == '[identities."x"]\nroles = ["read"]\n'


# --- a real mutual-TLS handshake ----------------------------------------------------------------


class OneShotServer:
    """A TLS server on a free loopback port that requires a client certificate from `ca`."""

    def __init__(self, dev: DevCerts) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(dev.server_cert, dev.server_key)
        self.context.load_verify_locations(dev.ca)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port: int = self.listener.getsockname()[1]
        self.peer_der: bytes | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve_one, daemon=True)

    def _serve_one(self) -> None:
        try:
            connection, _ = self.listener.accept()
            connection.settimeout(5)
            with self.context.wrap_socket(connection, server_side=True) as tls:
                self.peer_der = tls.getpeercert(binary_form=True)
                tls.sendall(b"hello")
        except (OSError, ssl.SSLError) as exc:
            self.error = exc


@pytest.fixture
def tls_server(dev: DevCerts) -> Iterator[OneShotServer]:
    server = OneShotServer(dev)
    server.thread.start()
    yield server
    server.thread.join(timeout=5)
    server.listener.close()


def connect(dev: DevCerts, port: int, cert: Path, key: Path) -> bytes:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(dev.ca)
    context.load_cert_chain(cert, key)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.recv(5)


def test_mtls_handshake_accepts_a_client_of_the_ca(
    dev: DevCerts, tls_server: OneShotServer
) -> None:
    assert connect(dev, tls_server.port, *dev.client("registration")) == b"hello"
    tls_server.thread.join(timeout=5)
    assert tls_server.error is None
    assert tls_server.peer_der is not None
    assert identity_from_der(tls_server.peer_der).name == spiffe_id("registration")


def test_mtls_handshake_refuses_the_intruder(dev: DevCerts, tls_server: OneShotServer) -> None:
    # Under TLS 1.3 the client learns of the refusal on its first read (an alert or a closed
    # connection), not in its half of the handshake; either way it must receive no data.
    received = b""
    with contextlib.suppress(ssl.SSLError, ConnectionError):
        received = connect(dev, tls_server.port, *dev.intruder)
    assert received == b""
    tls_server.thread.join(timeout=5)
    assert isinstance(tls_server.error, ssl.SSLError)
    assert "certificate verify failed" in str(tls_server.error)
    assert tls_server.peer_der is None
