"""Copying a SQLite store into PostgreSQL (``copy_to_postgres``, ``sectigo-svc copy-store``):
everything read back through PostgresStore equals what SqliteStore reads, page tokens included;
a non-empty target, a store in use, a wrong data key and a failed verification change nothing."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from sectigo_svc.cli import main
from sectigo_svc.domain.models import (
    AuditEntry,
    CertificateRequest,
    IssuedCertificate,
    IssueSpec,
    KeySource,
    RequestState,
    SendState,
    Subject,
    batch_name_for,
)
from sectigo_svc.sealing import KEY_BYTES, Sealer, SealingError
from sectigo_svc.store.base import ListQuery, RequestStore, StoreError
from sectigo_svc.store.postgres import PostgresStore
from sectigo_svc.store.sqlite import SqliteStore, backup_database
from sectigo_svc.store.transfer import TABLES, copy_to_postgres
from tests.store.conftest import KEY

OWNER = "registration-a"
OTHER = "registration-b"
SECRET = "hunter2-very-secret"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nkey-material-{}\n-----END PRIVATE KEY-----\n"
T0 = dt.datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)
# Requests made by the ``source`` fixture, oldest first.
KEYS = [
    (OWNER, "ready"),
    (OWNER, "revoked"),
    (OWNER, "pending"),
    (OWNER, "submitted"),
    (OWNER, "in-doubt"),
    (OTHER, "ready-b"),
    (OWNER, "after-restore"),
]


def _request(owner: str, request_id: str, minute: int) -> CertificateRequest:
    at = T0 + dt.timedelta(minutes=minute, microseconds=minute * 37)
    name = f"{request_id}.example.com"
    spec = IssueSpec(KeySource.SERVER, name, (name,), Subject(organization="Example"), 42, 7)
    return CertificateRequest(
        owner=owner,
        request_id=request_id,
        spec=spec,
        fingerprint=spec.fingerprint(),
        batch_name=batch_name_for("test", owner, request_id),
        state=RequestState.PENDING,
        created_at=at,
        updated_at=at,
    )


def _advance(
    store: RequestStore,
    request: CertificateRequest,
    certificate: IssuedCertificate | None = None,
    **changes: Any,
) -> CertificateRequest:
    return store.update(dataclasses.replace(request, **changes), certificate)


def _finish(store: RequestStore, owner: str, request_id: str, minute: int) -> CertificateRequest:
    """A request taken through SUBMITTED and PROCESSING to READY with its certificate."""
    created, _ = store.create(_request(owner, request_id, minute), f"p12-{request_id}")
    sent = T0 + dt.timedelta(minutes=minute, seconds=1)
    submitted = _advance(
        store,
        created,
        state=RequestState.SUBMITTED,
        batch_id=1000 + minute,
        submit_attempts=1,
        send_state=SendState.NOT_TAKEN,
        last_send_at=sent,
    )
    processing = _advance(store, submitted, state=RequestState.PROCESSING, sectigo_status="x")
    issued = IssuedCertificate(
        f"CERT-{request_id}", "CHAIN", f"p12-bytes-{request_id}".encode(), KEY_PEM.format(minute)
    )
    return _advance(
        store,
        processing,
        issued,
        state=RequestState.READY,
        serial_number=f"0A{minute:02X}",
        not_before=sent,
        not_after=sent + dt.timedelta(days=365),
    )


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A restored backup of a store with finished, revoked and unfinished requests, history,
    audit rows and a restore mark; closed."""
    original = tmp_path / "original.db"
    store = SqliteStore(original, Sealer(KEY))
    try:
        _finish(store, OWNER, "ready", 1)
        revoked = _finish(store, OWNER, "revoked", 2)
        _advance(store, revoked, state=RequestState.REVOKED, reason="key compromise")
        store.create(_request(OWNER, "pending", 3), None)
        waiting, _ = store.create(_request(OWNER, "submitted", 4), "p12-submitted")
        _advance(store, waiting, state=RequestState.SUBMITTED, batch_id=2004, submit_attempts=1)
        doubtful, _ = store.create(_request(OWNER, "in-doubt", 5), None)
        _advance(
            store,
            doubtful,
            submit_attempts=2,
            send_state=SendState.IN_DOUBT,
            last_send_at=T0 + dt.timedelta(minutes=5, seconds=3),
        )
        _finish(store, OTHER, "ready-b", 6)
        for n, (action, owner, request_id) in enumerate(
            [("issue", OWNER, "ready"), ("download", OWNER, "ready"), ("revoke", OWNER, "revoked")]
        ):
            store.record_audit(
                AuditEntry(T0 + dt.timedelta(seconds=n), "cn=tester", action, owner, request_id)
            )
    finally:
        store.close()
    copy = tmp_path / "source.db"
    backup_database(original, copy)
    restored = SqliteStore(copy, Sealer(KEY))
    try:
        assert restored.restored_at() is not None
        restored.create(_request(OWNER, "after-restore", 7), "p12-after")
        restored.record_audit(AuditEntry(T0, "cn=other", "issue", OWNER, "after-restore", "d"))
    finally:
        restored.close()
    return copy


