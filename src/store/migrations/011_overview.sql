-- Migration 11: what the console's Overview reads (issue 15).
--
-- Requests and failures of SCIM clients, per hour (hours since the Unix epoch, UTC): per
-- token secret (`token_seq`: a revoked or rotated-out secret that still arrives counts
-- against its token), and failed authentications without any token of ours per client
-- address. Counted in memory and added here every half minute, so a request costs no
-- write; kept about 35 days. The address table holds at most a bounded number of addresses
-- per hour, the rest folded into one row named 'other'.
CREATE TABLE token_activity (
    hour       INTEGER NOT NULL,
    token_seq  INTEGER NOT NULL,
    requests   INTEGER NOT NULL,
    failures   INTEGER NOT NULL,
    -- Refused as a revoked or rotated-out secret (401s): a client still sending an old one.
    refused    INTEGER NOT NULL,
    PRIMARY KEY (hour, token_seq)
) WITHOUT ROWID;
CREATE TABLE client_failures (
    hour      INTEGER NOT NULL,
    client    TEXT NOT NULL,
    failures  INTEGER NOT NULL,
    PRIMARY KEY (hour, client)
) WITHOUT ROWID;

-- "Expect a request from this token at least every N hours": the Overview warns when a
-- token is silent for longer. NULL: no expectation, no warning.
ALTER TABLE tokens ADD COLUMN expect_every_hours INTEGER;

-- The week's joiners, suspensions, reactivations and deletions: the newest few of one type
-- and how many there were, each an index range however busy the directory. Partial: the
-- updates and group events most writes append are not in it (`store::overview` repeats this
-- WHERE term so SQLite may use it).
CREATE INDEX events_people ON events (type, at)
    WHERE type IN ('user.created', 'user.deactivated', 'user.reactivated', 'user.deleted');

-- How many users are suspended, without reading every user's row.
CREATE INDEX users_suspended ON users (seq) WHERE active = 0;
