-- Migration 10: webhook endpoints, their signing secrets and a log of delivery attempts
-- (issue 14; design brief webhooks.md §2, §4).
--
-- Delivery state is one cursor per endpoint (the seq of the last event it acknowledged) plus
-- the retry state of the event after it: no row per event and endpoint, so a change's
-- transaction never writes webhook tables, and an endpoint added later starts at the head.
CREATE TABLE webhook_endpoints (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    url             TEXT NOT NULL,
    -- A JSON array of event types; NULL: every type.
    event_types     TEXT,
    format          TEXT NOT NULL CHECK (format IN ('standard', 'chat')),
    allow_http      INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'healthy'
                    CHECK (state IN ('healthy', 'retrying', 'paused')),
    cursor          INTEGER NOT NULL,
    -- Failed attempts at the event after `cursor`, when the next one is due, and since when
    -- the endpoint has been failing (the retry window counts from there).
    head_attempts   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    failing_since   TEXT,
    last_attempt_at TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    last_success_at TEXT,
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL
);

-- Signing secrets: the current one has no expiry; rotated-out ones sign beside it until
-- `expires`. Unlike bearer tokens they must be readable, so backups hold them.
CREATE TABLE webhook_secrets (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_seq INTEGER NOT NULL REFERENCES webhook_endpoints (seq) ON DELETE CASCADE,
    secret       BLOB NOT NULL,
    created      TEXT NOT NULL,
    expires      TEXT
);
CREATE INDEX webhook_secrets_endpoint ON webhook_secrets (endpoint_seq, seq);

-- Diagnostics only, bounded per endpoint by rows and age. `event_seq` is NULL for a test.
CREATE TABLE webhook_attempts (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_seq INTEGER NOT NULL REFERENCES webhook_endpoints (seq) ON DELETE CASCADE,
    event_seq    INTEGER,
    attempt      INTEGER NOT NULL,
    trigger      TEXT NOT NULL CHECK (trigger IN ('scheduled', 'manual', 'test')),
    at           TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    status       INTEGER,
    error        TEXT,
    response     TEXT
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_seq, seq);

-- A random id of this database's event history, part of every `webhook-id`: after a restore
-- seqs are reused with new content, and receivers deduplicate on the id. `scimd restore`
-- draws a new one. OR IGNORE keeps an id already there (nothing else writes this key).
INSERT OR IGNORE INTO settings (key, value)
VALUES ('feed_epoch', json_quote(lower(hex(randomblob(8)))));
