//! Extension schemas an administrator declares: an RFC 7643 §7 schema document checked and
//! turned into a `Declared`, the normalised document stored for it, and a draft document
//! inferred from the values an undeclared extension holds (the console's "Declare" action).
//!
//! Strict on purpose: an unknown key or a misspelt characteristic is an error rather than a
//! silent default (`"uniquness": "server"` must not declare a non-unique attribute). Every
//! error is `invalidValue` naming the attribute (`invalidSyntax` for a document that is not
//! JSON). Bounded in bytes, attributes and name lengths. Pure; no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::registry::Declared;
use super::resource::ResourceKind;
use super::schema::{
    Attribute, ENTERPRISE_USER_URN, GROUP_URN, Kind, Mutability, Returned, SCHEMA_URN, Schema,
    USER_URN, Uniqueness, schema_json,
};
use crate::error::{Error, Result};

/// Largest schema document, in bytes.
pub const MAX_DOCUMENT: usize = 64 * 1024;
/// Most attributes in one schema.
pub const MAX_ATTRIBUTES: usize = 100;
/// Most sub-attributes of one complex attribute.
pub const MAX_SUB_ATTRIBUTES: usize = 50;
/// Longest attribute name, in bytes.
pub const MAX_NAME: usize = 64;
/// Longest schema id, in bytes.
pub const MAX_ID: usize = 256;
/// Most `canonicalValues` or `referenceTypes` of one attribute.
pub const MAX_VALUES: usize = 100;

/// URN prefixes RFC 7643/7644 reserve for the protocol's own schemas and messages.
const RESERVED_PREFIXES: [&str; 2] = [
    "urn:ietf:params:scim:schemas:core:",
    "urn:ietf:params:scim:api:",
];

/// Parses the text of a schema document (as uploaded or read from a file).
pub fn parse_text(text: &str, resource: ResourceKind, required: bool) -> Result<Declared> {
    if text.len() > MAX_DOCUMENT {
        return Err(Error::InvalidValue(format!(
            "the schema document is larger than {MAX_DOCUMENT} bytes"
        )));
    }
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| Error::InvalidSyntax(format!("the schema document is not JSON: {e}")))?;
    parse(&doc, resource, required)
}

/// Checks an RFC 7643 §7 schema document and makes the declaration it describes; unset
/// characteristics take the RFC 7643 §2.2 defaults.
pub fn parse(doc: &Value, resource: ResourceKind, required: bool) -> Result<Declared> {
    let size = serde_json::to_vec(doc).map_err(Error::internal)?.len();
    if size > MAX_DOCUMENT {
        return Err(Error::InvalidValue(format!(
            "the schema document is larger than {MAX_DOCUMENT} bytes"
        )));
    }
    let obj = doc
        .as_object()
        .ok_or_else(|| Error::InvalidValue("a schema document is a JSON object".into()))?;
    for key in obj.keys() {
        if !["schemas", "id", "name", "description", "attributes", "meta"].contains(&key.as_str()) {
            return Err(Error::InvalidValue(format!(
                "unknown key \"{key}\" in the schema document (RFC 7643 §7 keys: id, name, \
                 description, attributes)"
            )));
        }
    }
    let id = match obj.get("id") {
        Some(Value::String(id)) => id.clone(),
        _ => {
            return Err(Error::InvalidValue(
                "the schema needs an \"id\" (its URI)".into(),
            ));
        }
    };
    check_id(&id)?;
    let name = optional_string(obj, "name", "the schema")?;
    let description = optional_string(obj, "description", "the schema")?;
    let list = match obj.get("attributes") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => {
            return Err(Error::InvalidValue(
                "the schema needs \"attributes\": a non-empty array".into(),
            ));
        }
    };
    let attributes = attribute_list(list, None, MAX_ATTRIBUTES)?;
    Ok(Declared {
        schema: Schema {
            id,
            name,
            description,
            attributes,
        },
        resource,
        required,
    })
}

/// The normalised document of `schema`: what is stored for a declaration and what `/Schemas`
/// shows for it (without `meta`), every characteristic spelled out.
pub fn document(schema: &Schema) -> Value {
    let mut v = schema_json(schema, "");
    if let Some(obj) = v.as_object_mut() {
        obj.remove("meta");
    }
    v
}

