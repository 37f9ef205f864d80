//! Requests and failures of SCIM clients, for the Overview: per token secret (a revoked or
//! rotated-out secret that still arrives counts against its token, so "OneLogin is still
//! sending the old token" shows), and failed authentications without any token of ours
//! (unknown token, missing or malformed header) per client address.
//!
//! Counted in memory, as `LastUsed` is, so the SCIM hot path pays a lock and a hash insert,
//! never a write; `flush` adds the counts to hourly rows through the store's group commit
//! every half minute and at shutdown. A `kill -9` loses the counts since the last flush:
//! these are statistics, and no request's outcome depends on them.
//!
//! Bounded: at most `MAX_CLIENTS` addresses are held between two flushes (and per hour in
//! the database); failures from addresses past that are folded into one "other" count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Result;
use crate::store::Store;
use crate::store::activity::{self, ClientRow, Counts, OTHER, TokenRow};

/// Addresses held between flushes, and per hour in the database.
pub const MAX_CLIENTS: usize = 1000;
/// How long the hourly counts are kept: the Overview reads a day of them, and a month
/// back stays at hand for anyone looking into an incident.
pub const KEEP_HOURS: i64 = 35 * 24;

/// The hour (since the Unix epoch, UTC) that `t` falls in.
pub fn hour_of(t: SystemTime) -> i64 {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs / 3600).unwrap_or(i64::MAX)
}

/// The hour now.
pub fn this_hour() -> i64 {
    hour_of(SystemTime::now())
}

/// The first hour of the last 24 hours, this one included.
pub fn day_ago(hour: i64) -> i64 {
    hour - 23
}

#[derive(Default)]
struct Pending {
    tokens: HashMap<(i64, i64), Counts>,
    clients: HashMap<(i64, IpAddr), u64>,
    /// Failures of addresses that found the table full, per hour.
    other: HashMap<i64, u64>,
}

impl Pending {
    fn token(&mut self, hour: i64, seq: i64, c: Counts) {
        self.tokens.entry((hour, seq)).or_default().add(c);
    }

    fn client(&mut self, hour: i64, client: IpAddr, max: usize) {
        let held = self.clients.len();
        match self.clients.get_mut(&(hour, client)) {
            Some(n) => *n += 1,
            None if held < max => {
                self.clients.insert((hour, client), 1);
            }
            None => *self.other.entry(hour).or_default() += 1,
        }
    }

    /// The rows to add: per token, and per address (`OTHER` for the overflow).
    fn rows(self) -> (Vec<TokenRow>, Vec<ClientRow>) {
        let tokens = self
            .tokens
            .into_iter()
            .map(|((hour, seq), c)| (hour, seq, c))
            .collect();
        let mut clients: Vec<ClientRow> = self
            .clients
            .into_iter()
            .map(|((hour, ip), n)| (hour, ip.to_string(), n))
            .collect();
        clients.extend(
            self.other
                .into_iter()
                .map(|(hour, n)| (hour, OTHER.to_string(), n)),
        );
        (tokens, clients)
    }
}

/// The counts waiting to be written.
#[derive(Default)]
pub struct Activity(Mutex<Pending>);

