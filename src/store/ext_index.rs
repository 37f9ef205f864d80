//! Indexes on declared extension attributes (migration 6; design brief §6–§8): the side
//! tables `user_ext_values` / `group_ext_values`, one row per value of each indexed attribute
//! (`scim_indexed_attrs`), written here in the transaction of every user and group write, as
//! `user_emails` is. An attribute is indexed when its declaration gives it `uniqueness`
//! server or global (then a partial UNIQUE index enforces it, case-folded with `ident::key`
//! unless caseExact), or when an administrator lists it (`scimd schema add --index`).
//!
//! Declaring an index (`sync`, in the declaration's transaction): a unique attribute is
//! checked against every stored resource first (a dry run that refuses the declaration,
//! naming a few shared values, when any exist) and filled at once, so it is `ready` when the
//! declaration commits. Any other indexed attribute starts `building` and `backfill_step`
//! fills it in chunks, each its own write; filters read the side rows only once it is `ready`
//! (the registry lists only those) and use the JSON document until then. Removing or
//! changing a declaration drops or rebuilds its side rows; documents are never touched.

use std::collections::BTreeMap;

use rusqlite::{Connection, ErrorCode, params};
use serde_json::{Map, Value};

use super::doc_from_text;
use crate::error::{Error, Result};
use crate::scim::ident;
use crate::scim::registry::{Declared, Indexed};
use crate::scim::resource::ResourceKind;
use crate::scim::schema::{Attribute, Kind, Schema, Uniqueness};

/// Resources a backfill step writes per transaction: short enough that SCIM writes
/// interleave with it.
pub const BACKFILL_CHUNK: i64 = 500;
/// Shared values a refused uniqueness declaration names, and ids per value.
const LISTED_VALUES: usize = 5;
const LISTED_IDS: usize = 3;

/// One indexed attribute, as the write path needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub id: i64,
    pub resource: ResourceKind,
    pub urn: String,
    pub attr: String,
    pub sub: Option<String>,
    pub kind: Kind,
    pub case_exact: bool,
    pub unique: bool,
    pub ready: bool,
    /// The attribute (not the sub-attribute) is multi-valued: each item of its list is
    /// indexed. A single-valued one indexes only a value of its own shape.
    pub multi: bool,
}

impl Attr {
    /// `attr` or `attr.sub`.
    pub fn path(&self) -> String {
        match &self.sub {
            Some(s) => format!("{}.{s}", self.attr),
            None => self.attr.clone(),
        }
    }

    /// The fully qualified name, for messages.
    fn label(&self) -> String {
        format!("{}:{}", self.urn, self.path())
    }
}

/// One value's side row.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    text: Option<String>,
    num: Option<f64>,
    ukey: Option<String>,
    /// The value as sent, for messages.
    shown: String,
}

/// (documents table, side table, its seq column); never from input.
fn tables(kind: ResourceKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        ResourceKind::User => ("users", "user_ext_values", "user_seq"),
        ResourceKind::Group => ("groups", "group_ext_values", "group_seq"),
    }
}

fn kind_named(name: &str) -> Kind {
    match name {
        "boolean" => Kind::Boolean,
        "decimal" => Kind::Decimal,
        "integer" => Kind::Integer,
        "dateTime" => Kind::DateTime,
        "binary" => Kind::Binary,
        "reference" => Kind::Reference,
        _ => Kind::String,
    }
}

const COLUMNS: &str = "id, resource_type, urn, attr, sub, type, case_exact, uniq, state, multi";

fn read_attr(r: &rusqlite::Row) -> rusqlite::Result<Attr> {
    let resource: String = r.get(1)?;
    let kind: String = r.get(5)?;
    let state: String = r.get(8)?;
    Ok(Attr {
        id: r.get(0)?,
        resource: if resource == "Group" {
            ResourceKind::Group
        } else {
            ResourceKind::User
        },
        urn: r.get(2)?,
        attr: r.get(3)?,
        sub: r.get(4)?,
        kind: kind_named(&kind),
        case_exact: r.get(6)?,
        unique: r.get(7)?,
        ready: state == "ready",
        multi: r.get(9)?,
    })
}

