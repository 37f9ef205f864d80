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
use crate::error::Result;
use crate::scim::diff;
use crate::scim::project::Projection;
use crate::scim::registry::Registry;
use crate::scim::resource::{GroupRecord, ResourceKind, UserRecord};
use crate::scim::time;
use crate::store::events;
use crate::store::groups::{self, Delta, MemberName, Members};

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
