//! The differential property test: random filters over random users and groups, run both as
//! SQL (`store::query`) and by the in-memory evaluator (`scim::eval`) on the rendered
//! resources. Every disagreement is a bug in one of them.

use std::cmp::Ordering;

use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::{Value, json};

use super::{configure, ext_index, groups, migrate, query, schemas, users};
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::scim::registry::testing::acme;
use crate::scim::registry::{Declared, Registry};
use crate::scim::resource::{self, ResourceKind};
use crate::scim::{eval, resolve, validate};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const NOW: &str = "2026-03-04T05:06:07.089Z";
const ACME: &str = "urn:acme:2.0:User";
const UNDECLARED: &str = "urn:undeclared:2.0:User";

/// Small vocabularies, so random filters often hit random data.
const WORDS: &[&str] = &[
    "ana", "Ana", "ANA", "bo", "émile", "ÉMILE", "x", "", "a@b.c", "A@B.C", "straße", "STRASSE",
    " bo ", "Émile", "ﬁ",
];
const TYPES: &[&str] = &["work", "Work", "home", "other"];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_string)
}

fn email() -> impl Strategy<Value = Value> {
    (
        word(),
        prop::sample::select(TYPES),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(v, t, primary)| {
            let mut e = json!({"value": format!("{v}@x.org"), "type": t});
            if let Some(p) = primary {
                e["primary"] = json!(p);
            }
            e
        })
}

/// A value of an undeclared extension attribute: untyped, so any JSON scalar or a list.
fn untyped() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        3 => word().prop_map(Value::from),
        2 => (-2i64..3).prop_map(Value::from),
        1 => Just(json!(1.5)),
        1 => any::<bool>().prop_map(Value::from),
    ];
    prop_oneof![
        4 => scalar.clone(),
        1 => prop::collection::vec(scalar, 0..3).prop_map(Value::Array),
        1 => word().prop_map(|w| json!({"badge": w})),
    ]
}

/// An undeclared list of objects (Okta/OneLogin keys), or a lone object or a mixed list:
/// what sub-attributes and value filters of an undeclared attribute read.
fn untyped_objects() -> impl Strategy<Value = Value> {
    let part = prop_oneof![
        3 => word().prop_map(Value::from),
        1 => (-2i64..3).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => prop::collection::vec(word().prop_map(Value::from), 1..3).prop_map(Value::Array),
    ];
    let object = (
        prop::option::of(prop::sample::select(TYPES)),
        prop::option::of(part),
    )
        .prop_map(|(t, v)| json!({"type": t, "value": v}));
    prop_oneof![
        3 => prop::collection::vec(object.clone(), 0..3).prop_map(Value::Array),
        1 => object,
        1 => (untyped(), word()).prop_map(|(a, w)| json!([a, {"value": w}])),
    ]
}

/// Custom extension data: the declared `urn:acme:2.0:User` (typed, see `testing::acme`) and
/// an undeclared `urn:undeclared:2.0:User`.
fn custom() -> impl Strategy<Value = (Option<Value>, Option<Value>)> {
    let declared = (
        prop::option::of(word()),
        prop::option::of(-2i64..3),
        prop::option::of(any::<bool>()),
        prop::collection::vec((word(), prop::sample::select(TYPES)), 0..3),
    )
        .prop_map(|(badge, uid, vip, keys)| {
            let keys: Vec<Value> = keys
                .into_iter()
                .map(|(v, t)| json!({"value": v, "type": t}))
                .collect();
            json!({"badgeNumber": badge, "uid": uid, "vip": vip, "keys": keys})
        });
    let undeclared = (
        untyped(),
        prop::option::of(untyped()),
        prop::option::of(untyped_objects()),
    )
        .prop_map(|(badge, n, keys)| json!({"badge": badge, "n": n, "keys": keys}));
    (prop::option::of(declared), prop::option::of(undeclared))
}

