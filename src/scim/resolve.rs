//! Filters resolved against the schema (RFC 7644 §3.4.2.2): every attribute path is bound to
//! its definition and every comparison is type-checked, once, before anything runs it. The
//! SQL translator (`store::query`) and the in-memory evaluator (`scim::eval`) both consume this
//! form, so they agree on what a filter means; where they could not, the filter is refused
//! here with `invalidFilter`.
//!
//! Meaning, in one place:
//! - Names are case-insensitive; a core-schema URN prefix may be written or left out; an
//!   extension attribute must carry its URN (`urn:…:enterprise:2.0:User:department`), and
//!   binds to the request's `Registry`. An undeclared extension's attribute (`Origin::
//!   Undeclared`) is named exactly as stored and compares its values by their JSON type;
//!   its sub-attributes (`attr.sub`, one level) are read from its object or from each object
//!   of its list, and a value filter `attr[…]` tests each of those objects.
//! - A complex multi-valued attribute compared without a sub-attribute (`emails co "x"`)
//!   compares its `value` sub-attribute. A singular complex attribute can only be tested
//!   with `pr`.
//! - A comparison on a multi-valued attribute holds if it holds for any of its values.
//! - `ne` is the negation of `eq`: it holds when no value equals (also when there is none).
//! - Strings compare case-insensitively unless the attribute is `caseExact` (RFC 7643 §2.2),
//!   through `ident::fold` (NFKC and full case folding). The identifiers `userName` and group
//!   `displayName` compare by their uniqueness key (`ident::key`, also trimmed): `eq` finds
//!   exactly the resource that name would collide with; for `co`/`sw`/`ew` the operand is
//!   folded but not trimmed.
//!   `co`, `sw`, `ew` need a string attribute; `gt`/`ge`/`lt`/`le` order strings by code point
//!   and dateTimes by time; booleans and binary values support only `eq`, `ne` and `pr`.
//! - `null` is not a comparison value: `pr` and `not (… pr)` test presence.
//! - Write-only attributes (`password`) can't be filtered on, nor what scimd derives from the
//!   request's URL (`meta.location`, `$ref`) or renders from a counter (`meta.version`).
//! - A user's `groups` supports `pr` and `groups.value eq`/`ne` (direct or indirect member).
//!
//! Pure: no I/O.

use std::sync::Arc;

use super::filter::{AttrPath, CompValue, CompareOp, Filter};
use super::ident::{self, fold};

use super::registry::Registry;
use super::resource::ResourceKind;
use super::schema::{self, Attribute, Kind, Mutability, Returned};
use super::time;
use crate::error::{Error, Result};

/// Where an attribute lives in a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A common attribute (RFC 7643 §3.1): `id`, `externalId`, `meta`.
    Common,
    /// The resource's core schema.
    Core,
    /// An extension schema, keyed by its URN (as declared) in the resource.
    Extension(Arc<str>),
    /// An undeclared extension (design brief §5), keyed by its URN as stored. Its attributes
    /// have no schema: `attr` is a stand-in string attribute, and values compare as what
    /// they are in the document (strings case-insensitively, numbers, booleans).
    Undeclared(Arc<str>),
}

/// An attribute path bound to its definitions (owned: they come from the request's
/// `Registry` snapshot, not from statics).
#[derive(Debug, Clone)]
pub struct Target {
    pub origin: Origin,
    pub attr: Arc<Attribute>,
    pub sub: Option<Arc<Attribute>>,
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin
            && self.attr.name == other.attr.name
            && self.sub.as_ref().map(|s| &s.name) == other.sub.as_ref().map(|s| &s.name)
    }
}

impl Target {
    /// The attribute whose values are compared: the sub-attribute if there is one.
    pub fn leaf(&self) -> &Attribute {
        self.sub.as_deref().unwrap_or(&self.attr)
    }
}

/// A comparison value, already in the form the comparison uses: strings folded when the
/// attribute is case-insensitive, dateTimes normalised to scimd's stored format.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Str(String),
    Bool(bool),
    Num(f64),
}

