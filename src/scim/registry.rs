//! The set of schemas the server holds (RFC 7643 §3.3, §7): the built-in core User, Enterprise
//! User and core Group, plus the extension schemas an administrator declared. Validation,
//! filters, sorting, projection, PATCH, rendering and discovery read the shape of a resource
//! from one `Registry` snapshot per request, so what `/Schemas` advertises is what they enforce.
//!
//! Pure data; no I/O. The store loads declarations and hands out snapshots.

use std::sync::Arc;

use super::resource::ResourceKind;
use super::schema::{ENTERPRISE_USER, GROUP, Schema, USER};

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

/// The schemas in force: built-ins first, then declarations in the order given.
#[derive(Debug, Clone)]
pub struct Registry {
    user: Arc<Schema>,
    group: Arc<Schema>,
    user_extensions: Vec<Extension>,
    group_extensions: Vec<Extension>,
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
        }
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

    /// The schema whose URN is `id`, compared case-insensitively (RFC 7643 §2.1).
    pub fn find(&self, id: &str) -> Option<&Arc<Schema>> {
        self.schemas().find(|s| s.id.eq_ignore_ascii_case(id))
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
}
