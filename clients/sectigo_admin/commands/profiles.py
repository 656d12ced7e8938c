"""``sectigo profiles`` (also ``profile``, as the original documentation spells it)."""

from __future__ import annotations

import click

from sectigo_admin import wire
from sectigo_admin.context import Settings, open_client
from sectigo_admin.errors import usage_error
from sectigo_admin.output import emit


@click.command()
@click.option("--id", "-i", "profile_id", type=click.IntRange(min=0), help="A profile's id.")
@click.option(
    "--params",
    "-p",
    is_flag=True,
    help="With --id: the parameters the profile takes and their validation rules.",
)
@click.pass_obj
def profiles(settings: Settings, profile_id: int | None, params: bool) -> None:
    """List the profiles, or show one profile (-i) or its parameters (-i ID -p)."""
    if params and profile_id is None:
        raise usage_error("must specify id to get profile params (-i ID --params)")
    client = open_client(settings)
    if profile_id is None:
        emit([wire.profile(p) for p in client.profiles()])
    elif params:
        emit([wire.profile_parameter(p) for p in client.profile_parameters(profile_id)])
    else:
        emit(wire.profile_detail(client.profile_detail(profile_id)))
