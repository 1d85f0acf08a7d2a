-- ACME (issue 18): accounts, orders, authorizations and External Account Binding keys as the
-- ACME edge's JSON documents. `owner` is the account (orders, authorizations) or the platform
-- (accounts, EAB keys); `lookup` a unique second key (an account's key thumbprint); `version`
-- lets one of two instances win a state change (compare and set).
CREATE TABLE acme_objects (
    kind    TEXT    NOT NULL CHECK (kind IN ('account', 'order', 'authz', 'eab')),
    id      TEXT    NOT NULL,
    owner   TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    expires INTEGER NOT NULL,  -- Unix seconds; 0: does not expire
    lookup  TEXT,
    version INTEGER NOT NULL,
    doc     TEXT    NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX acme_objects_lookup ON acme_objects (kind, lookup) WHERE lookup IS NOT NULL;
CREATE INDEX acme_objects_expires ON acme_objects (expires) WHERE expires > 0;
