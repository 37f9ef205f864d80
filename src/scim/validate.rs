//! Normalising incoming User and Group bodies: accept what identity providers really send
//! (idp-compat.md "Decisions" 1–9) and produce clean RFC 7643 JSON keyed by the schema's own
//! attribute names, or a clear `invalidValue` error.
//!
//! Tolerated on the way in: attribute names in any case (RFC 7643 §2.1); string booleans
//! (`"True"`, `"0"`); a single object or value where an array belongs; `""` and `null` as
//! "absent"; legacy schema URNs and the legacy enterprise key; `manager` as an object, a
//! one-element array or a bare id; SCIM 1.1 `managerId`; readOnly attributes (`id`, `meta`,
//! `groups`, `manager.displayName`, …), which are ignored (RFC 7643 §7: readOnly values sent by
//! the client SHALL be ignored); unknown attributes and sub-attributes, which are ignored
//! and noted in `Ignored` for the audit entry. Rejected: wrong types, two primaries.
//! Pure: no I/O.

use serde_json::{Map, Value};

use std::collections::HashSet;
use std::sync::Arc;

use super::registry::{KeyMatch, Registry};
use super::resource::ResourceKind;
use super::schema::{Attribute, GROUP, Kind, Mutability, Schema, USER};
use super::untouched::{self, Prior};
use crate::error::{Error, Result};

/// Legacy keys OneLogin templates use for the enterprise extension block.
pub(crate) const LEGACY_ENTERPRISE_KEYS: [&str; 2] = [
    "urn:scim:schemas:extension:enterprise:1.0",
    "urn:scim:schemas:extension:enterprise:2.0",
];
/// Legacy keys under which a client may nest core attributes.
pub(crate) const LEGACY_CORE_KEYS: [&str; 2] =
    ["urn:scim:schemas:core:1.0", "urn:scim:schemas:core:2.0"];

/// Enterprise attribute names Entra ID has been seen sending at the top level of a User
/// (idp-compat.md §2 row 17). In a POST or PUT body they are ignored (and named, like any
/// unknown attribute): Entra sets them for real through PATCH, where a bare one means the
/// extension's.
pub(crate) const STRAY_ENTERPRISE_KEYS: [&str; 6] = [
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
];

/// Most ignored names one write records (the rest are only counted).
pub const MAX_IGNORED_NAMES: usize = 20;
/// Longest client-chosen part of an ignored name, in bytes; longer ones are cut. The schema
/// part before it (`name.`, the enterprise URN) is scimd's own.
pub const MAX_IGNORED_NAME: usize = 64;

/// The unknown attributes and sub-attributes a write carried. They are ignored rather than
/// refused, so one attribute scimd does not know never loses the write (README "What scimd
/// keeps"), and reported on the change's audit entry and in `/metrics`, so an admin sees what
/// an IdP sends that scimd does not keep. Every name comes from the client, so what is kept is
/// bounded: distinct names, each cut to `MAX_IGNORED_NAME` bytes, the first
/// `MAX_IGNORED_NAMES` of them listed and the rest counted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Ignored {
    names: Vec<String>,
    /// Hashes of the distinct names past the listed ones: only their count is reported, so
    /// eight bytes each rather than the names themselves (whose number only the body's size
    /// bounds). A collision undercounts by one, which is harmless.
    rest: std::collections::HashSet<u64>,
}

