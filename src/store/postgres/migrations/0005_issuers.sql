-- Issuers as managed objects: each CA hierarchy by name, and the state of each of its CA
-- certificates. The data directory's hierarchy is recorded as `default` on start.
CREATE TABLE issuers (
    name       TEXT PRIMARY KEY,
    algorithm  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE issuer_certificates (
    sha256    TEXT PRIMARY KEY,
    issuer    TEXT NOT NULL REFERENCES issuers(name),
    role      TEXT NOT NULL CHECK (role IN ('root', 'issuing')),
    state     TEXT NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
    der       BYTEA NOT NULL,
    subject   TEXT NOT NULL,
    serial    TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    added_at  BIGINT NOT NULL
);
CREATE INDEX issuer_certificates_issuer ON issuer_certificates (issuer);