/// A filter whose paths are bound and whose comparisons are type-checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    And(Box<Resolved>, Box<Resolved>),
    Or(Box<Resolved>, Box<Resolved>),
    Not(Box<Resolved>),
    Present(Target),
    Compare(Target, CompareOp, Operand),
    /// Some value of the multi-valued complex attribute `target.attr` (with `sub` unset)
    /// satisfies the inner filter, whose targets all have `attr` = that attribute and a `sub`.
    ValuePath(Target, Box<Resolved>),
}

fn refuse(msg: impl Into<String>) -> Error {
    Error::InvalidFilter(msg.into())
}

/// The attribute `name` of `attrs`, compared case-insensitively, as a shared handle.
pub fn find(attrs: &[Arc<Attribute>], name: &str) -> Option<Arc<Attribute>> {
    attrs
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .cloned()
}

/// Binds `path` (outside a value filter) for resources of `kind`, against the `registry`.
pub fn bind(path: &AttrPath, kind: ResourceKind, registry: &Registry) -> Result<Target> {
    let core = registry.core(kind);
    let in_core = path
        .urn
        .as_ref()
        .is_none_or(|urn| urn.eq_ignore_ascii_case(core.id.as_str()));
    let (origin, attr) = if in_core {
        match find(&schema::COMMON, &path.attr) {
            Some(a) => (Origin::Common, a),
            None => (
                Origin::Core,
                find(&core.attributes, &path.attr).ok_or_else(|| unknown(path, kind))?,
            ),
        }
    } else {
        let urn = path.urn.as_deref().unwrap_or_default();
        let Some(ext) = registry
            .extensions(kind)
            .iter()
            .find(|e| e.schema.id.eq_ignore_ascii_case(urn))
        else {
            return undeclared(path, urn, kind, registry);
        };
        (
            Origin::Extension(Arc::from(ext.schema.id.as_str())),
            find(&ext.schema.attributes, &path.attr).ok_or_else(|| unknown(path, kind))?,
        )
    };
    let sub = match &path.sub_attr {
        None => None,
        Some(s) => Some(sub_of(&attr, s, path)?),
    };
    Ok(Target { origin, attr, sub })
}

/// `<URN>:<attr>[.sub]` of an undeclared extension: named exactly as stored (no schema says
/// how else it may be spelled). A sub-attribute is read from the attribute's object, or from
/// each object of its list; one level only, as a schema has.
fn undeclared(
    path: &AttrPath,
    urn: &str,
    kind: ResourceKind,
    registry: &Registry,
) -> Result<Target> {
    if registry.find(urn).is_some() {
        return Err(refuse(format!(
            "\"{urn}\" is not a schema of {}",
            kind.name()
        )));
    }
    // The names go into a JSON path (`$."urn"."attr"."sub"`), where a `"` cannot be written.
    let names = [
        Some(urn),
        Some(path.attr.as_str()),
        path.sub_attr.as_deref(),
    ];
    if names.into_iter().flatten().any(|n| n.contains('"')) {
        return Err(refuse(format!("\"{path}\" cannot be filtered on")));
    }
    Ok(Target {
        origin: Origin::Undeclared(Arc::from(urn)),
        attr: Arc::new(Attribute::string(&path.attr, "")),
        sub: path
            .sub_attr
            .as_deref()
            .map(|s| Arc::new(Attribute::string(s, ""))),
    })
}

fn is_undeclared(t: &Target) -> bool {
    matches!(t.origin, Origin::Undeclared(_))
}

fn sub_of(attr: &Attribute, name: &str, path: &AttrPath) -> Result<Arc<Attribute>> {
    if attr.kind != Kind::Complex {
        return Err(refuse(format!(
            "\"{}\" has no sub-attributes (in \"{path}\")",
            attr.name
        )));
    }
    find(&attr.sub_attributes, name)
        .ok_or_else(|| refuse(format!("\"{}\" has no sub-attribute \"{name}\"", attr.name)))
}

fn unknown(path: &AttrPath, kind: ResourceKind) -> Error {
    refuse(format!("unknown attribute \"{path}\" for {}", kind.name()))
}