/// The hash `Ignored::rest` keeps of a name. `DefaultHasher::new` has fixed keys, so hashes
/// from different writes of one process compare (`extend`).
fn name_hash(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

impl Ignored {
    /// Notes `key`, a name the client sent, under `prefix` (the schema's own path to it).
    pub fn note(&mut self, prefix: &str, key: &str) {
        let mut end = key.len().min(MAX_IGNORED_NAME);
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        self.add(format!("{prefix}{}", &key[..end]));
    }

    fn add(&mut self, name: String) {
        if self.names.contains(&name) {
            return;
        }
        let hash = name_hash(&name);
        // Already counted among the rest (a merged write's), so not listed as well.
        if self.rest.contains(&hash) {
            return;
        }
        if self.names.len() < MAX_IGNORED_NAMES {
            self.names.push(name);
        } else {
            self.rest.insert(hash);
        }
    }

    /// How many distinct names were ignored.
    pub fn count(&self) -> usize {
        self.names.len() + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names listed (at most `MAX_IGNORED_NAMES`), in the order first seen.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Adds what `other` noted.
    pub fn extend(&mut self, other: Ignored) {
        for name in other.names {
            self.add(name);
        }
        for hash in other.rest {
            if !self.names.iter().any(|n| name_hash(n) == hash) {
                self.rest.insert(hash);
            }
        }
    }

    /// The audit entry's fields: `ignored` (the listed names) and `ignoredMore` (how many
    /// more there were), none when nothing was ignored.
    pub fn describe(&self, detail: &mut Map<String, Value>) {
        if self.names.is_empty() {
            return;
        }
        detail.insert("ignored".into(), Value::from(self.names.clone()));
        if !self.rest.is_empty() {
            detail.insert("ignoredMore".into(), Value::from(self.rest.len()));
        }
    }
}

/// A normalised User: core attributes under their schema names, the enterprise extension
/// (if any) under its URN. Never contains `id`, `meta`, `groups`, `schemas` or `password`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInput {
    pub doc: Map<String, Value>,
    /// Whether the body said anything about `active`; PUT keeps the current state when not.
    pub active_given: bool,
    pub ignored: Ignored,
}

/// A normalised Group: `displayName` and `externalId` in `doc`; member ids, de-duplicated in
/// the order given, in `members` (`None` when the body had no `members` key).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInput {
    pub doc: Map<String, Value>,
    pub members: Option<Vec<String>>,
    pub ignored: Ignored,
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
pub(crate) fn is_server_owned(key: &str) -> bool {
    ["id", "meta", "schemas"].iter().any(|k| eq_ic(k, key))
}

/// Whether `key` names a schema (a URN, or an http(s) URI): an extension block, or an
/// attribute qualified by its schema. Allocates nothing: `write_user` asks it of every
/// member name of every user it writes.
pub(crate) fn is_urn_key(key: &str) -> bool {
    ["urn:", "http:", "https:"].iter().any(|p| {
        key.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    })
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

/// Normalises the attributes of `src` that belong to `schema` into `doc`; unknown ones are
/// noted in `ignored`. `path` prefixes attribute names in messages.
fn normalise_attrs(
    schema: &Schema,
    src: Map<String, Value>,
    doc: &mut Map<String, Value>,
    path: &str,
    ignored: &mut Ignored,
) -> Result<()> {
    for (key, value) in src {
        match schema.attribute(&key) {
            Some(attr) => set_attr(attr, value, doc, path, ignored)?,
            None => ignored.note(path, &key),
        }
    }
    Ok(())
}

fn set_attr(
    attr: &Attribute,
    value: Value,
    doc: &mut Map<String, Value>,
    path: &str,
    ignored: &mut Ignored,
) -> Result<()> {
    if attr.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    let qualified = format!("{path}{}", attr.name);
    if let Some(v) = normalise_value(attr, value, &qualified, ignored)? {
        // Write-only values (password) are checked for type, then dropped: scimd authenticates
        // nobody with them, so keeping even a hash would only add risk.
        if attr.mutability != Mutability::WriteOnly {
            put(doc, &attr.name, v)?;
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

/// Normalises one attribute's value; `Ok(None)` means the attribute is absent. Unknown
/// sub-attributes are left out and noted in `ignored`.
pub fn normalise_value(
    attr: &Attribute,
    value: Value,
    name: &str,
    ignored: &mut Ignored,
) -> Result<Option<Value>> {
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
            if let Some(v) = normalise_single(attr, item, name, ignored)? {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        check_primary(&mut out, wrapped && attr.sub("primary").is_some(), name)?;
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
    normalise_single(attr, value, name, ignored)
}

/// RFC 7643 §2.4: "primary" may be true on at most one value. A single object sent where an
/// array belongs (OneLogin's emails) becomes the primary value (idp-compat.md §2 row 3), when
/// the attribute has a `primary` (`mark_primary`).
fn check_primary(values: &mut [Value], mark_primary: bool, name: &str) -> Result<()> {
    let primaries = values
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(Error::InvalidValue(format!(
            "more than one value of \"{name}\" is marked primary"
        )));
    }
    if mark_primary
        && primaries == 0
        && let [Value::Object(only)] = values
        && !only.contains_key("primary")
    {
        only.insert("primary".into(), Value::Bool(true));
    }
    Ok(())
}

/// Normalises one value of an attribute (an element, for multi-valued ones).
fn normalise_single(
    attr: &Attribute,
    value: Value,
    name: &str,
    ignored: &mut Ignored,
) -> Result<Option<Value>> {
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
            ignored.note(&format!("{name}."), &key);
            continue;
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let sub_name = format!("{name}.{}", sub.name);
        if let Some(v) = normalise_single(sub, sub_value, &sub_name, ignored)? {
            put(&mut out, &sub.name, v)?;
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

/// The most JSON one registered extension's block may hold per resource (checked on the
/// writes its rules apply to, see `untouched`).
pub const MAX_EXTENSION_BYTES: usize = 64 * 1024;

/// Undeclared extensions kept per resource (design brief §5): at most this many URNs…
pub const MAX_UNDECLARED_EXTENSIONS: usize = 10;
/// …holding at most this many bytes of JSON between them…
pub const MAX_UNDECLARED_BYTES: usize = 16 * 1024;
/// …nested at most this deep inside their blocks (a block of attributes is level 1). A
/// declared schema nests three levels at most; the bound keeps every stored document well
/// inside what a parser reading it back accepts.
pub const MAX_UNDECLARED_DEPTH: usize = 8;

/// Where a member of a body goes.
enum Routed {
    /// A core attribute by its name (a plain key or `<core URN>:<name>`).
    Core(String, Value),
    /// A block of core attributes under the core URN (or a legacy core key).
    CoreBlock(String, Value),
    /// An extension value, already gathered into `Blocks`, or a key that is ignored.
    Done,
}

/// The extension blocks of one body, gathered from blocks and flattened `<URN>:<attr>` keys.
/// The undeclared bounds are checked as the data arrives, so a body past them fails after
/// linear work, not after it is all gathered.
struct Blocks {
    declared: Vec<(Arc<Schema>, Map<String, Value>)>,
    /// Keyed by the URN as the client first spelled it, with the lowercased names it holds.
    undeclared: Vec<(String, Map<String, Value>, HashSet<String>)>,
    max_count: usize,
    max_bytes: usize,
    /// A lower bound of the undeclared blocks' size as `finish` counts it.
    bytes: usize,
}

impl Blocks {
    fn new(prior: Option<&Prior>) -> Blocks {
        Blocks {
            declared: Vec::new(),
            undeclared: Vec::new(),
            max_count: prior.map_or(MAX_UNDECLARED_EXTENSIONS, |p| p.max_undeclared),
            max_bytes: prior.map_or(MAX_UNDECLARED_BYTES, |p| p.max_undeclared_bytes),
            bytes: 0,
        }
    }

    fn declared(&mut self, schema: &Arc<Schema>) -> &mut Map<String, Value> {
        let i = match self.declared.iter().position(|(s, _)| s.id == schema.id) {
            Some(i) => i,
            None => {
                self.declared.push((Arc::clone(schema), Map::new()));
                self.declared.len() - 1
            }
        };
        &mut self.declared[i].1
    }

    /// One attribute (already trimmed) into the undeclared block `urn`; a name given twice
    /// (in any case) is refused, and so is data past the bounds.
    fn put_undeclared(&mut self, urn: &str, name: String, value: Value) -> Result<()> {
        let i = match self.undeclared.iter().position(|(u, _, _)| eq_ic(u, urn)) {
            Some(i) => i,
            None => {
                if self.undeclared.len() >= self.max_count {
                    return Err(too_many_undeclared(self.undeclared.len() + 1));
                }
                self.bytes += urn.len();
                self.undeclared
                    .push((urn.to_string(), Map::new(), HashSet::new()));
                self.undeclared.len() - 1
            }
        };
        let (_, block, names) = &mut self.undeclared[i];
        if !names.insert(name.to_lowercase()) {
            return Err(Error::InvalidValue(format!(
                "attribute \"{urn}:{name}\" is given more than once"
            )));
        }
        self.bytes += name.len() + serde_json::to_vec(&value).map_or(usize::MAX, |t| t.len());
        if self.bytes > self.max_bytes {
            return Err(too_much_undeclared());
        }
        block.insert(name, value);
        Ok(())
    }

    /// Routes one URN-looking member of a body of `kind`.
    fn route(
        &mut self,
        registry: &Registry,
        kind: ResourceKind,
        key: String,
        value: Value,
        ignored: &mut Ignored,
    ) -> Result<Routed> {
        let mut matched = registry.match_key(kind, &key);
        if matched == KeyMatch::Undeclared
            && let Some((urn, name)) = split_undeclared(&key)
        {
            // `<legacy key>:<attr>`: the legacy keys name blocks only, so their attributes
            // are found by the block's URN.
            match registry.match_key(kind, urn) {
                KeyMatch::Core { attr: None } => matched = KeyMatch::Core { attr: Some(name) },
                KeyMatch::Extension { schema, attr: None } => {
                    matched = KeyMatch::Extension {
                        schema,
                        attr: Some(name),
                    }
                }
                _ => {}
            }
        }
        match matched {
            KeyMatch::Core { attr: Some(name) } => Ok(Routed::Core(name.to_string(), value)),
            KeyMatch::Core { attr: None } => Ok(Routed::CoreBlock(key, value)),
            KeyMatch::Extension { schema, attr: None } => {
                block(schema, &key, value, self.declared(schema), ignored)?;
                Ok(Routed::Done)
            }
            KeyMatch::Extension {
                schema,
                attr: Some(name),
            } => {
                let prefix = format!("{}:", schema.id);
                match schema.attribute(name) {
                    Some(attr) => set_attr(attr, value, self.declared(schema), &prefix, ignored)?,
                    None => ignored.note(&prefix, name),
                }
                Ok(Routed::Done)
            }
            // Data for the other resource type's schemas is not this resource's.
            KeyMatch::Foreign => Ok(Routed::Done),
            KeyMatch::Undeclared => {
                self.undeclared_key(key, value, ignored)?;
                Ok(Routed::Done)
            }
        }
    }

    /// An undeclared extension: an object is the block under its URN, kept as sent; any
    /// other value is one attribute, `<URN>:<attr>`, with the URN up to the last `:`.
    /// A URN a declaration could not have (see `undeclared_id_ok`) is ignored and named.
    fn undeclared_key(&mut self, key: String, value: Value, ignored: &mut Ignored) -> Result<()> {
        // A block is level 1; a lone value is an attribute, level 2.
        let depth = if value.is_object() { 1 } else { 2 };
        let Some(value) = trim(value, depth)? else {
            return Ok(());
        };
        match value {
            Value::Object(_) if !undeclared_id_ok(&key) => ignored.note("", &key),
            Value::Object(map) => {
                for (name, v) in map {
                    // Trimmed above: each value here is present.
                    self.put_undeclared(&key, name, v)?;
                }
            }
            value => {
                let Some((urn, name)) = split_undeclared(&key) else {
                    return Err(Error::InvalidValue(format!(
                        "\"{key}\" must be an object (an extension's attributes) or name one \
                         attribute as <schema URN>:<attribute>"
                    )));
                };
                if undeclared_id_ok(urn) {
                    self.put_undeclared(urn, name.to_string(), value)?;
                } else {
                    ignored.note("", &key);
                }
            }
        }
        Ok(())
    }

    /// Puts the blocks into `doc`: declared ones under their declared URN in registry order,
    /// then the undeclared ones as spelled, within the bounds. Empty blocks are absent.
    /// `prior` (a PATCH result) adds the stored values the operations left alone, applies
    /// `required` only to the extensions they touched, and tolerates undeclared data as large
    /// as what was stored.
    fn finish(
        mut self,
        registry: &Registry,
        kind: ResourceKind,
        doc: &mut Map<String, Value>,
        prior: Option<Prior>,
    ) -> Result<()> {
        let mut prior = prior;
        let mut verbatim = Vec::new();
        if let Some(p) = prior.as_mut() {
            for (schema, name, value) in std::mem::take(&mut p.kept) {
                self.declared(&schema).entry(name).or_insert(value);
            }
            verbatim = std::mem::take(&mut p.verbatim);
        }
        let checks = |urn: &str| prior.as_ref().is_none_or(|p| p.touches(urn));
        for ext in registry.extensions(kind) {
            let block = match self
                .declared
                .iter()
                .position(|(s, _)| s.id == ext.schema.id)
            {
                Some(i) => self.declared.swap_remove(i).1,
                None => Map::new(),
            };
            if block.is_empty() {
                // `schemaExtensions[].required` (RFC 7643 §6): every resource carries it.
                if ext.required && checks(&ext.schema.id) {
                    return Err(Error::InvalidValue(format!(
                        "the extension \"{}\" is required",
                        ext.schema.id
                    )));
                }
                continue;
            }
            // A required attribute of an extension the resource carries (RFC 7643 §7).
            let missing = ext.schema.attributes.iter().find(|a| {
                a.required && a.mutability != Mutability::ReadOnly && !block.contains_key(&a.name)
            });
            if let Some(a) = missing.filter(|_| checks(&ext.schema.id)) {
                return Err(Error::InvalidValue(format!(
                    "attribute \"{}:{}\" is required",
                    ext.schema.id, a.name
                )));
            }
            if checks(&ext.schema.id) {
                let size = serde_json::to_vec(&block).map_or(usize::MAX, |t| t.len());
                if size > MAX_EXTENSION_BYTES {
                    return Err(Error::InvalidValue(format!(
                        "the extension \"{}\" holds more than {MAX_EXTENSION_BYTES} bytes",
                        ext.schema.id
                    )));
                }
            }
            doc.insert(ext.schema.id.clone(), Value::Object(block));
        }
        if self.undeclared.len() > self.max_count {
            return Err(too_many_undeclared(self.undeclared.len()));
        }
        let mut bytes = 0;
        for (urn, block, _) in self.undeclared {
            bytes += urn.len() + serde_json::to_string(&block).map_or(usize::MAX, |t| t.len());
            if bytes > self.max_bytes {
                return Err(too_much_undeclared());
            }
            if doc.contains_key(&urn) {
                return Err(Error::InvalidValue(format!(
                    "\"{urn}\" is given more than once"
                )));
            }
            doc.insert(urn, Value::Object(block));
        }
        for (key, value) in verbatim {
            doc.entry(key).or_insert(value);
        }
        Ok(())
    }
}

/// `key` as `<URN>:<attribute>`: split at the last `:`, when what precedes is a URN with a
/// namespace and a specific string (`urn:NID:NSS`) and what follows is an attribute name.
pub(crate) fn split_undeclared(key: &str) -> Option<(&str, &str)> {
    let (urn, name) = key.rsplit_once(':')?;
    let is_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '$');
    let is_urn = urn.len() > 4
        && urn[..4].eq_ignore_ascii_case("urn:")
        && urn[4..].split(':').filter(|p| !p.is_empty()).count() >= 2;
    (is_name && is_urn).then_some((urn, name))
}

/// Whether `urn` may name an undeclared extension: it has the characters and the shape a
/// declared id must have (`declare::check_id`: no trailing `:`, no built-in's URN), so
/// `urn:…:core:2.0:User:` is not a block of its own.
pub(crate) fn undeclared_id_ok(urn: &str) -> bool {
    super::declare::check_id(urn).is_ok()
}

fn too_many_undeclared(count: usize) -> Error {
    Error::InvalidValue(format!(
        "{count} undeclared extension schemas; at most {MAX_UNDECLARED_EXTENSIONS} are kept per \
         resource (an administrator can declare them)"
    ))
}

fn too_much_undeclared() -> Error {
    Error::InvalidValue(format!(
        "the undeclared extension data exceeds {MAX_UNDECLARED_BYTES} bytes per resource"
    ))
}

/// An undeclared value with `""` and `null` removed at every level (Decision 9), and
/// objects and arrays left empty by that; `None` if nothing is left. `depth` is the level of
/// `value` inside its block.
fn trim(value: Value, depth: usize) -> Result<Option<Value>> {
    let nested = matches!(value, Value::Array(_) | Value::Object(_));
    if nested && depth > MAX_UNDECLARED_DEPTH {
        return Err(Error::InvalidValue(format!(
            "undeclared extension data is nested deeper than {MAX_UNDECLARED_DEPTH} levels"
        )));
    }
    Ok(match value {
        v if is_absent(&v) => None,
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.extend(trim(item, depth + 1)?);
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if let Some(v) = trim(v, depth + 1)? {
                    out.insert(k, v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        other => Some(other),
    })
}

/// Normalises a User body for POST or PUT against the schemas of `registry`.
pub fn user(body: Value, registry: &Registry) -> Result<UserInput> {
    user_in(body, registry, None)
}

/// Checks a user's PATCH result `doc` (stored as `before`): only what the operations changed
/// must meet the schemas in force (see `untouched`).
pub fn patched_user(
    doc: Map<String, Value>,
    before: &Map<String, Value>,
    registry: &Registry,
) -> Result<UserInput> {
    let (check, prior) = untouched::split(doc, before, registry, ResourceKind::User);
    user_in(Value::Object(check), registry, Some(prior))
}

fn user_in(body: Value, registry: &Registry, prior: Option<Prior>) -> Result<UserInput> {
    let src = as_object(body)?;
    let mut core = Map::new();
    let mut blocks = Blocks::new(prior.as_ref());
    let mut ignored = Ignored::default();
    for (key, value) in src {
        if is_server_owned(&key) {
            continue;
        }
        let (name, value) = if is_urn_key(&key) {
            match blocks.route(registry, ResourceKind::User, key, value, &mut ignored)? {
                Routed::Core(name, value) => (name, value),
                Routed::CoreBlock(key, value) => {
                    // Nested core attributes follow the top-level rules: `externalId` is
                    // accepted, `id`, `meta` and `schemas` are ignored.
                    match value {
                        v if is_absent(&v) => {}
                        Value::Object(map) => {
                            for (name, v) in map {
                                core_attr(&name, v, &mut core, &mut ignored)?;
                            }
                        }
                        _ => {
                            return Err(Error::InvalidValue(format!(
                                "\"{key}\" must be an object"
                            )));
                        }
                    }
                    continue;
                }
                Routed::Done => continue,
            }
        } else {
            (key, value)
        };
        core_attr(&name, value, &mut core, &mut ignored)?;
    }
    if !core.contains_key("userName") {
        return Err(Error::InvalidValue(
            "attribute \"userName\" is required".into(),
        ));
    }
    let active_given = core.contains_key("active");
    blocks.finish(registry, ResourceKind::User, &mut core, prior)?;
    Ok(UserInput {
        doc: core,
        active_given,
        ignored,
    })
}

/// Normalises a block of attributes nested under a schema URN key into `doc`.
fn block(
    schema: &Schema,
    key: &str,
    value: Value,
    doc: &mut Map<String, Value>,
    ignored: &mut Ignored,
) -> Result<()> {
    match value {
        v if is_absent(&v) => Ok(()),
        Value::Object(map) => {
            normalise_attrs(schema, map, doc, &format!("{}:", schema.id), ignored)
        }
        _ => Err(Error::InvalidValue(format!("\"{key}\" must be an object"))),
    }
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

/// A core User attribute; an unknown one is ignored. So are the enterprise names Entra sends
/// bare at the top level (`STRAY_ENTERPRISE_KEYS`): it sets them for real through PATCH.
fn core_attr(
    name: &str,
    value: Value,
    doc: &mut Map<String, Value>,
    ignored: &mut Ignored,
) -> Result<()> {
    if eq_ic(name, "externalId") {
        return external_id(value, doc);
    }
    if is_server_owned(name) {
        return Ok(());
    }
    match USER.attribute(name) {
        Some(attr) => set_attr(attr, value, doc, "", ignored),
        None => {
            ignored.note("", name);
            Ok(())
        }
    }
}

/// Normalises a Group body for POST or PUT against the schemas of `registry`.
pub fn group(body: Value, registry: &Registry) -> Result<GroupInput> {
    group_in(body, registry, None)
}

/// Checks a group's PATCH result `doc` (stored as `before`), like `patched_user`.
pub fn patched_group(
    doc: Map<String, Value>,
    before: &Map<String, Value>,
    registry: &Registry,
) -> Result<GroupInput> {
    let (check, prior) = untouched::split(doc, before, registry, ResourceKind::Group);
    group_in(Value::Object(check), registry, Some(prior))
}

fn group_in(body: Value, registry: &Registry, prior: Option<Prior>) -> Result<GroupInput> {
    let src = as_object(body)?;
    let mut doc = Map::new();
    let mut members = None;
    let mut blocks = Blocks::new(prior.as_ref());
    let mut ignored = Ignored::default();
    let mut pending: Vec<(String, Value)> = Vec::new();
    for (key, value) in src {
        if is_server_owned(&key) {
            continue;
        }
        if !is_urn_key(&key) {
            pending.push((key, value));
            continue;
        }
        match blocks.route(registry, ResourceKind::Group, key, value, &mut ignored)? {
            Routed::Core(name, value) => pending.push((name, value)),
            Routed::CoreBlock(key, value) => match value {
                v if is_absent(&v) => {}
                Value::Object(map) => pending.extend(map),
                _ => {
                    return Err(Error::InvalidValue(format!("\"{key}\" must be an object")));
                }
            },
            Routed::Done => {}
        }
    }
    for (name, value) in pending {
        if is_server_owned(&name) {
            continue;
        }
        if eq_ic(&name, "externalId") {
            external_id(value, &mut doc)?;
        } else if eq_ic(&name, "members") {
            if members.is_some() {
                return Err(Error::InvalidValue(
                    "attribute \"members\" is given more than once".into(),
                ));
            }
            members = Some(member_ids(value, &mut ignored)?);
        } else {
            match GROUP.attribute(&name) {
                Some(attr) => set_attr(attr, value, &mut doc, "", &mut ignored)?,
                None => ignored.note("", &name),
            }
        }
    }
    if !doc.contains_key("displayName") {
        return Err(Error::InvalidValue(
            "attribute \"displayName\" is required".into(),
        ));
    }
    blocks.finish(registry, ResourceKind::Group, &mut doc, prior)?;
    Ok(GroupInput {
        doc,
        members,
        ignored,
    })
}

/// The member ids of a `members` value. `display`, `type` and `$ref` are derived by the server
/// from the member itself, so only `value` matters; each must be a non-empty string. Other
/// keys (Entra's `displayName`) are noted in `ignored`, and the member is added.
pub fn member_ids(value: Value, ignored: &mut Ignored) -> Result<Vec<String>> {
    let Some(attr) = GROUP.attribute("members") else {
        return Err(Error::internal("Group schema lacks members"));
    };
    let needs_value =
        || Error::InvalidValue("every member needs a \"value\" with the member's id".into());
    // A member that says something but not who (`{"displayName": "Bob"}`, or the same with
    // `"value": null` or `""`) is refused before its unknown keys are dropped: it would
    // otherwise vanish as an empty value, and a `replace` with it would empty the group.
    let names_nobody = |item: &Value| {
        item.as_object().is_some_and(|m| {
            let is_value = |k: &String| eq_ic(k, "value");
            m.iter().any(|(k, v)| !is_value(k) && !is_absent(v))
                && !m.iter().any(|(k, v)| is_value(k) && !is_absent(v))
        })
    };
    let says_nobody = match &value {
        Value::Array(items) => items.iter().any(names_nobody),
        one => names_nobody(one),
    };
    if says_nobody {
        return Err(needs_value());
    }
    let mut ids: Vec<String> = Vec::new();
    let Some(Value::Array(items)) = normalise_value(attr, value, "members", ignored)? else {
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
            _ => return Err(needs_value()),
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ENTERPRISE_USER, ENTERPRISE_USER_URN, GROUP_URN, USER_URN};
    use proptest::prelude::*;
    use serde_json::json;

    const ENT: &str = ENTERPRISE_USER_URN;

    /// The normalised User, or a panic naming the error.
    fn ok(body: Value) -> UserInput {
        match user(body.clone(), &Registry::builtin()) {
            Ok(input) => input,
            Err(e) => panic!("{body} was refused: {e:?}"),
        }
    }

    /// The normalised User document as one JSON value.
    fn doc(body: Value) -> Value {
        Value::Object(ok(body).doc)
    }

    /// The `invalidValue` message `body` is refused with.
    fn invalid(body: Value) -> String {
        match user(body.clone(), &Registry::builtin()) {
            Err(Error::InvalidValue(m)) => m,
            other => panic!("{body}: expected invalidValue, got {other:?}"),
        }
    }

    fn group_ok(body: Value) -> GroupInput {
        match group(body.clone(), &Registry::builtin()) {
            Ok(input) => input,
            Err(e) => panic!("{body} was refused: {e:?}"),
        }
    }

    fn group_invalid(body: Value) -> String {
        match group(body.clone(), &Registry::builtin()) {
            Err(Error::InvalidValue(m)) => m,
            other => panic!("{body}: expected invalidValue, got {other:?}"),
        }
    }

    /// The names `user(body)` ignored.
    fn ignored(body: Value) -> Vec<String> {
        ok(body).ignored.names().to_vec()
    }

    /// A body with the required userName plus `extra`.
    fn with(extra: Value) -> Value {
        let mut body = json!({"userName": "bjensen"});
        for (k, v) in extra.as_object().expect("object").clone() {
            body[k] = v;
        }
        body
    }

    // ---- attribute names -----------------------------------------------------------------

    #[test]
    fn attribute_names_in_any_case_map_to_schema_names() {
        let d = doc(json!({
            "USERNAME": "bjensen",
            "displayname": "Babs",
            "NickName": "B",
            "ACTIVE": true,
        }));
        assert_eq!(
            d,
            json!({"userName": "bjensen", "displayName": "Babs", "nickName": "B", "active": true})
        );
    }

    #[test]
    fn sub_attribute_names_in_any_case_map_to_schema_names() {
        let d = doc(with(json!({
            "NAME": {"GIVENNAME": "Barbara", "familyname": "Jensen"},
            "Emails": [{"VALUE": "b@example.com", "Type": "work", "PRIMARY": true}],
        })));
        assert_eq!(
            d["name"],
            json!({"givenName": "Barbara", "familyName": "Jensen"})
        );
        assert_eq!(
            d["emails"],
            json!([{"value": "b@example.com", "type": "work", "primary": true}])
        );
    }

    #[test]
    fn external_id_in_any_case_is_kept_exactly() {
        let d = doc(with(json!({"EXTERNALID": "AbC-1"})));
        assert_eq!(d["externalId"], "AbC-1");
    }

    #[test]
    fn enterprise_urn_key_in_any_case_maps_to_the_rfc_urn() {
        let d = doc(with(json!({
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"DEPARTMENT": "Sales"}
        })));
        assert_eq!(d[ENT], json!({"department": "Sales"}));
        assert_eq!(d.as_object().unwrap().len(), 2);
    }

    #[test]
    fn string_values_are_kept_as_sent() {
        let d = doc(json!({"userName": "Ünïcødé User", "title": " Vice President "}));
        assert_eq!(d["userName"], "Ünïcødé User");
        assert_eq!(d["title"], " Vice President ");
    }

    // ---- "" and null mean absent ---------------------------------------------------------

    #[test]
    fn empty_string_and_null_at_top_level_are_absent() {
        let d = doc(with(json!({
            "displayName": "",
            "nickName": null,
            "externalId": "",
            "title": null,
            "name": "",
            "emails": null,
            "active": "",
            "password": null,
        })));
        assert_eq!(d, json!({"userName": "bjensen"}));
    }

    #[test]
    fn empty_sub_attributes_are_absent() {
        let d = doc(with(json!({
            "name": {"givenName": "Barbara", "familyName": "", "middleName": null}
        })));
        assert_eq!(d["name"], json!({"givenName": "Barbara"}));
    }

    #[test]
    fn complex_value_with_only_empty_sub_attributes_is_absent() {
        let d = doc(with(json!({"name": {"givenName": "", "familyName": null}})));
        assert!(d.get("name").is_none(), "{d}");
    }

    #[test]
    fn empty_elements_of_multi_valued_attributes_are_dropped() {
        let d = doc(with(json!({
            "emails": [null, "", {"value": "a@example.com"}, {"value": ""}, {}]
        })));
        assert_eq!(d["emails"], json!([{"value": "a@example.com"}]));
    }

    #[test]
    fn multi_valued_attribute_with_only_empty_elements_is_absent() {
        let d = doc(with(json!({
            "emails": [null, "", {"value": ""}],
            "phoneNumbers": [],
        })));
        assert_eq!(d, json!({"userName": "bjensen"}));
    }

    #[test]
    fn empty_enterprise_block_is_absent() {
        for block in [
            json!(null),
            json!(""),
            json!({}),
            json!({"department": "", "manager": null}),
        ] {
            let d = doc(with(json!({ENT: block.clone()})));
            assert_eq!(d, json!({"userName": "bjensen"}), "block {block}");
        }
    }

    #[test]
    fn empty_enterprise_sub_attributes_are_absent() {
        let d = doc(with(
            json!({ENT: {"department": "Sales", "costCenter": "", "manager": ""}}),
        ));
        assert_eq!(d[ENT], json!({"department": "Sales"}));
    }

    // ---- booleans ------------------------------------------------------------------------

    #[test]
    fn string_booleans_are_accepted() {
        for (sent, want) in [
            ("True", true),
            ("true", true),
            ("TRUE", true),
            (" TRUE ", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("\tfalse\n", false),
        ] {
            let d = doc(with(json!({"active": sent})));
            assert_eq!(d["active"], json!(want), "{sent:?}");
        }
    }

    #[test]
    fn numbers_zero_and_one_are_booleans() {
        assert_eq!(doc(with(json!({"active": 1})))["active"], json!(true));
        assert_eq!(doc(with(json!({"active": 0})))["active"], json!(false));
    }

    #[test]
    fn json_booleans_are_kept() {
        assert_eq!(doc(with(json!({"active": true})))["active"], json!(true));
        assert_eq!(doc(with(json!({"active": false})))["active"], json!(false));
    }

    #[test]
    fn other_strings_are_not_booleans() {
        for sent in ["yes", "no", "t", "f", "truee", "2", "on", "-1", " "] {
            let m = invalid(with(json!({"active": sent})));
            assert!(
                m.contains("\"active\"") && m.contains("boolean"),
                "{sent:?}: {m}"
            );
        }
    }

    #[test]
    fn other_numbers_are_not_booleans() {
        for sent in [json!(2), json!(-1), json!(0.5), json!(1.0), json!(1e3)] {
            let m = invalid(with(json!({"active": sent.clone()})));
            assert!(m.contains("boolean"), "{sent}: {m}");
        }
    }

    #[test]
    fn arrays_and_objects_are_not_booleans() {
        invalid(with(json!({"active": [true]})));
        invalid(with(json!({"active": {"value": true}})));
    }

    #[test]
    fn string_booleans_are_accepted_in_sub_attributes() {
        let d = doc(with(json!({
            "emails": [{"value": "a@example.com", "primary": "True"},
                       {"value": "b@example.com", "primary": 0}]
        })));
        assert_eq!(d["emails"][0]["primary"], json!(true));
        assert_eq!(d["emails"][1]["primary"], json!(false));
    }

    #[test]
    fn bad_boolean_in_a_sub_attribute_names_the_path() {
        let m = invalid(with(
            json!({"emails": [{"value": "a@example.com", "primary": "yes"}]}),
        ));
        assert!(m.contains("emails.primary"), "{m}");
    }

    #[test]
    fn parse_bool_table() {
        for (s, want) in [
            ("true", Some(true)),
            ("TrUe", Some(true)),
            ("1", Some(true)),
            (" 1 ", Some(true)),
            ("false", Some(false)),
            ("FALSE", Some(false)),
            ("0", Some(false)),
            ("", None),
            ("01", None),
            ("yes", None),
            ("tru", None),
        ] {
            assert_eq!(parse_bool(s), want, "{s:?}");
        }
    }

    #[test]
    fn active_given_reflects_the_body() {
        assert!(ok(with(json!({"active": true}))).active_given);
        assert!(ok(with(json!({"active": "false"}))).active_given);
        assert!(!ok(with(json!({}))).active_given);
        assert!(!ok(with(json!({"active": null}))).active_given);
        assert!(!ok(with(json!({"active": ""}))).active_given);
    }

    #[test]
    fn active_false_is_kept_false() {
        let input = ok(with(json!({"active": false})));
        assert!(input.active_given);
        assert_eq!(input.doc["active"], json!(false));
    }

    // ---- multi-valued: single values, primary ---------------------------------------------

    #[test]
    fn single_object_becomes_a_one_element_primary_array() {
        let d = doc(with(
            json!({"emails": {"value": "a@example.com", "type": "work"}}),
        ));
        assert_eq!(
            d["emails"],
            json!([{"value": "a@example.com", "type": "work", "primary": true}])
        );
    }

    #[test]
    fn bare_string_becomes_a_one_element_primary_array() {
        let d = doc(with(
            json!({"emails": "a@example.com", "phoneNumbers": "+1 555"}),
        ));
        assert_eq!(
            d["emails"],
            json!([{"value": "a@example.com", "primary": true}])
        );
        assert_eq!(
            d["phoneNumbers"],
            json!([{"value": "+1 555", "primary": true}])
        );
    }

    #[test]
    fn wrapped_single_value_keeps_an_explicit_primary_false() {
        let d = doc(with(
            json!({"emails": {"value": "a@example.com", "primary": false}}),
        ));
        assert_eq!(
            d["emails"],
            json!([{"value": "a@example.com", "primary": false}])
        );
        let d = doc(with(
            json!({"emails": {"value": "a@example.com", "primary": "0"}}),
        ));
        assert_eq!(
            d["emails"],
            json!([{"value": "a@example.com", "primary": false}])
        );
    }

    #[test]
    fn wrapped_single_value_with_primary_true_is_unchanged() {
        let d = doc(with(
            json!({"emails": {"value": "a@example.com", "primary": "true"}}),
        ));
        assert_eq!(
            d["emails"],
            json!([{"value": "a@example.com", "primary": true}])
        );
    }

    #[test]
    fn array_values_are_not_made_primary() {
        let d = doc(with(json!({"emails": [{"value": "a@example.com"}]})));
        assert_eq!(d["emails"], json!([{"value": "a@example.com"}]));
        let d = doc(with(
            json!({"emails": [{"value": "a@x"}, {"value": "b@x"}]}),
        ));
        assert_eq!(d["emails"], json!([{"value": "a@x"}, {"value": "b@x"}]));
    }

    #[test]
    fn bare_strings_inside_an_array_become_value_objects() {
        let d = doc(with(json!({"emails": ["a@x", {"value": "b@x"}]})));
        assert_eq!(d["emails"], json!([{"value": "a@x"}, {"value": "b@x"}]));
    }

    #[test]
    fn one_primary_among_many_is_accepted() {
        let d = doc(with(json!({
            "emails": [{"value": "a@x", "primary": false}, {"value": "b@x", "primary": true}]
        })));
        assert_eq!(d["emails"][1]["primary"], json!(true));
    }

    #[test]
    fn two_primaries_are_refused() {
        let m = invalid(with(json!({
            "emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]
        })));
        assert!(m.contains("emails") && m.contains("primary"), "{m}");
    }

    #[test]
    fn two_primaries_are_refused_after_boolean_normalisation() {
        let m = invalid(with(json!({
            "phoneNumbers": [{"value": "1", "primary": "True"}, {"value": "2", "primary": 1}]
        })));
        assert!(m.contains("phoneNumbers"), "{m}");
    }

    // ---- readOnly, server-owned and writeOnly --------------------------------------------

    #[test]
    fn id_meta_and_schemas_are_ignored() {
        let d = doc(with(json!({
            "id": "client-chosen",
            "META": {"resourceType": "User", "created": "yesterday"},
            "schemas": ["urn:scim:schemas:core:1.0", "whatever"],
            "Id": null,
        })));
        assert_eq!(d, json!({"userName": "bjensen"}));
    }

    #[test]
    fn groups_are_ignored_whatever_their_shape() {
        for groups in [
            json!([]),
            json!([{"value": "g1", "display": "G"}]),
            json!("junk"),
            json!(5),
        ] {
            let d = doc(with(json!({"groups": groups.clone()})));
            assert_eq!(d, json!({"userName": "bjensen"}), "groups {groups}");
        }
    }

    #[test]
    fn manager_display_name_is_ignored() {
        let d = doc(with(
            json!({ENT: {"manager": {"value": "m1", "displayName": "Boss"}}}),
        ));
        assert_eq!(d[ENT], json!({"manager": {"value": "m1"}}));
    }

    #[test]
    fn manager_with_only_display_name_is_absent() {
        let d = doc(with(json!({ENT: {"manager": {"displayName": "Boss"}}})));
        assert_eq!(d, json!({"userName": "bjensen"}));
    }

    #[test]
    fn password_is_checked_then_dropped() {
        let input = ok(with(json!({"password": "s3cret!"})));
        assert!(!input.doc.contains_key("password"));
        assert_eq!(Value::Object(input.doc), json!({"userName": "bjensen"}));
        let input = ok(with(json!({"PASSWORD": "s3cret!"})));
        assert!(!input.doc.contains_key("PASSWORD") && !input.doc.contains_key("password"));
    }

    #[test]
    fn password_of_the_wrong_type_is_refused() {
        let m = invalid(with(json!({"password": 1234})));
        assert!(m.contains("password"), "{m}");
        invalid(with(json!({"password": {"value": "x"}})));
    }

    // ---- unknown attributes and URNs -----------------------------------------------------

    #[test]
    fn unknown_attribute_is_ignored_and_named() {
        let body = with(json!({"favouriteColour": "blue", "title": "Boss"}));
        assert_eq!(
            doc(body.clone()),
            json!({"userName": "bjensen", "title": "Boss"})
        );
        assert_eq!(ignored(body), ["favouriteColour"]);
    }

    #[test]
    fn unknown_sub_attribute_is_ignored_and_named_by_path() {
        let body = with(json!({
            "name": {"givenName": "B", "nickname": "x"},
            "emails": [{"value": "a@x", "label": "work"}, {"value": "b@x", "label": "home"}],
        }));
        let d = doc(body.clone());
        assert_eq!(d["name"], json!({"givenName": "B"}));
        assert_eq!(d["emails"], json!([{"value": "a@x"}, {"value": "b@x"}]));
        // Once per name, however many values carried it.
        assert_eq!(ignored(body), ["name.nickname", "emails.label"]);
    }

    #[test]
    fn unknown_sub_attribute_of_manager_is_ignored() {
        let body = with(json!({ENT: {"manager": {"value": "m1", "email": "x"}}}));
        assert_eq!(doc(body.clone())[ENT], json!({"manager": {"value": "m1"}}));
        assert_eq!(ignored(body), [format!("{ENT}:manager.email")]);
    }

    #[test]
    fn unknown_enterprise_attribute_is_ignored_and_named_with_its_urn() {
        for body in [
            with(json!({ENT: {"shoeSize": "42", "department": "Sales"}})),
            with(json!({format!("{ENT}:shoeSize"): "42", format!("{ENT}:department"): "Sales"})),
        ] {
            assert_eq!(doc(body.clone())[ENT], json!({"department": "Sales"}));
            assert_eq!(ignored(body), [format!("{ENT}:shoeSize")]);
        }
    }

    #[test]
    fn ignoring_unknown_names_keeps_type_errors_on_known_ones() {
        let m = invalid(with(json!({"adreses": [], "title": 5})));
        assert!(m.contains("title"), "{m}");
        let m = invalid(with(json!({"name": {"nickname": "x", "givenName": 5}})));
        assert!(m.contains("name.givenName"), "{m}");
        // An unknown name is no excuse for a known one given twice.
        let m = invalid(with(json!({"title": "a", "TITLE": "b", "x": 1})));
        assert!(m.contains("more than once"), "{m}");
    }

    #[test]
    fn nothing_ignored_is_an_empty_list() {
        let input = ok(with(
            json!({"name": {"givenName": "B"}, ENT: {"department": "S"}}),
        ));
        assert!(input.ignored.is_empty());
        assert_eq!(input.ignored.count(), 0);
    }

    #[test]
    fn ignored_names_are_bounded_in_count_and_length() {
        let mut extra = Map::new();
        for i in 0..50 {
            extra.insert(format!("x{i:02}"), json!(1));
        }
        extra.insert("y".repeat(10_000), json!(1));
        extra.insert(format!("{}é", "z".repeat(63)), json!(1));
        let input = ok(with(Value::Object(extra)));
        assert_eq!(input.ignored.names().len(), MAX_IGNORED_NAMES);
        assert_eq!(input.ignored.count(), 52);
        let mut detail = Map::new();
        input.ignored.describe(&mut detail);
        assert_eq!(
            detail["ignored"].as_array().unwrap().len(),
            MAX_IGNORED_NAMES
        );
        assert_eq!(detail["ignoredMore"], json!(32));
        // Long names are cut at a character boundary: the first 20 names (in key order) are
        // the x's, so cut ones are checked directly.
        let mut ig = Ignored::default();
        ig.note("name.", &"y".repeat(10_000));
        ig.note("", &format!("{}é", "z".repeat(63)));
        assert_eq!(
            ig.names()[0],
            format!("name.{}", "y".repeat(MAX_IGNORED_NAME))
        );
        assert_eq!(ig.names()[1], "z".repeat(63));
    }

    #[test]
    fn ignored_names_past_the_listed_ones_merge_by_hash() {
        let many = |from: usize| {
            let mut ig = Ignored::default();
            for i in from..from + 30 {
                ig.note("", &format!("x{i:02}"));
            }
            ig
        };
        // 0..30 and 10..40: 40 distinct names, the overlap counted once.
        let mut a = many(0);
        a.extend(many(10));
        assert_eq!((a.names().len(), a.count()), (MAX_IGNORED_NAMES, 40));
        // Names only counted in the merged one are not listed again when seen by name.
        let mut b = Ignored::default();
        b.extend(many(0));
        b.note("", "x25");
        b.note("", "x00");
        assert_eq!(b.count(), 30);
    }

    #[test]
    fn a_name_a_declared_extension_lacks_is_ignored_and_named() {
        let input = user(
            with(json!({ACME: {"nope": 1, "badgeNumber": "42"}, "urn:acme:2.0:User:nix": 2})),
            &acme(),
        )
        .unwrap();
        assert_eq!(input.doc[ACME], json!({"badgeNumber": "42"}));
        assert_eq!(
            input.ignored.names(),
            ["urn:acme:2.0:User:nope", "urn:acme:2.0:User:nix"]
        );
    }

    #[test]
    fn ignored_names_merge_without_repeats() {
        let mut a = Ignored::default();
        a.note("", "adreses");
        let mut b = Ignored::default();
        b.note("", "adreses");
        b.note("name.", "nickname");
        a.extend(b);
        assert_eq!(a.names(), ["adreses", "name.nickname"]);
        assert_eq!(a.count(), 2);
        let mut detail = Map::new();
        a.describe(&mut detail);
        assert_eq!(
            detail,
            json!({"ignored": ["adreses", "name.nickname"]})
                .as_object()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn undeclared_extension_blocks_are_kept_as_sent() {
        let d = doc(with(json!({
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User":
                {"extensionAttribute1": "x"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:Usr": {"department": "x"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:Users": {"department": "x"},
            "urn:ietf:params:scim:schemas:extension:acme:2.0:User":
                {"anything": [1, 2], "Deep": {"a": {"b": true}}},
        })));
        assert_eq!(
            d,
            json!({
                "userName": "bjensen",
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/User":
                    {"extensionAttribute1": "x"},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:Usr": {"department": "x"},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:Users": {"department": "x"},
                "urn:ietf:params:scim:schemas:extension:acme:2.0:User":
                    {"anything": [1, 2], "Deep": {"a": {"b": true}}},
            })
        );
    }

    #[test]
    fn undeclared_blocks_are_trimmed_and_empty_ones_absent() {
        let d = doc(with(json!({
            "urn:acme:2.0:User": {"a": "", "b": null, "c": [null, "", {"x": ""}], "d": "1"},
            "urn:other:2.0:User": {"a": "", "b": {"c": null}},
            "urn:third:2.0:User": null,
        })));
        assert_eq!(
            d,
            json!({"userName": "bjensen", "urn:acme:2.0:User": {"d": "1"}})
        );
    }

    #[test]
    fn flattened_undeclared_keys_merge_into_their_block() {
        let d = doc(with(json!({
            "urn:ietf:params:scim:schemas:extension:acme:2.0:User:badge": "42",
            "urn:ietf:params:scim:schemas:extension:ACME:2.0:User": {"shell": "/bin/sh"},
            "urn:ietf:params:scim:schemas:extension:acme:2.0:User:uid": 1001,
        })));
        assert_eq!(
            d["urn:ietf:params:scim:schemas:extension:acme:2.0:User"],
            json!({"badge": "42", "shell": "/bin/sh", "uid": 1001})
        );
        assert_eq!(d.as_object().map(Map::len), Some(2));
    }

    #[test]
    fn attributes_qualified_by_a_legacy_key_join_their_block() {
        let d = doc(with(json!({
            "urn:scim:schemas:extension:enterprise:1.0:department": "Sales",
            "urn:scim:schemas:core:1.0:title": "Eng",
        })));
        assert_eq!(d[ENT], json!({"department": "Sales"}));
        assert_eq!(d["title"], "Eng");
        assert!(d.get("urn:scim:schemas:extension:enterprise:1.0").is_none());
    }

    #[test]
    fn undeclared_attribute_given_twice_is_refused() {
        let m = invalid(with(json!({
            "urn:acme:2.0:User:badge": "42",
            "urn:acme:2.0:User": {"Badge": "43"},
        })));
        assert!(m.contains("more than once"), "{m}");
    }

    #[test]
    fn undeclared_key_without_an_attribute_must_hold_an_object() {
        for key in [
            "https://example.com/scim/ext",
            "urn:acme",
            "urn:acme:2.0:User:2x",
        ] {
            let m = invalid(with(json!({key: 5})));
            assert!(m.contains("must be an object"), "{key}: {m}");
        }
    }

    #[test]
    fn undeclared_data_is_bounded() {
        let mut many = Map::new();
        for i in 0..=MAX_UNDECLARED_EXTENSIONS {
            many.insert(format!("urn:acme:{i}:User"), json!({"a": "b"}));
        }
        assert!(invalid(with(Value::Object(many.clone()))).contains("undeclared"));
        many.remove("urn:acme:0:User");
        assert_eq!(ok(with(Value::Object(many))).doc.len(), 11);
        let big = "x".repeat(MAX_UNDECLARED_BYTES);
        assert!(invalid(with(json!({"urn:acme:2.0:User": {"a": big}}))).contains("bytes"));
        let mut deep = json!("leaf");
        for _ in 0..MAX_UNDECLARED_DEPTH {
            deep = json!([deep]);
        }
        assert!(invalid(with(json!({"urn:acme:2.0:User": {"a": deep}}))).contains("nested"));
    }

    /// The bounds fail as soon as they are passed: before any later key is read, whatever
    /// the body holds after it (review2 #2: gathering it all first was quadratic).
    #[test]
    fn undeclared_bounds_fail_as_soon_as_passed() {
        let mut many = Map::new();
        many.insert("userName".into(), json!("q"));
        for i in 0..2000 {
            many.insert(format!("urn:a:b{i}"), json!({"a": 1}));
        }
        // A type error after the bound is never reached.
        many.insert("active".into(), json!([1]));
        let e = invalid(Value::Object(many));
        assert!(e.contains("11 undeclared"), "{e}");

        let mut block = Map::new();
        for i in 0..5000 {
            block.insert(format!("a{i}"), json!(1));
        }
        block.insert("A0".into(), json!(2));
        let e = invalid(json!({"userName": "q", "urn:x:y:User": block}));
        assert!(e.contains("bytes"), "{e}");
    }

    /// review2 #8: an undeclared URN has the shape of a declared id; a key that has not (a
    /// built-in URN with a trailing `:`, a character no id has) is ignored and named.
    #[test]
    fn undeclared_ids_have_the_shape_of_declared_ones() {
        let core = format!("{USER_URN}:");
        let input = ok(with(json!({
            core.clone(): {"userName": "root", "active": true},
            "urn:x y:z:User": {"a": "b"},
            "urn:x y:z:User:a": "b",
            "urn:acme:2.0:User": {"a": "b"},
        })));
        assert_eq!(
            Value::Object(input.doc),
            json!({"userName": "bjensen", "urn:acme:2.0:User": {"a": "b"}})
        );
        assert_eq!(
            input.ignored.names(),
            [core.as_str(), "urn:x y:z:User", "urn:x y:z:User:a"]
        );
    }

    #[test]
    fn data_under_a_group_schema_is_not_a_users() {
        let d = doc(with(json!({GROUP_URN: {"displayName": "x"}})));
        assert_eq!(d, json!({"userName": "bjensen"}));
    }

    use crate::scim::registry::testing::acme;

    const ACME: &str = "urn:acme:2.0:User";

    fn acme_doc(body: Value) -> Result<Value> {
        user(body, &acme()).map(|u| Value::Object(u.doc))
    }

    /// review2 #4: a registered extension's block is bounded like undeclared data is.
    #[test]
    fn declared_blocks_are_bounded() {
        let big = "x".repeat(MAX_EXTENSION_BYTES);
        let e = acme_doc(with(json!({ACME: {"badgeNumber": big}}))).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidValue(m) if m.contains("holds more")),
            "{e:?}"
        );
        assert!(acme_doc(with(json!({ACME: {"badgeNumber": "x".repeat(1000)}}))).is_ok());
    }

    #[test]
    fn declared_blocks_are_typed_and_spelled_as_declared() {
        let d = acme_doc(with(json!({
            "URN:ACME:2.0:USER": {"BadgeNumber": "42", "vip": "True", "serial": "s", "uid": ""},
            "urn:acme:2.0:User:uid": 7,
            "urn:acme:2.0:User:keys": {"value": "ssh-ed25519 AAA"},
        })))
        .unwrap();
        assert_eq!(
            d[ACME],
            json!({"badgeNumber": "42", "vip": true, "uid": 7, "keys": [{"value": "ssh-ed25519 AAA"}]})
        );
        assert_eq!(d.as_object().map(Map::len), Some(2));
    }

    #[test]
    fn declared_values_of_the_wrong_type_are_refused_by_name() {
        for (body, name) in [
            (json!({ACME: {"uid": "seven"}}), "uid"),
            (json!({"urn:acme:2.0:User:vip": "perhaps"}), "vip"),
            (json!({ACME: {"badgeNumber": 42}}), "badgeNumber"),
            (json!({ACME: "x"}), ACME),
        ] {
            match acme_doc(with(body)) {
                Err(Error::InvalidValue(m)) => assert!(m.contains(name), "{m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn required_extensions_and_attributes_are_enforced() {
        let schema = Schema {
            id: "urn:must:2.0:User".into(),
            name: "Must".into(),
            description: String::new(),
            attributes: vec![
                Arc::new(Attribute::string("badge", "").required()),
                Arc::new(Attribute::string("note", "")),
            ],
        };
        let r = |required| {
            Registry::new(vec![crate::scim::registry::Declared {
                schema: schema.clone(),
                resource: ResourceKind::User,
                required,
            }])
        };
        let refused = |body: Value, registry: &Registry| match user(body, registry) {
            Err(Error::InvalidValue(m)) => m,
            other => panic!("{other:?}"),
        };
        let m = refused(with(json!({})), &r(true));
        assert!(
            m.contains("urn:must:2.0:User") && m.contains("required"),
            "{m}"
        );
        let m = refused(with(json!({"urn:must:2.0:User": {"note": "n"}})), &r(false));
        assert!(m.contains("badge"), "{m}");
        assert!(user(with(json!({})), &r(false)).is_ok());
        let ok = user(with(json!({"urn:must:2.0:User:badge": "b"})), &r(true)).unwrap();
        assert_eq!(ok.doc["urn:must:2.0:User"], json!({"badge": "b"}));
    }

    #[test]
    fn declared_blocks_left_empty_are_absent() {
        let d = acme_doc(with(json!({ACME: {"serial": "read-only", "uid": null}}))).unwrap();
        assert_eq!(d, json!({"userName": "bjensen"}));
    }

    #[test]
    fn a_declared_prefix_claims_only_at_a_boundary() {
        let d = acme_doc(with(json!({"urn:acme:2.0:UserX": {"uid": "not typed"}}))).unwrap();
        assert_eq!(d["urn:acme:2.0:UserX"], json!({"uid": "not typed"}));
        assert!(d.get(ACME).is_none());
    }

    #[test]
    fn group_extensions_declared_and_undeclared() {
        let g = group(
            json!({
                "displayName": "Eng",
                "urn:acme:2.0:Group:costCenter": "C1",
                "urn:other:2.0:Group": {"x": 1},
                "urn:ietf:params:scim:schemas:core:2.0:Group": {"externalId": "e"},
                ACME: {"badgeNumber": "not a group's"},
            }),
            &acme(),
        )
        .unwrap();
        assert_eq!(
            Value::Object(g.doc),
            json!({
                "displayName": "Eng",
                "externalId": "e",
                "urn:acme:2.0:Group": {"costCenter": "C1"},
                "urn:other:2.0:Group": {"x": 1},
            })
        );
    }

    #[test]
    fn unknown_urn_keys_are_not_named_as_ignored() {
        let body = with(json!({"urn:ietf:params:scim:schemas:extension:acme:2.0:User": {"a": 1}}));
        assert!(ok(body).ignored.is_empty());
    }

    #[test]
    fn entra_top_level_enterprise_names_are_ignored() {
        let body = with(json!({
            "department": "Sales",
            "Manager": "m1",
            "employeeNumber": "7",
            "costCenter": "c",
            "organization": "o",
            "division": "d",
        }));
        assert_eq!(doc(body.clone()), json!({"userName": "bjensen"}));
        let mut names = ignored(body);
        names.sort();
        assert_eq!(
            names,
            [
                "Manager",
                "costCenter",
                "department",
                "division",
                "employeeNumber",
                "organization"
            ]
        );
    }

    // ---- schema URN keys -----------------------------------------------------------------

    #[test]
    fn legacy_enterprise_keys_map_to_the_rfc_urn() {
        for key in LEGACY_ENTERPRISE_KEYS {
            let d = doc(with(
                json!({key: {"department": "Sales", "employeeNumber": "7"}}),
            ));
            assert_eq!(
                d[ENT],
                json!({"department": "Sales", "employeeNumber": "7"}),
                "{key}"
            );
            assert!(d.get(key).is_none(), "{key}");
        }
    }

    #[test]
    fn legacy_and_rfc_enterprise_blocks_merge() {
        let d = doc(with(json!({
            "urn:scim:schemas:extension:enterprise:1.0": {"department": "Sales"},
            ENT: {"costCenter": "42"},
        })));
        assert_eq!(d[ENT], json!({"department": "Sales", "costCenter": "42"}));
    }

    #[test]
    fn same_enterprise_attribute_in_two_blocks_is_refused() {
        let m = invalid(with(json!({
            "urn:scim:schemas:extension:enterprise:2.0": {"department": "Sales"},
            ENT: {"department": "Ops"},
        })));
        assert!(
            m.contains("department") && m.contains("more than once"),
            "{m}"
        );
    }

    #[test]
    fn enterprise_block_must_be_an_object() {
        let m = invalid(with(json!({ENT: "Sales"})));
        assert!(m.contains(ENT), "{m}");
        invalid(with(json!({ENT: [{"department": "Sales"}]})));
    }

    #[test]
    fn urn_qualified_core_keys_are_accepted() {
        let d = doc(json!({
            "urn:ietf:params:scim:schemas:core:2.0:User:userName": "bjensen",
            "urn:ietf:params:scim:schemas:core:2.0:User:name": {"givenName": "B"},
            "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:ACTIVE": "true",
        }));
        assert_eq!(
            d,
            json!({"userName": "bjensen", "name": {"givenName": "B"}, "active": true})
        );
    }

    #[test]
    fn urn_qualified_core_external_id_and_read_only_keys() {
        let d = doc(json!({
            "userName": "bjensen",
            "urn:ietf:params:scim:schemas:core:2.0:User:externalId": "e1",
            "urn:ietf:params:scim:schemas:core:2.0:User:id": "x",
            "urn:ietf:params:scim:schemas:core:2.0:User:groups": [],
        }));
        assert_eq!(d, json!({"userName": "bjensen", "externalId": "e1"}));
    }

    #[test]
    fn urn_qualified_unknown_core_attribute_is_ignored() {
        let body = with(json!({"urn:ietf:params:scim:schemas:core:2.0:User:adreses": "x"}));
        assert_eq!(doc(body.clone()), json!({"userName": "bjensen"}));
        assert_eq!(ignored(body), ["adreses"]);
    }

    #[test]
    fn urn_qualified_enterprise_keys_are_accepted() {
        let d = doc(with(json!({
            format!("{ENT}:department"): "Sales",
            format!("{}:MANAGER", ENT.to_ascii_uppercase()): "m1",
        })));
        assert_eq!(
            d[ENT],
            json!({"department": "Sales", "manager": {"value": "m1"}})
        );
    }

    #[test]
    fn urn_qualified_and_block_enterprise_keys_merge() {
        let d = doc(with(json!({
            ENT: {"department": "Sales"},
            format!("{ENT}:costCenter"): "42",
        })));
        assert_eq!(d[ENT], json!({"department": "Sales", "costCenter": "42"}));
    }

    #[test]
    fn legacy_core_blocks_are_read() {
        for key in [USER_URN, LEGACY_CORE_KEYS[0], LEGACY_CORE_KEYS[1]] {
            let d = doc(json!({key: {"userName": "bjensen", "active": "1"}}));
            assert_eq!(d, json!({"userName": "bjensen", "active": true}), "{key}");
        }
    }

    #[test]
    fn core_block_follows_top_level_rules() {
        // externalId is a common attribute, and id/meta/schemas are ignored wherever the core
        // attributes are written (idp-compat.md Decision 1).
        let d = doc(json!({
            USER_URN: {
                "userName": "bjensen",
                "externalId": "e1",
                "id": "x",
                "meta": {},
                "schemas": [],
            }
        }));
        assert_eq!(d, json!({"userName": "bjensen", "externalId": "e1"}));
    }

    #[test]
    fn core_block_must_be_an_object() {
        invalid(with(json!({USER_URN: "bjensen"})));
    }

    // ---- manager -------------------------------------------------------------------------

    #[test]
    fn manager_forms_all_normalise_to_value() {
        for manager in [
            json!({"value": "m1"}),
            json!([{"value": "m1"}]),
            json!("m1"),
            json!(["m1"]),
            json!({"managerId": "m1"}),
            json!({"MANAGERID": "m1", "displayName": "Boss"}),
            json!([{"managerId": "m1"}]),
        ] {
            let d = doc(with(json!({ENT: {"manager": manager.clone()}})));
            assert_eq!(d[ENT], json!({"manager": {"value": "m1"}}), "{manager}");
        }
    }

    #[test]
    fn manager_ref_is_kept() {
        let d = doc(with(
            json!({ENT: {"manager": [{"$ref": "../Users/m1", "value": "m1"}]}}),
        ));
        assert_eq!(
            d[ENT]["manager"],
            json!({"$ref": "../Users/m1", "value": "m1"})
        );
    }

    #[test]
    fn empty_manager_forms_are_absent() {
        for manager in [json!([]), json!([null]), json!({"value": ""}), json!([""])] {
            let d = doc(with(json!({ENT: {"manager": manager.clone()}})));
            assert_eq!(d, json!({"userName": "bjensen"}), "{manager}");
        }
    }

    #[test]
    fn manager_as_two_element_array_is_refused() {
        let m = invalid(with(
            json!({ENT: {"manager": [{"value": "m1"}, {"value": "m2"}]}}),
        ));
        assert!(m.contains("manager"), "{m}");
        invalid(with(json!({ENT: {"manager": ["m1", "m2"]}})));
    }

    #[test]
    fn manager_of_the_wrong_type_is_refused() {
        invalid(with(json!({ENT: {"manager": 42}})));
        invalid(with(json!({ENT: {"manager": true}})));
        invalid(with(json!({ENT: {"manager": {"value": 42}}})));
    }

    #[test]
    fn manager_id_and_value_together_are_refused() {
        let m = invalid(with(
            json!({ENT: {"manager": {"managerId": "m1", "value": "m2"}}}),
        ));
        assert!(m.contains("more than once"), "{m}");
    }

    // ---- required, body shape, duplicates ------------------------------------------------

    #[test]
    fn missing_user_name_is_refused() {
        for body in [
            json!({}),
            json!({"displayName": "B"}),
            json!({"userName": ""}),
            json!({"userName": null}),
            json!({ENT: {"department": "x"}}),
        ] {
            let m = invalid(body.clone());
            assert!(
                m.contains("userName") && m.contains("required"),
                "{body}: {m}"
            );
        }
    }

    #[test]
    fn body_that_is_not_an_object_is_invalid_syntax() {
        for body in [
            json!(null),
            json!([]),
            json!([{"userName": "b"}]),
            json!("b"),
            json!(1),
        ] {
            assert!(
                matches!(
                    user(body.clone(), &Registry::builtin()),
                    Err(Error::InvalidSyntax(_))
                ),
                "user {body}"
            );
            assert!(
                matches!(
                    group(body.clone(), &Registry::builtin()),
                    Err(Error::InvalidSyntax(_))
                ),
                "group {body}"
            );
        }
    }

    #[test]
    fn attribute_under_two_spellings_is_refused() {
        let m = invalid(json!({"userName": "a", "USERNAME": "b"}));
        assert!(
            m.contains("userName") && m.contains("more than once"),
            "{m}"
        );
    }

    #[test]
    fn attribute_plain_and_urn_qualified_is_refused() {
        let m = invalid(json!({
            "userName": "a",
            "urn:ietf:params:scim:schemas:core:2.0:User:userName": "a",
        }));
        assert!(m.contains("more than once"), "{m}");
    }

    #[test]
    fn external_id_under_two_spellings_is_refused() {
        let m = invalid(with(json!({"externalId": "a", "externalID": "b"})));
        assert!(m.contains("externalId"), "{m}");
    }

    #[test]
    fn sub_attribute_under_two_spellings_is_refused() {
        let m = invalid(with(json!({"name": {"givenName": "a", "GivenName": "b"}})));
        assert!(
            m.contains("givenName") && m.contains("more than once"),
            "{m}"
        );
    }

    #[test]
    fn duplicate_spelling_with_an_empty_value_is_not_a_conflict() {
        let d = doc(json!({"userName": "", "USERNAME": "b"}));
        assert_eq!(d, json!({"userName": "b"}));
    }

    // ---- wrong types ---------------------------------------------------------------------

    #[test]
    fn number_for_a_string_is_refused() {
        let m = invalid(json!({"userName": 42}));
        assert!(m.contains("userName") && m.contains("string"), "{m}");
        invalid(with(json!({"displayName": 1.5})));
    }

    #[test]
    fn boolean_for_a_string_is_refused() {
        invalid(with(json!({"nickName": true})));
    }

    #[test]
    fn object_for_a_string_is_refused() {
        let m = invalid(with(json!({"title": {"value": "VP"}})));
        assert!(m.contains("title"), "{m}");
    }

    #[test]
    fn array_for_a_singular_simple_attribute_is_refused() {
        invalid(json!({"userName": ["bjensen"]}));
        invalid(with(json!({"title": []})));
        invalid(with(json!({"active": []})));
    }

    #[test]
    fn non_string_external_id_is_refused() {
        let m = invalid(with(json!({"externalId": 7})));
        assert!(m.contains("externalId"), "{m}");
        invalid(with(json!({"externalId": ["e1"]})));
    }

    #[test]
    fn string_for_a_complex_attribute_without_value_is_refused() {
        let m = invalid(with(json!({"name": "Barbara Jensen"})));
        assert!(m.contains("name") && m.contains("object"), "{m}");
    }

    #[test]
    fn wrong_element_types_in_multi_valued_attributes_are_refused() {
        invalid(with(json!({"emails": [5]})));
        invalid(with(json!({"emails": 5})));
        invalid(with(json!({"emails": [["a@x"]]})));
        invalid(with(json!({"emails": [true]})));
    }

    #[test]
    fn wrong_sub_attribute_type_is_refused() {
        let m = invalid(with(json!({"emails": [{"value": 5}]})));
        assert!(m.contains("emails.value"), "{m}");
        let m = invalid(with(json!({"addresses": [{"postalCode": 12345}]})));
        assert!(m.contains("addresses.postalCode"), "{m}");
    }

    #[test]
    fn complex_where_simple_sub_attribute_belongs_is_refused() {
        invalid(with(json!({"name": {"givenName": {"value": "B"}}})));
    }

    #[test]
    fn writable_user_attributes_are_never_date_times() {
        // Only meta carries dateTimes, and it is readOnly: nothing a client writes is parsed
        // as one, so there is no dateTime rule to test on User bodies.
        for schema in [&USER, &ENTERPRISE_USER] {
            for a in &schema.attributes {
                if a.mutability == Mutability::ReadOnly {
                    continue;
                }
                assert_ne!(a.kind, Kind::DateTime, "{}", a.name);
                for s in &a.sub_attributes {
                    assert_ne!(s.kind, Kind::DateTime, "{}.{}", a.name, s.name);
                }
            }
        }
    }

    #[test]
    fn a_full_onelogin_template_normalises_cleanly() {
        let d = doc(json!({
            "schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"],
            "id": null,
            "meta": {"resourceType": "User"},
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": ""},
            "displayName": "Barbara Jensen",
            "emails": {"value": "bjensen@example.com", "type": "work"},
            "active": "true",
            "title": "",
            "urn:scim:schemas:extension:enterprise:2.0": {
                "department": "Sales",
                "manager": {"managerId": "m1", "displayName": "Boss"},
            },
        }));
        assert_eq!(
            d,
            json!({
                "userName": "bjensen@example.com",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "displayName": "Barbara Jensen",
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
                "active": true,
                ENT: {"department": "Sales", "manager": {"value": "m1"}},
            })
        );
    }

    // ---- groups --------------------------------------------------------------------------

    #[test]
    fn group_display_name_is_required() {
        for body in [
            json!({}),
            json!({"displayName": ""}),
            json!({"displayName": null}),
            json!({"members": []}),
        ] {
            let m = group_invalid(body.clone());
            assert!(
                m.contains("displayName") && m.contains("required"),
                "{body}: {m}"
            );
        }
    }

    #[test]
    fn group_attribute_names_in_any_case() {
        let g = group_ok(json!({"DISPLAYNAME": "Admins", "externalid": "E1", "Members": ["u1"]}));
        assert_eq!(
            Value::Object(g.doc),
            json!({"displayName": "Admins", "externalId": "E1"})
        );
        assert_eq!(g.members, Some(vec!["u1".to_string()]));
    }

    #[test]
    fn group_urn_qualified_keys_are_accepted() {
        let g = group_ok(json!({
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName": "Admins",
            "urn:ietf:params:scim:schemas:core:2.0:Group:members": [{"value": "u1"}],
        }));
        assert_eq!(g.doc["displayName"], "Admins");
        assert_eq!(g.members, Some(vec!["u1".to_string()]));
    }

    #[test]
    fn group_ignores_server_owned_keys_and_keeps_unknown_urn_blocks() {
        let adscim = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
        let g = group_ok(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", adscim],
            "id": "x",
            "meta": {"resourceType": "Group"},
            "displayName": "Admins",
            adscim: {"description": "x"},
        }));
        assert_eq!(
            Value::Object(g.doc),
            json!({"displayName": "Admins", adscim: {"description": "x"}})
        );
        assert_eq!(g.members, None);
    }

    #[test]
    fn group_unknown_attribute_is_ignored_and_named() {
        let g = group_ok(json!({"displayName": "Admins", "description": "x"}));
        assert_eq!(Value::Object(g.doc), json!({"displayName": "Admins"}));
        assert_eq!(g.ignored.names(), ["description"]);
    }

    #[test]
    fn group_display_name_of_the_wrong_type_is_refused() {
        group_invalid(json!({"displayName": 5}));
        group_invalid(json!({"displayName": ["Admins"]}));
    }

    #[test]
    fn group_display_name_under_two_spellings_is_refused() {
        let m = group_invalid(json!({"displayName": "a", "DisplayName": "b"}));
        assert!(m.contains("more than once"), "{m}");
    }

    #[test]
    fn group_members_under_two_spellings_are_refused() {
        let m = group_invalid(json!({
            "displayName": "Admins",
            "members": [{"value": "u1"}],
            "MEMBERS": [{"value": "u2"}],
        }));
        assert!(m.contains("members") && m.contains("more than once"), "{m}");
    }

    #[test]
    fn group_members_absent_is_none() {
        assert_eq!(group_ok(json!({"displayName": "Admins"})).members, None);
    }

    #[test]
    fn group_members_empty_array_is_some_empty() {
        let g = group_ok(json!({"displayName": "Admins", "members": []}));
        assert_eq!(g.members, Some(Vec::new()));
    }

    #[test]
    fn group_members_null_or_empty_string_means_no_members() {
        for members in [json!(null), json!(""), json!([null, ""])] {
            let g = group_ok(json!({"displayName": "Admins", "members": members.clone()}));
            assert_eq!(
                g.members.unwrap_or_default(),
                Vec::<String>::new(),
                "{members}"
            );
        }
    }

    #[test]
    fn group_members_are_deduplicated_in_order() {
        let g = group_ok(json!({
            "displayName": "Admins",
            "members": [{"value": "b"}, {"value": "a"}, {"value": "b"}, {"value": "c"},
                        {"value": "a"}],
        }));
        assert_eq!(g.members, Some(vec!["b".into(), "a".into(), "c".into()]));
    }

    #[test]
    fn group_member_ids_are_case_exact() {
        let g =
            group_ok(json!({"displayName": "A", "members": [{"value": "u1"}, {"value": "U1"}]}));
        assert_eq!(g.members, Some(vec!["u1".into(), "U1".into()]));
    }

    #[test]
    fn group_members_single_object_or_bare_string() {
        let g = group_ok(json!({"displayName": "A", "members": {"value": "u1"}}));
        assert_eq!(g.members, Some(vec!["u1".into()]));
        let g = group_ok(json!({"displayName": "A", "members": "u1"}));
        assert_eq!(g.members, Some(vec!["u1".into()]));
        let g = group_ok(json!({"displayName": "A", "members": ["u1", "u2"]}));
        assert_eq!(g.members, Some(vec!["u1".into(), "u2".into()]));
    }

    #[test]
    fn group_member_display_type_and_ref_are_accepted_but_not_kept() {
        let g = group_ok(json!({
            "displayName": "A",
            "members": [{"value": "u1", "display": "Bob", "type": "User", "$ref": "../Users/u1"}],
        }));
        assert_eq!(g.members, Some(vec!["u1".into()]));
        assert_eq!(Value::Object(g.doc), json!({"displayName": "A"}));
    }

    #[test]
    fn group_member_with_a_non_string_value_is_refused() {
        for members in [
            json!([{"value": 5}]),
            json!([{"value": true}]),
            json!([{"value": {"id": "u1"}}]),
            json!([{"value": ["u1"]}]),
            json!([5]),
            json!(5),
        ] {
            group_invalid(json!({"displayName": "A", "members": members.clone()}));
        }
    }

    #[test]
    fn group_member_without_a_value_is_refused() {
        let m = group_invalid(json!({"displayName": "A", "members": [{"type": "User"}]}));
        assert!(m.contains("value"), "{m}");
    }

    #[test]
    fn group_member_with_unknown_keys_is_added() {
        // Entra's test suite sends members with `displayName`.
        let g = group_ok(json!({"displayName": "A", "members": [
            {"value": "u1", "displayName": "Bob"},
            {"value": "u2", "x": 1, "displayName": "Ann"},
        ]}));
        assert_eq!(g.members, Some(vec!["u1".into(), "u2".into()]));
        assert_eq!(g.ignored.names(), ["members.displayName", "members.x"]);
        // A member still needs its id, also when `value` is there but null or empty.
        group_invalid(json!({"displayName": "A", "members": [{"displayName": "Bob"}]}));
        for nobody in [json!(null), json!("")] {
            let member = json!({"value": nobody, "displayName": "Bob"});
            group_invalid(json!({"displayName": "A", "members": [member.clone()]}));
            group_invalid(json!({"displayName": "A", "members": [{"value": "u1"}, member]}));
        }
    }

    #[test]
    fn member_ids_directly() {
        let ids = |v: Value| member_ids(v, &mut Ignored::default());
        assert_eq!(ids(json!(null)).unwrap(), Vec::<String>::new());
        assert_eq!(ids(json!("u1")).unwrap(), vec!["u1".to_string()]);
        assert_eq!(
            ids(json!([{"value": "u2"}, {"value": "u1"}, {"value": "u2"}])).unwrap(),
            vec!["u2".to_string(), "u1".to_string()]
        );
        assert!(matches!(
            ids(json!([{"value": 1}])),
            Err(Error::InvalidValue(_))
        ));
        // A blank `value` beside any other key names nobody: refused, not dropped. With
        // nothing else said, the member is absent (RFC 7643 §2.5: null is unassigned).
        for nobody in [
            json!([{"value": null, "displayName": "Bob"}]),
            json!([{"value": "", "type": "User"}]),
            json!({"VALUE": null, "x": 1}),
        ] {
            assert!(
                matches!(ids(nobody.clone()), Err(Error::InvalidValue(_))),
                "{nobody}"
            );
        }
        assert_eq!(
            ids(json!([{"value": null, "display": null}])).unwrap(),
            Vec::<String>::new()
        );
    }

    // ---- properties ----------------------------------------------------------------------

    /// Keys: mostly names the validator knows (in varied case), some URNs, some noise.
    fn key() -> impl Strategy<Value = String> {
        let known = proptest::sample::select(vec![
            "userName",
            "username",
            "USERNAME",
            "emails",
            "Emails",
            "name",
            "givenName",
            "familyName",
            "active",
            "ACTIVE",
            "value",
            "VALUE",
            "primary",
            "type",
            "display",
            "manager",
            "managerId",
            "displayName",
            "externalId",
            "id",
            "meta",
            "schemas",
            "groups",
            "password",
            "phoneNumbers",
            "addresses",
            "x509Certificates",
            "$ref",
            "department",
            "members",
            "title",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            "urn:ietf:params:scim:schemas:core:2.0:User:id",
            "urn:ietf:params:scim:schemas:core:2.0:User:password",
            "urn:scim:schemas:core:1.0",
            "urn:scim:schemas:extension:enterprise:1.0",
            "http://schemas.microsoft.com/x",
        ])
        .prop_map(str::to_string);
        prop_oneof![
            6 => known,
            1 => "[a-zA-Z$:._é]{0,12}",
            1 => "(urn|URN|http|https):[a-zA-Zé:.]{0,20}",
        ]
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            proptest::sample::select(vec![0i64, 1, 2, -1]).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter_map("finite", serde_json::Number::from_f64)
                .prop_map(Value::Number),
            proptest::sample::select(vec![
                "",
                "true",
                "False",
                " TRUE ",
                "0",
                "1",
                "yes",
                "bjensen",
                "a@example.com",
            ])
            .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((key(), inner), 0..6)
                    .prop_map(|kvs| Value::Object(kvs.into_iter().collect())),
            ]
        })
    }

    /// Top-level keys the validator accepts or ignores, so bodies built from them are often
    /// valid and the property exercises the success path too.
    fn top_key() -> impl Strategy<Value = String> {
        proptest::sample::select(vec![
            "id",
            "META",
            "schemas",
            "groups",
            "password",
            "Active",
            "emails",
            "name",
            "displayName",
            "externalId",
            "manager",
            "department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:scim:schemas:extension:enterprise:1.0",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "http://schemas.microsoft.com/x",
        ])
        .prop_map(str::to_string)
    }

    /// Bodies that usually carry a userName, so the property also reaches the success path.
    fn user_body() -> impl Strategy<Value = Value> {
        let with_user_name = |keys: BoxedStrategy<String>| {
            (
                proptest::collection::vec((keys, json_value()), 0..8),
                "[a-z]{1,8}",
            )
                .prop_map(|(kvs, user_name)| {
                    let mut map: Map<String, Value> = kvs.into_iter().collect();
                    map.insert("userName".into(), Value::String(user_name));
                    Value::Object(map)
                })
        };
        prop_oneof![
            1 => json_value(),
            2 => with_user_name(key().boxed()),
            2 => with_user_name(top_key().boxed()),
        ]
    }

    proptest! {
        #[test]
        fn user_never_panics_and_ok_docs_are_clean(body in user_body()) {
            if let Ok(input) = user(body, &Registry::builtin()) {
                prop_assert!(input.doc.get("userName").is_some_and(Value::is_string));
                for k in ["id", "meta", "groups", "schemas", "password"] {
                    prop_assert!(!input.doc.contains_key(k), "{} in {:?}", k, input.doc);
                }
                prop_assert_eq!(input.active_given, input.doc.contains_key("active"));
                if let Some(active) = input.doc.get("active") {
                    prop_assert!(active.is_boolean());
                }
                if let Some(ent) = input.doc.get(ENT) {
                    prop_assert!(ent.as_object().is_some_and(|m| !m.is_empty()));
                }
            }
        }

        #[test]
        fn group_never_panics_and_ok_docs_are_clean(body in json_value()) {
            if let Ok(input) = group(body, &Registry::builtin()) {
                prop_assert!(input.doc.get("displayName").is_some_and(Value::is_string));
                for (k, v) in &input.doc {
                    let block = is_urn_key(k) && v.as_object().is_some_and(|m| !m.is_empty());
                    prop_assert!(k == "displayName" || k == "externalId" || block, "{}", k);
                }
                if let Some(ids) = input.members {
                    let unique: std::collections::HashSet<_> = ids.iter().collect();
                    prop_assert_eq!(unique.len(), ids.len());
                }
            }
        }
    }
}
