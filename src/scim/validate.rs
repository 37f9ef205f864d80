//! Normalising incoming User and Group bodies: accept what identity providers really send
//! (idp-compat.md "Decisions" 1–9) and produce clean RFC 7643 JSON keyed by the schema's own
//! attribute names, or a clear `invalidValue` error.
//!
//! Tolerated on the way in: attribute names in any case (RFC 7643 §2.1); string booleans
//! (`"True"`, `"0"`); a single object or value where an array belongs; `""` and `null` as
//! "absent"; legacy schema URNs and the legacy enterprise key; `manager` as an object, a
//! one-element array or a bare id; SCIM 1.1 `managerId`; readOnly attributes (`id`, `meta`,
//! `groups`, `manager.displayName`, …), which are ignored (RFC 7643 §7: readOnly values sent by
//! the client SHALL be ignored). Rejected: unknown attributes, wrong types, two primaries.
//! Pure: no I/O.

use serde_json::{Map, Value};

use super::schema::{
    Attribute, ENTERPRISE_USER, ENTERPRISE_USER_URN, GROUP, Kind, Mutability, Schema, USER,
    USER_URN,
};
use crate::error::{Error, Result};

/// Legacy keys OneLogin templates use for the enterprise extension block.
const LEGACY_ENTERPRISE_KEYS: [&str; 2] = [
    "urn:scim:schemas:extension:enterprise:1.0",
    "urn:scim:schemas:extension:enterprise:2.0",
];
/// Legacy keys under which a client may nest core attributes.
const LEGACY_CORE_KEYS: [&str; 2] = ["urn:scim:schemas:core:1.0", "urn:scim:schemas:core:2.0"];

/// Enterprise attribute names Entra ID has been seen sending at the top level of a User
/// (idp-compat.md §2 row 17). They are ignored rather than rejected: Entra sets them for real
/// through PATCH with the URN-qualified path.
const STRAY_ENTERPRISE_KEYS: [&str; 6] = [
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
];

/// A normalised User: core attributes under their schema names, the enterprise extension
/// (if any) under its URN. Never contains `id`, `meta`, `groups`, `schemas` or `password`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInput {
    pub doc: Map<String, Value>,
    /// Whether the body said anything about `active`; PUT keeps the current state when not.
    pub active_given: bool,
}

/// A normalised Group: `displayName` and `externalId` in `doc`; member ids, de-duplicated in
/// the order given, in `members` (`None` when the body had no `members` key).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInput {
    pub doc: Map<String, Value>,
    pub members: Option<Vec<String>>,
}

fn as_object(body: Value) -> Result<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(Error::InvalidSyntax(
            "the request body must be a JSON object".into(),
        )),
    }
}

fn eq_ic(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Common attributes (RFC 7643 §3.1) the server owns; a client's values are ignored, and so
/// are `schemas` (the endpoint decides the resource type, idp-compat.md §2 row 1).
fn is_server_owned(key: &str) -> bool {
    ["id", "meta", "schemas"].iter().any(|k| eq_ic(k, key))
}

fn is_urn_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.starts_with("urn:") || lower.starts_with("http:") || lower.starts_with("https:")
}

/// Inserts a normalised value, refusing the same attribute twice under different spellings.
fn put(doc: &mut Map<String, Value>, name: &str, value: Value) -> Result<()> {
    if doc.insert(name.to_string(), value).is_some() {
        return Err(Error::InvalidValue(format!(
            "attribute \"{name}\" is given more than once"
        )));
    }
    Ok(())
}

/// Normalises the attributes of `src` that belong to `schema` into `doc`.
/// `path` prefixes attribute names in error messages.
fn normalise_attrs(
    schema: &Schema,
    src: Map<String, Value>,
    doc: &mut Map<String, Value>,
    path: &str,
) -> Result<()> {
    for (key, value) in src {
        let Some(attr) = schema.attribute(&key) else {
            return Err(Error::InvalidValue(format!(
                "unknown attribute \"{path}{key}\" for {}",
                schema.name
            )));
        };
        set_attr(attr, value, doc, path)?;
    }
    Ok(())
}

fn set_attr(
    attr: &'static Attribute,
    value: Value,
    doc: &mut Map<String, Value>,
    path: &str,
) -> Result<()> {
    if attr.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    let qualified = format!("{path}{}", attr.name);
    if let Some(v) = normalise_value(attr, value, &qualified)? {
        // Write-only values (password) are checked for type, then dropped: scimd authenticates
        // nobody with them, so keeping even a hash would only add risk.
        if attr.mutability != Mutability::WriteOnly {
            put(doc, attr.name, v)?;
        }
    }
    Ok(())
}

