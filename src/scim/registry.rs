//! The set of schemas the server holds (RFC 7643 §3.3, §7): the built-in core User, Enterprise
//! User and core Group, plus the extension schemas an administrator declared. Validation,
//! filters, sorting, projection, PATCH, rendering and discovery read the shape of a resource
//! from one `Registry` snapshot per request, so what `/Schemas` advertises is what they enforce.
//!
//! Pure data; no I/O. The store loads declarations and hands out snapshots.

use std::sync::Arc;

use super::resource::ResourceKind;
use super::schema::{ENTERPRISE_USER, GROUP, Schema, USER};
use super::validate::{LEGACY_CORE_KEYS, LEGACY_ENTERPRISE_KEYS};

/// What a URN-looking member name of a resource body (or a PATCH path) refers to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyMatch<'r, 'k> {
    /// The core schema's URN (a block, `attr` = `None`) or `<core URN>:<attr>`.
    Core { attr: Option<&'k str> },
    /// A registered extension of the resource type: its block, or `<URN>:<attr>`.
    Extension {
        schema: &'r Arc<Schema>,
        attr: Option<&'k str>,
    },
    /// A schema the registry holds for the other resource type: never data of this one.
    Foreign,
    /// No schema the registry holds: an undeclared extension.
    Undeclared,
}

/// Whether `key` is `urn` (case-insensitively), or `urn` followed by `:` and the rest, which
/// is returned. `Some("")` means the key is exactly the URN.
fn strip_urn<'k>(key: &'k str, urn: &str) -> Option<&'k str> {
    let head = key.get(..urn.len())?;
    if !head.eq_ignore_ascii_case(urn) {
        return None;
    }
    let rest = &key[urn.len()..];
    if rest.is_empty() {
        Some("")
    } else {
        // A prefix counts only at a boundary: `urn:acme:User` never claims `urn:acme:UserX`.
        rest.strip_prefix(':').filter(|r| !r.is_empty())
    }
}

/// An extension schema an administrator declared for one resource type.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub schema: Schema,
    pub resource: ResourceKind,
    /// `schemaExtensions[].required` in `/ResourceTypes`: resources must carry the extension.
    pub required: bool,
}

/// One extension of a resource type, in `/ResourceTypes` order.
#[derive(Debug, Clone)]
pub struct Extension {
    pub schema: Arc<Schema>,
    pub required: bool,
}

/// A declared extension attribute whose values the store keeps in a side table, complete
/// (its backfill done), so filters may read it: `<urn>:<attr>[.<sub>]` of `resource`.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed {
    /// The side rows' `attr_id`.
    pub id: i64,
    pub resource: ResourceKind,
    pub urn: String,
    pub attr: String,
    pub sub: Option<String>,
}

/// The schemas in force: built-ins first, then declarations in the order given.
#[derive(Debug, Clone)]
pub struct Registry {
    user: Arc<Schema>,
    group: Arc<Schema>,
    user_extensions: Vec<Extension>,
    group_extensions: Vec<Extension>,
    indexed: Vec<Indexed>,
}

impl Registry {
    /// The built-in schemas only.
    pub fn builtin() -> Registry {
        Registry::new(Vec::new())
    }

    /// The built-ins plus `declared`. Declarations are checked when they are made (their URNs
    /// are unique and none is a built-in), so this only arranges them.
    pub fn new(declared: Vec<Declared>) -> Registry {
        let mut user_extensions = vec![Extension {
            schema: Arc::new(ENTERPRISE_USER.clone()),
            required: false,
        }];
        let mut group_extensions = Vec::new();
        for d in declared {
            let ext = Extension {
                schema: Arc::new(d.schema),
                required: d.required,
            };
            match d.resource {
                ResourceKind::User => user_extensions.push(ext),
                ResourceKind::Group => group_extensions.push(ext),
            }
        }
        Registry {
            user: Arc::new(USER.clone()),
            group: Arc::new(GROUP.clone()),
            user_extensions,
            group_extensions,
            indexed: Vec::new(),
        }
    }

    /// This registry, with filters reading the side rows of `indexed`.
    pub fn with_indexed(mut self, indexed: Vec<Indexed>) -> Registry {
        self.indexed = indexed;
        self
    }

