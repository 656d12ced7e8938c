"""Shared helpers of the service tests: requests to build, states to wait for, errors to read,
the emulator seen from outside (its HTTP API and management API), ``sectigo-svc`` as a real
process, CSRs and ``openssl``.

Nothing here reaches into the service's or the emulator's internals: the emulator is observed
over HTTP only, the way an operator would look underneath.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar, cast

import grpc
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo.ca.v1 import ca_pb2_grpc
from sectigo_svc.devcerts import DevCerts, spiffe_id
from sectigo_svc.devstack import loopback_settings

SECTIGO_SVC = Path(sys.executable).with_name("sectigo-svc")
USERNAME = "tester"
PASSWORD = "supersecretsquirrel"  # the emulator's documented test account
OPENSSL = "/usr/bin/openssl"
HTTP_TIMEOUT = (3.05, 10.0)
WAIT = 20.0  # the longest any state change may take in these tests, seconds

REGISTRATION = spiffe_id("registration")
VERIFICATION = spiffe_id("verification")
ADMIN = spiffe_id("admin")

PENDING = pb.REQUEST_STATE_PENDING
SUBMITTED = pb.REQUEST_STATE_SUBMITTED
PROCESSING = pb.REQUEST_STATE_PROCESSING
READY = pb.REQUEST_STATE_READY
REJECTED = pb.REQUEST_STATE_REJECTED
FAILED = pb.REQUEST_STATE_FAILED
REVOKED = pb.REQUEST_STATE_REVOKED
ON_HOLD = pb.REQUEST_STATE_ON_HOLD
TERMINAL = frozenset({READY, REJECTED, FAILED, REVOKED, ON_HOLD})
LIFECYCLE = (PENDING, SUBMITTED, PROCESSING, READY)

T = TypeVar("T")
Stub = ca_pb2_grpc.CertificateAuthorityStub


# Requests -----------------------------------------------------------------------------------------


def server_key_request(
    request_id: str,
    common_name: str,
    dns_names: Iterable[str] = (),
    password: str = "",
    subject: pb.Subject | None = None,
    authority_id: int = 0,
) -> pb.IssueCertificateRequest:
    return pb.IssueCertificateRequest(
        request_id=request_id,
        server_key=pb.ServerKeySpec(
            common_name=common_name,
            dns_names=list(dns_names),
            pkcs12_password=password,
            subject=subject,
        ),
        authority_id=authority_id,
    )


def csr_request(request_id: str, csr_pem: str, authority_id: int = 0) -> pb.IssueCertificateRequest:
    return pb.IssueCertificateRequest(
        request_id=request_id, csr_pem=csr_pem, authority_id=authority_id
    )


@dataclass(frozen=True)
class Csr:
    key: ec.EllipticCurvePrivateKey
    pem: str

    @property
    def public_der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def make_csr(common_name: str | None, dns_names: Iterable[str] | None = None) -> Csr:
    """A fresh P-256 key and a signed CSR; ``dns_names`` None means no subjectAltName at all."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if dns_names is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    request = builder.sign(key, hashes.SHA256())
    return Csr(key, request.public_bytes(serialization.Encoding.PEM).decode())


def public_der(certificate_pem: str) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a PEM certificate."""
    leaf = x509.load_pem_x509_certificate(certificate_pem.encode())
    return leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_public_der(private_key_pem: str) -> bytes:
    """The SubjectPublicKeyInfo (DER) of an unencrypted PEM private key."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# Waiting ------------------------------------------------------------------------------------------


def poll(check: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """Call ``check`` until it returns something other than None; fail after ``timeout`` s."""
    end = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def wait_for(
    stub: Stub,
    request_id: str,
    states: Iterable[pb.RequestState.ValueType],
    owner: str = "",
    timeout: float = WAIT,
) -> pb.CertificateRequest:
    """Poll GetCertificateRequest until the request is in one of ``states``.

    Reaching a terminal state that is not wanted fails at once, with the request's reason.
    """
    wanted = frozenset(states)

    def check() -> pb.CertificateRequest | None:
        found = stub.GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id=request_id, owner=owner), timeout=5
        )
        if found.state in wanted:
            return found
        if found.state in TERMINAL:
            name = pb.RequestState.Name(found.state)
            raise AssertionError(f"request {request_id} ended {name}: {found.reason}")
        return None

    names = ", ".join(pb.RequestState.Name(s) for s in sorted(wanted))
    return poll(check, f"request {request_id} to reach {names}", timeout)


