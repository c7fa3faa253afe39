-- Version 3: the provider's default lease and the revocation list.
ALTER TABLE licet.meta
    ADD COLUMN lease_days integer NOT NULL DEFAULT 30 CHECK (lease_days >= 0),
    -- The serial moves on with every regeneration and revocation; updating this
    -- one row serializes those changes across nodes, so no two share a serial.
    ADD COLUMN revocation_serial integer NOT NULL DEFAULT 0 CHECK (revocation_serial >= 0);

CREATE TABLE licet.revocations (
    position bigserial PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('license', 'activation')),
    ident text NOT NULL,
    until timestamptz NOT NULL
);
