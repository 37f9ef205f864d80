-- Migration 5: extension schemas declared by an administrator (issue 13). One row per schema:
-- its RFC 7643 §7 document as scimd normalised it, which resource type it extends and whether
-- that type requires it. `urn_fold` (ASCII lower case: schema ids are ASCII) keeps ids unique
-- case-insensitively, as RFC 7643 §2.1 compares them. Declarations only describe data:
-- removing or changing one never touches users' or groups' stored documents.
CREATE TABLE scim_schemas (
    urn           TEXT PRIMARY KEY,
    urn_fold      TEXT NOT NULL UNIQUE,
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    required      INTEGER NOT NULL,
    definition    TEXT NOT NULL,
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL
);

-- Bumped in the transaction of every change to `scim_schemas`, so a running server notices a
-- change made by another process (`scimd schema add` beside `scimd serve`) with one tiny read.
CREATE TABLE scim_schema_generation (
    only       INTEGER PRIMARY KEY CHECK (only = 1),
    generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO scim_schema_generation (only, generation) VALUES (1, 0);
