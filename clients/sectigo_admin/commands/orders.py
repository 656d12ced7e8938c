"""Ordering certificates: ``create`` (Sectigo generates the key) and ``upload`` (CSRs).

Every order spends a paid licence, so ``create`` checks its parameters against the rules the
profile publishes before sending anything, and sends only the parameters the profile takes, with no
empty values (the Go CLI sent empty subject fields and never the organization).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

import click

from sectigo_admin import wire
from sectigo_admin.context import Settings, open_client
from sectigo_admin.errors import CommandError
from sectigo_admin.output import emit, note, warn
from sectigo_svc.sectigo.models import Authority
from sectigo_svc.sectigo.params import (
    COMMON_NAME,
    COUNTRY,
    DNS_NAME,
    LOCALITY,
    ORGANIZATION,
    PKCS12_PASSWORD,
    STATE,
    check_params,
    only_profile_params,
)

# Letters and digits only, so the password survives shells and `-passin pass:` unquoted;
# 24 of them carry about 143 bits.
PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 24

# Which option sets each parameter, to name it in messages.
OPTION_OF = {
    COMMON_NAME: "--domain/-d",
    DNS_NAME: "--domain/-d and --dns",
    PKCS12_PASSWORD: "--password/-p",
    ORGANIZATION: "--organization/-o",
    LOCALITY: "--locality/-l",
    STATE: "--state/-s",
    COUNTRY: "--country/-c",
}


@click.command()
@click.option(
    "--authority",
    "-a",
    "authority_or_profile",
    type=click.IntRange(min=0),
    required=True,
    help="Authority or profile id (an authority id wins; else the authority of that profile).",
)
@click.option("--domain", "-d", required=True, help="The common name, also the first DNS name.")
@click.option(
    "--password",
    "-p",
    "pkcs12_password",
    default="",
    envvar="SECTIGO_PKCS12_PASSWORD",
    help="Password of the PKCS#12 file (or SECTIGO_PKCS12_PASSWORD, kept off argv); a random "
    "one is generated and printed if omitted.",
)
@click.option("--batch-name", "-b", default="", help="Default: 'new certs for DOMAIN'.")
@click.option("--dns", "extra_dns", multiple=True, help="Another DNS name (repeatable).")
@click.option("--organization", "-o", default="", help="Subject O, for profiles that take it.")
@click.option("--locality", "-l", default="", help="Subject L, for profiles that take it.")
@click.option("--state", "-s", default="", help="Subject ST, for profiles that take it.")
@click.option(
    "--country", "-c", default="", help="Subject C (two letters), if the profile takes it."
)
@click.pass_obj
def create(
    settings: Settings,
    authority_or_profile: int,
    domain: str,
    pkcs12_password: str,
    batch_name: str,
    extra_dns: tuple[str, ...],
    organization: str,
    locality: str,
    state: str,
    country: str,
) -> None:
    """Order one certificate whose key Sectigo generates, as a password-protected PKCS#12."""
    client = open_client(settings)
    authority = resolve_authority(client.authorities(), authority_or_profile)
    parameters = client.profile_parameters(authority.profile_id)
    password = pkcs12_password or generate_password()
    wanted = {
        COMMON_NAME: domain.strip(),
        DNS_NAME: dns_names([domain, *extra_dns]),
        PKCS12_PASSWORD: password,
        ORGANIZATION: organization.strip(),
        LOCALITY: locality.strip(),
        STATE: state.strip(),
        COUNTRY: country.strip(),
    }
    params = only_profile_params(wanted, parameters)
    for name in sorted(set(wanted) - set(params)):
        if wanted[name]:
            warn(f"{OPTION_OF[name]} ignored: profile {authority.profile_id} has no {name}")
    problems = check_params(params, parameters)
    if problems:
        details = "; ".join(
            f"{p.name} ({OPTION_OF.get(p.name, 'no option sets it')}): {p.message}"
            for p in problems
        )
        raise CommandError(
            f"profile {authority.profile_id} would refuse this order, nothing was sent: {details}"
        )
    name = batch_name.strip() or f"new certs for {domain.strip()}"
    try:
        batch = client.create_single_cert_batch(authority.id, name, params)
    finally:
        if not pkcs12_password:
            note(f"generated PKCS#12 password (keep it, it opens the .p12): {password}")
    emit(wire.batch(batch))


@click.command()
@click.argument("csr_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--profile", "-p", "profile_id", type=click.IntRange(min=0), required=True, help="Profile id."
)
@click.option("--batch-name", "-b", default="", help="Names the batch, to find it again.")
@click.pass_obj
def upload(settings: Settings, csr_file: Path, profile_id: int, batch_name: str) -> None:
    """Order certificates for the CSRs in CSR_FILE: PEM (one or more requests) or a ZIP of them."""
    data = csr_file.read_bytes()
    batch = open_client(settings).upload_csr_batch(
        profile_id, data, filename=csr_file.name, batch_name=batch_name.strip() or None
    )
    emit(wire.batch(batch))


def resolve_authority(authorities: Sequence[Authority], wanted: int) -> Authority:
    """The authority with id ``wanted``, else the one issuing under profile ``wanted``.

    The original documentation passes a profile id to ``-a`` while the API wants an authority id;
    both are accepted, and an authority id wins because that is what the option is named for.
    """
    for authority in authorities:
        if authority.id == wanted:
            return authority
    for authority in authorities:
        if authority.profile_id == wanted:
            return authority
    known = ", ".join(
        f"authority {a.id} (profile {a.profile_id} {a.profile_name})" for a in authorities
    )
    raise CommandError(
        f"no authority or profile {wanted} for this account; it has: {known or 'none'}"
    )


def dns_names(names: Iterable[str]) -> str:
    """Non-empty names in order, duplicates (any case) removed, one per line as Sectigo wants."""
    kept: dict[str, str] = {}
    for name in names:
        cleaned = name.strip()
        if cleaned:
            kept.setdefault(cleaned.lower(), cleaned)
    return "\n".join(kept.values())


def generate_password() -> str:
    """A PKCS#12 password from the operating system's CSPRNG."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
