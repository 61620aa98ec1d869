-- Issuance ledger, version 3: the record's place (docs/ledger.md "Data model").
-- The province and commune of the record, as written in it, so that a
-- batch's current certificates can be handed out one ZIP per commune
-- (signer.communes). Coarse place names only, never an address; NULL for
-- certificates reserved before this version (they go to the ZIP of
-- records without a commune).
ALTER TABLE certificates ADD COLUMN province TEXT;
ALTER TABLE certificates ADD COLUMN commune TEXT;
