"""Profile parameters: check an order's ``profileParams`` against what the profile publishes.

Sectigo answers a bad order with a 400 or, worse, accepts it and rejects the batch later. Checking
the published ``required`` flags and ``validationPattern`` first means a bad order costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sectigo_svc.sectigo.models import ProfileParameter

COMMON_NAME = "commonName"
DNS_NAME = "dNSName"
PKCS12_PASSWORD = "pkcs12Password"  # noqa: S105 - a parameter name
ORGANIZATION = "organizationName"
LOCALITY = "localityName"
STATE = "stateOrProvinceName"
COUNTRY = "countryName"


@dataclass(frozen=True)
class ParameterProblem:
    """One parameter that would make Sectigo refuse the order; ``name`` is the Sectigo key."""

    name: str
    message: str


def check_params(
    params: Mapping[str, str], parameters: Sequence[ProfileParameter]
) -> list[ParameterProblem]:
    """Every problem with ``params`` under a profile: missing, unknown, or failing the pattern.

    A pattern that is not a valid regular expression is skipped rather than guessed at.
    """
    known = {p.name: p for p in parameters}
    problems = [
        ParameterProblem(name, "is not a parameter of this profile")
        for name in params
        if name not in known
    ]
    for parameter in parameters:
        value = params.get(parameter.name, "")
        if not value:
            if parameter.required:
                problems.append(ParameterProblem(parameter.name, "is required by the profile"))
            continue
        if not parameter.validation_pattern:
            continue
        try:
            matches = re.fullmatch(parameter.validation_pattern, value) is not None
        except re.error:
            continue
        if not matches:
            hint = parameter.message or f"must match {parameter.validation_pattern}"
            problems.append(ParameterProblem(parameter.name, hint))
    return problems


def only_profile_params(
    params: Mapping[str, str], parameters: Sequence[ProfileParameter]
) -> dict[str, str]:
    """Keep the non-empty values the profile knows; Sectigo refuses unknown or empty ones."""
    names = {p.name for p in parameters}
    return {k: v for k, v in params.items() if k in names and v}
