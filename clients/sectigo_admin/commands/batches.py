"""Following an order: ``batches`` (detail, status, processing counts) and ``download``.

The download is written by the client under a safe base name inside the chosen directory only
(the Go client joined a server-chosen name into the path and saved error pages as ZIPs).
"""

from __future__ import annotations

import shlex
import zipfile
from pathlib import Path

import click

from sectigo_admin import wire
from sectigo_admin.context import Settings, open_client
from sectigo_admin.errors import CommandError, usage_error
from sectigo_admin.extract import write_pem_files
from sectigo_admin.output import emit, say
from sectigo_svc.sectigo import open_pkcs12_zip
from sectigo_svc.sectigo.archive import PKCS12_SUFFIXES

BATCH_ID = click.option(
    "--id", "-i", "batch_id", type=click.IntRange(min=0), required=True, help="The batch id."
)


@click.command()
@BATCH_ID
@click.option(
    "--status",
    "-s",
    "show_status",
    is_flag=True,
    help="The text status and the processing counts.",
)
@click.option("--info", "-I", "show_info", is_flag=True, help="The processing counts only.")
@click.pass_obj
def batches(settings: Settings, batch_id: int, show_status: bool, show_info: bool) -> None:
    """Show a batch: its detail, or its status (-s), or its processing counts (-I)."""
    client = open_client(settings)
    if show_status:
        emit(wire.batch_status(client.batch_status(batch_id), client.processing_info(batch_id)))
    elif show_info:
        emit(wire.processing(client.processing_info(batch_id)))
    else:
        emit(wire.batch(client.batch_detail(batch_id)))


@click.command()
@BATCH_ID
@click.option(
    "--outdir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    help="Directory for the ZIP (created if missing). Default: the current directory.",
)
@click.option(
    "--extract",
    "-x",
    is_flag=True,
    help="Also write cert.pem, chain.pem and key.pem (0600) into the directory.",
)
@click.option(
    "--password",
    "-p",
    "pkcs12_password",
    default="",
    envvar="SECTIGO_PKCS12_PASSWORD",
    help="PKCS#12 password, for --extract (or SECTIGO_PKCS12_PASSWORD, kept off argv).",
)
@click.pass_obj
def download(
    settings: Settings, batch_id: int, outdir: Path, extract: bool, pkcs12_password: str
) -> None:
    """Download a batch's ZIP into a directory, optionally extracting the key and certificates."""
    if extract and not pkcs12_password:
        raise usage_error("--extract needs the PKCS#12 password (--password/-p)")
    if pkcs12_password and not extract:
        raise usage_error("--password/-p is only used with --extract")
    client = open_client(settings)
    outdir.mkdir(parents=True, exist_ok=True)
    path = client.download(batch_id, outdir)
    say(f"downloaded batch {batch_id} to {path}")
    unzip = f"unzip {shlex.quote(str(path))} -d {shlex.quote(str(outdir))}"
    keys = _pkcs12_entries(path)
    if keys:
        target = shlex.quote(str(outdir / keys[0][0]))
        if keys[0][1]:
            say(
                f"{unzip}, then read it with: openssl pkcs12 -legacy -in {target} -nodes "
                "(OpenSSL 3 opens RC2/RC4-encrypted files only with -legacy; --extract needs "
                "no openssl)"
            )
        else:
            say(f"{unzip}, then read it with: openssl pkcs12 -in {target} -nodes")
    else:
        say(f"{unzip} for the PEM certificates")
    if extract:
        written = write_pem_files(outdir, open_pkcs12_zip(path, pkcs12_password))
        say("wrote " + ", ".join(str(p) for p in written) + " (key.pem is 0600)")


# DER of the PKCS#12 PBE algorithm ids OpenSSL 3 keeps in its legacy provider:
# pbeWithSHAAnd128BitRC4, ...40BitRC4 (1.2.840.113549.1.12.1.1, .2), ...128BitRC2-CBC,
# ...40BitRC2-CBC (.5, .6). Algorithm identifiers are not encrypted, so a byte search finds them.
_LEGACY_PBE = tuple(bytes.fromhex("060a2a864886f70d010c01") + bytes([n]) for n in (1, 2, 5, 6))


def needs_legacy(p12: bytes) -> bool:
    """Whether OpenSSL 3 needs ``-legacy`` to open this PKCS#12 (Sectigo's own files do)."""
    return any(oid in p12 for oid in _LEGACY_PBE)


def _pkcs12_entries(path: Path) -> list[tuple[str, bool]]:
    """The PKCS#12 files in the ZIP and whether each needs ``-legacy``, for the openssl hint
    (a CSR batch holds none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [
                (name, needs_legacy(archive.read(name)))
                for name in archive.namelist()
                if name.lower().endswith(PKCS12_SUFFIXES)
            ]
    except zipfile.BadZipFile as exc:
        raise CommandError(f"{path}: not a readable ZIP archive ({exc})") from exc
