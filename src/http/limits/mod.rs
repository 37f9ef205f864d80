//! Per-client limits, in one place: connections per client address, failed authentications
//! (SCIM and `/metrics`), and console sign-in and setup attempts. Every table is bounded in
//! entries, and so in bytes (a key is an address, or an address and a username of at most 64
//! characters), and fails closed when full: it refuses new keys or evicts its oldest entries,
//! it never stops counting. Clients are keyed by address, IPv6 clients by their /64, since one
//! host commonly holds a whole /64. The rejected-request audit queue is `service::audit`'s.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::service::admin::SignInFacts;
use crate::service::client_key;

mod connections;
pub use connections::{Admit, ConnectionSlot, Connections, InFlightRequest};

/// What a full table does with a key it does not hold yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    /// The new key is refused (counted as over its limit).
    Refuse,
    /// The oldest entries make room.
    EvictOldest,
}

#[derive(Debug, Clone, Copy)]
struct Count {
    n: u32,
    since: Instant,
    /// What the count is about (a password's fingerprint): a count made under another stamp
    /// is void, so a password change ends a lockout even when another process made it.
    stamp: u64,
}

/// Counts per key in fixed windows that start at a key's first count.
struct Table<K> {
    map: HashMap<K, Count>,
    max: usize,
    window: Duration,
    when_full: WhenFull,
    /// No entry started before this (so none expires before it ends): spares a full table
    /// a scan on every new key.
    oldest: Option<Instant>,
}

impl<K: Hash + Eq> Table<K> {
    fn new(max: usize, window: Duration, when_full: WhenFull) -> Self {
        Table {
            map: HashMap::new(),
            max,
            window,
            when_full,
            oldest: None,
        }
    }

    fn live(&self, c: &Count, stamp: u64, now: Instant) -> bool {
        c.stamp == stamp && now.saturating_duration_since(c.since) < self.window
    }

    /// The count for `key` in its current window, and how long until that window ends.
    fn get(&self, key: &K, stamp: u64, now: Instant) -> (u32, Duration) {
        match self.map.get(key) {
            Some(c) if self.live(c, stamp, now) => (
                c.n,
                self.window
                    .saturating_sub(now.saturating_duration_since(c.since)),
            ),
            _ => (0, Duration::ZERO),
        }
    }

    /// Counts one more for `key`; `false` when the table is full and refuses new keys.
    fn add(&mut self, key: K, stamp: u64, now: Instant) -> bool {
        if let Some(c) = self.map.get_mut(&key) {
            if c.stamp != stamp || now.saturating_duration_since(c.since) >= self.window {
                *c = Count {
                    n: 0,
                    since: now,
                    stamp,
                };
            }
            c.n = c.n.saturating_add(1);
            return true;
        }
        if self.map.len() >= self.max {
            self.drop_expired(now);
        }
        if self.map.len() >= self.max {
            match self.when_full {
                WhenFull::Refuse => return false,
                WhenFull::EvictOldest => self.evict_oldest(),
            }
        }
        self.map.insert(
            key,
            Count {
                n: 1,
                since: now,
                stamp,
            },
        );
        self.oldest = Some(self.oldest.map_or(now, |t| t.min(now)));
        true
    }

    fn drop_expired(&mut self, now: Instant) {
        if self
            .oldest
            .is_some_and(|t| now.saturating_duration_since(t) < self.window)
        {
            return;
        }
        let window = self.window;
        self.map
            .retain(|_, c| now.saturating_duration_since(c.since) < window);
        self.oldest = self.map.values().map(|c| c.since).min();
    }

    /// Removes the oldest eighth at once, so a table kept full costs one scan per `max / 8`
    /// new keys rather than one per key.
    fn evict_oldest(&mut self) {
        let mut ages: Vec<Instant> = self.map.values().map(|c| c.since).collect();
        if ages.is_empty() {
            return;
        }
        let nth = ages.len() / 8;
        let cut = *ages.select_nth_unstable(nth).1;
        self.map.retain(|_, c| c.since > cut);
        self.oldest = self.map.values().map(|c| c.since).min();
    }

    /// How long until the oldest entry expires, making room in a full table.
    fn room_in(&self, now: Instant) -> Duration {
        self.oldest.map_or(Duration::ZERO, |t| {
            self.window.saturating_sub(now.saturating_duration_since(t))
        })
    }

    fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn too_many(wait: Duration) -> Error {
    Error::TooManyRequests(wait.as_secs().max(1))
}

/// Everything kept per client, for `App`.
pub struct Limits {
    pub connections: Connections,
    pub failed_auth: FailedAuth,
    pub sign_in: SignIn,
    /// Lines about connections closed for breaking a limit (slow, oversized, malformed,
    /// no TLS handshake, not reading answers) or to make room for another client: a client
    /// with many addresses could otherwise write one per socket.
    pub closed_log: LogGate,
    /// Request log lines of failures without a token (401, 404, 429, a client gone, …).
    pub anonymous_log: LogGate,
    /// Bulk requests running at once.
    pub bulk: BulkTurns,
}

/// Bulk requests running at once, per token and in all. Each holds its parsed body for its
/// whole run and a slice of every writer turn, so a token with many connections (a leaked
/// one) could otherwise take most of each turn from everyone else's writes.
#[derive(Default)]
pub struct BulkTurns(Mutex<HashMap<i64, u32>>);

/// Bulk requests one token may have running at once.
pub const BULK_PER_TOKEN: u32 = 2;
/// Bulk requests running at once in all.
pub const BULK_TOTAL: u32 = 4;

impl BulkTurns {
    /// A turn for a bulk request of the token `token_seq`, held until dropped; past either
    /// bound `429` (retry in a second), before the request's body is read.
    pub fn enter(&self, token_seq: i64) -> Result<BulkTurn<'_>> {
        let mut running = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let total: u32 = running.values().sum();
        let mine = running.get(&token_seq).copied().unwrap_or(0);
        if mine >= BULK_PER_TOKEN || total >= BULK_TOTAL {
            return Err(Error::TooManyRequests(1));
        }
        *running.entry(token_seq).or_default() += 1;
        Ok(BulkTurn {
            turns: self,
            token_seq,
        })
    }
}

/// A running bulk request's place (see `BulkTurns`).
pub struct BulkTurn<'a> {
    turns: &'a BulkTurns,
    token_seq: i64,
}

impl Drop for BulkTurn<'_> {
    fn drop(&mut self) {
        let mut running = self.turns.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.token_seq) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.token_seq);
            }
        }
    }
}

/// Request lines of failures without a token: this many per `ANONYMOUS_LOG_EVERY` at most.
const ANONYMOUS_LOG_BURST: u32 = 100;
const ANONYMOUS_LOG_EVERY: Duration = Duration::from_secs(10);

/// Connections closed for breaking a limit: this many lines per `CLOSED_LOG_EVERY` at most.
const CLOSED_LOG_BURST: u32 = 20;
pub const CLOSED_LOG_EVERY: Duration = Duration::from_secs(10);

impl Limits {
    /// `max_connections` is the server's total; `per_client_cap` says whether one address is
    /// held to a share of it (not behind a proxy, where every connection is the proxy's).
    pub fn new(max_connections: usize, per_client_cap: bool) -> Self {
        let per_client = if per_client_cap {
            (max_connections / CONNECTION_SHARE).max(1)
        } else {
            usize::MAX
        };
        Limits {
            connections: Connections::new(
                per_client,
                max_connections / 2,
                max_connections,
                !per_client_cap,
            ),
            failed_auth: FailedAuth::default(),
            sign_in: SignIn::default(),
            closed_log: LogGate::new(CLOSED_LOG_EVERY, CLOSED_LOG_BURST),
            anonymous_log: LogGate::new(ANONYMOUS_LOG_EVERY, ANONYMOUS_LOG_BURST),
            bulk: BulkTurns::default(),
        }
    }
}

/// One client address's share of `--max-connections`: it may hold more only while fewer
/// than half of all connections are open, so a burst from a lone client is served, and one
/// address can never hold more than half.
const CONNECTION_SHARE: usize = 8;

/// How often at most a line about refused connections is logged.
pub const REFUSED_LOG_EVERY: Duration = Duration::from_secs(10);

/// A log line that a flood could repeat without end: at most `burst` lines per `every`, the
/// events left unlogged counted into the next line that is written.
pub struct LogGate {
    every: Duration,
    burst: u32,
    state: Mutex<GateState>,
}

#[derive(Default)]
struct GateState {
    window: Option<Instant>,
    lines: u32,
    since_line: u64,
}

impl LogGate {
    pub fn new(every: Duration, burst: u32) -> Self {
        LogGate {
            every,
            burst,
            state: Mutex::default(),
        }
    }