impl Activity {
    fn with<T>(&self, f: impl FnOnce(&mut Pending) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A request of a live token secret, answered with `status`.
    pub fn served(&self, token_seq: i64, status: u16) {
        let c = Counts {
            requests: 1,
            failures: u64::from(status >= 400),
            refused: 0,
        };
        let hour = this_hour();
        self.with(|p| p.token(hour, token_seq, c));
    }

    /// A request refused because its secret was revoked or rotated out.
    pub fn refused(&self, token_seq: i64) {
        let c = Counts {
            requests: 1,
            failures: 1,
            refused: 1,
        };
        let hour = this_hour();
        self.with(|p| p.token(hour, token_seq, c));
    }

    /// A failed authentication without any token of ours, from `client`, counted under its
    /// `client_key` as every per-client limit is: one IPv6 host holds a whole /64, and would
    /// otherwise take every place in the bound and fold everyone else into "other".
    pub fn unknown(&self, client: IpAddr) {
        let hour = this_hour();
        let key = super::client_key(client);
        self.with(|p| p.client(hour, key, MAX_CLIENTS));
    }

    /// Adds what was counted since the last flush to the database, in one transaction.
    pub async fn flush(&self, store: &Store) -> Result<()> {
        let pending = self.with(std::mem::take);
        let (tokens, clients) = pending.rows();
        if tokens.is_empty() && clients.is_empty() {
            return Ok(());
        }
        let max = u64::try_from(MAX_CLIENTS).unwrap_or(u64::MAX);
        store
            .write(move |tx| {
                activity::add_tokens(tx, &tokens)?;
                activity::add_clients(tx, &clients, max)
            })
            .await
    }
}

/// Deletes counts older than `KEEP_HOURS`; how many rows went.
pub async fn prune(store: &Store) -> Result<usize> {
    let before = this_hour() - KEEP_HOURS;
    store.write(move |tx| activity::prune(tx, before)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hours_are_whole_utc_hours_since_the_epoch() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(hour_of(at(0)), 0);
        assert_eq!(hour_of(at(3599)), 0);
        assert_eq!(hour_of(at(3600)), 1);
        // 2026-01-01T00:00:00Z
        assert_eq!(hour_of(at(1_767_225_600)), 490_896);
        assert_eq!(hour_of(UNIX_EPOCH - Duration::from_secs(10)), 0);
        assert_eq!(day_ago(490_896), 490_873);
    }

    #[test]
    fn counts_fold_per_hour_and_token() {
        let mut p = Pending::default();
        let one = |failures, refused| Counts {
            requests: 1,
            failures,
            refused,
        };
        p.token(5, 1, one(0, 0));
        p.token(5, 1, one(1, 1));
        p.token(6, 1, one(1, 0));
        let (mut tokens, clients) = p.rows();
        tokens.sort_by_key(|(h, s, _)| (*h, *s));
        assert!(clients.is_empty());
        assert_eq!(
            tokens,
            [
                (
                    5,
                    1,
                    Counts {
                        requests: 2,
                        failures: 1,
                        refused: 1
                    }
                ),
                (6, 1, one(1, 0))
            ]
        );
    }

    /// Past the bound, a new address adds to "other" instead of an entry; an address held
    /// keeps counting.
    #[test]
    fn the_address_map_is_bounded() {
        let mut p = Pending::default();
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        for n in 0..10 {
            p.client(1, ip(n), 4);
        }
        p.client(1, ip(0), 4);
        assert_eq!(p.clients.len(), 4);
        let (_, mut clients) = p.rows();
        clients.sort();
        assert_eq!(
            clients,
            [
                (1, "10.0.0.0".to_string(), 2),
                (1, "10.0.0.1".to_string(), 1),
                (1, "10.0.0.2".to_string(), 1),
                (1, "10.0.0.3".to_string(), 1),
                (1, OTHER.to_string(), 6),
            ]
        );
    }

    /// One IPv6 host's /64 is one address in the counts, however many of its addresses fail.
    #[test]
    fn an_ipv6_network_counts_as_one_client() {
        let a = Activity::default();
        for n in 1..=50u16 {
            a.unknown(IpAddr::from([0x2001, 0xdb8, 0, 7, 0, 0, 0, n]));
        }
        a.unknown(IpAddr::from([10, 0, 0, 1]));
        let (_, clients) = a.with(std::mem::take).rows();
        let mut counted: Vec<(String, u64)> = clients.into_iter().map(|(_, c, n)| (c, n)).collect();
        counted.sort();
        assert_eq!(
            counted,
            [
                ("10.0.0.1".to_string(), 1),
                ("2001:db8:0:7::".to_string(), 50)
            ]
        );
    }
}
