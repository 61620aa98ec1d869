-- Citizen portal and health-centre API (issue 12; docs/portal.md "Data model").
-- Same rule as the ledger: no citizen ID, name, date of birth or phone in
-- clear. Keyed hashes (sub-keys of the ledger key), the phone encrypted.

-- Who may look up which record's certificates: written by every batch run
-- (signer.web.holders.register_holders), one row per (centre, record).
CREATE TABLE holders (
    centre        TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    citizen_hash  TEXT NOT NULL,       -- the ledger's keyed hash of the ID (certificates.citizen_hash)
    lookup_hash   TEXT NOT NULL,       -- keyed hash of ID + date of birth (as in the record)
    phone_enc     TEXT,                -- AES-256-GCM of the E.164 phone; NULL when the record has none
    phone_hash    TEXT,                -- keyed hash of the phone (rate limits); NULL when none
    phone_source  TEXT,                -- 'record' or 'claim' (set by the citizen with a claim code)
    record_phone  TEXT,                -- phone_hash of the record's own phone at the last run: a claimed
                                       -- phone is kept until the record brings a different one
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (centre, record_id)
);
CREATE INDEX holders_lookup ON holders (lookup_hash);
CREATE INDEX holders_citizen ON holders (citizen_hash);

-- One-time codes sent by SMS: only a salted slow hash of the code.
CREATE TABLE otp_challenges (
    id            TEXT PRIMARY KEY,    -- SHA-256 of the random challenge token
    binding       TEXT NOT NULL,       -- SHA-256 of the browser's pre-session cookie that asked
    lookup_hash   TEXT,                -- NULL for a decoy (nothing matched: same response)
    lookups       TEXT NOT NULL DEFAULT '[]', -- JSON: every lookup_hash the look-up matched (for a resend)
    sent_to       TEXT NOT NULL DEFAULT '[]', -- JSON: one slot per phone the code went to:
                                       -- [{"phone": phone_hash, "rows": [[centre, record_id], ...]}];
                                       -- the typed code picks its slot, the session gets those rows only
    lock_key      TEXT NOT NULL,       -- rate bucket of ID + birth YEAR (the same for real and decoy
                                       -- look-ups) that failures and sends count against (signer.web.limits)
    code_hash     TEXT NOT NULL,       -- scrypt(peppered code core, salt)
    salt          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,    -- epoch seconds
    expires_at    BIGINT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    used_at       BIGINT
);
CREATE INDEX otp_challenges_expiry ON otp_challenges (expires_at);

-- Claim codes printed on slips / reconciliation lists: the fallback when the
-- phone on the record is wrong or missing. High entropy: a keyed hash suffices.
CREATE TABLE claim_codes (
    code_hash     TEXT PRIMARY KEY,
    centre        TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    created_by    TEXT NOT NULL
);
CREATE INDEX claim_codes_record ON claim_codes (centre, record_id);

-- Signed-in citizens. The cookie holds a random token; the table its SHA-256.
CREATE TABLE portal_sessions (
    id_hash       TEXT PRIMARY KEY,
    holder_rows   TEXT NOT NULL,       -- JSON [[centre, record_id, citizen_hash], ...]: the holder rows whose
                                       -- phone received the code typed; the session sees only their certificates
    secret        TEXT NOT NULL,       -- per-session key of the random URL handles
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ended_at      BIGINT
);

-- The citizen's own access log, per holder row: when and from where their passport was fetched.
-- (Changed by the review fixes of issue 12: it was per citizen_hash, which any holder row with
-- the same ID could read; portal_sessions changed alike. Not used by the centre API.)
CREATE TABLE portal_access (
    id            BIGSERIAL PRIMARY KEY,
    centre        TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    citizen_hash  TEXT NOT NULL,
    at            BIGINT NOT NULL,
    action        TEXT NOT NULL,       -- sign_in, view, pdf, qr, phone_set
    uvci          TEXT,
    network       TEXT NOT NULL,       -- client address truncated (/24, /48)
    agent         TEXT NOT NULL        -- a short browser description
);
CREATE INDEX portal_access_holder ON portal_access (centre, record_id, at);

-- Rate limits and lockouts: one row per counted event, by bucket.
CREATE TABLE rate_hits (
    bucket        TEXT NOT NULL,       -- e.g. 'lookup:ip:<hash>', 'fail:id:<hash>'
    at            BIGINT NOT NULL
);
CREATE INDEX rate_hits_bucket ON rate_hits (bucket, at);

-- Health centres' API keys: HMAC (PortalKeys.api_key_hash) of a 256-bit random key.
CREATE TABLE api_keys (
    key_hash      TEXT PRIMARY KEY,
    centre        TEXT NOT NULL,
    label         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX api_keys_centre ON api_keys (centre);

-- Records files submitted through the API, one job each.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,  -- random 128 bits, hex
    centre          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    body_sha256     TEXT NOT NULL,
    format          TEXT NOT NULL,     -- csv or jsonl
    state           TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    counts          TEXT NOT NULL DEFAULT '{}',
    error           TEXT,
    dir             TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    -- added by the API engineer (signer/web/jobs.py): who runs it, for resuming after a crash
    runner          TEXT,              -- host:pid of the server process running it
    heartbeat       INTEGER,           -- epoch seconds, refreshed while it runs; stale = resumable
    attempts        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (centre, idempotency_key)
);
CREATE INDEX jobs_state ON jobs (state);
