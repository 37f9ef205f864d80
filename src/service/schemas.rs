//! Declared extension schemas: declare, change, remove (each audited in its own write), list,
//! the undeclared extensions seen in stored data, a draft declaration for one of them, and
//! the definitions of the extensions one user or group carries (for the console's pages).
//!
//! A declaration only describes data. Changing or removing one never rewrites a user or a
//! group: values stay in their documents and, once undeclared, are kept and returned as sent.
//! Every change bumps the schema generation in the same transaction; a running server picks
//! changes up through `Store::declared_if_changed` (its periodic watch; the console's own
//! changes right after they commit), so the CLI may change schemas beside `scimd serve`.

use serde_json::{Map, Value, json};

use super::audit::Actor;
use crate::error::{Error, Result};
use crate::scim::declare;
use crate::scim::registry::{Declared, Registry};
use crate::scim::resource::ResourceKind;
use crate::scim::schema::find_schema;
use crate::scim::time;
use crate::scim::validate::is_urn_key;
use crate::store::Store;
use crate::store::ext_index;
use crate::store::schemas::{self, Seen};

/// A declaration as listed: the stored row, its document, and why it does not parse (if it
/// does not: then the server refuses to load declarations until it is fixed or removed).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub urn: String,
    pub resource_type: String,
    pub required: bool,
    pub created: String,
    pub updated: String,
    pub definition: Value,
    /// The attribute paths an administrator marked as indexed.
    pub indexed: Vec<String>,
    /// Every index the declaration has (marked or unique), with its state.
    pub indexes: Vec<IndexState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One index of a declaration, as listed.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexState {
    pub path: String,
    pub unique: bool,
    /// `building` while the backfill runs, then `ready`.
    pub state: &'static str,
}

/// The resource type a schema extends when none is given: Group when its id ends in
/// `:Group`, else User.
pub fn default_resource(id: &str) -> ResourceKind {
    let lower = id.to_ascii_lowercase();
    if lower.ends_with(":group") {
        ResourceKind::Group
    } else {
        ResourceKind::User
    }
}

/// The resource type called `name` (`User` or `Group`, any letter case).
pub fn resource_named(name: &str) -> Result<ResourceKind> {
    if name.eq_ignore_ascii_case("User") {
        Ok(ResourceKind::User)
    } else if name.eq_ignore_ascii_case("Group") {
        Ok(ResourceKind::Group)
    } else {
        Err(Error::InvalidValue(format!(
            "resource type \"{name}\": extensions are declared for User or Group"
        )))
    }
}

/// Declares the schema in `doc` for `resource` (by default as `default_resource` says), or
/// changes the declaration with its id. Returns the declaration and whether it replaced one.
/// A declaration it replaces keeps its indexed attributes (those still declared): see
/// `declare_indexed`.
pub fn declare(
    store: &Store,
    doc: &Value,
    resource: Option<ResourceKind>,
    required: bool,
    actor: &Actor,
) -> Result<(Declared, bool)> {
    declare_indexed(store, doc, resource, required, None, actor)
}

