-- Version 1: the ledger's identity, its licenses and their look-up indexes.
CREATE SCHEMA licet;

CREATE TABLE licet.meta (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    format text NOT NULL,
    schema_version integer NOT NULL,
    provider text NOT NULL,
    created_at timestamptz NOT NULL,
    secret_check text NOT NULL,
    accept_machine_id boolean NOT NULL
);

-- A license is one row, locked (SELECT ... FOR UPDATE) by every change to it:
-- that lock is what makes a key single-use and the monthly limit hold across nodes.
CREATE TABLE licet.licenses (
    license_id text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL,
    CHECK (doc ->> 'license_id' = license_id)
);
CREATE INDEX licenses_by_age ON licet.licenses (created_at, license_id);

-- Every key hash a license was ever given; only the license's current one opens it.
CREATE TABLE licet.license_keys (
    key_hash text PRIMARY KEY,
    license_id text NOT NULL REFERENCES licet.licenses (license_id)
);

CREATE TABLE licet.license_ips (
    ip text NOT NULL,
    license_id text NOT NULL REFERENCES licet.licenses (license_id),
    PRIMARY KEY (ip, license_id)
);
