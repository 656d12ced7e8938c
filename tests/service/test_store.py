"""The SQLite store: schema versioned and migrated on open, data kept across re-opens,
compare-and-set updates, owner-only files, and secrets sealed at rest under the data key."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from sectigo_svc.app import Application
from sectigo_svc.domain.models import (
    CertificateRequest,
    IssueSpec,
    KeySource,
    RequestState,
    Subject,
    batch_name_for,
)
from sectigo_svc.sealing import KEY_BYTES, Sealer, SealingError, load_or_create_key
from sectigo_svc.sectigo.credentials import Credentials
from sectigo_svc.store.base import StaleUpdate, StoreError
from sectigo_svc.store.schema import MIGRATIONS
from sectigo_svc.store.sqlite import SqliteStore
from tests.service.conftest import ServiceFactory
from tests.service.helpers import (
    PASSWORD,
    REGISTRATION,
    USERNAME,
    download,
    issue_ready,
    server_key_request,
)

P12_PASSWORD = "sealed-p12-password"


def _request(request_id: str = "store-1") -> CertificateRequest:
    now = dt.datetime.now(dt.UTC)
    spec = IssueSpec(
        KeySource.SERVER, "store.example.com", ("store.example.com",), Subject(), 1, 42
    )
    return CertificateRequest(
        owner=REGISTRATION,
        request_id=request_id,
        spec=spec,
        fingerprint=spec.fingerprint(),
        batch_name=batch_name_for("test", REGISTRATION, request_id),
        state=RequestState.PENDING,
        created_at=now,
        updated_at=now,
    )


def _store(path: Path, key: bytes = b"k" * KEY_BYTES) -> SqliteStore:
    return SqliteStore(path, Sealer(key))


def _raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_a_new_store_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    store = _store(path)

    assert store.schema_version == len(MIGRATIONS)
    assert _raw(path, "SELECT version FROM schema_version") == [
        (n,) for n in range(1, len(MIGRATIONS) + 1)
    ]
    assert _raw(path, "PRAGMA journal_mode") == [("wal",)]
    store.close()


def test_a_reopened_store_keeps_its_data_and_is_not_migrated_twice(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    store = _store(path)
    created, new = store.create(_request(), P12_PASSWORD)
    assert new
    store.close()

    again = _store(path)

    assert again.get(REGISTRATION, "store-1") == created
    assert again.pkcs12_password(REGISTRATION, "store-1") == P12_PASSWORD
    assert len(_raw(path, "SELECT version FROM schema_version")) == len(MIGRATIONS)
    again.close()


def test_a_store_from_newer_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    _store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))

    with pytest.raises(StoreError, match="newer than this code"):
        _store(path)


def test_updates_are_compare_and_set(tmp_path: Path) -> None:
    store = _store(tmp_path / "requests.db")
    created, _ = store.create(_request(), None)
    moved = store.update(dataclasses.replace(created, state=RequestState.SUBMITTED, batch_id=7))

    with pytest.raises(StaleUpdate):
        store.update(dataclasses.replace(created, state=RequestState.FAILED))

    assert moved.version == created.version + 1
    current = store.get(REGISTRATION, "store-1")
    assert current is not None
    assert (current.state, current.batch_id) == (RequestState.SUBMITTED, 7)
    assert [v.state for v in store.history(REGISTRATION, "store-1", 0)] == [
        RequestState.PENDING,
        RequestState.SUBMITTED,
    ]
    store.close()


def test_the_same_key_is_created_once(tmp_path: Path) -> None:
    store = _store(tmp_path / "requests.db")
    first, created = store.create(_request(), "first-password")
    second, created_again = store.create(dataclasses.replace(_request(), reason="x"), "other")

    assert (created, created_again) == (True, False)
    assert second == first
    assert store.pkcs12_password(REGISTRATION, "store-1") == "first-password"
    store.close()


def test_service_files_are_owner_only_and_secrets_are_sealed(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()
    stub = service.stub()
    issue_ready(stub, server_key_request("seal-1", "seal.example.com", password=P12_PASSWORD))
    got = download(stub, "seal-1", include_private_key=True)
    key = serialization.load_pem_private_key(got.private_key_pem.encode(), None)
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    database, data_key = service.config.database_path, service.config.data_key_path

    tokens = service.config.sectigo_token_cache_dir
    assert tokens is not None
    private = [database, data_key, *database.parent.glob(f"{database.name}-*")]
    private += list(tokens.glob("*.json"))
    assert len(private) >= 5  # the database, its -wal and -shm, the data key, the token cache
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (database.parent, tokens):
        assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0, directory

    rows = _raw(database, "SELECT pkcs12_password FROM requests")
    certificates = _raw(database, "SELECT pkcs12, private_key, certificate_pem FROM certificates")
    history = _raw(database, "SELECT snapshot FROM request_history")
    dump = "\n".join(sqlite3.connect(database).iterdump())
    ((sealed_password,),), ((sealed_p12, sealed_key, certificate_pem),) = rows, certificates
    assert isinstance(sealed_password, bytes) and isinstance(sealed_key, bytes)
    assert isinstance(sealed_p12, bytes)
    assert P12_PASSWORD.encode() not in sealed_password
    assert b"PRIVATE KEY" not in sealed_key
    assert key_der not in sealed_key
    assert sealed_p12 != got.pkcs12 and got.pkcs12[:64] not in sealed_p12
    assert certificate_pem == got.certificate_pem  # public material stays readable
    assert all(P12_PASSWORD not in str(snapshot) for (snapshot,) in history)
    assert P12_PASSWORD not in dump
    assert "PRIVATE KEY" not in dump
    assert base64.b64encode(key_der)[:40].decode() not in dump


def test_a_wrong_data_key_fails_clearly(service_factory: ServiceFactory) -> None:
    service = service_factory()
    issue_ready(service.stub(), server_key_request("key-1", "key.example.com"))
    service.stop()

    with pytest.raises(SealingError, match="data key does not open the secrets sealed in"):
        _store(service.config.database_path, key=b"o" * KEY_BYTES)
    right_key = load_or_create_key(service.config.data_key_path, create=False)
    reopened = _store(service.config.database_path, key=right_key)
    assert reopened.pkcs12_password(REGISTRATION, "key-1")
    reopened.close()


def test_a_data_key_file_that_is_missing_or_open_to_others_is_refused(
    service_factory: ServiceFactory, tmp_path: Path
) -> None:
    service = service_factory()
    config = service.config
    loose = tmp_path / "loose.key"
    loose.write_bytes(config.data_key_path.read_bytes())
    loose.chmod(0o644)
    credentials = Credentials.load(USERNAME, PASSWORD)

    with pytest.raises(SealingError, match="does not exist"):
        Application(
            dataclasses.replace(config, data_key_file=tmp_path / "missing.key"), credentials
        )
    with pytest.raises(SealingError, match="0600"):
        Application(dataclasses.replace(config, data_key_file=loose), credentials)


def test_a_service_restarted_with_another_data_key_refuses_to_start(
    service_factory: ServiceFactory,
) -> None:
    first = service_factory()
    issue_ready(first.stub(), server_key_request("rekey-1", "rekey.example.com"))
    first.stop()
    first.config.data_key_path.write_text(base64.b64encode(b"n" * KEY_BYTES).decode() + "\n")

    with pytest.raises(SealingError, match="is it the key this store was created with") as refused:
        Application(first.config, Credentials.load(USERNAME, PASSWORD))
    assert base64.b64encode(b"n" * KEY_BYTES).decode() not in str(refused.value)


def test_one_process_at_a_time_owns_a_store(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    first = _store(path)
    with pytest.raises(StoreError, match="is already in use by another sectigo-svc"):
        _store(path)
    first.close()
    _store(path).close()
