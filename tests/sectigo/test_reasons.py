"""RFC 5280 reason parsing: names as in the API reference, all whitespace stripped, 7 refused."""

from __future__ import annotations

import pytest

from sectigo_svc.sectigo.errors import InvalidReason
from sectigo_svc.sectigo.reasons import RevocationReason, parse_reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", RevocationReason.UNSPECIFIED),
        ("   ", RevocationReason.UNSPECIFIED),
        ("unspecified", RevocationReason.UNSPECIFIED),
        ("keycompromise", RevocationReason.KEY_COMPROMISE),
        ("Key Compromise", RevocationReason.KEY_COMPROMISE),
        ("KEY\tCOMPROMISE\n", RevocationReason.KEY_COMPROMISE),
        ("ca compromise", RevocationReason.CA_COMPROMISE),
        ("Affiliation Changed", RevocationReason.AFFILIATION_CHANGED),
        ("superseded", RevocationReason.SUPERSEDED),
        ("Cessation Of Operation", RevocationReason.CESSATION_OF_OPERATION),
        ("certificate\u00a0hold", RevocationReason.CERTIFICATE_HOLD),
        ("remove from crl", RevocationReason.REMOVE_FROM_CRL),
        ("privilege withdrawn", RevocationReason.PRIVILEGE_WITHDRAWN),
        ("AA Compromise", RevocationReason.AA_COMPROMISE),
        ("4", RevocationReason.SUPERSEDED),
        ("10", RevocationReason.AA_COMPROMISE),
    ],
)
def test_reason_names_and_codes(text: str, expected: RevocationReason) -> None:
    assert parse_reason(text) is expected


@pytest.mark.parametrize("text", ["value 7 is not used", "Value7IsNotUsed", "7", " 7 "])
def test_reason_seven_is_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidReason, match="7 is not used by RFC 5280"):
        parse_reason(text)


@pytest.mark.parametrize("text", ["compromised", "key-compromise", "11", "-1", "key_compromise"])
def test_unknown_reasons_are_refused_listing_the_accepted_ones(text: str) -> None:
    with pytest.raises(InvalidReason, match="expected one of: unspecified, key compromise"):
        parse_reason(text)


def test_codes_and_labels_match_rfc_5280() -> None:
    assert [int(r) for r in RevocationReason] == [0, 1, 2, 3, 4, 5, 6, 8, 9, 10]
    assert RevocationReason.CESSATION_OF_OPERATION.label == "cessation of operation"