/// Checks a target can be filtered on at all.
fn filterable(t: &Target) -> Result<()> {
    let leaf = t.leaf();
    let derived = leaf.name == "$ref"
        || (t.origin == Origin::Common && matches!(leaf.name.as_str(), "location" | "version"))
        || (t.attr.name == "members" && leaf.name == "display");
    if leaf.mutability == Mutability::WriteOnly || leaf.returned == Returned::Never || derived {
        return Err(refuse(format!("\"{}\" cannot be filtered on", leaf.name)));
    }
    Ok(())
}

/// A user's `groups` is computed from memberships; scimd filters it by group id only.
fn is_user_groups(t: &Target) -> bool {
    t.origin == Origin::Core && t.attr.name == "groups"
}

fn groups_refused() -> Error {
    refuse("a user's groups can be filtered with \"groups pr\" or \"groups.value eq\" (or ne)")
}

/// A comparison target: a complex multi-valued attribute without a sub-attribute compares its
/// `value`; other complex values can't be compared.
fn comparable(mut t: Target) -> Result<Target> {
    if t.sub.is_none() && t.attr.kind == Kind::Complex {
        match (t.attr.multi_valued, find(&t.attr.sub_attributes, "value")) {
            (true, Some(value)) => t.sub = Some(value),
            _ => {
                return Err(refuse(format!(
                    "\"{}\" is complex: compare one of its sub-attributes, or test it with pr",
                    t.attr.name
                )));
            }
        }
    }
    Ok(t)
}

/// Type-checks `op value` against the leaf attribute and converts the value.
fn operand(t: &Target, op: CompareOp, value: &CompValue) -> Result<Operand> {
    let leaf = t.leaf();
    let name = &leaf.name;
    let ordering = matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    );
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    if let Origin::Undeclared(_) = t.origin {
        // No schema: the operand's own type says how to compare.
        return match value {
            CompValue::String(s) => Ok(Operand::Str(fold(s))),
            CompValue::Number(n) if !substring => n
                .as_f64()
                .map(Operand::Num)
                .ok_or_else(|| refuse(format!("{n} is not a usable number"))),
            CompValue::Bool(b) if !ordering && !substring => Ok(Operand::Bool(*b)),
            CompValue::Null => Err(refuse(format!(
                "\"{name}\" cannot be compared with null; use \"pr\""
            ))),
            _ => Err(refuse(format!(
                "co, sw and ew compare strings; gt, ge, lt and le strings or numbers (for \"{name}\")"
            ))),
        };
    }
    match (leaf.kind, value) {
        (_, CompValue::Null) => Err(refuse(format!(
            "\"{name}\" cannot be compared with null; use \"{name} pr\" or \"not ({name} pr)\""
        ))),
        (Kind::Boolean, CompValue::Bool(b)) if !ordering && !substring => Ok(Operand::Bool(*b)),
        (Kind::Boolean, _) => Err(refuse(format!(
            "\"{name}\" is a boolean: use eq or ne with true or false"
        ))),
        (Kind::Binary, CompValue::String(s)) if !ordering && !substring => {
            Ok(Operand::Str(s.clone()))
        }
        (Kind::Binary, _) => Err(refuse(format!(
            "\"{name}\" is binary: use eq or ne with a string"
        ))),
        (Kind::DateTime, CompValue::String(s)) if !substring => time::parse(s)
            .map(|t| Operand::Str(time::format(t)))
            .ok_or_else(|| {
                refuse(format!(
                    "\"{s}\" is not an RFC 3339 date-time (for \"{name}\")"
                ))
            }),
        (Kind::DateTime, _) => Err(refuse(format!(
            "\"{name}\" is a date-time: compare it with eq, ne, gt, ge, lt or le and a date-time string"
        ))),
        (Kind::Integer | Kind::Decimal, CompValue::Number(n)) if !substring => n
            .as_f64()
            .map(Operand::Num)
            .ok_or_else(|| refuse(format!("{n} is not a usable number"))),
        (Kind::Integer | Kind::Decimal, _) => Err(refuse(format!(
            "\"{name}\" is a number: compare it with a number, without co, sw or ew"
        ))),
        (Kind::String | Kind::Reference, CompValue::String(s)) => {
            Ok(Operand::Str(if leaf.case_exact {
                s.clone()
            } else if ident::is_identifier(leaf) && !substring {
                ident::key(s)
            } else {
                fold(s)
            }))
        }
        (Kind::String | Kind::Reference, _) => Err(refuse(format!(
            "\"{name}\" is a string: compare it with a quoted string"
        ))),
        (Kind::Complex, _) => Err(refuse(format!("\"{name}\" is complex"))),
    }
}

