-- Which CA certificate signed each certificate, and how each CA certificate of a hierarchy is
-- named and where its key is. Every row before this was signed by the data directory's first
-- issuing CA (`issuing`) or the credential CA (`credential`); the default hierarchy then held
-- exactly its first root (`root`) and issuing CA (`issuing`), whose keys are in ca/.
ALTER TABLE certificates ADD COLUMN ca TEXT NOT NULL DEFAULT 'issuing';
UPDATE certificates SET ca = 'credential' WHERE issuer = 'credential';
CREATE INDEX certificates_ca_revoked ON certificates (ca, revocation_seq);
ALTER TABLE issuer_certificates ADD COLUMN ca_id TEXT NOT NULL DEFAULT '';
ALTER TABLE issuer_certificates ADD COLUMN key_ref TEXT NOT NULL DEFAULT '';
UPDATE issuer_certificates SET ca_id = 'root', key_ref = 'file:ca/root.key'
    WHERE issuer = 'default' AND role = 'root';
UPDATE issuer_certificates SET ca_id = 'issuing', key_ref = 'file:ca/issuing.key'
    WHERE issuer = 'default' AND role = 'issuing';
CREATE UNIQUE INDEX issuer_certificates_ca_id ON issuer_certificates (ca_id);
