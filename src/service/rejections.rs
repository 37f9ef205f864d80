//! Rejected requests on their way to the audit log, at a small fixed cost each, whoever sends
//! them and from however many addresses.
//!
//! A rejected request changed nothing, so its entry is queued and written with others a
//! moment later (no fsync each). What is stored is cut to a few hundred bytes (user agent,
//! action, resource id, error text). Repeats within a minute from one client for one reason
//! are one entry with a count, inserted at the first flush after the first request and
//! updated while the minute lasts. Each minute has a budget of entries, separate for
//! anonymous clients (failed console sign-ins included), for console sign-ins that got the
//! password right but not the second factor (someone holds that password: never crowded out by
//! anonymous floods), for clients presenting a token on
//! record that no longer works (an identity provider whose token was revoked), and for
//! authenticated clients, so a flood without a token never crowds out an identity provider's
//! failures (a read token's failures, refused writes and missing ids alike, have their own, as
//! read tokens are handed to scripts and may leak); each budget has a share per client (an IPv4 address or an IPv6 /64, so one
//! client cannot take the budget from the others); requests beyond it are counted in one
//! summary entry per minute. So the log grows by at most a fixed number of small rows a minute, and the queue
//! is bounded in entries and in bytes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::warn;

use super::tokens::Scope;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::audit::{self, NewEntry};

use super::audit::{ActorKind, MAX_ACTOR, MAX_USER_AGENT, clip};
use super::client_key;

/// How long repeats are folded into one entry, and the period of the budgets below.
const WINDOW: Duration = Duration::from_secs(60);

/// Longest stored action (method and route), resource id and name and error text, in bytes;
/// longer ones are cut and end in "…" (user agent and actor are cut in `Actor::entry`, and
/// again here to guard the queue).
const MAX_ACTION: usize = 64;
const MAX_RESOURCE_ID: usize = 64;
/// An administrator's name (64 characters) fits uncut.
const MAX_RESOURCE_NAME: usize = 256;
const MAX_ERROR: usize = 200;

/// Who a budget is for: anonymous clients, console sign-ins that got the password right (a
/// second factor wrong, blocked or asked for), clients with a token on record that no longer
/// works, valid read tokens, or those with another valid credential (write tokens: the
/// identity provider's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Anonymous,
    SecondFactor,
    RevokedToken,
    ReadToken,
    Authenticated,
}

struct Budget {
    /// Entries per window for the whole class…
    entries: usize,
    /// …and for one client address within it.
    per_client: usize,
}

/// Anonymous requests fail for few reasons (no or a wrong token), so a few entries per client
/// say everything; the class's budget keeps an anonymous flood from any number of addresses
/// to about 30 small rows a minute (under 2 MB an hour, indexes included).
const ANONYMOUS: Budget = Budget {
    entries: 30,
    per_client: 3,
};
/// A sign-in that got an administrator's password right shows that someone holds it: on record
/// whatever anonymous clients send. Only a holder of a password reaches this budget, and the
/// sign-in limits hold them to a few dozen attempts per account in 15 minutes.
const SECOND_FACTOR: Budget = Budget {
    entries: 100,
    per_client: 10,
};
/// A revoked token's requests are folded per client, token, method and route (no resource), so
/// an identity provider still sending one needs a few entries a minute; its own budget keeps
/// them on record whatever anonymous clients send. Bounded too, as an old token can leak.
const REVOKED_TOKEN: Budget = Budget {
    entries: 100,
    per_client: 20,
};
/// Every failure of a read token (a write its scope refuses, a missing id, a bad filter) is
/// folded per client, token, method and route (no resource, which the sender varies at
/// will), in its own budget: a leaked read token cannot use up the one the identity
/// provider's failures need.
const READ_TOKEN: Budget = Budget {
    entries: 100,
    per_client: 20,
};
/// An identity provider's failures are kept per resource, so a failing sync shows which users
/// failed; still bounded, as a token can leak.
const AUTHENTICATED: Budget = Budget {
    entries: 1000,
    per_client: 500,
};
/// The queue's memory, whatever the entries hold (each is also bounded by the cuts above).
const MAX_QUEUE_BYTES: usize = 512 * 1024;
/// Kept free within it for the summary entries (one per class, five at most), which are
/// outside the budgets.
const SUMMARY_RESERVE: usize = 4096;

