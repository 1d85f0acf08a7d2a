-- ACME (issue 18): see the SQLite migration 0012_acme.sql.
CREATE TABLE acme_objects (
    kind    TEXT   NOT NULL CHECK (kind IN ('account', 'order', 'authz', 'eab')),
    id      TEXT   NOT NULL,
    owner   TEXT   NOT NULL,
    status  TEXT   NOT NULL,
    expires BIGINT NOT NULL,
    lookup  TEXT,
    version BIGINT NOT NULL,
    doc     TEXT   NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX acme_objects_lookup ON acme_objects (kind, lookup) WHERE lookup IS NOT NULL;
CREATE INDEX acme_objects_expires ON acme_objects (expires) WHERE expires > 0;
