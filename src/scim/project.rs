//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) applied to a rendered
//! resource under the `returned` rules of RFC 7643 §7: `always` attributes are always there,
//! `never` ones never, `request` ones only when named, `default` ones unless excluded (or, with
//! `attributes`, only when named). The shape comes from the request's `Registry`: core and
//! declared extension attributes by their schema, undeclared extension blocks (which have no
//! schema, so every attribute is `default`) by the URN keys the resource carries.
//! Pure: no I/O.

use serde_json::{Map, Value};

use super::registry::{KeyMatch, Registry};
use super::resource::ResourceKind;
use super::schema::{self, Attribute, Returned, Schema};
use super::validate::is_urn_key;

/// One entry of an attribute list: an attribute of a schema, maybe one of its sub-attributes.
/// A bare extension URN (`sub` and `attr` both `None`) names the whole extension. Names are
/// ASCII-lowercased: attribute names and URNs compare case-insensitively (RFC 7643 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    /// The extension URN, or `None` for the core schema (and common attributes).
    urn: Option<String>,
    attr: Option<String>,
    sub: Option<String>,
}

/// One parsed attribute list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct List {
    named: Vec<Named>,
    /// URN-qualified entries no registered schema claims, lowercased: they may name an
    /// undeclared extension block of the resource (`<urn>` or `<urn>:<attr>[.sub]`), which is
    /// only known once the resource is.
    undeclared: Vec<String>,
}

impl List {
    /// `named` plus the entries of `undeclared` that name the block `urn` (lowercased).
    fn for_block(&self, urn: &str) -> Vec<Named> {
        let mut out = self.named.clone();
        for item in &self.undeclared {
            let Some(rest) = item.strip_prefix(urn) else {
                continue;
            };
            if rest.is_empty() {
                out.push(Named {
                    urn: Some(urn.to_string()),
                    attr: None,
                    sub: None,
                });
            } else if let Some(path) = rest.strip_prefix(':') {
                let (attr, sub) = match path.split_once('.') {
                    Some((a, s)) => (a, Some(s.to_string())),
                    None => (path, None),
                };
                out.push(Named {
                    urn: Some(urn.to_string()),
                    attr: Some(attr.to_string()),
                    sub,
                });
            }
        }
        out
    }
}

/// What to return, parsed from the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    attributes: Option<List>,
    excluded: List,
    /// Whether a declared attribute is `returned: never` or `request`, so even a resource
    /// rendered without `attributes`/`excludedAttributes` must go through `apply`.
    hides: bool,
}

/// Resolves `attr[.sub]` against `schema` (and the common attributes for the core schema).
fn resolve(schema: &Schema, path: &str, with_common: bool) -> Option<(String, Option<String>)> {
    let (attr_name, sub_name) = match path.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (path, None),
    };
    let attr: &Attribute = schema.attribute(attr_name).or_else(|| {
        with_common
            .then(|| schema::common_attribute(attr_name))
            .flatten()
    })?;
    let lower = |s: &str| s.to_ascii_lowercase();
    match sub_name {
        None => Some((lower(&attr.name), None)),
        Some(s) => attr
            .sub(s)
            .map(|sub| (lower(&attr.name), Some(lower(&sub.name)))),
    }
}

/// Parses a comma-separated attribute list; names that match no attribute are dropped, as
/// they select nothing.
fn parse_list(list: &str, kind: ResourceKind, registry: &Registry) -> List {
    let core_schema = registry.core(kind);
    let mut out = List::default();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let named = if is_urn_key(item) {
            match registry.match_key(kind, item) {
                KeyMatch::Core { attr: Some(path) } => {
                    resolve(core_schema, path, true).map(|(attr, sub)| Named {
                        urn: None,
                        attr: Some(attr),
                        sub,
                    })
                }
                KeyMatch::Core { attr: None } | KeyMatch::Foreign => None,
                KeyMatch::Extension { schema, attr } => {
                    let urn = Some(schema.id.to_ascii_lowercase());
                    match attr {
                        None => Some(Named {
                            urn,
                            attr: None,
                            sub: None,
                        }),
                        Some(path) => resolve(schema, path, false).map(|(attr, sub)| Named {
                            urn,
                            attr: Some(attr),
                            sub,
                        }),
                    }
                }
                KeyMatch::Undeclared => {
                    out.undeclared.push(item.to_ascii_lowercase());
                    None
                }
            }
        } else {
            resolve(core_schema, item, true).map(|(attr, sub)| Named {
                urn: None,
                attr: Some(attr),
                sub,
            })
        };
        out.named.extend(named);
    }
    out
}

