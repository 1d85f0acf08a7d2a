-- Which CA certificate signed each certificate, and, per CA certificate of a hierarchy, its
-- name (ca_id: the stem of its CRL and certificate URLs), where its key is (key_ref), which
-- CA certificate signed it (parent; a root names itself) and, for software keys made after
-- init, the key wrapped for the other instances of the CA (wrapped_key). Link certificates
-- (role 'link') join a root to its successor. Every row before this was signed by the data
-- directory's first issuing CA (`issuing`) or the credential CA (`credential`); the default
-- hierarchy held exactly its first root (`root`) and issuing CA (`issuing`), keys in ca/.
ALTER TABLE certificates ADD COLUMN ca TEXT NOT NULL DEFAULT 'issuing';
UPDATE certificates SET ca = 'credential' WHERE issuer = 'credential';
CREATE INDEX certificates_ca_revoked ON certificates (ca, revocation_seq);
CREATE INDEX certificates_ca_expiry ON certificates (ca, not_after);
-- Cross-certificates name our root involved (until now: always the first, `root`).
ALTER TABLE cross_certificates ADD COLUMN ca TEXT NOT NULL DEFAULT 'root';
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt.
CREATE TABLE issuer_certificates_v8 (
    sha256      TEXT PRIMARY KEY,
    issuer      TEXT NOT NULL REFERENCES issuers(name),
    role        TEXT NOT NULL CHECK (role IN ('root', 'issuing', 'link')),
    state       TEXT NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
    der         BLOB NOT NULL,
    subject     TEXT NOT NULL,
    serial      TEXT NOT NULL,
    not_after   INTEGER NOT NULL,
    added_at    INTEGER NOT NULL,
    ca_id       TEXT NOT NULL,
    key_ref     TEXT NOT NULL,
    parent      TEXT NOT NULL,
    wrapped_key BLOB
);
INSERT INTO issuer_certificates_v8
    SELECT sha256, issuer, role, state, der, subject, serial, not_after, added_at,
           role, 'file:ca/' || role || '.key', 'root', NULL
    FROM issuer_certificates;
DROP TABLE issuer_certificates;
ALTER TABLE issuer_certificates_v8 RENAME TO issuer_certificates;
CREATE INDEX issuer_certificates_issuer ON issuer_certificates (issuer);
CREATE UNIQUE INDEX issuer_certificates_ca_id ON issuer_certificates (ca_id);
