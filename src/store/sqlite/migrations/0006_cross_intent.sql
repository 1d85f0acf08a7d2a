-- Cross-certificates follow reserve -> sign -> complete like leaves: the serial and intent
-- are stored (and audited) before the root key signs; der is empty until then.
ALTER TABLE cross_certificates ADD COLUMN status TEXT NOT NULL DEFAULT 'issued'
    CHECK (status IN ('pending', 'issued', 'abandoned'));
