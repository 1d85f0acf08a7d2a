-- Statistics (issue 17), as SQLite migration 0011. The roll-up reads certificates and revocations once, in order, into
-- daily aggregates, so statistics stay fast on millions of certificates; stats_marks says how
-- far it has read (the last certificate id and revocation position counted).
CREATE TABLE stats_issued (
    day      BIGINT  NOT NULL,  -- issued_at / 86400 (UTC days)
    tenant   TEXT    NOT NULL,
    profile  TEXT    NOT NULL,
    ca       TEXT    NOT NULL,
    uscc     BIGINT  NOT NULL,  -- 1: the subject carries a valid USCC
    validity BIGINT  NOT NULL,  -- days, rounded up
    expiry   BIGINT  NOT NULL,  -- not_after / 86400
    renewal  TEXT    NOT NULL CHECK (renewal IN ('new', 'on_time', 'late')),
    n        BIGINT  NOT NULL,
    PRIMARY KEY (day, tenant, profile, ca, uscc, validity, expiry, renewal)
);
CREATE INDEX stats_issued_tenant ON stats_issued (tenant, day);
CREATE INDEX stats_issued_expiry ON stats_issued (expiry);
CREATE TABLE stats_revoked (
    day     BIGINT  NOT NULL,   -- revoked_at / 86400
    tenant  TEXT    NOT NULL,
    profile TEXT    NOT NULL,
    ca      TEXT    NOT NULL,
    reason  BIGINT  NOT NULL,
    expiry  BIGINT  NOT NULL,
    n       BIGINT  NOT NULL,
    PRIMARY KEY (day, tenant, profile, ca, reason, expiry)
);
CREATE INDEX stats_revoked_tenant ON stats_revoked (tenant, day);
-- Events with no row of their own (tokens, verifications, OCSP answers, publication delays),
-- counted in memory and added here every few seconds; total_ms sums a duration (milliseconds).
CREATE TABLE stats_events (
    day    BIGINT  NOT NULL,
    tenant TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    label  TEXT    NOT NULL,
    n      BIGINT  NOT NULL,
    total_ms BIGINT  NOT NULL,
    PRIMARY KEY (day, tenant, kind, label)
);
CREATE TABLE stats_marks (
    name  TEXT PRIMARY KEY,
    value BIGINT  NOT NULL
);
-- A renewal is found by its predecessor: the newest earlier certificate of the same
-- platform, subject, profile and names.
CREATE INDEX certificates_renewal ON certificates (tenant, subject, issued_at);
-- Merchant coverage looks up each registered USCC's unexpired certificates.
ALTER TABLE certificates ADD COLUMN uscc TEXT;
CREATE INDEX certificates_uscc ON certificates (tenant, uscc, not_after) WHERE uscc IS NOT NULL;
