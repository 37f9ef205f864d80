//! Open connections per client key, and in all. When all are taken, a newcomer is not
//! refused while another address holds more than its fair share (`--max-connections` / the
//! addresses holding connections, the newcomer's included): one of that address's
//! connections is asked to close, and the newcomer takes its place. Behind a proxy (its
//! addresses hold them all), a newcomer replaces the connection idle longest.
//!
//! A connection that has served a request with a valid write-scope token (the identity
//! provider's) is never asked to close for a newcomer, who has proven nothing yet: else an
//! attacker with many addresses could strip the IdP of its connections one newcomer at a
//! time. A read token proves nothing: it is handed to scripts and may leak.
//!
//! The table is locked only when a connection opens or closes, and, at the cap, to choose
//! whom to ask to close (a scan of at most `--max-connections` entries). A request starting
//! and ending touches only its connection's own atomics: the table is off the request path.
//! Entries live exactly as long as their connections, so the table holds at most twice
//! `--max-connections` entries (connections asked to close count apart until they have).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use super::{LogGate, REFUSED_LOG_EVERY, client_key, locked};

pub struct Connections {
    open: Arc<Mutex<Open>>,
    per_client: usize,
    /// From this many open connections on, no client gets more than its share.
    busy: usize,
    /// All connections, not counting those asked to close.
    max: usize,
    /// Behind a proxy, where addresses are the proxy's: a newcomer replaces the connection
    /// idle longest, whatever its address.
    replace_idle: bool,
    refused: LogGate,
    /// What connections measure their idle time from.
    epoch: Instant,
}

/// Whether a connection may be served.
pub enum Admit {
    Open(ConnectionSlot),
    /// Its address holds its share while connections are busy.
    ClientFull,
    /// All connections are taken, none by an address over its fair share that could make
    /// room (behind a proxy: none idle).
    AllFull,
}

#[derive(Default)]
struct Open {
    conns: HashMap<u64, Conn>,
    /// Each address's connections that are not leaving.
    clients: HashMap<IpAddr, HashSet<u64>>,
    /// (connections held, address) for every address holding any, heaviest last.
    by_count: BTreeSet<(usize, IpAddr)>,
    /// Connections open and not asked to close.
    total: usize,
    /// Connections asked to close that have not yet.
    leaving: usize,
    next_id: u64,
}

struct Conn {
    key: IpAddr,
    state: Arc<ConnState>,
    leaving: bool,
}

/// What a connection's own task keeps up to date, without the table's lock.
struct ConnState {
    in_flight: AtomicU32,
    /// When it last became idle (or opened), in milliseconds since `Connections::epoch`.
    idle_since: AtomicU64,
    /// It has served a request with a valid token.
    proven: AtomicBool,
    close: Notify,
    epoch: Instant,
}

impl ConnState {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Open {
    fn count(&self, key: &IpAddr) -> usize {
        self.clients.get(key).map_or(0, HashSet::len)
    }

    /// Moves `key` in `by_count` from `was` to its current count.
    fn recount(&mut self, key: IpAddr, was: usize) {
        let now = self.count(&key);
        if was > 0 {
            self.by_count.remove(&(was, key));
        }
        if now > 0 {
            self.by_count.insert((now, key));
        } else {
            self.clients.remove(&key);
        }
    }

    fn add(&mut self, key: IpAddr, state: Arc<ConnState>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let was = self.count(&key);
        self.clients.entry(key).or_default().insert(id);
        self.recount(key, was);
        self.conns.insert(
            id,
            Conn {
                key,
                state,
                leaving: false,
            },
        );
        self.total += 1;
        id
    }

    /// Takes connection `id` out of the counts per address and in all.
    fn detach(&mut self, id: u64) {
        let Some(key) = self.conns.get(&id).map(|c| c.key) else {
            return;
        };
        let was = self.count(&key);
        if let Some(ids) = self.clients.get_mut(&key) {
            ids.remove(&id);
        }
        self.recount(key, was);
        self.total -= 1;
    }

    /// Asks connection `id` to close once its request in flight (if any) is answered.
    fn evict(&mut self, id: u64) {
        self.detach(id);
        if let Some(c) = self.conns.get_mut(&id) {
            c.leaving = true;
            c.state.close.notify_one();
        }
        self.leaving += 1;
    }

