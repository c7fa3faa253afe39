-- Version 4: every product name the ledger has licensed, for catching typos in new ones.
CREATE TABLE licet.products (
    name text PRIMARY KEY
);
-- A ledger upgraded from an older version knows the products of its licenses.
INSERT INTO licet.products (name)
    SELECT DISTINCT doc ->> 'product' FROM licet.licenses;
