//! Change events: what each committed change of a user or group tells the change feed and
//! webhook deliveries.
//!
//! Called beside `audit::record_change`, in the change's own transaction (its savepoint in a
//! group commit), so an event exists if and only if its change committed: a rejected or
//! rolled-back write leaves none, and a write that changed nothing is never called here. The
//! payload is rendered now and frozen (`store::events`): rendering at read time would leak
//! later state into earlier events. Which events a change yields is decided by the pure
//! `user_type` and `group_plan`; this module only renders and appends them.
//!
//! Membership is reported by group events only: the users whose `groups` changed get no
//! `user.updated` of their own, as a group rename touches no user.

use std::ops::Range;

use serde_json::{Map, Value, json};

use super::audit::Actor;
use crate::config::EventRetention;
use crate::error::{Error, Result};
use crate::scim::diff;
use crate::scim::project::Projection;
use crate::scim::registry::Registry;
use crate::scim::resource::{GroupRecord, ResourceKind, UserRecord};
use crate::scim::time;
use crate::store::groups::{self, Delta, MemberName, Members};
use crate::store::{Store, events};

pub const USER_CREATED: &str = "user.created";
pub const USER_UPDATED: &str = "user.updated";
pub const USER_DEACTIVATED: &str = "user.deactivated";
pub const USER_REACTIVATED: &str = "user.reactivated";
pub const USER_DELETED: &str = "user.deleted";
pub const GROUP_CREATED: &str = "group.created";
pub const GROUP_UPDATED: &str = "group.updated";
pub const GROUP_DELETED: &str = "group.deleted";
pub const GROUP_MEMBERS_ADDED: &str = "group.members_added";
pub const GROUP_MEMBERS_REMOVED: &str = "group.members_removed";

/// Every event type, as the feed's `types` parameter and webhook filters name them.
pub const TYPES: [&str; 10] = [
    USER_CREATED,
    USER_UPDATED,
    USER_DEACTIVATED,
    USER_REACTIVATED,
    USER_DELETED,
    GROUP_CREATED,
    GROUP_UPDATED,
    GROUP_DELETED,
    GROUP_MEMBERS_ADDED,
    GROUP_MEMBERS_REMOVED,
];

/// Most members one membership event lists: a change of 100,000 members is 100 events of a
/// bounded size (about 100 KiB each), never one body a receiver cannot take.
pub const MAX_MEMBERS: usize = 1000;

/// Whether a user document counts as active: only an explicit `false` does not (a new
/// account is active unless the client says otherwise; an unassigned `active` suspends
/// nobody).
fn is_active(doc: &Map<String, Value>) -> bool {
    doc.get("active") != Some(&Value::Bool(false))
}

/// The event a change of a user from `before` to `after` yields (`None` for either: did
/// not exist / no longer exists); nothing when nothing changed. A change that suspends or
/// reinstates the account is that event, carrying its other changes with it.
pub fn user_type(
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
) -> Option<&'static str> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(USER_CREATED),
        (Some(_), None) => Some(USER_DELETED),
        (Some(b), Some(a)) if b == a => None,
        (Some(b), Some(a)) => Some(match (is_active(b), is_active(a)) {
            (true, false) => USER_DEACTIVATED,
            (false, true) => USER_REACTIVATED,
            _ => USER_UPDATED,
        }),
    }
}

/// One event a group change yields: a change of the group itself, or a chunk of its
/// membership change (`range` into the members added or removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    Group(&'static str),
    Members(&'static str, Range<usize>),
}

/// The events a change of a group from `before` to `after` yields, in order, given how many
/// members it added and removed in effect: the group's own event (created, updated when an
/// attribute other than members changed, deleted), then removals, then additions, each in
/// chunks of at most `MAX_MEMBERS`. A deleted group's members go with it: no membership
/// events.
pub fn group_plan(
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
    added: usize,
    removed: usize,
) -> Vec<Planned> {
    let own = match (before, after) {
        (None, None) => return Vec::new(),
        (Some(_), None) => return vec![Planned::Group(GROUP_DELETED)],
        (None, Some(_)) => Some(GROUP_CREATED),
        (Some(b), Some(a)) => (b != a).then_some(GROUP_UPDATED),
    };
    let chunks = |kind, n: usize| {
        (0..n)
            .step_by(MAX_MEMBERS)
            .map(move |start| Planned::Members(kind, start..n.min(start + MAX_MEMBERS)))
    };
    own.map(Planned::Group)
        .into_iter()
        .chain(chunks(GROUP_MEMBERS_REMOVED, removed))
        .chain(chunks(GROUP_MEMBERS_ADDED, added))
        .collect()
}