    /// The side-table id of `<urn>:<attr>[.<sub>]` of `kind`, when it is indexed and ready
    /// (names compared case-insensitively).
    pub fn indexed(
        &self,
        kind: ResourceKind,
        urn: &str,
        attr: &str,
        sub: Option<&str>,
    ) -> Option<i64> {
        self.indexed
            .iter()
            .find(|i| {
                i.resource == kind
                    && i.urn.eq_ignore_ascii_case(urn)
                    && i.attr.eq_ignore_ascii_case(attr)
                    && match (&i.sub, sub) {
                        (None, None) => true,
                        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                        _ => false,
                    }
            })
            .map(|i| i.id)
    }

    /// The core schema of `kind`.
    pub fn core(&self, kind: ResourceKind) -> &Arc<Schema> {
        match kind {
            ResourceKind::User => &self.user,
            ResourceKind::Group => &self.group,
        }
    }

    /// The extension schemas of `kind`, the Enterprise User first for users.
    pub fn extensions(&self, kind: ResourceKind) -> &[Extension] {
        match kind {
            ResourceKind::User => &self.user_extensions,
            ResourceKind::Group => &self.group_extensions,
        }
    }

    /// Every schema, in `/Schemas` order: User, Group, then each type's extensions.
    pub fn schemas(&self) -> impl Iterator<Item = &Arc<Schema>> {
        [&self.user, &self.group]
            .into_iter()
            .chain(self.user_extensions.iter().map(|e| &e.schema))
            .chain(self.group_extensions.iter().map(|e| &e.schema))
    }

    /// What `key` names for a resource of `kind`: the registered schema with the longest URN
    /// that `key` equals or continues after a `:` (compared case-insensitively, RFC 7643
    /// §2.1), or one of the legacy keys OneLogin templates use for a block. Never split
    /// syntactically: `…:2.0:User` stays whole (design brief §9).
    pub fn match_key<'k>(&self, kind: ResourceKind, key: &'k str) -> KeyMatch<'_, 'k> {
        let attr = |rest: &'k str| (!rest.is_empty()).then_some(rest);
        if kind == ResourceKind::User {
            if LEGACY_CORE_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                return KeyMatch::Core { attr: None };
            }
            if LEGACY_ENTERPRISE_KEYS
                .iter()
                .any(|k| k.eq_ignore_ascii_case(key))
            {
                return KeyMatch::Extension {
                    schema: &self.user_extensions[0].schema,
                    attr: None,
                };
            }
        }
        let other = match kind {
            ResourceKind::User => ResourceKind::Group,
            ResourceKind::Group => ResourceKind::User,
        };
        // (schema, whether it is this type's core, whether it belongs to this type)
        let own = std::iter::once((self.core(kind), true, true)).chain(
            self.extensions(kind)
                .iter()
                .map(|e| (&e.schema, false, true)),
        );
        let foreign = std::iter::once((self.core(other), true, false)).chain(
            self.extensions(other)
                .iter()
                .map(|e| (&e.schema, false, false)),
        );
        let mut best: Option<(usize, KeyMatch<'_, 'k>)> = None;
        for (schema, is_core, is_own) in own.chain(foreign) {
            let Some(rest) = strip_urn(key, &schema.id) else {
                continue;
            };
            if best
                .as_ref()
                .is_some_and(|(len, _)| *len >= schema.id.len())
            {
                continue;
            }
            let attr = attr(rest);
            let m = match (is_own, is_core) {
                (false, _) => KeyMatch::Foreign,
                (true, true) => KeyMatch::Core { attr },
                (true, false) => KeyMatch::Extension { schema, attr },
            };
            best = Some((schema.id.len(), m));
        }
        best.map_or(KeyMatch::Undeclared, |(_, m)| m)
    }

    /// The schema whose URN is `id`, compared case-insensitively (RFC 7643 §2.1).
    pub fn find(&self, id: &str) -> Option<&Arc<Schema>> {
        self.schemas().find(|s| s.id.eq_ignore_ascii_case(id))
    }
}

