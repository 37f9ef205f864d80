//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) applied to a rendered
//! resource under the `returned` rules of RFC 7643 §7: `always` attributes are always there,
//! `never` ones never, `request` ones only when named, `default` ones unless excluded (or, with
//! `attributes`, only when named). Pure: no I/O.

use serde_json::{Map, Value};

use std::sync::LazyLock;

use super::resource::ResourceKind;
use super::schema::{self, Attribute, ENTERPRISE_USER, GROUP, Returned, Schema, USER};

/// One entry of an attribute list: an attribute of a schema, maybe one of its sub-attributes.
/// A bare extension URN (`sub` and `attr` both `None`) names the whole extension.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    /// The extension URN, or `None` for the core schema (and common attributes).
    urn: Option<&'static str>,
    attr: Option<&'static str>,
    sub: Option<&'static str>,
}

/// What to return, parsed from the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    attributes: Option<Vec<Named>>,
    excluded: Vec<Named>,
}

fn core(kind: ResourceKind) -> &'static Schema {
    match kind {
        ResourceKind::User => &USER,
        ResourceKind::Group => &GROUP,
    }
}

static USER_EXTENSIONS: [&LazyLock<Schema>; 1] = [&ENTERPRISE_USER];

fn extensions(kind: ResourceKind) -> &'static [&'static LazyLock<Schema>] {
    match kind {
        ResourceKind::User => &USER_EXTENSIONS,
        ResourceKind::Group => &[],
    }
}

fn strip_urn<'a>(item: &'a str, urn: &str) -> Option<&'a str> {
    let head = item.get(..urn.len())?;
    if !head.eq_ignore_ascii_case(urn) {
        return None;
    }
    let rest = &item[urn.len()..];
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix(':')
    }
}

/// Resolves `attr[.sub]` against `schema` (and the common attributes for the core schema).
fn resolve(
    schema: &'static Schema,
    path: &str,
    with_common: bool,
) -> Option<(&'static str, Option<&'static str>)> {
    let (attr_name, sub_name) = match path.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (path, None),
    };
    let attr: &'static Attribute = schema.attribute(attr_name).or_else(|| {
        with_common
            .then(|| schema::common_attribute(attr_name))
            .flatten()
    })?;
    match sub_name {
        None => Some((attr.name.as_str(), None)),
        Some(s) => attr
            .sub(s)
            .map(|sub| (attr.name.as_str(), Some(sub.name.as_str()))),
    }
}

/// Parses a comma-separated attribute list; names that match no attribute are dropped, as
/// they select nothing.
fn parse_list(list: &str, kind: ResourceKind) -> Vec<Named> {
    let core_schema = core(kind);
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|item| {
            for ext in extensions(kind) {
                if let Some(rest) = strip_urn(item, ext.id.as_str()) {
                    if rest.is_empty() {
                        return Some(Named {
                            urn: Some(ext.id.as_str()),
                            attr: None,
                            sub: None,
                        });
                    }
                    let (attr, sub) = resolve(ext, rest, false)?;
                    return Some(Named {
                        urn: Some(ext.id.as_str()),
                        attr: Some(attr),
                        sub,
                    });
                }
            }
            let path = strip_urn(item, core_schema.id.as_str()).unwrap_or(item);
            let (attr, sub) = resolve(core_schema, path, true)?;
            Some(Named {
                urn: None,
                attr: Some(attr),
                sub,
            })
        })
        .collect()
}

impl Projection {
    /// From the `attributes` and `excludedAttributes` query values. RFC 7644 §3.4.2.5 lets a
    /// client send one or the other; if both come, `attributes` wins.
    pub fn new(attributes: Option<&str>, excluded: Option<&str>, kind: ResourceKind) -> Self {
        match attributes.filter(|a| !a.trim().is_empty()) {
            Some(a) => Projection {
                attributes: Some(parse_list(a, kind)),
                excluded: Vec::new(),
            },
            None => Projection {
                attributes: None,
                excluded: excluded.map(|e| parse_list(e, kind)).unwrap_or_default(),
            },
        }
    }