/// The indexed attributes of `kind` (building or ready): what every write maintains.
pub fn attrs(conn: &Connection, kind: ResourceKind) -> Result<Vec<Attr>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM scim_indexed_attrs WHERE resource_type = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([kind.name()], read_attr)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The indexed attributes of the declaration `urn` (any letter case).
pub fn attrs_of(conn: &Connection, urn: &str) -> Result<Vec<Attr>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM scim_indexed_attrs WHERE urn_fold = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([urn.to_ascii_lowercase()], read_attr)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The ready indexes, for the registry's filters.
pub fn ready(conn: &Connection) -> Result<Vec<Indexed>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM scim_indexed_attrs WHERE state = 'ready' ORDER BY id"
    ))?;
    let rows = stmt.query_map([], read_attr)?;
    Ok(rows
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .map(|a| Indexed {
            id: a.id,
            resource: a.resource,
            urn: a.urn,
            attr: a.attr,
            sub: a.sub,
        })
        .collect())
}

/// `obj`'s member called `name`, compared case-insensitively (RFC 7643 §2.1).
fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The side row of one value, or `None` when the value is not of the declared type (data
/// stored before the declaration): such a value is not indexed.
fn row_of(v: &Value, a: &Attr) -> Option<Row> {
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (text, num, ukey) = match a.kind {
        Kind::String | Kind::Reference => {
            let s = v.as_str()?;
            if a.case_exact {
                (Some(s.to_string()), None, s.to_string())
            } else {
                (Some(ident::fold(s)), None, ident::key(s))
            }
        }
        Kind::Binary | Kind::DateTime => {
            let s = v.as_str()?;
            (Some(s.to_string()), None, s.to_string())
        }
        Kind::Integer | Kind::Decimal => {
            let n = v.as_f64().filter(|_| v.is_number())?;
            (None, Some(n), n.to_string())
        }
        Kind::Boolean => {
            let b = v.as_bool()?;
            (None, Some(f64::from(u8::from(b))), b.to_string())
        }
        Kind::Complex => return None,
    };
    Some(Row {
        text,
        num,
        ukey: a.unique.then_some(ukey),
        shown,
    })
}

/// The side rows `doc` gives attribute `a`: one per distinct value.
fn rows_of(doc: &Map<String, Value>, a: &Attr) -> Vec<Row> {
    let Some(block) = member(doc, &a.urn).and_then(Value::as_object) else {
        return Vec::new();
    };
    let Some(v) = member(block, &a.attr) else {
        return Vec::new();
    };
    // A list is items only for a multi-valued attribute; under a single-valued one (stored
    // before the declaration) it is not a value of the declared shape, so it is not indexed,
    // as its filters (reading the document) don't match it either.
    let items: Vec<&Value> = match v {
        Value::Array(items) if a.multi => items.iter().collect(),
        Value::Array(_) => return Vec::new(),
        one => vec![one],
    };
    let mut out: Vec<Row> = Vec::new();
    for item in items {
        let leaf = match &a.sub {
            Some(s) => item.as_object().and_then(|o| member(o, s)),
            None => Some(item),
        };
        let Some(row) = leaf.and_then(|l| row_of(l, a)) else {
            continue;
        };
        // A value listed twice (or twice in one letter case) is one row: a resource never
        // clashes with itself.
        let dup = out.iter().any(|o| match (&o.ukey, &row.ukey) {
            (Some(x), Some(y)) => x == y,
            _ => o.text == row.text && o.num == row.num,
        });
        if !dup {
            out.push(row);
        }
    }
    out
}

fn insert_rows(
    conn: &Connection,
    kind: ResourceKind,
    seq: i64,
    a: &Attr,
    rows: &[Row],
) -> Result<()> {
    let (_, side, seq_col) = tables(kind);
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO {side} ({seq_col}, attr_id, text, num, ukey) VALUES (?1, ?2, ?3, ?4, ?5)"
    ))?;
    for r in rows {
        match stmt.execute(params![seq, a.id, r.text, r.num, r.ukey]) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation && a.unique =>
            {
                return Err(Error::Uniqueness(format!(
                    "{} \"{}\" is already taken",
                    a.label(),
                    r.shown
                )));
            }
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Writes the side rows of the resource at `seq` from its document `doc`, in the write's
/// transaction: a value of a unique attribute another resource of `kind` holds fails the
/// write with `uniqueness` naming the attribute (the savepoint undoes the rest). `fresh`:
/// the resource was just inserted, so it has no rows yet.
pub fn write(
    conn: &Connection,
    kind: ResourceKind,
    seq: i64,
    doc: &Map<String, Value>,
    fresh: bool,
) -> Result<()> {
    let attrs = attrs(conn, kind)?;
    if attrs.is_empty() {
        // No indexed attribute: no rows can exist (they cascade with their attribute).
        return Ok(());
    }
    let (_, side, seq_col) = tables(kind);
    if !fresh {
        conn.prepare_cached(&format!("DELETE FROM {side} WHERE {seq_col} = ?1"))?
            .execute([seq])?;
    }
    for a in &attrs {
        insert_rows(conn, kind, seq, a, &rows_of(doc, a))?;
    }
    Ok(())
}

/// What a declaration indexes: (attribute, sub-attribute, unique).
fn wanted<'s>(
    schema: &'s Schema,
    listed: &[String],
) -> Result<Vec<(&'s Attribute, Option<&'s Attribute>, bool)>> {
    let unique = |a: &Attribute| a.uniqueness != Uniqueness::None;
    let mut out: Vec<(&Attribute, Option<&Attribute>, bool)> = Vec::new();
    for a in &schema.attributes {
        if a.kind == Kind::Complex {
            for s in &a.sub_attributes {
                if unique(s) {
                    out.push((a, Some(s), true));
                }
            }
        } else if unique(a) {
            out.push((a, None, true));
        }
    }
    for path in listed {
        let (name, sub) = match path.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (path.as_str(), None),
        };
        let bad = |why: &str| {
            Error::InvalidValue(format!("cannot index \"{path}\" of {}: {why}", schema.id))
        };
        let a = schema
            .attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| bad("the schema has no such attribute"))?;
        let s = match (a.kind, sub) {
            (Kind::Complex, Some(s)) => Some(
                a.sub_attributes
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case(s))
                    .ok_or_else(|| bad("no such sub-attribute"))?,
            ),
            (Kind::Complex, None) => {
                return Err(bad(
                    "it is complex: index one of its sub-attributes (attr.sub)",
                ));
            }
            (_, Some(_)) => return Err(bad("only complex attributes have sub-attributes")),
            (_, None) => None,
        };
        let leaf: &Attribute = s.map_or(&**a, |s| &**s);
        let same = |(x, y, _): &(&Attribute, Option<&Attribute>, bool)| {
            x.name == a.name && y.map(|y| &y.name) == s.map(|s| &s.name)
        };
        if !out.iter().any(same) {
            out.push((a, s.map(|s| &**s), unique(leaf)));
        }
    }
    Ok(out)
}

