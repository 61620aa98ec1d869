-- Issuance ledger, version 1 (docs/ledger.md "Data model"); same tables as sqlite/0001_initial.sql.

CREATE TABLE ledger_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE certificates (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uvci              TEXT NOT NULL UNIQUE,
    centre            TEXT NOT NULL,
    record_id         TEXT NOT NULL,
    record_hash       TEXT NOT NULL,
    generation        INTEGER NOT NULL CHECK (generation >= 0),
    citizen_hash      TEXT,
    out_dir           TEXT NOT NULL,
    line              BIGINT NOT NULL,
    verified          INTEGER NOT NULL CHECK (verified IN (0, 1)),
    override_operator TEXT,
    override_reason   TEXT,
    kid               TEXT,
    iat               BIGINT,
    exp               BIGINT,
    exp_clamped       INTEGER,
    payload_hash      TEXT,
    files             TEXT,
    state             TEXT NOT NULL CHECK (state IN ('reserved', 'signed', 'written', 'superseded', 'revoked', 'released')),
    superseded_by     TEXT,
    revoked_reason    TEXT,
    actor             TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (centre, record_id, record_hash, generation)
);
CREATE UNIQUE INDEX certificates_one_pending ON certificates (centre, record_id) WHERE state IN ('reserved', 'signed');
CREATE UNIQUE INDEX certificates_one_written ON certificates (centre, record_id) WHERE state = 'written';
CREATE INDEX certificates_record ON certificates (record_id, centre);
CREATE INDEX certificates_citizen ON certificates (citizen_hash) WHERE citizen_hash IS NOT NULL;
CREATE INDEX certificates_centre_iat ON certificates (centre, iat);
CREATE INDEX certificates_kid ON certificates (kid);
CREATE INDEX certificates_exp ON certificates (exp) WHERE state = 'written';
CREATE INDEX certificates_out_dir ON certificates (out_dir, state);

CREATE TABLE events (
    seq       BIGINT PRIMARY KEY,
    at        TEXT NOT NULL,
    uvci      TEXT NOT NULL,
    state     TEXT NOT NULL,
    actor     TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX events_uvci ON events (uvci);

CREATE TABLE chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '');

CREATE FUNCTION ledger_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger % are append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse();
CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse();