/// Registries for the tests of the modules that read one.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::scim::schema::{Attribute, Kind, Mutability};

    pub const ACME: &str = "urn:acme:2.0:User";

    /// A registry with `urn:acme:2.0:User` declared for users (typed attributes) and
    /// `urn:acme:2.0:Group` for groups.
    pub fn acme() -> Registry {
        let user = Schema {
            id: ACME.into(),
            name: "Acme".into(),
            description: String::new(),
            attributes: vec![
                Arc::new(Attribute::string("badgeNumber", "")),
                Arc::new(Attribute::new("uid", Kind::Integer, "")),
                Arc::new(Attribute::boolean("vip", "")),
                Arc::new(Attribute::string("serial", "").mutability(Mutability::ReadOnly)),
                Arc::new(
                    Attribute::complex(
                        "keys",
                        "",
                        vec![
                            Attribute::string("value", ""),
                            Attribute::string("type", ""),
                        ],
                    )
                    .multi(),
                ),
            ],
        };
        let group = Schema {
            id: "urn:acme:2.0:Group".into(),
            name: "AcmeGroup".into(),
            description: String::new(),
            attributes: vec![Arc::new(Attribute::string("costCenter", ""))],
        };
        Registry::new(vec![
            Declared {
                schema: user,
                resource: ResourceKind::User,
                required: false,
            },
            Declared {
                schema: group,
                resource: ResourceKind::Group,
                required: false,
            },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{Attribute, ENTERPRISE_USER_URN, GROUP_URN, USER_URN};

    fn declared(id: &str, resource: ResourceKind) -> Declared {
        Declared {
            schema: Schema {
                id: id.into(),
                name: "Acme".into(),
                description: String::new(),
                attributes: vec![Arc::new(Attribute::string("badgeNumber", ""))],
            },
            resource,
            required: false,
        }
    }

    #[test]
    fn builtins_come_first_and_declarations_join_their_resource_type() {
        let r = Registry::new(vec![
            declared("urn:acme:2.0:User", ResourceKind::User),
            declared("urn:acme:2.0:Group", ResourceKind::Group),
        ]);
        let ids: Vec<&str> = r.schemas().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                USER_URN,
                GROUP_URN,
                ENTERPRISE_USER_URN,
                "urn:acme:2.0:User",
                "urn:acme:2.0:Group"
            ]
        );
        assert_eq!(r.extensions(ResourceKind::Group).len(), 1);
        assert_eq!(r.core(ResourceKind::Group).id, GROUP_URN);
        assert_eq!(
            r.find("URN:ACME:2.0:USER").map(|s| s.id.as_str()),
            Some("urn:acme:2.0:User")
        );
        assert!(Registry::builtin().find("urn:acme:2.0:User").is_none());
    }

    #[test]
    fn keys_match_the_longest_urn_at_a_boundary_in_any_case() {
        let r = Registry::new(vec![
            declared("urn:acme:2.0:User", ResourceKind::User),
            declared("urn:acme:2.0:User:v2", ResourceKind::User),
            declared("urn:acme:2.0:Group", ResourceKind::Group),
        ]);
        let ext = |key: &str| match r.match_key(ResourceKind::User, key) {
            KeyMatch::Extension { schema, attr } => {
                Some((schema.id.clone(), attr.map(String::from)))
            }
            _ => None,
        };
        assert_eq!(
            ext("URN:ACME:2.0:user"),
            Some(("urn:acme:2.0:User".into(), None))
        );
        assert_eq!(
            ext("urn:acme:2.0:User:badgeNumber"),
            Some(("urn:acme:2.0:User".into(), Some("badgeNumber".into())))
        );
        assert_eq!(
            ext("urn:acme:2.0:User:v2:x"),
            Some(("urn:acme:2.0:User:v2".into(), Some("x".into())))
        );
        assert_eq!(
            r.match_key(ResourceKind::User, "urn:acme:2.0:UserX"),
            KeyMatch::Undeclared
        );
        assert_eq!(
            r.match_key(ResourceKind::User, "urn:acme:2.0:User:"),
            KeyMatch::Undeclared
        );
        assert_eq!(
            r.match_key(ResourceKind::User, "urn:acme:2.0:Group"),
            KeyMatch::Foreign
        );
        assert_eq!(
            r.match_key(ResourceKind::User, &format!("{USER_URN}:name.givenName")),
            KeyMatch::Core {
                attr: Some("name.givenName")
            }
        );
        assert_eq!(
            r.match_key(ResourceKind::User, "urn:scim:schemas:core:1.0"),
            KeyMatch::Core { attr: None }
        );
        assert_eq!(
            ext("urn:scim:schemas:extension:enterprise:1.0"),
            Some((ENTERPRISE_USER_URN.into(), None))
        );
        assert_eq!(
            r.match_key(ResourceKind::Group, GROUP_URN),
            KeyMatch::Core { attr: None }
        );
    }
}
