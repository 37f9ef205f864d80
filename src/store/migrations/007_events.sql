-- Migration 7: the change events outbox (issue 14; design brief webhooks.md §2).
--
-- One row per event, written in the transaction of the change it describes, so an event
-- exists if and only if its change committed. With one writer, `seq` is assigned in commit
-- order, so a consumer reading `seq > cursor` never skips a row that commits late.
-- AUTOINCREMENT: once retention has emptied the table, plain rowids would start again at 1,
-- behind every consumer's cursor.
--
-- `payload` is the event's JSON exactly as it is served and sent, frozen at commit time:
-- rendering it later would leak later state into earlier events, and a re-serialised body
-- would break its signatures.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    type     TEXT NOT NULL,
    payload  TEXT NOT NULL
);
CREATE INDEX events_at ON events (at);