/// Whether comparisons on `leaf` fold case: strings (and references) that are not caseExact.
pub fn folds(leaf: &Attribute) -> bool {
    matches!(leaf.kind, Kind::String | Kind::Reference) && !leaf.case_exact
}

/// Resolves a `sortBy` path (RFC 7644 §3.4.2.3): a singular attribute or sub-attribute, or a
/// multi-valued one, which sorts by its primary (else first) value. Computed memberships
/// (`groups`, `members`) are not sortable.
pub fn resolve_sort(path: &AttrPath, kind: ResourceKind, registry: &Registry) -> Result<Target> {
    let invalid = |e: Error| Error::InvalidValue(format!("invalid sortBy: {}", e.detail()));
    // An undeclared extension's attribute sorts by its stored JSON value (`store::query`).
    let t = comparable(bind(path, kind, registry).map_err(invalid)?).map_err(invalid)?;
    filterable(&t).map_err(invalid)?;
    if matches!(t.attr.name.as_str(), "groups" | "members") && t.origin == Origin::Core {
        return Err(Error::InvalidValue(format!(
            "sortBy \"{path}\" is not supported: memberships have no order"
        )));
    }
    Ok(t)
}

/// Resolves `filter` for resources of `kind`, against the `registry`.
pub fn resolve(filter: &Filter, kind: ResourceKind, registry: &Registry) -> Result<Resolved> {
    let r = |f: &Filter| resolve(f, kind, registry).map(Box::new);
    Ok(match filter {
        Filter::And(a, b) => Resolved::And(r(a)?, r(b)?),
        Filter::Or(a, b) => Resolved::Or(r(a)?, r(b)?),
        Filter::Not(f) => Resolved::Not(r(f)?),
        Filter::Present(path) => {
            let t = bind(path, kind, registry)?;
            filterable(&t)?;
            if is_user_groups(&t) && t.sub.as_ref().is_some_and(|s| s.name != "value") {
                return Err(groups_refused());
            }
            Resolved::Present(t)
        }
        Filter::Compare(path, op, value) => {
            let t = comparable(bind(path, kind, registry)?)?;
            filterable(&t)?;
            if is_user_groups(&t)
                && (t.leaf().name != "value" || !matches!(op, CompareOp::Eq | CompareOp::Ne))
            {
                return Err(groups_refused());
            }
            let v = operand(&t, *op, value)?;
            Resolved::Compare(t, *op, v)
        }
        Filter::ValuePath(path, inner) => {
            let t = bind(path, kind, registry)?;
            if is_user_groups(&t) {
                return Err(groups_refused());
            }
            // An undeclared attribute may hold a list of objects (or one): its elements are
            // tested, those that are not objects never match.
            let listable = is_undeclared(&t) || t.attr.multi_valued && t.attr.kind == Kind::Complex;
            if t.sub.is_some() || !listable {
                return Err(refuse(format!(
                    "a value filter \"[…]\" needs a multi-valued complex attribute, not \"{path}\""
                )));
            }
            filterable(&t)?;
            let inner = resolve_inner(inner, &t)?;
            Resolved::ValuePath(t, Box::new(inner))
        }
    })
}