@dataclass(frozen=True)
class IssuedBefore:
    """Requests issued and READY before their store lost them: what was sent, the replies (they
    carry generated PKCS#12 passwords) and the READY states."""

    requests: dict[str, pb.IssueCertificateRequest]
    replies: dict[str, pb.CertificateRequest]
    ready: dict[str, pb.CertificateRequest]


def issue_work_to_lose(stub: Stub) -> IssuedBefore:
    """One server-key and one CSR request, issued and READY."""
    csr = make_csr("after-csr.example.com", ["after-csr.example.com"])
    requests = {
        "after-key": server_key_request("after-key", "after.example.com"),
        "after-csr": csr_request("after-csr", csr.pem),
    }
    replies = {rid: issue_ready(stub, request) for rid, request in requests.items()}
    ready = {rid: wait_for(stub, rid, [READY]) for rid in requests}
    return IssuedBefore(requests, replies, ready)


def assert_adopted_when_sent_again(stub: Stub, sectigo: EmulatorApi, lost: IssuedBefore) -> None:
    """Each lost request sent again (same id, same body) gets its first batch, serial and PKCS#12
    password back, and Sectigo holds one batch under its name."""
    for rid, request in lost.requests.items():
        reply = stub.IssueCertificate(request, timeout=10)
        assert reply.batch_name == lost.replies[rid].batch_name
        assert reply.pkcs12_password == lost.replies[rid].pkcs12_password
        done = wait_for(stub, rid, [READY])
        assert done.batch_id == lost.ready[rid].batch_id
        assert [b["batchId"] for b in sectigo.batches(reply.batch_name)] == [done.batch_id]
        assert download(stub, rid).serial_number == lost.ready[rid].serial_number


def issue_ready(stub: Stub, request: pb.IssueCertificateRequest) -> pb.CertificateRequest:
    """Issue and wait for READY; returns the IssueCertificate reply (it carries the password)."""
    reply = stub.IssueCertificate(request, timeout=10)
    wait_for(stub, request.request_id, [READY])
    return reply


def download(
    stub: Stub, request_id: str, owner: str = "", include_private_key: bool = False
) -> pb.DownloadCertificateResponse:
    return stub.DownloadCertificate(
        pb.DownloadCertificateRequest(
            request_id=request_id, owner=owner, include_private_key=include_private_key
        ),
        timeout=10,
    )


# Errors -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """What a failed RPC told the caller."""

    code: grpc.StatusCode
    details: str
    trailers: Mapping[str, str]

    @property
    def field(self) -> str | None:
        return self.trailers.get("sectigo-svc-field")


def failure(call: Callable[[], object]) -> Failure:
    """Run an RPC (consuming a stream, if it returns one) that must fail; describe the failure."""
    try:
        result = call()
        if isinstance(result, Iterable):
            list(result)
    except grpc.RpcError as exc:
        failed = cast(grpc.Call, exc)
        trailers = {
            key: value for key, value in failed.trailing_metadata() or () if isinstance(value, str)
        }
        return Failure(failed.code(), failed.details() or "", trailers)
    raise AssertionError(f"the call succeeded: {result!r}"[:500])


# The emulator, from outside ------------------------------------------------------------------


class Upstream(Protocol):
    """Where an emulator listens: an in-process :class:`Emulator` or an :class:`EmulatorProcess`."""

    @property
    def api_url(self) -> str: ...

    @property
    def management_url(self) -> str: ...


