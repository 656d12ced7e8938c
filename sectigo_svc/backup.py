"""``sectigo-svc backup``: the store and the data key that opens it, copied together.

Neither is useful without the other, so they are only ever backed up as a pair, both 0600.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sectigo_svc.store.base import StoreError
from sectigo_svc.store.sqlite import backup_database

DATABASE_NAME = "requests.db"
DATA_KEY_NAME = "data.key"


def back_up(database: Path, data_key: Path, destination: Path) -> tuple[Path, Path]:
    """Copy the live store and its data key into ``destination`` (made 0700 if missing).

    The names are those of a state directory, so restoring is pointing ``SECTIGO_SVC_STATE_DIR``
    at the copy (or copying both files back).
    """
    if not database.is_file():
        raise StoreError(f"no store at {database}")
    if not data_key.is_file():
        raise StoreError(f"no data key at {data_key}")
    destination.mkdir(parents=True, exist_ok=True, mode=0o700)
    store_copy = destination / DATABASE_NAME
    key_copy = destination / DATA_KEY_NAME
    if key_copy.exists():
        raise StoreError(f"{key_copy} exists; back up into an empty place")
    backup_database(database, store_copy)
    fd = os.open(key_copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as target, data_key.open("rb") as source:
        shutil.copyfileobj(source, target)
    return store_copy, key_copy