/// Whether two schema ids would claim each other's attributes: equal, or one is the other
/// followed by `:` (an attribute path), compared case-insensitively (RFC 7643 §2.1).
pub fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long == short
        || long
            .strip_prefix(&short)
            .is_some_and(|rest| rest.starts_with(':'))
}

/// Checks a schema id: an absolute URI (`urn:<nid>:<nss>` or `http(s)://host…`) that names
/// no schema of the protocol's own. Characters are limited to those that need no quoting in
/// a JSON path, a filter or a URL (RFC 3986 unreserved plus `:/%+=@,;`).
pub fn check_id(id: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidValue(format!("schema id \"{id}\": {why}")));
    if id.is_empty() || id.len() > MAX_ID {
        return bad(&format!("must be 1 to {MAX_ID} bytes"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~:/%+=@,;".contains(*c)))
    {
        return bad(&format!("the character {c:?} is not allowed"));
    }
    let lower = id.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("urn:") {
        let mut parts = rest.splitn(2, ':');
        let nid = parts.next().unwrap_or("");
        let nss = parts.next().unwrap_or("");
        let nid_ok = (1..=32).contains(&nid.len())
            && nid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !nid_ok || nss.is_empty() {
            return bad("a URN is urn:<namespace>:<name>");
        }
    } else if let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    {
        if rest.split('/').next().is_none_or(str::is_empty) {
            return bad("an http(s) URI needs a host");
        }
    } else {
        return bad("must be an absolute URI: urn:… or http(s)://…");
    }
    if id.ends_with(':') {
        return bad("must not end in ':'");
    }
    if RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
        || [USER_URN, ENTERPRISE_USER_URN, GROUP_URN, SCHEMA_URN]
            .iter()
            .any(|b| overlaps(id, b))
    {
        return bad("is (or overlaps) a schema built into scimd");
    }
    Ok(())
}

fn optional_string(obj: &Map<String, Value>, key: &str, what: &str) -> Result<String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Error::InvalidValue(format!(
            "{what}: \"{key}\" must be a string"
        ))),
    }
}

/// Whether `name` is an RFC 7643 §2.1 ATTRNAME (`ALPHA *(nameChar)`) or `$ref`.
pub fn is_attr_name(name: &str) -> bool {
    if name == "$ref" {
        return true;
    }
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= MAX_NAME
}

fn attribute_list(list: &[Value], parent: Option<&str>, max: usize) -> Result<Vec<Arc<Attribute>>> {
    let what = parent.map_or("the schema".to_string(), |p| format!("attribute \"{p}\""));
    if list.len() > max {
        return Err(Error::InvalidValue(format!(
            "{what} has {} attributes; at most {max}",
            list.len()
        )));
    }
    let mut out: Vec<Arc<Attribute>> = Vec::with_capacity(list.len());
    for v in list {
        let a = attribute(v, parent)?;
        if out.iter().any(|b| b.name.eq_ignore_ascii_case(&a.name)) {
            return Err(Error::InvalidValue(format!(
                "{what} names attribute \"{}\" twice (names are case-insensitive)",
                a.name
            )));
        }
        out.push(Arc::new(a));
    }
    Ok(out)
}

const ATTRIBUTE_KEYS: [&str; 12] = [
    "name",
    "type",
    "multiValued",
    "description",
    "required",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
    "canonicalValues",
    "referenceTypes",
    "subAttributes",
];

