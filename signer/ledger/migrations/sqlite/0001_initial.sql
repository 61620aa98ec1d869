-- Issuance ledger, version 1 (docs/ledger.md "Data model").

-- Settings of this ledger: the check value of its key (never the key).
CREATE TABLE ledger_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per certificate (UVCI) ever reserved.
CREATE TABLE certificates (
    id                INTEGER PRIMARY KEY,
    uvci              TEXT NOT NULL UNIQUE,
    centre            TEXT NOT NULL,
    record_id         TEXT NOT NULL,
    record_hash       TEXT NOT NULL,     -- keyed hash of the record data
    generation        INTEGER NOT NULL CHECK (generation >= 0),
    citizen_hash      TEXT,              -- keyed hash of the citizen ID; NULL when the record has none
    out_dir           TEXT NOT NULL,
    line              INTEGER NOT NULL,
    verified          INTEGER NOT NULL CHECK (verified IN (0, 1)),
    override_operator TEXT,
    override_reason   TEXT,
    kid               TEXT,
    iat               INTEGER,
    exp               INTEGER,
    exp_clamped       INTEGER,
    payload_hash      TEXT,              -- SHA-256 of the signed CWT payload
    files             TEXT,              -- JSON [[name, sha256, size], ...]
    state             TEXT NOT NULL CHECK (state IN ('reserved', 'signed', 'written', 'superseded', 'revoked', 'released')),
    superseded_by     TEXT,
    revoked_reason    TEXT,
    actor             TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    -- the natural key: the same record data is issued once per generation
    UNIQUE (centre, record_id, record_hash, generation)
);
-- At most one certificate of a record in the making, and one current.
CREATE UNIQUE INDEX certificates_one_pending ON certificates (centre, record_id) WHERE state IN ('reserved', 'signed');
CREATE UNIQUE INDEX certificates_one_written ON certificates (centre, record_id) WHERE state = 'written';
CREATE INDEX certificates_record ON certificates (record_id, centre);
CREATE INDEX certificates_citizen ON certificates (citizen_hash) WHERE citizen_hash IS NOT NULL;
CREATE INDEX certificates_centre_iat ON certificates (centre, iat);
CREATE INDEX certificates_kid ON certificates (kid);
CREATE INDEX certificates_exp ON certificates (exp) WHERE state = 'written';
CREATE INDEX certificates_out_dir ON certificates (out_dir, state);

-- Append-only audit trail: every state change, chained by keyed hash.
CREATE TABLE events (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    uvci      TEXT NOT NULL,
    state     TEXT NOT NULL,
    actor     TEXT NOT NULL,
    detail    TEXT NOT NULL,             -- canonical JSON of the fields this change set
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX events_uvci ON events (uvci);

-- The last event's number and hash: deleting the newest events is noticed.
CREATE TABLE chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '');

-- Guard rails against accidents (not against someone who drops them:
-- `signer ledger verify` catches that).
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'ledger events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'ledger events are append-only');
END;
CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates
BEGIN
    SELECT RAISE(ABORT, 'ledger certificates are never deleted');
END;
