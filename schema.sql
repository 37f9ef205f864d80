-- scimd database schema, migration 1. Later migrations are appended in src/store/migrate.rs;
-- PRAGMA user_version records how many have run.
--
-- Resources keep the columns that lookups, ordering and uniqueness need, plus the full SCIM
-- document (without id, meta, members or groups, which are derived) as JSON in `data`.
-- Case-insensitive attributes (RFC 7643 caseExact=false) also store a folded copy computed in
-- Rust with full Unicode lowercasing; SQLite's NOCASE folds ASCII only.
-- Timestamps are UTC RFC 3339 text with millisecond precision, so text order is time order.

CREATE TABLE users (
    seq            INTEGER PRIMARY KEY,          -- insertion order: stable list order
    id             TEXT NOT NULL UNIQUE,
    user_name      TEXT NOT NULL,
    user_name_fold TEXT NOT NULL UNIQUE,
    external_id    TEXT,
    display_name   TEXT,
    active         INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    created        TEXT NOT NULL,
    last_modified  TEXT NOT NULL,
    data           TEXT NOT NULL
);
CREATE INDEX users_external_id ON users (external_id);

-- One row per email value, so `emails.value eq` and `emails[type eq "work"]` use an index.
CREATE TABLE user_emails (
    user_seq   INTEGER NOT NULL REFERENCES users (seq) ON DELETE CASCADE,
    value_fold TEXT NOT NULL,
    type_fold  TEXT,
    is_primary INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX user_emails_value ON user_emails (value_fold);
CREATE INDEX user_emails_user ON user_emails (user_seq);

CREATE TABLE groups (
    seq                INTEGER PRIMARY KEY,
    id                 TEXT NOT NULL UNIQUE,
    display_name       TEXT NOT NULL,
    display_name_fold  TEXT NOT NULL UNIQUE,
    external_id        TEXT,
    version            INTEGER NOT NULL,
    created            TEXT NOT NULL,
    last_modified      TEXT NOT NULL,
    data               TEXT NOT NULL
);
CREATE INDEX groups_external_id ON groups (external_id);

-- Membership as rows: adding or removing one member touches one row. A member is a user or a
-- group (nested groups); exactly one of the two references is set, and deleting the member
-- deletes its memberships.
CREATE TABLE group_members (
    group_seq        INTEGER NOT NULL REFERENCES groups (seq) ON DELETE CASCADE,
    member_user_seq  INTEGER REFERENCES users (seq) ON DELETE CASCADE,
    member_group_seq INTEGER REFERENCES groups (seq) ON DELETE CASCADE,
    CHECK ((member_user_seq IS NULL) <> (member_group_seq IS NULL))
);
-- Not partial, so they also serve `WHERE group_seq = ?` (a group's members); NULLs never
-- collide in a UNIQUE index.
CREATE UNIQUE INDEX group_members_user ON group_members (group_seq, member_user_seq);
CREATE UNIQUE INDEX group_members_group ON group_members (group_seq, member_group_seq);
CREATE INDEX group_members_by_user ON group_members (member_user_seq)
    WHERE member_user_seq IS NOT NULL;
CREATE INDEX group_members_by_group ON group_members (member_group_seq)
    WHERE member_group_seq IS NOT NULL;

-- Bearer tokens for SCIM clients. The secret is never stored: only its SHA-256 digest, looked
-- up by the public `lookup` part of the token.
CREATE TABLE tokens (
    seq        INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    lookup     TEXT NOT NULL UNIQUE,
    digest     BLOB NOT NULL,
    created    TEXT NOT NULL,
    last_used  TEXT,
    revoked    TEXT
);
-- Names identify live tokens; a revoked token keeps its row (and name) for the record.
CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked IS NULL;
