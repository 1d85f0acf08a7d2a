-- Platforms (tenants): what each may issue.
CREATE TABLE platforms (
    name         TEXT PRIMARY KEY,
    dns_suffixes TEXT    NOT NULL,  -- JSON array
    ip_ranges    TEXT    NOT NULL,  -- JSON array of CIDRs
    profiles     TEXT    NOT NULL,  -- JSON array
    max_days     INTEGER,
    rate_per_min INTEGER,
    disabled     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);

-- Signed checkpoints of the audit chain: the CA's signature over (upto_id, head hash).
CREATE TABLE audit_checkpoints (
    id        INTEGER PRIMARY KEY,
    upto_id   INTEGER NOT NULL,
    head_hash BLOB    NOT NULL,
    at        INTEGER NOT NULL,
    signature BLOB    NOT NULL
);