/// Whether an attribute of `schema` (or one of its sub-attributes) is ever left out of a
/// resource rendered in full.
fn hides(schema: &Schema) -> bool {
    let hidden = |a: &Attribute| matches!(a.returned, Returned::Never | Returned::Request);
    schema
        .attributes
        .iter()
        .any(|a| hidden(a) || a.sub_attributes.iter().any(|s| hidden(s)))
}

impl Projection {
    /// From the `attributes` and `excludedAttributes` query values. RFC 7644 §3.4.2.5 lets a
    /// client send one or the other; if both come, `attributes` wins.
    pub fn new(
        attributes: Option<&str>,
        excluded: Option<&str>,
        kind: ResourceKind,
        registry: &Registry,
    ) -> Self {
        let hides = registry.extensions(kind).iter().any(|e| hides(&e.schema));
        match attributes.filter(|a| !a.trim().is_empty()) {
            Some(a) => Projection {
                attributes: Some(parse_list(a, kind, registry)),
                excluded: List::default(),
                hides,
            },
            None => Projection {
                attributes: None,
                excluded: excluded
                    .map(|e| parse_list(e, kind, registry))
                    .unwrap_or_default(),
                hides,
            },
        }
    }

    /// Whether the core attribute `name` (or part of it) survives the projection, so callers
    /// can skip loading what would be thrown away.
    pub fn returns(&self, name: &str) -> bool {
        let named = |n: &Named| {
            n.urn.is_none()
                && n.attr
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(name))
        };
        match &self.attributes {
            Some(list) => list.named.iter().any(named),
            None => !self
                .excluded
                .named
                .iter()
                .any(|n| named(n) && n.sub.is_none()),
        }
    }

    /// Whether the projection leaves the resource as rendered.
    pub fn is_identity(&self) -> bool {
        self.attributes.is_none()
            && self.excluded.named.is_empty()
            && self.excluded.undeclared.is_empty()
            && !self.hides
    }

    /// Applies the projection to a rendered resource of `kind`, with the schemas of the
    /// `registry` it was made with.
    pub fn apply(&self, resource: &mut Value, kind: ResourceKind, registry: &Registry) {
        if self.is_identity() {
            return;
        }
        let Value::Object(map) = resource else {
            return;
        };
        let core_schema = registry.core(kind);
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if key == "schemas" {
                continue;
            }
            if is_urn_key(&key) {
                let ext = registry
                    .extensions(kind)
                    .iter()
                    .find(|e| e.schema.id.eq_ignore_ascii_case(&key));
                self.block(map, &key, ext.map(|e| &*e.schema));
                continue;
            }
            let Some(attr) = core_schema
                .attribute(&key)
                .or_else(|| schema::common_attribute(&key))
            else {
                continue;
            };
            let view = View {
                attributes: self.attributes.as_ref().map(|l| l.named.as_slice()),
                excluded: &self.excluded.named,
            };
            view.filter_one(map, &key, Some(attr), None);
        }
    }

    /// Projects the extension block `map[key]`: of a declared `schema`, or undeclared.
    fn block(&self, map: &mut Map<String, Value>, key: &str, schema: Option<&Schema>) {
        let urn = key.to_ascii_lowercase();
        let attributes = self.attributes.as_ref().map(|l| l.for_block(&urn));
        let excluded = self.excluded.for_block(&urn);
        let view = View {
            attributes: attributes.as_deref(),
            excluded: &excluded,
        };
        let whole = |n: &Named| n.urn.as_deref() == Some(urn.as_str()) && n.attr.is_none();
        if view.excluded.iter().any(whole) {
            map.remove(key);
            return;
        }
        let keep_all = view.attributes.is_some_and(|a| a.iter().any(whole));
        let Some(Value::Object(block)) = map.get_mut(key) else {
            return;
        };
        let names: Vec<String> = block.keys().cloned().collect();
        for name in names {
            match schema {
                Some(schema) => {
                    if let Some(attr) = schema.attribute(&name) {
                        if keep_all {
                            // A whole block still hides what is never returned.
                            View::all().filter_one(block, &name, Some(attr), Some(&urn));
                        } else {
                            view.filter_one(block, &name, Some(attr), Some(&urn));
                        }
                    }
                }
                None if keep_all => {}
                None => view.filter_one(block, &name, None, Some(&urn)),
            }
        }
        if block.is_empty() {
            map.remove(key);
        }
    }
}