/// `declare`, with the attribute paths to index for frequent lookups (`badgeNumber`,
/// `sshKeys.value`) besides the ones with `uniqueness` server or global, which are always
/// indexed; `None` keeps those of the declaration it replaces (if any). Refused (nothing
/// declared) when a path names no simple attribute or sub-attribute, or when a unique
/// attribute's stored values are not unique. A new non-unique index is backfilled before
/// this returns, in chunks that SCIM writes interleave with; filters use it once complete.
pub fn declare_indexed(
    store: &Store,
    doc: &Value,
    resource: Option<ResourceKind>,
    required: bool,
    indexed: Option<&[String]>,
    actor: &Actor,
) -> Result<(Declared, bool)> {
    let id = doc.get("id").and_then(Value::as_str).unwrap_or("");
    let resource = resource.unwrap_or_else(|| default_resource(id));
    let d = declare::parse(doc, resource, required)?;
    let mut paths: Vec<String> = Vec::new();
    for p in indexed.unwrap_or_default() {
        let p = p.trim();
        if !p.is_empty() && !paths.iter().any(|q| q.eq_ignore_ascii_case(p)) {
            paths.push(p.to_string());
        }
    }
    if paths.len() > MAX_INDEXED {
        return Err(Error::InvalidValue(format!(
            "at most {MAX_INDEXED} attributes of a schema can be indexed"
        )));
    }
    let (replaced, building) = store.write_sync(|tx| {
        let paths = match indexed {
            Some(_) => paths.clone(),
            None => schemas::get(tx, &d.schema.id)?
                .map(|row| {
                    row.indexed
                        .into_iter()
                        .filter(|p| ext_index::indexable(&d.schema, p))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let (replaced, building) = schemas::put(tx, &d, &paths, &time::now())?;
        let action = if replaced {
            "schema.change"
        } else {
            "schema.declare"
        };
        let mut e = actor.entry(action, "success", if replaced { 200 } else { 201 });
        e.resource_type = Some("Schema");
        e.resource_name = Some(d.schema.id.clone());
        let names: Vec<&str> = d
            .schema
            .attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        e.detail = Some(json!({
            "resourceType": d.resource.name(),
            "required": d.required,
            "attributes": names,
            "indexed": paths,
        }));
        crate::store::audit::insert(tx, &e)?;
        Ok((replaced, building))
    })?;
    store.refresh_registry()?;
    if building {
        backfill(store)?;
    }
    Ok((d, replaced))
}

/// Most attributes of one declaration an administrator can mark as indexed.
pub const MAX_INDEXED: usize = 20;

/// Fills the indexes still `building` (a declaration just made, or one a stopped process
/// left unfinished), one chunk per write so SCIM writes interleave, then puts them in force
/// for this process's filters (other processes notice the generation bump).
pub fn backfill(store: &Store) -> Result<()> {
    let mut any = false;
    while store.write_sync(|tx| ext_index::backfill_step(tx, ext_index::BACKFILL_CHUNK))? {
        any = true;
    }
    if any {
        store.refresh_registry()?;
    }
    Ok(())
}

/// `declare` from the text of a document (a file, an upload).
pub fn declare_text(
    store: &Store,
    text: &str,
    resource: Option<ResourceKind>,
    required: bool,
    actor: &Actor,
) -> Result<(Declared, bool)> {
    declare_text_indexed(store, text, resource, required, None, actor)
}

/// `declare_indexed` from the text of a document.
pub fn declare_text_indexed(
    store: &Store,
    text: &str,
    resource: Option<ResourceKind>,
    required: bool,
    indexed: Option<&[String]>,
    actor: &Actor,
) -> Result<(Declared, bool)> {
    if text.len() > declare::MAX_DOCUMENT {
        return Err(Error::InvalidValue(format!(
            "the schema document is larger than {} bytes",
            declare::MAX_DOCUMENT
        )));
    }
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| Error::InvalidSyntax(format!("the schema document is not JSON: {e}")))?;
    declare_indexed(store, &doc, resource, required, indexed, actor)
}

/// Removes the declaration of `urn` (any letter case). Stored values under it are kept.
pub fn remove(store: &Store, urn: &str, actor: &Actor) -> Result<()> {
    let removed = store.write_sync(|tx| {
        let Some(row) = schemas::remove(tx, urn)? else {
            return Ok(false);
        };
        let mut e = actor.entry("schema.remove", "success", 204);
        e.resource_type = Some("Schema");
        e.resource_name = Some(row.urn);
        e.detail = Some(json!({
            "resourceType": row.resource_type,
            "storedValues": "kept, now undeclared",
        }));
        crate::store::audit::insert(tx, &e)?;
        Ok(true)
    })?;
    if removed {
        store.refresh_registry().map(|_| ())
    } else {
        Err(Error::NotFound(format!("no declared schema \"{urn}\"")))
    }
}

/// Every declaration, oldest first, each with its problem if it does not parse.
pub fn list(store: &Store) -> Result<Vec<Listed>> {
    let rows = store.read_sync(|conn| {
        schemas::rows(conn)?
            .into_iter()
            .map(|r| Ok((ext_index::attrs_of(conn, &r.urn)?, r)))
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(rows
        .into_iter()
        .map(|(attrs, r)| {
            let problem = r.parse().err().map(|e| e.to_string());
            Listed {
                indexed: r.indexed,
                indexes: attrs
                    .iter()
                    .map(|a| IndexState {
                        path: a.path(),
                        unique: a.unique,
                        state: if a.ready { "ready" } else { "building" },
                    })
                    .collect(),
                definition: serde_json::from_str(&r.definition).unwrap_or(Value::Null),
                urn: r.urn,
                resource_type: r.resource_type,
                required: r.required,
                created: r.created,
                updated: r.updated,
                problem,
            }
        })
        .collect())
}

/// Extensions found in stored documents of `kind` that nothing declares (bounded scan).
pub async fn seen(store: &Store, kind: ResourceKind) -> Result<Vec<Seen>> {
    store.seen_extensions(kind).await
}

/// A draft declaration of the undeclared extension `urn` of `kind`, inferred from its stored
/// values (`declare::draft`), for an administrator to edit before declaring it.
pub async fn draft(store: &Store, kind: ResourceKind, urn: String) -> Result<Value> {
    let u = urn.clone();
    let blocks = store
        .read_list(true, move |conn| {
            schemas::blocks(conn, kind, &u, declare::DRAFT_SAMPLES)
        })
        .await?;
    if blocks.is_empty() {
        return Err(Error::NotFound(format!(
            "no {} holds values under \"{urn}\"",
            kind.name()
        )));
    }
    Ok(declare::draft(&urn, &blocks))
}

/// An extension a user or group document carries: the key it is stored under and the
/// definition the server holds for it, if any.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Carried {
    pub urn: String,
    /// The schema document (`declare::document`: every characteristic spelled out), or null
    /// when nothing declares `urn` for the resource type: its values are then kept as sent.
    pub definition: Option<Value>,
    /// Whether the definition is one scimd has built in (the Enterprise User), not declared.
    pub built_in: bool,
}

/// The extensions `doc` (a stored document of `kind`) carries, in its order: every top-level
/// member keyed by a schema URI (`urn:…`, `http(s):…`) other than the core schema's, each with
/// the definition `registry` holds for `kind` under that URI (compared case-insensitively).
pub fn carried_in(
    registry: &Registry,
    kind: ResourceKind,
    doc: &Map<String, Value>,
) -> Vec<Carried> {
    let core = &registry.core(kind).id;
    doc.keys()
        .filter(|k| is_urn_key(k) && !k.eq_ignore_ascii_case(core))
        .map(|k| {
            let schema = registry
                .extensions(kind)
                .iter()
                .map(|e| &e.schema)
                .find(|s| s.id.eq_ignore_ascii_case(k));
            Carried {
                urn: k.clone(),
                definition: schema.map(|s| declare::document(s)),
                // Declarations never take a built-in's id (`declare::check_id`).
                built_in: schema.is_some_and(|s| find_schema(&s.id).is_some()),
            }
        })
        .collect()
}

/// `carried_in` with the schemas in force: the built-ins and every declaration that parses
/// (one that does not is listed with its problem on the Schemas page). Reads the
/// declarations only when `doc` carries an extension.
pub async fn carried(
    store: &Store,
    kind: ResourceKind,
    doc: &Map<String, Value>,
) -> Result<Vec<Carried>> {
    if !doc.keys().any(|k| is_urn_key(k)) {
        return Ok(Vec::new());
    }
    Ok(carried_in(&store.registry(), kind, doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::Query;

    #[test]
    fn the_default_resource_type_follows_the_id() {
        assert_eq!(default_resource("urn:acme:2.0:Group"), ResourceKind::Group);
        assert_eq!(default_resource("urn:acme:2.0:group"), ResourceKind::Group);
        assert_eq!(default_resource("urn:acme:2.0:User"), ResourceKind::User);
        assert_eq!(default_resource("urn:acme:Groups"), ResourceKind::User);
        assert_eq!(resource_named("group").unwrap(), ResourceKind::Group);
        assert!(resource_named("Device").is_err());
    }

    #[test]
    fn a_document_carries_its_uri_keyed_members_with_the_definitions_held_for_its_kind() {
        let acme = |id: &str| {
            let doc = json!({"id": id, "name": "Acme", "attributes": [{"name": "badge"}]});
            declare::parse(&doc, default_resource(id), false).unwrap()
        };
        let registry = Registry::new(vec![acme("urn:acme:2.0:User"), acme("urn:acme:2.0:Group")]);
        let doc = json!({
            "userName": "ana",
            "URN:ACME:2.0:USER": {"badge": "42"},
            "urn:ietf:params:scim:schemas:core:2.0:User": {},
            "https://example.com/ext": {"x": 1},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
            "urn:acme:2.0:Group": {"badge": "g"},
            "department": "kept as a core member, not an extension",
        });
        let Value::Object(doc) = doc else {
            unreachable!()
        };
        let carried = carried_in(&registry, ResourceKind::User, &doc);
        let summary: Vec<(&str, Option<&str>, bool)> = carried
            .iter()
            .map(|c| {
                let name = c.definition.as_ref().and_then(|d| d["name"].as_str());
                (c.urn.as_str(), name, c.built_in)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("URN:ACME:2.0:USER", Some("Acme"), false),
                ("https://example.com/ext", None, false),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                    Some("EnterpriseUser"),
                    true
                ),
                // Declared for groups only: on a user it is undeclared.
                ("urn:acme:2.0:Group", None, false),
            ]
        );
        let def = carried[0].definition.as_ref().unwrap();
        assert_eq!(def["attributes"][0]["type"], "string");
        // On a group, the group's declaration applies; the enterprise extension is a user's.
        let carried = carried_in(&registry, ResourceKind::Group, &doc);
        assert_eq!(
            carried.len(),
            5,
            "the user core URN is an extension key on a group"
        );
        let declared: Vec<&str> = carried
            .iter()
            .filter(|c| c.definition.is_some())
            .map(|c| c.urn.as_str())
            .collect();
        assert_eq!(declared, ["urn:acme:2.0:Group"]);
    }

    #[tokio::test]
    async fn declare_change_and_remove_are_audited() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("scimd.db")).unwrap();
        let actor = Actor::cli();
        let doc = json!({"id": "urn:acme:2.0:Group", "attributes": [{"name": "costCenter"}]});
        let (d, replaced) = declare(&store, &doc, None, false, &actor).unwrap();
        assert!(!replaced);
        assert_eq!(d.resource, ResourceKind::Group);
        let (_, replaced) = declare(&store, &doc, Some(ResourceKind::User), true, &actor).unwrap();
        assert!(replaced);
        let listed = list(&store).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].resource_type.as_str(), listed[0].required),
            ("User", true)
        );
        assert!(listed[0].problem.is_none());
        assert!(matches!(
            declare_text(&store, "{", None, false, &actor),
            Err(Error::InvalidSyntax(_))
        ));
        remove(&store, "URN:ACME:2.0:GROUP", &actor).unwrap();
        assert!(matches!(
            remove(&store, "urn:acme:2.0:Group", &actor),
            Err(Error::NotFound(_))
        ));
        let entries = crate::service::audit::list(
            &store,
            Query {
                limit: 10,
                ..Query::default()
            },
        )
        .await
        .unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["schema.remove", "schema.change", "schema.declare"]
        );
    }
}
