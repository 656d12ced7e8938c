"""The stores' schemas, one migration per version; applied in order on open, never edited once
released (add a new one instead). ``MIGRATIONS`` is SQLite's, ``POSTGRES_MIGRATIONS`` the same
versions for PostgreSQL (times are seconds since the epoch in both, secrets opaque sealed bytes)."""

# Marks in ``store_marks``: a backup copy carries BACKUP_MARK until a store is opened on it, which
# turns it into RESTORED_MARK (the time of that first open).
BACKUP_MARK = "backup_taken"
RESTORED_MARK = "restored"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE requests (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        spec TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        batch_name TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        version INTEGER NOT NULL,
        batch_id INTEGER,
        sectigo_status TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        submit_attempts INTEGER NOT NULL DEFAULT 0,
        serial_number TEXT NOT NULL DEFAULT '',
        not_before REAL,
        not_after REAL,
        common_name TEXT NOT NULL,
        pkcs12_password BLOB,
        UNIQUE (owner, request_id)
    );
    CREATE INDEX requests_state ON requests (state);
    CREATE INDEX requests_serial ON requests (serial_number);
    CREATE TABLE certificates (
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        certificate_pem TEXT NOT NULL,
        chain_pem TEXT NOT NULL,
        pkcs12 BLOB,
        private_key BLOB,
        PRIMARY KEY (owner, request_id)
    );
    CREATE TABLE request_history (
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (owner, request_id, version)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        identity TEXT NOT NULL,
        action TEXT NOT NULL,
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    """,
    """
    CREATE TABLE sealing_check (sealed BLOB NOT NULL);
    """,
    """
    ALTER TABLE requests ADD COLUMN send_state TEXT NOT NULL DEFAULT 'NEVER';
    ALTER TABLE requests ADD COLUMN last_send_at REAL;
    UPDATE requests SET send_state = 'IN_DOUBT', last_send_at = updated_at
        WHERE submit_attempts > 0 AND batch_id IS NULL;
    CREATE TABLE store_marks (name TEXT PRIMARY KEY, at REAL NOT NULL);
    """,
    """
    ALTER TABLE requests ADD COLUMN lease_holder TEXT;
    ALTER TABLE requests ADD COLUMN lease_expires REAL;
    CREATE TABLE sectigo_tokens (
        account TEXT PRIMARY KEY,
        sealed BLOB NOT NULL,
        received_at REAL,
        written_at REAL NOT NULL
    );
    """,
    """
    ALTER TABLE requests ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN order_failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN order_error TEXT NOT NULL DEFAULT '';
    """,
)


POSTGRES_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE requests (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        spec TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        batch_name TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        version INTEGER NOT NULL,
        batch_id BIGINT,
        sectigo_status TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        submit_attempts INTEGER NOT NULL DEFAULT 0,
        serial_number TEXT NOT NULL DEFAULT '',
        not_before DOUBLE PRECISION,
        not_after DOUBLE PRECISION,
        common_name TEXT NOT NULL,
        pkcs12_password BYTEA,
        UNIQUE (owner, request_id)
    );
    CREATE INDEX requests_state ON requests (state);
    CREATE INDEX requests_serial ON requests (serial_number);
    CREATE TABLE certificates (
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        certificate_pem TEXT NOT NULL,
        chain_pem TEXT NOT NULL,
        pkcs12 BYTEA,
        private_key BYTEA,
        PRIMARY KEY (owner, request_id)
    );
    CREATE TABLE request_history (
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (owner, request_id, version)
    );
    CREATE TABLE audit (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        identity TEXT NOT NULL,
        action TEXT NOT NULL,
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    """,
    """
    CREATE TABLE sealing_check (sealed BYTEA NOT NULL);
    """,
    """
    ALTER TABLE requests ADD COLUMN send_state TEXT NOT NULL DEFAULT 'NEVER';
    ALTER TABLE requests ADD COLUMN last_send_at DOUBLE PRECISION;
    UPDATE requests SET send_state = 'IN_DOUBT', last_send_at = updated_at
        WHERE submit_attempts > 0 AND batch_id IS NULL;
    CREATE TABLE store_marks (name TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL);
    """,
    """
    ALTER TABLE requests ADD COLUMN lease_holder TEXT;
    ALTER TABLE requests ADD COLUMN lease_expires DOUBLE PRECISION;
    CREATE INDEX requests_unfinished ON requests (seq)
        WHERE state NOT IN ('READY', 'REJECTED', 'FAILED', 'REVOKED');
    CREATE TABLE sectigo_tokens (
        account TEXT PRIMARY KEY,
        sealed BYTEA NOT NULL,
        received_at DOUBLE PRECISION,
        written_at DOUBLE PRECISION NOT NULL
    );
    """,
    """
    ALTER TABLE requests ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN order_failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE requests ADD COLUMN order_error TEXT NOT NULL DEFAULT '';
    """,
)
