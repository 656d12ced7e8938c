"""The emulated account's fixed data: ecosystem, authorities, profiles, parameters, organization.

Profile parameters carry the ``required`` flag and ``validationPattern`` that the API publishes, and
:func:`check_parameters` enforces exactly what is published, so a client that validates against the
published rules is never surprised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

ECOSYSTEM_ID = 100
ECOSYSTEM_NAME = "TRISA"
USER_ID = 10
ACCOUNT_ID = 7
SUBJECT = f"/account/{ACCOUNT_ID}/user/{USER_ID}"
ISSUER = "https://iot.sectigo.emulator/"

_DNS_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DNS_NAME = rf"(?:\*\.)?(?:{_DNS_LABEL}\.)*{_DNS_LABEL}"


@dataclass(frozen=True)
class Parameter:
    """One profile parameter as the API describes it."""

    name: str
    title: str
    pattern: str
    message: str
    required: bool = True
    input_type: str = "TEXT"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputType": self.input_type,
            "required": self.required,
            "placeholder": None,
            "validationPattern": self.pattern,
            "message": self.message,
            "value": None,
            "title": self.title,
            "scopes": ["ROLE_USER"],
            "dynamic": False,
        }


COMMON_NAME = Parameter(
    "commonName", "Common Name", rf"^{_DNS_NAME}$", "Common name must be a DNS name"
)
DNS_NAME = Parameter(
    "dNSName",
    "DNS Names",
    rf"^{_DNS_NAME}(?:\n{_DNS_NAME})*$",
    "DNS names must be DNS names separated by new lines",
    input_type="TEXTAREA",
)
PKCS12_PASSWORD = Parameter(
    "pkcs12Password",
    "PKCS#12 Password",
    r"^[\x20-\x7e]{8,128}$",
    "Password must be 8 to 128 printable ASCII characters",
    input_type="PASSWORD",
)
SUBJECT_PARAMETERS = (
    Parameter("organizationName", "Organization", r"^.{1,64}$", "Organization is 1-64 chars"),
    Parameter("localityName", "Locality", r"^.{1,64}$", "Locality is 1-64 characters"),
    Parameter("stateOrProvinceName", "State", r"^.{1,64}$", "State is 1-64 characters"),
    Parameter("countryName", "Country", r"^[A-Z]{2}$", "Country is an ISO 3166 two-letter code"),
)


@dataclass(frozen=True)
class Profile:
    """A certificate profile and the authority through which the account issues under it."""

    profile_id: int
    authority_id: int
    name: str
    parameters: tuple[Parameter, ...]
    signer_certificate_id: int = 0

    def detail_json(self) -> dict[str, Any]:
        return {
            "profileName": self.name,
            "profileId": self.profile_id,
            "rawProfileConfig": (
                '{"keyAlgorithm":"RSA","keySize":2048,"validityMonths":13,'
                '"extendedKeyUsage":["serverAuth","clientAuth"]}'
            ),
            "name": self.name,
            "keyAlgorithmInfo": "RSA - 2048",
        }

    def summary_json(self) -> dict[str, Any]:
        return {"profileId": self.profile_id, "algorithms": ["RSA", "EC"], "ca": "emulator"}

    def authority_json(self, balance: int) -> dict[str, Any]:
        return {
            "id": self.authority_id,
            "ecosystemId": ECOSYSTEM_ID,
            "signerCertificateId": self.signer_certificate_id,
            "ecosystemName": ECOSYSTEM_NAME,
            "balance": balance,
            "enabled": True,
            "profileId": self.profile_id,
            "profileName": self.name,
        }


AuthorityIds = Literal["profile", "distinct"]
DEFAULT_BALANCE = 100
# Accepted subject keys of uploaded CSRs: RSA from this size, EC on these curves.
MIN_RSA_BITS = 2048
EC_CURVES = ("secp256r1", "secp384r1")


@dataclass(frozen=True)
class Profiles:
    """The account's profiles, each with the authority the account issues through."""

    all: tuple[Profile, ...]

    def by_id(self, profile_id: int) -> Profile | None:
        return next((p for p in self.all if p.profile_id == profile_id), None)

    def by_authority(self, authority_id: int) -> Profile | None:
        return next((p for p in self.all if p.authority_id == authority_id), None)

    @property
    def authority_ids(self) -> tuple[int, ...]:
        return tuple(p.authority_id for p in self.all)


def account_profiles(authority_ids: AuthorityIds = "profile") -> Profiles:
    """Profiles 42 and 85. ``profile``: each authority has its profile's id (42, 85), as on
    upstream's staging data, so a profile id works wherever an authority id is asked for;
    ``distinct``: authorities 1 and 2, for clients that must not mix the two up."""
    distinct = authority_ids == "distinct"
    return Profiles(
        (
            Profile(
                42, 1 if distinct else 42, "TRISA Profile", (COMMON_NAME, DNS_NAME, PKCS12_PASSWORD)
            ),
            Profile(
                85,
                2 if distinct else 85,
                "TRISA End Entity",
                (COMMON_NAME, DNS_NAME, PKCS12_PASSWORD, *SUBJECT_PARAMETERS),
            ),
        )
    )


class ParameterError(ValueError):
    """The request itself is malformed (HTTP 400): missing, unknown, empty or non-string value."""


def check_parameters(profile: Profile, params: object) -> dict[str, str]:
    """Refuse structurally bad parameters; the returned dict holds only strings.

    Pattern failures are *not* raised here: the real CA accepts the order and rejects the batch,
    which :func:`rejection_reason` reports.
    """
    if not isinstance(params, dict):
        raise ParameterError("profileParams must be an object of strings")
    known = {p.name for p in profile.parameters}
    for name, value in params.items():
        if name not in known:
            raise ParameterError(f"Unknown profile parameter: {name}")
        if not isinstance(value, str):
            raise ParameterError(f"Profile parameter {name} must be a string")
        if value == "":
            raise ParameterError(f"Profile parameter {name} must not be empty")
    for parameter in profile.parameters:
        if parameter.required and parameter.name not in params:
            raise ParameterError(f"Missing required profile parameter: {parameter.name}")
    return {str(k): str(v) for k, v in params.items()}


def rejection_reason(profile: Profile, params: dict[str, str]) -> str | None:
    """The CA's reason to reject a structurally valid order, or None when it would issue."""
    for parameter in profile.parameters:
        value = params.get(parameter.name)
        if value is not None and not re.fullmatch(parameter.pattern, value):
            return f"Invalid value for {parameter.name}: {parameter.message}"
    common_name = params.get("commonName", "")
    dns_names = params.get("dNSName", "").split("\n")
    if common_name and common_name.lower() not in (n.lower() for n in dns_names):
        return "Invalid value for dNSName: the common name must be one of the DNS names"
    return None


ORGANIZATION_ID = 1042


def organization_json(authorities: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "organizationId": ORGANIZATION_ID,
        "organizationName": "TRISA Emulated",
        "address": "123 Main Street",
        "primaryContactName": "Jane Wilkerson",
        "primaryContactEmail": "jw@example.com",
        "primaryContactPhone": "555-555-5555",
        "manufactureId": "",
        "logo": "",
        "authorities": authorities,
        "ecosystemId": ECOSYSTEM_ID,
        "organizationParameters": {"Organization": "TRISA Emulated"},
        "orgStatus": "ACTIVE",
    }