    /// Notes one event; `Some(n)` when a line is due, `n` counting the events since the last
    /// line (this one included).
    pub fn note(&self) -> Option<u64> {
        let now = Instant::now();
        let mut g = locked(&self.state);
        g.since_line += 1;
        if g.window
            .is_none_or(|t| now.saturating_duration_since(t) >= self.every)
        {
            g.window = Some(now);
            g.lines = 0;
        }
        if g.lines >= self.burst {
            return None;
        }
        g.lines += 1;
        Some(std::mem::take(&mut g.since_line))
    }
}

/// Failed authentications (SCIM bearer tokens, the metrics token) per client key. A client
/// past `AUTH_MAX_FAILURES` in `AUTH_WINDOW` gets 429 for each further *failed* attempt,
/// without an audit entry each; a valid token is always served, so another tenant behind the
/// same address cannot lock a working client out. When the table is full of live entries, a
/// new failing client is refused outright (429): that costs a valid token nothing.
pub struct FailedAuth(Mutex<Table<IpAddr>>);

const AUTH_MAX_FAILURES: u32 = 20;
const AUTH_WINDOW: Duration = Duration::from_secs(60);
/// Client keys remembered at most.
const AUTH_MAX_CLIENTS: usize = 10_000;

impl Default for FailedAuth {
    fn default() -> Self {
        FailedAuth(Mutex::new(Table::new(
            AUTH_MAX_CLIENTS,
            AUTH_WINDOW,
            WhenFull::Refuse,
        )))
    }
}

impl FailedAuth {
    /// Notes a failure from `client`; `Err(429)` once it has failed too often.
    pub fn fail(&self, client: IpAddr) -> Result<()> {
        self.note(client, true)
    }

    /// Notes a failure from `client`, which presented a whole token that was revoked: held
    /// to the same limit while the table has room for it, but not refused when anonymous
    /// guessers filled the table.
    pub fn fail_known(&self, client: IpAddr) -> Result<()> {
        self.note(client, false)
    }

    fn note(&self, client: IpAddr, refuse_when_full: bool) -> Result<()> {
        let (key, now) = (client_key(client), Instant::now());
        let mut table = locked(&self.0);
        if !table.add(key, 0, now) {
            return match refuse_when_full {
                true => Err(too_many(table.room_in(now))),
                false => Ok(()),
            };
        }
        match table.get(&key, 0, now) {
            (n, wait) if n > AUTH_MAX_FAILURES => Err(too_many(wait)),
            _ => Ok(()),
        }
    }
}

/// Console sign-in: attempts per (client, username), per client, per username and per
/// device, in `SIGN_IN_WINDOW`. An attempt counts when it starts, so attempts sent in parallel
/// count too.
///
/// The per-username limit slows a guesser with many addresses without denying the owner: a
/// client that sends one of the account's device cookies (set by a successful sign-in, kept
/// in the database, so whatever its address and across restarts) passes it, unless that
/// device itself failed `DEVICE_MAX_FAILURES` times. So do sign-ins in the recovery window
/// after `scimd admin set-password` (`SignInFacts::recovering`), so guessers cannot re-lock
/// the account before its owner signs in once with the new password. Counts carry the
/// fingerprint of the password they were made against, so a new password (set in another
/// process) ends a lockout. Only names that have an account are counted per username, so that
/// table cannot be filled with made-up names, and only devices the database knows are counted
/// per device; the tables evict their oldest entries when full (a flood of addresses then
/// earns each one a fresh count, but the per-username limit still holds). In memory: a
/// restart forgets, which costs a guesser a restart they cannot cause.
pub struct SignIn(Mutex<SignInTables>);

struct SignInTables {
    pairs: Table<(IpAddr, String)>,
    clients: Table<IpAddr>,
    users: Table<String>,
    /// Names without an account, counted like `users` only so that they answer alike.
    ghosts: Table<String>,
    devices: Table<u64>,
    setup: Table<IpAddr>,
    /// Wrong invitation codes per client.
    invites: Table<IpAddr>,
}

/// Failed sign-ins for one username from one client before it is refused.
const PAIR_MAX_FAILURES: u32 = 5;
/// From one client, whatever the usernames.
const CLIENT_MAX_FAILURES: u32 = 20;
/// For one username from clients without a device cookie of it.
const USER_MAX_FAILURES: u32 = 30;
/// With one device cookie, before it stops passing the per-username limit.
const DEVICE_MAX_FAILURES: u32 = 5;
/// Setup attempts per client while setup is possible.
const SETUP_MAX_ATTEMPTS: u32 = 5;
/// Wrong invitation codes per client before further wrong ones get 429.
const INVITE_MAX_FAILURES: u32 = 5;
const SIGN_IN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys remembered at most per table.
const SIGN_IN_MAX_KEYS: usize = 10_000;

