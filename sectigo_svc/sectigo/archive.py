"""Opening a batch ZIP: the PKCS#12 of a server-side key batch, or the PEMs of a CSR batch.

Nothing is extracted to disk; entries are read in memory with a size bound. The leaf is the
certificate whose public key matches the private key (not "the first certificate", which is an
assumption about the file's bag order), and the chain follows issuer links up from the leaf.
Errors say what was wrong: not a ZIP, no or several key files, wrong password, no matching key.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs12

from sectigo_svc.sectigo.credentials import Secret
from sectigo_svc.sectigo.errors import ArchiveError, WrongPassword

MAX_ENTRY_BYTES = 10 * 1024 * 1024
PKCS12_SUFFIXES = (".p12", ".pfx")
PEM_SUFFIXES = (".pem", ".crt", ".cer")


@dataclass(frozen=True)
class KeyAndChain:
    """A PKCS#12's content: the leaf, its issuers from nearest to root, the private key, and the
    file itself as Sectigo made it."""

    name: str
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes = field(repr=False)
    pkcs12: bytes = field(repr=False)


@dataclass(frozen=True)
class CertificateChain:
    """One PEM entry of a CSR batch: the leaf and its issuers from nearest to root."""

    name: str
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]


def open_pkcs12_zip(archive: bytes | Path, password: str | Secret) -> KeyAndChain:
    """Open the single ``.p12``/``.pfx`` in a server-side key batch ZIP with its password."""
    entries = _entries(archive, PKCS12_SUFFIXES)
    if len(entries) != 1:
        found = "no" if not entries else f"{len(entries)}"
        raise ArchiveError(f"expected exactly one PKCS#12 file in the archive, found {found}")
    name, data = entries[0]
    secret = password.reveal() if isinstance(password, Secret) else password
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, secret.encode())
    except ValueError:
        raise WrongPassword(f"{name}: wrong password or corrupt PKCS#12") from None
    if key is None:
        raise ArchiveError(f"{name}: holds no private key")
    certificates = [c for c in (certificate, *extra) if c is not None]
    wanted = _spki(key.public_key())
    leaves = [c for c in certificates if _spki(c.public_key()) == wanted]
    if not leaves:
        raise ArchiveError(f"{name}: no certificate matches the private key")
    leaf = leaves[0]
    return KeyAndChain(name, leaf, _chain_of(leaf, certificates), key, data)


def open_pem_zip(archive: bytes | Path) -> tuple[CertificateChain, ...]:
    """Read every PEM entry of a CSR batch ZIP (one chain per CSR, no keys)."""
    entries = _entries(archive, PEM_SUFFIXES)
    if not entries:
        raise ArchiveError("expected PEM certificate files in the archive, found none")
    chains = []
    for name, data in entries:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise ArchiveError(f"{name}: not PEM certificates") from None
        leaf = _leaf_of(certificates)
        chains.append(CertificateChain(name, leaf, _chain_of(leaf, certificates)))
    return tuple(chains)


def _entries(archive: bytes | Path, suffixes: tuple[str, ...]) -> list[tuple[str, bytes]]:
    """The (name, content) of every file entry whose name ends with one of ``suffixes``."""
    try:
        source = archive.read_bytes() if isinstance(archive, Path) else archive
        with zipfile.ZipFile(io.BytesIO(source)) as bundle:
            found = []
            for info in bundle.infolist():
                if info.is_dir() or not info.filename.lower().endswith(suffixes):
                    continue
                if info.file_size > MAX_ENTRY_BYTES:
                    raise ArchiveError(f"{info.filename}: larger than {MAX_ENTRY_BYTES} bytes")
                if info.flag_bits & 0x1:
                    raise ArchiveError(f"{info.filename}: encrypted ZIP entries are not supported")
                found.append((info.filename, bundle.read(info)))
            return found
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"not a ZIP archive: {exc}") from None
    except OSError as exc:
        raise ArchiveError(f"cannot read the archive: {type(exc).__name__}") from None


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _leaf_of(certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    """The certificate that issued none of the others (the first, if that is ambiguous)."""
    if not certificates:
        raise ArchiveError("no certificates in the entry")
    issuers = {c.issuer for c in certificates}
    for candidate in certificates:
        if candidate.subject not in issuers:
            return candidate
    return certificates[0]


def _chain_of(
    leaf: x509.Certificate, certificates: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    """The issuers of ``leaf`` in order up to the root, then any unrelated extras."""
    rest = [c for c in certificates if c != leaf]
    chain: list[x509.Certificate] = []
    current = leaf
    while current.issuer != current.subject:
        parent = next((c for c in rest if c.subject == current.issuer and c not in chain), None)
        if parent is None:
            break
        chain.append(parent)
        current = parent
    chain.extend(c for c in rest if c not in chain)
    return tuple(chain)
