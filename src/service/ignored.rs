//! What a SCIM write ignored, and the audit entry of a write that changed nothing else.
//!
//! A write that changes a resource names its ignored attributes on its own audit entry. One
//! that changes nothing (OneLogin's unchanged PUT pushes, Entra's one-operation PATCH of an
//! attribute scimd does not keep) would leave no trace of them, so it gets an entry of its
//! own, `{"ignored": [...], "unchanged": true}`. IdPs repeat such writes on every sync, so the
//! HTTP layer holds a `Memo` that admits one per actor, resource type and set of ignored names
//! a day, each actor within a share of its own; the entry is written in its own transaction,
//! only when the memo admits it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::audit::{self, About, Actor};
use crate::error::Result;
use crate::scim::validate::Ignored;
use crate::store::Store;

/// How long the memo remembers that an unchanged write's names were recorded.
pub const MEMO_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Most keys the memo holds; a full memo drops keys older than `MEMO_TTL`, and if none are,
/// records nothing new (the names are still counted in `/metrics`).
pub const MEMO_KEYS: usize = 1024;
/// Most keys one actor holds in the memo, with the same rule: so one token sending many
/// different sets of names fills only its own share, not everyone's.
pub const MEMO_KEYS_PER_ACTOR: usize = 64;

/// What a write ignored: how many names (for `/metrics`), and, when the write changed nothing
/// else, the entry that would name them.
#[derive(Debug)]
pub struct Noted {
    pub count: usize,
    pub unchanged: Option<Unchanged>,
}

impl Noted {
    /// What a write of the resource `about` (`action`, answered `status`) ignored.
    /// `changed`: whether the write moved the resource's version (then its own entry names
    /// what was ignored).
    pub fn new(
        ignored: Ignored,
        changed: bool,
        action: &'static str,
        status: u16,
        about: About<'_>,
    ) -> Self {
        let count = ignored.count();
        let unchanged = (!changed && !ignored.is_empty()).then(|| Unchanged {
            action,
            status,
            kind: about.kind,
            id: about.id.to_string(),
            name: about.name.map(str::to_string),
            ignored,
        });
        Noted { count, unchanged }
    }
}

/// The audit entry of a write that changed nothing but ignored names.
#[derive(Debug)]
pub struct Unchanged {
    pub action: &'static str,
    pub status: u16,
    pub kind: &'static str,
    pub id: String,
    pub name: Option<String>,
    pub ignored: Ignored,
}

impl Unchanged {
    /// The memo's key: the actor, the resource type and the set of names ignored.
    pub fn key(&self, actor: &Actor) -> u64 {
        let mut names: Vec<&String> = self.ignored.names().iter().collect();
        names.sort();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (actor.kind.as_str(), &actor.name, self.kind, names).hash(&mut h);
        self.ignored.count().hash(&mut h);
        h.finish()
    }
}

/// The memo's share an actor's keys count against: who the actor is (not where from).
pub fn actor_key(actor: &Actor) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (actor.kind.as_str(), &actor.name).hash(&mut h);
    h.finish()
}

/// Writes `u`'s entry, in its own transaction.
pub async fn record_unchanged(store: &Store, actor: &Actor, u: Unchanged) -> Result<()> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let mut extra = Map::new();
            u.ignored.describe(&mut extra);
            extra.insert("unchanged".into(), Value::Bool(true));
            audit::record_change(
                tx,
                &actor,
                audit::Change {
                    action: u.action,
                    status: u.status,
                    about: About {
                        kind: u.kind,
                        id: &u.id,
                        name: u.name.as_deref(),
                    },
                    changes: Vec::new(),
                    extra,
                    refs: Vec::new(),
                },
            )
        })
        .await
}

/// When each key's unchanged write was last recorded, by actor; bounded by `MEMO_KEYS` in
/// all and `MEMO_KEYS_PER_ACTOR` per actor.
#[derive(Debug, Default)]
pub struct Memo {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    by_actor: HashMap<u64, HashMap<u64, Instant>>,
    total: usize,
}

impl Seen {
    /// Forgets `actor`'s keys (every actor's when `None`) older than `MEMO_TTL` at `now`.
    fn drop_stale(&mut self, actor: Option<u64>, now: Instant) {
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < MEMO_TTL;
        let mut dropped = 0;
        for (a, keys) in &mut self.by_actor {
            if actor.is_none_or(|x| x == *a) {
                let before = keys.len();
                keys.retain(|_, at| fresh(at));
                dropped += before - keys.len();
            }
        }
        self.by_actor.retain(|_, keys| !keys.is_empty());
        self.total -= dropped;
    }

    fn held_by(&self, actor: u64) -> usize {
        self.by_actor.get(&actor).map_or(0, HashMap::len)
    }
}