impl Default for SignIn {
    fn default() -> Self {
        fn table<K: Hash + Eq>() -> Table<K> {
            Table::new(SIGN_IN_MAX_KEYS, SIGN_IN_WINDOW, WhenFull::EvictOldest)
        }
        SignIn(Mutex::new(SignInTables {
            pairs: table(),
            clients: table(),
            users: table(),
            ghosts: table(),
            devices: table(),
            setup: table(),
            // Only wrong codes are counted, so a full table refuses a new client's wrong
            // codes and costs no invitee anything.
            invites: Table::new(SIGN_IN_MAX_KEYS, SIGN_IN_WINDOW, WhenFull::Refuse),
        }))
    }
}

/// An attempt let through, to report its success with.
pub struct Attempt {
    client: IpAddr,
    user: String,
    device: Option<u64>,
    known_good: bool,
}

impl Attempt {
    /// Whether the client sent a device cookie of this user that is still trusted.
    pub fn known_good(&self) -> bool {
        self.known_good
    }
}

impl SignIn {
    /// Counts a sign-in attempt, or refuses it (429). `account`: what the database says about
    /// the account named, `None` when there is none.
    pub fn attempt(
        &self,
        client: IpAddr,
        username: &str,
        account: Option<SignInFacts>,
    ) -> Result<Attempt> {
        let (client, now) = (client_key(client), Instant::now());
        // The same folding as the admins table, so `ADMIN` and `admin` are one account.
        let user = username.to_lowercase();
        let stamp = account.map_or(0, |a| a.password);
        let device = account.and_then(|a| a.device);
        let mut t = locked(&self.0);
        let pair = (client, user.clone());
        let trusted = device.map(|d| (d, t.devices.get(&d, stamp, now)));
        let known_good = trusted.is_some_and(|(_, (n, _))| n < DEVICE_MAX_FAILURES);
        // A trusted device is held to its own count alone: the per-address limits would
        // otherwise let anyone sharing the owner's address (a NAT, an office, a /64) lock the
        // owner's own browser out.
        let mut checks = Vec::new();
        if !known_good {
            checks.push((t.pairs.get(&pair, stamp, now), PAIR_MAX_FAILURES));
            checks.push((t.clients.get(&client, 0, now), CLIENT_MAX_FAILURES));
            match account {
                Some(a) if !a.recovering => {
                    checks.push((t.users.get(&user, stamp, now), USER_MAX_FAILURES));
                }
                Some(_) => {}
                None => checks.push((t.ghosts.get(&user, 0, now), USER_MAX_FAILURES)),
            }
        }
        if let Some(((_, wait), _)) = checks.iter().find(|((n, _), max)| n >= max) {
            return Err(too_many(*wait));
        }
        t.pairs.add(pair, stamp, now);
        t.clients.add(client, 0, now);
        match account {
            Some(_) => t.users.add(user.clone(), stamp, now),
            None => t.ghosts.add(user.clone(), 0, now),
        };
        if let Some(d) = device {
            t.devices.add(d, stamp, now);
        }
        Ok(Attempt {
            client,
            user,
            device,
            known_good,
        })
    }

    /// The attempt signed in: the counts of its client, pair and device end. The username's
    /// count stays: its window runs out by itself.
    pub fn succeeded(&self, a: Attempt) {
        let mut t = locked(&self.0);
        t.clients.remove(&a.client);
        t.pairs.remove(&(a.client, a.user));
        if let Some(d) = a.device {
            t.devices.remove(&d);
        }
    }

    /// Notes a wrong, used or expired invitation code from `client`; `Err(429)` once it has
    /// sent too many. Only wrong codes are counted, after they are checked (a lookup by
    /// primary key of a 256-bit code's digest), so a current invitation is always accepted:
    /// nobody sharing the invitee's address can keep it out, and a taken name or a short
    /// password costs the invitee nothing.
    pub fn invite_failed(&self, client: IpAddr) -> Result<()> {
        let (client, now) = (client_key(client), Instant::now());
        let mut t = locked(&self.0);
        if !t.invites.add(client, 0, now) {
            return Err(too_many(t.invites.room_in(now)));
        }
        match t.invites.get(&client, 0, now) {
            (n, wait) if n > INVITE_MAX_FAILURES => Err(too_many(wait)),
            _ => Ok(()),
        }
    }

