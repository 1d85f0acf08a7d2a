-- Certificates: a row is created when a serial is reserved (status 'pending'), before signing,
-- and completed with the DER once signed. A serial is never reused, even if abandoned.
CREATE TABLE certificates (
    id          INTEGER PRIMARY KEY,
    serial      TEXT    NOT NULL UNIQUE,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'issued', 'abandoned')),
    profile     TEXT    NOT NULL,
    tenant      TEXT    NOT NULL DEFAULT '',
    subject     TEXT    NOT NULL,
    sans        TEXT    NOT NULL,
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    issued_at   INTEGER,
    der         BLOB
);
CREATE INDEX certificates_profile ON certificates (profile, id);
CREATE INDEX certificates_tenant ON certificates (tenant, id);

-- Client credentials for the gRPC API (mTLS certificates), by certificate serial.
CREATE TABLE credentials (
    serial   TEXT PRIMARY KEY,
    role     TEXT NOT NULL CHECK (role IN ('admin', 'platform', 'auditor')),
    tenant   TEXT NOT NULL DEFAULT '',
    disabled INTEGER NOT NULL DEFAULT 0
);

-- Append-only, hash-chained audit log: hash = SHA-256(prev_hash, id, at, actor, event, object, detail).
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    event     TEXT    NOT NULL,
    object    TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL,
    hash      BLOB    NOT NULL
);
