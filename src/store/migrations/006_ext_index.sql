-- Migration 6: indexes on declared extension attributes (issue 13; design brief §6). A side
-- table per resource type holds one row per value of each indexed attribute, written by scimd
-- in the transaction of every write, like `user_emails`: no run-time DDL, multi-valued
-- attributes for free, folded by the filters' own Rust function.
--
-- `scim_schemas.indexed`: the attribute paths (`badgeNumber`, `sshKeys.value`) an
-- administrator marked as indexed for frequent lookups, a JSON array. Attributes with
-- `uniqueness` server or global are indexed whether listed or not.
ALTER TABLE scim_schemas ADD COLUMN indexed TEXT NOT NULL DEFAULT '[]';

-- One row per indexed attribute of a declaration, with what writing its values needs, so a
-- write never parses declarations. `state` is `building` while an online backfill fills the
-- side rows of existing resources (up to `backfilled`, a resource seq), then `ready`: only then
-- do filters read the side rows. Ids are never reused, so a stale registry never reads rows of
-- another attribute.
CREATE TABLE scim_indexed_attrs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    urn           TEXT NOT NULL,
    urn_fold      TEXT NOT NULL,
    attr          TEXT NOT NULL,
    sub           TEXT,
    type          TEXT NOT NULL,
    case_exact    INTEGER NOT NULL,
    uniq          INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('building', 'ready')),
    backfilled    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX scim_indexed_attrs_urn ON scim_indexed_attrs (urn_fold);

-- `text`: strings (folded unless caseExact), references, binaries, dateTimes as stored;
-- `num`: numbers and booleans (0/1); `ukey`: the uniqueness key (`ident::key` unless
-- caseExact; numbers in their JSON spelling), only for attributes with uniqueness.
CREATE TABLE user_ext_values (
    user_seq INTEGER NOT NULL REFERENCES users (seq) ON DELETE CASCADE,
    attr_id  INTEGER NOT NULL REFERENCES scim_indexed_attrs (id) ON DELETE CASCADE,
    text     TEXT,
    num      REAL,
    ukey     TEXT
);
CREATE INDEX user_ext_values_text ON user_ext_values (attr_id, text);
CREATE INDEX user_ext_values_num ON user_ext_values (attr_id, num) WHERE num IS NOT NULL;
CREATE INDEX user_ext_values_seq ON user_ext_values (user_seq);
CREATE UNIQUE INDEX user_ext_values_unique ON user_ext_values (attr_id, ukey)
    WHERE ukey IS NOT NULL;

CREATE TABLE group_ext_values (
    group_seq INTEGER NOT NULL REFERENCES groups (seq) ON DELETE CASCADE,
    attr_id   INTEGER NOT NULL REFERENCES scim_indexed_attrs (id) ON DELETE CASCADE,
    text      TEXT,
    num       REAL,
    ukey      TEXT
);
CREATE INDEX group_ext_values_text ON group_ext_values (attr_id, text);
CREATE INDEX group_ext_values_num ON group_ext_values (attr_id, num) WHERE num IS NOT NULL;
CREATE INDEX group_ext_values_seq ON group_ext_values (group_seq);
CREATE UNIQUE INDEX group_ext_values_unique ON group_ext_values (attr_id, ukey)
    WHERE ukey IS NOT NULL;