    /// Counts an attempt at first-run setup (call it only while setup is possible).
    pub fn setup_attempt(&self, client: IpAddr) -> Result<()> {
        let (client, now) = (client_key(client), Instant::now());
        let mut t = locked(&self.0);
        match t.setup.get(&client, 0, now) {
            (n, wait) if n >= SETUP_MAX_ATTEMPTS => Err(too_many(wait)),
            _ => {
                t.setup.add(client, 0, now);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:ffff:1:2:3")),
            client_key(ip("2001:db8:1:2::9"))
        );
        assert_ne!(client_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn a_revoked_token_is_not_refused_for_a_table_guessers_filled() {
        let f = FailedAuth::default();
        for n in 0..AUTH_MAX_CLIENTS as u32 {
            f.fail(IpAddr::from(n.to_be_bytes())).unwrap();
        }
        let idp = ip("192.0.2.1");
        assert!(f.fail(idp).is_err(), "a new guesser is refused");
        assert!(f.fail_known(idp).is_ok(), "a revoked token is let through");
        // Where it is counted, it is held to the same limit.
        let counted = IpAddr::from(7u32.to_be_bytes());
        for _ in 1..AUTH_MAX_FAILURES {
            f.fail_known(counted).unwrap();
        }
        assert!(f.fail_known(counted).is_err());
    }

    #[test]
    fn a_full_table_refuses_or_evicts_but_keeps_counting() {
        let now = Instant::now();
        let w = Duration::from_secs(60);
        let mut refuse = Table::new(4, w, WhenFull::Refuse);
        for k in 0..4 {
            assert!(refuse.add(k, 0, now));
        }
        assert!(!refuse.add(9, 0, now), "a new key is refused");
        assert!(refuse.add(0, 0, now), "known keys keep counting");
        assert_eq!(refuse.get(&0, 0, now).0, 2);
        // Once entries expire there is room again.
        assert!(refuse.add(9, 0, now + w));
        assert_eq!(refuse.map.len(), 1);

        let mut evict = Table::new(16, w, WhenFull::EvictOldest);
        for k in 0..16u32 {
            assert!(evict.add(k, 0, now + Duration::from_millis(u64::from(k))));
        }
        assert!(evict.add(99, 0, now + Duration::from_secs(1)));
        assert!(evict.map.len() <= 16);
        assert!(!evict.map.contains_key(&0), "the oldest made room");
        assert!(evict.map.contains_key(&15) && evict.map.contains_key(&99));
    }

    #[test]
    fn a_new_stamp_voids_a_count() {
        let now = Instant::now();
        let mut t = Table::new(4, Duration::from_secs(60), WhenFull::Refuse);
        t.add("k", 1, now);
        t.add("k", 1, now);
        assert_eq!(t.get(&"k", 1, now).0, 2);
        assert_eq!(t.get(&"k", 2, now).0, 0);
        t.add("k", 2, now);
        assert_eq!(t.get(&"k", 2, now).0, 1);
    }

    #[test]
    fn failed_auth_is_per_client_and_fails_closed_when_full() {
        let f = FailedAuth::default();
        let a = ip("192.0.2.1");
        for _ in 0..AUTH_MAX_FAILURES {
            assert!(f.fail(a).is_ok());
        }
        assert!(matches!(f.fail(a), Err(Error::TooManyRequests(_))));
        // The rest of the same /64 is the same client.
        assert!(f.fail(ip("2001:db8::1")).is_ok());
        for i in 0..AUTH_MAX_FAILURES {
            let _ = f.fail(ip(&format!("2001:db8::{:x}", i + 2)));
        }
        assert!(f.fail(ip("2001:db8::ffff")).is_err());
        for i in 0..AUTH_MAX_CLIENTS as u32 {
            let _ = f.fail(IpAddr::V4(std::net::Ipv4Addr::from(i + 0x0a00_0000)));
        }
        assert!(
            f.fail(ip("198.51.100.1")).is_err(),
            "full: a new client is refused"
        );
    }

    fn facts(password: u64, device: Option<u64>) -> Option<SignInFacts> {
        Some(SignInFacts {
            password,
            device,
            recovering: false,
        })
    }

    #[test]
    fn sign_in_locks_pairs_and_clients_and_the_username_except_for_trusted_devices() {
        let s = SignIn::default();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let (pw, device) = (facts(7, None), facts(7, Some(42)));
        for _ in 0..PAIR_MAX_FAILURES {
            s.attempt(a, "Admin", pw).unwrap();
        }
        assert!(s.attempt(a, "admin", pw).is_err(), "the pair is locked");
        assert!(
            s.attempt(a, "bo", None).is_ok(),
            "another name from it is not"
        );
        assert!(s.attempt(b, "admin", pw).is_ok(), "nor another client");
        // Many clients guessing: the username is locked for clients without a device.
        for i in 0..USER_MAX_FAILURES {
            let _ = s.attempt(
                IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
                "admin",
                pw,
            );
        }
        assert!(s.attempt(ip("203.0.113.5"), "admin", pw).is_err());
        // A device passes from any address, until it fails too often itself.
        for i in 0..DEVICE_MAX_FAILURES {
            let from = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            assert!(s.attempt(from, "admin", device).unwrap().known_good());
        }
        assert!(s.attempt(ip("203.0.113.6"), "admin", device).is_err());
        let other_device = facts(7, Some(43));
        let ok = s.attempt(ip("203.0.113.6"), "admin", other_device).unwrap();
        assert!(ok.known_good());
        s.succeeded(ok);
        // The recovery window after set-password skips the per-username limit.
        let recovering = Some(SignInFacts {
            recovering: true,
            ..pw.unwrap()
        });
        assert!(s.attempt(ip("203.0.113.7"), "admin", recovering).is_ok());
        assert!(!s.attempt(b, "admin", pw).is_ok_and(|a| a.known_good()));
        // A new password voids the counts made against the old one.
        assert!(
            s.attempt(ip("203.0.113.5"), "admin", facts(8, None))
                .is_ok()
        );
        assert!(s.attempt(a, "admin", facts(8, None)).is_ok());
        // One client spraying names is locked whatever the names…
        let c = ip("192.0.2.99");
        for i in 0..CLIENT_MAX_FAILURES {
            s.attempt(c, &format!("name{i}"), None).unwrap();
        }
        assert!(s.attempt(c, "another", None).is_err());
        assert!(s.attempt(c, "admin", facts(8, None)).is_err());
        // …but the owner's browser behind the same address (a NAT, an office) is not.
        assert!(
            s.attempt(c, "admin", facts(8, Some(44)))
                .unwrap()
                .known_good()
        );
    }

    #[test]
    fn wrong_invitation_codes_are_limited_per_client_and_fail_closed_when_full() {
        let s = SignIn::default();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..INVITE_MAX_FAILURES {
            s.invite_failed(a).unwrap();
        }
        assert!(s.invite_failed(a).is_err());
        assert!(s.invite_failed(b).is_ok(), "per client");
        let mut t = locked(&s.0);
        for n in 0..SIGN_IN_MAX_KEYS as u32 {
            t.invites
                .add(IpAddr::from(n.to_be_bytes()), 0, Instant::now());
        }
        drop(t);
        assert!(s.invite_failed(ip("198.51.100.1")).is_err());
    }

    #[test]
    fn a_log_gate_writes_its_burst_then_counts_into_the_next_line() {
        let gate = LogGate::new(Duration::from_secs(3600), 2);
        assert_eq!(
            (gate.note(), gate.note(), gate.note()),
            (Some(1), Some(1), None)
        );
        assert_eq!(gate.note(), None);
        let mut g = locked(&gate.state);
        g.window = g.window.map(|t| t - Duration::from_secs(3601));
        drop(g);
        assert_eq!(gate.note(), Some(3), "the two unlogged ones and this one");
    }

    /// Two bulk requests per token and four in all run at once; a finished one's turn is
    /// free again.
    #[test]
    fn bulk_turns_are_bounded_per_token_and_in_all() {
        let turns = BulkTurns::default();
        let a1 = turns.enter(1).unwrap();
        let _a2 = turns.enter(1).unwrap();
        assert!(matches!(turns.enter(1), Err(Error::TooManyRequests(1))));
        let _b1 = turns.enter(2).unwrap();
        let _b2 = turns.enter(2).unwrap();
        assert!(turns.enter(3).is_err(), "four in all");
        drop(a1);
        let _c = turns.enter(3).unwrap();
        assert!(turns.enter(1).is_err());
    }
}