/// Resolves the filter inside `attr[…]`: its paths name sub-attributes of `outer.attr`.
fn resolve_inner(filter: &Filter, outer: &Target) -> Result<Resolved> {
    let bind_sub = |path: &AttrPath| -> Result<Target> {
        if path.urn.is_some() || path.sub_attr.is_some() {
            return Err(refuse(format!(
                "inside \"{}[…]\" name a sub-attribute of \"{}\", not \"{path}\"",
                outer.attr.name, outer.attr.name
            )));
        }
        let sub = if is_undeclared(outer) {
            if path.attr.contains('"') {
                return Err(refuse(format!("\"{path}\" cannot be filtered on")));
            }
            Arc::new(Attribute::string(&path.attr, ""))
        } else {
            sub_of(&outer.attr, &path.attr, path)?
        };
        let t = Target {
            sub: Some(sub),
            ..outer.clone()
        };
        filterable(&t)?;
        Ok(t)
    };
    Ok(match filter {
        Filter::And(a, b) => Resolved::And(
            Box::new(resolve_inner(a, outer)?),
            Box::new(resolve_inner(b, outer)?),
        ),
        Filter::Or(a, b) => Resolved::Or(
            Box::new(resolve_inner(a, outer)?),
            Box::new(resolve_inner(b, outer)?),
        ),
        Filter::Not(f) => Resolved::Not(Box::new(resolve_inner(f, outer)?)),
        Filter::Present(path) => Resolved::Present(bind_sub(path)?),
        Filter::Compare(path, op, value) => {
            let t = bind_sub(path)?;
            let operand = operand(&t, *op, value)?;
            Resolved::Compare(t, *op, operand)
        }
        Filter::ValuePath(..) => return Err(refuse("value filters cannot be nested")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::{parse, parse_path};

    fn user(f: &str) -> Result<Resolved> {
        resolve(&parse(f).unwrap(), ResourceKind::User, &Registry::builtin())
    }

    fn refused(f: &str, kind: ResourceKind) -> String {
        match resolve(&parse(f).unwrap(), kind, &Registry::builtin()) {
            Err(Error::InvalidFilter(m)) => m,
            other => panic!("{f}: expected invalidFilter, got {other:?}"),
        }
    }

    fn compare(r: &Resolved) -> (&Target, CompareOp, &Operand) {
        match r {
            Resolved::Compare(t, op, v) => (t, *op, v),
            other => panic!("not a comparison: {other:?}"),
        }
    }

    #[test]
    fn binds_core_common_extension_and_sub_attributes() {
        let r = user("USERNAME eq \"Ana\"").unwrap();
        let (t, _, v) = compare(&r);
        assert_eq!(
            (
                t.origin.clone(),
                t.attr.name.as_str(),
                t.sub.as_ref().map(|s| s.name.as_str())
            ),
            (Origin::Core, "userName", None)
        );
        assert_eq!(v, &Operand::Str("ana".into()), "caseExact=false folds");

        let r = user("externalId eq \"AbC\"").unwrap();
        let (t, _, v) = compare(&r);
        assert_eq!(t.origin, Origin::Common);
        assert_eq!(v, &Operand::Str("AbC".into()), "caseExact keeps case");

        let r =
            user("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName sw \"J\"").unwrap();
        assert_eq!(compare(&r).0.leaf().name, "familyName");

        let r = user(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m\"",
        )
        .unwrap();
        let (t, _, _) = compare(&r);
        assert_eq!(
            t.origin,
            Origin::Extension(schema::ENTERPRISE_USER_URN.into())
        );
        assert_eq!(t.leaf().name, "value");

        let r = user("meta.lastModified gt \"2026-01-01T00:00:00+01:00\"").unwrap();
        assert_eq!(
            compare(&r).2,
            &Operand::Str("2025-12-31T23:00:00.000Z".into())
        );
    }

    #[test]
    fn multi_valued_complex_without_sub_compares_value() {
        let r = user("emails co \"example\"").unwrap();
        assert_eq!(compare(&r).0.leaf().name, "value");
        let r = user("emails pr").unwrap();
        assert!(matches!(r, Resolved::Present(t) if t.sub.is_none()));
    }

    #[test]
    fn value_paths_bind_their_inner_paths_to_sub_attributes() {
        let r = user("emails[type eq \"work\" and not (primary eq false)]").unwrap();
        let Resolved::ValuePath(outer, inner) = r else {
            panic!()
        };
        assert_eq!(outer.attr.name, "emails");
        let Resolved::And(a, b) = *inner else {
            panic!()
        };
        assert_eq!(compare(&a).0.leaf().name, "type");
        assert!(matches!(*b, Resolved::Not(_)));
    }

    #[test]
    fn type_errors_are_invalid_filter() {
        let k = ResourceKind::User;
        for f in [
            "active eq \"true\"",
            "active co \"t\"",
            "active gt true",
            "userName eq true",
            "userName eq 1",
            "userName eq null",
            "meta.created co \"2026\"",
            "meta.created gt \"yesterday\"",
            "x509Certificates.value gt \"a\"",
            "name eq \"x\"",
            "password eq \"x\"",
            "password pr",
            "nosuch pr",
            "name.nosuch pr",
            "userName.sub pr",
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName pr",
            "urn:nope:Thing:attr co 1",
            "urn:nope:Thing:attr gt true",
            "urn:nope:Thing:attr eq null",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch pr",
            "emails[type eq \"work\"].nosuch eq \"x\"",
            "name[givenName eq \"x\"]",
            "userName[value eq \"x\"]",
            "emails[urn:x:y eq \"x\"]",
            "meta.location eq \"x\"",
            "meta.version pr",
            "groups.display eq \"x\"",
            "groups.value co \"x\"",
            "groups[value eq \"x\"]",
            "groups.type pr",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref pr",
        ] {
            refused(f, k);
        }
        refused("userName eq \"x\"", ResourceKind::Group);
        refused(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr",
            ResourceKind::Group,
        );
    }

    #[test]
    fn undeclared_sub_attributes_and_value_filters_bind_untyped() {
        let r = user("urn:nope:2.0:User:manager.value eq \"Ana\"").unwrap();
        let (t, _, v) = compare(&r);
        assert_eq!(t.origin, Origin::Undeclared("urn:nope:2.0:User".into()));
        assert_eq!(
            (t.attr.name.as_str(), t.leaf().name.as_str()),
            ("manager", "value")
        );
        assert_eq!(v, &Operand::Str("ana".into()));
        let r = user("urn:nope:2.0:User:keys[type eq \"ssh\" and value gt 3]").unwrap();
        let Resolved::ValuePath(outer, inner) = r else {
            panic!()
        };
        assert!(outer.sub.is_none());
        let Resolved::And(a, b) = *inner else {
            panic!()
        };
        assert_eq!(compare(&a).0.leaf().name, "type");
        assert_eq!(compare(&b).2, &Operand::Num(3.0));
        for f in [
            "urn:nope:2.0:User:keys[type co 1]",
            "urn:nope:2.0:User:keys[value eq null]",
            "urn:nope:2.0:User:keys[urn:x:y eq \"x\"]",
            "urn:nope:2.0:User:keys[type.x eq \"x\"]",
        ] {
            refused(f, ResourceKind::User);
        }
        let sort = parse_path("urn:nope:2.0:User:manager.value").unwrap();
        let t = resolve_sort(&sort, ResourceKind::User, &Registry::builtin()).unwrap();
        assert_eq!(t.leaf().name, "value");
    }

    #[test]
    fn groups_have_members_and_display_name() {
        let g = |f: &str| {
            resolve(
                &parse(f).unwrap(),
                ResourceKind::Group,
                &Registry::builtin(),
            )
        };
        assert!(g("members[value eq \"u\"]").is_ok());
        assert!(g("members.type eq \"User\"").is_ok());
        assert!(g("members.$ref pr").is_err());
        assert!(g("members.display pr").is_err());
        let u = |f: &str| resolve(&parse(f).unwrap(), ResourceKind::User, &Registry::builtin());
        assert!(u("groups pr").is_ok() && u("groups.value ne \"g\"").is_ok());
        let r = g("displayName eq \"Finance\"").unwrap();
        assert_eq!(compare(&r).2, &Operand::Str("finance".into()));
    }

    #[test]
    fn errors_name_the_attribute() {
        let m = refused("active co \"x\"", ResourceKind::User);
        assert!(m.contains("active"), "{m}");
        let m = refused("title eq null", ResourceKind::User);
        assert!(m.contains("title pr"), "{m}");
    }
}
