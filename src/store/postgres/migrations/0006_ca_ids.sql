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
ALTER TABLE issuer_certificates DROP CONSTRAINT issuer_certificates_role_check;
ALTER TABLE issuer_certificates ADD CONSTRAINT issuer_certificates_role_check
    CHECK (role IN ('root', 'issuing', 'link'));
ALTER TABLE issuer_certificates ADD COLUMN ca_id TEXT NOT NULL DEFAULT '';
ALTER TABLE issuer_certificates ADD COLUMN key_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE issuer_certificates ADD COLUMN parent TEXT NOT NULL DEFAULT '';
ALTER TABLE issuer_certificates ADD COLUMN wrapped_key BYTEA;
UPDATE issuer_certificates SET ca_id = role, key_ref = 'file:ca/' || role || '.key', parent = 'root';
ALTER TABLE issuer_certificates ALTER COLUMN ca_id DROP DEFAULT;
ALTER TABLE issuer_certificates ALTER COLUMN key_ref DROP DEFAULT;
ALTER TABLE issuer_certificates ALTER COLUMN parent DROP DEFAULT;
CREATE UNIQUE INDEX issuer_certificates_ca_id ON issuer_certificates (ca_id);
