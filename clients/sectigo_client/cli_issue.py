"""``sectigo-ca issue``: request a certificate, optionally wait for it and download it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from sectigo_client import cli_output as show
from sectigo_client import files, keys
from sectigo_client.cli_session import Session, pass_session
from sectigo_client.client import CertificateAuthorityClient, new_request_id
from sectigo_client.errors import (
    AlreadyExists,
    CertificateAuthorityError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from sectigo_client.models import CertificateRecord, RequestState, Subject

# The service said no and recorded nothing, so a retry would be a new request anyway. Any other
# failure (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...) may have come after the request was
# recorded: it may still be issued.
_REFUSALS: tuple[type[CertificateAuthorityError], ...] = (
    InvalidArgument,
    AlreadyExists,
    PermissionDenied,
    Unauthenticated,
    FailedPrecondition,
    ResourceExhausted,
    NotFound,
)


@click.command()
@click.option(
    "--csr",
    "csr_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Issue for this PEM CSR (it carries the names and subject).",
)
@click.option("--new-key", is_flag=True, help="Make a key and CSR here; the key goes to --out.")
@click.option(
    "--key-type",
    type=click.Choice(["ec", "rsa"]),
    default="ec",
    show_default=True,
    help="Kind of key --new-key makes (EC P-256 or RSA 2048).",
)
@click.option("--common-name", "-n", help="The certificate's common name (a DNS name).")
@click.option("--dns", multiple=True, help="A further DNS name; repeatable.")
@click.option("--organization", default="", help="Subject O.")
@click.option("--locality", default="", help="Subject L.")
@click.option("--state", default="", help="Subject ST.")
@click.option("--country", default="", help="Subject C (two letters).")
@click.option("--request-id", help="Idempotency key; by default a random one, shown on stderr.")
@click.option(
    "--authority-id",
    type=click.IntRange(min=0),
    default=0,
    help="Sectigo authority; 0 for the service's default.",
)
@click.option("--wait", is_flag=True, help="Wait until the request is finished.")
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds --wait waits.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Wait, then download the certificate into this directory.",
)
@click.option("--include-key", is_flag=True, help="With --out: also write a key made by Sectigo.")
@pass_session
def issue(
    session: Session,
    csr_file: Path | None,
    new_key: bool,
    key_type: str,
    common_name: str | None,
    dns: tuple[str, ...],
    organization: str,
    locality: str,
    state: str,
    country: str,
    request_id: str | None,
    authority_id: int,
    wait: bool,
    wait_timeout: float,
    out: Path | None,
    include_key: bool,
) -> None:
    """Request a certificate.

    For a CSR (--csr), for a key made here (--new-key, kept in --out), or for a key made by
    Sectigo (--common-name alone). --wait follows it; --out also downloads it.
    """
    subject = Subject(organization, locality, state, country)
    if csr_file is not None and (new_key or common_name or dns or subject != Subject()):
        raise click.UsageError("--csr carries the names and subject: give it alone")
    if csr_file is None and not common_name:
        raise click.UsageError("give --csr FILE, or --common-name (with --new-key or not)")
    if include_key and (csr_file is not None or new_key):
        raise click.UsageError("--include-key is for keys made by Sectigo; yours is yours")
    if include_key and out is None:
        raise click.UsageError("--include-key needs --out DIR to write the key to")
    if new_key and out is None:
        raise click.UsageError("--new-key needs --out DIR to keep the key in")
    if new_key and out is not None and (out / files.KEY_FILE).exists():
        raise click.UsageError(f"{out / files.KEY_FILE} exists; choose another --out")
    csr = _read_csr(csr_file) if csr_file is not None else ""
    client = session.client()
    if request_id is None:
        # Made here, not by the client, so that it is known before anything is sent: after an
        # unclear failure it is the only way to retry the very same request.
        request_id = new_request_id()
        click.echo(f"request id: {request_id}", err=True)
    unclear = f"request {request_id} may have been recorded: retry with --request-id {request_id}"
    key_pem = ""
    if csr_file is not None:
        with _named_if_unclear(unclear):
            record = client.issue(csr=csr, request_id=request_id, authority_id=authority_id)
    elif new_key:
        assert common_name and out is not None  # checked above; narrows the types
        made = keys.new_key(common_name, dns, subject, keys.KeyType(key_type))
        key_pem = made.private_key_pem
        kept = out / files.KEY_FILE
        unclear = (
            f"request {request_id} may have been recorded and its key stays in {kept}: "
            f"see sectigo-ca status {request_id}"
        )
        with _key_kept(kept, key_pem), _named_if_unclear(unclear):
            record = client.issue(
                csr=made.csr_pem, request_id=request_id, authority_id=authority_id
            )
    else:
        with _named_if_unclear(unclear):
            record = client.issue(
                common_name=common_name,
                dns_names=dns,
                subject=subject,
                request_id=request_id,
                authority_id=authority_id,
            )
    saved = None
    if wait or out is not None:
        record = _wait(client, record.request_id, wait_timeout)
        if out is not None:
            saved = client.download_to(
                record.request_id, out, private_key=key_pem or None, include_private_key=include_key
            )
    human = show.record(record) + (f"\n\n{show.saved(saved)}" if saved else "")
    session.emit(record, lambda _: human, {"request": record, "files": saved})


def _read_csr(path: Path) -> str:
    """The CSR file's text; a file that is not text (a binary, a DER CSR) is a usage error."""
    try:
        return path.read_text()
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{path} is not a PEM CSR (not text)", param_hint="--csr") from exc


@contextlib.contextmanager
def _key_kept(path: Path, key_pem: str) -> Iterator[None]:
    """Write the new key to ``path`` (0600) before the request is sent, so that it is never
    lost. It is removed again only if the service refused the request: after any other failure
    the request may have been recorded, and its certificate would be useless without the key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, key_pem.encode(), files.PRIVATE_MODE)
    try:
        yield
    except _REFUSALS:
        path.unlink()
        raise


@contextlib.contextmanager
def _named_if_unclear(note: str) -> Iterator[None]:
    """Add ``note`` (naming the request id, saying how to go on) to the error line of a failure
    that may have come after the service recorded the request: see :data:`_REFUSALS`."""
    try:
        yield
    except _REFUSALS:
        raise
    except CertificateAuthorityError as exc:
        exc.add_note(note)
        raise


def _wait(client: CertificateAuthorityClient, request_id: str, timeout: float) -> CertificateRecord:
    """Wait with progress on stderr; anything but READY fails the command (exit 1)."""
    progress = show.Progress(sys.stderr, sys.stderr.isatty())
    try:
        record = client.wait(request_id, timeout, on_change=progress)
    finally:
        progress.finish()
    if record.state is not RequestState.READY:
        raise click.ClickException(
            f"request {request_id} ended {record.state.name}: {record.reason}"
        )
    return record
