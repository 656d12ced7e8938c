"""What the account may spend: ``authorities``, ``licenses`` and ``organization``."""

from __future__ import annotations

import click

from sectigo_admin import wire
from sectigo_admin.context import Settings, open_client
from sectigo_admin.output import emit


@click.command()
@click.option(
    "--balances",
    "-b",
    is_flag=True,
    help="Also print each authority's available balance (one call per authority).",
)
@click.pass_obj
def authorities(settings: Settings, balances: bool) -> None:
    """List the authorities this user may order from; profileId is what create -a takes."""
    client = open_client(settings)
    allowed = client.authorities()
    emit([wire.authority(a) for a in allowed])
    if balances:
        emit({str(a.id): client.balance_available(a.id) for a in allowed})


@click.command()
@click.pass_obj
def licenses(settings: Settings) -> None:
    """Licences ordered and issued across all authorities."""
    emit(wire.licenses(open_client(settings).licenses()))


@click.command()
@click.pass_obj
def organization(settings: Settings) -> None:
    """The current user's organization."""
    emit(wire.organization(open_client(settings).organization()))
