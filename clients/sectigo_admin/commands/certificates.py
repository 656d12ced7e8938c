"""Managing issued certificates: ``find`` them by name or serial, ``revoke`` them."""

from __future__ import annotations

from typing import Any

import click

from sectigo_admin import wire
from sectigo_admin.context import Settings, open_client
from sectigo_admin.errors import usage_error
from sectigo_admin.output import emit, say
from sectigo_svc.sectigo import RevocationReason, parse_reason
from sectigo_svc.sectigo.errors import InvalidReason


class ReasonType(click.ParamType[RevocationReason]):
    """An RFC 5280 reason by name or code, any case and spacing; 7 (unused) is refused."""

    name = "reason"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> RevocationReason:
        if isinstance(value, RevocationReason):
            return value
        try:
            return parse_reason(str(value))
        except InvalidReason as exc:
            self.fail(str(exc), param, ctx)


@click.command()
@click.option("--common-name", "-n", default="", help="Exact common name.")
@click.option("--serial-number", "-s", default="", help="Serial number (hex, any case).")
@click.pass_obj
def find(settings: Settings, common_name: str, serial_number: str) -> None:
    """Find certificates by common name and/or serial number."""
    if not common_name.strip() and not serial_number.strip():
        raise usage_error("give --common-name/-n or --serial-number/-s")
    result = open_client(settings).find(
        common_name=common_name.strip(), serial_number=serial_number.strip()
    )
    emit(wire.find_result(result))


@click.command()
@click.option(
    "--profile",
    "-p",
    "profile_id",
    type=click.IntRange(min=0),
    required=True,
    help="Id of the profile that issued the certificate.",
)
@click.option(
    "--reason",
    "-r",
    type=ReasonType(),
    default="unspecified",
    show_default=True,
    help="RFC 5280 reason, e.g. 'key compromise' or 'cessation of operation' (7 is refused).",
)
@click.option("--serial-number", "-s", required=True, help="Serial number of the certificate.")
@click.pass_obj
def revoke(
    settings: Settings, profile_id: int, reason: RevocationReason, serial_number: str
) -> None:
    """Revoke a certificate by serial number."""
    open_client(settings).revoke(profile_id, serial_number, reason)
    say(f"revoked certificate {serial_number.strip()} (reason: {reason.label})")