/// The `resource` of a user's events: type, id, userName, externalId and a display name
/// when the document has one.
fn user_resource(id: &str, doc: &Map<String, Value>) -> Value {
    let mut r = json!({"type": "User", "id": id, "userName": doc.get("userName")});
    if let Some(x) = doc.get("externalId") {
        r["externalId"] = x.clone();
    }
    if let Some(name) = person_name(doc) {
        r["name"] = json!(name);
    }
    r
}

/// `name.formatted`, else given and family name joined, if the user has either.
fn person_name(doc: &Map<String, Value>) -> Option<String> {
    let name = doc.get("name")?;
    let text = |k: &str| {
        name.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(f) = text("formatted") {
        return Some(f.to_string());
    }
    let parts: Vec<&str> = [text("givenName"), text("familyName")]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn group_resource(id: &str, doc: &Map<String, Value>) -> Value {
    let mut r = json!({"type": "Group", "id": id, "displayName": doc.get("displayName")});
    if let Some(x) = doc.get("externalId") {
        r["externalId"] = x.clone();
    }
    r
}

/// The attribute changes from `before` to `after` as a default `GET` would show them: what
/// is never returned (a declared extension's `returned: never` attribute) is left out, as it
/// is from every read. Passwords are never stored, so never here.
fn visible_changes(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    kind: ResourceKind,
    registry: &Registry,
) -> Vec<Value> {
    let projection = Projection::new(None, None, kind, registry);
    let changes = if projection.is_identity() {
        diff::changes(before, after)
    } else {
        let shown = |doc: &Map<String, Value>| {
            let mut v = Value::Object(doc.clone());
            projection.apply(&mut v, kind, registry);
            match v {
                Value::Object(m) => m,
                _ => Map::new(),
            }
        };
        diff::changes(&shown(before), &shown(after))
    };
    changes.iter().map(diff::Change::to_json).collect()
}

/// Appends one event in the caller's transaction.
fn append(
    tx: &rusqlite::Connection,
    actor: &Actor,
    kind: &str,
    resource: &Value,
    changes: Vec<Value>,
    members: Option<Vec<MemberName>>,
) -> Result<()> {
    let at = time::now();
    let mut payload = json!({
        "type": kind,
        "time": at,
        "actor": {"kind": actor.kind.as_str(), "name": actor.name},
        "resource": resource,
        "changes": changes,
    });
    if let Some(members) = members {
        payload["members"] = json!(members);
    }
    events::append(tx, &at, kind, &payload.to_string())?;
    Ok(())
}

/// The events of a committed create, replace or patch of a user (`before`: `None` for a
/// create). Call only when the version moved.
pub fn user_written(
    tx: &rusqlite::Connection,
    actor: &Actor,
    registry: &Registry,
    before: Option<&Map<String, Value>>,
    user: &UserRecord,
) -> Result<()> {
    let Some(kind) = user_type(before, Some(&user.doc)) else {
        return Ok(());
    };
    let empty = Map::new();
    let changes = visible_changes(
        before.unwrap_or(&empty),
        &user.doc,
        ResourceKind::User,
        registry,
    );
    let resource = user_resource(&user.id, &user.doc);
    append(tx, actor, kind, &resource, changes, None)
}

/// The events of a committed deletion of the user `gone` (as it was): `user.deleted`, and
/// for each group it was a direct member of (they have lost a member and have a new version)
/// `group.members_removed` naming it.
pub fn user_deleted(tx: &rusqlite::Connection, actor: &Actor, gone: &UserRecord) -> Result<()> {
    append(
        tx,
        actor,
        USER_DELETED,
        &user_resource(&gone.id, &gone.doc),
        Vec::new(),
        None,
    )?;
    let name = gone
        .doc
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let me = || MemberName {
        id: gone.id.clone(),
        kind: "User",
        name: name.to_string(),
    };
    for g in gone.groups.iter().filter(|g| g.direct) {
        lost_member(tx, actor, &g.id, me())?;
    }
    Ok(())
}

/// `group.members_removed` of the group `group_id` for one member deleted from under it.
fn lost_member(
    tx: &rusqlite::Connection,
    actor: &Actor,
    group_id: &str,
    member: MemberName,
) -> Result<()> {
    if let Some((_, group)) = groups::row(tx, group_id)? {
        let resource = group_resource(&group.id, &group.doc);
        append(
            tx,
            actor,
            GROUP_MEMBERS_REMOVED,
            &resource,
            Vec::new(),
            Some(vec![member]),
        )?;
    }
    Ok(())
}

/// The events of a committed create, replace or patch of a group (`before`: `None` for a
/// create) whose members changed by `delta`. Call only when the version moved.
pub fn group_written(
    tx: &rusqlite::Connection,
    actor: &Actor,
    registry: &Registry,
    before: Option<&Map<String, Value>>,
    group: &GroupRecord,
    delta: &Delta,
) -> Result<()> {
    let (added, removed) = delta.net();
    let plan = group_plan(before, Some(&group.doc), added.len(), removed.len());
    let resource = group_resource(&group.id, &group.doc);
    for planned in plan {
        match planned {
            Planned::Group(kind) => {
                let empty = Map::new();
                let changes = visible_changes(
                    before.unwrap_or(&empty),
                    &group.doc,
                    ResourceKind::Group,
                    registry,
                );
                append(tx, actor, kind, &resource, changes, None)?;
            }
            Planned::Members(kind, range) => {
                let side: &Members = if kind == GROUP_MEMBERS_ADDED {
                    &added
                } else {
                    &removed
                };
                let names = side.names(tx, range)?;
                append(tx, actor, kind, &resource, Vec::new(), Some(names))?;
            }
        }
    }
    Ok(())
}

/// The events of a committed deletion of the group `gone` (as it was), which was a direct
/// member of the groups `parents` (they have lost a member): `group.deleted`, then
/// `group.members_removed` of each parent.
pub fn group_deleted(
    tx: &rusqlite::Connection,
    actor: &Actor,
    gone: &GroupRecord,
    parents: &[String],
) -> Result<()> {
    append(
        tx,
        actor,
        GROUP_DELETED,
        &group_resource(&gone.id, &gone.doc),
        Vec::new(),
        None,
    )?;
    let name = gone
        .doc
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for parent in parents {
        let me = MemberName {
            id: gone.id.clone(),
            kind: "Group",
            name: name.to_string(),
        };
        lost_member(tx, actor, parent, me)?;
    }
    Ok(())
}

/// Most events one feed page holds (`limit`), and the default.
pub const MAX_PAGE: u32 = 1000;
pub const DEFAULT_PAGE: u32 = 100;
/// A page stops growing once its events take this many bytes (at least one is served):
/// a thousand membership events of a thousand members each would be 100 MiB.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Events read from the database at a time while filling a page.
const READ_CHUNK: u32 = 100;

/// Where a feed read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// From the oldest event kept.
    Oldest,
    /// Only events committed from now on.
    Now,
    /// After the event with this id.
    Seq(i64),
}

/// One page of the feed: the served bodies in commit order, and where the next read starts.
#[derive(Debug, Default)]
pub struct Page {
    pub events: Vec<String>,
    pub next: i64,
}

/// The events after `after` of the given types (all when empty), at most `limit` and about
/// `MAX_PAGE_BYTES`. `next` is the last event served, or the newest event when the page
/// reached the end, so a consumer of a few types advances past the others.
/// A position whose events were pruned, or past the newest event, is `Error::Gone`.
pub fn read_page(
    conn: &rusqlite::Connection,
    after: After,
    types: &[String],
    limit: u32,
) -> Result<Page> {
    let head = events::head(conn)?;
    let oldest = events::oldest(conn)?;
    let start = match after {
        After::Oldest => oldest.map_or(head, |o| o - 1),
        After::Now => head,
        After::Seq(seq) => {
            check_position(seq, oldest, head)?;
            seq
        }
    };
    let mut page = Page {
        events: Vec::new(),
        next: start,
    };
    let mut bytes = 0;
    let mut at_end = false;
    while page.events.len() < limit as usize && bytes < MAX_PAGE_BYTES {
        let want = READ_CHUNK.min(limit - page.events.len() as u32);
        let chunk = events::after(conn, page.next, types, want)?;
        at_end = chunk.len() < want as usize;
        for e in chunk {
            if bytes >= MAX_PAGE_BYTES {
                at_end = false;
                break;
            }
            let body = events::body(e.seq, &e.payload);
            bytes += body.len();
            page.events.push(body);
            page.next = e.seq;
        }
        if at_end {
            break;
        }
    }
    if at_end {
        page.next = page.next.max(head);
    }
    Ok(page)
}

/// Fails with `Gone` unless `after` is a position the kept events continue from: the newest
/// event or before, and no event after it pruned (the oldest kept is at most `after + 1`).
fn check_position(after: i64, oldest: Option<i64>, head: i64) -> Result<()> {
    let gone = |detail: String| {
        Err(Error::Gone {
            detail,
            oldest,
            head,
        })
    };
    if after > head {
        return gone(format!(
            "event {after} is past the newest event ({head}): the database was restored \
             from an older backup or replaced; resync from SCIM, then follow from after=now"
        ));
    }
    let first_kept = oldest.unwrap_or(head + 1);
    if after < first_kept - 1 {
        return gone(format!(
            "events after {after} are no longer kept (retention); resync from SCIM, \
             then follow from after=now"
        ));
    }
    Ok(())
}

/// Events deleted per transaction while pruning, so SCIM writes are never held up long.
const PRUNE_BATCH: u32 = 5000;

/// Applies `r`: deletes events older than its age, then the oldest beyond its count and its
/// size, each in transactions of at most `PRUNE_BATCH`; how many were deleted. Runs hourly
/// beside the audit log's pruning.
pub async fn prune(store: &Store, r: EventRetention) -> Result<usize> {
    let older_than = ::time::OffsetDateTime::now_utc()
        .checked_sub(::time::Duration::days(i64::from(r.max_age_days)))
        .map(time::format);
    let mut total = 0;
    if let Some(t) = older_than {
        loop {
            let t = t.clone();
            let n = store
                .write(move |tx| events::delete_older(tx, &t, PRUNE_BATCH))
                .await?;
            total += n;
            if n == 0 {
                break;
            }
        }
    }
    let rows = store.read(events::count).await?;
    total += delete_oldest(store, rows.saturating_sub(r.max_rows)).await?;
    // Measured again after each round: deleting rows frees pages a little less than in
    // proportion, and the next hourly run finishes what this one leaves.
    for _ in 0..4 {
        let (bytes, rows) = store
            .read(|conn| Ok((events::size_on_disk(conn)?, events::count(conn)?)))
            .await?;
        let excess = super::audit::rows_over(bytes, rows, r.max_bytes);
        if excess == 0 {
            break;
        }
        total += delete_oldest(store, excess).await?;
    }
    Ok(total)
}

/// Deletes the `n` oldest events, `PRUNE_BATCH` per transaction; how many.
async fn delete_oldest(store: &Store, mut n: u64) -> Result<usize> {
    let mut total = 0;
    while n > 0 {
        let batch = u32::try_from(n.min(u64::from(PRUNE_BATCH))).unwrap_or(PRUNE_BATCH);
        let deleted = store
            .write(move |tx| events::delete_oldest(tx, batch))
            .await?;
        if deleted == 0 {
            break;
        }
        total += deleted;
        n = n.saturating_sub(deleted as u64);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn a_user_change_is_one_event_named_by_what_happened_to_the_account() {
        let ana = map(json!({"userName": "ana", "active": true}));
        let off = map(json!({"userName": "ana", "active": false}));
        let unset = map(json!({"userName": "ana"}));
        let renamed = map(json!({"userName": "ana.lima", "active": true}));
        let off_renamed = map(json!({"userName": "ana.lima", "active": false}));
        let odd = map(json!({"userName": "ana", "active": "false"}));
        for (before, after, want) in [
            (None, None, None),
            (None, Some(&ana), Some(USER_CREATED)),
            (None, Some(&off), Some(USER_CREATED)),
            (Some(&ana), None, Some(USER_DELETED)),
            (Some(&off), None, Some(USER_DELETED)),
            (Some(&ana), Some(&ana), None),
            (Some(&off), Some(&off), None),
            (Some(&ana), Some(&renamed), Some(USER_UPDATED)),
            (Some(&ana), Some(&off), Some(USER_DEACTIVATED)),
            (Some(&off), Some(&ana), Some(USER_REACTIVATED)),
            // Suspended and renamed at once: the suspension, carrying the rename.
            (Some(&ana), Some(&off_renamed), Some(USER_DEACTIVATED)),
            (Some(&off_renamed), Some(&ana), Some(USER_REACTIVATED)),
            // Unassigning `active` suspends nobody; from false it reinstates.
            (Some(&ana), Some(&unset), Some(USER_UPDATED)),
            (Some(&unset), Some(&ana), Some(USER_UPDATED)),
            (Some(&unset), Some(&off), Some(USER_DEACTIVATED)),
            (Some(&off), Some(&unset), Some(USER_REACTIVATED)),
            // Only the boolean false is a suspended account.
            (Some(&ana), Some(&odd), Some(USER_UPDATED)),
        ] {
            assert_eq!(user_type(before, after), want, "{before:?} → {after:?}");
        }
    }

    fn members(plan: &[Planned]) -> Vec<(&'static str, usize, usize)> {
        plan.iter()
            .filter_map(|p| match p {
                Planned::Members(k, r) => Some((*k, r.start, r.end)),
                Planned::Group(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_group_change_yields_its_own_event_then_removals_then_additions() {
        let eng = map(json!({"displayName": "Eng"}));
        let ops = map(json!({"displayName": "Ops"}));
        let g = |k| Planned::Group(k);
        let m = |k, r| Planned::Members(k, r);
        assert_eq!(group_plan(None, None, 3, 3), vec![]);
        assert_eq!(group_plan(None, Some(&eng), 0, 0), vec![g(GROUP_CREATED)]);
        assert_eq!(
            group_plan(None, Some(&eng), 2, 0),
            vec![g(GROUP_CREATED), m(GROUP_MEMBERS_ADDED, 0..2)]
        );
        assert_eq!(group_plan(Some(&eng), Some(&eng), 0, 0), vec![]);
        assert_eq!(
            group_plan(Some(&eng), Some(&eng), 1, 0),
            vec![m(GROUP_MEMBERS_ADDED, 0..1)]
        );
        assert_eq!(
            group_plan(Some(&eng), Some(&eng), 0, 1),
            vec![m(GROUP_MEMBERS_REMOVED, 0..1)]
        );
        assert_eq!(
            group_plan(Some(&eng), Some(&ops), 1, 2),
            vec![
                g(GROUP_UPDATED),
                m(GROUP_MEMBERS_REMOVED, 0..2),
                m(GROUP_MEMBERS_ADDED, 0..1)
            ]
        );
        assert_eq!(
            group_plan(Some(&eng), Some(&ops), 0, 0),
            vec![g(GROUP_UPDATED)]
        );
        // A deleted group's members go with it.
        assert_eq!(group_plan(Some(&eng), None, 0, 5), vec![g(GROUP_DELETED)]);
    }

    #[test]
    fn membership_changes_are_split_into_bounded_events_covering_every_member_once() {
        let eng = map(json!({"displayName": "Eng"}));
        for n in [1, 999, 1000, 1001, 2000, 2001, 100_000] {
            let plan = group_plan(Some(&eng), Some(&eng), n, 0);
            let chunks = members(&plan);
            assert_eq!(chunks.len(), n.div_ceil(MAX_MEMBERS), "{n}");
            let mut next = 0;
            for (kind, start, end) in chunks {
                assert_eq!(kind, GROUP_MEMBERS_ADDED);
                assert_eq!(start, next, "contiguous");
                assert!(end > start && end - start <= MAX_MEMBERS, "{start}..{end}");
                next = end;
            }
            assert_eq!(next, n, "every member once");
        }
        let both = members(&group_plan(None, Some(&eng), 1500, 2500));
        assert_eq!(
            both,
            vec![
                (GROUP_MEMBERS_REMOVED, 0, 1000),
                (GROUP_MEMBERS_REMOVED, 1000, 2000),
                (GROUP_MEMBERS_REMOVED, 2000, 2500),
                (GROUP_MEMBERS_ADDED, 0, 1000),
                (GROUP_MEMBERS_ADDED, 1000, 1500),
            ]
        );
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_within_age_count_and_size() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("e.db")).unwrap();
        let old = "2000-01-01T00:00:00.000Z";
        let pad = format!("{{\"pad\":\"{}\"}}", "p".repeat(2000));
        store
            .write_sync(|tx| {
                for n in 0..12_000 {
                    let at = if n < 7000 {
                        old.to_string()
                    } else {
                        time::now()
                    };
                    events::append(tx, &at, USER_UPDATED, &pad)?;
                }
                Ok(())
            })
            .unwrap();
        let state = || {
            store
                .read_sync(|c| Ok((events::oldest(c)?, events::count(c)?, events::head(c)?)))
                .unwrap()
        };
        let r = EventRetention::default();
        // By age: more than one batch, every old one.
        assert_eq!(prune(&store, r).await.unwrap(), 7000);
        assert_eq!(state(), (Some(7001), 5000, 12_000));
        let rows = EventRetention {
            max_rows: 1200,
            ..r
        };
        assert_eq!(prune(&store, rows).await.unwrap(), 3800);
        assert_eq!(state(), (Some(10_801), 1200, 12_000));
        let size = EventRetention {
            max_bytes: 1024 * 1024,
            ..r
        };
        prune(&store, size).await.unwrap();
        let bytes = store.read_sync(events::size_on_disk).unwrap();
        assert!(bytes <= 1024 * 1024, "{bytes}");
        let (oldest, count, head) = state();
        assert_eq!(oldest, Some(head - count as i64 + 1), "the newest are kept");
        assert!(count >= 150, "no more than needed: {count}");
    }

    #[test]
    fn a_position_is_served_while_nothing_after_it_was_pruned_and_it_is_not_past_the_head() {
        for (after, oldest, head, ok) in [
            (0, None, 0, true),
            (1, None, 0, false),
            (0, Some(1), 5, true),
            (5, Some(1), 5, true),
            (6, Some(1), 5, false),
            (3, Some(4), 9, true),
            (2, Some(4), 9, false),
            (0, Some(4), 9, false),
            // All pruned: only the head itself continues.
            (9, None, 9, true),
            (8, None, 9, false),
        ] {
            let got = check_position(after, oldest, head);
            assert_eq!(
                got.is_ok(),
                ok,
                "after {after}, oldest {oldest:?}, head {head}"
            );
            if let Err(Error::Gone {
                oldest: o, head: h, ..
            }) = got
            {
                assert_eq!((o, h), (oldest, head));
            }
        }
    }

    #[test]
    fn pages_follow_commit_order_and_a_filtered_reader_advances_to_the_head() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("e.db")).unwrap();
        store
            .write_sync(|tx| {
                for n in 0..250 {
                    let kind = if n == 120 { USER_DELETED } else { USER_UPDATED };
                    events::append(tx, "t", kind, &format!("{{\"n\":{n}}}"))?;
                }
                Ok(())
            })
            .unwrap();
        let read = |after, types: &[&str], limit| {
            let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            store
                .read_sync(|c| read_page(c, after, &types, limit))
                .unwrap()
        };
        let p = read(After::Oldest, &[], 150);
        assert_eq!(p.events.len(), 150);
        assert_eq!(p.events[0], r#"{"id":"1","n":0}"#);
        assert_eq!(p.next, 150);
        let p = read(After::Seq(150), &[], 150);
        assert_eq!((p.events.len(), p.next), (100, 250));
        let p = read(After::Seq(250), &[], 150);
        assert_eq!((p.events.len(), p.next), (0, 250));
        let p = read(After::Now, &[], 10);
        assert_eq!((p.events.len(), p.next), (0, 250));
        let p = read(After::Oldest, &[USER_DELETED], 10);
        assert_eq!(p.events, vec![r#"{"id":"121","n":120}"#.to_string()]);
        assert_eq!(p.next, 250, "read to the end: next is the head");
        let p = read(After::Oldest, &[USER_DELETED], 1);
        assert_eq!(p.next, 121, "a full page stops at its last event");
        let big = format!("{{\"pad\":\"{}\"}}", "p".repeat(100_000));
        store
            .write_sync(|tx| {
                for _ in 0..60 {
                    events::append(tx, "t", USER_UPDATED, &big)?;
                }
                Ok(())
            })
            .unwrap();
        let p = read(After::Seq(250), &[], 1000);
        assert!(p.events.len() < 60, "bounded in bytes: {}", p.events.len());
        assert_eq!(p.next, 250 + p.events.len() as i64);
    }

    #[test]
    fn every_type_is_named_once_and_shaped_alike() {
        let mut seen = std::collections::HashSet::new();
        for t in TYPES {
            assert!(seen.insert(t), "{t} twice");
            let (resource, action) = t.split_once('.').unwrap();
            assert!(["user", "group"].contains(&resource), "{t}");
            assert!(action.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn resources_name_the_person_and_leave_out_what_is_absent() {
        let r = user_resource(
            "u1",
            &map(json!({"userName": "ana", "name": {"givenName": "Ana", "familyName": "Lima"}})),
        );
        assert_eq!(
            r,
            json!({"type": "User", "id": "u1", "userName": "ana", "name": "Ana Lima"})
        );
        let r = user_resource(
            "u1",
            &map(json!({"userName": "ana", "externalId": "7",
                "name": {"formatted": "Dr Ana Lima", "givenName": "Ana"}})),
        );
        assert_eq!(r["name"], "Dr Ana Lima");
        assert_eq!(r["externalId"], "7");
        let r = user_resource(
            "u1",
            &map(json!({"userName": "ana", "name": {"givenName": ""}})),
        );
        assert!(r.get("name").is_none());
        assert_eq!(
            group_resource("g1", &map(json!({"displayName": "Eng", "externalId": "x"}))),
            json!({"type": "Group", "id": "g1", "displayName": "Eng", "externalId": "x"})
        );
    }

    #[test]
    fn changes_are_the_audit_s_without_what_reads_never_show() {
        use crate::scim::registry::Registry;
        let registry = Registry::builtin();
        let before = map(json!({"userName": "ana", "title": "Eng"}));
        let after = map(json!({"userName": "ana", "title": "Ops", "active": false}));
        let got = visible_changes(&before, &after, ResourceKind::User, &registry);
        assert_eq!(
            got,
            vec![
                json!({"path": "title", "before": "Eng", "after": "Ops"}),
                json!({"path": "active", "before": null, "after": false}),
            ]
        );
        // A declared `returned: never` attribute is left out; custom ones are in.
        use crate::scim::registry::Declared;
        use crate::scim::schema::{Attribute, Returned, Schema};
        use std::sync::Arc;
        let urn = "urn:acme:2.0:User";
        let registry = Registry::new(vec![Declared {
            schema: Schema {
                id: urn.into(),
                name: "Acme".into(),
                description: String::new(),
                attributes: vec![
                    Arc::new(Attribute::string("badge", "")),
                    Arc::new(Attribute::string("secret", "").returned(Returned::Never)),
                ],
            },
            resource: ResourceKind::User,
            required: false,
        }]);
        let before = map(json!({"userName": "ana", urn: {"badge": "1", "secret": "a"}}));
        let after = map(
            json!({"userName": "ana", urn: {"badge": "2", "secret": "b"},
            "urn:undeclared:User": {"shell": "/bin/sh"}}),
        );
        let got = visible_changes(&before, &after, ResourceKind::User, &registry);
        assert_eq!(
            got,
            vec![
                json!({"path": format!("{urn}:badge"), "before": "1", "after": "2"}),
                json!({"path": "urn:undeclared:User:shell", "before": null, "after": "/bin/sh"}),
            ]
        );
    }
}