/// Whether `path` names an attribute of `schema` that can be indexed.
pub fn indexable(schema: &Schema, path: &str) -> bool {
    wanted(schema, &[path.to_string()]).is_ok()
}

/// Puts the indexes of declaration `d` (its unique attributes plus `listed`) in step with
/// it, in the declaration's transaction: unchanged ones stay, others are dropped with their
/// rows, new ones are created (unique ones checked and filled now, others `building`).
/// Returns whether any index needs a backfill.
pub fn sync(conn: &Connection, d: &Declared, listed: &[String]) -> Result<bool> {
    let wanted = wanted(&d.schema, listed)?;
    let current = attrs_of(conn, &d.schema.id)?;
    let mut kept = vec![false; wanted.len()];
    for c in &current {
        let at = wanted.iter().position(|(a, s, unique)| {
            let leaf = s.unwrap_or(a);
            c.resource == d.resource
                && c.attr == a.name
                && c.sub.as_deref() == s.map(|s| s.name.as_str())
                && c.kind == leaf.kind
                && c.case_exact == leaf.case_exact
                && c.unique == *unique
                && c.multi == a.multi_valued
        });
        match at {
            Some(i) if !kept[i] => {
                kept[i] = true;
                conn.execute(
                    "UPDATE scim_indexed_attrs SET urn = ?2 WHERE id = ?1",
                    params![c.id, d.schema.id],
                )?;
            }
            _ => {
                conn.execute("DELETE FROM scim_indexed_attrs WHERE id = ?1", [c.id])?;
            }
        }
    }
    let mut building = current.iter().any(|c| !c.ready);
    for ((a, s, unique), kept) in wanted.into_iter().zip(kept) {
        if kept {
            continue;
        }
        let leaf = s.unwrap_or(a);
        conn.execute(
            "INSERT INTO scim_indexed_attrs (resource_type, urn, urn_fold, attr, sub, type,
                                             case_exact, uniq, state, multi)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'building', ?9)",
            params![
                d.resource.name(),
                d.schema.id,
                d.schema.id.to_ascii_lowercase(),
                a.name,
                s.map(|s| &s.name),
                leaf.kind.as_str(),
                leaf.case_exact,
                unique,
                a.multi_valued
            ],
        )?;
        let attr = Attr {
            id: conn.last_insert_rowid(),
            resource: d.resource,
            urn: d.schema.id.clone(),
            attr: a.name.clone(),
            sub: s.map(|s| s.name.clone()),
            kind: leaf.kind,
            case_exact: leaf.case_exact,
            unique,
            ready: false,
            multi: a.multi_valued,
        };
        if unique {
            fill_unique(conn, &attr)?;
        } else {
            building = true;
        }
    }
    Ok(building)
}

