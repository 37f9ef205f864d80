-- Migration 9: a token's scope (issue 14). `write` is what an identity provider needs and
-- what every token could do before, so existing tokens keep it; `read` may look users and
-- groups up and follow the change feed, never change anything.
ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'write'
    CHECK (scope IN ('read', 'write'));