    /// Whether the core attribute `name` (or part of it) survives the projection, so callers
    /// can skip loading what would be thrown away.
    pub fn returns(&self, name: &str) -> bool {
        let named =
            |n: &Named| n.urn.is_none() && n.attr.is_some_and(|a| a.eq_ignore_ascii_case(name));
        match &self.attributes {
            Some(list) => list.iter().any(named),
            None => !self.excluded.iter().any(|n| named(n) && n.sub.is_none()),
        }
    }

    /// Whether the projection leaves the resource as rendered.
    pub fn is_identity(&self) -> bool {
        self.attributes.is_none() && self.excluded.is_empty()
    }

    /// Applies the projection to a rendered resource of `kind`.
    pub fn apply(&self, resource: &mut Value, kind: ResourceKind) {
        if self.is_identity() {
            return;
        }
        let Value::Object(map) = resource else {
            return;
        };
        let core_schema = core(kind);
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if key == "schemas" {
                continue;
            }
            if let Some(ext) = extensions(kind).iter().find(|e| e.id == key) {
                let whole = |n: &Named| n.urn == Some(ext.id.as_str()) && n.attr.is_none();
                let keep_all = self
                    .attributes
                    .as_ref()
                    .is_some_and(|a| a.iter().any(whole));
                if self.excluded.iter().any(whole) {
                    map.remove(&key);
                } else if !keep_all && let Some(Value::Object(block)) = map.get_mut(&key) {
                    self.filter_attrs(block, ext, Some(ext.id.as_str()));
                    if block.is_empty() {
                        map.remove(&key);
                    }
                }
                continue;
            }
            let Some(attr) = core_schema
                .attribute(&key)
                .or_else(|| schema::common_attribute(&key))
            else {
                continue;
            };
            self.filter_one(map, &key, attr, None);
        }
    }

    fn filter_attrs(
        &self,
        block: &mut Map<String, Value>,
        schema: &Schema,
        urn: Option<&'static str>,
    ) {
        let keys: Vec<String> = block.keys().cloned().collect();
        for key in keys {
            if let Some(attr) = schema.attribute(&key) {
                self.filter_one(block, &key, attr, urn);
            }
        }
    }

    /// Keeps, trims or removes `map[key]` (attribute `attr` of the schema `urn`).
    fn filter_one(
        &self,
        map: &mut Map<String, Value>,
        key: &str,
        attr: &Attribute,
        urn: Option<&'static str>,
    ) {
        let names = |list: &[Named]| -> (bool, Vec<&'static str>) {
            let mut whole = false;
            let mut subs = Vec::new();
            for n in list
                .iter()
                .filter(|n| n.urn == urn && n.attr == Some(&attr.name))
            {
                match n.sub {
                    None => whole = true,
                    Some(s) => subs.push(s),
                }
            }
            (whole, subs)
        };
        match attr.returned {
            Returned::Always => return,
            Returned::Never => {
                map.remove(key);
                return;
            }
            Returned::Default | Returned::Request => {}
        }
        let keep = match &self.attributes {
            Some(list) => {
                let (whole, subs) = names(list);
                if whole {
                    Keep::All
                } else if !subs.is_empty() {
                    Keep::Only(subs)
                } else {
                    Keep::None
                }
            }
            None if attr.returned == Returned::Request => Keep::None,
            None => {
                let (whole, subs) = names(&self.excluded);
                if whole {
                    Keep::None
                } else if !subs.is_empty() {
                    Keep::AllBut(subs)
                } else {
                    Keep::All
                }
            }
        };
        match keep {
            Keep::All => {}
            Keep::None => {
                map.remove(key);
            }
            Keep::Only(subs) => retain_subs(map, key, attr, |s| subs.contains(&s)),
            Keep::AllBut(subs) => retain_subs(map, key, attr, |s| !subs.contains(&s)),
        }
    }
}

