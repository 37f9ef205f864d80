-- Migration 14: the console's people views (issue 15).
--
-- When each suspended user was suspended: kept by the writes that change `active`, so the
-- Users list shows it without reading history. Users suspended before this version get their
-- last change's time, the closest thing the row knows.
ALTER TABLE users ADD COLUMN suspended_since TEXT;
UPDATE users SET suspended_since = last_modified WHERE active = 0;
CREATE INDEX users_active ON users (active);
-- It also answers the Overview's count of suspended users, which migration 11's partial
-- index did: one index on every user write, not two.
DROP INDEX users_suspended;

-- A deleted user's name and who deleted it, written in the delete's transaction, so the
-- console can still show a page for it (SCIM answers 404 as before).
CREATE TABLE user_tombstones (
    id           TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL,
    display_name TEXT,
    deleted_at   TEXT NOT NULL,
    deleted_by   TEXT NOT NULL
) WITHOUT ROWID;

-- The console's search as you type: a word index of the text an admin searches by (rowid =
-- users.seq), so the start of any word of a name or an email is an index lookup at 1,000,000
-- users instead of a scan of every document. Words, not trigrams: a trigram index made every
-- user write about a quarter slower (some 150 terms a user against some 15). Contentless: the
-- text lives in `users` only. Triggers keep it in the transaction of every write to a user's
-- document, whatever writes it.
CREATE VIRTUAL TABLE users_search USING fts5 (
    user_name, names, emails, external_id, title, department,
    tokenize = 'unicode61 remove_diacritics 2', content = '', contentless_delete = 1
);

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search (rowid, user_name, names, emails, external_id, title, department)
    VALUES (
        NEW.seq, NEW.user_name,
        concat_ws(' ', NEW.display_name, json_extract(NEW.data, '$.name.formatted'),
                  json_extract(NEW.data, '$.name.givenName'),
                  json_extract(NEW.data, '$.name.familyName')),
        (SELECT group_concat(json_extract(e.value, '$.value'), ' ')
         FROM json_each(NEW.data, '$.emails') e),
        NEW.external_id, json_extract(NEW.data, '$.title'),
        json_extract(NEW.data,
                     '$."urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".department'));
END;

CREATE TRIGGER users_search_update AFTER UPDATE OF data ON users BEGIN
    DELETE FROM users_search WHERE rowid = OLD.seq;
    INSERT INTO users_search (rowid, user_name, names, emails, external_id, title, department)
    VALUES (
        NEW.seq, NEW.user_name,
        concat_ws(' ', NEW.display_name, json_extract(NEW.data, '$.name.formatted'),
                  json_extract(NEW.data, '$.name.givenName'),
                  json_extract(NEW.data, '$.name.familyName')),
        (SELECT group_concat(json_extract(e.value, '$.value'), ' ')
         FROM json_each(NEW.data, '$.emails') e),
        NEW.external_id, json_extract(NEW.data, '$.title'),
        json_extract(NEW.data,
                     '$."urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".department'));
END;

CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    DELETE FROM users_search WHERE rowid = OLD.seq;
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
