"""The RequestStore contract, run against SQLite and a real PostgreSQL server alike."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sectigo_svc.domain.models import (
    AuditEntry,
    CertificateRequest,
    IssuedCertificate,
    IssueSpec,
    KeySource,
    RequestState,
    Subject,
    batch_name_for,
)
from sectigo_svc.store.base import ListQuery, RequestStore, StaleUpdate
from tests.store.conftest import Backend

OWNER = "registration-a"
P12_PASSWORD = "sealed-p12-password"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n"
P12 = b"pkcs12-secret-bytes"


def _request(
    request_id: str, owner: str = OWNER, common_name: str = "a.example.com"
) -> CertificateRequest:
    now = dt.datetime.now(dt.UTC)
    spec = IssueSpec(KeySource.SERVER, common_name, (common_name,), Subject(), 1, 42)
    return CertificateRequest(
        owner=owner,
        request_id=request_id,
        spec=spec,
        fingerprint=spec.fingerprint(),
        batch_name=batch_name_for("test", owner, request_id),
        state=RequestState.PENDING,
        created_at=now,
        updated_at=now,
    )


def _advance(
    store: RequestStore, request: CertificateRequest, **changes: object
) -> CertificateRequest:
    return store.update(dataclasses.replace(request, **changes))  # type: ignore[arg-type]


def test_create_stores_once_and_returns_the_stored_row(store: RequestStore) -> None:
    first, created = store.create(_request("r1"), P12_PASSWORD)
    again, created_again = store.create(_request("r1", common_name="other.example.com"), None)

    assert created and not created_again
    assert again == first
    assert again.spec.common_name == "a.example.com"
    assert store.pkcs12_password(OWNER, "r1") == P12_PASSWORD
    assert store.get(OWNER, "missing") is None


def test_twenty_concurrent_identical_creates_make_one_row(backend: Backend) -> None:
    request = _request("race")
    barrier = threading.Barrier(20)

    def create() -> bool:
        barrier.wait(timeout=30)
        return backend.store.create(request, P12_PASSWORD)[1]

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(lambda _: create(), range(20)))

    assert outcomes.count(True) == 1
    assert backend.raw("SELECT count(*) FROM requests") == [(1,)]
    assert backend.raw("SELECT count(*) FROM request_history") == [(1,)]


def test_update_is_compare_and_set_on_version(store: RequestStore) -> None:
    stored, _ = store.create(_request("cas"), None)
    updated = _advance(store, stored, state=RequestState.SUBMITTED, batch_id=7)

    assert updated.version == stored.version + 1
    assert updated.batch_id == 7
    with pytest.raises(StaleUpdate):
        _advance(store, stored, state=RequestState.FAILED)
    current = store.get(OWNER, "cas")
    assert current is not None
    assert current.state is RequestState.SUBMITTED


def test_history_lists_every_version_oldest_first(store: RequestStore) -> None:
    stored, _ = store.create(_request("hist"), None)
    submitted = _advance(store, stored, state=RequestState.SUBMITTED)
    _advance(store, submitted, state=RequestState.PROCESSING)

    history = store.history(OWNER, "hist", 0)
    assert [(r.version, r.state) for r in history] == [
        (1, RequestState.PENDING),
        (2, RequestState.SUBMITTED),
        (3, RequestState.PROCESSING),
    ]
    assert [r.version for r in store.history(OWNER, "hist", 2)] == [3]


def test_list_pages_newest_first_with_cursors_and_filters(store: RequestStore) -> None:
    for n in range(5):
        store.create(_request(f"l{n}", common_name=f"c{n % 2}.example.com"), None)
    store.create(_request("other", owner="registration-b"), None)
    done = store.get(OWNER, "l4")
    assert done is not None
    _advance(store, done, state=RequestState.FAILED)

    first = store.list_requests(ListQuery(owner=OWNER, limit=2))
    second = store.list_requests(ListQuery(owner=OWNER, limit=2, after=first.next_cursor))
    third = store.list_requests(ListQuery(owner=OWNER, limit=2, after=second.next_cursor))

    pages = [[r.request_id for r in page.requests] for page in (first, second, third)]
    assert pages == [["l4", "l3"], ["l2", "l1"], ["l0"]]
    assert third.next_cursor is None
    everyone = store.list_requests(ListQuery(owner=None, limit=10))
    assert [r.request_id for r in everyone.requests] == ["other", "l4", "l3", "l2", "l1", "l0"]
    failed = store.list_requests(ListQuery(owner=OWNER, states=frozenset({RequestState.FAILED})))
    assert [r.request_id for r in failed.requests] == ["l4"]
    named = store.list_requests(ListQuery(owner=OWNER, common_name="C1.EXAMPLE.COM"))
    assert [r.request_id for r in named.requests] == ["l3", "l1"]


def test_active_serial_and_counts(store: RequestStore) -> None:
    a, _ = store.create(_request("a"), None)
    b, _ = store.create(_request("b"), None)
    store.create(_request("c"), None)
    _advance(store, a, state=RequestState.READY, serial_number="0A1B2C")
    _advance(store, b, state=RequestState.SUBMITTED)

    assert [r.request_id for r in store.active()] == ["b", "c"]
    found = store.by_serial("0a1b2c")
    assert found is not None
    assert found.request_id == "a"
    assert store.by_serial("FFFF") is None
    assert store.count_by_state() == {"READY": 1, "SUBMITTED": 1, "PENDING": 1}


def test_certificate_and_ready_state_are_written_together(store: RequestStore) -> None:
    stored, _ = store.create(_request("cert"), None)
    issued = IssuedCertificate("CERT", "CHAIN", P12, KEY_PEM)
    stale = dataclasses.replace(stored, version=stored.version + 5, state=RequestState.READY)

    with pytest.raises(StaleUpdate):
        store.update(stale, issued)
    assert store.certificate(OWNER, "cert") is None

    ready = store.update(dataclasses.replace(stored, state=RequestState.READY), issued)
    assert ready.state is RequestState.READY
    assert store.certificate(OWNER, "cert") == issued


def test_secrets_are_sealed_in_the_raw_tables(backend: Backend) -> None:
    stored, _ = backend.store.create(_request("sealed"), P12_PASSWORD)
    backend.store.update(
        dataclasses.replace(stored, state=RequestState.READY),
        IssuedCertificate("CERT", "CHAIN", P12, KEY_PEM),
    )

    (password,) = backend.raw("SELECT pkcs12_password FROM requests")[0]
    p12, key = backend.raw("SELECT pkcs12, private_key FROM certificates")[0]
    for sealed, plain in ((password, P12_PASSWORD.encode()), (p12, P12), (key, KEY_PEM.encode())):
        assert isinstance(sealed, bytes)
        assert plain not in sealed
        assert b"secret" not in sealed
    assert backend.store.pkcs12_password(OWNER, "sealed") == P12_PASSWORD


def test_audit_log_keeps_order_and_filters(store: RequestStore) -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    entries = [
        AuditEntry(at + dt.timedelta(seconds=n), "cn=tester", action, owner, rid, f"d{n}")
        for n, (action, owner, rid) in enumerate(
            [("issue", OWNER, "x"), ("issue", "registration-b", "y"), ("download", OWNER, "x")]
        )
    ]
    for entry in entries:
        store.record_audit(entry)

    assert store.audit_log() == entries
    assert store.audit_log(owner=OWNER, request_id="x") == [entries[0], entries[2]]


def test_ping_answers_and_a_new_store_is_not_restored(store: RequestStore) -> None:
    store.ping()
    assert store.restored_at() is None
