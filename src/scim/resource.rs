//! Stored resources and their SCIM representation (RFC 7643 §3, §4): the records the store
//! returns, and the pure functions that render them as the JSON clients receive, with `meta`,
//! `schemas`, member `$ref`s and the computed `groups` of a user.
//! Pure: no I/O.

use serde_json::{Map, Value, json};

use super::registry::Registry;
use super::validate::is_urn_key;

/// RFC 7643 §3.1 `meta`, less what is derived from the request (`location`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub created: String,
    pub last_modified: String,
    /// Bumped by every change; `meta.version` and the ETag are derived from it.
    pub version: i64,
}

impl Meta {
    /// The weak entity tag (RFC 7644 §3.14) for this version.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    /// Whether an `If-Match` or `If-None-Match` value names this version: `*`, or a
    /// comma-separated list of entity tags compared the weak way (RFC 7232 §2.3.2), since
    /// scimd's tags are weak; a tag sent without its `W/` still matches.
    pub fn matches(&self, header: &str) -> bool {
        let mine = self.version.to_string();
        header.split(',').map(str::trim).any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == "*" || tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) == Some(&mine)
        })
    }

    /// `If-Match` (RFC 7644 §3.14): a write proceeds only if the resource is still at a
    /// version the client names.
    pub fn check_if_match(&self, if_match: Option<&str>) -> crate::error::Result<()> {
        match if_match {
            Some(h) if !self.matches(h) => Err(crate::error::Error::PreconditionFailed(format!(
                "the resource is at version {}, not {h}",
                self.etag()
            ))),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    /// The resource type name (`meta.resourceType`, member `type`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }
    /// The endpoint segment under the base URL.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }
}

/// A group a user belongs to, directly or through a nested group (idp-compat.md Decision 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub display: String,
    pub direct: bool,
}

/// A member of a group as stored: its id and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub id: String,
    pub kind: ResourceKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: String,
    /// The normalised document (see `validate::UserInput`).
    pub doc: Map<String, Value>,
    pub meta: Meta,
    pub groups: Vec<GroupRef>,
}

/// A user as lists and `GET` read it: the document still the JSON text it was stored as. An
/// answer without `attributes` or `excludedAttributes` (every IdP lookup, every export page)
/// writes that text into the response as it is (`write_user`): parsing it into a tree and
/// serialising the tree again was most of the CPU of a lookup and most of the memory of an
/// export page.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUser {
    pub id: String,
    /// The normalised document as JSON text: an object without `id`, `meta`, `groups`,
    /// `schemas` or `password` (see `validate::UserInput`).
    pub data: String,
    pub meta: Meta,
    pub groups: Vec<GroupRef>,
}