/// Checks that no two stored resources share a value of the unique attribute `a` and writes
/// its side rows, marking it ready; refuses (changing nothing: the caller's transaction is
/// undone) naming a few shared values and their resources.
fn fill_unique(conn: &Connection, a: &Attr) -> Result<()> {
    let (docs, ..) = tables(a.resource);
    let mut stmt = conn.prepare(&format!("SELECT seq, id, data FROM {docs} ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut holders: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let mut all: Vec<(i64, Vec<Row>)> = Vec::new();
    while let Some(r) = rows.next()? {
        let doc = doc_from_text(&r.get::<_, String>(2)?)?;
        let values = rows_of(&doc, a);
        if values.is_empty() {
            continue;
        }
        let id: String = r.get(1)?;
        for v in &values {
            if let Some(k) = &v.ukey {
                holders
                    .entry(k.clone())
                    .or_insert_with(|| (v.shown.clone(), Vec::new()))
                    .1
                    .push(id.clone());
            }
        }
        all.push((r.get(0)?, values));
    }
    let shared: Vec<String> = holders
        .values()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(shown, ids)| {
            let more = ids.len().saturating_sub(LISTED_IDS);
            let mut names = ids[..ids.len().min(LISTED_IDS)].join(", ");
            if more > 0 {
                names.push_str(&format!(" and {more} more"));
            }
            format!("\"{shown}\" ({names})")
        })
        .collect();
    if !shared.is_empty() {
        let more = shared.len().saturating_sub(LISTED_VALUES);
        let mut text = shared[..shared.len().min(LISTED_VALUES)].join(", ");
        if more > 0 {
            text.push_str(&format!(", and {more} more values"));
        }
        return Err(Error::Uniqueness(format!(
            "{} cannot be unique: stored {}s already share values: {text}; change them \
             first (nothing was declared)",
            a.label(),
            a.resource.name()
        )));
    }
    for (seq, values) in &all {
        insert_rows(conn, a.resource, *seq, a, values)?;
    }
    conn.execute(
        "UPDATE scim_indexed_attrs SET state = 'ready' WHERE id = ?1",
        [a.id],
    )?;
    Ok(())
}

/// Fills the next chunk of the oldest `building` index: up to `chunk` resources after the
/// ones already done; marks it ready (bumping the schema generation, so every server's
/// filters start reading it) when none are left. Returns whether anything was building.
pub fn backfill_step(conn: &Connection, chunk: i64) -> Result<bool> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, backfilled FROM scim_indexed_attrs WHERE state = 'building'
         ORDER BY id LIMIT 1"
    ))?;
    let mut found = stmt.query_map([], |r| Ok((read_attr(r)?, r.get::<_, i64>(10)?)))?;
    let Some(next) = found.next() else {
        return Ok(false);
    };
    let (a, after) = next?;
    drop(found);
    let (docs, side, seq_col) = tables(a.resource);
    let mut read = conn.prepare(&format!(
        "SELECT seq, data FROM {docs} WHERE seq > ?1 ORDER BY seq LIMIT ?2"
    ))?;
    let batch = read
        .query_map(params![after, chunk], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (seq, data) in &batch {
        // A write since the index was created already wrote this resource's rows: rewrite
        // them the same way, so each resource's rows are written exactly once in the end.
        conn.execute(
            &format!("DELETE FROM {side} WHERE {seq_col} = ?1 AND attr_id = ?2"),
            params![seq, a.id],
        )?;
        insert_rows(
            conn,
            a.resource,
            *seq,
            &a,
            &rows_of(&doc_from_text(data)?, &a),
        )?;
    }
    match batch.last() {
        Some((last, _)) if batch.len() as i64 == chunk => {
            conn.execute(
                "UPDATE scim_indexed_attrs SET backfilled = ?2 WHERE id = ?1",
                params![a.id, last],
            )?;
        }
        _ => {
            conn.execute(
                "UPDATE scim_indexed_attrs SET state = 'ready' WHERE id = ?1",
                [a.id],
            )?;
            super::schemas::bump(conn)?;
        }
    }
    Ok(true)
}

