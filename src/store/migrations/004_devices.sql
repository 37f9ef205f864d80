-- Migration 4: console device cookies (OWASP "device cookies"). A browser that signed in as
-- an administrator gets a long-lived random token; only its SHA-256 digest is stored. A
-- device passes the per-username sign-in limit, so guessers cannot lock out the owner's
-- browser, whatever its address and across restarts. Bounded per administrator (the least
-- recently used go first); `scimd admin set-password` removes an administrator's devices.
CREATE TABLE admin_devices (
    digest    BLOB PRIMARY KEY,
    admin_seq INTEGER NOT NULL REFERENCES admins (seq) ON DELETE CASCADE,
    created   TEXT NOT NULL,
    last_used TEXT NOT NULL
);
CREATE INDEX admin_devices_admin ON admin_devices (admin_seq, last_used);