@dataclass(frozen=True)
class EmulatorProcess:
    """``sectigo-svc emulator`` as a real process, for tests where Sectigo must truly go away."""

    process: subprocess.Popen[str]
    api_url: str
    management_url: str

    def stop(self) -> int:
        """SIGTERM, then its exit status (killed if it takes more than 10 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@contextlib.contextmanager
def emulator_process(*options: str) -> Iterator[EmulatorProcess]:
    """Start the emulator on free ports; it is stopped when the block ends."""
    process = subprocess.Popen(
        [SECTIGO_SVC, "emulator", "--port", "0", "--management-port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        assert line, "the emulator exited before it listened"
        started = json.loads(line)
        yield EmulatorProcess(process, started["api"], started["management"])
    finally:
        EmulatorProcess(process, "", "").stop()


class EmulatorApi:
    """The emulator's Sectigo API (as the test account) and management API, over plain HTTP."""

    def __init__(self, emulator: Upstream) -> None:
        self.api_url = emulator.api_url
        self.management_url = emulator.management_url
        self._token: str | None = None

    def _bearer(self) -> dict[str, str]:
        if self._token is None:
            reply = requests.post(
                f"{self.api_url}/auth/pwd",
                json={"username": USERNAME, "password": PASSWORD},
                timeout=HTTP_TIMEOUT,
            )
            reply.raise_for_status()
            self._token = str(reply.json()["accessToken"])
        return {"Authorization": f"Bearer {self._token}"}

    def batches(self, batch_name: str) -> list[dict[str, Any]]:
        """Sectigo's batches of that exact name."""
        reply = requests.get(
            f"{self.api_url}/api/v1/batches",
            params={"batchName": batch_name},
            headers=self._bearer(),
            timeout=HTTP_TIMEOUT,
        )
        reply.raise_for_status()
        found: list[dict[str, Any]] = reply.json()
        return found

    def create_batch(
        self, common_name: str, password: str, authority_id: int = 42, batch_name: str = ""
    ) -> int:
        """Order a server-key certificate directly, as another Sectigo user would; the batch id.

        The batch is named after the common name unless ``batch_name`` is given."""
        params = {"commonName": common_name, "dNSName": common_name, "pkcs12Password": password}
        body = {
            "authorityId": authority_id,
            "batchName": batch_name or common_name,
            "profileParams": params,
        }
        reply = requests.put(
            f"{self.api_url}/api/v1/batches/createSingleCertBatch",
            json=body,
            headers=self._bearer(),
            timeout=HTTP_TIMEOUT,
        )
        reply.raise_for_status()
        return int(reply.json()["batchId"])

    def batch(self, batch_id: int) -> dict[str, Any]:
        reply = requests.get(
            f"{self.api_url}/api/v1/batches/{batch_id}",
            headers=self._bearer(),
            timeout=HTTP_TIMEOUT,
        )
        reply.raise_for_status()
        detail: dict[str, Any] = reply.json()
        return detail

    def download(self, batch_id: int) -> bytes:
        """The batch's ZIP (after which Sectigo reports the batch COLLECTED)."""
        reply = requests.get(
            f"{self.api_url}/api/v1/batches/{batch_id}/download",
            headers=self._bearer(),
            timeout=HTTP_TIMEOUT,
        )
        reply.raise_for_status()
        return reply.content

    def find_common_name(self, common_name: str) -> list[dict[str, Any]]:
        reply = requests.post(
            f"{self.api_url}/api/v1/certificates/find",
            json={"commonName": common_name},
            headers=self._bearer(),
            timeout=HTTP_TIMEOUT,
        )
        reply.raise_for_status()
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    def find_serial(self, serial: str) -> list[dict[str, Any]]:
        reply = requests.post(
            f"{self.api_url}/api/v1/certificates/find",
            json={"serialNumber": serial},
            headers=self._bearer(),
            timeout=HTTP_TIMEOUT,
        )
        reply.raise_for_status()
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    def crl(self) -> x509.CertificateRevocationList:
        reply = requests.get(f"{self.api_url}/crl/issuing.crl", timeout=HTTP_TIMEOUT)
        reply.raise_for_status()
        return x509.load_der_x509_crl(reply.content)

    def ca_chain_pem(self) -> str:
        """The emulator's issuing CA then its root, PEM."""
        reply = requests.get(f"{self.api_url}/ca/chain.pem", timeout=HTTP_TIMEOUT)
        reply.raise_for_status()
        return reply.text

    def stats(self) -> dict[str, Any]:
        reply = requests.get(f"{self.management_url}/stats", timeout=HTTP_TIMEOUT)
        reply.raise_for_status()
        stats: dict[str, Any] = reply.json()
        return stats

    def requests_to(self, route: str) -> int:
        """How many requests reached ``route`` (e.g. ``create_batch``) so far."""
        return int(self.stats()["requests"].get(route, 0))

    def batches_created(self) -> int:
        return int(self.stats()["batches_created"])

    def add_fault(self, **rule: Any) -> int:
        """Add a fault rule (see docs/emulator.md); returns its id."""
        reply = requests.post(f"{self.management_url}/faults", json=rule, timeout=HTTP_TIMEOUT)
        assert reply.status_code == 201, reply.text
        return int(reply.json()["rules"][0]["id"])

    def clear_faults(self) -> None:
        requests.delete(f"{self.management_url}/faults", timeout=HTTP_TIMEOUT).raise_for_status()

    def settings(self, **changes: Any) -> None:
        reply = requests.patch(
            f"{self.management_url}/settings", json=changes, timeout=HTTP_TIMEOUT
        )
        assert reply.status_code == 200, reply.text


