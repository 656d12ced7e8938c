"""Decides what a new batch becomes: its signed certificates, or the reason it is turned down.

Runs when the batch is created (outside the ledger's lock, since key generation is slow); the
ledger reveals the outcome once the issue delay has passed.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from sectigo_svc.emulator.bundles import IssuedItem
from sectigo_svc.emulator.ca import CertificateAuthority, KeyType, SubjectFields, generate_key
from sectigo_svc.emulator.catalog import EC_CURVES, MIN_RSA_BITS, Profile, rejection_reason
from sectigo_svc.emulator.ledger import Settled

MISSING_SAN = "Cert subject name error: SubjectAlternativeName dNSName value is missing"
_PEM_CSR = re.compile(
    rb"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----.+?-----END (?:NEW )?CERTIFICATE REQUEST-----",
    re.DOTALL,
)


# RFC 5280's upper bounds on subject attributes, in characters. Sectigo fails an order whose
# subject exceeds one with a 500 (seen for a common name of 65 characters), recording no batch.
SUBJECT_BOUNDS = (
    (NameOID.COMMON_NAME, "commonName", 64),
    (NameOID.ORGANIZATION_NAME, "organizationName", 64),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "organizationalUnitName", 64),
    (NameOID.LOCALITY_NAME, "localityName", 128),
    (NameOID.STATE_OR_PROVINCE_NAME, "stateOrProvinceName", 128),
)


class CsrError(ValueError):
    """The uploaded file holds no usable CSR; the message says which and why."""


class SubjectOutOfBounds(ValueError):
    """A subject attribute is longer than RFC 5280 allows (or C is not two characters): the
    routes answer 500, as Sectigo does, and record nothing."""


def check_subject_bounds(values: dict[x509.ObjectIdentifier, list[str]]) -> None:
    """Raise :class:`SubjectOutOfBounds` for the first attribute over its bound."""
    for oid, name, bound in SUBJECT_BOUNDS:
        for value in values.get(oid, []):
            if len(value) > bound:
                raise SubjectOutOfBounds(f"{name} has {len(value)} characters, over {bound}")
    for value in values.get(NameOID.COUNTRY_NAME, []):
        if len(value) != 2:
            raise SubjectOutOfBounds(f"countryName has {len(value)} characters, not 2")


@dataclass(frozen=True)
class Issuer:
    ca: CertificateAuthority
    key_type: KeyType
    reject_common_names: tuple[str, ...]
    crl_url: str

    def for_params(self, profile: Profile, params: dict[str, str]) -> Settled:
        """Outcome of a single-certificate order with a key generated here: rejected for a
        value its profile's published pattern refuses, :class:`SubjectOutOfBounds` for a subject
        those patterns let through but RFC 5280 does not."""
        reason = rejection_reason(profile, params) or self._policy_reason(params["commonName"])
        if reason:
            return Settled("rejected", reason=reason)
        subject = SubjectFields(
            common_name=params["commonName"],
            organization=params.get("organizationName", ""),
            locality=params.get("localityName", ""),
            state=params.get("stateOrProvinceName", ""),
            country=params.get("countryName", ""),
        )
        # What the published patterns let through (a DNS name as common name) may still be
        # over RFC 5280's bounds.
        check_subject_bounds(subject.values())
        key = generate_key(self.key_type)
        dns_names = list(dict.fromkeys(params["dNSName"].split("\n")))
        certificate = self.ca.issue(key.public_key(), subject, dns_names, self.crl_url)
        return Settled("issued", items=(IssuedItem(subject.common_name, certificate, key),))

    def for_csrs(self, csrs: list[x509.CertificateSigningRequest]) -> Settled:
        """Outcome of a CSR batch: every CSR must name at least one DNS name. A subject over
        RFC 5280's bounds (the first DNS name standing in for an absent common name) raises
        :class:`SubjectOutOfBounds`."""
        for csr in csrs:
            values: dict[x509.ObjectIdentifier, list[str]] = {}
            for attribute in csr.subject:
                values.setdefault(attribute.oid, []).append(str(attribute.value))
            if NameOID.COMMON_NAME not in values:
                values[NameOID.COMMON_NAME] = _dns_names(csr)[:1]
            check_subject_bounds(values)
        items = []
        for csr in csrs:
            try:
                san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                dns_names = san.value.get_values_for_type(x509.DNSName)
            except x509.ExtensionNotFound:
                dns_names = []
            if not dns_names:
                return Settled("broken", reason=MISSING_SAN)
            subject = SubjectFields(
                common_name=_attribute(csr.subject, NameOID.COMMON_NAME) or dns_names[0],
                organization=_attribute(csr.subject, NameOID.ORGANIZATION_NAME),
                locality=_attribute(csr.subject, NameOID.LOCALITY_NAME),
                state=_attribute(csr.subject, NameOID.STATE_OR_PROVINCE_NAME),
                country=_attribute(csr.subject, NameOID.COUNTRY_NAME),
            )
            reason = self._policy_reason(subject.common_name)
            if reason:
                return Settled("rejected", reason=reason)
            certificate = self.ca.issue(csr.public_key(), subject, dns_names, self.crl_url)
            items.append(IssuedItem(subject.common_name, certificate, None))
        return Settled("issued", items=tuple(items))

    def _policy_reason(self, common_name: str) -> str | None:
        for pattern in self.reject_common_names:
            if re.search(pattern, common_name):
                return f"Rejected by policy: common name {common_name} is not allowed"
        return None


def check_keys(profile: Profile, csrs: list[x509.CertificateSigningRequest]) -> None:
    """Refuse (:class:`CsrError`) a CSR whose key the profile does not take: it takes RSA of
    ``MIN_RSA_BITS`` or more and EC on ``EC_CURVES``; DSA, Ed25519 and the rest are refused."""
    accepted = f"RSA of {MIN_RSA_BITS} bits or more, or EC on {' or '.join(EC_CURVES)}"
    for number, csr in enumerate(csrs, start=1):
        key = csr.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            found = f"an RSA key of {key.key_size} bits"
            if key.key_size >= MIN_RSA_BITS:
                continue
        elif isinstance(key, ec.EllipticCurvePublicKey):
            found = f"an EC key on {key.curve.name}"
            if key.curve.name in EC_CURVES:
                continue
        else:
            found = f"a key of type {type(key).__name__.removesuffix('PublicKey')}"
        raise CsrError(f"CSR {number} has {found}; profile {profile.profile_id} accepts {accepted}")


def _dns_names(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.DNSName))


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def read_csrs(data: bytes, content_type: str) -> list[x509.CertificateSigningRequest]:
    """The CSRs of an upload: PEM text with one or more CSRs, or a ZIP of ``.csr``/``.pem`` files.

    A ZIP must be declared ``application/zip``; PEM may come as text/plain, octet-stream or
    application/x-x509-ca-cert. Every CSR must parse and carry a valid self-signature.
    """
    is_zip = data.startswith(b"PK\x03\x04")
    if is_zip != (content_type == "application/zip"):
        raise CsrError(
            "a ZIP of CSRs must be sent as application/zip"
            if is_zip
            else f"content type {content_type} declares a ZIP, but the file is not one"
        )
    if not is_zip:
        if content_type not in (
            "text/plain",
            "application/octet-stream",
            "application/x-x509-ca-cert",
        ):
            raise CsrError(f"content type {content_type} is not accepted for a CSR file")
        return _pem_csrs(data, "the file")
    csrs = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if not info.filename.lower().endswith((".csr", ".pem")):
                    raise CsrError(f"{info.filename}: only .csr and .pem files are accepted")
                csrs.extend(_pem_csrs(archive.read(info), info.filename))
    except zipfile.BadZipFile as exc:
        raise CsrError(f"the ZIP cannot be read: {exc}") from exc
    if not csrs:
        raise CsrError("the ZIP holds no CSR")
    return csrs


def _pem_csrs(data: bytes, where: str) -> list[x509.CertificateSigningRequest]:
    blocks = _PEM_CSR.findall(data)
    if not blocks:
        raise CsrError(f"{where} holds no PEM certificate request")
    csrs = []
    for number, block in enumerate(blocks, start=1):
        try:
            csr = x509.load_pem_x509_csr(block)
        except ValueError as exc:
            raise CsrError(f"{where}: CSR {number} cannot be parsed") from exc
        if not csr.is_signature_valid:
            raise CsrError(f"{where}: CSR {number} has an invalid signature")
        csrs.append(csr)
    return csrs
