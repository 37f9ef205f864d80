-- Migration 14: the console's people views (issue 15).
--
-- When each suspended user was suspended: kept by the writes that change `active`, so the
-- Users list shows it without reading history. Users suspended before this version get their
-- last change's time, the closest thing the row knows.
ALTER TABLE users ADD COLUMN suspended_since TEXT;
UPDATE users SET suspended_since = last_modified WHERE active = 0;
-- Suspended users are listed through migration 11's partial index `users_suspended`, which
-- holds them only: an index of every user's `active` would be one more b-tree written on
-- every user write, for a filter ("active") that selects nearly everyone anyway.

-- A deleted user's name and who deleted it, written in the delete's transaction, so the
-- console can still show a page for it (SCIM answers 404 as before).
CREATE TABLE user_tombstones (
    id           TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL,
    display_name TEXT,
    deleted_at   TEXT NOT NULL,
    deleted_by   TEXT NOT NULL
) WITHOUT ROWID;
-- A tombstone goes once the audit log no longer reaches back to the delete (retention).
CREATE INDEX user_tombstones_at ON user_tombstones (deleted_at);

-- The console's search as you type: a word index of the text an admin searches by (rowid =
-- users.seq), so the start of any word of a name or an email is an index lookup at 1,000,000
-- users instead of a scan of every document. Words, not trigrams: a trigram index holds some
-- 150 terms a user against some 15. Contentless: the text lives in `users` only.
CREATE VIRTUAL TABLE users_search USING fts5 (
    user_name, names, emails, external_id, title, department,
    tokenize = 'unicode61 remove_diacritics 2', content = '', contentless_delete = 1
);

-- The index is kept off the write path: written in the SCIM write's own transaction, even as
-- words, it made every user write a fifth slower (FTS5 writes a segment per transaction).
-- Triggers only note which users changed, whatever wrote them, in the same transaction; the
-- server indexes the noted users in batches when writes pause (one segment for many users),
-- and a console search first indexes whatever is still noted, so it never misses a write.
CREATE TABLE users_search_dirty (seq INTEGER PRIMARY KEY);

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT OR IGNORE INTO users_search_dirty (seq) VALUES (NEW.seq);
END;

CREATE TRIGGER users_search_update AFTER UPDATE OF data ON users BEGIN
    INSERT OR IGNORE INTO users_search_dirty (seq) VALUES (NEW.seq);
END;

CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    INSERT OR IGNORE INTO users_search_dirty (seq) VALUES (OLD.seq);
END;

-- Existing users, in one statement: FTS5 flushes its segments to disk as it goes, so memory
-- stays bounded however many users there are.
INSERT INTO users_search (rowid, user_name, names, emails, external_id, title, department)
SELECT seq, user_name,
       concat_ws(' ', display_name, json_extract(data, '$.name.formatted'),
                 json_extract(data, '$.name.givenName'), json_extract(data, '$.name.familyName')),
       (SELECT group_concat(json_extract(e.value, '$.value'), ' ')
        FROM json_each(data, '$.emails') e),
       external_id, json_extract(data, '$.title'),
       json_extract(data, '$."urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".department')
FROM users;