fn attribute(v: &Value, parent: Option<&str>) -> Result<Attribute> {
    let Some(obj) = v.as_object() else {
        return Err(Error::InvalidValue(format!(
            "{}: each attribute is a JSON object",
            parent.map_or("the schema".to_string(), |p| format!("attribute \"{p}\""))
        )));
    };
    let name = match obj.get("name") {
        Some(Value::String(n)) => n.clone(),
        _ => {
            return Err(Error::InvalidValue(format!(
                "an attribute{} has no \"name\"",
                parent.map_or(String::new(), |p| format!(" of \"{p}\""))
            )));
        }
    };
    let path = parent.map_or(name.clone(), |p| format!("{p}.{name}"));
    let err = |why: String| Error::InvalidValue(format!("attribute \"{path}\": {why}"));
    if !is_attr_name(&name) {
        return Err(err(format!(
            "a name starts with a letter and has only letters, digits, '-' and '_' (at most \
             {MAX_NAME} bytes)"
        )));
    }
    if let Some(key) = obj.keys().find(|k| !ATTRIBUTE_KEYS.contains(&k.as_str())) {
        return Err(err(format!("unknown characteristic \"{key}\"")));
    }
    let word =
        |key: &str, options: &[&'static str], default: &'static str| -> Result<&'static str> {
            match obj.get(key) {
                None => Ok(default),
                Some(Value::String(s)) => options
                    .iter()
                    .find(|o| **o == s)
                    .copied()
                    .ok_or_else(|| err(format!("\"{key}\" is one of {}", options.join(", ")))),
                Some(_) => Err(err(format!("\"{key}\" must be a string"))),
            }
        };
    let flag = |key: &str| -> Result<bool> {
        match obj.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(err(format!("\"{key}\" must be true or false"))),
        }
    };
    let strings = |key: &str| -> Result<Vec<String>> {
        match obj.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) if items.len() <= MAX_VALUES => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| err(format!("\"{key}\" must be an array of strings")))
                })
                .collect(),
            Some(_) => Err(err(format!(
                "\"{key}\" must be an array of at most {MAX_VALUES} strings"
            ))),
        }
    };
    let kind = match word(
        "type",
        &[
            "string",
            "boolean",
            "integer",
            "decimal",
            "dateTime",
            "reference",
            "binary",
            "complex",
        ],
        "string",
    )? {
        "boolean" => Kind::Boolean,
        "integer" => Kind::Integer,
        "decimal" => Kind::Decimal,
        "dateTime" => Kind::DateTime,
        "reference" => Kind::Reference,
        "binary" => Kind::Binary,
        "complex" => Kind::Complex,
        _ => Kind::String,
    };
    let mutability = match word(
        "mutability",
        &["readOnly", "readWrite", "immutable", "writeOnly"],
        "readWrite",
    )? {
        "readOnly" => Mutability::ReadOnly,
        "immutable" => Mutability::Immutable,
        "writeOnly" => Mutability::WriteOnly,
        _ => Mutability::ReadWrite,
    };
    let returned = match word(
        "returned",
        &["always", "never", "default", "request"],
        "default",
    )? {
        "always" => Returned::Always,
        "never" => Returned::Never,
        "request" => Returned::Request,
        _ => Returned::Default,
    };
    let uniqueness = match word("uniqueness", &["none", "server", "global"], "none")? {
        "server" => Uniqueness::Server,
        "global" => Uniqueness::Global,
        _ => Uniqueness::None,
    };
    let description = optional_string(obj, "description", &format!("attribute \"{path}\""))?;
    let canonical_values = strings("canonicalValues")?;
    let reference_types = strings("referenceTypes")?;
    if !reference_types.is_empty() && kind != Kind::Reference {
        return Err(err("\"referenceTypes\" is only for type reference".into()));
    }
    if !canonical_values.is_empty() && kind == Kind::Complex {
        return Err(err(
            "\"canonicalValues\" is for simple types; give them to sub-attributes".into(),
        ));
    }
    let sub_attributes = match (kind, obj.get("subAttributes")) {
        (Kind::Complex, _) if parent.is_some() => {
            return Err(err(
                "sub-attributes cannot be complex (one level of sub-attributes only)".into(),
            ));
        }
        (Kind::Complex, Some(Value::Array(list))) if !list.is_empty() => {
            attribute_list(list, Some(&path), MAX_SUB_ATTRIBUTES)?
        }
        (Kind::Complex, _) => {
            return Err(err(
                "a complex attribute needs \"subAttributes\": a non-empty array".into(),
            ));
        }
        (_, None) => Vec::new(),
        (_, Some(_)) => return Err(err("\"subAttributes\" is only for type complex".into())),
    };
    Ok(Attribute {
        name,
        kind,
        multi_valued: flag("multiValued")?,
        description,
        required: flag("required")?,
        case_exact: flag("caseExact")?,
        mutability,
        returned,
        uniqueness,
        canonical_values,
        reference_types,
        sub_attributes,
    })
}

/// The values this many blocks hold are enough to draft a declaration from.
pub const DRAFT_SAMPLES: usize = 1000;

