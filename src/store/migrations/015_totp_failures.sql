-- Migration 15: wrong two-factor codes in a row per administrator. `totp_failures` counts
-- wrong codes (TOTP or recovery) since a code was last accepted; from the tenth on, each wrong
-- code blocks TOTP codes until `totp_blocked_until` (15 minutes, doubling, at most a day) for
-- every browser that is not a remembered device of the account (recovery codes still work).
-- In the database, so a restart does not forget it and `scimd admin set-password` (another
-- process) clears it.
ALTER TABLE admins ADD COLUMN totp_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE admins ADD COLUMN totp_blocked_until TEXT;