    /// Of `ids`, the connection to ask to close: never a proven one; the one idle longest,
    /// else (`idle_only` aside) the oldest.
    fn pick(&self, ids: impl Iterator<Item = u64>, idle_only: bool) -> Option<u64> {
        let mut idle: Option<(u64, u64)> = None;
        let mut oldest: Option<u64> = None;
        for id in ids {
            let Some(c) = self.conns.get(&id).filter(|c| !c.leaving) else {
                continue;
            };
            if c.state.proven.load(Ordering::Relaxed) {
                continue;
            }
            if c.state.in_flight.load(Ordering::Relaxed) == 0 {
                let since = (c.state.idle_since.load(Ordering::Relaxed), id);
                idle = Some(idle.map_or(since, |best| best.min(since)));
            }
            oldest = Some(oldest.map_or(id, |o| o.min(id)));
        }
        idle.map(|(_, id)| id)
            .or(if idle_only { None } else { oldest })
    }
}

impl Connections {
    pub fn new(per_client: usize, busy: usize, max: usize, replace_idle: bool) -> Self {
        Connections {
            open: Arc::default(),
            per_client,
            busy,
            max: max.max(1),
            replace_idle,
            refused: LogGate::new(REFUSED_LOG_EVERY, 1),
            epoch: Instant::now(),
        }
    }

    /// A slot for one more connection from `peer`, unless it holds its share already while
    /// half of all connections are open, or all are taken and none can be asked to make room.
    pub fn open(&self, peer: IpAddr) -> Admit {
        let key = client_key(peer);
        let mut open = locked(&self.open);
        let n = open.count(&key);
        if n >= self.per_client && open.total >= self.busy {
            return Admit::ClientFull;
        }
        if open.total >= self.max {
            // Connections asked to close but still open are bounded too.
            let Some(victim) = self
                .victim(&open, key, n)
                .filter(|_| open.leaving < self.max)
            else {
                return Admit::AllFull;
            };
            open.evict(victim);
        }
        let state = Arc::new(ConnState {
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            proven: AtomicBool::new(false),
            close: Notify::new(),
            epoch: self.epoch,
        });
        state.idle_since.store(state.now(), Ordering::Relaxed);
        let id = open.add(key, state.clone());
        Admit::Open(ConnectionSlot {
            open: self.open.clone(),
            id,
            state,
        })
    }

    /// Which connection makes room for a newcomer from `key` (holding `n`): one of the
    /// heaviest holder's that can give one up, when that is another address over its fair
    /// share with at least two more than the newcomer will hold (so two addresses never take
    /// turns). Behind a proxy, the connection idle longest.
    fn victim(&self, open: &Open, key: IpAddr, n: usize) -> Option<u64> {
        if self.replace_idle {
            return open.pick(open.conns.keys().copied(), true);
        }
        let holders = open.clients.len() + usize::from(n == 0);
        let fair = (self.max / holders).max(1);
        open.by_count
            .iter()
            .rev()
            .take_while(|&&(most, _)| most > fair && most > n + 1)
            .filter(|&&(_, holder)| holder != key)
            .find_map(|(_, holder)| {
                let ids = open.clients.get(holder)?;
                open.pick(ids.iter().copied(), false)
            })
    }

    /// The most connections one client may hold while connections are busy.
    pub fn per_client(&self) -> usize {
        self.per_client
    }

    /// Notes a refused connection; `Some(n)` when a log line is due, `n` counting the refusals
    /// since the last line (this one included), so a flood costs one line per interval.
    pub fn note_refused(&self) -> Option<u64> {
        self.refused.note()
    }
}

/// One client's claim on a connection; dropping it gives the connection back.
pub struct ConnectionSlot {
    open: Arc<Mutex<Open>>,
    id: u64,
    state: Arc<ConnState>,
}

impl ConnectionSlot {
    /// Signalled when the connection should close (gracefully) to make room for another.
    pub fn close_requested(&self) -> &Notify {
        &self.state.close
    }