/// The attribute lists that apply to one object of the resource.
struct View<'a> {
    attributes: Option<&'a [Named]>,
    excluded: &'a [Named],
}

impl View<'_> {
    /// Everything a full rendering returns.
    fn all() -> View<'static> {
        View {
            attributes: None,
            excluded: &[],
        }
    }

    /// Keeps, trims or removes `map[key]`: attribute `attr` of the schema `urn`, or (`attr`
    /// `None`) an attribute of an undeclared extension, `returned: default` with any keys.
    fn filter_one(
        &self,
        map: &mut Map<String, Value>,
        key: &str,
        attr: Option<&Attribute>,
        urn: Option<&str>,
    ) {
        let lower = key.to_ascii_lowercase();
        let names = |list: &[Named]| -> (bool, Vec<String>) {
            let mut whole = false;
            let mut subs = Vec::new();
            for n in list
                .iter()
                .filter(|n| n.urn.as_deref() == urn && n.attr.as_deref() == Some(lower.as_str()))
            {
                match &n.sub {
                    None => whole = true,
                    Some(s) => subs.push(s.clone()),
                }
            }
            (whole, subs)
        };
        let returned = attr.map_or(Returned::Default, |a| a.returned);
        match returned {
            Returned::Always => return,
            Returned::Never => {
                map.remove(key);
                return;
            }
            Returned::Default | Returned::Request => {}
        }
        let keep = match self.attributes {
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
            None if returned == Returned::Request => Keep::None,
            None => {
                let (whole, subs) = names(self.excluded);
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
            Keep::All if attr.is_some_and(|a| a.sub_attributes.iter().any(|s| hidden(s))) => {
                retain_subs(map, key, attr, |_| true, false);
            }
            Keep::All => {}
            Keep::None => {
                map.remove(key);
            }
            Keep::Only(subs) => retain_subs(map, key, attr, |s| subs.iter().any(|n| n == s), true),
            Keep::AllBut(subs) => {
                retain_subs(map, key, attr, |s| !subs.iter().any(|n| n == s), false);
            }
        }
    }
}

fn hidden(a: &Attribute) -> bool {
    matches!(a.returned, Returned::Never | Returned::Request)
}

enum Keep {
    All,
    None,
    Only(Vec<String>),
    AllBut(Vec<String>),
}

