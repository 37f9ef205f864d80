-- Migration 3: Unicode-safe identifiers. `user_name_fold` and `display_name_fold` now hold
-- the uniqueness key (`scim::ident::key`: NFKC, full case folding, trimmed) instead of a plain
-- lowercase, and email values and types the new fold. Names that were distinct under the old
-- fold but share the new key (`straße`/`STRASSE`) are both kept, never merged, and reported
-- by `scimd check`; so the key's index is no longer UNIQUE and scimd enforces uniqueness on
-- every write (it has one writer). SQLite cannot drop a column's UNIQUE, hence the rebuilds:
-- `migrate` runs this with foreign keys off, so dropping the old tables cascades to nothing,
-- and every `seq` is kept, so every reference still holds.

CREATE TABLE users_new (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    user_name      TEXT NOT NULL,
    user_name_fold TEXT NOT NULL,
    external_id    TEXT,
    display_name   TEXT,
    active         INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    created        TEXT NOT NULL,
    last_modified  TEXT NOT NULL,
    data           TEXT NOT NULL
);
INSERT INTO users_new (seq, id, user_name, user_name_fold, external_id, display_name, active,
                       version, created, last_modified, data)
SELECT seq, id, user_name, scim_key(user_name), external_id, display_name, active, version,
       created, last_modified, data
FROM users ORDER BY seq;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_external_id ON users (external_id);
CREATE INDEX users_user_name_key ON users (user_name_fold);

CREATE TABLE groups_new (
    seq                INTEGER PRIMARY KEY,
    id                 TEXT NOT NULL UNIQUE,
    display_name       TEXT NOT NULL,
    display_name_fold  TEXT NOT NULL,
    external_id        TEXT,
    version            INTEGER NOT NULL,
    created            TEXT NOT NULL,
    last_modified      TEXT NOT NULL,
    data               TEXT NOT NULL
);
INSERT INTO groups_new (seq, id, display_name, display_name_fold, external_id, version, created,
                        last_modified, data)
SELECT seq, id, display_name, scim_key(display_name), external_id, version, created,
       last_modified, data
FROM groups ORDER BY seq;
DROP TABLE groups;
ALTER TABLE groups_new RENAME TO groups;
CREATE INDEX groups_external_id ON groups (external_id);
CREATE INDEX groups_display_name_key ON groups (display_name_fold);

-- Email rows again from the documents, as `store::users` derives them.
DELETE FROM user_emails;
INSERT INTO user_emails (user_seq, value_fold, type_fold, is_primary)
SELECT u.seq,
       scim_fold(json_extract(e.value, '$.value')),
       CASE WHEN json_type(e.value, '$.type') = 'text'
            THEN scim_fold(json_extract(e.value, '$.type')) END,
       json_type(e.value, '$.primary') IS 'true'
FROM users u, json_each(u.data, '$.emails') e
WHERE json_type(u.data, '$.emails') = 'array'
  AND e.type = 'object' AND json_type(e.value, '$.value') = 'text'
ORDER BY u.seq, e.id;