enum Keep {
    All,
    None,
    Only(Vec<&'static str>),
    AllBut(Vec<&'static str>),
}

/// Keeps the sub-attributes of `map[key]` that `want` accepts (plus `always` ones); drops
/// values, and then the attribute, left empty.
fn retain_subs(
    map: &mut Map<String, Value>,
    key: &str,
    attr: &Attribute,
    want: impl Fn(&str) -> bool,
) {
    let keep = |obj: &mut Map<String, Value>| {
        obj.retain(|k, _| {
            attr.sub(k)
                .is_some_and(|s| s.returned == Returned::Always || want(&s.name))
        });
        !obj.is_empty()
    };
    let empty = match map.get_mut(key) {
        Some(Value::Object(obj)) => !keep(obj),
        Some(Value::Array(items)) => {
            items.retain_mut(|v| match v {
                Value::Object(obj) => keep(obj),
                _ => true,
            });
            items.is_empty()
        }
        _ => false,
    };
    if empty {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::ENTERPRISE_USER_URN;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_URN],
            "id": "u1",
            "externalId": "e1",
            "userName": "ana",
            "name": {"givenName": "Ana", "familyName": "Silva"},
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}],
            ENTERPRISE_USER_URN: {"department": "R&D", "employeeNumber": "7"},
            "meta": {"resourceType": "User"}
        })
    }

    fn project(attrs: Option<&str>, excluded: Option<&str>) -> Value {
        let mut u = user();
        Projection::new(attrs, excluded, ResourceKind::User).apply(&mut u, ResourceKind::User);
        u
    }

    #[test]
    fn attributes_keep_only_named_plus_always() {
        let v = project(Some("userName,name.familyName"), None);
        assert_eq!(
            v,
            json!({"schemas": user()["schemas"], "id": "u1", "userName": "ana",
                   "name": {"familyName": "Silva"}})
        );
    }

    #[test]
    fn attributes_are_case_insensitive_and_may_carry_urns() {
        let v = project(
            Some("USERNAME,urn:ietf:params:scim:schemas:core:2.0:User:emails.value,externalid"),
            None,
        );
        assert_eq!(v["userName"], "ana");
        assert_eq!(v["externalId"], "e1");
        assert_eq!(v["emails"], json!([{"value": "a@x"}, {"value": "b@x"}]));
        assert!(v.get("name").is_none() && v.get("meta").is_none());
    }

    #[test]
    fn extension_attributes_by_urn() {
        let v = project(Some(&format!("{ENTERPRISE_USER_URN}:department")), None);
        assert_eq!(v[ENTERPRISE_USER_URN], json!({"department": "R&D"}));
        let v = project(Some(ENTERPRISE_USER_URN), None);
        assert_eq!(v[ENTERPRISE_USER_URN], user()[ENTERPRISE_USER_URN]);
        let v = project(None, Some(ENTERPRISE_USER_URN));
        assert!(v.get(ENTERPRISE_USER_URN).is_none());
        let v = project(None, Some(&format!("{ENTERPRISE_USER_URN}:employeeNumber")));
        assert_eq!(v[ENTERPRISE_USER_URN], json!({"department": "R&D"}));
    }

    #[test]
    fn excluded_attributes_drop_default_ones_but_never_id() {
        let v = project(None, Some("name,emails.type,id,meta"));
        assert!(v.get("name").is_none() && v.get("meta").is_none());
        assert_eq!(v["id"], "u1");
        assert_eq!(v["emails"], json!([{"value": "a@x"}, {"value": "b@x"}]));
        assert_eq!(v["userName"], "ana");
    }

    #[test]
    fn unknown_names_select_nothing() {
        let v = project(Some("nosuch"), None);
        assert_eq!(v, json!({"schemas": user()["schemas"], "id": "u1"}));
        assert_eq!(project(None, Some("nosuch")), user());
    }

    #[test]
    fn returns_tells_whether_an_attribute_survives() {
        let p = |a: Option<&str>, e: Option<&str>| Projection::new(a, e, ResourceKind::Group);
        assert!(p(None, None).returns("members"));
        assert!(!p(None, Some("members")).returns("members"));
        assert!(p(None, Some("members.display")).returns("members"));
        assert!(!p(Some("displayName"), None).returns("members"));
        assert!(p(Some("members.value"), None).returns("members"));
        assert!(p(Some("MEMBERS"), None).returns("members"));
    }

    #[test]
    fn group_members_can_be_excluded() {
        let mut g =
            json!({"schemas": [], "id": "g", "displayName": "G", "members": [{"value": "u"}]});
        let p = Projection::new(None, Some("members"), ResourceKind::Group);
        p.apply(&mut g, ResourceKind::Group);
        assert_eq!(g, json!({"schemas": [], "id": "g", "displayName": "G"}));
    }
}
