-- Version 2: failed attempts of anonymous clients, shared by every node.
CREATE TABLE licet.attempts (
    bucket text PRIMARY KEY,
    stamps double precision[] NOT NULL,
    last_at double precision NOT NULL
);
CREATE INDEX attempts_by_age ON licet.attempts (last_at);