impl StoredUser {
    /// The record with its document parsed, for rendering under a projection.
    pub fn parse(self) -> serde_json::Result<UserRecord> {
        Ok(UserRecord {
            doc: serde_json::from_str(&self.data)?,
            id: self.id,
            meta: self.meta,
            groups: self.groups,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub id: String,
    pub doc: Map<String, Value>,
    pub meta: Meta,
    pub members: Vec<MemberRef>,
}

/// `base` is the SCIM base URL, e.g. `https://host/scim/v2`.
pub fn location(base: &str, kind: ResourceKind, id: &str) -> String {
    format!("{base}/{}/{id}", kind.endpoint())
}

/// The `groups` attribute of a user (RFC 7643 §4.1.2), `None` when the user is in none.
fn groups_json(groups: &[GroupRef], base: &str) -> Option<Value> {
    if groups.is_empty() {
        return None;
    }
    let groups = groups
        .iter()
        .map(|g| {
            json!({
                "value": g.id,
                "$ref": location(base, ResourceKind::Group, &g.id),
                "display": g.display,
                "type": if g.direct { "direct" } else { "indirect" },
            })
        })
        .collect();
    Some(Value::Array(groups))
}

fn meta_json(base: &str, kind: ResourceKind, id: &str, meta: &Meta) -> Value {
    json!({
        "resourceType": kind.name(),
        "created": meta.created,
        "lastModified": meta.last_modified,
        "location": location(base, kind, id),
        "version": meta.etag(),
    })
}

/// `schemas` (RFC 7643 §3) of a resource of `kind` whose document has the member names
/// `keys`: the core URN, each extension of the registry with a block there (in registry order,
/// spelled as declared), then each other URN-keyed block (undeclared, spelled as stored).
/// Derived at every render, never stored nor taken from the client, so it always lists
/// exactly the extensions the resource carries.
pub fn schemas<'a>(registry: &'a Registry, kind: ResourceKind, keys: &[&'a str]) -> Vec<&'a str> {
    let mut out = vec![registry.core(kind).id.as_str()];
    let extensions = registry.extensions(kind);
    for ext in extensions {
        if keys.iter().any(|k| k.eq_ignore_ascii_case(&ext.schema.id)) {
            out.push(&ext.schema.id);
        }
    }
    for key in keys {
        if is_urn_key(key)
            && !extensions
                .iter()
                .any(|e| e.schema.id.eq_ignore_ascii_case(key))
        {
            out.push(key);
        }
    }
    out
}

fn schemas_json(registry: &Registry, kind: ResourceKind, doc: &Map<String, Value>) -> Value {
    let keys: Vec<&str> = doc.keys().map(String::as_str).collect();
    json!(schemas(registry, kind, &keys))
}

/// The full representation of a user, before projection. Takes the record: its document
/// moves into the output instead of being copied. Answers with nothing to project skip it
/// (`write_user`).
pub fn render_user(user: UserRecord, base: &str, registry: &Registry) -> Value {
    let mut out = Map::new();
    out.insert(
        "schemas".into(),
        schemas_json(registry, ResourceKind::User, &user.doc),
    );
    out.insert("id".into(), json!(user.id));
    out.extend(user.doc);
    if let Some(groups) = groups_json(&user.groups, base) {
        out.insert("groups".into(), groups);
    }
    out.insert(
        "meta".into(),
        meta_json(base, ResourceKind::User, &user.id, &user.meta),
    );
    Value::Object(out)
}

/// `render_user` of the parsed user, as JSON text, written without parsing the stored
/// document: the same members in the same order, its text spliced in between `id` and
/// `groups` — byte for byte the same for the text scimd stores (`serde_json` output of a
/// map). Fails if `data` is not a JSON object. The scan checks syntax but not everything a
/// parse would (a lone surrogate escape, a number out of range, nesting past 128 levels);
/// scimd never stores such text, as everything it stores was serialised by `serde_json`.
pub fn write_user(
    user: &StoredUser,
    base: &str,
    registry: &Registry,
) -> serde_json::Result<String> {
    let scan = scan_object(&user.data)?;
    let body = user.data.trim();
    // What lies between the braces: the document's members, if it has any.
    let members = &body[1..body.len() - 1];
    let mut out = String::with_capacity(user.data.len() + 400);
    out.push_str("{\"schemas\":");
    let keys: Vec<&str> = scan.extensions.iter().map(String::as_str).collect();
    let schemas = schemas(registry, ResourceKind::User, &keys);
    out.push_str(&serde_json::to_string(&schemas)?);
    out.push_str(",\"id\":");
    out.push_str(&serde_json::to_string(&user.id)?);
    if scan.members > 0 {
        out.push(',');
        out.push_str(members);
    }
    if let Some(groups) = groups_json(&user.groups, base) {
        out.push_str(",\"groups\":");
        out.push_str(&serde_json::to_string(&groups)?);
    }
    out.push_str(",\"meta\":");
    let meta = meta_json(base, ResourceKind::User, &user.id, &user.meta);
    out.push_str(&serde_json::to_string(&meta)?);
    out.push('}');
    Ok(out)
}

/// What `write_user` needs to know of a stored document, read in one pass that allocates
/// only for extension blocks: how many members it has, and the names of its URN-keyed ones.
struct ObjectScan {
    members: usize,
    extensions: Vec<String>,
}

fn scan_object(data: &str) -> serde_json::Result<ObjectScan> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    use std::fmt;

    /// A member name, kept only when it is an extension URN.
    struct Extension(Option<String>);
    impl<'de> serde::Deserialize<'de> for Extension {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Name;
            impl Visitor<'_> for Name {
                type Value = Extension;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a member name")
                }
                fn visit_str<E>(self, v: &str) -> Result<Extension, E> {
                    Ok(Extension(is_urn_key(v).then(|| v.to_string())))
                }
            }
            d.deserialize_str(Name)
        }
    }

    struct Scan;
    impl<'de> Visitor<'de> for Scan {
        type Value = ObjectScan;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectScan, A::Error> {
            let mut scan = ObjectScan {
                members: 0,
                extensions: Vec::new(),
            };
            while let Some(Extension(urn)) = map.next_key()? {
                map.next_value::<IgnoredAny>()?;
                scan.members += 1;
                scan.extensions.extend(urn);
            }
            Ok(scan)
        }
    }

    let mut de = serde_json::Deserializer::from_str(data);
    let scan = de.deserialize_map(Scan)?;
    de.end()?;
    Ok(scan)
}

