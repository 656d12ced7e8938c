"""sectigo-ca through CliRunner against a real service: every command's happy path, its denial
and invalid-input paths, and the exit codes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import grpc
import pytest

from sectigo_client import (
    AlreadyExists,
    CertificateAuthorityClient,
    CertificateAuthorityError,
    CertificateRecord,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    files,
)
from sectigo_svc.devcerts import DevCerts
from tests.client.conftest import Cli
from tests.conftest import EmulatorFactory
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import make_csr, openssl

DENIED, UNAVAILABLE, NOT_FOUND, USAGE, FAILURE = 3, 4, 5, 2, 1


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def issue_ready(cli: Cli, common_name: str, *extra: str) -> dict[str, object]:
    """Issue with a key made by Sectigo and wait; the JSON record."""
    result = cli("--json", "issue", "--common-name", common_name, "--wait", *extra)
    assert result.exit_code == 0, result.output
    record: dict[str, object] = json.loads(result.stdout)["request"]
    return record


# issue ---------------------------------------------------------------------------------------


def test_issue_wait_out_writes_the_files_and_shows_progress_lines(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "tls"

    result = cli(
        "issue", "-n", "cli.example.com", "--dns", "www.cli.example.com", "--out", str(out)
    )

    assert result.exit_code == 0, result.output
    assert "state:" in result.stdout and "READY" in result.stdout
    assert f"written to {out}" in result.stdout
    progress = result.stderr.splitlines()
    assert progress[-1].split()[1] == "READY", progress
    assert sorted(p.name for p in out.iterdir()) == [
        "bundle.p12",
        "bundle.p12.password",
        "cert.pem",
        "chain.pem",
    ]
    assert mode(out / "bundle.p12") == 0o600 == mode(out / "bundle.p12.password")
    openssl(
        "pkcs12",
        "-in",
        out / "bundle.p12",
        "-nodes",
        "-passin",
        f"file:{out / 'bundle.p12.password'}",
    )
    assert "hunter" not in result.output and "PRIVATE" not in result.output


def test_issue_new_key_keeps_the_key_here_and_json_parses(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "tls"

    result = cli("--json", "issue", "--new-key", "-n", "nk.example.com", "--wait", "-o", str(out))

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["request"]["state"] == "READY"
    assert data["request"]["key_source"] == "CSR"
    assert data["files"]["key"] == str(out / "key.pem")
    assert mode(out / "key.pem") == 0o600
    from_key = openssl("pkey", "-in", out / "key.pem", "-pubout")
    assert from_key == openssl("x509", "-in", out / "cert.pem", "-noout", "-pubkey")


def test_issue_from_a_csr_file_returns_at_once(cli: Cli, tmp_path: Path) -> None:
    csr = tmp_path / "req.csr"
    csr.write_text(make_csr("csr.example.com", ["csr.example.com"]).pem)

    result = cli("--json", "issue", "--csr", str(csr), "--request-id", "from-csr-1")

    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["request"]
    assert (record["request_id"], record["key_source"]) == ("from-csr-1", "CSR")
    assert json.loads(result.stdout)["files"] is None


def test_issue_shows_the_request_id_it_makes_before_sending(cli: Cli) -> None:
    result = cli("--json", "issue", "-n", "rid.example.com")

    assert result.exit_code == 0, result.output
    shown = result.stderr.splitlines()[0].removeprefix("request id: ")
    assert json.loads(result.stdout)["request"]["request_id"] == shown
    assert "request id" not in cli("issue", "-n", "rid.example.com", "--request-id", "r-9").stderr


def test_issue_denied_is_exit_3_in_one_line_after_the_request_id(cli: Cli) -> None:
    result = cli("issue", "-n", "denied.example.com", client="verification")

    assert result.exit_code == DENIED
    shown, error = result.stderr.splitlines()
    assert shown.startswith("request id: ")
    assert error.startswith("Error: PERMISSION_DENIED: ")
    assert "may have been recorded" not in error, "a refusal is no unclear failure"


@pytest.mark.parametrize(
    ("error", "unclear"),
    [
        (InvalidArgument("bad csr"), False),
        (AlreadyExists("taken", grpc.StatusCode.ALREADY_EXISTS), False),
        (PermissionDenied("no", grpc.StatusCode.PERMISSION_DENIED), False),
        (Unauthenticated("who?", grpc.StatusCode.UNAUTHENTICATED), False),
        (FailedPrecondition("no", grpc.StatusCode.FAILED_PRECONDITION), False),
        (ResourceExhausted("no licences", grpc.StatusCode.RESOURCE_EXHAUSTED), False),
        (NotFound("no authority 9", grpc.StatusCode.NOT_FOUND), False),
        (Unavailable("reply lost"), True),
        (DeadlineExceeded("slow", grpc.StatusCode.DEADLINE_EXCEEDED), True),
        (Internal("oops", grpc.StatusCode.INTERNAL), True),
        (CertificateAuthorityError("reset", grpc.StatusCode.UNKNOWN), True),
    ],
)
def test_issue_new_key_drops_the_key_only_when_the_service_refused(
    pki: DevCerts,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: CertificateAuthorityError,
    unclear: bool,
) -> None:
    def fail(*args: object, **kwargs: object) -> CertificateRecord:
        raise error

    monkeypatch.setattr(CertificateAuthorityClient, "issue", fail)
    out = tmp_path / "tls"

    result = Cli("localhost:1", pki)("issue", "--new-key", "-n", "x.example.com", "-o", str(out))

    request_id = result.stderr.splitlines()[0].removeprefix("request id: ")
    note = (
        f"(request {request_id} may have been recorded and its key stays in {out}/key.pem: "
        f"see sectigo-ca status {request_id})"
    )
    assert result.exit_code != 0
    assert (out / "key.pem").exists() is unclear
    assert result.stderr.rstrip().endswith(note) is unclear, result.stderr


def test_an_unclear_failure_names_the_request_id_to_retry_with(pki: DevCerts) -> None:
    cli = Cli("localhost:1", pki)

    plain = cli("--timeout", "1", "issue", "-n", "x.example.com")
    as_json = cli("--timeout", "1", "--json", "issue", "-n", "x.example.com")

    assert plain.exit_code == UNAVAILABLE == as_json.exit_code
    shown, error = plain.stderr.splitlines()
    request_id = shown.removeprefix("request id: ")
    assert error.endswith(
        f"(request {request_id} may have been recorded: retry with --request-id {request_id})"
    )
    shown, error = as_json.stderr.splitlines()
    request_id = shown.removeprefix("request id: ")
    assert json.loads(error)["error"]["notes"] == [
        f"request {request_id} may have been recorded: retry with --request-id {request_id}"
    ]


def test_issue_refused_by_the_service_is_a_usage_error_naming_the_field(cli: Cli) -> None:
    result = cli("issue", "-n", "not a name!")

    assert result.exit_code == USAGE
    assert "(field: server_key.common_name)" in result.stderr


def test_issue_reusing_a_request_id_for_another_body_fails(cli: Cli) -> None:
    assert cli("issue", "-n", "a.example.com", "--request-id", "dup-1").exit_code == 0

    result = cli("--json", "issue", "-n", "b.example.com", "--request-id", "dup-1")

    assert result.exit_code == FAILURE
    assert json.loads(result.stderr)["error"]["code"] == "ALREADY_EXISTS"


def test_issue_wait_timeout_is_exit_4(service: Service, cli: Cli) -> None:
    service.sectigo.settings(stuck=True)

    result = cli("issue", "-n", "slow.example.com", "--wait", "--wait-timeout", "0.5")

    assert result.exit_code == UNAVAILABLE
    assert "did not finish within 0.5 s" in result.stderr


def test_a_rejected_request_fails_the_wait_with_its_reason(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(reject_common_names=("^refused",)))
    cli = Cli(service.target, service.pki)

    result = cli("issue", "-n", "refused.example.com", "--wait")

    assert result.exit_code == FAILURE
    assert "ended REJECTED" in result.stderr


def test_a_key_that_does_not_match_the_download_is_one_line_exit_1(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "belongs_to", lambda key, certificate: False)
    out = tmp_path / "tls"

    result = cli("issue", "--new-key", "-n", "mismatch.example.com", "-o", str(out))

    assert result.exit_code == FAILURE
    assert result.stderr.splitlines()[-1] == (
        "Error: the private key does not belong to the downloaded certificate"
    )
    assert "Traceback" not in result.output
    assert (out / "key.pem").exists(), "the request was issued: its key stays"


def test_a_subject_field_refused_by_the_service_is_a_usage_error(cli: Cli) -> None:
    result = cli("issue", "-n", "x.example.com", "--country", "USA", "--wait")

    assert result.exit_code == USAGE
    assert "(field: server_key.subject.country)" in result.stderr


# status, list, watch -------------------------------------------------------------------------


def test_status_list_and_watch(cli: Cli) -> None:
    record = issue_ready(cli, "read.example.com")
    request_id = str(record["request_id"])

    status = cli("status", request_id)
    status_json = cli("--json", "status", request_id)
    listed = cli("list", "--state", "ready")
    listed_json = cli("--json", "list", "-n", "read.example.com")
    none = cli("list", "--state", "rejected")
    watched = cli("watch", request_id)
    watched_json = cli("--json", "watch", request_id)

    assert status.exit_code == 0 and f"request id:     {request_id}" in status.stdout
    assert json.loads(status_json.stdout)["serial_number"] == record["serial_number"]
    assert listed.stdout.splitlines()[0].split() == [
        "REQUEST",
        "ID",
        "STATE",
        "COMMON",
        "NAME",
        "SERIAL",
        "UPDATED",
    ]
    assert request_id in listed.stdout
    assert [r["request_id"] for r in json.loads(listed_json.stdout)] == [request_id]
    assert none.stdout.strip() == "(none)"
    assert watched.stdout.split()[:2] == [request_id, "READY"]
    assert [json.loads(line)["state"] for line in watched_json.stdout.splitlines()] == ["READY"]


def test_list_all_is_for_admins(cli: Cli) -> None:
    issue_ready(cli, "mine.example.com")

    denied = cli("list", "--all")
    allowed = cli("list", "--all", client="admin")

    assert denied.exit_code == DENIED
    assert allowed.exit_code == 0
    assert "OWNER" in allowed.stdout.splitlines()[0]
    assert "spiffe://sectigo-svc.test/registration" in allowed.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["status", "nope"],
        ["watch", "nope"],
        ["download", "nope", "-o", "unused"],
        ["revoke", "nope"],
        ["profiles", "999"],
    ],
)
def test_unknown_things_are_exit_5(cli: Cli, args: list[str]) -> None:
    result = cli(*args)

    assert result.exit_code == NOT_FOUND, result.output
    assert result.stderr.startswith("Error: NOT_FOUND: ")


# download ------------------------------------------------------------------------------------


def test_download_with_and_without_the_key(cli: Cli, tmp_path: Path) -> None:
    request_id = str(issue_ready(cli, "dl.example.com")["request_id"])

    plain = cli("download", request_id, "-o", str(tmp_path / "a"))
    keyed = cli("--json", "download", request_id, "-o", str(tmp_path / "b"), "--include-key")

    assert plain.exit_code == 0 and not (tmp_path / "a" / "key.pem").exists()
    assert "cert.pem" in plain.stdout
    files = json.loads(keyed.stdout)
    assert files["key"] == str(tmp_path / "b" / "key.pem")
    assert mode(tmp_path / "b" / "key.pem") == 0o600
    openssl("pkey", "-in", tmp_path / "b" / "key.pem", "-noout")
    openssl("x509", "-in", tmp_path / "a" / "cert.pem", "-noout")


def test_download_keeps_the_key_issue_new_key_left_and_drops_another_certificates(
    service: Service, cli: Cli, tmp_path: Path
) -> None:
    service.sectigo.settings(stuck=True)
    out = tmp_path / "tls"
    late = cli(
        "issue", "--new-key", "-n", "late.example.com", "-o", str(out), "--wait-timeout", "0.5"
    )
    request_id = late.stderr.splitlines()[0].removeprefix("request id: ")
    service.sectigo.settings(stuck=False)
    assert cli("watch", request_id).exit_code == 0
    other = str(issue_ready(cli, "other.example.com")["request_id"])

    mine = cli("download", request_id, "-o", str(out))
    kept = openssl("pkey", "-in", out / "key.pem", "-pubout")
    certified = openssl("x509", "-in", out / "cert.pem", "-noout", "-pubkey")
    replaced = cli("download", other, "-o", str(out))

    assert late.exit_code == UNAVAILABLE
    assert mine.exit_code == 0 == replaced.exit_code
    assert kept == certified
    assert "key.pem" not in [p.name for p in out.iterdir()], "it is not the new certificate's"


def test_download_before_ready_is_exit_1_and_of_others_keys_denied(
    service: Service, cli: Cli, tmp_path: Path
) -> None:
    request_id = str(issue_ready(cli, "theirs.example.com")["request_id"])
    service.sectigo.settings(stuck=True)
    pending = json.loads(cli("--json", "issue", "-n", "later.example.com").stdout)["request"]

    early = cli("download", str(pending["request_id"]), "-o", str(tmp_path / "a"))
    others = cli(
        "download",
        request_id,
        "-o",
        str(tmp_path / "b"),
        "--include-key",
        "--owner",
        "spiffe://sectigo-svc.test/registration",
        client="admin",
    )

    assert early.exit_code == FAILURE
    assert early.stderr.startswith("Error: FAILED_PRECONDITION: ")
    assert others.exit_code == DENIED
    assert not (tmp_path / "b").exists()


# find, revoke --------------------------------------------------------------------------------


def test_find_and_revoke(cli: Cli) -> None:
    record = issue_ready(cli, "gone.example.com")
    serial = str(record["serial_number"])

    by_name = cli("find", "-n", "gone.example.com")
    by_serial = cli("--json", "find", "-s", serial.lower())
    revoked = cli("revoke", str(record["request_id"]), "--reason", "keyCompromise")
    after = cli("--json", "find", "-s", serial)

    assert by_name.exit_code == 0 and serial in by_name.stdout and "ISSUED" in by_name.stdout
    assert [c["serial_number"] for c in json.loads(by_serial.stdout)] == [serial]
    assert revoked.exit_code == 0
    assert revoked.stdout.strip() == f"revoked {serial} (request {record['request_id']})"
    assert json.loads(after.stdout)[0]["status"] == "REVOKED"


def test_hold_download_and_release(cli: Cli, tmp_path: Path) -> None:
    record = issue_ready(cli, "held.example.com")
    request_id, serial = str(record["request_id"]), str(record["serial_number"])

    refused = cli("revoke", request_id, "--reason", "removeFromCRL")
    held = cli("revoke", request_id, "--reason", "certificateHold")
    shown = cli("--json", "status", request_id)
    downloaded = cli("download", request_id, "--out", str(tmp_path / "held"))
    released = cli("--json", "revoke", request_id, "--reason", "removeFromCRL")
    after = cli("download", request_id, "--out", str(tmp_path / "released"))

    assert refused.exit_code == FAILURE
    assert refused.stderr.startswith("Error: FAILED_PRECONDITION: ")
    assert held.exit_code == 0, held.output
    assert held.stdout.strip() == f"put {serial} on hold (request {request_id})"
    assert json.loads(shown.stdout)["state"] == "ON_HOLD"
    assert downloaded.exit_code == 0, downloaded.output
    assert "warning: the request is ON_HOLD" in downloaded.stdout
    assert released.exit_code == 0, released.output
    assert json.loads(released.stdout)["record"]["state"] == "READY"
    assert after.exit_code == 0 and "warning" not in after.stdout


def test_revoke_by_serial_as_json_and_denials(cli: Cli) -> None:
    serial = str(issue_ready(cli, "serial.example.com")["serial_number"])

    denied = cli("revoke", "--serial", serial, client="verification")
    done = cli("--json", "revoke", "--serial", serial, "--reason", "superseded")
    bad = cli("revoke", "--serial", "not-hex")

    assert denied.exit_code == DENIED
    assert done.exit_code == 0 and json.loads(done.stdout)["serial_number"] == serial
    assert bad.exit_code == USAGE and "(field: serial_number)" in bad.stderr


def test_find_refused_by_the_service_names_the_field(cli: Cli) -> None:
    result = cli("--json", "find", "-n", "no spaces allowed")

    assert result.exit_code == USAGE
    assert json.loads(result.stderr)["error"]["field"] == "common_name"


# authorities, licenses, profiles ---------------------------------------------------------------


def test_account_commands(cli: Cli) -> None:
    authorities = cli("authorities", client="reader")
    licenses = cli("--json", "licenses", client="reader")
    profiles = cli("profiles", client="reader")
    profile = cli("profiles", "42", client="reader")
    as_json = cli("--json", "profiles", "85", client="reader")

    assert authorities.exit_code == 0
    assert authorities.stdout.splitlines()[1].split()[:3] == ["42", "42", "TRISA"]
    assert json.loads(licenses.stdout) == {"ordered": 200, "issued": 0}
    assert {line.split()[0] for line in profiles.stdout.splitlines()[1:]} == {"42", "85"}
    assert "commonName" in profile.stdout and "TRISA Profile" in profile.stdout
    assert json.loads(as_json.stdout)["name"] == "TRISA End Entity"


@pytest.mark.parametrize(
    "args",
    [
        ["issue", "-n", "x.example.com"],
        ["status", "any"],
        ["list"],
        ["watch", "any"],
        ["download", "any", "-o", "unused"],
        ["find", "-n", "x.example.com"],
        ["revoke", "any"],
        ["authorities"],
        ["licenses"],
        ["profiles"],
        ["profiles", "42"],
    ],
)
def test_an_identity_without_roles_is_denied_everything(cli: Cli, args: list[str]) -> None:
    result = cli(*args, client="stranger")

    assert result.exit_code == DENIED, result.output
    assert result.stderr.splitlines()[-1].startswith("Error: PERMISSION_DENIED: ")


# usage, settings, reachability -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["issue"], "give --csr FILE, or --common-name"),
        (["issue", "--csr", "{csr}", "--new-key"], "--csr carries the names"),
        (["issue", "--csr", "{csr}", "-n", "x.example.com"], "--csr carries the names"),
        (["issue", "--new-key", "-n", "x.example.com"], "--new-key needs --out"),
        (
            ["issue", "-n", "x.example.com", "--new-key", "-o", "d", "--include-key"],
            "--include-key",
        ),
        (["issue", "--new-key", "-n", "x.example.com", "-o", "{taken}"], "key.pem exists"),
        (["issue", "-n", "x.example.com", "--include-key"], "--include-key needs --out"),
        (["issue", "-n", "x.example.com", "--wait", "--include-key"], "--include-key needs --out"),
        (["issue", "--csr", "{binary}"], "is not a PEM CSR (not text)"),
        (["find"], "exactly one of --common-name and --serial"),
        (["find", "-n", "a.example.com", "-s", "0A"], "exactly one of"),
        (["revoke"], "exactly one of REQUEST_ID and --serial"),
        (["revoke", "id", "--serial", "0A"], "exactly one of"),
        (["revoke", "id", "--reason", "stolen"], "unknown revocation reason"),
        (["revoke", "id", "--reason", "7"], "--reason"),
        (["list", "--all", "--owner", "x"], "--all or --owner"),
        (["list", "--state", "bogus"], "--state"),
        (["profiles", "0"], "PROFILE_ID"),
        (["download", "id"], "--out"),
        (["nonsense"], "No such command"),
    ],
)
def test_usage_errors_are_exit_2_without_calling_the_service(
    pki: DevCerts, tmp_path: Path, args: list[str], message: str
) -> None:
    csr = tmp_path / "req.csr"
    csr.write_text(make_csr("x.example.com", ["x.example.com"]).pem)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "key.pem").write_text("precious")
    binary = tmp_path / "ls"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe")
    filled = [a.format(csr=csr, taken=tmp_path / "taken", binary=binary) for a in args]

    result = Cli("localhost:1", pki)(*filled)

    assert result.exit_code == USAGE, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert "request id" not in result.stderr, "nothing was sent"
    assert (tmp_path / "taken" / "key.pem").read_text() == "precious"


def test_missing_or_unreadable_settings_are_usage_errors(pki: DevCerts) -> None:
    missing = Cli("localhost:1", pki)("status", "x", env={"SECTIGO_CA_CERT": ""})
    unreadable = Cli("localhost:1", pki)("--cert", "/nonexistent.pem", "status", "x")

    assert missing.exit_code == USAGE
    assert "missing --cert (or SECTIGO_CA_CERT)" in missing.stderr
    assert unreadable.exit_code == USAGE
    assert "cannot read the client certificate /nonexistent.pem" in unreadable.stderr


def test_an_unreachable_or_untrusting_service_is_exit_4(service: Service, pki: DevCerts) -> None:
    stopped = Cli("localhost:1", pki)("--timeout", "1", "licenses")
    intruder = Cli(service.target, pki)("--timeout", "1", "licenses", client="intruder")

    assert stopped.exit_code == UNAVAILABLE, stopped.output
    assert intruder.exit_code == UNAVAILABLE, intruder.output
    assert stopped.stderr.startswith(("Error: UNAVAILABLE", "Error: DEADLINE_EXCEEDED"))
