-- Migration 11: the audit log's console filters.
-- `derived` is the action a change amounts to when its action code does not say it: a
-- user.patch or user.replace that turns `active` off is a suspension (user.suspend), one that
-- turns it back on a reactivation (user.reactivate). It is filled when the entry is written
-- (service::audit::derived) and here for entries written before, by the same rule: after is
-- false and before was not (absent means active), or before was false and after is not.
ALTER TABLE audit ADD COLUMN derived TEXT;
UPDATE audit SET derived = (
    SELECT CASE
        WHEN json_type(c.value, '$.after') = 'false' THEN 'user.suspend'
        ELSE 'user.reactivate' END
    FROM json_each(audit.detail, '$.changes') c
    WHERE json_extract(c.value, '$.path') = 'active'
      AND (json_type(c.value, '$.after') = 'false') <> (json_type(c.value, '$.before') = 'false')
    LIMIT 1)
WHERE action IN ('user.patch', 'user.replace') AND detail IS NOT NULL;
CREATE INDEX audit_derived ON audit (derived, seq) WHERE derived IS NOT NULL;

-- Actor filters compare the Unicode case fold (scim_fold), as userName does.
ALTER TABLE audit ADD COLUMN actor_fold TEXT NOT NULL DEFAULT '';
UPDATE audit SET actor_fold = scim_fold(actor);
DROP INDEX audit_actor;
CREATE INDEX audit_actor ON audit (actor_fold, seq);

-- Action codes are ASCII (user.patch, "GET /scim/v2/Users"): NOCASE folds them all.
DROP INDEX audit_action;
CREATE INDEX audit_action ON audit (action COLLATE NOCASE, seq);

-- "Console actions": what administrators did. Partial, so the entries of SCIM writes (nearly
-- all of them) add nothing to it (`store::audit` writes this term word for word).
CREATE INDEX audit_admin ON audit (seq) WHERE actor_kind = 'admin';

-- A resource filter by name finds deleted users and groups by the name they had when they
-- were deleted (current names are looked up where they live). Partial: indexing every
-- entry's name put a random-order b-tree insert on every write, some 10% of PATCH throughput
-- (`store::audit` writes this term word for word).
CREATE INDEX audit_resource_name ON audit (resource_name COLLATE NOCASE, resource_id)
    WHERE action IN ('user.delete', 'group.delete');
