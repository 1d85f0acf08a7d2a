-- The PostgreSQL schema: the same tables as the SQLite migrations 0001-0004 (see ../), with
-- PostgreSQL types. `ecca migrate` copies an embedded CA into it row for row.
CREATE TABLE certificates (
    id                BIGSERIAL PRIMARY KEY,
    serial            TEXT    NOT NULL UNIQUE,
    status            TEXT    NOT NULL CHECK (status IN ('pending', 'issued', 'abandoned')),
    profile           TEXT    NOT NULL,
    tenant            TEXT    NOT NULL DEFAULT '',
    subject           TEXT    NOT NULL,
    sans              TEXT    NOT NULL,
    not_before        BIGINT  NOT NULL,
    not_after         BIGINT  NOT NULL,
    created_at        BIGINT  NOT NULL,
    issued_at         BIGINT,
    der               BYTEA,
    revoked_at        BIGINT,
    revocation_reason BIGINT,
    invalidity_date   BIGINT,
    revocation_seq    BIGINT UNIQUE
);
CREATE INDEX certificates_profile ON certificates (profile, id);
CREATE INDEX certificates_tenant ON certificates (tenant, id);

CREATE TABLE credentials (
    serial   TEXT PRIMARY KEY,
    role     TEXT    NOT NULL CHECK (role IN ('admin', 'platform', 'auditor')),
    tenant   TEXT    NOT NULL DEFAULT '',
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    added    BIGSERIAL
);

-- Appended only under the audit advisory lock, so instances sharing the database extend one chain.
CREATE TABLE audit_log (
    id        BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    event     TEXT   NOT NULL,
    object    TEXT   NOT NULL,
    detail    TEXT   NOT NULL,
    prev_hash BYTEA  NOT NULL,
    hash      BYTEA  NOT NULL
);

-- Durable counters: CRL numbers per CA, time-stamp serials ('tsa'), and 'auth', bumped when
-- credentials, platforms or revocations change so every instance drops cached auth decisions.
CREATE TABLE crl_numbers (
    ca   TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE peers (
    name     TEXT PRIMARY KEY,
    ca_cert  BYTEA  NOT NULL,
    subject  TEXT   NOT NULL,
    status   TEXT   NOT NULL CHECK (status IN ('active', 'suspended')),
    added_at BIGINT NOT NULL
);

CREATE TABLE cross_certificates (
    serial            TEXT   NOT NULL,
    peer              TEXT   NOT NULL,
    direction         TEXT   NOT NULL CHECK (direction IN ('issued', 'received')),
    der               BYTEA  NOT NULL,
    not_after         BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason BIGINT,
    PRIMARY KEY (direction, serial)
);

CREATE TABLE platforms (
    name         TEXT PRIMARY KEY,
    dns_suffixes TEXT    NOT NULL,
    ip_ranges    TEXT    NOT NULL,
    profiles     TEXT    NOT NULL,
    max_days     BIGINT,
    rate_per_min BIGINT,
    disabled     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT  NOT NULL
);

CREATE TABLE audit_checkpoints (
    id        BIGSERIAL PRIMARY KEY,
    upto_id   BIGINT NOT NULL,
    head_hash BYTEA  NOT NULL,
    at        BIGINT NOT NULL,
    signature BYTEA  NOT NULL
);
