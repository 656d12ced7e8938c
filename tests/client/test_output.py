"""What sectigo-ca prints: JSON without secrets, tables, one-line errors, progress."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path

import grpc

from sectigo_client import Certificate, InvalidArgument, RequestState, SavedFiles, Unavailable
from sectigo_client import cli_output as show
from sectigo_client.cli_session import exit_code
from sectigo_client.errors import CertificateAuthorityError
from tests.client.test_waiting import BASE

STAMP = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_json_leaves_out_secret_fields() -> None:
    certificate = Certificate(
        certificate_pem="CERT",
        chain_pem="CHAIN",
        serial_number="0A",
        not_before=STAMP,
        not_after=None,
        sha256_fingerprint="ab",
        sha1_fingerprint="cd",
        pkcs12=b"\x00secret",
        pkcs12_password="hunter22",
        private_key_pem="-----BEGIN PRIVATE KEY-----",
    )

    data = json.loads(show.to_json(certificate))

    assert data["not_before"] == "2030-01-02T03:04:05+00:00"
    assert data["not_after"] is None
    assert not {"pkcs12", "pkcs12_password", "private_key_pem"} & data.keys()
    record = json.loads(show.to_json(BASE, lines=True))
    assert record["state"] == "PENDING" and record["dns_names"] == ["w.example.com"]
    assert "pkcs12_password" not in record


def test_tables_align_and_mark_empty_cells() -> None:
    text = show.table(["A", "LONGER"], [("x", ""), ("wide value", STAMP)])

    assert text.splitlines() == [
        "A           LONGER",
        "x           -",
        "wide value  2030-01-02 03:04:05Z",
    ]
    assert show.table(["A"], []) == "(none)"


def test_saved_files_are_listed() -> None:
    saved = SavedFiles(Path("d"), Path("d/cert.pem"), Path("d/chain.pem"), serial_number="0A")

    assert show.saved(saved).splitlines() == [
        "certificate 0A written to d:",
        "  d/cert.pem",
        "  d/chain.pem",
    ]


def test_errors_are_one_line_with_the_field_or_retry_hint() -> None:
    invalid = InvalidArgument("request_id: must be\nshort", field="request_id")
    busy = Unavailable("Sectigo is unavailable", retry_after=2.5)

    assert show.error(invalid) == "INVALID_ARGUMENT: request_id: must be short (field: request_id)"
    assert show.error(busy) == "UNAVAILABLE: Sectigo is unavailable (retry after 2.5 s)"
    assert json.loads(show.error_json(busy)) == {
        "error": {"code": "UNAVAILABLE", "message": "Sectigo is unavailable", "retry_after": 2.5}
    }
    assert [exit_code(invalid), exit_code(busy)] == [2, 4]
    assert exit_code(CertificateAuthorityError("?", grpc.StatusCode.ABORTED)) == 1


def test_notes_added_to_an_error_end_its_line_and_are_listed_in_json() -> None:
    lost = Unavailable("reply lost")
    lost.add_note("request r-1 may have been recorded")

    assert show.error(lost) == "UNAVAILABLE: reply lost (request r-1 may have been recorded)"
    assert json.loads(show.error_json(lost))["error"]["notes"] == [
        "request r-1 may have been recorded"
    ]
    assert "notes" not in json.loads(show.error_json(Unavailable("down")))["error"]


def test_progress_redraws_one_line_on_a_terminal() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 1.0, 12.0])
    progress = show.Progress(stream, interactive=True, clock=lambda: next(ticks))

    progress(BASE)
    progress(dataclasses.replace(BASE, state=RequestState.READY))
    progress.finish()

    assert stream.getvalue() == "\rr-1: PENDING after 1 s\rr-1: READY after 12 s \n"


def test_progress_prints_plain_lines_elsewhere() -> None:
    stream = io.StringIO()
    progress = show.Progress(stream, interactive=False)

    progress(BASE)
    progress.finish()

    assert stream.getvalue() == "r-1  PENDING\n"
