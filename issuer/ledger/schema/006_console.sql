-- Version 6: the provider console's storage — the one audit log of every change,
-- console users and API tokens, console sessions and failed console log-ins.

-- Every change's events in the order they happened: a license's new history
-- entries are appended in the transaction that changes it, account changes
-- too. The position is the event feed's cursor.
CREATE TABLE licet.events (
    position bigserial PRIMARY KEY,
    license_id text,
    doc jsonb NOT NULL
);

-- A ledger upgraded from an older version gets its licenses' histories as its
-- log, in time order; events at the same instant keep the order their licenses
-- were added in and their order within a history.
INSERT INTO licet.events (position, license_id, doc)
    SELECT row_number() OVER (ORDER BY (h.entry ->> 'at')::timestamptz, l.position, h.n),
           l.license_id, h.entry
    FROM licet.licenses AS l,
         jsonb_array_elements(l.doc -> 'history') WITH ORDINALITY AS h (entry, n);
SELECT setval('licet.events_position_seq',
              COALESCE((SELECT max(position) FROM licet.events), 0) + 1, false);

-- Console users (Argon2id password hashes) and admin API tokens (SHA-256 of the token).
CREATE TABLE licet.accounts (
    kind text NOT NULL CHECK (kind IN ('user', 'token')),
    name text NOT NULL,
    secret_hash text NOT NULL,
    doc jsonb NOT NULL,
    PRIMARY KEY (kind, name),
    CHECK (doc ->> 'kind' = kind AND doc ->> 'name' = name AND doc ->> 'secret_hash' = secret_hash)
);
-- A token is found by its hash; no two accounts of a kind share one (passwords are salted).
CREATE UNIQUE INDEX accounts_by_hash ON licet.accounts (kind, secret_hash);

-- Console sessions under the SHA-256 of their cookie. Removing a user ends
-- their sessions in the same transaction, and a log-in racing the removal on
-- another node cannot open a session for a user who is gone.
CREATE TABLE licet.sessions (
    key_hash text PRIMARY KEY,
    user_kind text NOT NULL DEFAULT 'user' CHECK (user_kind = 'user'),
    user_name text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    FOREIGN KEY (user_kind, user_name) REFERENCES licet.accounts (kind, name) ON DELETE CASCADE
);
CREATE INDEX sessions_by_user ON licet.sessions (user_kind, user_name);
CREATE INDEX sessions_by_use ON licet.sessions (last_seen);

-- Failed console log-ins per user name and per address, shared by every node.
CREATE TABLE licet.login_failures (
    subject text PRIMARY KEY,
    times timestamptz[] NOT NULL,
    last_at timestamptz NOT NULL
);
CREATE INDEX login_failures_by_age ON licet.login_failures (last_at);