/// A user body; validation decides what survives (e.g. `""` is absent, two primaries fail).
fn user_body(i: usize) -> impl Strategy<Value = Value> {
    (
        custom(),
        word(),
        prop::option::of(word()),
        prop::option::of(word()),
        prop::option::of(any::<bool>()),
        prop::collection::vec(email(), 0..3),
        prop::option::of(word()),
        prop::option::of(word()),
    )
        .prop_map(
            move |((acme, other), name, display, title, active, emails, dept, given)| {
                let mut u = json!({"userName": format!("{name}{i}")});
                if let Some(a) = acme {
                    u[ACME] = a;
                }
                if let Some(o) = other {
                    u[UNDECLARED] = o;
                }
                if let Some(d) = display {
                    u["displayName"] = json!(d);
                }
                if let Some(t) = title {
                    u["title"] = json!(t);
                }
                if let Some(a) = active {
                    u["active"] = json!(a);
                }
                if !emails.is_empty() {
                    u["emails"] = Value::Array(emails);
                }
                if let Some(g) = given {
                    u["name"] = json!({"givenName": g});
                }
                if let Some(d) = dept {
                    u[ENTERPRISE] = json!({"department": d, "manager": {"value": format!("m{i}")}});
                }
                u
            },
        )
}

fn path(attr: &str) -> AttrPath {
    crate::scim::filter::parse_path(attr).unwrap()
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(&CompareOp::ALL[..])
}

fn value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        4 => word().prop_map(CompValue::String),
        1 => prop::sample::select(TYPES).prop_map(|t| CompValue::String(t.to_string())),
        1 => any::<bool>().prop_map(CompValue::Bool),
        1 => (-2i64..3).prop_map(|n| CompValue::Number(n.into())),
        1 => Just(CompValue::String(NOW.to_string())),
        1 => Just(CompValue::String("2026-03-04T06:00:00+01:00".to_string())),
    ]
}

/// A leaf over `attrs`; `resolve` refuses the ill-typed ones and both sides skip those.
fn leaf(attrs: &'static [&'static str]) -> impl Strategy<Value = Filter> {
    let attr = prop::sample::select(attrs);
    prop_oneof![
        1 => attr.clone().prop_map(|a| Filter::Present(path(a))),
        4 => (attr, op(), value()).prop_map(|(a, o, v)| Filter::Compare(path(a), o, v)),
    ]
}

