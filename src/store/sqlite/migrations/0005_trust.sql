-- Trust boundaries (issue 12).
-- Which CA signed a certificate: 'issuing' (relying parties' hierarchy) or 'credential' (API
-- credentials and the gRPC server's certificate; never on the issuing CA's CRLs or OCSP).
ALTER TABLE certificates ADD COLUMN issuer TEXT NOT NULL DEFAULT 'issuing'
    CHECK (issuer IN ('issuing', 'credential'));
-- A credential is identified by the SHA-256 of its whole certificate, never by serial alone.
-- Existing credentials are pinned to the certificate stored for their serial; a credential
-- without one stays NULL and can no longer authenticate (rotate it).
ALTER TABLE credentials ADD COLUMN cert_sha256 TEXT;
UPDATE credentials SET cert_sha256 = (
    SELECT lower(hex(ecca_sha256(c.der))) FROM certificates c
    WHERE c.serial = credentials.serial AND c.status = 'issued' AND c.der IS NOT NULL);
CREATE UNIQUE INDEX credentials_cert_sha256 ON credentials (cert_sha256)
    WHERE cert_sha256 IS NOT NULL;
-- What a platform may put in a certificate's subject besides its DNS names (JSON arrays).
ALTER TABLE platforms ADD COLUMN organizations TEXT NOT NULL DEFAULT '[]';
ALTER TABLE platforms ADD COLUMN usccs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE platforms ADD COLUMN names TEXT NOT NULL DEFAULT '[]';