impl Class {
    /// A request's class from its actor's kind and, for a live token, its scope.
    fn of(entry: &NewEntry, scope: Option<Scope>) -> Class {
        if entry.actor_kind == ActorKind::Anonymous.as_str() {
            Class::Anonymous
        } else if entry.actor_kind == ActorKind::RevokedToken.as_str() {
            Class::RevokedToken
        } else if scope == Some(Scope::Read) {
            Class::ReadToken
        } else {
            Class::Authenticated
        }
    }

    fn budget(self) -> &'static Budget {
        match self {
            Class::Anonymous => &ANONYMOUS,
            Class::SecondFactor => &SECOND_FACTOR,
            Class::RevokedToken => &REVOKED_TOKEN,
            Class::ReadToken => &READ_TOKEN,
            Class::Authenticated => &AUTHENTICATED,
        }
    }
}

/// What makes two rejections repeats of each other. An anonymous request's resource id is
/// not part of it (it is the attacker's to vary); an authenticated one's is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    class: Class,
    client: String,
    actor_kind: &'static str,
    actor: String,
    action: String,
    status: u16,
    scim_type: Option<&'static str>,
    resource_id: Option<String>,
}

/// One entry of the window: the first request's details and how many came.
struct Group {
    entry: NewEntry,
    error: String,
    scim_type: Option<&'static str>,
    count: u64,
    last_at: String,
    /// The entry's `seq` once written, and the count written then.
    seq: Option<i64>,
    written: u64,
}

impl Group {
    fn new(entry: NewEntry, error: String, scim_type: Option<&'static str>) -> Group {
        Group {
            last_at: entry.at.clone(),
            entry,
            error,
            scim_type,
            count: 1,
            seq: None,
            written: 0,
        }
    }

    fn detail(&self) -> Value {
        let mut d = json!({"error": self.error, "count": self.count});
        if let Some(t) = self.scim_type {
            d["scimType"] = json!(t);
        }
        if self.count > 1 {
            d["lastAt"] = json!(self.last_at);
        }
        d
    }

    /// Memory the group holds, near enough.
    fn bytes(&self) -> usize {
        let e = &self.entry;
        std::mem::size_of::<Group>()
            + 2 * (e.client.len() + e.actor.len() + e.action.len())
            + e.user_agent.len()
            + 2 * e.resource_id.as_ref().map_or(0, String::len)
            + e.resource_name.as_ref().map_or(0, String::len)
            + self.error.len()
            + 2 * e.at.len()
            + 64
    }
}

/// The current window.
struct Window {
    started: Instant,
    /// Bumped per window, so a flush never marks a later window's entries as written.
    number: u64,
    groups: Vec<Group>,
    index: HashMap<Key, usize>,
    per_class: HashMap<Class, usize>,
    /// Entries per class and client key (an IPv4 address or an IPv6 /64).
    per_client: HashMap<(Class, String), usize>,
    /// Requests beyond a budget, one summary entry per class.
    overflow: HashMap<Class, usize>,
    bytes: usize,
}

impl Window {
    fn new(number: u64) -> Window {
        Window {
            started: Instant::now(),
            number,
            groups: Vec::new(),
            index: HashMap::new(),
            per_class: HashMap::new(),
            per_client: HashMap::new(),
            overflow: HashMap::new(),
            bytes: 0,
        }
    }

