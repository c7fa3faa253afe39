-- Version 5: the order licenses were added in, for listing them newest first a page at a time.
ALTER TABLE licet.licenses ADD COLUMN position bigint;
CREATE SEQUENCE licet.licenses_position_seq OWNED BY licet.licenses.position;
-- Licenses of an older ledger keep the order they were created in.
UPDATE licet.licenses AS l SET position = o.n
    FROM (SELECT license_id, row_number() OVER (ORDER BY created_at, license_id) AS n
          FROM licet.licenses) AS o
    WHERE o.license_id = l.license_id;
SELECT setval('licet.licenses_position_seq',
              COALESCE((SELECT max(position) FROM licet.licenses), 0) + 1, false);
ALTER TABLE licet.licenses
    ALTER COLUMN position SET DEFAULT nextval('licet.licenses_position_seq'),
    ALTER COLUMN position SET NOT NULL;
CREATE UNIQUE INDEX licenses_by_position ON licet.licenses (position);