# Channels, health and the service as a process ------------------------------------------------


def mtls_channel(target: str, pki: DevCerts, client: str) -> grpc.Channel:
    """A mutual-TLS channel presenting ``client``'s certificate (``intruder``: wrong CA)."""
    cert, key = pki.intruder if client == "intruder" else pki.client(client)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=key.read_bytes(),
        certificate_chain=cert.read_bytes(),
    )
    return grpc.secure_channel(target, credentials)


def health_status(channel: grpc.Channel, service: str = "") -> str:
    """The health of ``service`` ("" = the whole server) by name, e.g. ``SERVING``."""
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name


def write_toml(path: Path, values: Mapping[str, str | int | float | bool | Path]) -> Path:
    """A flat TOML settings file (strings, numbers, booleans, paths)."""
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        else:
            text = json.dumps(str(value))
        lines.append(f"{key} = {text}")
    path.write_text("\n".join(lines) + "\n")
    return path


def serve_config(
    path: Path, pki: DevCerts, state: Path, emulator: Upstream, **extra: str | int | float | Path
) -> Path:
    """A TOML config for ``sectigo-svc serve``: mutual TLS with the development PKI, port 0,
    JSON logs, the emulator's test account (password from a 0600 secret file)."""
    password_file = path.parent / "sectigo.password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    settings: dict[str, str | int | float | bool | Path] = loopback_settings(
        pki, state, emulator.api_url
    ) | {
        "listen": "127.0.0.1:0",
        "sectigo_username": USERNAME,
        "sectigo_password_file": password_file,
        "log_format": "json",
        "sectigo_timeout": 3.0,
        "quarantine": 4.0,
        "poll_min_interval": 0.05,
        "poll_max_interval": 0.5,
    }
    return write_toml(path, settings | extra)


class LogLines:
    """Collects a process's output lines in a thread, so its pipe never fills up."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def events(self) -> list[dict[str, Any]]:
        """The JSON lines so far, parsed (other lines skipped)."""
        with self._changed:
            lines = list(self.lines)
        parsed = []
        for line in lines:
            with contextlib.suppress(ValueError):
                parsed.append(json.loads(line))
        return parsed

    def wait_for(self, event: str, timeout: float = WAIT) -> dict[str, Any]:
        """The first JSON line whose ``event`` is ``event``, waiting for it (bounded)."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.events() if e.get("event") == event), None)

        end = time.monotonic() + timeout
        with self._changed:
            while (hit := found()) is None:
                left = end - time.monotonic()
                assert left > 0, f"no {event!r} log line in {timeout} s:\n{''.join(self.lines)}"
                self._changed.wait(left)
        return hit


@contextlib.contextmanager
def serve_process(
    *args: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], LogLines]]:
    """``sectigo-svc serve ARGS`` as a real process with its stderr collected; killed at the end
    if still running."""
    process = subprocess.Popen(
        [SECTIGO_SVC, "serve", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    try:
        yield process, LogLines(process.stderr)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def listening_port(logs: LogLines) -> int:
    """The port a served process listens on, from its start-up log line."""
    return int(str(logs.wait_for("sectigo-svc started")["listen"]).rpartition(":")[2])


# openssl and files --------------------------------------------------------------------------------


def openssl(*args: str | Path, password_input: str | None = None) -> str:
    """Run the real ``openssl``; fail with its stderr unless it exits 0. Returns stdout."""
    done = subprocess.run(
        [OPENSSL, *map(str, args)],
        capture_output=True,
        text=True,
        input=password_input,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"openssl {' '.join(map(str, args))} failed: {done.stderr}"
    return done.stdout


def split_pem(bundle: str) -> list[str]:
    """The PEM certificates of a bundle, each with its markers."""
    end = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + end + "\n" for part in bundle.split(end) if part.strip()]


def policy_file(directory: Path, grants: Mapping[str, Iterable[str]]) -> Path:
    """Write a policy mapping development client names to roles; returns its path."""
    lines = []
    for client, roles in grants.items():
        listed = ", ".join(f'"{role}"' for role in roles)
        lines.append(f'[identities."{spiffe_id(client)}"]\nroles = [{listed}]\n')
    path = directory / "policy.toml"
    path.write_text("\n".join(lines))
    return path
