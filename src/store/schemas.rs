//! SQL for declared extension schemas (`scim_schemas`, migration 5), the generation counter a
//! running server polls to notice changes made by another process, and the scan for extension
//! data stored under URNs that nothing declares.
//!
//! A declaration is stored as its normalised RFC 7643 §7 document and parsed again on load,
//! so the rules of `scim::declare` are the only ones. A row that no longer parses (edited by
//! hand, or written by a newer scimd) stops the load with an error naming it: serving without
//! it would silently drop its typing and uniqueness rules. `scimd schema remove URN` still
//! works then (it does not parse), and so does `scimd schema add` replacing it.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::scim::declare;
use crate::scim::registry::Declared;
use crate::scim::resource::ResourceKind;
use crate::scim::schema::{ENTERPRISE_USER_URN, GROUP_URN, USER_URN};

/// A declaration as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub urn: String,
    pub resource_type: String,
    pub required: bool,
    pub definition: String,
    pub created: String,
    pub updated: String,
    /// The attribute paths an administrator marked as indexed (`ext_index`).
    pub indexed: Vec<String>,
}

impl Row {
    /// The declaration this row holds.
    pub fn parse(&self) -> Result<Declared> {
        let resource = match self.resource_type.as_str() {
            "Group" => ResourceKind::Group,
            _ => ResourceKind::User,
        };
        declare::parse_text(&self.definition, resource, self.required).map_err(|e| {
            Error::Internal(format!(
                "the declared schema {} in the database does not parse ({}): fix it with \
                 `scimd schema add FILE.json` or drop it with `scimd schema remove {}`",
                self.urn,
                e.detail(),
                self.urn
            ))
        })
    }
}

fn read_row(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    let indexed: String = r.get(6)?;
    Ok(Row {
        urn: r.get(0)?,
        resource_type: r.get(1)?,
        required: r.get(2)?,
        definition: r.get(3)?,
        created: r.get(4)?,
        updated: r.get(5)?,
        // Written only by `put`, as a JSON array of strings.
        indexed: serde_json::from_str(&indexed).unwrap_or_default(),
    })
}

/// Every declaration, oldest first.
pub fn rows(conn: &Connection) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(
        "SELECT urn, resource_type, required, definition, created, updated, indexed
         FROM scim_schemas ORDER BY created, urn",
    )?;
    let rows = stmt
        .query_map([], read_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Every declaration, parsed; an error names the first row that does not parse.
pub fn list(conn: &Connection) -> Result<Vec<Declared>> {
    rows(conn)?.iter().map(Row::parse).collect()
}

/// The generation counter: bumped by every change.
pub fn generation(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT generation FROM scim_schema_generation WHERE only = 1",
        [],
        |r| r.get(0),
    )?)
}

pub(super) fn bump(conn: &Connection) -> Result<()> {
    conn.execute(
        "UPDATE scim_schema_generation SET generation = generation + 1 WHERE only = 1",
        [],
    )?;
    Ok(())
}

/// Most declared schemas: every request's registry snapshot holds them all.
pub const MAX_DECLARED: usize = 100;