    fn add(
        &mut self,
        class: Class,
        mut entry: NewEntry,
        error: String,
        scim_type: Option<&'static str>,
    ) {
        // A request without a working credential names no resource on record: the id it put
        // in its path would otherwise show in that user's or group's history, the attacker's
        // to plant. Nor does a read token's failure, so its repeats fold whatever ids they name.
        if class != Class::Authenticated {
            entry.resource_id = None;
        }
        let key = Key {
            class,
            client: entry.client.clone(),
            actor_kind: entry.actor_kind,
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            status: entry.status,
            scim_type,
            resource_id: entry.resource_id.clone(),
        };
        if let Some(&i) = self.index.get(&key) {
            let g = &mut self.groups[i];
            g.count += 1;
            g.last_at = entry.at;
            return;
        }
        let budget = class.budget();
        // Shares per client key, so one IPv6 /64 is one client however many addresses it uses.
        let client_key = entry
            .client
            .parse()
            .map_or_else(|_| entry.client.clone(), |ip| client_key(ip).to_string());
        let client = (class, client_key);
        let group = Group::new(entry, error, scim_type);
        let size = group.bytes();
        let full = self.per_class.get(&class).copied().unwrap_or(0) >= budget.entries
            || self.per_client.get(&client).copied().unwrap_or(0) >= budget.per_client
            || self.bytes + size > MAX_QUEUE_BYTES - SUMMARY_RESERVE;
        if full {
            self.count_overflow(class, group);
            return;
        }
        *self.per_class.entry(class).or_default() += 1;
        *self.per_client.entry(client).or_default() += 1;
        self.bytes += size;
        self.index.insert(key, self.groups.len());
        self.groups.push(group);
    }

    /// Counts a request beyond the budget in its class's summary entry.
    fn count_overflow(&mut self, class: Class, rejected: Group) {
        if let Some(&i) = self.overflow.get(&class) {
            let g = &mut self.groups[i];
            g.count += 1;
            g.last_at = rejected.entry.at;
            return;
        }
        let mut entry = rejected.entry;
        entry.actor = String::new();
        entry.client = "*".into();
        entry.user_agent = String::new();
        entry.action = "requests.rejected".into();
        entry.resource_type = None;
        entry.resource_id = None;
        entry.resource_name = None;
        let error = format!(
            "more {} requests were rejected this minute than are recorded one by one; \
             this entry counts the rest",
            match class {
                Class::Anonymous => "unauthenticated",
                Class::SecondFactor => "two-factor sign-in",
                Class::RevokedToken => "revoked-token",
                Class::ReadToken => "read-token",
                Class::Authenticated => "authenticated",
            }
        );
        // Outside the budgets (one per class), so it always has room.
        let group = Group::new(entry, error, None);
        self.bytes += group.bytes();
        self.overflow.insert(class, self.groups.len());
        self.groups.push(group);
    }
}

/// Rejected requests waiting to be written.
pub struct Rejections {
    window: Mutex<Window>,
}

impl Default for Rejections {
    fn default() -> Self {
        Rejections {
            window: Mutex::new(Window::new(0)),
        }
    }
}

/// What to write at a flush: new entries, and counts of written ones that grew.
struct Pending {
    window: u64,
    inserts: Vec<(usize, NewEntry, u64)>,
    updates: Vec<(i64, Value, u64, usize)>,
}

impl Pending {
    fn of(w: &Window) -> Pending {
        let mut p = Pending {
            window: w.number,
            inserts: Vec::new(),
            updates: Vec::new(),
        };
        for (i, g) in w.groups.iter().enumerate() {
            match g.seq {
                None => {
                    let mut e = g.entry.clone();
                    e.detail = Some(g.detail());
                    p.inserts.push((i, e, g.count));
                }
                Some(seq) if g.count > g.written => {
                    p.updates.push((seq, g.detail(), g.count, i));
                }
                Some(_) => {}
            }
        }
        p
    }
}

impl Rejections {
    /// Queues the entry for a request that failed with `error`; its budget follows from its
    /// actor's kind and, for a live token, its scope (`None` otherwise): a read token's
    /// failures are in their own budget, folded without the resource.
    pub fn push(&self, entry: NewEntry, scope: Option<Scope>, error: &Error) {
        let class = Class::of(&entry, scope);
        self.push_as(class, entry, error.detail(), error.scim_type());
    }

