"""Subjects over RFC 5280's upper bounds (CN, O and OU 64 characters, L and ST 128): Sectigo answers
500 and records no batch, on both ways of ordering. Values the profile's published patterns refuse
are still rejected batches (test_batches); these are values the patterns let through."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from tests.emulator.helpers import (
    AUTHORITY_1,
    Api,
    Management,
    assert_error,
    new_key,
    server_params,
)

FAULT = -1
LONG_NAME = "a" * 53 + ".example.com"  # 65 characters, a valid DNS name
NAME_64 = "a" * 52 + ".example.com"


def _csr(attributes: list[tuple[x509.ObjectIdentifier, str]], dns_names: list[str]) -> bytes:
    """A CSR with these subject attributes, however long (the builder's own checks are off)."""
    name = x509.Name([x509.NameAttribute(oid, value, _validate=False) for oid, value in attributes])
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
    )
    return builder.sign(new_key(), hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_a_65_character_common_name_is_a_500_and_no_batch(api: Api, mgmt: Management) -> None:
    response = api.create_batch(server_params(LONG_NAME), authority_id=AUTHORITY_1)

    assert_error(response, 500, FAULT)
    assert mgmt.batches() == []


def test_a_64_character_common_name_is_ordered(api: Api) -> None:
    response = api.create_batch(server_params(NAME_64), authority_id=AUTHORITY_1)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("attributes", "dns_names"),
    [
        ([(NameOID.COMMON_NAME, LONG_NAME)], [LONG_NAME]),
        ([], [LONG_NAME, "short.example.com"]),  # the first DNS name stands in for the CN
        ([(NameOID.COMMON_NAME, "ok.example.com"), (NameOID.ORGANIZATION_NAME, "O" * 65)], []),
        (
            [(NameOID.COMMON_NAME, "ok.example.com"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "U" * 65)],
            [],
        ),
        ([(NameOID.COMMON_NAME, "ok.example.com"), (NameOID.LOCALITY_NAME, "L" * 129)], []),
        (
            [(NameOID.COMMON_NAME, "ok.example.com"), (NameOID.STATE_OR_PROVINCE_NAME, "S" * 129)],
            [],
        ),
    ],
    ids=["cn-65", "first-san-65-no-cn", "o-65", "ou-65", "l-129", "st-129"],
)
def test_a_csr_subject_over_the_bounds_is_a_500_and_no_batch(
    api: Api,
    mgmt: Management,
    attributes: list[tuple[x509.ObjectIdentifier, str]],
    dns_names: list[str],
) -> None:
    response = api.upload(_csr(attributes, dns_names or ["ok.example.com"]))

    assert_error(response, 500, FAULT)
    assert mgmt.batches() == []


def test_a_csr_subject_at_the_bounds_is_ordered(api: Api) -> None:
    attributes = [
        (NameOID.COMMON_NAME, NAME_64),
        (NameOID.ORGANIZATION_NAME, "O" * 64),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "U" * 64),
        (NameOID.LOCALITY_NAME, "L" * 128),
        (NameOID.STATE_OR_PROVINCE_NAME, "S" * 128),
    ]

    response = api.upload(_csr(attributes, [NAME_64, LONG_NAME]))

    assert response.status_code == 200, response.text
