-- Revocation: a certificate row gains its revocation; revocation_seq orders revocations for delta CRLs.
ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;
ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER;
ALTER TABLE certificates ADD COLUMN invalidity_date INTEGER;
ALTER TABLE certificates ADD COLUMN revocation_seq INTEGER;
CREATE UNIQUE INDEX certificates_revocation_seq ON certificates (revocation_seq)
    WHERE revocation_seq IS NOT NULL;

-- CRL numbers per CA: one sequence shared by full and delta CRLs, never moving back.
CREATE TABLE crl_numbers (
    ca   TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