    /// Queues the entry for a failed console sign-in: whoever it names, the client had no
    /// credential, so it is in the anonymous budget.
    pub fn push_sign_in(&self, entry: NewEntry, error: &Error) {
        self.push_as(Class::Anonymous, entry, error.detail(), error.scim_type());
    }

    /// Queues the entry for a console sign-in with the right password that did not sign in
    /// (`what` happened to its second factor), in the second factor's own budget.
    pub fn push_second_factor(&self, entry: NewEntry, what: String) {
        self.push_as(Class::SecondFactor, entry, what, None);
    }

    fn push_as(
        &self,
        class: Class,
        mut entry: NewEntry,
        mut text: String,
        scim_type: Option<&'static str>,
    ) {
        clip(&mut entry.user_agent, MAX_USER_AGENT);
        clip(&mut entry.action, MAX_ACTION);
        clip(&mut entry.actor, MAX_ACTOR);
        if let Some(id) = &mut entry.resource_id {
            clip(id, MAX_RESOURCE_ID);
        }
        if let Some(name) = &mut entry.resource_name {
            clip(name, MAX_RESOURCE_NAME);
        }
        entry.refs.clear();
        entry.detail = None;
        clip(&mut text, MAX_ERROR);
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        window.add(class, entry, text, scim_type);
    }

