-- Issuance ledger, version 4: the indexes a batch run keeps up and reads
-- (docs/benchmarks.md, "Issuance ledger at scale, session 12").
--
-- holders_citizen (version 2) served no query: the portal finds holder rows
-- by lookup_hash (sign-in) or by (centre, record_id) (their primary key), and
-- a session's certificates through certificates (centre, record_id). A keyed
-- hash is random, so every new holder row wrote a page of this index of its
-- own: at 90,000 certificates about 9 ms of SQLite for each batch of 256.
DROP INDEX IF EXISTS holders_citizen;
-- One centre per output folder (signer.batch.check_folder_centre, at every
-- run's start): the lowest and highest centre of the folder, two index
-- look-ups instead of reading every certificate of the folder (50 ms at
-- 90,000). Rows of one folder and centre are added at the index's end.
CREATE INDEX certificates_out_dir_centre ON certificates (out_dir, centre);
