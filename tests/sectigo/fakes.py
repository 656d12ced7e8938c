"""Test doubles for the Sectigo client's unit tests: clock, JWTs, authenticator, certificates."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sectigo_svc.sectigo.credentials import Credentials, Secret
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.errors import SectigoError
from sectigo_svc.sectigo.models import Tokens

USERNAME = "tester"
PASSWORD = "supersecretsquirrel"  # the emulator's documented default test account
SIGNING_KEY = "unit-test-signing-key-of-32-bytes!"


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_jwt(
    *, iat: float, exp: float, nbf: float | None = None, sub: str = "/account/7/user/10"
) -> str:
    claims: dict[str, object] = {"sub": sub, "iat": int(iat), "exp": int(exp)}
    if nbf is not None:
        claims["nbf"] = int(nbf)
    return jwt.encode(claims, SIGNING_KEY, algorithm="HS256")


def make_tokens(
    now: float, access_lifetime: float = 600, refresh_lifetime: float = 7200, serial: int = 0
) -> Tokens:
    """A pair issued at ``now``; ``serial`` makes otherwise identical pairs differ."""
    access = make_jwt(iat=now, exp=now + access_lifetime, sub=f"/account/7/user/{serial}")
    refresh = make_jwt(iat=now, exp=now + refresh_lifetime, sub=f"/account/7/user/{serial}")
    return Tokens(access, refresh)


def credentials() -> Credentials:
    return Credentials(USERNAME, Secret(PASSWORD))


class FakeAuthenticator:
    """Issues tokens from a clock and counts calls; can be told to fail or to be slow."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        access_lifetime: float = 600,
        refresh_lifetime: float = 7200,
        delay: float = 0.0,
    ) -> None:
        self.clock = clock
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.delay = delay
        self.logins = 0
        self.refreshes = 0
        self.refresh_error: SectigoError | None = None
        self.login_error: SectigoError | None = None
        self.refreshed_with: list[str] = []
        self._lock = threading.Lock()
        self._serial = 0

    def _issue(self) -> Tokens:
        with self._lock:
            self._serial += 1
            serial = self._serial
        return make_tokens(self.clock(), self.access_lifetime, self.refresh_lifetime, serial)

    def login(self, credentials: Credentials, deadline: Deadline | None) -> Tokens:
        del credentials, deadline
        time.sleep(self.delay)
        with self._lock:
            self.logins += 1
        if self.login_error is not None:
            raise self.login_error
        return self._issue()

    def refresh(self, refresh_token: str, deadline: Deadline | None) -> Tokens:
        del deadline
        time.sleep(self.delay)
        with self._lock:
            self.refreshes += 1
            self.refreshed_with.append(refresh_token)
        if self.refresh_error is not None:
            raise self.refresh_error
        return self._issue()


def self_signed_chain(
    common_name: str = "leaf.example.com",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Sequence[x509.Certificate]]:
    """A leaf key and certificate plus its issuing CA and root, all freshly generated."""
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        return builder.sign(signer, hashes.SHA256())

    root_key = ec.generate_private_key(ec.SECP256R1())
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = issue("Test Root", root_key, "Test Root", root_key, True)
    issuing = issue("Test Issuing", issuing_key, "Test Root", root_key, True)
    leaf = issue(common_name, leaf_key, "Test Issuing", issuing_key, False)
    return leaf_key, leaf, (issuing, root)