/// Declares `d`, or changes the declaration with the same id (in any letter case; the first
/// spelling is kept, so stored blocks stay under the key they are filtered by). Refuses an id
/// that overlaps another declaration's (`declare::overlaps`), and a new declaration beyond
/// `MAX_DECLARED`. `indexed`: the attribute paths to index besides the unique ones
/// (`ext_index::sync`, which may refuse the declaration). Returns whether a declaration was
/// replaced and whether an index waits for `ext_index::backfill_step`.
pub fn put(conn: &Connection, d: &Declared, indexed: &[String], now: &str) -> Result<(bool, bool)> {
    let id = &d.schema.id;
    let fold = id.to_ascii_lowercase();
    let all = rows(conn)?;
    if all.len() >= MAX_DECLARED && !all.iter().any(|r| r.urn.to_ascii_lowercase() == fold) {
        return Err(Error::InvalidValue(format!(
            "at most {MAX_DECLARED} extension schemas can be declared; remove one first"
        )));
    }
    for other in &all {
        if other.urn.to_ascii_lowercase() != fold && declare::overlaps(&other.urn, id) {
            return Err(Error::InvalidValue(format!(
                "schema id \"{id}\" overlaps the declared schema \"{}\": one would claim the \
                 other's attributes",
                other.urn
            )));
        }
    }
    let kept = stored_spelling(&all, &fold);
    let id = kept.as_ref().unwrap_or(id);
    let mut schema = d.schema.clone();
    schema.id.clone_from(id);
    let definition = declare::document(&schema).to_string();
    let resource = d.resource.name();
    let listed = serde_json::to_string(indexed).map_err(Error::internal)?;
    let changed = conn.execute(
        "UPDATE scim_schemas SET urn = ?1, resource_type = ?2, required = ?3, definition = ?4,
                updated = ?5, indexed = ?7
         WHERE urn_fold = ?6",
        params![id, resource, d.required, definition, now, fold, listed],
    )?;
    if changed == 0 {
        conn.execute(
            "INSERT INTO scim_schemas (urn, urn_fold, resource_type, required, definition,
                                       created, updated, indexed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
            params![id, fold, resource, d.required, definition, now, listed],
        )?;
    }
    // Indexed under the kept spelling: the key the stored blocks are under.
    let kept = Declared {
        schema,
        ..d.clone()
    };
    let building = super::ext_index::sync(conn, &kept, indexed)?;
    bump(conn)?;
    Ok((changed > 0, building))
}

/// The stored spelling of the declared id that folds to `fold`, if any.
fn stored_spelling(all: &[Row], fold: &str) -> Option<String> {
    all.iter()
        .find(|r| r.urn.to_ascii_lowercase() == fold)
        .map(|r| r.urn.clone())
}

/// Removes the declaration whose id is `urn` (any letter case); returns the removed row.
/// Stored values under it stay in the documents, undeclared.
pub fn remove(conn: &Connection, urn: &str) -> Result<Option<Row>> {
    let fold = urn.to_ascii_lowercase();
    let row = rows(conn)?
        .into_iter()
        .find(|r| r.urn.to_ascii_lowercase() == fold);
    if row.is_some() {
        conn.execute("DELETE FROM scim_schemas WHERE urn_fold = ?1", [&fold])?;
        // Its indexes go with it (their side rows cascade); documents stay as they are.
        conn.execute(
            "DELETE FROM scim_indexed_attrs WHERE urn_fold = ?1",
            [&fold],
        )?;
        bump(conn)?;
    }
    Ok(row)
}

/// The declaration whose id is `urn` (any letter case), as stored.
pub fn get(conn: &Connection, urn: &str) -> Result<Option<Row>> {
    Ok(conn
        .query_row(
            "SELECT urn, resource_type, required, definition, created, updated, indexed
             FROM scim_schemas WHERE urn_fold = ?1",
            [urn.to_ascii_lowercase()],
            read_row,
        )
        .optional()?)
}

/// Most recently created resources a scan for undeclared extensions looks at.
pub const SEEN_SCAN_ROWS: i64 = 20_000;
/// Most undeclared URNs, attributes per URN and sample values per attribute reported.
pub const SEEN_URNS: usize = 20;
pub const SEEN_ATTRIBUTES: usize = 50;
pub const SEEN_SAMPLES: usize = 3;
/// Longest sample value reported, in bytes of JSON; longer ones are left out.
const SEEN_SAMPLE_BYTES: usize = 200;

/// An extension found in stored documents that no declaration (and no built-in) covers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Seen {
    pub urn: String,
    /// Resources (among those scanned) that hold it.
    pub resources: u64,
    pub attributes: Vec<SeenAttribute>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeenAttribute {
    pub name: String,
    pub resources: u64,
    pub samples: Vec<Value>,
}

/// The documents' table of `kind`; never from input.
fn table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    }
}

