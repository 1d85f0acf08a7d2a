-- Certificates by expiry (the metrics' expiring-soon counts, statistics by period).
CREATE INDEX certificates_not_after ON certificates (not_after);
