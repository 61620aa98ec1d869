-- Issuance ledger, version 3: the record's place; same as sqlite/0003_commune.sql.
ALTER TABLE certificates ADD COLUMN province TEXT;
ALTER TABLE certificates ADD COLUMN commune TEXT;
