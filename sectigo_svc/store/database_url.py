"""PostgreSQL connection URLs: the password added from a file, and kept out of what is shown.

A URL's password must never reach argv, a log line or an error message: :func:`describe` is what
may be shown, :func:`password_in` what to scrub from a driver's error text.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sectigo_svc.store.base import StoreError


def connection_url(url: str, password_file: Path | None) -> str:
    """``url`` with the password read from ``password_file`` (one line; trailing newline
    ignored), or ``url`` itself without a file (libpq then reads PGPASSWORD or ~/.pgpass)."""
    if password_file is None:
        return url
    try:
        password = password_file.read_text().rstrip("\r\n")
    except OSError as exc:
        raise StoreError(f"the database password file {password_file}: {exc.strerror}") from None
    if not password:
        raise StoreError(f"the database password file {password_file} is empty")
    return make_conninfo(url, password=password)


def password_in(url: str) -> str:
    """The password a libpq URL or conninfo string holds, or "" (also when unparsable)."""
    try:
        return str(conninfo_to_dict(url).get("password") or "")
    except psycopg.Error:
        return ""


def describe(url: str) -> str:
    """``host:port/dbname`` of a libpq URL, without user or password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "(unparsable PostgreSQL URL)"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"postgresql://{host}:{port}/{info.get('dbname') or ''}"