@pytest.fixture
def opened(source: Path, postgres_url: str) -> Iterator[tuple[SqliteStore, PostgresStore]]:
    """The source and the target after a copy, each opened through its store."""
    copy_to_postgres(source, postgres_url, Sealer(KEY))
    before, after = SqliteStore(source, Sealer(KEY)), PostgresStore(postgres_url, Sealer(KEY))
    yield before, after
    before.close()
    after.close()


def _raw(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(query.encode()).fetchall()


def _tables(url: str) -> list[str]:
    return [
        row[0]
        for row in _raw(
            url,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name",
        )
    ]


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {table: _raw(url, f"SELECT * FROM {table} ORDER BY 1, 2") for table in TABLES}


def _pages(store: RequestStore, query: ListQuery) -> list[tuple[list[CertificateRequest], Any]]:
    pages = []
    while True:
        page = store.list_requests(query)
        pages.append((list(page.requests), page.next_cursor))
        if page.next_cursor is None:
            return pages
        query = dataclasses.replace(query, after=page.next_cursor)


def test_the_copy_reports_and_holds_every_row(source: Path, postgres_url: str) -> None:
    report = copy_to_postgres(source, postgres_url, Sealer(KEY))

    history_rows = 4 + 5 + 1 + 2 + 2 + 4 + 1
    assert report.counts == {
        "requests": 7,
        "request_history": history_rows,
        "certificates": 3,
        "audit": 4,
        "store_marks": 1,
    }
    assert list(report.counts) == list(TABLES)
    assert report.target == postgres_url.replace("postgres@", "")
    for table, count in report.counts.items():
        assert _raw(postgres_url, f"SELECT count(*) FROM {table}") == [(count,)]


def test_every_request_secret_and_certificate_reads_back_the_same(
    opened: tuple[SqliteStore, PostgresStore],
) -> None:
    before, after = opened

    for key in KEYS:
        original = before.get(*key)
        assert original is not None
        assert after.get(*key) == original
        assert after.pkcs12_password(*key) == before.pkcs12_password(*key)
        assert after.certificate(*key) == before.certificate(*key)
        assert after.history(*key, 0) == before.history(*key, 0)
        assert after.history(*key, 2) == before.history(*key, 2)
    certificate = after.certificate(OWNER, "ready")
    assert certificate is not None
    assert certificate.pkcs12 == b"p12-bytes-ready"
    assert certificate.private_key_pem == KEY_PEM.format(1)
    assert after.pkcs12_password(OWNER, "after-restore") == "p12-after"
    assert after.pkcs12_password(OWNER, "pending") is None
    assert after.by_serial("0a01") == before.by_serial("0A01")
    assert after.count_by_state() == before.count_by_state()
    assert after.active() == before.active()
    assert [r.request_id for r in after.active()] == [
        "pending",
        "submitted",
        "in-doubt",
        "after-restore",
    ]


def test_audit_marks_and_empty_leases_are_copied(
    opened: tuple[SqliteStore, PostgresStore], source: Path, postgres_url: str
) -> None:
    before, after = opened

    assert after.audit_log() == before.audit_log()
    assert after.audit_log(OWNER, "revoked") == before.audit_log(OWNER, "revoked")
    with sqlite3.connect(source) as db:
        marks = db.execute("SELECT name, at FROM store_marks").fetchall()
        audit_ids = db.execute("SELECT id FROM audit ORDER BY id").fetchall()
        leased = db.execute("SELECT count(*) FROM requests WHERE lease_holder IS NOT NULL")
        assert leased.fetchone() == (7,)
    assert marks and marks[0][0] == "restored"
    assert _raw(postgres_url, "SELECT name, at FROM store_marks") == marks
    # Requests the restored copy held stay in doubt on PostgreSQL as they were on SQLite.
    assert after.restored_at() is not None
    assert after.restored_at() == before.restored_at()
    assert _raw(postgres_url, "SELECT id FROM audit ORDER BY id") == audit_ids
    assert _raw(
        postgres_url,
        "SELECT count(*) FROM requests WHERE lease_holder IS NOT NULL OR lease_expires IS NOT NULL",
    ) == [(0,)]


def test_page_tokens_of_the_source_stay_valid(opened: tuple[SqliteStore, PostgresStore]) -> None:
    before, after = opened
    queries = [
        ListQuery(owner=None, limit=2),
        ListQuery(owner=OWNER, limit=3),
        ListQuery(
            owner=OWNER, states=frozenset({RequestState.READY, RequestState.REVOKED}), limit=1
        ),
    ]
    for query in queries:
        pages = _pages(before, query)
        assert len(pages) > 1
        assert _pages(after, query) == pages
        # A token handed out by the SQLite service picks up where it left off on PostgreSQL.
        token = pages[0][1]
        assert after.list_requests(dataclasses.replace(query, after=token)).requests == pages[1][0]


def test_new_requests_and_audit_rows_come_after_the_copied_ones(
    opened: tuple[SqliteStore, PostgresStore], source: Path
) -> None:
    _, after = opened
    with sqlite3.connect(source) as db:
        (highest_seq,) = db.execute("SELECT max(seq) FROM requests").fetchone()

    after.create(_request(OWNER, "new", 30), None)
    after.record_audit(AuditEntry(T0, "cn=new", "issue", OWNER, "new"))

    newest = after.list_requests(ListQuery(owner=None, limit=1))
    assert [r.request_id for r in newest.requests] == ["new"]
    assert newest.next_cursor is not None and newest.next_cursor > highest_seq
    assert after.audit_log()[-1].identity == "cn=new"


def test_a_second_copy_into_the_filled_target_is_refused_and_changes_nothing(
    source: Path, postgres_url: str
) -> None:
    copy_to_postgres(source, postgres_url, Sealer(KEY))
    before = _snapshot(postgres_url)

    with pytest.raises(StoreError, match=r"not empty \(requests: 7, request_history: .*"):
        copy_to_postgres(source, postgres_url, Sealer(KEY))
    assert _snapshot(postgres_url) == before


def test_a_target_holding_only_audit_rows_is_refused(source: Path, postgres_url: str) -> None:
    target = PostgresStore(postgres_url, Sealer(KEY))
    target.record_audit(AuditEntry(T0, "cn=x", "issue", OWNER, "x"))
    target.close()

    with pytest.raises(StoreError, match=r"not empty \(audit: 1\)"):
        copy_to_postgres(source, postgres_url, Sealer(KEY))
    assert _raw(postgres_url, "SELECT count(*) FROM requests") == [(0,)]


def test_a_store_in_use_is_refused_before_the_target_is_touched(
    source: Path, postgres_url: str
) -> None:
    running = SqliteStore(source, Sealer(KEY))
    try:
        with pytest.raises(StoreError, match="already in use"):
            copy_to_postgres(source, postgres_url, Sealer(KEY))
    finally:
        running.close()
    assert _tables(postgres_url) == []


def test_a_wrong_data_key_is_refused_before_the_target_is_touched(
    source: Path, postgres_url: str
) -> None:
    with pytest.raises(SealingError, match="data key does not open"):
        copy_to_postgres(source, postgres_url, Sealer(b"w" * KEY_BYTES))
    assert _tables(postgres_url) == []


def test_a_target_sealed_with_another_key_is_refused(source: Path, postgres_url: str) -> None:
    PostgresStore(postgres_url, Sealer(b"w" * KEY_BYTES)).close()

    with pytest.raises(SealingError, match="data key does not open"):
        copy_to_postgres(source, postgres_url, Sealer(KEY))
    assert _raw(postgres_url, "SELECT count(*) FROM requests") == [(0,)]
    SqliteStore(source, Sealer(KEY)).close()  # the source's lock was let go


def test_a_missing_source_is_refused_and_not_created(tmp_path: Path, postgres_url: str) -> None:
    missing = tmp_path / "nothing.db"

    with pytest.raises(StoreError, match="not a file"):
        copy_to_postgres(missing, postgres_url, Sealer(KEY))
    assert not missing.exists()


def _with_trigger(url: str, table: str, body: str) -> None:
    """Give the target's ``table`` a BEFORE INSERT trigger running ``body`` (PL/pgSQL)."""
    PostgresStore(url, Sealer(KEY)).close()
    with psycopg.connect(url) as db:
        db.execute(
            f"CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$"
        )
        db.execute(
            f"CREATE TRIGGER tamper BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION tamper()"
        )


def test_a_table_that_lost_rows_fails_verification_and_nothing_is_committed(
    source: Path, postgres_url: str
) -> None:
    _with_trigger(postgres_url, "request_history", "RETURN NULL;")

    with pytest.raises(StoreError, match="request_history has 19 rows in the source but 0"):
        copy_to_postgres(source, postgres_url, Sealer(KEY))
    for table in TABLES:
        assert _raw(postgres_url, f"SELECT count(*) FROM {table}") == [(0,)]


def test_requests_under_other_numbers_fail_verification(source: Path, postgres_url: str) -> None:
    _with_trigger(postgres_url, "requests", "NEW.seq := NEW.seq + 1000; RETURN NEW;")

    with pytest.raises(StoreError, match="7 requests of the source are not in the target"):
        copy_to_postgres(source, postgres_url, Sealer(KEY))
    assert _raw(postgres_url, "SELECT count(*) FROM requests") == [(0,)]


def test_an_unreachable_target_is_named_without_its_password(source: Path) -> None:
    url = f"postgresql://svc:{SECRET}@127.0.0.1:1/requests"

    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/requests") as caught:
        copy_to_postgres(source, url, Sealer(KEY))
    assert SECRET not in str(caught.value)


# The command ------------------------------------------------------------------------------------


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.key"
    path.write_bytes(base64.b64encode(KEY) + b"\n")
    path.chmod(0o600)
    return path


def _copy_store(source: Path, url: str, key_file: Path, *extra: str) -> Any:
    arguments = ["copy-store", "--from", str(source), "--to", url, "--data-key-file", str(key_file)]
    return CliRunner().invoke(main, [*arguments, *extra])


def test_the_command_refuses_a_password_in_the_url(
    source: Path, postgres_url: str, key_file: Path
) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{SECRET}@")

    result = _copy_store(source, url, key_file)

    assert result.exit_code == 1
    assert "put it in --database-password-file or PGPASSWORD" in result.output
    assert SECRET not in result.output
    assert _tables(postgres_url) == []


def test_the_command_copies_with_a_password_file_and_lists_the_counts(
    source: Path, postgres_url: str, key_file: Path, tmp_path: Path
) -> None:
    password_file = tmp_path / "pg.password"
    password_file.write_text(f"{SECRET}\n")

    result = _copy_store(
        source, postgres_url, key_file, "--database-password-file", str(password_file)
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  requests: 7" in lines
    assert "  request_history: 19" in lines
    assert "  certificates: 3" in lines
    assert "  audit: 4" in lines
    assert "  store_marks: 1" in lines
    assert lines[-1].startswith("verified")
    assert SECRET not in result.output
    assert _raw(postgres_url, "SELECT count(*) FROM requests") == [(7,)]


def test_the_command_reads_the_password_file(
    source: Path, postgres_url: str, key_file: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.password"
    empty.write_text("")

    result = _copy_store(source, postgres_url, key_file, "--database-password-file", str(empty))

    assert result.exit_code == 1
    assert "password file" in result.output and "is empty" in result.output
    assert _tables(postgres_url) == []


def test_the_command_fails_cleanly_on_a_non_empty_target_or_a_bad_url(
    source: Path, postgres_url: str, key_file: Path
) -> None:
    assert _copy_store(source, postgres_url, key_file).exit_code == 0

    again = _copy_store(source, postgres_url, key_file)
    garbled = _copy_store(source, "not a url at all", key_file)

    assert again.exit_code == 1
    assert "Error: the target store is not empty" in again.output
    assert garbled.exit_code == 1
    assert "--to: not a PostgreSQL URL" in garbled.output
