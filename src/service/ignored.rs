//! What a SCIM write ignored, and the audit entry of a write that changed nothing else.
//!
//! A write that changes a resource names its ignored attributes on its own audit entry. One
//! that changes nothing (OneLogin's unchanged PUT pushes, Entra's one-operation PATCH of an
//! attribute scimd does not keep) would leave no trace of them, so it gets an entry of its
//! own, `{"ignored": [...], "unchanged": true}`. IdPs repeat such writes on every sync, so the
//! HTTP layer holds a `Memo` that admits one per actor, resource type and set of ignored names
//! a day; the entry is written in its own transaction, only when the memo admits it.

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

/// When each key's unchanged write was last recorded; bounded by `MEMO_KEYS`.
#[derive(Debug, Default)]
pub struct Memo {
    seen: Mutex<HashMap<u64, Instant>>,
}

impl Memo {
    /// Whether the write with `key` is to be recorded at `now`: not when the same key was
    /// recorded less than `MEMO_TTL` before, nor when the memo is full of recent keys.
    pub fn admit(&self, key: u64, now: Instant) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < MEMO_TTL;
        if let Some(at) = seen.get_mut(&key) {
            if fresh(at) {
                return false;
            }
            *at = now;
            return true;
        }
        if seen.len() >= MEMO_KEYS {
            seen.retain(|_, at| fresh(at));
            if seen.len() >= MEMO_KEYS {
                return false;
            }
        }
        seen.insert(key, now);
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
        assert!(memo.admit(1, t0));
        assert!(!memo.admit(1, t0 + Duration::from_secs(3600)));
        assert!(memo.admit(2, t0));
        assert!(memo.admit(1, t0 + MEMO_TTL));
        assert!(!memo.admit(1, t0 + MEMO_TTL + Duration::from_secs(1)));
    }

    #[test]
    fn a_full_memo_drops_old_keys_and_else_admits_nothing_new() {
        let memo = Memo::default();
        let t0 = Instant::now();
        for k in 0..MEMO_KEYS as u64 {
            assert!(memo.admit(k, t0));
        }
        let later = t0 + Duration::from_secs(60);
        assert!(!memo.admit(u64::MAX, later), "full of recent keys");
        assert!(!memo.admit(0, later), "a known key still waits its day");
        let next_day = t0 + MEMO_TTL;
        assert!(memo.admit(u64::MAX, next_day), "old keys made room");
        assert_eq!(memo.seen.lock().unwrap().len(), 1);
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
