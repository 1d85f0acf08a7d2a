-- Federation: peer CAs (other regions, a bridge) and the cross-certificates between us.
CREATE TABLE peers (
    name     TEXT PRIMARY KEY,
    ca_cert  BLOB    NOT NULL,
    subject  TEXT    NOT NULL,
    status   TEXT    NOT NULL CHECK (status IN ('active', 'suspended')),
    added_at INTEGER NOT NULL
);

-- 'issued': signed by our root for a peer CA; 'received': a peer's certificate for our root.
CREATE TABLE cross_certificates (
    serial            TEXT    NOT NULL,
    peer              TEXT    NOT NULL,
    direction         TEXT    NOT NULL CHECK (direction IN ('issued', 'received')),
    der               BLOB    NOT NULL,
    not_after         INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    revoked_at        INTEGER,
    revocation_reason INTEGER,
    PRIMARY KEY (direction, serial)
);
