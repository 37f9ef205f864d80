-- Migration 11: the console's administrators as a team. When each last signed in; TOTP second
-- factors (RFC 6238) and their single-use recovery codes; one-time invitations; and what an
-- administrator's own sessions list shows (last seen, client address and user agent).

-- `totp_secret` is the base32 shared secret, stored as is: verifying a code needs it (backups
-- hold it, like webhook secrets). It is set at enrolment and counts only once `totp_enabled`
-- (a code confirmed it). `totp_last_step` is the last time step a code was accepted for, so
-- a code is never accepted twice (RFC 6238 §5.2).
ALTER TABLE admins ADD COLUMN last_sign_in TEXT;
ALTER TABLE admins ADD COLUMN totp_secret TEXT;
ALTER TABLE admins ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE admins ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;

-- Recovery codes: only their SHA-256 digests; each works once.
CREATE TABLE admin_recovery_codes (
    admin_seq INTEGER NOT NULL REFERENCES admins (seq) ON DELETE CASCADE,
    digest    BLOB NOT NULL,
    PRIMARY KEY (admin_seq, digest)
) WITHOUT ROWID;

-- Invitations: a random code in a link, only its SHA-256 digest here; single use, expiring.
CREATE TABLE admin_invites (
    digest     BLOB PRIMARY KEY,
    created_by TEXT NOT NULL,
    created    TEXT NOT NULL,
    expires    TEXT NOT NULL
);

ALTER TABLE sessions ADD COLUMN last_seen TEXT;
ALTER TABLE sessions ADD COLUMN client TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_admin ON sessions (admin_seq);