fn filter(
    attrs: &'static [&'static str],
    value_paths: &'static [(&'static str, &'static [&'static str])],
) -> impl Strategy<Value = Filter> {
    let vp = prop::sample::select(value_paths).prop_flat_map(|(outer, subs)| {
        let inner = leaf(subs).prop_recursive(2, 4, 2, |f| {
            prop_oneof![
                (f.clone(), f.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (f.clone(), f.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                f.prop_map(|a| Filter::Not(Box::new(a))),
            ]
        });
        inner.prop_map(move |i| Filter::ValuePath(path(outer), Box::new(i)))
    });
    let base = prop_oneof![4 => leaf(attrs), 1 => vp];
    base.prop_recursive(3, 12, 2, |f| {
        prop_oneof![
            (f.clone(), f.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (f.clone(), f.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            f.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
}

const USER_ATTRS: &[&str] = &[
    "userName",
    "displayName",
    "title",
    "active",
    "name.givenName",
    "name",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "externalId",
    "meta.created",
    "meta.lastModified",
    "meta.resourceType",
    "groups",
    "groups.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:acme:2.0:User:badgeNumber",
    "urn:acme:2.0:User:uid",
    "urn:acme:2.0:User:vip",
    "urn:acme:2.0:User:keys",
    "urn:acme:2.0:User:keys.type",
    "urn:acme:2.0:User:keys.value",
    "urn:undeclared:2.0:User:badge",
    "urn:undeclared:2.0:User:n",
    "urn:undeclared:2.0:User:absent",
    "urn:undeclared:2.0:User:badge.badge",
    "urn:undeclared:2.0:User:keys",
    "urn:undeclared:2.0:User:keys.type",
    "urn:undeclared:2.0:User:keys.value",
];
/// The indexed attributes (`INDEXED`) as filter paths.
const INDEXED_ATTRS: &[&str] = &[
    "urn:acme:2.0:User:badgeNumber",
    "urn:acme:2.0:User:uid",
    "urn:acme:2.0:User:vip",
    "urn:acme:2.0:User:keys.value",
];
const USER_VALUE_PATHS: &[(&str, &[&str])] = &[
    ("emails", &["value", "type", "primary"]),
    ("urn:acme:2.0:User:keys", &["value", "type"]),
    ("urn:undeclared:2.0:User:keys", &["value", "type", "absent"]),
    ("urn:undeclared:2.0:User:badge", &["badge"]),
];

const GROUP_ATTRS: &[&str] = &[
    "displayName",
    "externalId",
    "members",
    "members.value",
    "members.type",
    "meta.created",
];
const GROUP_VALUE_PATHS: &[(&str, &[&str])] = &[("members", &["value", "type"])];

/// Loads the users (and groups over them) into a fresh database; returns it with the
/// rendered resources.
fn load(bodies: &[Value], memberships: &[Vec<usize>]) -> (Connection, Vec<Value>, Vec<Value>) {
    let mut conn = Connection::open_in_memory().unwrap();
    configure(&conn).unwrap();
    migrate::run(&mut conn).unwrap();
    let registry = acme();
    // The declared extension's attributes read through their side-table indexes (`eq`), as
    // `registry` says once the indexes are ready.
    let schema = (*registry.extensions(ResourceKind::User)[1].schema).clone();
    let declared = Declared {
        schema,
        resource: ResourceKind::User,
        required: false,
    };
    schemas::put(&conn, &declared, &INDEXED.map(String::from), NOW).unwrap();
    while ext_index::backfill_step(&conn, ext_index::BACKFILL_CHUNK).unwrap() {}
    let mut ids = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let Ok(mut input) = validate::user(body.clone(), &registry) else {
            continue;
        };
        input.doc.entry("active").or_insert(json!(true));
        let id = format!("u{i}");
        users::insert(&conn, &id, input.doc, NOW).unwrap();
        ids.push(id);
    }
    let mut group_ids = Vec::new();
    for (g, members) in memberships.iter().enumerate() {
        let mut member_ids: Vec<String> = members
            .iter()
            .filter_map(|m| ids.get(m % ids.len().max(1)).cloned())
            .collect();
        // Nest every third group in the previous one.
        if g % 3 == 2 {
            member_ids.push(format!("g{}", g - 1));
        }
        let doc = validate::group(
            json!({"displayName": format!("Team {g} {}", WORDS[g % WORDS.len()])}),
            &registry,
        )
        .unwrap()
        .doc;
        let id = format!("g{g}");
        groups::insert(&conn, &id, doc, &member_ids, NOW).unwrap();
        group_ids.push(id);
    }
    let rendered_users = ids
        .iter()
        .map(|id| {
            let user = users::get(&conn, id).unwrap().unwrap();
            resource::render_user(user, "http://x", &registry)
        })
        .collect();
    let rendered_groups = group_ids
        .iter()
        .map(|id| {
            let group = groups::get(&conn, id, true).unwrap().unwrap();
            resource::render_group(group, "http://x", &registry)
        })
        .collect();
    (conn, rendered_users, rendered_groups)
}

/// The attributes of `urn:acme:2.0:User` the differential database indexes.
const INDEXED: [&str; 4] = ["badgeNumber", "uid", "vip", "keys.value"];

/// `acme()` with the indexes of `conn` in force, as a server's registry holds them.
fn indexed(conn: &Connection) -> Registry {
    let ready = ext_index::ready(conn).unwrap();
    assert_eq!(ready.len(), INDEXED.len(), "every index is ready");
    acme().with_indexed(ready)
}

/// Runs `f` both ways over `resources` of `kind`; returns false when resolve refuses it.
fn agree(
    conn: &Connection,
    kind: ResourceKind,
    f: &Filter,
    resources: &[Value],
) -> Result<(), TestCaseError> {
    let resolved = match resolve::resolve(f, kind, &acme()) {
        Ok(r) => r,
        Err(_) => {
            prop_assert!(
                query::translate(f, kind, &acme()).is_err(),
                "translate accepted what resolve refused: {f}"
            );
            return Ok(());
        }
    };
    let sql = query::translate(f, kind, &indexed(conn))
        .map_err(|e| TestCaseError::fail(format!("{f}: {e}")))?;
    let table = match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT id FROM {table} WHERE {} ORDER BY seq",
            sql.sql
        ))
        .map_err(|e| TestCaseError::fail(format!("{f}: {e}\n{}", sql.sql)))?;
    let from_sql: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(&sql.params), |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| TestCaseError::fail(format!("{f}: {e}\n{}", sql.sql)))?;
    let from_eval: Vec<String> = resources
        .iter()
        .filter(|r| eval::matches(&resolved, r))
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    prop_assert_eq!(from_sql, from_eval, "filter {}\nsql {}", f, sql.sql);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sql_and_evaluator_agree_on_users(
        bodies in (0..8usize).prop_flat_map(|n| (0..n).map(user_body).collect::<Vec<_>>()),
        memberships in prop::collection::vec(prop::collection::vec(0..8usize, 0..4), 0..4),
        filters in prop::collection::vec(filter(USER_ATTRS, USER_VALUE_PATHS), 8),
    ) {
        let (conn, users, _) = load(&bodies, &memberships);
        for f in &filters {
            agree(&conn, ResourceKind::User, f, &users)?;
        }
    }

    /// Filters over the indexed attributes only, so every comparison the side rows answer
    /// (eq, ranges, sw/co/ew, their negations) is tried often.
    #[test]
    fn sql_and_evaluator_agree_on_indexed_attributes(
        bodies in (0..8usize).prop_flat_map(|n| (0..n).map(user_body).collect::<Vec<_>>()),
        filters in prop::collection::vec(filter(INDEXED_ATTRS, USER_VALUE_PATHS), 8),
    ) {
        let (conn, users, _) = load(&bodies, &[]);
        for f in &filters {
            agree(&conn, ResourceKind::User, f, &users)?;
        }
    }

    #[test]
    fn sql_and_evaluator_agree_on_groups(
        bodies in (1..6usize).prop_flat_map(|n| (0..n).map(user_body).collect::<Vec<_>>()),
        memberships in prop::collection::vec(prop::collection::vec(0..6usize, 0..4), 1..5),
        filters in prop::collection::vec(filter(GROUP_ATTRS, GROUP_VALUE_PATHS), 8),
    ) {
        let (conn, _, groups) = load(&bodies, &memberships);
        for f in &filters {
            agree(&conn, ResourceKind::Group, f, &groups)?;
        }
    }
}

/// `sortBy` paths of users, singular and multi-valued, core and extension.
const USER_SORTS: &[&str] = &[
    "userName",
    "displayName",
    "title",
    "active",
    "name.givenName",
    "emails",
    "emails.type",
    "externalId",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:acme:2.0:User:badgeNumber",
    "urn:acme:2.0:User:uid",
    "urn:acme:2.0:User:vip",
    "urn:acme:2.0:User:keys.type",
    "urn:undeclared:2.0:User:badge",
    "urn:undeclared:2.0:User:n",
    "urn:undeclared:2.0:User:badge.badge",
    "urn:undeclared:2.0:User:keys.value",
    "urn:undeclared:2.0:User:keys.type",
];

/// A number as a sort key: ordered as SQLite orders numbers (no NaN is ever stored).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Num(f64);

impl Eq for Num {}

impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Num {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// What a resource sorts by: a number, a string (folded as the attribute compares) or a
/// boolean. A declared attribute's values are all of one kind; an undeclared one's sort in
/// this order of kinds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Num(Num),
    Str(String),
    Bool(bool),
}

/// The model of RFC 7644 §3.4.2.3 the SQL must follow: the value of `t` in `r` (of a
/// multi-valued attribute, the primary value, else the first), `None` when it has none.
fn sort_key(t: &resolve::Target, r: &Value) -> Option<SortKey> {
    let holder = match &t.origin {
        resolve::Origin::Extension(urn) | resolve::Origin::Undeclared(urn) => r.get(&**urn)?,
        resolve::Origin::Common | resolve::Origin::Core => r,
    };
    if let resolve::Origin::Undeclared(_) = &t.origin {
        // Untyped: the value as stored, a list by its first element; objects are missing.
        // A sub-attribute is read from that value, then taken the same way.
        fn first(v: &Value) -> Option<&Value> {
            match v {
                Value::Array(items) => items.first(),
                other => Some(other),
            }
        }
        let mut v = first(holder.get(&t.attr.name)?)?;
        if let Some(sub) = &t.sub {
            v = first(v.get(&sub.name)?)?;
        }
        return match v {
            Value::Number(n) => n.as_f64().map(|n| SortKey::Num(Num(n))),
            Value::String(s) => Some(SortKey::Str(crate::scim::ident::fold(s))),
            Value::Bool(b) => Some(SortKey::Bool(*b)),
            _ => None,
        };
    }
    let mut v = holder.get(&t.attr.name)?;
    if let Value::Array(items) = v {
        v = items
            .iter()
            .find(|i| i["primary"] == json!(true))
            .or_else(|| items.first())?;
    }
    if let Some(sub) = &t.sub {
        v = v.get(&sub.name)?;
    }
    match v {
        Value::Bool(b) => Some(SortKey::Bool(*b)),
        Value::Number(n) => n.as_f64().map(|n| SortKey::Num(Num(n))),
        Value::String(s) if crate::scim::ident::is_identifier(t.leaf()) => {
            Some(SortKey::Str(crate::scim::ident::key(s)))
        }
        Value::String(s) if resolve::folds(t.leaf()) => {
            Some(SortKey::Str(crate::scim::ident::fold(s)))
        }
        Value::String(s) => Some(SortKey::Str(s.clone())),
        _ => None,
    }
}

/// Sorts `users` by `by` both in SQL and by the model; they must give the same order: missing
/// values last ascending and first descending, ties in creation order.
fn sorted_alike(
    conn: &Connection,
    by: &str,
    descending: bool,
    users: &[Value],
) -> Result<(), TestCaseError> {
    let by = path(by);
    // The data's registry: `urn:acme:2.0:User` declared, `urn:undeclared:2.0:User` not.
    let registry = acme();
    let order = query::sort_order(&by, descending, ResourceKind::User, &registry, 0)
        .map_err(|e| TestCaseError::fail(format!("{by}: {e}")))?;
    let mut stmt = conn
        .prepare(&format!("SELECT id FROM users ORDER BY {}seq", order.sql))
        .map_err(|e| TestCaseError::fail(format!("{by}: {e}\n{}", order.sql)))?;
    let from_sql: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(&order.params), |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let t = resolve::resolve_sort(&by, ResourceKind::User, &registry).unwrap();
    let mut model: Vec<(Option<SortKey>, String)> = users
        .iter()
        .map(|u| (sort_key(&t, u), u["id"].as_str().unwrap().to_string()))
        .collect();
    // Stable: ties keep creation order, in either direction.
    model.sort_by(|(a, _), (b, _)| {
        let ascending = match (a, b) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if descending {
            ascending.reverse()
        } else {
            ascending
        }
    });
    let from_model: Vec<String> = model.into_iter().map(|(_, id)| id).collect();
    prop_assert_eq!(
        from_sql,
        from_model,
        "sortBy {} descending {}",
        by,
        descending
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn sql_sorts_as_the_model_says(
        bodies in (0..8usize).prop_flat_map(|n| (0..n).map(user_body).collect::<Vec<_>>()),
        by in prop::sample::select(USER_SORTS),
        descending in any::<bool>(),
    ) {
        let (conn, users, _) = load(&bodies, &[]);
        sorted_alike(&conn, by, descending, &users)?;
    }
}
