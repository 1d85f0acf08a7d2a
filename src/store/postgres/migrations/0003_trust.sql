-- Trust boundaries: the same changes as the SQLite migration 0005_trust.sql.
ALTER TABLE certificates ADD COLUMN issuer TEXT NOT NULL DEFAULT 'issuing'
    CHECK (issuer IN ('issuing', 'credential'));
ALTER TABLE credentials ADD COLUMN cert_sha256 TEXT;
UPDATE credentials SET cert_sha256 = (
    SELECT encode(sha256(c.der), 'hex') FROM certificates c
    WHERE c.serial = credentials.serial AND c.status = 'issued' AND c.der IS NOT NULL);
CREATE UNIQUE INDEX credentials_cert_sha256 ON credentials (cert_sha256)
    WHERE cert_sha256 IS NOT NULL;
ALTER TABLE platforms ADD COLUMN organizations TEXT NOT NULL DEFAULT '[]';
ALTER TABLE platforms ADD COLUMN usccs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE platforms ADD COLUMN names TEXT NOT NULL DEFAULT '[]';