/// A declaration document for the undeclared extension `id`, inferred from `blocks` (the
/// objects stored under it): each key that is a valid attribute name becomes an attribute
/// typed by every value seen (boolean, integer, decimal, dateTime when every string is
/// RFC 3339, else string; arrays make it multi-valued, objects complex with simple
/// sub-attributes). Keys that cannot be attribute names are left out. For an administrator to
/// edit before saving, so `parse` accepts it as it is.
pub fn draft(id: &str, blocks: &[Value]) -> Value {
    let mut attrs: BTreeMap<String, Shape> = BTreeMap::new();
    for block in blocks {
        let Some(obj) = block.as_object() else {
            continue;
        };
        for (k, v) in obj {
            if !is_attr_name(k) || k == "$ref" {
                continue;
            }
            let key = k.to_ascii_lowercase();
            if !attrs.contains_key(&key) && attrs.len() >= MAX_ATTRIBUTES {
                continue;
            }
            attrs
                .entry(key)
                .or_insert_with(|| Shape::named(k))
                .add(v, true);
        }
    }
    let name = id
        .rsplit(':')
        .find(|s| !s.is_empty() && !["User", "Group", "2.0", "1.0"].contains(s))
        .unwrap_or("")
        .to_string();
    let schema = Schema {
        id: id.to_string(),
        name,
        description: String::new(),
        attributes: attrs
            .into_values()
            .map(|s| Arc::new(s.attribute()))
            .collect(),
    };
    document(&schema)
}

/// What the values under one key looked like.
#[derive(Default)]
struct Shape {
    name: String,
    multi: bool,
    scalars: Scalars,
    subs: Option<BTreeMap<String, Shape>>,
}

/// Which simple types every scalar seen still fits.
struct Scalars {
    seen: bool,
    boolean: bool,
    integer: bool,
    decimal: bool,
    date_time: bool,
}

impl Default for Scalars {
    fn default() -> Self {
        Scalars {
            seen: false,
            boolean: true,
            integer: true,
            decimal: true,
            date_time: true,
        }
    }
}

impl Shape {
    fn named(name: &str) -> Shape {
        Shape {
            name: name.to_string(),
            ..Shape::default()
        }
    }

    fn add(&mut self, v: &Value, top: bool) {
        let s = &mut self.scalars;
        match v {
            Value::Null => {}
            Value::Array(items) => {
                self.multi = true;
                for i in items.iter().filter(|i| !i.is_array()) {
                    self.add(i, top);
                }
            }
            Value::Object(obj) if top => {
                let subs = self.subs.get_or_insert_with(BTreeMap::new);
                for (k, v) in obj {
                    if !is_attr_name(k) {
                        continue;
                    }
                    let key = k.to_ascii_lowercase();
                    if !subs.contains_key(&key) && subs.len() >= MAX_SUB_ATTRIBUTES {
                        continue;
                    }
                    let sub = subs.entry(key).or_insert_with(|| Shape::named(k));
                    // Sub-attributes are simple: nested structure is kept as a string.
                    match v {
                        Value::Object(_) => sub.scalars.fit_text(None),
                        _ => sub.add(v, false),
                    }
                }
            }
            Value::Object(_) => s.fit_text(None),
            Value::Bool(_) => {
                s.seen = true;
                s.integer = false;
                s.decimal = false;
                s.date_time = false;
            }
            Value::Number(n) => {
                s.seen = true;
                s.boolean = false;
                s.date_time = false;
                if !(n.is_i64() || n.is_u64()) {
                    s.integer = false;
                }
            }
            Value::String(text) => s.fit_text(Some(text)),
        }
    }

    fn attribute(self) -> Attribute {
        let mut a = match self.subs {
            Some(subs) if !subs.is_empty() => Attribute {
                sub_attributes: subs
                    .into_values()
                    .map(|s| Arc::new(Attribute::new(&s.name, s.scalars.kind(), "")))
                    .collect(),
                ..Attribute::new(&self.name, Kind::Complex, "")
            },
            _ => Attribute::new(&self.name, self.scalars.kind(), ""),
        };
        a.multi_valued = self.multi;
        a
    }
}

impl Scalars {
    /// A string value (or structure kept as one, `None`): only string or dateTime fit.
    fn fit_text(&mut self, text: Option<&str>) {
        self.seen = true;
        self.boolean = false;
        self.integer = false;
        self.decimal = false;
        if text.and_then(super::time::parse).is_none() {
            self.date_time = false;
        }
    }

