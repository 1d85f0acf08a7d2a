-- Pre-signed OCSP responses shared by the instances, by the DER of the request's CertID. A
-- cache: a response is stored only while the certificate still has the status it states, and
-- a revocation deletes the certificate's responses in its own transaction.
CREATE TABLE ocsp_responses (
    cert_id     BYTEA  PRIMARY KEY,
    serial      TEXT   NOT NULL,
    der         BYTEA  NOT NULL,
    this_update BIGINT NOT NULL
);
CREATE INDEX ocsp_responses_serial ON ocsp_responses (serial);