/// For `scimd check`: one line per index whose side rows are not what this scimd derives
/// from the documents (ready indexes, and the part of a building one already filled).
pub fn stale(conn: &Connection) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let attrs = attrs(conn, kind)?;
        if attrs.is_empty() {
            continue;
        }
        let (docs, side, seq_col) = tables(kind);
        let mut read = conn.prepare(&format!(
            "SELECT text, num, ukey FROM {side} WHERE {seq_col} = ?1 AND attr_id = ?2"
        ))?;
        let mut limit = conn
            .prepare("SELECT state = 'ready', backfilled FROM scim_indexed_attrs WHERE id = ?1")?;
        for a in &attrs {
            let (ready, done): (bool, i64) =
                limit.query_row([a.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut stmt =
                conn.prepare(&format!("SELECT seq, id, data FROM {docs} ORDER BY seq"))?;
            let mut rows = stmt.query([])?;
            let mut bad: Vec<String> = Vec::new();
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                if !ready && seq > done {
                    break;
                }
                let key = |x: &(Option<String>, Option<f64>, Option<String>)| format!("{:?}", x);
                let mut derived: Vec<String> = rows_of(&doc_from_text(&r.get::<_, String>(2)?)?, a)
                    .into_iter()
                    .map(|v| key(&(v.text, v.num, v.ukey)))
                    .collect();
                let mut stored: Vec<String> = read
                    .query_map(params![seq, a.id], |x| {
                        Ok((x.get(0)?, x.get(1)?, x.get(2)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?
                    .iter()
                    .map(key)
                    .collect();
                derived.sort();
                stored.sort();
                if derived != stored {
                    bad.push(r.get(1)?);
                }
            }
            if !bad.is_empty() {
                let more = bad.len().saturating_sub(LISTED_VALUES);
                let mut ids = bad[..bad.len().min(LISTED_VALUES)].join(", ");
                if more > 0 {
                    ids.push_str(&format!(", and {more} more"));
                }
                lines.push(format!(
                    "index of {}: the side rows of {} {}s are not what this scimd derives \
                     from their documents (ids {ids}); remove the declaration and declare it again to rebuild it",
                    a.label(),
                    bad.len(),
                    kind.name()
                ));
            }
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::declare;
    use serde_json::json;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::configure(&conn).unwrap();
        super::super::migrate::run(&mut conn).unwrap();
        conn
    }

    fn acme() -> Declared {
        let doc = json!({"id": "urn:acme:2.0:User", "attributes": [
            {"name": "badge", "uniqueness": "server"},
            {"name": "cost"},
            {"name": "uid", "type": "integer"},
            {"name": "keys", "type": "complex", "multiValued": true,
             "subAttributes": [{"name": "value", "caseExact": true}]}
        ]});
        declare::parse(&doc, ResourceKind::User, false).unwrap()
    }

    fn add_user(conn: &Connection, n: usize, acme: Value) {
        let doc = json!({"userName": format!("u{n}"), "urn:acme:2.0:User": acme});
        let Value::Object(doc) = doc else {
            unreachable!()
        };
        super::super::users::insert(conn, &format!("id{n}"), doc, "t").unwrap();
    }

    fn count(conn: &Connection, a: &str) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM user_ext_values v JOIN scim_indexed_attrs a ON a.id = v.attr_id
             WHERE a.attr || ifnull('.' || a.sub, '') = ?1",
            [a],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn paths_name_simple_attributes_or_sub_attributes() {
        let d = acme();
        assert!(indexable(&d.schema, "COST"));
        assert!(indexable(&d.schema, "keys.value"));
        for bad in ["keys", "cost.x", "nope", "keys.nope"] {
            assert!(!indexable(&d.schema, bad), "{bad}");
        }
        let conn = db();
        let e = super::super::schemas::put(&conn, &d, &["keys".into()], "t").unwrap_err();
        assert!(e.to_string().contains("sub-attributes"), "{e}");
    }

    #[test]
    fn values_are_folded_typed_and_one_row_each() {
        let a = |kind, case_exact, unique, sub: Option<&str>, attr: &str| Attr {
            id: 1,
            resource: ResourceKind::User,
            urn: "urn:acme:2.0:User".into(),
            attr: attr.into(),
            sub: sub.map(String::from),
            kind,
            case_exact,
            unique,
            ready: true,
            multi: attr == "keys",
        };
        let doc = json!({"URN:ACME:2.0:USER": {"Badge": " Straße ", "uid": 7, "n": "7",
            "keys": [{"value": "K"}, {"value": "k"}, {"VALUE": "K"}, {"type": "x"}]}});
        let Value::Object(doc) = doc else {
            unreachable!()
        };
        let badge = rows_of(&doc, &a(Kind::String, false, true, None, "badge"));
        assert_eq!(badge.len(), 1);
        assert_eq!(badge[0].text.as_deref(), Some(" strasse "));
        assert_eq!(badge[0].ukey.as_deref(), Some("strasse"));
        let uid = rows_of(&doc, &a(Kind::Integer, false, false, None, "uid"));
        assert_eq!((uid[0].num, uid[0].ukey.as_deref()), (Some(7.0), None));
        // A value not of the declared type (stored before the declaration) is not indexed.
        assert!(rows_of(&doc, &a(Kind::Integer, false, false, None, "n")).is_empty());
        let keys = rows_of(&doc, &a(Kind::String, true, false, Some("value"), "keys"));
        let texts: Vec<_> = keys.iter().map(|r| r.text.as_deref().unwrap()).collect();
        assert_eq!(texts, ["K", "k"]);
    }

    /// Review #3: a single-valued attribute indexes a scalar only; a list or an object stored
    /// under it (before the declaration) gives no rows, so neither a filter nor uniqueness
    /// sees its items. A multi-valued one indexes each item.
    #[test]
    fn a_single_valued_attribute_indexes_only_a_value_of_its_shape() {
        let a = |attr: &str, sub: Option<&str>, multi| Attr {
            id: 1,
            resource: ResourceKind::User,
            urn: "urn:acme:2.0:User".into(),
            attr: attr.into(),
            sub: sub.map(String::from),
            kind: Kind::String,
            case_exact: true,
            unique: true,
            ready: true,
            multi,
        };
        let doc = json!({"urn:acme:2.0:User": {"badge": ["B1", "B2"], "cost": {"x": "C"},
            "one": "S", "key": [{"value": "K1"}, {"value": "K2"}], "obj": {"value": "V"}}});
        let Value::Object(doc) = doc else {
            unreachable!()
        };
        let texts = |a: &Attr| -> Vec<String> {
            rows_of(&doc, a)
                .into_iter()
                .filter_map(|r| r.text)
                .collect()
        };
        assert!(texts(&a("badge", None, false)).is_empty());
        assert_eq!(texts(&a("badge", None, true)), ["B1", "B2"]);
        assert!(texts(&a("cost", None, false)).is_empty());
        assert_eq!(texts(&a("one", None, false)), ["S"]);
        // A sub-attribute: of the one object of a single-valued complex, of each object of a
        // multi-valued one.
        assert!(texts(&a("key", Some("value"), false)).is_empty());
        assert_eq!(texts(&a("key", Some("value"), true)), ["K1", "K2"]);
        assert_eq!(texts(&a("obj", Some("value"), false)), ["V"]);
    }

    /// Migration 8 marks the multi-valued indexes from their declarations and rebuilds the
    /// single-valued ones, whose rows may hold the items of a list.
    #[test]
    fn migration_8_rebuilds_single_valued_indexes_from_the_documents() {
        let conn = db();
        let d = acme();
        super::super::schemas::put(&conn, &d, &["keys.value".into()], "t").unwrap();
        while backfill_step(&conn, BACKFILL_CHUNK).unwrap() {}
        // Rows as an earlier scimd wrote them: the items of a list under single-valued badge.
        add_user(&conn, 1, json!({"keys": [{"value": "k1"}]}));
        let seq: i64 = conn
            .query_row("SELECT seq FROM users WHERE id = 'id1'", [], |r| r.get(0))
            .unwrap();
        conn.execute(
            "UPDATE users SET data = json_set(data, '$.\"urn:acme:2.0:User\".badge', \
             json('[\"B1\",\"B2\"]')) WHERE seq = ?1",
            [seq],
        )
        .unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO user_ext_values (user_seq, attr_id, text, ukey)
             SELECT {seq}, id, v, v FROM scim_indexed_attrs, (SELECT 'b1' v UNION SELECT 'b2')
             WHERE attr = 'badge';
             ALTER TABLE scim_indexed_attrs DROP COLUMN multi;
             PRAGMA user_version = 7;"
        ))
        .unwrap();
        assert_eq!(count(&conn, "badge"), 2);
        let mut conn = conn;
        super::super::migrate::upgrade_to(&mut conn, 8).unwrap();
        let multi: Vec<(String, bool, String)> = conn
            .prepare("SELECT attr, multi, state FROM scim_indexed_attrs ORDER BY attr")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            multi,
            [
                ("badge".into(), false, "building".into()),
                ("keys".into(), true, "ready".into())
            ]
        );
        while backfill_step(&conn, BACKFILL_CHUNK).unwrap() {}
        assert_eq!(count(&conn, "badge"), 0);
        assert_eq!(count(&conn, "keys.value"), 1);
        assert!(stale(&conn).unwrap().is_empty());
    }

    #[test]
    fn a_backfill_goes_chunk_by_chunk_then_is_ready_and_check_finds_stale_rows() {
        let conn = db();
        for n in 0..5 {
            add_user(
                &conn,
                n,
                json!({"badge": format!("b{n}"), "cost": format!("c{n}")}),
            );
        }
        let d = acme();
        let (_, building) = super::super::schemas::put(&conn, &d, &["cost".into()], "t").unwrap();
        assert!(building);
        // The unique attribute is filled at once; the other one waits for its backfill.
        assert_eq!((count(&conn, "badge"), count(&conn, "cost")), (5, 0));
        assert_eq!(ready(&conn).unwrap().len(), 1);
        let mut steps = 0;
        while backfill_step(&conn, 2).unwrap() {
            steps += 1;
        }
        assert_eq!(steps, 3);
        assert_eq!(count(&conn, "cost"), 5);
        assert_eq!(ready(&conn).unwrap().len(), 2);
        assert!(stale(&conn).unwrap().is_empty());
        conn.execute(
            "UPDATE user_ext_values SET text = 'zz' WHERE text = 'c3'",
            [],
        )
        .unwrap();
        let lines = stale(&conn).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("cost") && lines[0].contains("id3"),
            "{lines:?}"
        );
        // Changing the declaration keeps unchanged indexes; dropping `cost` drops its rows.
        super::super::schemas::put(&conn, &d, &[], "t").unwrap();
        assert_eq!((count(&conn, "badge"), count(&conn, "cost")), (5, 0));
        super::super::schemas::remove(&conn, "urn:acme:2.0:user").unwrap();
        assert_eq!(count(&conn, "badge"), 0);
    }
}