/// The full representation of a group, before projection. `members` is always present (an
/// empty list for an empty group): authentik skips adds when it is missing.
pub fn render_group(group: GroupRecord, base: &str, registry: &Registry) -> Value {
    let mut out = Map::new();
    out.insert(
        "schemas".into(),
        schemas_json(registry, ResourceKind::Group, &group.doc),
    );
    out.insert("id".into(), json!(group.id));
    out.extend(group.doc);
    let members = group
        .members
        .iter()
        .map(|m| {
            let mut o = Map::new();
            o.insert("value".into(), json!(m.id));
            o.insert("$ref".into(), json!(location(base, m.kind, &m.id)));
            o.insert("type".into(), json!(m.kind.name()));
            Value::Object(o)
        })
        .collect();
    out.insert("members".into(), Value::Array(members));
    out.insert(
        "meta".into(),
        meta_json(base, ResourceKind::Group, &group.id, &group.meta),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::registry::Declared;
    use crate::scim::schema::{Attribute, ENTERPRISE_USER_URN, GROUP_URN, Schema, USER_URN};
    use std::sync::Arc;

    /// The built-ins plus `urn:acme:2.0:User` declared for users.
    fn registry() -> Registry {
        Registry::new(vec![Declared {
            schema: Schema {
                id: "urn:acme:2.0:User".into(),
                name: "Acme".into(),
                description: String::new(),
                attributes: vec![Arc::new(Attribute::string("badge", ""))],
            },
            resource: ResourceKind::User,
            required: false,
        }])
    }

    fn meta() -> Meta {
        Meta {
            created: "2026-01-01T00:00:00.000Z".into(),
            last_modified: "2026-01-02T00:00:00.000Z".into(),
            version: 3,
        }
    }

    #[test]
    fn entity_tags_match_weakly_in_lists_and_star() {
        let m = meta();
        for yes in ["W/\"3\"", "\"3\"", "*", "W/\"1\", W/\"3\"", " W/\"3\" "] {
            assert!(m.matches(yes), "{yes}");
            assert!(m.check_if_match(Some(yes)).is_ok());
        }
        for no in ["W/\"4\"", "3", "W/\"33\"", "", "W/\"\""] {
            assert!(!m.matches(no), "{no}");
            let e = m.check_if_match(Some(no)).unwrap_err();
            assert_eq!(e.status().as_u16(), 412);
        }
        assert!(m.check_if_match(None).is_ok());
    }

    #[test]
    fn user_has_meta_schemas_and_groups() {
        let mut doc = Map::new();
        doc.insert("userName".into(), json!("ana"));
        doc.insert(ENTERPRISE_USER_URN.into(), json!({"department": "R&D"}));
        let user = UserRecord {
            id: "u1".into(),
            doc,
            meta: meta(),
            groups: vec![GroupRef {
                id: "g1".into(),
                display: "Finance".into(),
                direct: false,
            }],
        };
        let v = render_user(user, "https://h/scim/v2", &registry());
        assert_eq!(v["schemas"], json!([USER_URN, ENTERPRISE_USER_URN]));
        assert_eq!(v["meta"]["location"], json!("https://h/scim/v2/Users/u1"));
        assert_eq!(v["meta"]["version"], json!("W/\"3\""));
        assert_eq!(v["groups"][0]["type"], json!("indirect"));
        assert_eq!(v["groups"][0]["$ref"], json!("https://h/scim/v2/Groups/g1"));
    }

    #[test]
    fn schemas_lists_declared_extensions_in_registry_order_then_undeclared_as_stored() {
        let mut doc = Map::new();
        doc.insert("userName".into(), json!("ana"));
        doc.insert("https://example.com/ext".into(), json!({"a": 1}));
        doc.insert("URN:ACME:2.0:USER".into(), json!({"badge": "1"}));
        doc.insert("urn:other:2.0:User".into(), json!({"b": 1}));
        doc.insert(ENTERPRISE_USER_URN.into(), json!({"department": "R&D"}));
        let user = UserRecord {
            id: "u1".into(),
            doc,
            meta: meta(),
            groups: vec![],
        };
        let v = render_user(user, "b", &registry());
        assert_eq!(
            v["schemas"],
            json!([
                USER_URN,
                ENTERPRISE_USER_URN,
                "urn:acme:2.0:User",
                "https://example.com/ext",
                "urn:other:2.0:User"
            ])
        );
        let mut doc = Map::new();
        doc.insert("displayName".into(), json!("Eng"));
        doc.insert("urn:acme:2.0:Group".into(), json!({"c": "1"}));
        let group = GroupRecord {
            id: "g1".into(),
            doc,
            meta: meta(),
            members: vec![],
        };
        let v = render_group(group, "b", &registry());
        assert_eq!(v["schemas"], json!([GROUP_URN, "urn:acme:2.0:Group"]));
    }

    #[test]
    fn user_without_extension_lists_core_schema_only() {
        let mut doc = Map::new();
        doc.insert("userName".into(), json!("ana"));
        let user = UserRecord {
            id: "u1".into(),
            doc,
            meta: meta(),
            groups: vec![],
        };
        let v = render_user(user, "b", &registry());
        assert_eq!(v["schemas"], json!([USER_URN]));
        assert!(v.get("groups").is_none());
    }

    #[test]
    fn group_members_carry_type_ref_and_display() {
        let mut doc = Map::new();
        doc.insert("displayName".into(), json!("Eng"));
        let group = GroupRecord {
            id: "g1".into(),
            doc,
            meta: meta(),
            members: vec![MemberRef {
                id: "g2".into(),
                kind: ResourceKind::Group,
            }],
        };
        let v = render_group(group, "b", &registry());
        assert_eq!(
            v["members"],
            json!([{"value": "g2", "$ref": "b/Groups/g2", "type": "Group"}])
        );
        assert_eq!(v["meta"]["resourceType"], json!("Group"));
    }

    fn stored(data: &str, groups: Vec<GroupRef>) -> StoredUser {
        StoredUser {
            id: "u\"1".into(),
            data: data.into(),
            meta: meta(),
            groups,
        }
    }

    /// `write_user` is `render_user` of the parsed document, to the byte.
    fn assert_writes_as_rendered(user: &StoredUser) {
        let base = "https://h\u{e9}/scim/v2";
        let written = write_user(user, base, &registry()).expect("an object");
        let rendered = render_user(user.clone().parse().expect("parses"), base, &registry());
        let parsed = serde_json::from_str::<Value>(&written).unwrap();
        assert_eq!(parsed, rendered, "{written}");
        // Equality of objects ignores member order, and a parse drops duplicate members.
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&parsed), keys(&rendered), "{written}");
        let members = scan_object(&written).unwrap().members;
        assert_eq!(members, rendered.as_object().unwrap().len(), "{written}");
        if serde_json::to_string(&serde_json::from_str::<Value>(&user.data).unwrap()).unwrap()
            == user.data
        {
            assert_eq!(written, serde_json::to_string(&rendered).unwrap());
        }
    }

    #[test]
    fn stored_users_are_written_as_rendered() {
        let group = |id: &str, direct| GroupRef {
            id: id.into(),
            display: "Fin\"ance".into(),
            direct,
        };
        for data in [
            "{}",
            " { } ",
            r#"{"userName":"ana"}"#,
            r#"{"userName":"ana","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D"}}"#,
            r#"{"urn:x:2.0:User":{"a":1},"userName":"ana","urn:acme:2.0:User":{"badge":"b"},"HTTPS://e/x":{}}"#,
            // Escaped, the member name is still the extension's.
            r#"{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:\u0055ser":{}}"#,
            // The URN as a value, or nested, is not the extension.
            r#"{"title":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","x":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":1}}"#,
            "{\n  \"userName\": \"\u{1F600} \\\"q\\\"\",\n  \"emails\": [ {\"value\": \"a@b\"} ]\n}\n",
        ] {
            assert_writes_as_rendered(&stored(data, vec![]));
            assert_writes_as_rendered(&stored(data, vec![group("g1", true), group("g2", false)]));
        }
    }

    #[test]
    fn a_stored_document_that_is_not_an_object_is_an_error() {
        for data in ["", "[]", "\"x\"", "{", "{} {}", "{\"a\":1,}", "null"] {
            assert!(
                write_user(&stored(data, vec![]), "b", &registry()).is_err(),
                "{data:?}"
            );
        }
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<String>().prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::vec((key(), inner), 0..4)
                        .prop_map(|kvs| Value::Object(kvs.into_iter().collect())),
                ]
            })
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(ENTERPRISE_USER_URN.to_string()),
                Just("urn:acme:2.0:User".to_string()),
                Just("urn:undeclared:2.0:User".to_string()),
                Just("https://example.com/ext".to_string()),
                Just("userName".to_string()),
                // Never one `render_user` adds itself: a stored document has none of them.
                any::<String>().prop_filter("derived", |k| {
                    !["schemas", "id", "groups", "meta"].contains(&k.as_str())
                }),
            ]
        }

        proptest! {
            #[test]
            fn any_stored_document_is_written_as_rendered(
                doc in proptest::collection::vec((key(), json_value()), 0..6),
                pretty in any::<bool>(),
                groups in proptest::collection::vec((any::<String>(), any::<bool>()), 0..3),
            ) {
                let doc: Map<String, Value> = doc.into_iter().collect();
                let data = if pretty {
                    serde_json::to_string_pretty(&doc).unwrap()
                } else {
                    serde_json::to_string(&doc).unwrap()
                };
                let groups = groups
                    .into_iter()
                    .map(|(display, direct)| GroupRef { id: display.clone(), display, direct })
                    .collect();
                assert_writes_as_rendered(&stored(&data, groups));
            }
        }
    }
}