    /// Writes new entries and grown counts in one transaction; a window that has ended is
    /// written for the last time and a new one begins.
    pub async fn flush(&self, store: &Store) -> Result<()> {
        let (pending, ended) = {
            let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
            if w.started.elapsed() >= WINDOW {
                let next = Window::new(w.number + 1);
                let ended = std::mem::replace(&mut *w, next);
                (Pending::of(&ended), Some(ended))
            } else {
                (Pending::of(&w), None)
            }
        };
        if let Some(ended) = &ended {
            for (class, &i) in &ended.overflow {
                warn!(
                    class = ?class,
                    requests = ended.groups[i].count,
                    "rejected requests over the audit log's budget: counted, not recorded one by one"
                );
            }
        }
        if pending.inserts.is_empty() && pending.updates.is_empty() {
            return Ok(());
        }
        let Pending {
            window,
            inserts,
            updates,
        } = pending;
        let (written, updates) = store
            .write(move |tx| {
                let mut written = Vec::with_capacity(inserts.len());
                for (i, e, count) in inserts {
                    written.push((i, audit::insert(tx, &e)?, count));
                }
                for (seq, detail, _, _) in &updates {
                    audit::set_detail(tx, *seq, detail)?;
                }
                Ok((written, updates))
            })
            .await?;
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.number == window {
            for (i, seq, count) in written {
                w.groups[i].seq = Some(seq);
                w.groups[i].written = count;
            }
            for (_, _, count, i) in updates {
                w.groups[i].written = count;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::time;

    fn rejected(kind: ActorKind, client: &str, action: &str, id: Option<&str>) -> NewEntry {
        NewEntry {
            at: time::now(),
            actor_kind: kind.as_str(),
            actor: String::new(),
            client: client.into(),
            user_agent: "x".repeat(30_000),
            action: action.into(),
            resource_type: None,
            resource_id: id.map(str::to_string),
            resource_name: None,
            outcome: "failure",
            status: 401,
            detail: None,
            refs: vec!["r".repeat(30_000)],
        }
    }

    fn unauthorized() -> Error {
        Error::Unauthorized(format!("no token for {}", "p".repeat(30_000)))
    }

    fn counts(r: &Rejections) -> Vec<(String, String, u64)> {
        let w = r.window.lock().unwrap();
        w.groups
            .iter()
            .map(|g| (g.entry.client.clone(), g.entry.action.clone(), g.count))
            .collect()
    }

    #[test]
    fn clips_at_a_character_boundary_with_a_mark() {
        let mut s = "ééééé".to_string();
        clip(&mut s, 6);
        assert_eq!(s, "é…");
        let mut short = "abc".to_string();
        clip(&mut short, 3);
        assert_eq!(short, "abc");
    }

    #[test]
    fn repeats_from_one_client_are_one_entry_with_a_count_and_every_field_is_cut() {
        let r = Rejections::default();
        for n in 0..50 {
            let id = format!("{n}{}", "i".repeat(30_000));
            r.push(
                rejected(
                    ActorKind::Anonymous,
                    "10.0.0.1",
                    "GET /Users/{id}",
                    Some(&id),
                ),
                None,
                &unauthorized(),
            );
        }
        assert_eq!(
            counts(&r),
            [("10.0.0.1".into(), "GET /Users/{id}".into(), 50)]
        );
        let w = r.window.lock().unwrap();
        let g = &w.groups[0];
        assert!(g.entry.user_agent.len() <= MAX_USER_AGENT);
        assert_eq!(
            g.entry.resource_id, None,
            "an anonymous request names no resource"
        );
        assert!(g.error.len() <= MAX_ERROR);
        assert!(g.entry.refs.is_empty());
        assert_eq!(g.detail()["count"], 50);
        assert!(w.bytes < 2048, "{}", w.bytes);
        drop(w);
        // A token holder's resource id is kept, cut to size.
        let id = "i".repeat(30_000);
        let r = Rejections::default();
        r.push(
            rejected(ActorKind::Token, "10.0.0.1", "GET /Users/{id}", Some(&id)),
            Some(Scope::Write),
            &unauthorized(),
        );
        let w = r.window.lock().unwrap();
        let kept = w.groups[0].entry.resource_id.as_ref().unwrap();
        assert!(
            kept.len() <= MAX_RESOURCE_ID && kept.ends_with('…'),
            "{kept}"
        );
    }

    #[test]
    fn one_client_cannot_take_the_budget_from_the_others() {
        let r = Rejections::default();
        // One client varies the method, so every request has a new reason.
        for n in 0..10_000 {
            r.push(
                rejected(ActorKind::Anonymous, "10.0.0.1", &format!("X{n} -"), None),
                None,
                &unauthorized(),
            );
        }
        // As many others as the rest of the budget holds: each keeps its entry.
        let others = ANONYMOUS.entries - ANONYMOUS.per_client;
        for c in 0..others {
            r.push(
                rejected(ActorKind::Anonymous, &format!("10.0.1.{c}"), "GET -", None),
                None,
                &unauthorized(),
            );
        }
        let groups = counts(&r);
        let flooder = groups.iter().filter(|g| g.0 == "10.0.0.1").count();
        assert_eq!(flooder, ANONYMOUS.per_client);
        for c in 0..others {
            assert!(
                groups.iter().any(|g| g.0 == format!("10.0.1.{c}")),
                "client {c} has its entry"
            );
        }
        let overflow = groups.iter().find(|g| g.1 == "requests.rejected").unwrap();
        assert_eq!(overflow.2, 10_000 - ANONYMOUS.per_client as u64);
    }

    #[test]
    fn a_flood_from_many_addresses_is_bounded_and_leaves_room_for_identity_providers() {
        let r = Rejections::default();
        for c in 0..10_000 {
            for _ in 0..20 {
                r.push(
                    rejected(ActorKind::Anonymous, &format!("10.{c}"), "GET -", None),
                    None,
                    &unauthorized(),
                );
            }
        }
        let mut idp = rejected(ActorKind::Token, "192.0.2.1", "PUT /Users/{id}", Some("u1"));
        idp.actor = "okta".into();
        idp.status = 400;
        r.push(
            idp.clone(),
            Some(Scope::Write),
            &Error::InvalidValue("bad".into()),
        );
        idp.resource_id = Some("u2".into());
        r.push(idp, Some(Scope::Write), &Error::InvalidValue("bad".into()));
        let w = r.window.lock().unwrap();
        // The anonymous budget, its summary, and the identity provider's two resources.
        assert_eq!(w.groups.len(), ANONYMOUS.entries + 1 + 2);
        assert!(w.bytes <= MAX_QUEUE_BYTES);
        let total: u64 = w.groups.iter().map(|g| g.count).sum();
        assert_eq!(total, 200_000 + 2, "every request is counted");
    }

    /// Review 15, F1: a wrong second factor (the client holds the password) was filed with
    /// anonymous failures, so a flood of token-less requests crowded it out.
    #[test]
    fn a_right_password_stays_on_record_whatever_anonymous_clients_send() {
        let r = Rejections::default();
        for c in 0..1000 {
            r.push(
                rejected(ActorKind::Anonymous, &format!("10.3.{c}"), "GET -", None),
                None,
                &unauthorized(),
            );
        }
        for c in 0..3 {
            let mut e = rejected(ActorKind::Admin, &format!("10.4.{c}"), "admin.login", None);
            e.actor = "root".into();
            r.push_second_factor(e.clone(), "wrong code".into());
            r.push_second_factor(e, "wrong code".into());
        }
        let w = r.window.lock().unwrap();
        let root: Vec<_> = w
            .groups
            .iter()
            .filter(|g| g.entry.actor == "root")
            .collect();
        assert_eq!(root.len(), 3, "one per client");
        assert!(root.iter().all(|g| g.count == 2 && g.error == "wrong code"));
        assert_eq!(
            w.overflow
                .get(&Class::Anonymous)
                .map(|&i| w.groups[i].count),
            Some(1000 - ANONYMOUS.entries as u64)
        );
    }

    #[test]
    fn one_ipv6_network_is_one_client_and_revoked_tokens_keep_their_budget() {
        let r = Rejections::default();
        // A /64 from 1,000 of its addresses, each with a new reason: one client's share.
        for n in 0..1000 {
            r.push(
                rejected(
                    ActorKind::Anonymous,
                    &format!("2001:db8:0:1::{n:x}"),
                    &format!("X{n} -"),
                    None,
                ),
                None,
                &unauthorized(),
            );
        }
        // Failed sign-ins are anonymous whatever name they type.
        for n in 0..1000 {
            let mut e = rejected(ActorKind::Admin, &format!("10.2.{n}"), "admin.login", None);
            e.actor = format!("admin{n}");
            r.push_sign_in(e, &unauthorized());
        }
        let mut revoked = rejected(ActorKind::RevokedToken, "192.0.2.1", "GET -", Some("u"));
        revoked.actor = "okta".into();
        for _ in 0..5 {
            r.push(revoked.clone(), None, &unauthorized());
        }
        let w = r.window.lock().unwrap();
        let from_net = w
            .groups
            .iter()
            .filter(|g| g.entry.client.starts_with("2001:db8:0:1:"))
            .count();
        assert_eq!(from_net, ANONYMOUS.per_client);
        let anonymous = w
            .groups
            .iter()
            .filter(|g| g.entry.client != "*" && g.entry.actor != "okta")
            .count();
        assert_eq!(anonymous, ANONYMOUS.entries);
        let okta: Vec<_> = w
            .groups
            .iter()
            .filter(|g| g.entry.actor == "okta")
            .collect();
        assert_eq!(okta.len(), 1);
        assert_eq!(okta[0].count, 5);
        assert_eq!(okta[0].entry.resource_id, None);
    }

    #[test]
    fn a_read_token_s_refused_writes_fold_and_leave_the_identity_provider_its_budget() {
        let r = Rejections::default();
        // A leaked read token from two addresses, a new resource id each time.
        for n in 0..10_000 {
            let from = format!("10.0.0.{}", n % 2);
            let mut e = rejected(
                ActorKind::Token,
                &from,
                "PUT /Users/{id}",
                Some(&n.to_string()),
            );
            e.actor = "chatbot".into();
            e.status = 403;
            r.push(e, Some(Scope::Read), &Error::Forbidden("read scope".into()));
        }
        // Then the identity provider's failures (from its two addresses), one per resource.
        for n in 0..200 {
            let from = format!("192.0.2.{}", n % 2);
            let mut e = rejected(
                ActorKind::Token,
                &from,
                "PUT /Users/{id}",
                Some(&n.to_string()),
            );
            e.actor = "okta".into();
            e.status = 400;
            r.push(e, Some(Scope::Write), &Error::InvalidValue("bad".into()));
        }
        let w = r.window.lock().unwrap();
        let bot: Vec<_> = w
            .groups
            .iter()
            .filter(|g| g.entry.actor == "chatbot")
            .collect();
        assert_eq!(bot.len(), 2, "one entry per address: the ids are not kept");
        assert!(
            bot.iter()
                .all(|g| g.count == 5000 && g.entry.resource_id.is_none())
        );
        let okta = w.groups.iter().filter(|g| g.entry.actor == "okta").count();
        assert_eq!(okta, 200, "every failure of the provider on record");
        assert!(!w.overflow.contains_key(&Class::Authenticated));
    }

    #[test]
    fn every_failure_of_a_read_token_is_in_its_class_folded_without_the_resource() {
        let token = rejected(ActorKind::Token, "10.0.0.1", "GET -", None);
        let read = Some(Scope::Read);
        assert_eq!(Class::of(&token, read), Class::ReadToken);
        assert_eq!(Class::of(&token, Some(Scope::Write)), Class::Authenticated);
        let anonymous = rejected(ActorKind::Anonymous, "10.0.0.1", "GET -", None);
        assert_eq!(Class::of(&anonymous, None), Class::Anonymous);
        let revoked = rejected(ActorKind::RevokedToken, "10.0.0.1", "GET -", None);
        assert_eq!(Class::of(&revoked, None), Class::RevokedToken);

        let r = Rejections::default();
        // A leaked read token from two addresses: missing ids, bad filters, refused writes.
        let failures = [
            (
                "GET /Users/{id}",
                404,
                Error::NotFound("no such user".into()),
            ),
            ("GET /Users", 400, Error::InvalidFilter("bad filter".into())),
            (
                "PUT /Users/{id}",
                403,
                Error::Forbidden("read scope".into()),
            ),
        ];
        for n in 0..3000 {
            let (action, status, error) = &failures[n % 3];
            let mut e = rejected(
                ActorKind::Token,
                &format!("10.0.0.{}", n % 2),
                action,
                Some(&n.to_string()),
            );
            e.actor = "chatbot".into();
            e.status = *status;
            r.push(e, read, error);
        }
        // A write token's missing ids stay apart per resource.
        for n in 0..2 {
            let mut e = rejected(
                ActorKind::Token,
                "192.0.2.1",
                "GET /Users/{id}",
                Some(&n.to_string()),
            );
            e.actor = "okta".into();
            e.status = 404;
            r.push(
                e,
                Some(Scope::Write),
                &Error::NotFound("no such user".into()),
            );
        }
        let w = r.window.lock().unwrap();
        let bot: Vec<_> = w
            .groups
            .iter()
            .filter(|g| g.entry.actor == "chatbot")
            .collect();
        assert_eq!(bot.len(), 6, "one entry per address and failure");
        assert!(
            bot.iter()
                .all(|g| g.count == 500 && g.entry.resource_id.is_none())
        );
        assert_eq!(w.per_class.get(&Class::ReadToken), Some(&6));
        assert_eq!(w.per_class.get(&Class::Authenticated), Some(&2));
        let okta: Vec<_> = w
            .groups
            .iter()
            .filter(|g| g.entry.actor == "okta")
            .filter_map(|g| g.entry.resource_id.as_deref())
            .collect();
        assert_eq!(okta, ["0", "1"]);
    }

    #[test]
    fn the_queue_is_bounded_in_bytes() {
        let r = Rejections::default();
        for c in 0..100_000 {
            let mut e = rejected(ActorKind::Token, &format!("10.{c}"), "GET -", Some("x"));
            e.actor = format!("{c}{}", "a".repeat(1000));
            r.push(e, Some(Scope::Write), &unauthorized());
        }
        let w = r.window.lock().unwrap();
        assert!(w.bytes <= MAX_QUEUE_BYTES, "{}", w.bytes);
        let held: usize = w.groups.iter().map(Group::bytes).sum();
        assert_eq!(held, w.bytes);
        assert!(w.groups.len() < AUTHENTICATED.entries);
    }
}
