"""The server's TLS files: checked before anything listens, watched while the server runs.

:func:`check_files` reads the server certificate (chain), its private key and the client CA bundle
and refuses, with a :class:`TlsError` naming the setting and the fix, what gRPC could not serve or
no client could accept: files that do not parse, a cert and key file given the wrong way round, an
encrypted key, a key no gRPC handshake can be signed with (Ed25519, Ed448, an EC curve other than
P-256 or P-384), a key that is not the certificate's, a certificate outside its validity
period, a client CA bundle without a CA certificate. (gRPC itself only fails to bind, as if the
port were taken, or serves a certificate every client refuses.)

gRPC is never given the files' bytes: it is given the certificates and the key that
`cryptography` parsed, written again as plain PEM (:class:`Serving`). What the check accepted is
exactly what gRPC serves, so a byte-order mark, CRLF line ends, ``Bag Attributes`` or other text
around the PEM blocks, or the ``EC PARAMETERS`` block `openssl ecparam` writes cannot make the
two disagree.

:class:`TlsWatcher` serves the checked files through gRPC's dynamic credentials. Before every TLS
handshake gRPC asks it for a new configuration; it stats the three files (inode, size, times) and
reads them again only when that changed, as it does when a mounted secret is replaced (cert-manager
or Vault swap a ``..data`` symlink). A new set is checked like the first one; a set that fails is
logged at error level once and the previous one kept. Connections already open keep theirs. A
thread does the same every :data:`CHECK_INTERVAL` seconds, so that a rotation is seen without new
connections, and warns while the certificate is within the warning window of its expiry.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from sectigo_svc.config import ENV_PREFIX

CHECK_INTERVAL = 60.0  # seconds between checks of the files when no connection asks
WARN_EVERY = 3600.0  # seconds between repeated warnings about the certificate's coming expiry

# The curves of the EC keys a gRPC server can sign a handshake with that gRPC clients accept
# (BoringSSL: a P-521 signature is not among the algorithms a gRPC client offers).
_EC_CURVES = frozenset({"secp256r1", "secp384r1"})
_KEY_FIX = "give an EC P-256 or an RSA (2048 bits or more) key, and a certificate issued for it"
_SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_log = structlog.get_logger("sectigo_svc.tls")


class TlsError(ValueError):
    """TLS files the server cannot serve; the message names the setting and says what to do."""


def _setting(name: str) -> str:
    """How an operator sets it: the variable, and the TOML key."""
    return f"{ENV_PREFIX}{name.upper()} ({name})"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Serving:
    """One checked set of the three files, as gRPC is given it: the certificates and the key that
    were parsed and checked, written again as PEM (nothing else of the files' bytes), and the
    certificate they serve."""

    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes
    certificate: x509.Certificate

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "x")

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def same_files(self, other: Serving) -> bool:
        return (self.cert_pem, self.key_pem, self.client_ca_pem) == (
            other.cert_pem,
            other.key_pem,
            other.client_ca_pem,
        )

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(self.key_pem, self.cert_pem)], root_certificates=self.client_ca_pem
        )


@dataclass(frozen=True)
class TlsFiles:
    """Where the server certificate (chain), its key and the client CA bundle are."""

    cert: Path
    key: Path
    client_ca: Path

    def credentials(self) -> grpc.ServerCredentials:
        """Fixed server credentials (the files checked once) that require a client certificate
        chaining to ``client_ca``; :class:`TlsWatcher` is the variant that follows the files."""
        serving = check_files(self)
        return grpc.ssl_server_credentials(
            [(serving.key_pem, serving.cert_pem)],
            root_certificates=serving.client_ca_pem,
            require_client_auth=True,
        )


def check_files(files: TlsFiles, now: dt.datetime | None = None) -> Serving:
    """Read and check the three files (see the module doc); :class:`TlsError` says what is wrong."""
    now = now or _now()
    cert_data = _read(files.cert, "tls_cert")
    key_data = _read(files.key, "tls_key")
    client_ca_data = _read(files.client_ca, "tls_client_ca")
    chain = _certificates(cert_data, files, "tls_cert")
    key = _private_key(key_data, files)
    leaf = chain[0]
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise TlsError(
            f"{_setting('tls_key')}: {files.key} is not the private key of the certificate "
            f"({_describe(leaf)}) in {files.cert}, set by {_setting('tls_cert')}; give the key "
            "the certificate was issued for (`openssl x509 -noout -pubkey -in CERT` and "
            "`openssl pkey -pubout -in KEY` must print the same key)"
        )
    for position, certificate in enumerate(chain):
        _check_validity(certificate, position, files.cert, now)
    client_cas = _certificates(client_ca_data, files, "tls_client_ca")
    _check_client_cas(client_cas, files.client_ca)
    return Serving(
        _pem(chain),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        _pem(client_cas),
        leaf,
    )


def _pem(certificates: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _is_ca(certificate: x509.Certificate) -> bool:
    """What a TLS library takes as a CA: basicConstraints cA true, or (as OpenSSL and BoringSSL
    do) a self-signed version 1 certificate, which has no extensions to say so."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return certificate.version is x509.Version.v1 and certificate.subject == certificate.issuer
    return constraints.value.ca


def _check_client_cas(certificates: list[x509.Certificate], path: Path) -> None:
    if any(_is_ca(certificate) for certificate in certificates):
        return
    raise TlsError(
        f"{_setting('tls_client_ca')}: {path} holds no CA certificate (basicConstraints CA:TRUE), "
        f"only {_describe(certificates[0])}"
        + (f" and {len(certificates) - 1} more" if len(certificates) > 1 else "")
        + "; no client certificate could chain to it. Give the certificate of the CA that "
        "issues client certificates (PEM), not a client's or the server's own certificate"
    )


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(
            f"{_setting(setting)}: cannot read {path}: {exc.strerror}; the service's user must "
            "be able to read it"
        ) from None


def _certificates(data: bytes, files: TlsFiles, setting: str) -> list[x509.Certificate]:
    path = files.cert if setting == "tls_cert" else files.client_ca
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        pass
    if setting == "tls_cert" and b"PRIVATE KEY-----" in data:
        raise TlsError(
            f"{_setting('tls_cert')}: {path} holds a private key, not a certificate; are "
            f"{_setting('tls_cert')} and {_setting('tls_key')} swapped? Give the server "
            "certificate (PEM, leaf first, then intermediates) here and its key there"
        )
    if setting == "tls_cert":
        raise TlsError(
            f"{_setting('tls_cert')}: {path} holds no readable PEM certificate; give the server "
            "certificate (PEM, `-----BEGIN CERTIFICATE-----`, leaf first, then intermediates)"
        )
    raise TlsError(
        f"{_setting('tls_client_ca')}: {path} holds no readable PEM certificate; give the CA "
        "bundle (PEM, one or more `-----BEGIN CERTIFICATE-----` blocks) that client "
        "certificates must chain to"
    )


def _private_key(data: bytes, files: TlsFiles) -> _SigningKey:
    name = _setting("tls_key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography's way of saying "encrypted, and no password given"
        raise TlsError(
            f"{name}: {files.key} is encrypted, and the service cannot be given a passphrase; "
            "give the key unencrypted (`openssl pkey -in KEY -out PLAIN`), readable only by the "
            "service's user"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if b"-----BEGIN CERTIFICATE-----" in data:
            raise TlsError(
                f"{name}: {files.key} holds a certificate, not a private key; are "
                f"{_setting('tls_cert')} and {name} swapped? Give the server certificate there "
                "and its private key (PEM) here"
            ) from None
        raise TlsError(
            f"{name}: {files.key} holds no readable PEM private key; give the server "
            "certificate's private key (PEM, unencrypted: `-----BEGIN PRIVATE KEY-----`, "
            "`RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        algorithm = "an Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "an Ed448"
        raise TlsError(
            f"{name}: {files.key} holds {algorithm} key, which gRPC's TLS does not sign "
            f"handshakes with (every client would fail with NO_COMMON_SIGNATURE_ALGORITHMS); "
            f"{_KEY_FIX}"
        )
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name not in _EC_CURVES:
        raise TlsError(
            f"{name}: {files.key} holds an EC key on the curve {key.curve.name}, whose "
            "handshake signatures gRPC clients do not accept (only P-256 and P-384); "
            f"{_KEY_FIX}"
        )
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TlsError(
            f"{name}: {files.key} holds a {type(key).__name__}, which cannot sign a TLS "
            f"handshake; {_KEY_FIX}"
        )
    return key


def _spki(public: PublicKeyTypes) -> bytes:
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _describe(certificate: x509.Certificate) -> str:
    return f"subject {certificate.subject.rfc4514_string()!r}, serial {certificate.serial_number:x}"


def _check_validity(
    certificate: x509.Certificate, position: int, path: Path, now: dt.datetime
) -> None:
    which = "the certificate" if position == 0 else f"certificate {position + 1} of the chain"
    where = f"{_setting('tls_cert')}: {which} in {path} ({_describe(certificate)})"
    if now < certificate.not_valid_before_utc:
        raise TlsError(
            f"{where} is not valid before {certificate.not_valid_before_utc.isoformat()} (now "
            f"{now.isoformat(timespec='seconds')}); check this machine's clock, or give a "
            "certificate that is valid now"
        )
    if now >= certificate.not_valid_after_utc:
        raise TlsError(
            f"{where} expired on {certificate.not_valid_after_utc.isoformat()}; clients refuse "
            "it: renew it and replace the file (the service re-reads it without a restart)"
        )


_Stamp = tuple[tuple[int, int, int, int, int] | str, ...]


def _stamp(paths: Iterable[Path]) -> _Stamp:
    """What changes when a file is replaced or rewritten, without reading it; never raises."""
    stamps: list[tuple[int, int, int, int, int] | str] = []
    for path in paths:
        try:
            info = path.stat()
        except OSError as exc:
            stamps.append(f"{type(exc).__name__}: {exc.strerror}")
            continue
        stamps.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    return tuple(stamps)


class TlsWatcher:
    """Serves the TLS files through gRPC's dynamic credentials and follows them on disk.

    Construction checks the files (:class:`TlsError`). ``warn_before``: how long before the
    certificate's expiry it is logged at warning level (at :meth:`start`, on every reload, and
    every ``warn_every`` seconds).
    """

    def __init__(
        self,
        files: TlsFiles,
        warn_before: dt.timedelta,
        *,
        check_interval: float = CHECK_INTERVAL,
        warn_every: float = WARN_EVERY,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self.files = files
        self._paths = (files.cert, files.key, files.client_ca)
        self._warn_before = warn_before
        self._check_interval = check_interval
        self._warn_every = warn_every
        self._clock = clock
        self._lock = threading.Lock()
        self._seen = _stamp(self._paths)  # taken before reading: a change meanwhile shows later
        self._serving = check_files(files, clock())
        self._given = self._serving  # what gRPC serves new connections with
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tls-watch", daemon=True)

    @property
    def serving(self) -> Serving:
        with self._lock:
            return self._serving

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials requiring a client certificate, following the files."""
        return grpc.dynamic_ssl_server_credentials(
            self.serving.configuration(),
            self._fetch,  # type: ignore[arg-type]  # the stub omits the None its docs allow
            require_client_authentication=True,
        )

    def seconds_left(self) -> float:
        """Seconds until the served certificate expires (negative once it has)."""
        return (self.serving.not_after - self._clock()).total_seconds()

    def start(self) -> None:
        """Warn now if the certificate expires soon, then watch the files in a thread."""
        self.warn_if_expiring()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def refresh(self) -> bool:
        """Re-read the files if they changed on disk; True when a new set is now served.

        A changed set that fails the checks is logged (error) once and the previous one kept.
        """
        with self._lock:
            stamp = _stamp(self._paths)
            if stamp == self._seen:
                return False
            self._seen = stamp
            previous = self._serving
            try:
                loaded = check_files(self.files, self._clock())
            except TlsError as exc:
                _log.error(
                    "tls files changed but cannot be served; still serving the previous "
                    "certificate",
                    cause=str(exc),
                    serial=previous.serial,
                    not_after=previous.not_after.isoformat(),
                )
                return False
            if loaded.same_files(previous):
                return False
            self._serving = loaded
        _log.info(
            "tls certificate reloaded",
            cert=str(self.files.cert),
            serial=loaded.serial,
            not_after=loaded.not_after.isoformat(),
            previous_serial=previous.serial,
        )
        self.warn_if_expiring()
        return True

    def warn_if_expiring(self) -> None:
        """Log the served certificate's coming (warning) or past (error) expiry, if either."""
        serving = self.serving
        left = serving.not_after - self._clock()
        if left > self._warn_before:
            return
        fields = {
            "cert": str(self.files.cert),
            "serial": serving.serial,
            "not_after": serving.not_after.isoformat(),
            "days_left": round(left / dt.timedelta(days=1), 2),
        }
        if left <= dt.timedelta(0):
            _log.error(
                "tls certificate has expired: clients refuse it; replace the files",
                **fields,
            )
        else:
            _log.warning(
                "tls certificate expires soon: renew it and replace the files",
                **fields,
            )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's fetcher, called before every TLS handshake: the new configuration when the
        served set changed since gRPC last got one, else None. Never raises."""
        try:
            self.refresh()
            with self._lock:
                if self._given is self._serving:
                    return None
                self._given = self._serving
                return self._given.configuration()
        except Exception:  # a fetcher that raises would fail the handshake
            _log.exception("tls files could not be checked; serving the previous certificate")
            return None

    def _watch(self) -> None:
        warned = time.monotonic()
        while not self._stopping.wait(self._check_interval):
            try:
                reloaded = self.refresh()
                if reloaded:
                    warned = time.monotonic()
                elif time.monotonic() - warned >= self._warn_every:
                    warned = time.monotonic()
                    self.warn_if_expiring()
            except Exception:  # the watch must go on
                _log.exception("tls files could not be checked")