/// The object-valued, URI-keyed members of the last `SEEN_SCAN_ROWS` documents of `kind`,
/// keyed by folded URN, for `f`.
fn each_block(
    conn: &Connection,
    kind: ResourceKind,
    mut f: impl FnMut(&str, Value) -> Result<()>,
) -> Result<()> {
    let sql = format!(
        "SELECT e.key, e.value
         FROM (SELECT data FROM {} ORDER BY seq DESC LIMIT ?1) AS d, json_each(d.data) AS e
         WHERE e.type = 'object'
           AND (e.key LIKE 'urn:%' OR e.key LIKE 'http://%' OR e.key LIKE 'https://%')",
        table(kind)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([SEEN_SCAN_ROWS])?;
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let text: String = r.get(1)?;
        let value = serde_json::from_str(&text).map_err(Error::internal)?;
        f(&key, value)?;
    }
    Ok(())
}

/// Whether `urn` is built in or declared (`declared` holds folded ids).
fn known(urn: &str, declared: &[String]) -> bool {
    [USER_URN, ENTERPRISE_USER_URN, GROUP_URN]
        .iter()
        .any(|b| b.eq_ignore_ascii_case(urn))
        || declared.iter().any(|d| *d == urn.to_ascii_lowercase())
}

/// Extensions under URNs nothing declares, in the last `SEEN_SCAN_ROWS` documents of `kind`,
/// most common first; bounded by `SEEN_URNS`, `SEEN_ATTRIBUTES` and `SEEN_SAMPLES`.
pub fn seen(conn: &Connection, kind: ResourceKind) -> Result<Vec<Seen>> {
    let declared: Vec<String> = rows(conn)?
        .into_iter()
        .map(|r| r.urn.to_ascii_lowercase())
        .collect();
    let mut found: Vec<Seen> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    each_block(conn, kind, |urn, block| {
        if known(urn, &declared) {
            return Ok(());
        }
        let fold = urn.to_ascii_lowercase();
        let i = match index.get(&fold) {
            Some(i) => *i,
            None if found.len() < SEEN_URNS => {
                index.insert(fold, found.len());
                found.push(Seen {
                    urn: urn.to_string(),
                    resources: 0,
                    attributes: Vec::new(),
                });
                found.len() - 1
            }
            None => return Ok(()),
        };
        let seen = &mut found[i];
        seen.resources += 1;
        let Value::Object(obj) = block else {
            return Ok(());
        };
        for (name, value) in obj {
            let at = match seen
                .attributes
                .iter()
                .position(|a| a.name.eq_ignore_ascii_case(&name))
            {
                Some(at) => at,
                None if seen.attributes.len() < SEEN_ATTRIBUTES => {
                    seen.attributes.push(SeenAttribute {
                        name,
                        resources: 0,
                        samples: Vec::new(),
                    });
                    seen.attributes.len() - 1
                }
                None => continue,
            };
            let a = &mut seen.attributes[at];
            a.resources += 1;
            if a.samples.len() < SEEN_SAMPLES
                && !a.samples.contains(&value)
                && value.to_string().len() <= SEEN_SAMPLE_BYTES
            {
                a.samples.push(value);
            }
        }
        Ok(())
    })?;
    found.sort_by(|a, b| b.resources.cmp(&a.resources).then(a.urn.cmp(&b.urn)));
    Ok(found)
}