    fn kind(&self) -> Kind {
        if !self.seen {
            Kind::String
        } else if self.boolean {
            Kind::Boolean
        } else if self.integer {
            Kind::Integer
        } else if self.decimal {
            Kind::Decimal
        } else if self.date_time {
            Kind::DateTime
        } else {
            Kind::String
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(attributes: Value) -> Value {
        json!({"id": "urn:acme:2.0:User", "attributes": attributes})
    }

    fn one(attr: Value) -> Result<Attribute> {
        parse(&doc(json!([attr])), ResourceKind::User, false)
            .map(|d| (*d.schema.attributes[0]).clone())
    }

    fn err(v: Value) -> String {
        match parse(&v, ResourceKind::User, false) {
            Err(Error::InvalidValue(m)) => m,
            other => panic!("expected invalidValue, got {other:?}"),
        }
    }

    fn attr_err(attr: Value) -> String {
        err(doc(json!([attr])))
    }

    #[test]
    fn defaults_are_rfc_7643_section_2_2() {
        let a = one(json!({"name": "badgeNumber"})).unwrap();
        assert_eq!(a, Attribute::string("badgeNumber", ""));
        let d = parse(&doc(json!([{"name": "x"}])), ResourceKind::Group, true).unwrap();
        assert_eq!(d.resource, ResourceKind::Group);
        assert!(d.required);
        assert_eq!(d.schema.name, "");
        assert_eq!(d.schema.description, "");
    }

    #[test]
    fn every_type_parses() {
        for (t, k) in [
            ("string", Kind::String),
            ("boolean", Kind::Boolean),
            ("integer", Kind::Integer),
            ("decimal", Kind::Decimal),
            ("dateTime", Kind::DateTime),
            ("reference", Kind::Reference),
            ("binary", Kind::Binary),
        ] {
            assert_eq!(one(json!({"name": "a", "type": t})).unwrap().kind, k, "{t}");
        }
        let c = one(json!({"name": "a", "type": "complex",
                           "subAttributes": [{"name": "b", "type": "integer"}]}))
        .unwrap();
        assert_eq!(c.kind, Kind::Complex);
        assert_eq!(c.sub("B").map(|b| b.kind), Some(Kind::Integer));
        assert!(attr_err(json!({"name": "a", "type": "Integer"})).contains("\"type\" is one of"));
        assert!(attr_err(json!({"name": "a", "type": 3})).contains("must be a string"));
    }

    #[test]
    fn every_characteristic_parses() {
        let a = one(json!({
            "name": "costCenter", "type": "reference", "multiValued": true,
            "description": "d", "required": true, "caseExact": true,
            "mutability": "immutable", "returned": "request", "uniqueness": "server",
            "canonicalValues": ["a", "b"], "referenceTypes": ["external", "User"]
        }))
        .unwrap();
        assert!(a.multi_valued && a.required && a.case_exact);
        assert_eq!(a.description, "d");
        assert_eq!(a.mutability, Mutability::Immutable);
        assert_eq!(a.returned, Returned::Request);
        assert_eq!(a.uniqueness, Uniqueness::Server);
        assert_eq!(a.canonical_values, ["a", "b"]);
        assert_eq!(a.reference_types, ["external", "User"]);
        for (m, v) in [
            ("readOnly", Mutability::ReadOnly),
            ("readWrite", Mutability::ReadWrite),
            ("writeOnly", Mutability::WriteOnly),
        ] {
            assert_eq!(
                one(json!({"name": "a", "mutability": m}))
                    .unwrap()
                    .mutability,
                v
            );
        }
        for (r, v) in [
            ("always", Returned::Always),
            ("never", Returned::Never),
            ("default", Returned::Default),
        ] {
            assert_eq!(
                one(json!({"name": "a", "returned": r})).unwrap().returned,
                v
            );
        }
        for (u, v) in [("none", Uniqueness::None), ("global", Uniqueness::Global)] {
            assert_eq!(
                one(json!({"name": "a", "uniqueness": u}))
                    .unwrap()
                    .uniqueness,
                v
            );
        }
    }

    #[test]
    fn characteristics_of_the_wrong_shape_name_the_attribute() {
        for (attr, part) in [
            (
                json!({"name": "a", "multiValued": "yes"}),
                "\"multiValued\" must be true or false",
            ),
            (
                json!({"name": "a", "caseExact": 1}),
                "\"caseExact\" must be true or false",
            ),
            (
                json!({"name": "a", "required": null}),
                "\"required\" must be true or false",
            ),
            (
                json!({"name": "a", "mutability": "readonly"}),
                "\"mutability\" is one of",
            ),
            (
                json!({"name": "a", "returned": "sometimes"}),
                "\"returned\" is one of",
            ),
            (
                json!({"name": "a", "uniqueness": "unique"}),
                "\"uniqueness\" is one of",
            ),
            (
                json!({"name": "a", "canonicalValues": [1]}),
                "array of strings",
            ),
            (
                json!({"name": "a", "canonicalValues": "x"}),
                "\"canonicalValues\" must be an array",
            ),
            (
                json!({"name": "a", "referenceTypes": ["User"]}),
                "only for type reference",
            ),
            (
                json!({"name": "a", "description": 5}),
                "\"description\" must be a string",
            ),
            (
                json!({"name": "a", "uniquness": "server"}),
                "unknown characteristic \"uniquness\"",
            ),
            (
                json!({"name": "a", "subAttributes": []}),
                "only for type complex",
            ),
        ] {
            let m = attr_err(attr.clone());
            assert!(
                m.contains("attribute \"a\"") && m.contains(part),
                "{attr}: {m}"
            );
        }
        let big: Vec<String> = (0..=MAX_VALUES).map(|i| i.to_string()).collect();
        assert!(attr_err(json!({"name": "a", "canonicalValues": big})).contains("at most"));
    }

    #[test]
    fn names_follow_attrname_and_are_unique_case_insensitively() {
        for ok in ["a", "badge_Number-2", "$ref", &"x".repeat(MAX_NAME)] {
            assert!(one(json!({"name": ok})).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2fa",
            "_x",
            "a.b",
            "a b",
            "ü",
            "$refs",
            &"x".repeat(MAX_NAME + 1),
        ] {
            let m = attr_err(json!({"name": bad}));
            assert!(m.contains("starts with a letter"), "{bad}: {m}");
        }
        assert!(attr_err(json!({"type": "string"})).contains("has no \"name\""));
        let m = err(doc(json!([{"name": "badge"}, {"name": "BADGE"}])));
        assert!(m.contains("\"BADGE\" twice"), "{m}");
        let m = attr_err(json!({"name": "c", "type": "complex",
                                "subAttributes": [{"name": "x"}, {"name": "X"}]}));
        assert!(
            m.contains("attribute \"c\" names attribute \"X\" twice"),
            "{m}"
        );
        assert!(err(doc(json!(["badge"]))).contains("each attribute is a JSON object"));
    }

    #[test]
    fn sub_attributes_are_one_level_and_only_for_complex() {
        let m = attr_err(json!({"name": "c", "type": "complex"}));
        assert!(m.contains("needs \"subAttributes\""), "{m}");
        let m = attr_err(json!({"name": "c", "type": "complex", "subAttributes": []}));
        assert!(m.contains("needs \"subAttributes\""), "{m}");
        let m = attr_err(json!({"name": "c", "type": "complex", "subAttributes": [
            {"name": "d", "type": "complex", "subAttributes": [{"name": "e"}]}]}));
        assert!(
            m.contains("attribute \"c.d\": sub-attributes cannot be complex"),
            "{m}"
        );
        let m = attr_err(json!({"name": "c", "type": "complex", "subAttributes": [
            {"name": "d", "type": "bool"}]}));
        assert!(m.contains("attribute \"c.d\""), "{m}");
        let m = attr_err(
            json!({"name": "c", "type": "complex", "canonicalValues": ["x"],
                                "subAttributes": [{"name": "d"}]}),
        );
        assert!(m.contains("simple types"), "{m}");
    }

    #[test]
    fn the_document_is_bounded() {
        let many: Vec<Value> = (0..=MAX_ATTRIBUTES)
            .map(|i| json!({"name": format!("a{i}")}))
            .collect();
        assert!(err(doc(Value::Array(many))).contains("at most 100"));
        let subs: Vec<Value> = (0..=MAX_SUB_ATTRIBUTES)
            .map(|i| json!({"name": format!("a{i}")}))
            .collect();
        let m = attr_err(json!({"name": "c", "type": "complex", "subAttributes": subs}));
        assert!(m.contains("at most 50"), "{m}");
        let long = json!({"name": "a", "description": "x".repeat(MAX_DOCUMENT)});
        assert!(attr_err(long).contains("larger than"));
        let text = format!(
            "{{\"id\":\"urn:a:b\",\"attributes\":[{{\"name\":\"a\"}}],\"description\":\"{}\"}}",
            " ".repeat(MAX_DOCUMENT)
        );
        assert!(matches!(
            parse_text(&text, ResourceKind::User, false),
            Err(Error::InvalidValue(m)) if m.contains("larger than")
        ));
        assert!(matches!(
            parse_text("{\"id\":", ResourceKind::User, false),
            Err(Error::InvalidSyntax(_))
        ));
    }

    #[test]
    fn the_schema_level_is_checked() {
        assert!(err(json!([])).contains("JSON object"));
        assert!(err(json!({"attributes": [{"name": "a"}]})).contains("needs an \"id\""));
        assert!(err(json!({"id": "urn:a:b"})).contains("non-empty array"));
        assert!(err(json!({"id": "urn:a:b", "attributes": []})).contains("non-empty array"));
        assert!(err(json!({"id": "urn:a:b", "attributes": {}})).contains("non-empty array"));
        let m = err(json!({"id": "urn:a:b", "attributes": [{"name": "a"}], "atributes": 1}));
        assert!(m.contains("unknown key \"atributes\""), "{m}");
        let m = err(json!({"id": "urn:a:b", "name": 1, "attributes": [{"name": "a"}]}));
        assert!(m.contains("\"name\" must be a string"), "{m}");
        // `schemas` and `meta` of an exported document are accepted and not kept.
        let d = parse(
            &json!({"schemas": [SCHEMA_URN], "id": "urn:a:b", "name": "A",
                    "attributes": [{"name": "a"}], "meta": {"resourceType": "Schema"}}),
            ResourceKind::User,
            false,
        )
        .unwrap();
        assert_eq!(d.schema.name, "A");
    }

    #[test]
    fn ids_are_absolute_uris_that_are_not_built_in() {
        for ok in [
            "urn:ietf:params:scim:schemas:extension:acme:2.0:User",
            "urn:salesforce:schemas:extension:18",
            "urn:x-acme:v1",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group",
            "https://acme.example/scim/ext",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:UserExtra",
        ] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for (bad, part) in [
            ("", "1 to 256"),
            ("acme:User", "absolute URI"),
            ("urn:acme", "urn:<namespace>:<name>"),
            ("urn::x", "urn:<namespace>:<name>"),
            ("urn:a_b:x", "urn:<namespace>:<name>"),
            ("http:///x", "needs a host"),
            ("ftp://x/y", "absolute URI"),
            ("urn:acme:x:", "end in ':'"),
            ("urn:acme:it's", "not allowed"),
            ("urn:acme:a\"b", "not allowed"),
            ("urn:acme:a b", "not allowed"),
            ("urn:ietf:params:scim:schemas:core:2.0:User", "built into"),
            ("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:GROUP", "built into"),
            ("urn:ietf:params:scim:schemas:core:2.0:Thing", "built into"),
            (
                "urn:ietf:params:scim:api:messages:2.0:PatchOp",
                "built into",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user",
                "built into",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0",
                "built into",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:x",
                "built into",
            ),
        ] {
            match check_id(bad) {
                Err(Error::InvalidValue(m)) => assert!(m.contains(part), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(check_id(&format!("urn:a:{}", "b".repeat(MAX_ID))).is_err());
    }

    #[test]
    fn overlapping_ids_share_a_boundary() {
        assert!(overlaps("urn:acme:User", "URN:ACME:user"));
        assert!(overlaps("urn:acme:User", "urn:acme:User:badge"));
        assert!(overlaps("urn:acme:User:badge", "urn:acme:user"));
        assert!(!overlaps("urn:acme:User", "urn:acme:UserExtra"));
        assert!(!overlaps("urn:acme:a", "urn:acme:b"));
    }

    #[test]
    fn the_normalised_document_round_trips() {
        let input = json!({"id": "urn:acme:2.0:User", "name": "Acme", "attributes": [
            {"name": "badgeNumber", "uniqueness": "server"},
            {"name": "homepage", "type": "reference", "referenceTypes": ["external"]},
            {"name": "sshKeys", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "value", "caseExact": true}, {"name": "added", "type": "dateTime"}]}
        ]});
        let d = parse(&input, ResourceKind::User, false).unwrap();
        let normal = document(&d.schema);
        assert_eq!(
            normal,
            json!({"schemas": [SCHEMA_URN], "id": "urn:acme:2.0:User", "name": "Acme",
                   "attributes": [
                {"name": "badgeNumber", "type": "string", "multiValued": false,
                 "description": "", "required": false, "caseExact": false,
                 "mutability": "readWrite", "returned": "default", "uniqueness": "server"},
                {"name": "homepage", "type": "reference", "multiValued": false,
                 "description": "", "required": false, "caseExact": false,
                 "mutability": "readWrite", "returned": "default", "uniqueness": "none",
                 "referenceTypes": ["external"]},
                {"name": "sshKeys", "type": "complex", "multiValued": true, "description": "",
                 "required": false, "caseExact": false, "mutability": "readWrite",
                 "returned": "default", "uniqueness": "none", "subAttributes": [
                    {"name": "value", "type": "string", "multiValued": false,
                     "description": "", "required": false, "caseExact": true,
                     "mutability": "readWrite", "returned": "default", "uniqueness": "none"},
                    {"name": "added", "type": "dateTime", "multiValued": false,
                     "description": "", "required": false, "caseExact": false,
                     "mutability": "readWrite", "returned": "default", "uniqueness": "none"}]}
            ]})
        );
        let again = parse(&normal, ResourceKind::User, false).unwrap();
        assert_eq!(again, d);
        let mut full = schema_json(&again.schema, "/x");
        full.as_object_mut().unwrap().remove("meta");
        assert_eq!(full, normal);
    }

    #[test]
    fn built_in_schemas_would_round_trip_but_are_refused() {
        use crate::scim::schema::ENTERPRISE_USER;
        let m = err(document(&ENTERPRISE_USER));
        assert!(m.contains("built into"), "{m}");
    }

    #[test]
    fn a_draft_infers_each_type_and_parses() {
        let blocks = [
            json!({"badge": "42", "active": true, "level": 3, "ratio": 1.5,
                   "hired": "2024-01-02T03:04:05Z", "tags": ["a", "b"],
                   "keys": [{"value": "ssh-ed25519 A", "added": "2024-01-02T03:04:05Z"}],
                   "bad name": 1, "gone": null}),
            json!({"badge": "x9", "level": 4.0, "ratio": 2, "mixed": 1,
                   "keys": {"value": "k", "extra": {"deep": 1}}}),
            json!({"mixed": "one", "hired": "2025-06-01T00:00:00.000+02:00"}),
            json!("not an object"),
        ];
        let v = draft(
            "urn:ietf:params:scim:schemas:extension:acme:2.0:User",
            &blocks,
        );
        let d = parse(&v, ResourceKind::User, false).unwrap();
        assert_eq!(d.schema.name, "acme");
        let kind = |n: &str| d.schema.attribute(n).map(|a| (a.kind, a.multi_valued));
        assert_eq!(kind("badge"), Some((Kind::String, false)));
        assert_eq!(kind("active"), Some((Kind::Boolean, false)));
        assert_eq!(kind("level"), Some((Kind::Decimal, false)));
        assert_eq!(kind("ratio"), Some((Kind::Decimal, false)));
        assert_eq!(kind("hired"), Some((Kind::DateTime, false)));
        assert_eq!(kind("tags"), Some((Kind::String, true)));
        assert_eq!(kind("mixed"), Some((Kind::String, false)));
        assert_eq!(kind("gone"), Some((Kind::String, false)));
        assert_eq!(kind("bad name"), None);
        let keys = d.schema.attribute("keys").unwrap();
        assert_eq!((keys.kind, keys.multi_valued), (Kind::Complex, true));
        assert_eq!(keys.sub("added").map(|a| a.kind), Some(Kind::DateTime));
        assert_eq!(keys.sub("extra").map(|a| a.kind), Some(Kind::String));
        let ints = draft("urn:a:b", &[json!({"n": 1}), json!({"n": -7})]);
        let d = parse(&ints, ResourceKind::User, false).unwrap();
        assert_eq!(d.schema.attributes[0].kind, Kind::Integer);
    }

    #[test]
    fn a_draft_is_bounded() {
        let mut block = Map::new();
        for i in 0..MAX_ATTRIBUTES + 20 {
            block.insert(format!("a{i}"), json!(1));
        }
        let v = draft("urn:a:b", &[Value::Object(block)]);
        let d = parse(&v, ResourceKind::User, false).unwrap();
        assert_eq!(d.schema.attributes.len(), MAX_ATTRIBUTES);
    }
}
