-- Dual certificates (GM/T 0034): the signing and the encryption certificate of a pair, and
-- the KMC escrow that holds the encryption key (the key itself never is in this database).
CREATE TABLE certificate_pairs (
    signing_serial    TEXT PRIMARY KEY,
    encryption_serial TEXT NOT NULL UNIQUE,
    escrow_id         TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