/// Up to `limit` objects stored under `urn` (any letter case) in the last `SEEN_SCAN_ROWS`
/// documents of `kind`: what a draft declaration is inferred from.
pub fn blocks(
    conn: &Connection,
    kind: ResourceKind,
    urn: &str,
    limit: usize,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    each_block(conn, kind, |key, block| {
        if out.len() < limit && key.eq_ignore_ascii_case(urn) {
            out.push(block);
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate::run(&mut conn).unwrap();
        conn
    }

    fn declared(id: &str, attrs: Value) -> Declared {
        declare::parse(
            &json!({"id": id, "attributes": attrs}),
            ResourceKind::User,
            false,
        )
        .unwrap()
    }

    fn user(conn: &Connection, id: &str, data: Value) {
        conn.execute(
            "INSERT INTO users (id, user_name, user_name_fold, active, version, created,
                                last_modified, data)
             VALUES (?1, ?1, ?1, 1, 1, 't', 't', ?2)",
            params![id, data.to_string()],
        )
        .unwrap();
    }

    #[test]
    fn put_lists_changes_and_removes_bumping_the_generation() {
        let conn = db();
        assert_eq!(generation(&conn).unwrap(), 0);
        let a = declared("urn:acme:2.0:User", json!([{"name": "badge"}]));
        assert!(!put(&conn, &a, &[], "t1").unwrap().0);
        assert_eq!(list(&conn).unwrap(), [a]);
        assert_eq!(generation(&conn).unwrap(), 1);
        // A change under another spelling replaces it and keeps its creation time, and the
        // first spelling (stored blocks stay under the key filters read).
        let mut b = declared(
            "URN:ACME:2.0:User",
            json!([{"name": "badge", "type": "integer"}]),
        );
        b.resource = ResourceKind::Group;
        b.required = true;
        assert!(put(&conn, &b, &[], "t2").unwrap().0);
        b.schema.id = "urn:acme:2.0:User".into();
        assert_eq!(list(&conn).unwrap(), std::slice::from_ref(&b));
        let row = get(&conn, "urn:acme:2.0:user").unwrap().unwrap();
        assert_eq!((row.created.as_str(), row.updated.as_str()), ("t1", "t2"));
        assert_eq!(row.resource_type, "Group");
        assert_eq!(generation(&conn).unwrap(), 2);
        assert_eq!(
            remove(&conn, "urn:acme:2.0:USER").unwrap().unwrap().urn,
            b.schema.id
        );
        assert!(list(&conn).unwrap().is_empty());
        assert_eq!(generation(&conn).unwrap(), 3);
        assert!(remove(&conn, "urn:acme:2.0:User").unwrap().is_none());
        assert_eq!(generation(&conn).unwrap(), 3);
    }

    /// A change written by another process (two stores on one file) is noticed by the
    /// generation check, once.
    #[test]
    fn a_change_from_another_process_is_noticed_once() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("scimd.db");
        let server = crate::store::Store::open(&path).unwrap();
        assert!(server.declared().unwrap().is_empty());
        server.refresh_registry().unwrap();
        assert!(!server.refresh_registry().unwrap());
        let cli = crate::store::Store::open_existing(&path).unwrap();
        let d = declared("urn:acme:2.0:User", json!([{"name": "badge"}]));
        cli.write_sync(|tx| put(tx, &d, &[], "t")).unwrap();
        assert!(server.refresh_registry().unwrap());
        assert!(server.registry().find("urn:acme:2.0:User").is_some());
        assert!(!server.refresh_registry().unwrap());
        cli.write_sync(|tx| remove(tx, "urn:acme:2.0:User"))
            .unwrap();
        assert!(server.refresh_registry().unwrap());
        assert!(server.registry().find("urn:acme:2.0:User").is_none());
    }

    #[test]
    fn overlapping_ids_are_refused() {
        let conn = db();
        put(
            &conn,
            &declared("urn:acme:User", json!([{"name": "a"}])),
            &[],
            "t",
        )
        .unwrap();
        let e = put(
            &conn,
            &declared("urn:acme:User:a", json!([{"name": "b"}])),
            &[],
            "t",
        );
        assert!(matches!(e, Err(Error::InvalidValue(m)) if m.contains("overlaps")));
        put(
            &conn,
            &declared("urn:acme:UserExtra", json!([{"name": "b"}])),
            &[],
            "t",
        )
        .unwrap();
        assert_eq!(list(&conn).unwrap().len(), 2);
    }

    #[test]
    fn declarations_are_bounded_in_number() {
        let conn = db();
        for i in 0..MAX_DECLARED {
            let d = declared(&format!("urn:acme:n{i}"), json!([{"name": "a"}]));
            put(&conn, &d, &[], "t").unwrap();
        }
        let one_more = declared("urn:acme:more", json!([{"name": "a"}]));
        let e = put(&conn, &one_more, &[], "t");
        assert!(matches!(e, Err(Error::InvalidValue(m)) if m.contains("at most 100")));
        // Changing one still works at the bound.
        put(
            &conn,
            &declared("URN:ACME:N0", json!([{"name": "b"}])),
            &[],
            "t",
        )
        .unwrap();
        assert_eq!(list(&conn).unwrap().len(), MAX_DECLARED);
    }

    #[test]
    fn an_unparsable_row_names_itself_and_can_still_be_removed() {
        let conn = db();
        conn.execute(
            "INSERT INTO scim_schemas (urn, urn_fold, resource_type, required, definition, created, updated)
             VALUES ('urn:x:y', 'urn:x:y', 'User', 0, '{\"id\":1}', 't', 't')",
            [],
        )
        .unwrap();
        let e = list(&conn).unwrap_err().to_string();
        assert!(
            e.contains("urn:x:y") && e.contains("scimd schema remove urn:x:y"),
            "{e}"
        );
        assert!(remove(&conn, "urn:x:y").unwrap().is_some());
        assert!(list(&conn).unwrap().is_empty());
    }

    #[test]
    fn removal_leaves_stored_documents_alone() {
        let conn = db();
        let doc = json!({"userName": "ana", "urn:acme:2.0:User": {"badge": "42"}});
        user(&conn, "u1", doc.clone());
        put(
            &conn,
            &declared("urn:acme:2.0:User", json!([{"name": "badge"}])),
            &[],
            "t",
        )
        .unwrap();
        remove(&conn, "urn:acme:2.0:User").unwrap();
        let data: String = conn
            .query_row("SELECT data FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(&data).unwrap(), doc);
    }

    #[test]
    fn seen_reports_undeclared_extensions_with_samples() {
        let conn = db();
        user(
            &conn,
            "u1",
            json!({"userName": "a",
            ENTERPRISE_USER_URN: {"department": "x"},
            "urn:acme:2.0:User": {"badge": "1", "level": 3},
            "urn:declared:x": {"a": 1},
            "urn:not-an-object": "x"}),
        );
        user(
            &conn,
            "u2",
            json!({"userName": "b",
            "urn:ACME:2.0:User": {"Badge": "2", "keys": [{"value": "k"}]},
            "https://ext.example/s": {"z": true}}),
        );
        user(
            &conn,
            "u3",
            json!({"userName": "c", "urn:acme:2.0:User": {"badge": "1"}}),
        );
        put(
            &conn,
            &declared("URN:DECLARED:X", json!([{"name": "a"}])),
            &[],
            "t",
        )
        .unwrap();
        let found = seen(&conn, ResourceKind::User).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].resources, 3);
        let badge = &found[0]
            .attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case("badge"))
            .unwrap();
        assert_eq!(badge.resources, 3);
        assert_eq!(badge.samples.len(), 2, "{badge:?}");
        assert_eq!(found[1].urn, "https://ext.example/s");
        assert!(seen(&conn, ResourceKind::Group).unwrap().is_empty());
        let b = blocks(&conn, ResourceKind::User, "urn:acme:2.0:user", 2).unwrap();
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn seen_is_bounded() {
        let conn = db();
        let mut doc = serde_json::Map::new();
        for i in 0..SEEN_URNS + 5 {
            let mut block = serde_json::Map::new();
            for j in 0..SEEN_ATTRIBUTES + 5 {
                block.insert(format!("a{j}"), json!(j));
            }
            doc.insert(format!("urn:x:{i}"), Value::Object(block));
        }
        user(&conn, "u1", Value::Object(doc.clone()));
        for k in 0..SEEN_SAMPLES + 2 {
            doc.insert("urn:x:0".into(), json!({"a0": k}));
            user(&conn, &format!("v{k}"), Value::Object(doc.clone()));
        }
        let found = seen(&conn, ResourceKind::User).unwrap();
        assert_eq!(found.len(), SEEN_URNS);
        assert!(found.iter().all(|s| s.attributes.len() <= SEEN_ATTRIBUTES));
        assert!(
            found
                .iter()
                .flat_map(|s| &s.attributes)
                .all(|a| a.samples.len() <= SEEN_SAMPLES)
        );
    }
}