/// Keeps the sub-attributes of `map[key]` that `want` accepts (given the lowercased name),
/// plus `always` ones; `never` ones go, and `request` ones stay only when `named` (listed in
/// `attributes`). Drops values, and then the attribute, left empty. Without `attr` (an
/// undeclared attribute) every key is a `default` sub-attribute.
fn retain_subs(
    map: &mut Map<String, Value>,
    key: &str,
    attr: Option<&Attribute>,
    want: impl Fn(&str) -> bool,
    named: bool,
) {
    let keep = |obj: &mut Map<String, Value>| {
        obj.retain(|k, _| match attr {
            Some(attr) => attr.sub(k).is_some_and(|s| match s.returned {
                Returned::Always => true,
                Returned::Never => false,
                Returned::Default => want(&s.name.to_ascii_lowercase()),
                Returned::Request => named && want(&s.name.to_ascii_lowercase()),
            }),
            None => want(&k.to_ascii_lowercase()),
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
    use crate::scim::registry::Declared;
    use crate::scim::schema::{ENTERPRISE_USER_URN, Kind};
    use serde_json::json;
    use std::sync::Arc;

    const ACME: &str = "urn:acme:2.0:User";
    const OTHER: &str = "urn:other:2.0:User";

    /// `urn:acme:2.0:User` declared: `badge` (default), `secret` (never), `pin` (request),
    /// `keys` with a `request` sub-attribute `comment`.
    fn registry() -> Registry {
        Registry::new(vec![Declared {
            schema: Schema {
                id: ACME.into(),
                name: "Acme".into(),
                description: String::new(),
                attributes: vec![
                    Arc::new(Attribute::string("badge", "")),
                    Arc::new(Attribute::string("secret", "").returned(Returned::Never)),
                    Arc::new(Attribute::new("pin", Kind::Integer, "").returned(Returned::Request)),
                    Arc::new(
                        Attribute::complex(
                            "keys",
                            "",
                            vec![
                                Attribute::string("value", ""),
                                Attribute::string("comment", "").returned(Returned::Request),
                            ],
                        )
                        .multi(),
                    ),
                ],
            },
            resource: ResourceKind::User,
            required: false,
        }])
    }

    fn custom() -> Value {
        let mut u = user();
        u[ACME] = json!({"badge": "42", "secret": "s", "pin": 7,
                         "keys": [{"value": "k1", "comment": "laptop"}]});
        u[OTHER] = json!({"shell": "/bin/sh", "ids": {"uid": 1, "gid": 2}});
        u
    }

    fn project_custom(attrs: Option<&str>, excluded: Option<&str>) -> Value {
        let mut u = custom();
        let r = registry();
        Projection::new(attrs, excluded, ResourceKind::User, &r).apply(
            &mut u,
            ResourceKind::User,
            &r,
        );
        u
    }

    #[test]
    fn declared_returned_rules_apply_without_any_list() {
        let r = registry();
        let p = Projection::new(None, None, ResourceKind::User, &r);
        assert!(!p.is_identity());
        assert!(
            Projection::new(None, None, ResourceKind::User, &Registry::builtin()).is_identity()
        );
        let v = project_custom(None, None);
        assert_eq!(v[ACME], json!({"badge": "42", "keys": [{"value": "k1"}]}));
        assert_eq!(v[OTHER], custom()[OTHER]);
    }

    #[test]
    fn declared_request_attributes_come_when_named() {
        let v = project_custom(
            Some(&format!("{ACME}:pin,{ACME}:keys.comment,{ACME}:secret")),
            None,
        );
        assert_eq!(v[ACME], json!({"pin": 7, "keys": [{"comment": "laptop"}]}));
        assert!(v.get(OTHER).is_none() && v.get("userName").is_none());
        let v = project_custom(Some(&ACME.to_uppercase()), None);
        assert_eq!(v[ACME], json!({"badge": "42", "keys": [{"value": "k1"}]}));
    }

    #[test]
    fn undeclared_blocks_by_urn_and_attribute() {
        let v = project_custom(Some(&format!("userName,{OTHER}:IDS.gid")), None);
        assert_eq!(v[OTHER], json!({"ids": {"gid": 2}}));
        assert!(v.get(ACME).is_none());
        let v = project_custom(Some(&OTHER.to_uppercase()), None);
        assert_eq!(v[OTHER], custom()[OTHER]);
        let v = project_custom(None, Some(&format!("{OTHER}:shell")));
        assert_eq!(v[OTHER], json!({"ids": {"uid": 1, "gid": 2}}));
        let v = project_custom(None, Some(OTHER));
        assert!(v.get(OTHER).is_none());
        assert_eq!(v["userName"], "ana");
        // A prefix of a URN names nothing.
        let v = project_custom(None, Some("urn:other:2.0"));
        assert_eq!(v[OTHER], custom()[OTHER]);
    }

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
        let r = Registry::builtin();
        Projection::new(attrs, excluded, ResourceKind::User, &r).apply(
            &mut u,
            ResourceKind::User,
            &r,
        );
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
        let p = |a: Option<&str>, e: Option<&str>| {
            Projection::new(a, e, ResourceKind::Group, &Registry::builtin())
        };
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
        let r = Registry::builtin();
        let p = Projection::new(None, Some("members"), ResourceKind::Group, &r);
        p.apply(&mut g, ResourceKind::Group, &r);
        assert_eq!(g, json!({"schemas": [], "id": "g", "displayName": "G"}));
    }
}