/// `""` and `null` mean "no value" (idp-compat.md Decision 9).
fn is_absent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Normalises one attribute's value; `Ok(None)` means the attribute is absent.
pub fn normalise_value(attr: &Attribute, value: Value, name: &str) -> Result<Option<Value>> {
    if is_absent(&value) {
        return Ok(None);
    }
    if attr.multi_valued {
        let (items, wrapped) = match value {
            Value::Array(items) => (items, false),
            single => (vec![single], true),
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = normalise_single(attr, item, name)? {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        check_primary(&mut out, wrapped, name)?;
        return Ok(Some(Value::Array(out)));
    }
    let value = match value {
        // Entra sends `manager` as a one-element array (idp-compat.md §2 row 15).
        Value::Array(mut items) if attr.kind == Kind::Complex && items.len() <= 1 => {
            match items.pop() {
                Some(v) => v,
                None => return Ok(None),
            }
        }
        other => other,
    };
    normalise_single(attr, value, name)
}

/// RFC 7643 §2.4: "primary" may be true on at most one value. A single object sent where an
/// array belongs (OneLogin's emails) becomes the primary value (idp-compat.md §2 row 3).
fn check_primary(values: &mut [Value], wrapped: bool, name: &str) -> Result<()> {
    let primaries = values
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(Error::InvalidValue(format!(
            "more than one value of \"{name}\" is marked primary"
        )));
    }
    if wrapped
        && primaries == 0
        && let [Value::Object(only)] = values
        && !only.contains_key("primary")
    {
        only.insert("primary".into(), Value::Bool(true));
    }
    Ok(())
}

/// Normalises one value of an attribute (an element, for multi-valued ones).
fn normalise_single(attr: &Attribute, value: Value, name: &str) -> Result<Option<Value>> {
    if is_absent(&value) {
        return Ok(None);
    }
    if attr.kind != Kind::Complex {
        return normalise_simple(attr, value, name).map(Some);
    }
    let src = match value {
        Value::Object(map) => map,
        // A bare value where a complex value with a `value` sub-attribute belongs: `"emails":
        // "a@b.c"`, or Entra's `manager` as a plain id string.
        Value::String(s) if attr.sub("value").is_some() => {
            let mut map = Map::new();
            map.insert("value".into(), Value::String(s));
            map
        }
        _ => {
            return Err(Error::InvalidValue(format!(
                "attribute \"{name}\" must be an object"
            )));
        }
    };
    let mut out = Map::new();
    for (key, sub_value) in src {
        // SCIM 1.1 name for manager.value, still in OneLogin's templates.
        let key = if eq_ic(&key, "managerId") && attr.sub("managerId").is_none() {
            "value".to_string()
        } else {
            key
        };
        let Some(sub) = attr.sub(&key) else {
            return Err(Error::InvalidValue(format!(
                "unknown sub-attribute \"{name}.{key}\""
            )));
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let sub_name = format!("{name}.{}", sub.name);
        if let Some(v) = normalise_single(sub, sub_value, &sub_name)? {
            put(&mut out, sub.name, v)?;
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

fn normalise_simple(attr: &Attribute, value: Value, name: &str) -> Result<Value> {
    let wrong =
        |expected: &str| Error::InvalidValue(format!("attribute \"{name}\" must be {expected}"));
    match attr.kind {
        Kind::Boolean => match &value {
            Value::Bool(_) => Ok(value),
            Value::String(s) => parse_bool(s)
                .map(Value::Bool)
                .ok_or_else(|| wrong("a boolean")),
            Value::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
                Ok(Value::Bool(n.as_u64() == Some(1)))
            }
            _ => Err(wrong("a boolean")),
        },
        Kind::String | Kind::Reference | Kind::Binary => match value {
            Value::String(_) => Ok(value),
            _ => Err(wrong("a string")),
        },
        Kind::DateTime => match &value {
            Value::String(s) if super::time::parse(s).is_some() => Ok(value),
            _ => Err(wrong("an RFC 3339 date-time string")),
        },
        Kind::Integer => match &value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value),
            _ => Err(wrong("an integer")),
        },
        Kind::Decimal => match value {
            Value::Number(_) => Ok(value),
            _ => Err(wrong("a number")),
        },
        Kind::Complex => Err(wrong("a simple value")),
    }
}

/// Booleans as IdP templates render them (idp-compat.md §2 row 5).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Normalises a User body for POST or PUT.
pub fn user(body: Value) -> Result<UserInput> {
    let src = as_object(body)?;
    let mut core = Map::new();
    let mut enterprise = Map::new();
    for (key, value) in src {
        if is_server_owned(&key) {
            continue;
        }
        if is_urn_key(&key) {
            if let Some(attr_name) = strip_prefix_ic(&key, &format!("{USER_URN}:")) {
                core_attr(attr_name, value, &mut core)?;
            } else if let Some(attr_name) =
                strip_prefix_ic(&key, &format!("{ENTERPRISE_USER_URN}:"))
            {
                enterprise_attr(attr_name, value, &mut enterprise)?;
            } else if eq_ic(&key, ENTERPRISE_USER_URN)
                || LEGACY_ENTERPRISE_KEYS.iter().any(|k| eq_ic(k, &key))
            {
                block(&ENTERPRISE_USER, &key, value, &mut enterprise)?;
            } else if eq_ic(&key, USER_URN) || LEGACY_CORE_KEYS.iter().any(|k| eq_ic(k, &key)) {
                block(&USER, &key, value, &mut core)?;
            }
            // Any other URN is an extension scimd does not serve (Entra's ADSCIM, a misspelt
            // URN): ignored, never an error (idp-compat.md §2 rows 16–17).
            continue;
        }
        if USER.attribute(&key).is_none() && STRAY_ENTERPRISE_KEYS.iter().any(|k| eq_ic(k, &key)) {
            continue;
        }
        core_attr(&key, value, &mut core)?;
    }
    if !core.contains_key("userName") {
        return Err(Error::InvalidValue(
            "attribute \"userName\" is required".into(),
        ));
    }
    let active_given = core.contains_key("active");
    if !enterprise.is_empty() {
        core.insert(ENTERPRISE_USER_URN.into(), Value::Object(enterprise));
    }
    Ok(UserInput {
        doc: core,
        active_given,
    })
}

/// Normalises a block of attributes nested under a schema URN key into `doc`.
fn block(schema: &Schema, key: &str, value: Value, doc: &mut Map<String, Value>) -> Result<()> {
    match value {
        v if is_absent(&v) => Ok(()),
        Value::Object(map) => normalise_attrs(schema, map, doc, ""),
        _ => Err(Error::InvalidValue(format!("\"{key}\" must be an object"))),
    }
}

fn strip_prefix_ic<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    eq_ic(head, prefix).then(|| &s[prefix.len()..])
}

/// `externalId` is a common attribute (RFC 7643 §3.1): a caseExact string owned by the client.
fn external_id(value: Value, doc: &mut Map<String, Value>) -> Result<()> {
    match value {
        v if is_absent(&v) => Ok(()),
        Value::String(s) => put(doc, "externalId", Value::String(s)),
        _ => Err(Error::InvalidValue(
            "attribute \"externalId\" must be a string".into(),
        )),
    }
}

fn core_attr(name: &str, value: Value, doc: &mut Map<String, Value>) -> Result<()> {
    if eq_ic(name, "externalId") {
        return external_id(value, doc);
    }
    if is_server_owned(name) {
        return Ok(());
    }
    match USER.attribute(name) {
        Some(attr) => set_attr(attr, value, doc, ""),
        None => Err(Error::InvalidValue(format!(
            "unknown attribute \"{name}\" for User"
        ))),
    }
}

fn enterprise_attr(name: &str, value: Value, doc: &mut Map<String, Value>) -> Result<()> {
    match ENTERPRISE_USER.attribute(name) {
        Some(attr) => set_attr(attr, value, doc, ""),
        None => Err(Error::InvalidValue(format!(
            "unknown attribute \"{name}\" for the enterprise extension"
        ))),
    }
}

/// Normalises a Group body for POST or PUT.
pub fn group(body: Value) -> Result<GroupInput> {
    let src = as_object(body)?;
    let mut doc = Map::new();
    let mut members = None;
    for (key, value) in src {
        if is_server_owned(&key) {
            continue;
        }
        let name = match strip_prefix_ic(&key, &format!("{}:", super::schema::GROUP_URN)) {
            Some(rest) => rest,
            // Entra adds its own ADSCIM group schema (idp-compat.md §2 row 16): ignored.
            None if is_urn_key(&key) => continue,
            None => key.as_str(),
        };
        if eq_ic(name, "externalId") {
            external_id(value, &mut doc)?;
        } else if eq_ic(name, "members") {
            members = Some(member_ids(value)?);
        } else {
            match GROUP.attribute(name) {
                Some(attr) => set_attr(attr, value, &mut doc, "")?,
                None => {
                    return Err(Error::InvalidValue(format!(
                        "unknown attribute \"{name}\" for Group"
                    )));
                }
            }
        }
    }
    if !doc.contains_key("displayName") {
        return Err(Error::InvalidValue(
            "attribute \"displayName\" is required".into(),
        ));
    }
    Ok(GroupInput { doc, members })
}

/// The member ids of a `members` value. `display`, `type` and `$ref` are derived by the server
/// from the member itself, so only `value` matters; each must be a non-empty string.
pub fn member_ids(value: Value) -> Result<Vec<String>> {
    let Some(attr) = GROUP.attribute("members") else {
        return Err(Error::internal("Group schema lacks members"));
    };
    let mut ids: Vec<String> = Vec::new();
    let Some(Value::Array(items)) = normalise_value(attr, value, "members")? else {
        return Ok(ids);
    };
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for item in items {
        match item.get("value") {
            Some(Value::String(id)) => {
                if seen.insert(id.clone()) {
                    ids.push(id.clone());
                }
            }
            _ => {
                return Err(Error::InvalidValue(
                    "every member needs a \"value\" with the member's id".into(),
                ));
            }
        }
    }
    Ok(ids)
}
