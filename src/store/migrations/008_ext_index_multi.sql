-- Migration 8: whether an indexed attribute is multi-valued (review #3). A single-valued one
-- indexes only a value of its own shape (a scalar, or one object for a sub-attribute), not the
-- items of a list stored before it was declared; a multi-valued one indexes each item. Taken
-- from the stored declaration (`multiValued` defaults to false, RFC 7643 §2.2).
ALTER TABLE scim_indexed_attrs ADD COLUMN multi INTEGER NOT NULL DEFAULT 0;
UPDATE scim_indexed_attrs SET multi = 1 WHERE EXISTS (
    SELECT 1 FROM scim_schemas s, json_each(s.definition, '$.attributes') a
    WHERE s.urn_fold = scim_indexed_attrs.urn_fold
      AND lower(json_extract(a.value, '$.name')) = lower(scim_indexed_attrs.attr)
      AND json_extract(a.value, '$.multiValued') = 1
);
-- Single-valued indexes were filled from lists too: rebuilt from the documents by the online
-- backfill (each resource's rows rewritten; the new rows are a subset of the old, so a unique
-- one cannot conflict). Filters read the documents until each is ready again.
UPDATE scim_indexed_attrs SET state = 'building', backfilled = 0 WHERE multi = 0;
