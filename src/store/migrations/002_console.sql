-- Migration 2: the admin console. Administrators and their sessions, the audit log, settings,
-- and what the console shows about tokens.

-- Console accounts. Passwords are argon2id PHC strings; the name is unique case-insensitively.
CREATE TABLE admins (
    seq           INTEGER PRIMARY KEY,
    username      TEXT NOT NULL,
    username_fold TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL
);

-- Console sessions. The cookie carries a random secret; only its SHA-256 digest is stored.
-- `csrf` is sent back by the console in a header on every state-changing request.
CREATE TABLE sessions (
    digest    BLOB PRIMARY KEY,
    admin_seq INTEGER NOT NULL REFERENCES admins (seq) ON DELETE CASCADE,
    csrf      TEXT NOT NULL,
    created   TEXT NOT NULL,
    expires   TEXT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires);

-- Every change and every rejected request, newest last. `actor` is a token name or an admin
-- username; `detail` is JSON: what changed (attribute before → after, members added/removed)
-- or the error. Secrets never appear here.
CREATE TABLE audit (
    seq           INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    actor_kind    TEXT NOT NULL,
    actor         TEXT NOT NULL,
    client        TEXT NOT NULL,
    user_agent    TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    resource_name TEXT,
    outcome       TEXT NOT NULL,
    status        INTEGER NOT NULL,
    detail        TEXT
);
-- Each filter of the console is an index range read newest-first (keyset on seq).
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE INDEX audit_action ON audit (action, seq);
CREATE INDEX audit_outcome ON audit (outcome, seq);
CREATE INDEX audit_at ON audit (at);
-- The resources an entry concerns: the resource itself and, for a membership change, each
-- member added or removed (capped), so a user's history shows "removed from Finance".
CREATE TABLE audit_refs (
    audit_seq   INTEGER NOT NULL REFERENCES audit (seq) ON DELETE CASCADE,
    resource_id TEXT NOT NULL
);
CREATE INDEX audit_refs_resource ON audit_refs (resource_id, audit_seq);
CREATE INDEX audit_refs_audit ON audit_refs (audit_seq);

-- Console settings (audit retention, …), one row per key, values as JSON.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- What the console shows about a token's last request; `revoked` may now lie in the future:
-- a regenerated token's old secret keeps working until then.
ALTER TABLE tokens ADD COLUMN last_client TEXT;
ALTER TABLE tokens ADD COLUMN last_request TEXT;