    /// Marks a request in flight on this connection until the guard is dropped: a connection
    /// with none is idle, and the first to be asked to close.
    pub fn request(&self) -> InFlightRequest {
        self.state.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightRequest {
            state: self.state.clone(),
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = locked(&self.open);
        let leaving = open.conns.get(&self.id).is_some_and(|c| c.leaving);
        if leaving {
            open.leaving -= 1;
        } else {
            open.detach(self.id);
        }
        open.conns.remove(&self.id);
    }
}

/// A request being handled on a connection (see `ConnectionSlot::request`).
pub struct InFlightRequest {
    state: Arc<ConnState>,
}

impl InFlightRequest {
    /// The request carried a valid token: its connection is never asked to make room.
    pub fn prove(&self) {
        self.state.proven.store(true, Ordering::Relaxed);
    }
}

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        self.state
            .idle_since
            .store(self.state.now(), Ordering::Relaxed);
        self.state.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Limits;
    use super::*;
    use futures_util::FutureExt;

    fn addr(i: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, i))
    }

    fn slot(a: Admit) -> Option<ConnectionSlot> {
        match a {
            Admit::Open(slot) => Some(slot),
            Admit::ClientFull | Admit::AllFull => None,
        }
    }

    /// Whether `slot`'s connection was asked to close.
    fn asked_to_close(slot: &ConnectionSlot) -> bool {
        locked(&slot.open).conns[&slot.id].leaving
    }

    /// Makes `slot` look idle since `ms` after the epoch (idle times are in milliseconds).
    fn idle_since(slot: &ConnectionSlot, ms: u64) {
        slot.state.idle_since.store(ms, Ordering::Relaxed);
    }

    #[test]
    fn one_client_gets_more_than_its_share_only_while_half_the_connections_are_free() {
        // 16 in all: a share of 2, busy from 8 on.
        let c = Limits::new(16, true).connections;
        let (hog, other) = (addr(1), addr(2));
        let mut held: Vec<_> = (0..8).map_while(|_| slot(c.open(hog))).collect();
        assert_eq!(held.len(), 8, "a lone client's burst is served");
        assert!(
            matches!(c.open(hog), Admit::ClientFull),
            "but never more than half"
        );
        let mine: Vec<_> = (0..2).map_while(|_| slot(c.open(other))).collect();
        assert_eq!(mine.len(), 2, "the others get their share");
        assert!(
            matches!(c.open(other), Admit::ClientFull),
            "and no more while busy"
        );
        held.truncate(5);
        drop(mine);
        assert!(slot(c.open(other)).is_some(), "free again below half");
        assert!(slot(c.open("2001:db8::1".parse().unwrap())).is_some());
    }

    #[test]
    fn at_the_cap_the_heaviest_holder_over_its_fair_share_makes_room() {
        // 16 in all, a share of 2 once 8 are open: one address takes 8, four more 2 each.
        let c = Limits::new(16, true).connections;
        let mut hog: Vec<_> = (0..8).map_while(|_| slot(c.open(addr(1)))).collect();
        let mut others: Vec<_> = (2..=5)
            .flat_map(|i| [c.open(addr(i)), c.open(addr(i))])
            .map_while(slot)
            .collect();
        assert_eq!((hog.len(), others.len()), (8, 8));
        // The hog's first connections are busy; of the rest, the third is idle longest.
        let busy: Vec<_> = hog[..2].iter().map(ConnectionSlot::request).collect();
        for (i, s) in hog.iter().enumerate().skip(2) {
            idle_since(s, 1000 + i as u64);
        }
        // A sixth address gets in: the hog's connection idle longest is asked to close.
        let sixth = slot(c.open(addr(6))).expect("room is made");
        assert!(asked_to_close(&hog[2]));
        assert_eq!(hog.iter().filter(|s| asked_to_close(s)).count(), 1);
        assert!(others.iter().all(|s| !asked_to_close(s)));
        assert!(sixth.state.close.notified().now_or_never().is_none());
        assert!(
            hog[2].state.close.notified().now_or_never().is_some(),
            "signalled"
        );
        // More newcomers: each time the heaviest gives way, idle connections first.
        let mut more: Vec<_> = (7..=11).map_while(|i| slot(c.open(addr(i)))).collect();
        assert_eq!(more.len(), 5);
        assert!(hog[2..].iter().all(asked_to_close));
        assert!(!asked_to_close(&hog[0]) && !asked_to_close(&hog[1]));
        // 11 addresses, the fair share is 1; the heaviest hold 2. One holding 1 opening
        // another is refused (they would take turns); a fresh address still gets in.
        assert!(matches!(c.open(addr(6)), Admit::AllFull));
        more.extend(slot(c.open(addr(12))));
        assert_eq!(more.len(), 6);
        {
            let open = locked(&c.open);
            assert_eq!((open.total, open.leaving), (16, 7));
            assert_eq!(open.by_count.last().map(|(n, _)| *n), Some(2));
        }
        drop(busy);
        hog.clear();
        others.clear();
        drop((sixth, more));
        let open = locked(&c.open);
        assert!(open.conns.is_empty() && open.clients.is_empty() && open.by_count.is_empty());
        assert_eq!((open.total, open.leaving), (0, 0));
        drop(open);

        // A holder with only requests in flight: its oldest connection is asked to close
        // (it does once its request is answered).
        let c = Connections::new(usize::MAX, 0, 4, false);
        let hog: Vec<_> = (0..4).map_while(|_| slot(c.open(addr(1)))).collect();
        let _busy: Vec<_> = hog.iter().map(ConnectionSlot::request).collect();
        assert!(slot(c.open(addr(2))).is_some());
        assert!(asked_to_close(&hog[0]) && !asked_to_close(&hog[1]));
    }

    /// Review finding: an attacker with many addresses opening connections at the cap made
    /// the heaviest holder, the identity provider, give up its connections one by one.
    #[test]
    fn connections_that_carried_a_valid_token_never_make_room_for_newcomers() {
        let c = Connections::new(usize::MAX, 0, 8, false);
        let idp: Vec<_> = (0..6).map_while(|_| slot(c.open(addr(1)))).collect();
        for s in &idp[..5] {
            s.request().prove();
        }
        let _two = [slot(c.open(addr(2))), slot(c.open(addr(3)))];
        // At the cap: the IdP is over its fair share, but only one of its connections is
        // unproven; it gives that one up, and then none.
        let fourth = slot(c.open(addr(4)));
        assert!(fourth.is_some());
        assert!(asked_to_close(&idp[5]));
        assert!(matches!(c.open(addr(5)), Admit::AllFull));
        assert!(idp[..5].iter().all(|s| !asked_to_close(s)));
        // Another holder over its share still makes room when it has an unproven one.
        let c = Connections::new(usize::MAX, 0, 4, false);
        let proven = slot(c.open(addr(1))).unwrap();
        proven.request().prove();
        let hog: Vec<_> = (0..3).map_while(|_| slot(c.open(addr(2)))).collect();
        let third = slot(c.open(addr(3)));
        assert!(third.is_some());
        assert!(hog.iter().filter(|s| asked_to_close(s)).count() == 1);
        assert!(!asked_to_close(&proven));
    }

    #[test]
    fn behind_a_proxy_a_newcomer_replaces_the_connection_idle_longest() {
        let c = Limits::new(4, false).connections;
        let proxy = addr(1);
        let held: Vec<_> = (0..4).map_while(|_| slot(c.open(proxy))).collect();
        assert_eq!(held.len(), 4, "no share per address");
        let busy: Vec<_> = [0, 2, 3].iter().map(|i| held[*i].request()).collect();
        let fifth = slot(c.open(proxy)).expect("replaces the idle one");
        assert!(asked_to_close(&held[1]));
        let _busy_too = fifth.request();
        // All busy: refused.
        assert!(matches!(c.open(proxy), Admit::AllFull));
        drop(busy);
        idle_since(&held[0], 10);
        idle_since(&held[2], 20);
        idle_since(&held[3], 30);
        let sixth = slot(c.open(proxy)).expect("idle again");
        assert!(asked_to_close(&held[0]), "the one idle longest");
        idle_since(&sixth, 40);
        // Whichever of the proxy's addresses holds it.
        let _seventh = slot(c.open(addr(2))).expect("another proxy address");
        assert!(asked_to_close(&held[2]));
        assert_eq!(locked(&c.open).total, 4);
    }

    #[test]
    fn refused_connections_are_logged_once_per_interval_and_no_entry_outlives_its_slot() {
        let c = Connections::new(1, 0, 16, false);
        let first = slot(c.open(addr(1))).unwrap();
        assert!(slot(c.open(addr(1))).is_none());
        assert!(slot(c.open(addr(2))).is_some());
        assert_eq!(c.note_refused(), Some(1));
        assert_eq!(c.note_refused(), None);
        assert_eq!(c.note_refused(), None);
        drop(first);
        assert!(slot(c.open(addr(1))).is_some());
        let open = locked(&c.open);
        assert!(
            open.clients.is_empty() && open.conns.is_empty() && open.total == 0,
            "no entry outlives its slot"
        );
    }
}