impl Memo {
    /// Whether the write with `key` by `actor` (`actor_key`) is to be recorded at `now`: not
    /// when the same key was recorded less than `MEMO_TTL` before, nor when the actor's share
    /// or the whole memo is full of recent keys.
    pub fn admit(&self, actor: u64, key: u64, now: Instant) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < MEMO_TTL;
        if let Some(at) = seen.by_actor.get_mut(&actor).and_then(|k| k.get_mut(&key)) {
            if fresh(at) {
                return false;
            }
            *at = now;
            return true;
        }
        if seen.held_by(actor) >= MEMO_KEYS_PER_ACTOR {
            seen.drop_stale(Some(actor), now);
            if seen.held_by(actor) >= MEMO_KEYS_PER_ACTOR {
                return false;
            }
        }
        if seen.total >= MEMO_KEYS {
            seen.drop_stale(None, now);
            if seen.total >= MEMO_KEYS {
                return false;
            }
        }
        seen.by_actor.entry(actor).or_default().insert(key, now);
        seen.total += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::audit::ActorKind;

    fn actor(name: &str) -> Actor {
        Actor {
            kind: ActorKind::Token,
            name: name.into(),
            client: "127.0.0.1".into(),
            user_agent: String::new(),
        }
    }

    fn unchanged(kind: &'static str, names: &[&str]) -> Unchanged {
        let mut ignored = Ignored::default();
        for n in names {
            ignored.note("", n);
        }
        Unchanged {
            action: "user.replace",
            status: 200,
            kind,
            id: "u1".into(),
            name: None,
            ignored,
        }
    }

    #[test]
    fn a_key_is_admitted_once_a_day() {
        let memo = Memo::default();
        let t0 = Instant::now();
        assert!(memo.admit(7, 1, t0));
        assert!(!memo.admit(7, 1, t0 + Duration::from_secs(3600)));
        assert!(memo.admit(7, 2, t0));
        assert!(memo.admit(7, 1, t0 + MEMO_TTL));
        assert!(!memo.admit(7, 1, t0 + MEMO_TTL + Duration::from_secs(1)));
    }

    #[test]
    fn a_full_memo_drops_old_keys_and_else_admits_nothing_new() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let actors = (MEMO_KEYS / MEMO_KEYS_PER_ACTOR) as u64;
        for a in 0..actors {
            for k in 0..MEMO_KEYS_PER_ACTOR as u64 {
                assert!(memo.admit(a, a << 32 | k, t0));
            }
        }
        let later = t0 + Duration::from_secs(60);
        assert!(!memo.admit(actors, u64::MAX, later), "full of recent keys");
        assert!(!memo.admit(0, 0, later), "a known key still waits its day");
        let next_day = t0 + MEMO_TTL;
        assert!(memo.admit(actors, u64::MAX, next_day), "old keys made room");
        let seen = memo.seen.lock().unwrap();
        assert_eq!((seen.total, seen.by_actor.len()), (1, 1));
    }

    /// Review #4: one token sending ever new sets of names fills its own share only; another
    /// token's entries are still admitted once a day, neither repeated nor refused.
    #[test]
    fn one_actor_cannot_fill_the_memo_for_others() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let (flood, idp) = (actor_key(&actor("flood")), actor_key(&actor("okta")));
        assert_ne!(flood, idp);
        assert!(memo.admit(idp, 1, t0));
        let admitted = (0..10 * MEMO_KEYS as u64)
            .filter(|k| memo.admit(flood, 1000 + k, t0))
            .count();
        assert_eq!(admitted, MEMO_KEYS_PER_ACTOR);
        let later = t0 + Duration::from_secs(60);
        assert!(!memo.admit(idp, 1, later), "still remembered: not repeated");
        assert!(
            memo.admit(idp, 2, later),
            "a new key of another actor has room"
        );
        // The flooding actor's share frees itself after a day.
        assert!(memo.admit(flood, 1, t0 + MEMO_TTL));
        let seen = memo.seen.lock().unwrap();
        assert!(seen.total <= MEMO_KEYS_PER_ACTOR + 2, "{}", seen.total);
    }

    #[test]
    fn keys_tell_actor_resource_type_and_name_set_apart() {
        let a = unchanged("User", &["x", "y"]);
        let key = a.key(&actor("okta"));
        assert_eq!(key, unchanged("User", &["y", "x"]).key(&actor("okta")));
        assert_ne!(key, a.key(&actor("entra")));
        assert_ne!(key, unchanged("Group", &["x", "y"]).key(&actor("okta")));
        assert_ne!(key, unchanged("User", &["x"]).key(&actor("okta")));
    }

    #[test]
    fn only_an_unchanged_write_with_ignored_names_needs_an_entry() {
        let some = unchanged("User", &["adreses"]).ignored;
        let noted = |ignored, changed| {
            let about = About {
                kind: "User",
                id: "u1",
                name: Some("ana"),
            };
            Noted::new(ignored, changed, "user.replace", 200, about)
        };
        let entry = noted(some.clone(), false).unchanged.expect("an entry");
        assert_eq!((entry.action, entry.id.as_str()), ("user.replace", "u1"));
        let changed = noted(some, true);
        assert!(changed.unchanged.is_none());
        assert_eq!(changed.count, 1);
        assert!(noted(Ignored::default(), false).unchanged.is_none());
    }
}
