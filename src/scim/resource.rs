//! Stored resources and their SCIM representation (RFC 7643 §3, §4): the records the store
//! returns, and the pure functions that render them as the JSON clients receive, with `meta`,
//! `schemas`, member `$ref`s and the computed `groups` of a user.
//! Pure: no I/O.

use serde_json::{Map, Value, json};

use super::schema::{ENTERPRISE_USER_URN, GROUP_URN, USER_URN};

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

fn meta_json(base: &str, kind: ResourceKind, id: &str, meta: &Meta) -> Value {
    json!({
        "resourceType": kind.name(),
        "created": meta.created,
        "lastModified": meta.last_modified,
        "location": location(base, kind, id),
        "version": meta.etag(),
    })
}

/// The full representation of a user, before projection. Takes the record: its document
/// moves into the output instead of being copied (this runs for every user of every page).
pub fn render_user(user: UserRecord, base: &str) -> Value {
    let mut schemas = vec![json!(USER_URN)];
    if user.doc.contains_key(ENTERPRISE_USER_URN) {
        schemas.push(json!(ENTERPRISE_USER_URN));
    }
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), json!(user.id));
    out.extend(user.doc);
    if !user.groups.is_empty() {
        let groups = user
            .groups
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
        out.insert("groups".into(), Value::Array(groups));
    }
    out.insert(
        "meta".into(),
        meta_json(base, ResourceKind::User, &user.id, &user.meta),
    );
    Value::Object(out)
}

/// The full representation of a group, before projection. `members` is always present (an
/// empty list for an empty group): authentik skips adds when it is missing.
pub fn render_group(group: GroupRecord, base: &str) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([GROUP_URN]));
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
        let v = render_user(user, "https://h/scim/v2");
        assert_eq!(v["schemas"], json!([USER_URN, ENTERPRISE_USER_URN]));
        assert_eq!(v["meta"]["location"], json!("https://h/scim/v2/Users/u1"));
        assert_eq!(v["meta"]["version"], json!("W/\"3\""));
        assert_eq!(v["groups"][0]["type"], json!("indirect"));
        assert_eq!(v["groups"][0]["$ref"], json!("https://h/scim/v2/Groups/g1"));
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
        let v = render_user(user, "b");
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
        let v = render_group(group, "b");
        assert_eq!(
            v["members"],
            json!([{"value": "g2", "$ref": "b/Groups/g2", "type": "Group"}])
        );
        assert_eq!(v["meta"]["resourceType"], json!("Group"));
    }
}
