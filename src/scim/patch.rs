//! PATCH (RFC 7644 §3.5.2): parsing a PatchOp body and applying its operations to a stored
//! document, all or nothing (the caller keeps the original until every operation succeeded).
//!
//! What identity providers send beyond the RFC is accepted here (idp-compat.md §2): ops in
//! any case and `delete` for `remove` (row 10); string booleans (row 5, via `validate`);
//! `remove members` with a `value` list removing only those members (row 11); path-less
//! `add`/`replace` whose keys are dotted or URN-qualified paths (row 12); `add` on a
//! single-valued attribute replacing it (row 13); a value-filter path that matches nothing
//! creating the entry it describes (row 14); read-only keys (`id`, `meta`, `schemas`,
//! `groups`) inside a value ignored (rows 22, 25); adds that are already there changing
//! nothing (row 27); and the SCIM 1.1 group body with `members[].operation` (row 9).
//!
//! A group's members are not in its document (they are rows, and a group may have 100,000):
//! operations on `members` become `MemberChange`s the store applies in order, so adding or
//! removing one member never reads the others.
//!
//! Pure: no I/O.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::eval;
use super::filter::{self, AttrPath, CompValue, CompareOp, Filter, PatchPath};
use super::registry::{KeyMatch, Registry};
use super::resolve::{self, Origin, Resolved, Target};
use super::resource::ResourceKind;
use super::schema::{
    self, Attribute, ENTERPRISE_USER, ENTERPRISE_USER_URN, Kind, Mutability, Schema, USER,
};
use super::untouched;
use super::validate::{self, Ignored, STRAY_ENTERPRISE_KEYS, is_server_owned, is_urn_key};
use crate::error::{Error, Result};

/// Most operations one PATCH request may carry.
pub const MAX_OPERATIONS: usize = 1000;

pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most work one PATCH may cost, in units of one filter term (or one comparison) on one
/// value. An operation with a value filter costs the values of its attribute × the filter's
/// terms; an add or a remove of listed values, the values there × the values given; a
/// replace, the values there + the values given (each count at least 1). A group's filtered
/// member removals cost its members × terms, counted separately against the same limit.
/// What identity providers send costs a few units an operation.
pub const MAX_PATCH_COST: u64 = 1_000_000;

/// Most bytes one operation may copy into the values of a multi-valued attribute (a value
/// × the values it is set in), so a small request cannot make a large document.
pub const MAX_PATCH_COPY: usize = 1024 * 1024;

/// The work a PATCH has cost so far (see `MAX_PATCH_COST`).
#[derive(Debug, Default)]
pub struct Cost(u64);

impl Cost {
    /// Adds `units`; `tooMany` once the total passes `MAX_PATCH_COST`, before the work is done.
    pub fn charge(&mut self, units: u64) -> Result<()> {
        self.0 = self.0.saturating_add(units);
        if self.0 > MAX_PATCH_COST {
            return Err(Error::TooMany(format!(
                "the PATCH needs more than {MAX_PATCH_COST} units of work (values visited × \
                 filter terms or × values given, summed over its operations); split it into \
                 smaller requests or use shorter filters"
            )));
        }
        Ok(())
    }
}

/// The comparisons in a filter: what evaluating it once costs.
pub fn terms(r: &Resolved) -> u64 {
    match r {
        Resolved::And(a, b) | Resolved::Or(a, b) => terms(a).saturating_add(terms(b)),
        Resolved::Not(inner) | Resolved::ValuePath(_, inner) => terms(inner),
        Resolved::Present(_) | Resolved::Compare(..) => 1,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

/// One operation as sent: `path` is still text, `value` still the client's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// A change to a group's members, applied by the store in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// Add these ids (those already members, or matching nothing, change nothing).
    Add(Vec<String>),
    /// Remove these ids (those not members change nothing).
    Remove(Vec<String>),
    /// Remove the members this `members[…]` filter selects.
    RemoveWhere(Resolved),
    /// Make the members exactly these ids (a replace): only the difference is written.
    Set(Vec<String>),
    /// Remove every member.
    Clear,
}

fn eq_ic(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Parses a PATCH body into its operations (RFC 7644 §3.5.2). For a group, a body without
/// `Operations` is read as a SCIM 1.1 PATCH (members carrying `"operation": "delete"`).
pub fn parse(body: Value, kind: ResourceKind) -> Result<Vec<Operation>> {
    let Value::Object(mut map) = body else {
        return Err(Error::InvalidSyntax(
            "the request body must be a JSON object".into(),
        ));
    };
    let key = map.keys().find(|k| eq_ic(k, "Operations")).cloned();
    let Some(ops) = key.and_then(|k| map.remove(&k)) else {
        if kind == ResourceKind::Group {
            return scim11_group(map);
        }
        return Err(Error::InvalidSyntax(
            "a PATCH body needs \"Operations\" (RFC 7644 §3.5.2)".into(),
        ));
    };
    let Value::Array(items) = ops else {
        return Err(Error::InvalidSyntax(
            "\"Operations\" must be an array".into(),
        ));
    };
    if items.is_empty() {
        return Err(Error::InvalidValue(
            "\"Operations\" must hold at least one operation".into(),
        ));
    }
    if items.len() > MAX_OPERATIONS {
        return Err(Error::InvalidValue(format!(
            "a PATCH request may carry at most {MAX_OPERATIONS} operations"
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| operation(i + 1, item))
        .collect()
}

/// Operation number `n` (from 1, for messages).
fn operation(n: usize, item: Value) -> Result<Operation> {
    let Value::Object(fields) = item else {
        return Err(Error::InvalidSyntax(format!(
            "operation {n} must be an object"
        )));
    };
    let (mut op, mut path, mut value) = (None, None, None);
    for (k, v) in fields {
        if eq_ic(&k, "op") {
            op = Some(v);
        } else if eq_ic(&k, "path") {
            path = Some(v);
        } else if eq_ic(&k, "value") {
            value = Some(v);
        }
    }
    let op = match op {
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "add" => Op::Add,
            "replace" => Op::Replace,
            "remove" | "delete" => Op::Remove,
            _ => {
                return Err(Error::InvalidValue(format!(
                    "operation {n}: unknown op \"{s}\"; expected add, replace or remove"
                )));
            }
        },
        _ => {
            return Err(Error::InvalidSyntax(format!(
                "operation {n} needs an \"op\" (add, replace or remove)"
            )));
        }
    };
    let path = match path {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => {
            return Err(Error::InvalidPath(format!(
                "operation {n}: \"path\" must be a string"
            )));
        }
    };
    let value = value.filter(|v| !v.is_null());
    Ok(Operation { op, path, value })
}

/// The SCIM 1.1 group PATCH OneLogin's v1.1 connectors send: `members` items with
/// `"operation": "delete"` are removed, other items added; attributes named in
/// `meta.attributes` are removed first; any other attribute is replaced.
fn scim11_group(map: Map<String, Value>) -> Result<Vec<Operation>> {
    let mut removals = Vec::new();
    let mut ops = Vec::new();
    let mut rest = Map::new();
    for (k, v) in map {
        if eq_ic(&k, "schemas") {
            continue;
        }
        if eq_ic(&k, "meta") {
            let names = v.get("attributes").and_then(Value::as_array);
            for name in names.into_iter().flatten().filter_map(Value::as_str) {
                removals.push(Operation {
                    op: Op::Remove,
                    path: Some(name.to_string()),
                    value: None,
                });
            }
            continue;
        }
        if eq_ic(&k, "members") {
            let items = match v {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                one => vec![one],
            };
            let (mut add, mut delete) = (Vec::new(), Vec::new());
            for mut item in items {
                let is_delete = item
                    .get("operation")
                    .and_then(Value::as_str)
                    .is_some_and(|o| eq_ic(o, "delete"));
                if let Value::Object(m) = &mut item {
                    m.retain(|k, _| !eq_ic(k, "operation"));
                }
                if is_delete {
                    delete.push(item);
                } else {
                    add.push(item);
                }
            }
            for (op, items) in [(Op::Remove, delete), (Op::Add, add)] {
                if !items.is_empty() {
                    ops.push(Operation {
                        op,
                        path: Some("members".into()),
                        value: Some(Value::Array(items)),
                    });
                }
            }
            continue;
        }
        rest.insert(k, v);
    }
    if !rest.is_empty() {
        ops.push(Operation {
            op: Op::Replace,
            path: None,
            value: Some(Value::Object(rest)),
        });
    }
    removals.extend(ops);
    if removals.is_empty() {
        return Err(Error::InvalidSyntax(
            "a PATCH body needs \"Operations\" (RFC 7644 §3.5.2)".into(),
        ));
    }
    Ok(removals)
}

/// Applies `ops` to a user's stored document, with the schemas of `registry`, and with the
/// unknown names the operations carried (ignored, see `Ignored`). The result still has to
/// pass `validate::user` (required attributes, one primary, …) before it is stored.
pub fn apply_user(
    doc: Map<String, Value>,
    ops: Vec<Operation>,
    registry: &Registry,
) -> Result<(Map<String, Value>, Ignored)> {
    let mut p = Patcher::new(registry, ResourceKind::User, doc);
    p.run(ops)?;
    Ok((p.doc, p.ignored))
}

/// Applies `ops` to a group's stored document; operations on `members` come back as changes
/// for the store to apply in order, and unknown names as `Ignored`.
pub fn apply_group(
    doc: Map<String, Value>,
    ops: Vec<Operation>,
    registry: &Registry,
) -> Result<(Map<String, Value>, Vec<MemberChange>, Ignored)> {
    let mut p = Patcher::new(registry, ResourceKind::Group, doc);
    p.run(ops)?;
    Ok((p.doc, p.members, p.ignored))
}

struct Patcher<'r> {
    registry: &'r Registry,
    kind: ResourceKind,
    doc: Map<String, Value>,
    members: Vec<MemberChange>,
    cost: Cost,
    ignored: Ignored,
    /// The undeclared data the result may hold (`validate`'s bound, or what was stored if
    /// more): an operation certain to pass it fails before it copies anything.
    max_undeclared_bytes: usize,
}

/// Where a target came from: an explicit `path` (read-only targets are an error) or a key of
/// a path-less value (read-only keys are ignored, as in a PUT body).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Path,
    ValueKey,
}

fn path_error(e: Error) -> Error {
    match e {
        Error::InvalidFilter(m) | Error::InvalidValue(m) => Error::InvalidPath(m),
        other => other,
    }
}

impl<'r> Patcher<'r> {
    fn new(registry: &'r Registry, kind: ResourceKind, doc: Map<String, Value>) -> Patcher<'r> {
        let (_, stored) = untouched::undeclared_size(&doc, registry, kind);
        let doc = declared_spelling(doc, registry, kind);
        Patcher {
            max_undeclared_bytes: stored.max(validate::MAX_UNDECLARED_BYTES),
            registry,
            kind,
            doc,
            members: Vec::new(),
            cost: Cost::default(),
            ignored: Ignored::default(),
        }
    }

    fn run(&mut self, ops: Vec<Operation>) -> Result<()> {
        for (i, op) in ops.into_iter().enumerate() {
            self.operation(op).map_err(|e| numbered(e, i + 1))?;
        }
        // An extension whose last attribute was removed is no extension at all.
        self.doc
            .retain(|k, v| !(is_urn_key(k) && v.as_object().is_some_and(Map::is_empty)));
        Ok(())
    }

    fn operation(&mut self, op: Operation) -> Result<()> {
        let Some(path) = op.path else {
            if op.op == Op::Remove {
                return Err(Error::NoTarget(
                    "\"remove\" needs a \"path\" (RFC 7644 §3.5.2.2)".into(),
                ));
            }
            return match op.value {
                Some(Value::Object(map)) => {
                    for (key, value) in map {
                        self.key(op.op, &key, value)?;
                    }
                    Ok(())
                }
                _ => Err(Error::InvalidValue(format!(
                    "\"{}\" without a \"path\" needs an object \"value\"",
                    op_name(op.op)
                ))),
            };
        };
        if is_urn_key(&path) {
            match self.registry.match_key(self.kind, &path) {
                KeyMatch::Extension { schema, attr: None } => {
                    let schema = Arc::clone(schema);
                    return self.extension_block(&schema, op.op, op.value, Source::Path);
                }
                KeyMatch::Undeclared => {
                    return self.undeclared(op.op, &path, op.value, Source::Path);
                }
                KeyMatch::Foreign => {
                    return Err(Error::InvalidPath(format!(
                        "\"{path}\" is a schema of another resource type"
                    )));
                }
                KeyMatch::Core { .. } | KeyMatch::Extension { .. } => {}
            }
        }
        let parsed = filter::parse_patch_path(&path)
            .map_err(|e| Error::InvalidPath(format!("path \"{path}\" {e}")))?;
        self.target(op.op, &parsed, op.value, Source::Path)
    }

    /// One key of a path-less `add`/`replace` value: an attribute name, a dotted or
    /// URN-qualified path, or a schema URN holding a block of attributes.
    fn key(&mut self, op: Op, key: &str, value: Value) -> Result<()> {
        if is_server_owned(key) {
            return Ok(());
        }
        if is_urn_key(key) {
            match self.registry.match_key(self.kind, key) {
                KeyMatch::Core { attr: None } => {
                    return match value {
                        Value::Object(map) => {
                            map.into_iter().try_for_each(|(k, v)| self.key(op, &k, v))
                        }
                        Value::Null => Ok(()),
                        _ => Err(Error::InvalidValue(format!("\"{key}\" must be an object"))),
                    };
                }
                KeyMatch::Extension { schema, attr: None } => {
                    let schema = Arc::clone(schema);
                    return self.extension_block(&schema, op, Some(value), Source::ValueKey);
                }
                // The other resource type's data: ignored, as in a POST or PUT body.
                KeyMatch::Foreign => return Ok(()),
                KeyMatch::Undeclared => {
                    return self.undeclared(op, key, Some(value), Source::ValueKey);
                }
                KeyMatch::Core { .. } | KeyMatch::Extension { .. } => {}
            }
        }
        let parsed = filter::parse_patch_path(key).map_err(|e| {
            Error::InvalidValue(format!("\"{key}\" is not an attribute or a path: {e}"))
        })?;
        self.target(op, &parsed, Some(value), Source::ValueKey)
            .map_err(|e| match e {
                Error::InvalidPath(m) => Error::InvalidValue(m),
                other => other,
            })
    }

    /// A declared extension as a whole: `remove` drops it; `add`/`replace` apply each
    /// attribute of the value (a complex attribute's unspecified parts stay, RFC 7644 §3.5.2.3).
    fn extension_block(
        &mut self,
        schema: &Schema,
        op: Op,
        value: Option<Value>,
        from: Source,
    ) -> Result<()> {
        match (op, value) {
            (Op::Remove, _) => {
                self.doc.retain(|k, _| !eq_ic(k, &schema.id));
                Ok(())
            }
            (_, Some(Value::Object(map))) => {
                for (k, v) in map {
                    if is_server_owned(&k) {
                        continue;
                    }
                    let path = format!("{}:{k}", schema.id);
                    let parsed = filter::parse_patch_path(&path).map_err(|e| {
                        Error::InvalidValue(format!("\"{k}\" is not an attribute: {e}"))
                    })?;
                    self.target(op, &parsed, Some(v), from)?;
                }
                Ok(())
            }
            (_, None | Some(Value::Null)) => Ok(()),
            _ => Err(Error::InvalidValue(format!(
                "\"{}\" must be an object",
                schema.id
            ))),
        }
    }

    /// A path or value key naming an undeclared extension (design brief §5): its block
    /// (`<URN>`, a key the document has, or any URN with an object value) or one attribute
    /// (`<URN>:<attr>[.sub]`). Without a schema there are no types: values are set as sent
    /// (`validate` then trims and bounds the result).
    fn undeclared(&mut self, op: Op, key: &str, value: Option<Value>, from: Source) -> Result<()> {
        // Finding the block reads the document's keys: charged, so a value naming thousands
        // of new blocks is `tooMany` before the work grows with their square.
        self.cost.charge(self.doc.len() as u64)?;
        if key.contains('[') {
            return self.undeclared_filtered(op, key, value, from);
        }
        let existing = self.doc.keys().find(|k| eq_ic(k, key)).cloned();
        let is_block = existing.is_some() || matches!(value, Some(Value::Object(_)));
        if is_block || op == Op::Remove && undeclared_path(&self.doc, key).is_none() {
            let block = existing.unwrap_or_else(|| key.to_string());
            return match (op, value) {
                (Op::Remove, _) => {
                    self.doc.remove(&block);
                    Ok(())
                }
                (_, Some(Value::Object(map))) => {
                    for (name, v) in map {
                        self.untyped(op, &block, &name, None, Some(v))?;
                    }
                    Ok(())
                }
                (_, None | Some(Value::Null)) => Ok(()),
                _ => Err(Error::InvalidValue(format!("\"{key}\" must be an object"))),
            };
        }
        let Some((urn, attr, sub)) = undeclared_path(&self.doc, key) else {
            let e = format!(
                "\"{key}\" names no attribute: use <schema URN>:<attribute>, or an object value"
            );
            return Err(match from {
                Source::Path => Error::InvalidPath(e),
                Source::ValueKey => Error::InvalidValue(e),
            });
        };
        if op != Op::Remove && value.is_none() {
            return Err(Error::InvalidValue(format!(
                "\"{}\" of \"{key}\" needs a \"value\"",
                op_name(op)
            )));
        }
        if op == Op::Remove && !self.doc.contains_key(&urn) {
            return Ok(());
        }
        self.untyped(op, &urn, &attr, sub.as_deref(), value)
    }

    /// `<URN>:<attr>[filter]` or `…[filter].sub` of an undeclared attribute: the filter
    /// (resolved and evaluated as in a search) selects objects of the attribute's list, or
    /// its lone object, as `filtered` does for a declared one: `remove` drops them (or their
    /// `sub`), `replace` replaces them (sets `sub`), `add` merges into them (`set_untyped` on
    /// `sub`). Matching nothing is `noTarget`, except that `add`/`replace` with a
    /// `type eq "…"` filter creates the entry it describes (idp-compat.md §2 row 14).
    fn undeclared_filtered(
        &mut self,
        op: Op,
        key: &str,
        value: Option<Value>,
        from: Source,
    ) -> Result<()> {
        let bad = |m: String| match from {
            Source::Path => Error::InvalidPath(m),
            Source::ValueKey => Error::InvalidValue(m),
        };
        let open = key.find('[').unwrap_or(key.len());
        let Some((urn, attr, None)) = undeclared_path(&self.doc, &key[..open]) else {
            return Err(bad(format!(
                "\"{key}\" names no attribute: use <schema URN>:<attribute>[filter]"
            )));
        };
        let parsed =
            filter::parse_patch_path(key).map_err(|e| bad(format!("path \"{key}\" {e}")))?;
        let Some(raw) = parsed.filter else {
            return Err(bad(format!("\"{key}\" has no value filter")));
        };
        let outer = AttrPath {
            urn: Some(urn.clone()),
            attr,
            sub_attr: None,
        };
        let resolved = self.value_filter(&outer, &raw).map_err(|e| match e {
            Error::InvalidPath(m) => bad(m),
            other => other,
        })?;
        let Resolved::ValuePath(t, _) = &resolved else {
            return Err(Error::internal("a value filter resolved to another filter"));
        };
        let blank = value
            .as_ref()
            .is_none_or(|v| v.is_null() || v.as_str().is_some_and(str::is_empty));
        if op != Op::Remove && value.is_none() {
            return Err(Error::InvalidValue(format!(
                "\"{}\" of \"{key}\" needs a \"value\"",
                op_name(op)
            )));
        }
        // Without a sub-attribute, each selected value becomes (or takes the parts of) one
        // object.
        let parts = match (&parsed.sub_attr, op, value.clone()) {
            (None, Op::Add | Op::Replace, Some(Value::Object(m))) => Some(m),
            (None, Op::Add | Op::Replace, Some(Value::Array(mut one)))
                if one.len() == 1 && one[0].is_object() =>
            {
                match one.pop() {
                    Some(Value::Object(m)) => Some(m),
                    _ => None,
                }
            }
            (None, Op::Add | Op::Replace, _) if !blank => {
                return Err(Error::InvalidValue(format!(
                    "the value for \"{key}\" must be one object"
                )));
            }
            _ => None,
        };
        let there = self
            .doc
            .get(&urn)
            .and_then(Value::as_object)
            .and_then(|b| b.iter().find(|(k, _)| eq_ic(k, &t.attr.name)))
            .map(|(_, v)| v);
        let visited = match there {
            Some(Value::Array(items)) => items.len().max(1),
            _ => 1,
        };
        // Each selected value gets a copy of the value: bounded before it is made.
        if let Some(v) = &value {
            let size = serde_json::to_vec(v).map_or(usize::MAX, |t| t.len());
            if size.saturating_mul(visited) > self.max_undeclared_bytes {
                return Err(Error::InvalidValue(format!(
                    "the undeclared extension data would exceed {} bytes per resource",
                    validate::MAX_UNDECLARED_BYTES
                )));
            }
        }
        self.cost.charge(
            (visited as u64)
                .saturating_mul(terms(&resolved))
                .saturating_add(1),
        )?;
        let t = t.clone();
        let block = block_of(&mut self.doc, &urn)?;
        let name = block
            .keys()
            .find(|k| eq_ic(k, &t.attr.name))
            .cloned()
            .unwrap_or_else(|| t.attr.name.to_string());
        let (mut items, lone) = match block.remove(&name) {
            Some(Value::Array(items)) => (items, false),
            Some(other) => (vec![other], true),
            None => (Vec::new(), false),
        };
        let selects =
            |item: &Value| item.is_object() && eval::matches(&resolved, &wrap_item(&t, item));
        let hits: Vec<usize> = (0..items.len()).filter(|&i| selects(&items[i])).collect();
        let sub = parsed.sub_attr.as_deref();
        let result = (|| -> Result<()> {
            // `""` and `null` are "no value" (Decision 9): adding nothing changes nothing.
            if op == Op::Add && blank {
                return Ok(());
            }
            if hits.is_empty() {
                let (Op::Add | Op::Replace, Some(mut entry)) = (op, untyped_described_by(&raw))
                else {
                    return Err(Error::NoTarget(format!(
                        "no value of \"{}\" matches the filter",
                        t.attr.name
                    )));
                };
                if blank {
                    return Ok(());
                }
                match sub {
                    Some(sub) => set_untyped(&mut entry, sub, None, op, value),
                    None => entry.extend(parts.unwrap_or_default()),
                }
                items.push(Value::Object(entry));
                return Ok(());
            }
            // Replacing with nothing leaves the matching targets unassigned.
            let op = if op == Op::Replace && blank {
                Op::Remove
            } else {
                op
            };
            for &i in &hits {
                let Value::Object(m) = &mut items[i] else {
                    continue;
                };
                match (op, sub, &parts) {
                    (_, Some(sub), _) => set_untyped(m, sub, None, op, value.clone()),
                    (Op::Replace, None, Some(parts)) => *m = parts.clone(),
                    (Op::Add, None, Some(parts)) => m.extend(parts.clone()),
                    _ => m.clear(),
                }
            }
            // Emptied objects (removed, or their last sub-attribute removed) are gone.
            items.retain(|i| !i.as_object().is_some_and(Map::is_empty));
            Ok(())
        })();
        match items.len() {
            0 => {}
            1 if lone => {
                block.insert(name, items.remove(0));
            }
            _ => {
                block.insert(name, Value::Array(items));
            }
        }
        result
    }

    /// `set_untyped` on block `urn`, charged to the PATCH's cost like a declared attribute's
    /// operation (the values there + the values given: the work is linear), and refused
    /// before it copies a value into every element of a list if the copies alone would pass
    /// the undeclared bound.
    fn untyped(
        &mut self,
        op: Op,
        urn: &str,
        name: &str,
        sub: Option<&str>,
        value: Option<Value>,
    ) -> Result<()> {
        let count = |v: Option<&Value>| match v {
            Some(Value::Array(items)) => items.len().max(1),
            _ => 1,
        };
        let there = self
            .doc
            .get(urn)
            .and_then(Value::as_object)
            .and_then(|b| b.iter().find(|(k, _)| eq_ic(k, name)))
            .map(|(_, v)| v);
        let visited = count(there);
        if sub.is_some()
            && matches!(there, Some(Value::Array(_)))
            && let Some(v) = &value
        {
            let size = serde_json::to_vec(v).map_or(usize::MAX, |t| t.len());
            if size.saturating_mul(visited) > self.max_undeclared_bytes {
                return Err(Error::InvalidValue(format!(
                    "the undeclared extension data would exceed {} bytes per resource",
                    validate::MAX_UNDECLARED_BYTES
                )));
            }
        }
        self.cost
            .charge((visited as u64).saturating_add(count(value.as_ref()) as u64))?;
        let slot = block_of(&mut self.doc, urn)?;
        set_untyped(slot, name, sub, op, value);
        Ok(())
    }

    fn target(
        &mut self,
        op: Op,
        path: &PatchPath,
        value: Option<Value>,
        from: Source,
    ) -> Result<()> {
        if let Some((prefix, name)) = self.unknown_target(path) {
            self.ignored.note(&prefix, name);
            return Ok(());
        }
        let mut t = match resolve::bind(&path.attr, self.kind, self.registry) {
            Ok(t) => t,
            // Entra patches enterprise attributes by their bare names (`manager`,
            // `department`: idp-compat.md §2 rows 15 and 17); the core User has no such
            // attribute, so the name can only mean the extension's.
            Err(e) => {
                let bare = path.attr.urn.is_none()
                    && self.kind == ResourceKind::User
                    && USER.attribute(&path.attr.attr).is_none()
                    && STRAY_ENTERPRISE_KEYS
                        .iter()
                        .any(|k| eq_ic(k, &path.attr.attr));
                if !bare {
                    return Err(path_error(e));
                }
                let qualified = AttrPath {
                    urn: Some(ENTERPRISE_USER_URN.into()),
                    ..path.attr.clone()
                };
                resolve::bind(&qualified, self.kind, self.registry).map_err(path_error)?
            }
        };
        if let Some(name) = &path.sub_attr {
            let sub = t
                .attr
                .sub_attributes
                .iter()
                .find(|s| eq_ic(&s.name, name))
                .cloned();
            t.sub = Some(sub.ok_or_else(|| {
                Error::InvalidPath(format!(
                    "\"{}\" has no sub-attribute \"{name}\"",
                    t.attr.name
                ))
            })?);
        }
        let read_only = |a: &Attribute| a.mutability == Mutability::ReadOnly;
        if read_only(&t.attr) || t.sub.as_deref().is_some_and(read_only) {
            if from == Source::ValueKey {
                return Ok(());
            }
            return Err(Error::Mutability(format!(
                "\"{}\" is read-only",
                display_path(&t)
            )));
        }
        if self.kind == ResourceKind::Group && t.origin == Origin::Core && t.attr.name == "members"
        {
            return self.members(op, path, &t, value);
        }
        let value = match (op, value) {
            (Op::Remove, v) => v,
            (_, Some(v)) => Some(v),
            (_, None) => {
                return Err(Error::InvalidValue(format!(
                    "\"{}\" of \"{}\" needs a \"value\"",
                    op_name(op),
                    display_path(&t)
                )));
            }
        };
        let filter = match &path.filter {
            None => None,
            Some(f) => Some((f, self.value_filter(&path.attr, f)?)),
        };
        if let Origin::Extension(urn) = &t.origin {
            self.spell_block(urn, &t.attr);
        }
        let count = |v: Option<&Value>| match v {
            Some(Value::Array(items)) => items.len().max(1) as u64,
            _ => 1,
        };
        let visited = count(self.current(&t));
        let given = count(value.as_ref());
        // `emails.type` (or a filtered `.sub`) copies the value into each value there.
        if t.sub.is_some()
            && let Some(v) = &value
        {
            let size = serde_json::to_vec(v).map_or(u64::MAX, |t| t.len() as u64);
            if size.saturating_mul(visited) > MAX_PATCH_COPY as u64 {
                return Err(Error::InvalidValue(format!(
                    "\"{}\" would copy more than {MAX_PATCH_COPY} bytes into the values there",
                    display_path(&t)
                )));
            }
        }
        // What the operation will do: a filter is evaluated on every value there; an add or
        // a listed remove compares each value given with each value there; a replace touches
        // each once.
        let units = match (&filter, op) {
            (Some((_, r)), _) => visited.saturating_mul(terms(r)).saturating_add(given),
            (None, Op::Add | Op::Remove) => visited.saturating_mul(given),
            (None, Op::Replace) => visited.saturating_add(given),
        };
        self.cost.charge(units)?;
        // Taken out while `slot` borrows the document; put back whatever the outcome.
        let mut ignored = std::mem::take(&mut self.ignored);
        let slot = self.slot(&t.origin)?;
        let ig = &mut ignored;
        let done = match filter {
            None => match t.sub.as_deref() {
                None => whole(slot, &t.attr, op, value, ig),
                Some(sub) => sub_everywhere(slot, &t.attr, sub, op, value, ig),
            },
            Some((raw, resolved)) => {
                let wrap = |item: &Value| wrap_item(&t, item);
                filtered(slot, &t, op, value, raw, ig, &|item| {
                    eval::matches(&resolved, &wrap(item))
                })
            }
        };
        self.ignored = ignored;
        done
    }

    /// The name `path` gives, when it is an attribute or sub-attribute that the core schema or
    /// a registered extension lacks: such a target is ignored, as in a POST or PUT body, the
    /// operation doing nothing for it. As (the schema's own prefix, the client's name). Other
    /// URNs, and every other fault of a path, are left to `resolve::bind`.
    fn unknown_target<'p>(&self, path: &'p PatchPath) -> Option<(String, &'p str)> {
        let a = &path.attr;
        let user = self.kind == ResourceKind::User;
        let core = self.registry.core(self.kind);
        let in_core = || schema::common_attribute(&a.attr).or_else(|| core.attribute(&a.attr));
        let (attr, prefix) = match a.urn.as_deref() {
            None => match in_core() {
                Some(attr) => (attr, String::new()),
                // Entra's bare enterprise names mean the extension's (see `target`).
                None if user && STRAY_ENTERPRISE_KEYS.iter().any(|k| eq_ic(k, &a.attr)) => (
                    ENTERPRISE_USER.attribute(&a.attr)?,
                    format!("{ENTERPRISE_USER_URN}:"),
                ),
                None => return Some((String::new(), &a.attr)),
            },
            Some(urn) if eq_ic(urn, &core.id) => match in_core() {
                Some(attr) => (attr, String::new()),
                None => return Some((String::new(), &a.attr)),
            },
            // A registered extension's unknown attribute is ignored like a core one; an
            // undeclared extension's attributes are kept as sent (see `target`).
            Some(urn) => {
                let ext = self
                    .registry
                    .extensions(self.kind)
                    .iter()
                    .find(|e| eq_ic(&e.schema.id, urn))?;
                let prefix = format!("{}:", ext.schema.id);
                match ext.schema.attribute(&a.attr) {
                    Some(attr) => (attr, prefix),
                    None => return Some((prefix, &a.attr)),
                }
            }
        };
        let sub = a.sub_attr.as_deref().or(path.sub_attr.as_deref())?;
        (attr.kind == Kind::Complex && attr.sub(sub).is_none())
            .then(|| (format!("{prefix}{}.", attr.name), sub))
    }

    /// The filter of `attr[filter]`, bound like a search filter on the same attribute.
    fn value_filter(&self, attr: &AttrPath, f: &Filter) -> Result<Resolved> {
        let outer = AttrPath {
            sub_attr: None,
            ..attr.clone()
        };
        resolve::resolve(
            &Filter::ValuePath(outer, Box::new(f.clone())),
            self.kind,
            self.registry,
        )
        .map_err(path_error)
    }

    /// Puts the attributes of the declared block `urn`, which an operation on `touched` is
    /// about to change, under their declared spelling (and `touched`'s sub-attributes), as a
    /// POST or PUT stores them: a value stored under another spelling (`Badge` for `badge`,
    /// kept from before the declaration) is the attribute's, so the operation replaces it
    /// instead of adding a second key beside it (which a uniqueness check could miss).
    /// `untouched` compares names in any case, so a renamed value is still "as stored".
    fn spell_block(&mut self, urn: &str, touched: &Attribute) {
        let registry = self.registry;
        let Some(schema) = registry.find(urn) else {
            return;
        };
        let Some(Value::Object(block)) = self.doc.get_mut(urn) else {
            return;
        };
        let declared = |k: &str| schema.attribute(k).map(|a| a.name.as_str());
        respell(block, &declared);
        if touched.kind == Kind::Complex {
            let declared = |k: &str| touched.sub(k).map(|a| a.name.as_str());
            match block.get_mut(&touched.name) {
                Some(Value::Object(one)) => respell(one, &declared),
                Some(Value::Array(items)) => {
                    for item in items {
                        if let Value::Object(one) = item {
                            respell(one, &declared);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The current value of `t`'s attribute, if any.
    fn current(&self, t: &Target) -> Option<&Value> {
        let holder = match &t.origin {
            Origin::Extension(urn) | Origin::Undeclared(urn) => {
                self.doc.get(&**urn)?.as_object()?
            }
            Origin::Common | Origin::Core => &self.doc,
        };
        holder.get(&t.attr.name)
    }

    /// The object an attribute of `origin` lives in.
    fn slot(&mut self, origin: &Origin) -> Result<&mut Map<String, Value>> {
        match origin {
            Origin::Extension(urn) | Origin::Undeclared(urn) => block_of(&mut self.doc, urn),
            Origin::Common | Origin::Core => Ok(&mut self.doc),
        }
    }

    fn members(
        &mut self,
        op: Op,
        path: &PatchPath,
        t: &Target,
        value: Option<Value>,
    ) -> Result<()> {
        if t.sub.is_some() {
            return Err(Error::Mutability(
                "a member's sub-attributes are immutable; add or remove the member instead".into(),
            ));
        }
        let needs_value = || {
            Error::InvalidValue(format!(
                "\"{}\" of \"members\" needs a \"value\"",
                op_name(op)
            ))
        };
        match (op, &path.filter) {
            (Op::Add, None) => {
                let value = value.ok_or_else(needs_value)?;
                self.members.push(MemberChange::Add(validate::member_ids(
                    value,
                    &mut self.ignored,
                )?));
            }
            (Op::Replace, None) => {
                let value = value.ok_or_else(needs_value)?;
                self.members.push(MemberChange::Set(validate::member_ids(
                    value,
                    &mut self.ignored,
                )?));
            }
            // Without a value every member goes (RFC 7644 §3.5.2.2). Entra, JumpCloud and
            // authentik send a `value` list (idp-compat.md §2 row 11): only those go, and a
            // list naming nobody (empty, or blank ids) removes nobody.
            (Op::Remove, None) => match value {
                None => self.members.push(MemberChange::Clear),
                Some(v) => self.members.push(MemberChange::Remove(validate::member_ids(
                    v,
                    &mut self.ignored,
                )?)),
            },
            (Op::Remove, Some(f)) => match member_ids_of(f) {
                Some(ids) => self.members.push(MemberChange::Remove(ids)),
                None => {
                    let resolved = self.value_filter(&path.attr, f)?;
                    self.members.push(MemberChange::RemoveWhere(resolved));
                }
            },
            (Op::Add | Op::Replace, Some(_)) => {
                return Err(Error::InvalidPath(
                    "members can be added, replaced as a whole or removed; a filtered \
                     \"members[…]\" path can only remove"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

/// Adds the operation's number to an error's detail, so a client knows which one failed.
fn numbered(e: Error, n: usize) -> Error {
    match e {
        Error::InvalidValue(m) => Error::InvalidValue(format!("operation {n}: {m}")),
        Error::InvalidPath(m) => Error::InvalidPath(format!("operation {n}: {m}")),
        Error::NoTarget(m) => Error::NoTarget(format!("operation {n}: {m}")),
        Error::Mutability(m) => Error::Mutability(format!("operation {n}: {m}")),
        other => other,
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Add => "add",
        Op::Replace => "replace",
        Op::Remove => "remove",
    }
}

fn display_path(t: &Target) -> String {
    match &t.sub {
        Some(sub) => format!("{}.{}", t.attr.name, sub.name),
        None => t.attr.name.to_string(),
    }
}

/// `doc` with each block of a registered extension under the registry's spelling of its
/// URN: a block stored under another spelling (kept while undeclared, or declared in another
/// case) is the same block, so operations and the checks after them find one block, not two.
fn declared_spelling(
    doc: Map<String, Value>,
    registry: &Registry,
    kind: ResourceKind,
) -> Map<String, Value> {
    let renamed = |k: &str| match registry.match_key(kind, k) {
        KeyMatch::Extension { schema, attr: None } if schema.id != k => Some(schema.id.clone()),
        _ => None,
    };
    if !doc.keys().any(|k| is_urn_key(k) && renamed(k).is_some()) {
        return doc;
    }
    let mut out = Map::new();
    for (k, v) in doc {
        let key = if is_urn_key(&k) {
            renamed(&k).unwrap_or(k)
        } else {
            k
        };
        match (out.get_mut(&key), v) {
            // Two spellings of one block: one block, the first value of a name kept.
            (Some(Value::Object(there)), Value::Object(more)) => {
                for (name, value) in more {
                    there.entry(name).or_insert(value);
                }
            }
            (_, v) => {
                out.entry(key).or_insert(v);
            }
        }
    }
    out
}

/// `obj` with each key `declared` knows under the spelling it gives, in place and in order.
/// Two spellings of one name keep the value already under the declared spelling (written
/// since the declaration), else the first.
fn respell<'s>(obj: &mut Map<String, Value>, declared: &impl Fn(&str) -> Option<&'s str>) {
    if obj.keys().all(|k| declared(k).is_none_or(|d| d == k)) {
        return;
    }
    let mut out = Map::new();
    for (k, v) in std::mem::take(obj) {
        match declared(&k) {
            Some(d) if d != k => {
                if !out.contains_key(d) {
                    out.insert(d.to_string(), v);
                }
            }
            Some(d) => {
                // The declared spelling wins over another one placed before it.
                out.insert(d.to_string(), v);
            }
            None => {
                out.insert(k, v);
            }
        }
    }
    *obj = out;
}

/// The extension block `doc[urn]`, made (empty) if it is not there.
fn block_of<'d>(doc: &'d mut Map<String, Value>, urn: &str) -> Result<&'d mut Map<String, Value>> {
    let entry = doc
        .entry(urn.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry
        .as_object_mut()
        .ok_or_else(|| Error::internal("extension block is not an object"))
}

/// `<URN>:<attr>[.sub]` of an undeclared extension: the URN is the longest block key of `doc`
/// the key continues after a `:` (as spelled there), else everything up to the last `:`.
/// The attribute and sub-attribute must be attribute names (RFC 7643 §2.1 ATTRNAME).
fn undeclared_path(
    doc: &Map<String, Value>,
    key: &str,
) -> Option<(String, String, Option<String>)> {
    let stored = doc
        .keys()
        .filter(|k| {
            is_urn_key(k)
                && key.len() > k.len() + 1
                && key.is_char_boundary(k.len())
                && eq_ic(&key[..k.len()], k)
                && key[k.len()..].starts_with(':')
        })
        .max_by_key(|k| k.len());
    let (urn, rest) = match stored {
        Some(k) => (k.clone(), &key[k.len() + 1..]),
        None => {
            let (urn, rest) = key.rsplit_once(':')?;
            let probe = format!("{urn}:x");
            let (ok, _) = validate::split_undeclared(&probe)?;
            (ok.to_string(), rest)
        }
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    let name = |n: &str| {
        n.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
    };
    (name(attr) && sub.is_none_or(name)).then(|| (urn, attr.to_string(), sub.map(String::from)))
}

/// An operation on attribute `name` (`.sub`) of an undeclared block, untyped: `add` of an
/// object merges into an object there and `add` of a list appends to a list there;
/// otherwise `add`/`replace` set the value as sent and `remove` drops it. Names match in any
/// case; a new one is kept as spelled.
fn set_untyped(
    block: &mut Map<String, Value>,
    name: &str,
    sub: Option<&str>,
    op: Op,
    value: Option<Value>,
) {
    let key = block
        .keys()
        .find(|k| eq_ic(k, name))
        .cloned()
        .unwrap_or_else(|| name.to_string());
    let Some(sub) = sub else {
        match (op, value) {
            (Op::Remove, _) | (_, None) => {
                block.remove(&key);
            }
            (Op::Add, Some(v)) => match (block.get_mut(&key), v) {
                (Some(Value::Object(there)), Value::Object(parts)) => there.extend(parts),
                (Some(Value::Array(there)), Value::Array(items)) => {
                    let mut seen: HashSet<String> = there.iter().map(canonical).collect();
                    for item in items {
                        if seen.insert(canonical(&item)) {
                            there.push(item);
                        }
                    }
                }
                (_, v) => {
                    block.insert(key, v);
                }
            },
            (Op::Replace, Some(v)) => {
                block.insert(key, v);
            }
        }
        return;
    };
    match block.get_mut(&key) {
        Some(Value::Object(obj)) => {
            set_untyped(obj, sub, None, op, value);
            if obj.is_empty() {
                block.remove(&key);
            }
        }
        // Each value of a list of objects, like `emails.type` on a declared attribute.
        Some(Value::Array(items)) => {
            for item in items.iter_mut() {
                if let Value::Object(obj) = item {
                    set_untyped(obj, sub, None, op, value.clone());
                }
            }
        }
        _ if op != Op::Remove && value.is_some() => {
            let mut obj = Map::new();
            set_untyped(&mut obj, sub, None, op, value);
            block.insert(key, Value::Object(obj));
        }
        _ => {}
    }
}

/// The entry a `type eq "…"` filter on an undeclared list describes, keyed as the filter
/// spells `type` (which is how the filter reads it). `None` for any other filter.
fn untyped_described_by(f: &Filter) -> Option<Map<String, Value>> {
    let Filter::Compare(p, CompareOp::Eq, CompValue::String(value)) = f else {
        return None;
    };
    if p.urn.is_some() || p.sub_attr.is_some() || !eq_ic(&p.attr, "type") {
        return None;
    }
    let mut m = Map::new();
    m.insert(p.attr.clone(), Value::String(value.clone()));
    Some(m)
}

/// A single value of a multi-valued attribute placed in a resource shaped like the rendered
/// one, for the evaluator.
fn wrap_item(t: &Target, item: &Value) -> Value {
    let mut attr = Map::new();
    attr.insert(t.attr.name.to_string(), Value::Array(vec![item.clone()]));
    match &t.origin {
        Origin::Extension(urn) | Origin::Undeclared(urn) => {
            let mut resource = Map::new();
            resource.insert(urn.to_string(), Value::Object(attr));
            Value::Object(resource)
        }
        Origin::Common | Origin::Core => Value::Object(attr),
    }
}

/// The ids of a `members[…]` filter that only names ids: `value eq "a"` (or several joined by
/// `or`), the form every IdP uses, removed without reading the other members.
fn member_ids_of(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(id))
            if p.urn.is_none() && p.sub_attr.is_none() && eq_ic(&p.attr, "value") =>
        {
            Some(vec![id.clone()])
        }
        Filter::Or(a, b) => {
            let mut ids = member_ids_of(a)?;
            ids.extend(member_ids_of(b)?);
            Some(ids)
        }
        _ => None,
    }
}

/// The qualified name used in messages.
fn qualified(attr: &Attribute, sub: Option<&Attribute>) -> String {
    match sub {
        Some(s) => format!("{}.{}", attr.name, s.name),
        None => attr.name.to_string(),
    }
}

/// An operation on a whole attribute (no filter, no sub-attribute).
fn whole(
    slot: &mut Map<String, Value>,
    attr: &Attribute,
    op: Op,
    value: Option<Value>,
    ignored: &mut Ignored,
) -> Result<()> {
    let name = &attr.name;
    if op == Op::Remove {
        match value {
            // `remove` with a value on a multi-valued attribute removes those values only.
            Some(v) if attr.multi_valued => remove_listed(slot, attr, v, ignored)?,
            _ => {
                slot.remove(name);
            }
        }
        return Ok(());
    }
    let value = value.unwrap_or(Value::Null);
    let Some(new) = validate::normalise_value(attr, value, name, ignored)? else {
        // `""` or `null`: the attribute has no value.
        if op == Op::Replace {
            slot.remove(name);
        }
        return Ok(());
    };
    match (attr.multi_valued, attr.kind, op) {
        (true, _, Op::Replace) => {
            slot.insert(name.to_string(), new);
        }
        (true, _, _) => {
            let Value::Array(items) = new else {
                return Ok(());
            };
            let current = slot
                .entry(name.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(existing) = current {
                // Linear work (values there + values added), not their product.
                let mut seen = Seen::default();
                for (i, e) in existing.iter().enumerate() {
                    seen.note(i, e);
                }
                let mut chosen = vec![false; existing.len()];
                for item in items {
                    // A value already there is not added twice (RFC 7643 §2.4; idp-compat.md
                    // row 27): what the add says about it (`primary`, …) is merged into it.
                    match seen.find(&item) {
                        Some(i) => {
                            if let (Value::Object(e), Value::Object(new)) = (&mut existing[i], item)
                            {
                                e.extend(new);
                                // An untyped value may have just got a type.
                                seen.retype(i, &existing[i]);
                            }
                            chosen[i] = true;
                        }
                        None => {
                            seen.note(existing.len(), &item);
                            chosen.push(true);
                            existing.push(item);
                        }
                    }
                }
                keep_one_primary(existing, |i| chosen[i]);
            }
        }
        // A complex value's unspecified sub-attributes stay (RFC 7644 §3.5.2.1, §3.5.2.3).
        (false, Kind::Complex, _) => merge_into(slot, name, new),
        (false, _, _) => {
            slot.insert(name.to_string(), new);
        }
    }
    Ok(())
}

/// The value of an operation on one selected value, as a list of one (`null` stays no value).
fn one_value(value: Option<Value>) -> Value {
    match value {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Array(items)) => Value::Array(items),
        Some(one) => Value::Array(vec![one]),
    }
}

/// The values of a multi-valued attribute indexed for `same_value`: `find` gives the first
/// value there that is the same as a new one, in constant time rather than a scan.
#[derive(Default)]
struct Seen {
    /// The first value with this `value` (or, without one, this whole value).
    first: HashMap<String, usize>,
    /// The first value with this `value` and this `type`.
    typed: HashMap<(String, String), usize>,
    /// The values with this `value` and no `type`, in order.
    untyped: HashMap<String, BTreeSet<usize>>,
}

impl Seen {
    /// The keys `same_value` compares `v` by: its `value` (or the whole value) and its
    /// `type`, when it has a `value`.
    fn keys(v: &Value) -> (String, Option<Option<String>>) {
        match v.get("value") {
            Some(inner) => (
                format!("v{}", canonical(inner)),
                Some(v.get("type").map(canonical)),
            ),
            None => (format!("w{}", canonical(v)), None),
        }
    }

    fn note(&mut self, i: usize, v: &Value) {
        let (key, ty) = Seen::keys(v);
        match ty {
            Some(Some(t)) => {
                self.typed.entry((key.clone(), t)).or_insert(i);
            }
            Some(None) => {
                self.untyped.entry(key.clone()).or_default().insert(i);
            }
            None => {}
        }
        self.first.entry(key).or_insert(i);
    }

    /// Value `i`, merged, now has a type: it is found by it.
    fn retype(&mut self, i: usize, v: &Value) {
        let (key, ty) = Seen::keys(v);
        if let Some(Some(t)) = ty
            && self.untyped.get_mut(&key).is_some_and(|set| set.remove(&i))
        {
            let at = self.typed.entry((key, t)).or_insert(i);
            *at = (*at).min(i);
        }
    }

    fn find(&self, v: &Value) -> Option<usize> {
        let (key, ty) = Seen::keys(v);
        match ty {
            // Same `value` and type, or one without a type: the first of either.
            Some(Some(t)) => {
                let typed = self.typed.get(&(key.clone(), t)).copied();
                let untyped = self.untyped.get(&key).and_then(|s| s.first().copied());
                typed.into_iter().chain(untyped).min()
            }
            _ => self.first.get(&key).copied(),
        }
    }
}

/// A JSON value's text with object keys sorted: equal values (`==`, which ignores key
/// order) give equal text, so it can key a hash set.
fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k.as_str()], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for item in items {
                    write(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// The rule `Seen` indexes, for its tests: whether two values of a multi-valued attribute
/// are the same value: equal, or complex
/// values with the same `value` (and the same `type`, when both have one).
#[cfg(test)]
fn same_value(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) if x == y => match (a.get("type"), b.get("type")) {
            (Some(s), Some(t)) => s == t,
            _ => true,
        },
        _ => false,
    }
}

fn merge_into(slot: &mut Map<String, Value>, name: &str, new: Value) {
    match (slot.get_mut(name), new) {
        (Some(Value::Object(current)), Value::Object(parts)) => current.extend(parts),
        (_, new) => {
            slot.insert(name.to_string(), new);
        }
    }
}

/// Removes the values of a multi-valued attribute that `value` lists, matched by their
/// `value` sub-attribute (or the whole value for simple attributes).
fn remove_listed(
    slot: &mut Map<String, Value>,
    attr: &Attribute,
    value: Value,
    ignored: &mut Ignored,
) -> Result<()> {
    let Some(Value::Array(gone)) = validate::normalise_value(attr, value, &attr.name, ignored)?
    else {
        return Ok(());
    };
    let key = |v: &Value| -> Value {
        match v.get("value") {
            Some(inner) => inner.clone(),
            None => v.clone(),
        }
    };
    let gone: Vec<Value> = gone.iter().map(key).collect();
    if let Some(Value::Array(items)) = slot.get_mut(&attr.name) {
        items.retain(|item| !gone.contains(&key(item)));
        if items.is_empty() {
            slot.remove(&attr.name);
        }
    }
    Ok(())
}

/// RFC 7643 §2.4: when a value the operation added or changed (`chosen`) is now primary, the
/// other values stop being primary.
fn keep_one_primary(items: &mut [Value], chosen: impl Fn(usize) -> bool) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    if !(0..items.len()).any(|i| chosen(i) && is_primary(&items[i])) {
        return;
    }
    for (i, item) in items.iter_mut().enumerate() {
        if !chosen(i)
            && let Some(p) = item.get_mut("primary")
        {
            *p = Value::Bool(false);
        }
    }
}

/// `name.givenName` on a singular complex attribute, or `emails.type` on every value of a
/// multi-valued one.
fn sub_everywhere(
    slot: &mut Map<String, Value>,
    attr: &Attribute,
    sub: &Attribute,
    op: Op,
    value: Option<Value>,
    ignored: &mut Ignored,
) -> Result<()> {
    let new = match (op, value) {
        (Op::Remove, _) => None,
        (_, v) => validate::normalise_value(
            sub,
            v.unwrap_or(Value::Null),
            &qualified(attr, Some(sub)),
            ignored,
        )?,
    };
    let set = |item: &mut Map<String, Value>| match &new {
        Some(v) => {
            item.insert(sub.name.to_string(), v.clone());
        }
        None => {
            item.remove(&sub.name);
        }
    };
    match slot.get_mut(&attr.name) {
        Some(Value::Array(items)) if attr.multi_valued => {
            for item in items.iter_mut() {
                if let Value::Object(m) = item {
                    set(m);
                }
            }
            items.retain(|i| i.as_object().is_some_and(|m| !m.is_empty()));
            if items.is_empty() {
                slot.remove(&attr.name);
            }
        }
        Some(Value::Object(m)) => {
            set(m);
            if m.is_empty() {
                slot.remove(&attr.name);
            }
        }
        _ if new.is_some() => {
            let mut m = Map::new();
            set(&mut m);
            let v = if attr.multi_valued {
                Value::Array(vec![Value::Object(m)])
            } else {
                Value::Object(m)
            };
            slot.insert(attr.name.to_string(), v);
        }
        _ => {}
    }
    Ok(())
}

/// `attr[filter]` and `attr[filter].sub`.
fn filtered(
    slot: &mut Map<String, Value>,
    t: &Target,
    op: Op,
    value: Option<Value>,
    raw: &Filter,
    ignored: &mut Ignored,
    selects: &dyn Fn(&Value) -> bool,
) -> Result<()> {
    let attr = &*t.attr;
    let mut items = match slot.remove(&attr.name) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    // In ascending order: `hit` is a binary search, so touching every value is not quadratic.
    let hits: Vec<usize> = (0..items.len()).filter(|&i| selects(&items[i])).collect();
    let hit = |i: usize| hits.binary_search(&i).is_ok();
    let result = (|| -> Result<()> {
        // The parts to set on each selected value (empty for a remove, or a blank value).
        let parts: Map<String, Value> = match (op, t.sub.as_deref()) {
            (Op::Remove, _) => Map::new(),
            (_, Some(sub)) => {
                let value = value.unwrap_or(Value::Null);
                let mut m = Map::new();
                let name = qualified(attr, Some(sub));
                if let Some(v) = validate::normalise_value(sub, value, &name, ignored)? {
                    m.insert(sub.name.to_string(), v);
                }
                m
            }
            // One value, as a one-element list: a lone object is not made primary here.
            (_, None) => {
                match validate::normalise_value(attr, one_value(value), &attr.name, ignored)? {
                    Some(Value::Array(mut one)) if one.len() == 1 => match one.pop() {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    },
                    Some(_) => {
                        return Err(Error::InvalidValue(format!(
                            "the value for \"{}[…]\" must be one object",
                            attr.name
                        )));
                    }
                    None => Map::new(),
                }
            }
        };
        // `""` and `null` are "no value" (Decision 9): adding nothing changes nothing.
        if op == Op::Add && parts.is_empty() {
            return Ok(());
        }
        if hits.is_empty() {
            // RFC 7644 §3.5.2.3: a filter that matches nothing has no target, and the request
            // changes nothing. One tolerance (idp-compat.md §2 row 14): Entra adds and replaces
            // typed entries that may not exist yet (`emails[type eq "work"].value`), so a
            // `type eq "…"` filter describes the entry to create (none for a blank value).
            let (Op::Add | Op::Replace, Some(mut entry)) = (op, described_by(raw, attr)) else {
                return Err(Error::NoTarget(format!(
                    "no value of \"{}\" matches the filter",
                    attr.name
                )));
            };
            if parts.is_empty() {
                return Ok(());
            }
            entry.extend(parts);
            let made = Value::Array(vec![Value::Object(entry)]);
            let Some(Value::Array(mut made)) =
                validate::normalise_value(attr, made, &attr.name, ignored)?
            else {
                return Ok(());
            };
            let first_new = items.len();
            items.append(&mut made);
            keep_one_primary(&mut items, |i| i >= first_new);
            return Ok(());
        }
        // Replacing with nothing leaves the matching targets unassigned.
        let op = match (op, parts.is_empty()) {
            (Op::Replace, true) => Op::Remove,
            (op, _) => op,
        };
        if op == Op::Remove {
            match t.sub.as_deref() {
                None => {
                    let mut i = 0;
                    items.retain(|_| {
                        i += 1;
                        !hit(i - 1)
                    });
                }
                Some(sub) => {
                    for &i in &hits {
                        if let Value::Object(m) = &mut items[i] {
                            m.remove(&sub.name);
                        }
                    }
                    items.retain(|i| i.as_object().is_some_and(|m| !m.is_empty()));
                }
            }
            return Ok(());
        }
        for &i in &hits {
            match (&mut items[i], op, t.sub.as_deref()) {
                // RFC 7644 §3.5.2.3: the matching values are replaced.
                (item, Op::Replace, None) => *item = Value::Object(parts.clone()),
                (Value::Object(m), _, _) => m.extend(parts.clone()),
                _ => {}
            }
        }
        keep_one_primary(&mut items, hit);
        Ok(())
    })();
    if !items.is_empty() {
        slot.insert(attr.name.to_string(), Value::Array(items));
    }
    result
}

/// The entry a `type eq "…"` filter describes: `type eq "work"` → `{"type": "work"}`. `None`
/// for any other filter, which names values that must exist (idp-compat.md §2 row 14).
fn described_by(f: &Filter, attr: &Attribute) -> Option<Map<String, Value>> {
    let Filter::Compare(p, CompareOp::Eq, CompValue::String(value)) = f else {
        return None;
    };
    let sub = attr.sub(&p.attr).filter(|s| s.name == "type")?;
    if p.urn.is_some() || p.sub_attr.is_some() {
        return None;
    }
    let mut m = Map::new();
    m.insert(sub.name.to_string(), Value::String(value.clone()));
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::registry::Registry;
    use serde_json::json;

    fn user(body: Value) -> Map<String, Value> {
        validate::user(body, &Registry::builtin()).unwrap().doc
    }

    fn ana() -> Map<String, Value> {
        user(json!({
            "userName": "ana",
            "active": true,
            "name": {"givenName": "Ana", "familyName": "Lima"},
            "emails": [{"value": "ana@work.example", "type": "work", "primary": true},
                       {"value": "ana@home.example", "type": "home"}],
        }))
    }

    fn ops(body: Value) -> Vec<Operation> {
        parse(body, ResourceKind::User).unwrap()
    }

    fn patch_user(doc: Map<String, Value>, operations: Value) -> Result<Map<String, Value>> {
        patch_user_ignoring(doc, operations).map(|(doc, _)| doc)
    }

    /// The patched user and the names the operations carried that were ignored.
    fn patch_user_ignoring(
        doc: Map<String, Value>,
        operations: Value,
    ) -> Result<(Map<String, Value>, Vec<String>)> {
        let body = json!({"schemas": [PATCH_OP_URN], "Operations": operations});
        let (out, mut ignored) =
            apply_user(doc, parse(body, ResourceKind::User)?, &Registry::builtin())?;
        // What the store keeps must still be a valid user.
        let input = validate::user(Value::Object(out), &Registry::builtin())?;
        ignored.extend(input.ignored);
        Ok((input.doc, ignored.names().to_vec()))
    }

    /// A user with an undeclared list of `n` objects.
    fn undeclared_list(n: usize) -> Map<String, Value> {
        let l: Vec<Value> = (0..n).map(|_| json!({"a": 1})).collect();
        let Value::Object(doc) = json!({"userName": "ana", "urn:x:y:User": {"l": l}}) else {
            unreachable!()
        };
        doc
    }

    fn apply_raw(doc: Map<String, Value>, operations: Value) -> Result<Map<String, Value>> {
        let body = json!({"schemas": [PATCH_OP_URN], "Operations": operations});
        apply_user(doc, parse(body, ResourceKind::User)?, &Registry::builtin()).map(|(d, _)| d)
    }

    /// review2 #3: undeclared operations pay the PATCH cost like declared ones.
    #[test]
    fn undeclared_operations_are_charged() {
        let op = json!({"op": "replace", "path": "urn:x:y:User:l.b", "value": "x"});
        let ops: Vec<Value> = (0..MAX_OPERATIONS).map(|_| op.clone()).collect();
        let e = apply_raw(undeclared_list(1000), json!(ops)).unwrap_err();
        assert!(matches!(e, Error::TooMany(_)), "{e:?}");
        let ops: Vec<Value> = (0..10).map(|_| op.clone()).collect();
        let doc = apply_raw(undeclared_list(1000), json!(ops)).unwrap();
        assert_eq!(doc["urn:x:y:User"]["l"][999], json!({"a": 1, "b": "x"}));
    }

    /// review2 #3: each undeclared key is charged for the document keys it is looked up
    /// among, so thousands of new blocks in one value are refused, not scanned quadratically.
    #[test]
    fn many_undeclared_blocks_in_one_value_are_too_many() {
        let value: Map<String, Value> = (0..3000)
            .map(|i| (format!("urn:a:b{i}"), json!({"a": 1})))
            .collect();
        let e = apply_raw(many_emails(0), json!([{"op": "add", "value": value}])).unwrap_err();
        assert!(matches!(e, Error::TooMany(_)), "{e:?}");
    }

    /// review2 #3: a value copied into every element fails before the copies are made when
    /// they alone would pass the undeclared bound.
    #[test]
    fn undeclared_copies_past_the_bound_fail_first() {
        let big = "x".repeat(10_000);
        let op = json!([{"op": "add", "path": "urn:x:y:User:l.b", "value": big}]);
        let e = apply_raw(undeclared_list(1900), op).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidValue(m) if m.contains("bytes")),
            "{e:?}"
        );
        let op = json!([{"op": "add", "path": "urn:x:y:User:l.b", "value": "x".repeat(8)}]);
        assert!(apply_raw(undeclared_list(100), op).is_ok());
    }

    /// review2 #4: a value copied into every value of a list is bounded before it is copied.
    #[test]
    fn copies_into_every_value_are_bounded() {
        let op =
            |n: usize| json!([{"op": "replace", "path": "emails.type", "value": "x".repeat(n)}]);
        let e = apply_raw(many_emails(1000), op(2000)).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidValue(m) if m.contains("copy")),
            "{e:?}"
        );
        let doc = apply_raw(many_emails(1000), op(8)).unwrap();
        assert_eq!(doc["emails"][999]["type"], "xxxxxxxx");
    }

    /// Undeclared list adds skip values already there, whatever their key order.
    #[test]
    fn undeclared_list_add_skips_values_there() {
        let Value::Object(doc) =
            json!({"userName": "ana", "urn:x:y:User": {"l": [{"a": 1, "b": 2}, 3]}})
        else {
            unreachable!()
        };
        let op = json!([{"op": "add", "path": "urn:x:y:User:l",
                         "value": [{"b": 2, "a": 1}, 3, 4, 4]}]);
        let doc = apply_raw(doc, op).unwrap();
        assert_eq!(doc["urn:x:y:User"]["l"], json!([{"a": 1, "b": 2}, 3, 4]));
    }

    /// review2 #4: an add of many values finds the ones already there through `Seen` (linear
    /// work), which picks what a scan with `same_value` picks.
    #[test]
    fn adding_values_finds_those_there_as_a_scan_would() {
        let emails: Vec<Value> = (0..1000)
            .map(|i| json!({"value": format!("{i}@x.org")}))
            .collect();
        let doc = apply_raw(
            many_emails(0),
            json!([{"op": "add", "path": "emails", "value": emails}]),
        )
        .unwrap();
        assert_eq!(doc["emails"].as_array().unwrap().len(), 1000);

        let pool = [
            json!({"value": "a"}),
            json!({"value": "a", "type": "work"}),
            json!({"value": "a", "type": "home"}),
            json!({"type": "work", "value": "a", "primary": true}),
            json!({"value": "b", "type": "work"}),
            json!({"value": 1}),
            json!({"value": 1.0}),
            json!({"display": "x"}),
            json!("a"),
            json!(1),
        ];
        let mut there: Vec<Value> = Vec::new();
        let mut seen = Seen::default();
        for round in 0..3 {
            for (n, item) in pool.iter().enumerate() {
                let scan = there.iter().position(|e| same_value(e, item));
                assert_eq!(seen.find(item), scan, "round {round}, {item}");
                match scan {
                    Some(i) => {
                        if let (Value::Object(e), Value::Object(new)) = (&mut there[i], item) {
                            e.extend(new.clone());
                            seen.retype(i, &there[i]);
                        }
                    }
                    None if (n + round) % 2 == 0 => {
                        seen.note(there.len(), item);
                        there.push(item.clone());
                    }
                    None => {}
                }
            }
        }
    }

    fn ok(doc: Map<String, Value>, operations: Value) -> Value {
        Value::Object(patch_user(doc, operations).unwrap())
    }

    /// A user with `n` emails.
    fn many_emails(n: usize) -> Map<String, Value> {
        let emails: Vec<Value> = (0..n)
            .map(|i| json!({"value": format!("{i}@x.org")}))
            .collect();
        let Value::Object(doc) = json!({"userName": "ana", "emails": emails}) else {
            unreachable!()
        };
        doc
    }

    /// `count` operations, each a `terms`-term value filter on emails (the first email
    /// matches).
    fn filtered_ops(count: usize, terms: usize) -> Value {
        let filter: Vec<String> = (0..terms)
            .map(|i| format!("value eq \"{}@x.org\"", i * 1000))
            .collect();
        let op = json!({"op": "replace", "path": format!("emails[{}].type", filter.join(" or ")),
                        "value": "work"});
        Value::Array(vec![op; count])
    }

    #[test]
    fn filter_terms_are_counted() {
        let resolved = |text: &str| {
            resolve::resolve(
                &filter::parse(text).unwrap(),
                ResourceKind::User,
                &Registry::builtin(),
            )
            .unwrap()
        };
        assert_eq!(terms(&resolved("userName pr")), 1);
        assert_eq!(
            terms(&resolved(
                "not (title eq \"a\") and (emails[value co \"x\" or type pr] or id pr)"
            )),
            4
        );
    }

    #[test]
    fn cost_up_to_the_limit_is_allowed() {
        let mut cost = Cost::default();
        cost.charge(MAX_PATCH_COST - 1).unwrap();
        cost.charge(1).unwrap();
        assert!(matches!(cost.charge(1), Err(Error::TooMany(_))));
        assert!(matches!(
            Cost::default().charge(u64::MAX),
            Err(Error::TooMany(_))
        ));
    }

    /// Operations × values visited × filter terms: over `MAX_PATCH_COST` is refused as
    /// tooMany before the operation that would pass it is evaluated.
    #[test]
    fn work_beyond_the_cost_limit_is_too_many() {
        // 1000 emails × 10 terms = 10,000 a operation: 100 of them are exactly the limit.
        patch_user(many_emails(1000), filtered_ops(10, 10)).unwrap();
        let over = patch_user(many_emails(1000), filtered_ops(101, 10)).unwrap_err();
        assert!(
            matches!(&over, Error::TooMany(m) if m.contains("1000000")),
            "{over:?}"
        );
        assert_eq!(over.scim_type(), Some("tooMany"));
        // Values given count too: 2000 emails added to a user with 1000.
        let add: Vec<Value> = (0..2000)
            .map(|i| json!({"value": format!("n{i}@x.org")}))
            .collect();
        let over = patch_user(
            many_emails(1000),
            json!([{"op": "add", "path": "emails", "value": add}]),
        );
        assert!(matches!(over, Err(Error::TooMany(_))), "{over:?}");
        // A replace touches each value once: not quadratic.
        patch_user(
            many_emails(1000),
            json!([{"op": "replace", "path": "emails", "value": add}]),
        )
        .unwrap();
        // What identity providers send is far below: a 1000-op PATCH of plain replaces.
        let plain = json!({"op": "replace", "path": "title", "value": "x"});
        patch_user(many_emails(1000), Value::Array(vec![plain; 1000])).unwrap();
    }

    fn err(doc: Map<String, Value>, operations: Value) -> (Option<&'static str>, String) {
        let e = patch_user(doc, operations).unwrap_err();
        (e.scim_type(), e.to_string())
    }

    #[test]
    fn ops_are_case_insensitive_and_delete_means_remove() {
        let parsed = ops(json!({"Operations": [
            {"op": "Add", "path": "nickName", "value": "a"},
            {"op": "REPLACE", "path": "title", "value": "b"},
            {"op": "delete", "path": "title"},
            {"OP": "remove", "PATH": "nickName"},
        ]}));
        let kinds: Vec<Op> = parsed.iter().map(|o| o.op).collect();
        assert_eq!(kinds, [Op::Add, Op::Replace, Op::Remove, Op::Remove]);
        assert_eq!(parsed[3].path.as_deref(), Some("nickName"));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let cases = [
            (json!([]), "invalidSyntax"),
            (json!({"schemas": [PATCH_OP_URN]}), "invalidSyntax"),
            (json!({"Operations": {}}), "invalidSyntax"),
            (json!({"Operations": []}), "invalidValue"),
            (json!({"Operations": [{"path": "x"}]}), "invalidSyntax"),
            (
                json!({"Operations": [{"op": "move", "path": "x"}]}),
                "invalidValue",
            ),
            (
                json!({"Operations": [{"op": "add", "path": 3}]}),
                "invalidPath",
            ),
            (json!({"Operations": ["add"]}), "invalidSyntax"),
        ];
        for (body, scim_type) in cases {
            let e = parse(body.clone(), ResourceKind::User).unwrap_err();
            assert_eq!(e.scim_type(), Some(scim_type), "{body}: {e}");
        }
        let many: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "add", "path": "title", "value": "x"}))
            .collect();
        assert!(parse(json!({"Operations": many}), ResourceKind::User).is_err());
    }

    #[test]
    fn okta_deactivates_with_a_pathless_replace() {
        let out = ok(
            ana(),
            json!([{"op": "replace", "value": {"active": false}}]),
        );
        assert_eq!(out["active"], json!(false));
        assert_eq!(out["userName"], json!("ana"));
    }

    #[test]
    fn entra_string_booleans_and_capitalised_ops() {
        let out = ok(
            ana(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        );
        assert_eq!(out["active"], json!(false));
        let out = ok(
            ana(),
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        );
        assert_eq!(out["active"], json!(true));
    }

    #[test]
    fn value_filter_paths_change_the_matching_value() {
        let out = ok(
            ana(),
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value",
                    "value": "ana@new.example"}]),
        );
        assert_eq!(out["emails"][0]["value"], json!("ana@new.example"));
        assert_eq!(out["emails"][0]["primary"], json!(true));
        assert_eq!(out["emails"][1]["value"], json!("ana@home.example"));
    }

    #[test]
    fn value_filter_paths_create_the_entry_they_describe() {
        let out = ok(
            ana(),
            json!([
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+351 1"},
                {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "1000"},
            ]),
        );
        assert_eq!(
            out["phoneNumbers"],
            json!([{"type": "mobile", "value": "+351 1"}])
        );
        assert_eq!(
            out["addresses"],
            json!([{"type": "work", "postalCode": "1000"}])
        );
        // A filter that describes no single entry has no target.
        let (t, _) = err(
            ana(),
            json!([{"op": "replace", "path": "phoneNumbers[value co \"1\"].type", "value": "x"}]),
        );
        assert_eq!(t, Some("noTarget"));
    }

    /// RFC 7644 §3.5.2.3: `replace` or `remove` through a value filter that matches nothing is
    /// `noTarget`; only a `type eq "…"` filter under `add` or `replace` creates what it
    /// describes (idp-compat.md §2 row 14).
    #[test]
    fn value_filters_that_match_nothing_have_no_target() {
        for (op, path, value) in [
            ("remove", "emails[type eq \"pager\"]", Value::Null),
            ("remove", "emails[type eq \"pager\"].value", Value::Null),
            (
                "Remove",
                "phoneNumbers[type eq \"mobile\"].value",
                Value::Null,
            ),
            (
                "remove",
                "emails[value eq \"nobody@x.example\"]",
                Value::Null,
            ),
            (
                "replace",
                "emails[value eq \"nobody@x.example\"].type",
                json!("work"),
            ),
            (
                "replace",
                "emails[value eq \"nobody@x.example\"].value",
                json!(""),
            ),
            (
                "add",
                "emails[value eq \"nobody@x.example\"].type",
                json!("work"),
            ),
            (
                "replace",
                "emails[value eq \"nobody@x.example\"]",
                json!({"value": "n@x.example"}),
            ),
            // Only the one form describes an entry to create: not a conjunction, another
            // operator, a presence test, an alternative, or a non-string value.
            (
                "replace",
                "emails[type eq \"pager\" and primary eq true].value",
                json!("p@x"),
            ),
            ("add", "emails[type sw \"pa\"].value", json!("p@x")),
            (
                "replace",
                "emails[type pr and value ew \".org\"].value",
                json!("p@x"),
            ),
            (
                "replace",
                "emails[type eq \"a\" or type eq \"b\"].value",
                json!("p@x"),
            ),
            ("replace", "emails[primary eq false].value", json!("p@x")),
            ("replace", "emails[not (type pr)].type", json!("x")),
        ] {
            let mut o = json!({"op": op, "path": path});
            if !value.is_null() {
                o["value"] = value;
            }
            let (t, detail) = err(ana(), json!([o.clone()]));
            assert_eq!(t, Some("noTarget"), "{o}: {detail}");
            assert!(detail.contains("matches the filter"), "{detail}");
        }
        // A failing operation fails the request, whatever came before it.
        let (t, detail) = err(
            ana(),
            json!([{"op": "replace", "path": "title", "value": "x"},
                   {"op": "replace", "path": "emails[type eq \"work\" and primary eq false].value",
                    "value": "y@x"}]),
        );
        assert_eq!(t, Some("noTarget"));
        assert!(detail.starts_with("operation 2:"), "{detail}");
        // Adding nothing through any filter changes nothing.
        assert_eq!(
            ok(
                ana(),
                json!([{"op": "add", "path": "emails[value eq \"n@x\"].type", "value": ""}])
            ),
            Value::Object(ana())
        );
    }

    #[test]
    fn a_type_eq_filter_creates_the_typed_entry_it_names() {
        let out = ok(
            ana(),
            json!([
                {"op": "Replace", "path": "emails[type eq \"other\"].value", "value": "o@x.example"},
                {"op": "add", "path": "ims[Type eq \"xmpp\"].value", "value": "ana@chat"},
                {"op": "replace", "path": "phoneNumbers[type eq \"fax\"]",
                 "value": {"value": "+1 2"}},
            ]),
        );
        assert_eq!(
            out["emails"][2],
            json!({"type": "other", "value": "o@x.example"})
        );
        assert_eq!(out["ims"], json!([{"type": "xmpp", "value": "ana@chat"}]));
        assert_eq!(
            out["phoneNumbers"],
            json!([{"type": "fax", "value": "+1 2"}])
        );
        // Once there, the same path replaces it rather than adding a second one.
        let again = ok(
            out.as_object().cloned().unwrap(),
            json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "p@x.example"}]),
        );
        assert_eq!(again["emails"].as_array().map(Vec::len), Some(3));
        assert_eq!(again["emails"][2]["value"], json!("p@x.example"));
    }

    #[test]
    fn add_on_a_single_valued_attribute_replaces_it() {
        let out = ok(
            ana(),
            json!([{"op": "Add", "path": "nickName", "value": "Aninha"}]),
        );
        assert_eq!(out["nickName"], json!("Aninha"));
        let out = ok(
            Value::as_object(&out).cloned().unwrap(),
            json!([{"op": "Add", "path": "nickName", "value": "Ani"}]),
        );
        assert_eq!(out["nickName"], json!("Ani"));
    }

    #[test]
    fn adds_merge_into_multi_valued_attributes_once() {
        let add = json!([{"op": "add", "path": "emails",
                          "value": [{"value": "ana@alt.example", "type": "other"}]}]);
        let once = patch_user(ana(), add.clone()).unwrap();
        let twice = patch_user(once.clone(), add).unwrap();
        assert_eq!(once, twice);
        assert_eq!(once["emails"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn a_new_primary_clears_the_others() {
        let out = ok(
            ana(),
            json!([{"op": "add", "path": "emails",
                    "value": [{"value": "ana@alt.example", "primary": true}]}]),
        );
        let primaries: Vec<&Value> = out["emails"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["primary"] == json!(true))
            .collect();
        assert_eq!(
            primaries,
            [&json!({"value": "ana@alt.example", "primary": true})]
        );
        let out = ok(
            ana(),
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
        );
        assert_eq!(out["emails"][0]["primary"], json!(false));
        assert_eq!(out["emails"][1]["primary"], json!(true));
    }

    #[test]
    fn replace_and_add_on_complex_keep_unnamed_sub_attributes() {
        let out = ok(
            ana(),
            json!([{"op": "replace", "path": "name", "value": {"givenName": "Anita"}}]),
        );
        assert_eq!(
            out["name"],
            json!({"givenName": "Anita", "familyName": "Lima"})
        );
        let out = ok(
            ana(),
            json!([{"op": "replace", "value": {"name": {"middleName": "M"}}}]),
        );
        assert_eq!(out["name"]["middleName"], json!("M"));
        assert_eq!(out["name"]["givenName"], json!("Ana"));
    }

    #[test]
    fn replace_of_a_multi_valued_attribute_replaces_every_value() {
        let out = ok(
            ana(),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "x@y.z"}]}]),
        );
        assert_eq!(out["emails"], json!([{"value": "x@y.z"}]));
    }

    #[test]
    fn removes() {
        let out = ok(ana(), json!([{"op": "remove", "path": "name.givenName"}]));
        assert_eq!(out["name"], json!({"familyName": "Lima"}));
        let out = ok(
            ana(),
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
        );
        assert_eq!(out["emails"].as_array().map(Vec::len), Some(1));
        let out = ok(ana(), json!([{"op": "remove", "path": "emails"}]));
        assert!(out.get("emails").is_none());
        let out = ok(
            ana(),
            json!([{"op": "remove", "path": "emails", "value": [{"value": "ana@home.example"}]}]),
        );
        assert_eq!(out["emails"].as_array().map(Vec::len), Some(1));
        // Removing what is not there changes nothing.
        assert_eq!(
            ok(ana(), json!([{"op": "remove", "path": "title"}])),
            Value::Object(ana())
        );
        let (t, _) = err(ana(), json!([{"op": "remove"}]));
        assert_eq!(t, Some("noTarget"));
        // userName is required: removing it leaves an invalid user.
        let (t, _) = err(ana(), json!([{"op": "remove", "path": "userName"}]));
        assert_eq!(t, Some("invalidValue"));
    }

    #[test]
    fn read_only_targets_are_refused_but_ignored_inside_values() {
        for path in [
            "id",
            "meta.created",
            "groups",
            "meta",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
        ] {
            let (t, detail) = err(
                ana(),
                json!([{"op": "replace", "path": path, "value": "x"}]),
            );
            assert_eq!(t, Some("mutability"), "{path}: {detail}");
        }
        let out = ok(
            ana(),
            json!([{"op": "replace", "value": {"id": "x", "meta": {}, "schemas": [], "groups": [],
                                               "title": "Boss"}}]),
        );
        assert_eq!(out["title"], json!("Boss"));
    }

    /// `operations` applied to `doc` with the acme registry, then validated with it.
    fn patch_acme(doc: Value, operations: Value) -> Result<Value> {
        let registry = crate::scim::registry::testing::acme();
        let body = json!({"schemas": [PATCH_OP_URN], "Operations": operations});
        let doc = validate::user(doc, &registry)?.doc;
        let (out, _) = apply_user(doc, parse(body, ResourceKind::User)?, &registry)?;
        Ok(Value::Object(
            validate::user(Value::Object(out), &registry)?.doc,
        ))
    }

    const ACME: &str = crate::scim::registry::testing::ACME;
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";

    #[test]
    fn declared_extension_paths_blocks_and_filters() {
        let base = json!({"userName": "ana", ACME: {"badgeNumber": "1",
            "keys": [{"value": "k1", "type": "ssh"}, {"value": "k2", "type": "gpg"}]}});
        let out = patch_acme(
            base.clone(),
            json!([
                {"op": "replace", "path": format!("{ACME}:badgeNumber"), "value": "2"},
                {"op": "add", "path": format!("{}:UID", ACME.to_uppercase()), "value": 7},
                {"op": "replace", "path": format!("{ACME}:keys[type eq \"ssh\"].value"), "value": "k3"},
                {"op": "remove", "path": format!("{ACME}:keys[type eq \"gpg\"]")},
                {"op": "replace", "value": {format!("{ACME}:vip"): "true"}},
            ]),
        )
        .unwrap();
        assert_eq!(
            out[ACME],
            json!({"badgeNumber": "2", "keys": [{"value": "k3", "type": "ssh"}], "uid": 7, "vip": true})
        );
        let e = patch_acme(
            base.clone(),
            json!([{"op": "replace", "path": format!("{ACME}:uid"), "value": "seven"}]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("uid"), "{e}");
        // An attribute the declaration lacks is unknown input: ignored, like a core one.
        let out = patch_acme(
            base.clone(),
            json!([{"op": "replace", "path": format!("{ACME}:nope"), "value": "x"}]),
        )
        .unwrap();
        let unchanged = validate::user(base.clone(), &crate::scim::registry::testing::acme())
            .unwrap()
            .doc;
        assert_eq!(out, Value::Object(unchanged));
        // The URN as a path is the block; removing the last attribute drops it.
        let out = patch_acme(
            base.clone(),
            json!([{"op": "replace", "path": ACME, "value": {"badgeNumber": "9"}}]),
        )
        .unwrap();
        assert_eq!(out[ACME]["badgeNumber"], "9");
        let out = patch_acme(base.clone(), json!([{"op": "remove", "path": ACME}])).unwrap();
        assert!(out.get(ACME).is_none());
        let out = patch_acme(
            base,
            json!([
                {"op": "remove", "path": format!("{ACME}:badgeNumber")},
                {"op": "remove", "path": format!("{ACME}:keys")},
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"userName": "ana"}));
    }

    /// Review #1: a declared block stored with names spelled otherwise (kept from before the
    /// declaration) gets the declared spelling when an operation touches it: one key per
    /// attribute, never `BadgeNumber` beside `badgeNumber`; values it only renamed are still
    /// "as stored" (not checked again), and untouched blocks keep their spelling.
    #[test]
    fn a_touched_declared_block_takes_the_declared_spelling() {
        let registry = crate::scim::registry::testing::acme();
        let stored = |acme: Value| match json!({"userName": "ana", ACME: acme}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let run = |before: &Map<String, Value>, operations: Value| {
            let body = json!({"schemas": [PATCH_OP_URN], "Operations": operations});
            let (out, _) = apply_user(before.clone(), ops(body), &registry)?;
            validate::patched_user(out, before, &registry).map(|i| i.doc)
        };
        for spelling in ["BadgeNumber", "BADGENUMBER", "badgenumber"] {
            let before = stored(json!({spelling: "1", "UID": "not a number", "other": 1,
                "keys": [{"Value": "k1", "TYPE": "ssh"}]}));
            let out = run(
                &before,
                json!([{"op": "replace", "path": format!("{ACME}:badgeNumber"), "value": "2"}]),
            )
            .unwrap();
            assert_eq!(
                out[ACME],
                json!({"badgeNumber": "2", "uid": "not a number", "other": 1,
                       "keys": [{"Value": "k1", "TYPE": "ssh"}]}),
                "{spelling}"
            );
            // A path-less value naming the other spelling is the same attribute too.
            let out = run(
                &before,
                json!([{"op": "add", "value": {ACME: {"badgenumber": "3"}}}]),
            )
            .unwrap();
            assert_eq!(out[ACME]["badgeNumber"], "3");
            assert_eq!(out[ACME].as_object().unwrap().len(), 4, "{}", out[ACME]);
        }
        // The touched attribute's sub-attributes too: the same key is not added twice.
        let before = stored(json!({"keys": [{"Value": "k1", "TYPE": "ssh"}]}));
        let out = run(
            &before,
            json!([{"op": "add", "path": format!("{ACME}:keys"),
                    "value": [{"value": "k1", "type": "ssh"}]}]),
        )
        .unwrap();
        assert_eq!(out[ACME], json!({"keys": [{"value": "k1", "type": "ssh"}]}));
        // A PATCH not touching the block leaves it as stored.
        let before = stored(json!({"BadgeNumber": "1"}));
        let out = run(
            &before,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .unwrap();
        assert_eq!(out[ACME], json!({"BadgeNumber": "1"}));
        // Both spellings stored (by the bug this fixes): the declared one's value stays.
        let before = stored(json!({"BadgeNumber": "old", "badgeNumber": "new", "uid": 1}));
        let out = run(
            &before,
            json!([{"op": "replace", "path": format!("{ACME}:uid"), "value": 2}]),
        )
        .unwrap();
        assert_eq!(out[ACME], json!({"badgeNumber": "new", "uid": 2}));
    }

    #[test]
    fn undeclared_extension_paths_set_values_as_sent() {
        let base = json!({"userName": "ana", CUSTOM: {"badge": "1", "ids": {"uid": 1}}});
        let out = patch_acme(
            base.clone(),
            json!([
                {"op": "Add", "path": format!("{CUSTOM}:costCenter"), "value": "C7"},
                {"op": "Replace", "path": format!("{CUSTOM}:BADGE"), "value": 2},
                {"op": "replace", "path": format!("{CUSTOM}:ids.gid"), "value": 5},
                {"op": "Replace", "value": {format!("{CUSTOM}:shell"): "/bin/sh"}},
            ]),
        )
        .unwrap();
        assert_eq!(
            out[CUSTOM],
            json!({"badge": 2, "ids": {"uid": 1, "gid": 5}, "costCenter": "C7", "shell": "/bin/sh"})
        );
        // A new extension, by its block or by a qualified attribute.
        let other = "urn:other:2.0:User";
        let out = patch_acme(
            base.clone(),
            json!([
                {"op": "add", "path": other, "value": {"a": "1"}},
                {"op": "add", "value": {"urn:third:2.0:User:b": true}},
            ]),
        )
        .unwrap();
        assert_eq!(out[other], json!({"a": "1"}));
        assert_eq!(out["urn:third:2.0:User"], json!({"b": true}));
        // Removing the last attribute drops the block; removing what is not there is no-op.
        let out = patch_acme(
            base.clone(),
            json!([
                {"op": "remove", "path": format!("{CUSTOM}:badge")},
                {"op": "remove", "path": format!("{CUSTOM}:ids.uid")},
                {"op": "remove", "path": "urn:never:2.0:User:x"},
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"userName": "ana"}));
        let out = patch_acme(
            base.clone(),
            json!([{"op": "remove", "path": CUSTOM.to_lowercase()}]),
        )
        .unwrap();
        assert_eq!(out, json!({"userName": "ana"}));
        let e = patch_acme(
            base,
            json!([{"op": "replace", "path": "urn:x", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(e.scim_type(), Some("invalidPath"));
    }

    /// Value filters inside an undeclared attribute, with the semantics of a declared one's.
    #[test]
    fn undeclared_value_filter_paths() {
        let base = json!({"userName": "ana", CUSTOM: {"keys": [
            {"type": "ssh", "value": "k1"},
            {"type": "gpg", "value": "k2"},
            "loose",
        ], "manager": {"value": "m1", "name": "M"}}});
        let keys = |out: &Value| out[CUSTOM]["keys"].clone();
        let path = |p: &str| format!("{CUSTOM}:{p}");
        let run = |ops: Value| patch_acme(base.clone(), ops);
        let out = run(
            json!([{"op": "replace", "path": path("keys[type eq \"SSH\"].value"), "value": "k9"}]),
        )
        .unwrap();
        assert_eq!(
            keys(&out),
            json!([{"type": "ssh", "value": "k9"}, {"type": "gpg", "value": "k2"}, "loose"])
        );
        let out = run(json!([{"op": "remove", "path": path("keys[value eq \"k2\"]")}])).unwrap();
        assert_eq!(keys(&out), json!([{"type": "ssh", "value": "k1"}, "loose"]));
        let out =
            run(json!([{"op": "remove", "path": path("keys[type eq \"ssh\"].value")}])).unwrap();
        assert_eq!(
            keys(&out),
            json!([{"type": "ssh"}, {"type": "gpg", "value": "k2"}, "loose"])
        );
        let out = run(
            json!([{"op": "replace", "path": path("keys[value eq \"k1\"]"),
                              "value": {"type": "rsa", "value": "k3"}}]),
        )
        .unwrap();
        assert_eq!(keys(&out)[0], json!({"type": "rsa", "value": "k3"}));
        let out = run(json!([{"op": "add", "path": path("keys[value eq \"k1\"]"),
                              "value": {"note": "x"}}]))
        .unwrap();
        assert_eq!(
            keys(&out)[0],
            json!({"type": "ssh", "value": "k1", "note": "x"})
        );
        // A lone object is a list of one, and stays an object.
        let out = run(
            json!([{"op": "replace", "path": path("manager[value eq \"m1\"].name"), "value": "N"}]),
        )
        .unwrap();
        assert_eq!(out[CUSTOM]["manager"], json!({"value": "m1", "name": "N"}));
        // Matching nothing: noTarget, except a `type eq` filter describing the entry to add.
        for (op, p) in [
            ("replace", "keys[value eq \"none\"].value"),
            ("remove", "keys[value eq \"none\"]"),
            ("remove", "keys[type eq \"rsa\"]"),
            ("remove", "missing[type eq \"rsa\"]"),
        ] {
            let e = run(json!([{"op": op, "path": path(p), "value": "v"}])).unwrap_err();
            assert_eq!(e.scim_type(), Some("noTarget"), "{op} {p}: {e}");
        }
        let out = run(
            json!([{"op": "replace", "path": path("keys[type eq \"rsa\"].value"), "value": "k4"}]),
        )
        .unwrap();
        assert_eq!(keys(&out)[3], json!({"type": "rsa", "value": "k4"}));
        let out = run(json!([{"op": "add", "path": path("shells[type eq \"login\"].value"), "value": "/bin/sh"}]))
            .unwrap();
        assert_eq!(
            out[CUSTOM]["shells"],
            json!([{"type": "login", "value": "/bin/sh"}])
        );
        // Bad filters and values are refused with the usual errors.
        let e = run(json!([{"op": "remove", "path": path("keys[type co 1]")}])).unwrap_err();
        assert_eq!(e.scim_type(), Some("invalidPath"));
        let e = run(json!([{"op": "replace", "path": path("keys[type eq \"ssh\"]"), "value": 1}]))
            .unwrap_err();
        assert_eq!(e.scim_type(), Some("invalidValue"));
    }

    /// review2 #3 for value filters: each costs the values there × the filter's terms.
    #[test]
    fn undeclared_value_filters_are_charged() {
        let path = "urn:x:y:User:l[a eq 1 or a eq 2 or a eq 3 or a eq 4 or a eq 5].b";
        let op = json!({"op": "replace", "path": path, "value": "x"});
        // 5 terms × 1000 values an operation: 200 operations reach the limit.
        let ops: Vec<Value> = (0..201).map(|_| op.clone()).collect();
        let e = apply_raw(undeclared_list(1000), json!(ops)).unwrap_err();
        assert_eq!(e.scim_type(), Some("tooMany"), "{e}");
        let doc = apply_raw(undeclared_list(1000), json!(ops[..190])).unwrap();
        assert_eq!(doc["urn:x:y:User"]["l"][999], json!({"a": 1, "b": "x"}));
    }

    #[test]
    fn bad_paths_are_invalid_paths() {
        for path in [
            "emails[type eq]",
            "emails[",
            "na me",
            "title[type eq \"x\"]",
            "title.x",
            "emails[nope eq \"x\"]",
            "urn:example:unknown[type eq \"x\"]",
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
        ] {
            let (t, detail) = err(
                ana(),
                json!([{"op": "replace", "path": path, "value": "x"}]),
            );
            assert_eq!(t, Some("invalidPath"), "{path}: {detail}");
            assert!(detail.starts_with("operation 1:"), "{detail}");
        }
        let (t, _) = err(
            ana(),
            json!([{"op": "replace", "path": "title", "value": 3}]),
        );
        assert_eq!(t, Some("invalidValue"));
        let (t, _) = err(
            ana(),
            json!([{"op": "replace", "value": {"nope": 1, "title": 3}}]),
        );
        assert_eq!(t, Some("invalidValue"));
    }

    #[test]
    fn unknown_paths_are_ignored_and_named() {
        let ent = ENTERPRISE_USER_URN;
        for op in ["add", "replace", "remove"] {
            let (out, ignored) = patch_user_ignoring(
                ana(),
                json!([
                    {"op": op, "path": "adreses", "value": "x"},
                    {"op": op, "path": "name.nickname", "value": "x"},
                    {"op": op, "path": "emails[type eq \"work\"].label", "value": "x"},
                    {"op": op, "path": "adreses[type eq \"work\"].street", "value": "x"},
                    {"op": op, "path": format!("{ent}:shoeSize"), "value": "x"},
                    {"op": op, "path": format!("{ent}:manager.email"), "value": "x"},
                    {"op": op, "path": "manager.email", "value": "x"},
                    {"op": op, "path": "urn:ietf:params:scim:schemas:core:2.0:User:adreses",
                     "value": "x"},
                    {"op": op, "path": "title", "value": "Boss"},
                ]),
            )
            .unwrap();
            // The known operation did its work; the unknown ones nothing.
            let mut expected = ana();
            if op == "remove" {
                expected.remove("title");
            } else {
                expected.insert("title".into(), json!("Boss"));
            }
            assert_eq!(out, expected, "{op}");
            assert_eq!(
                ignored,
                [
                    "adreses".to_string(),
                    "name.nickname".into(),
                    "emails.label".into(),
                    format!("{ent}:shoeSize"),
                    format!("{ent}:manager.email"),
                ],
                "{op}"
            );
        }
    }

    #[test]
    fn unknown_keys_inside_values_are_ignored_and_named() {
        let (out, ignored) = patch_user_ignoring(
            ana(),
            json!([
                {"op": "replace", "value": {
                    "adreses": "x",
                    "name.nickname": "x",
                    "name": {"givenName": "Anabela", "nickname": "A"},
                    "emails": [{"value": "a@b.c", "label": "x"}],
                    ENTERPRISE_USER_URN: {"shoeSize": 42, "department": "Sales"},
                    "urn:example:ext:2.0:User": {"badge": 1},
                }},
                {"op": "add", "path": "phoneNumbers", "value": [{"value": "1", "kind": "x"}]},
                {"op": "add", "path": "emails[type eq \"home\"]", "value": {"label": "x"}},
            ]),
        )
        .unwrap();
        assert_eq!(
            out["name"],
            json!({"givenName": "Anabela", "familyName": "Lima"})
        );
        // The filtered add named only an unknown key: nothing to add.
        assert_eq!(out["emails"], json!([{"value": "a@b.c"}]));
        assert_eq!(out["phoneNumbers"], json!([{"value": "1"}]));
        assert_eq!(out[ENTERPRISE_USER_URN], json!({"department": "Sales"}));
        let mut ignored = ignored;
        ignored.sort();
        let mut expected = vec![
            "adreses".to_string(),
            "name.nickname".into(),
            "emails.label".into(),
            format!("{ENTERPRISE_USER_URN}:shoeSize"),
            "phoneNumbers.kind".into(),
        ];
        expected.sort();
        // Another extension's block is not this rule's (it is dropped, not named).
        assert_eq!(ignored, expected);
    }

    #[test]
    fn entra_bare_enterprise_names_keep_their_meaning_in_a_patch() {
        let (out, ignored) = patch_user_ignoring(
            ana(),
            json!([{"op": "replace", "path": "department", "value": "Sales"},
                   {"op": "replace", "value": {"costCenter": "42"}}]),
        )
        .unwrap();
        assert_eq!(
            out[ENTERPRISE_USER_URN],
            json!({"department": "Sales", "costCenter": "42"})
        );
        assert!(ignored.is_empty(), "{ignored:?}");
    }

    #[test]
    fn entra_flag_form_dotted_and_urn_keys() {
        let out = ok(
            ana(),
            json!([{"op": "replace", "value": {
                "name.givenName": "Anabela",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "boss-id",
                "displayName": "Anabela Lima",
            }}]),
        );
        assert_eq!(out["name"]["givenName"], json!("Anabela"));
        assert_eq!(out["displayName"], json!("Anabela Lima"));
        assert_eq!(
            out[ENTERPRISE_USER_URN],
            json!({"employeeNumber": "42", "manager": {"value": "boss-id"}})
        );
    }

    #[test]
    fn manager_in_every_shape() {
        let urn = ENTERPRISE_USER_URN;
        for value in [
            json!("m1"),
            json!({"value": "m1"}),
            json!([{"$ref": null, "value": "m1"}]),
        ] {
            let out = ok(
                ana(),
                json!([{"op": "Add", "path": format!("{urn}:manager"), "value": value}]),
            );
            assert_eq!(out[urn]["manager"]["value"], json!("m1"), "{value}");
        }
        let out = ok(
            ana(),
            json!([{"op": "replace", "path": format!("{urn}:manager.value"), "value": "m2"}]),
        );
        assert_eq!(out[urn]["manager"], json!({"value": "m2"}));
        // Removing the last enterprise attribute removes the extension.
        let out = ok(
            Value::as_object(&out).cloned().unwrap(),
            json!([{"op": "remove", "path": format!("{urn}:manager")}]),
        );
        assert!(out.get(urn).is_none());
        let out = ok(
            ana(),
            json!([{"op": "add", "path": urn, "value": {"department": "R&D"}}]),
        );
        assert_eq!(out[urn], json!({"department": "R&D"}));
    }

    #[test]
    fn entra_bare_enterprise_names_mean_the_extension() {
        let urn = ENTERPRISE_USER_URN;
        let out = ok(
            ana(),
            json!([{"op": "Add", "path": "manager", "value": [{"$ref": "http://x/Users/m", "value": "m"}]},
                   {"op": "replace", "value": {"department": "Ops", "employeeNumber": "7"}}]),
        );
        assert_eq!(out[urn]["manager"]["value"], json!("m"));
        assert_eq!(out[urn]["department"], json!("Ops"));
        assert_eq!(out[urn]["employeeNumber"], json!("7"));
        // A null extension block is no value, not an error.
        ok(ana(), json!([{"op": "replace", "value": {urn: null}}]));
    }

    #[test]
    fn blank_values_under_value_filters_remove_or_create_nothing() {
        let out = ok(
            ana(),
            json!([{"op": "Replace", "path": "emails[type eq \"home\"].value", "value": ""},
                   {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": ""},
                   {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": ""}]),
        );
        assert_eq!(out["emails"][1], json!({"type": "home"}));
        assert!(
            out.get("phoneNumbers").is_none() && out.get("addresses").is_none(),
            "{out}"
        );
    }

    #[test]
    fn an_add_of_a_value_already_there_updates_it_instead_of_duplicating_it() {
        let out = ok(
            ana(),
            json!([{"op": "add", "path": "emails",
                    "value": [{"value": "ana@home.example", "type": "home", "primary": true}]}]),
        );
        assert_eq!(out["emails"].as_array().map(Vec::len), Some(2));
        assert_eq!(out["emails"][0]["primary"], json!(false));
        assert_eq!(out["emails"][1]["primary"], json!(true));
    }

    #[test]
    fn a_value_filter_replace_replaces_the_matching_values() {
        let out = ok(
            ana(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"]",
                    "value": {"value": "n@x.example", "type": "other"}}]),
        );
        assert_eq!(
            out["emails"][0],
            json!({"value": "n@x.example", "type": "other"})
        );
    }

    #[test]
    fn one_failing_operation_fails_the_request() {
        let (t, detail) = err(
            ana(),
            json!([{"op": "replace", "path": "title", "value": "x"},
                   {"op": "replace", "path": "id", "value": "y"}]),
        );
        assert_eq!(t, Some("mutability"));
        assert!(detail.starts_with("operation 2:"), "{detail}");
    }

    fn group_ops(body: Value) -> Result<(Map<String, Value>, Vec<MemberChange>)> {
        let doc = validate::group(json!({"displayName": "Eng"}), &Registry::builtin())
            .unwrap()
            .doc;
        let (doc, changes, _) =
            apply_group(doc, parse(body, ResourceKind::Group)?, &Registry::builtin())?;
        Ok((doc, changes))
    }

    /// The member changes of `body` and the names it carried that were ignored.
    fn group_ops_ignoring(body: Value) -> Result<(Vec<MemberChange>, Vec<String>)> {
        let doc = validate::group(json!({"displayName": "Eng"}), &Registry::builtin())
            .unwrap()
            .doc;
        let (_, changes, ignored) =
            apply_group(doc, parse(body, ResourceKind::Group)?, &Registry::builtin())?;
        Ok((changes, ignored.names().to_vec()))
    }

    fn changes(body: Value) -> Vec<MemberChange> {
        group_ops(body).unwrap().1
    }

    #[test]
    fn members_with_unknown_keys_are_added_and_the_keys_named() {
        let (changes, ignored) = group_ops_ignoring(json!({"Operations": [
            {"op": "add", "path": "members",
             "value": [{"value": "u1", "displayName": "Bob", "display": "Bob",
                        "$ref": null, "type": "User"}]},
            {"op": "replace", "path": "members", "value": [{"value": "u2", "displayName": "A"}]},
            {"op": "add", "value": {"members": [{"value": "u3", "displayName": "C"}],
                                    "description": "x"}},
        ]}))
        .unwrap();
        assert_eq!(
            changes,
            [
                MemberChange::Add(ids(&["u1"])),
                MemberChange::Set(ids(&["u2"])),
                MemberChange::Add(ids(&["u3"])),
            ]
        );
        assert_eq!(ignored, ["members.displayName", "description"]);
        let e = group_ops(json!({"Operations": [
            {"op": "add", "path": "members", "value": [{"displayName": "Bob"}]}]}))
        .unwrap_err();
        assert_eq!(e.scim_type(), Some("invalidValue"));
        let (_, ignored) = group_ops_ignoring(json!({"Operations": [
            {"op": "replace", "path": "members.displayName", "value": "x"}]}))
        .unwrap();
        assert_eq!(ignored, ["members.displayName"]);
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn group_membership_in_every_dialect() {
        let add = changes(json!({"Operations": [
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u1"}, {"value": "u2"}]}]}));
        assert_eq!(add, [MemberChange::Add(ids(&["u1", "u2"]))]);
        // Entra (no flag), JumpCloud, authentik: remove with a value list removes only those.
        let remove = changes(json!({"Operations": [
            {"op": "Remove", "path": "members", "value": [{"value": "u1"}]}]}));
        assert_eq!(remove, [MemberChange::Remove(ids(&["u1"]))]);
        let okta = changes(json!({"Operations": [
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u3", "display": "x"}]}]}));
        assert_eq!(
            okta,
            [
                MemberChange::Remove(ids(&["u1"])),
                MemberChange::Add(ids(&["u3"]))
            ]
        );
        let all = changes(json!({"Operations": [{"op": "remove", "path": "members"}]}));
        assert_eq!(all, [MemberChange::Clear]);
        // A removal list that names nobody removes nobody.
        for nobody in [
            json!([]),
            json!([{"value": ""}]),
            json!([{"$ref": null, "value": ""}]),
        ] {
            let none = changes(json!({"Operations": [
                {"op": "Remove", "path": "members", "value": nobody}]}));
            assert_eq!(none, [MemberChange::Remove(vec![])], "{nobody}");
        }
        let e =
            group_ops(json!({"Operations": [{"op": "replace", "path": "members"}]})).unwrap_err();
        assert_eq!(e.scim_type(), Some("invalidValue"));
        let replace = changes(json!({"Operations": [
            {"op": "replace", "path": "members", "value": [{"value": "u9"}]}]}));
        assert_eq!(replace, [MemberChange::Set(ids(&["u9"]))]);
        let by_type = changes(json!({"Operations": [
            {"op": "remove", "path": "members[type eq \"Group\"]"}]}));
        assert!(matches!(by_type.as_slice(), [MemberChange::RemoveWhere(_)]));
        let e = group_ops(json!({"Operations": [
            {"op": "replace", "path": "members[value eq \"u1\"].display", "value": "x"}]}))
        .unwrap_err();
        assert_eq!(e.scim_type(), Some("mutability"));
        let e = group_ops(json!({"Operations": [
            {"op": "replace", "path": "members[value eq \"u1\"].value", "value": "x"}]}))
        .unwrap_err();
        assert_eq!(e.scim_type(), Some("mutability"));
        let e = group_ops(json!({"Operations": [
            {"op": "add", "path": "members[value eq \"u1\"]", "value": {"value": "x"}}]}))
        .unwrap_err();
        assert_eq!(e.scim_type(), Some("invalidPath"));
    }

    #[test]
    fn okta_rename_carries_the_read_only_id() {
        let (doc, members) = group_ops(json!({"Operations": [
            {"op": "replace", "value": {"id": "g1", "displayName": "Platform"}}]}))
        .unwrap();
        assert_eq!(doc["displayName"], json!("Platform"));
        assert!(members.is_empty());
        // authentik replaces the whole group, members included.
        let (doc, members) = group_ops(json!({"Operations": [
            {"op": "replace", "value": {"id": "g1", "displayName": "Ops", "externalId": "e",
                                        "members": [{"value": "u1"}]}}]}))
        .unwrap();
        assert_eq!(doc["externalId"], json!("e"));
        assert_eq!(members, [MemberChange::Set(ids(&["u1"]))]);
    }

    #[test]
    fn scim_1_1_group_patch() {
        let (doc, members) = group_ops(json!({
            "schemas": ["urn:scim:schemas:core:1.0"],
            "displayName": "Renamed",
            "members": [{"value": "u1", "operation": "delete"}, {"value": "u2"}],
        }))
        .unwrap();
        assert_eq!(doc["displayName"], json!("Renamed"));
        assert_eq!(
            members,
            [
                MemberChange::Remove(ids(&["u1"])),
                MemberChange::Add(ids(&["u2"]))
            ]
        );
        let (_, members) = group_ops(json!({"meta": {"attributes": ["members"]}})).unwrap();
        assert_eq!(members, [MemberChange::Clear]);
        assert!(group_ops(json!({"schemas": ["urn:scim:schemas:core:1.0"]})).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const TYPES: [&str; 3] = ["work", "home", "other"];

        fn a_user() -> impl Strategy<Value = Map<String, Value>> {
            (
                "[a-z]{1,8}",
                proptest::option::of("[A-Za-z ]{0,6}"),
                proptest::collection::vec((0..3usize, "[a-z]{1,4}"), 0..4),
            )
                .prop_map(|(name, title, emails)| {
                    let emails: Vec<Value> = emails
                        .into_iter()
                        .map(|(t, v)| json!({"type": TYPES[t], "value": format!("{v}@x.org")}))
                        .collect();
                    let mut body = json!({"userName": name, "active": true, "emails": emails});
                    if let Some(t) = title {
                        body["title"] = json!(t);
                    }
                    user(body)
                })
        }

        /// Operations over a few paths, values and filters, valid or not.
        fn an_operation() -> impl Strategy<Value = Value> {
            let op = prop_oneof![Just("add"), Just("Replace"), Just("remove")];
            let path = prop_oneof![
                Just(Value::Null),
                Just(json!("title")),
                Just(json!("emails")),
                Just(json!("name.givenName")),
                (0..3usize).prop_map(|t| json!(format!("emails[type eq \"{}\"]", TYPES[t]))),
                (0..3usize).prop_map(|t| json!(format!("emails[type eq \"{}\"].value", TYPES[t]))),
                Just(json!("emails[value co \"@\"].primary")),
                Just(json!("id")),
                Just(json!("nope[")),
            ];
            let value = prop_oneof![
                Just(Value::Null),
                "[a-z]{0,4}".prop_map(Value::String),
                any::<bool>().prop_map(Value::Bool),
                "[a-z]{1,4}"
                    .prop_map(|v| json!([{"value": format!("{v}@y.org"), "primary": true}])),
                "[a-z]{1,4}".prop_map(|v| json!({"title": v, "name.familyName": v})),
            ];
            (op, path, value).prop_map(|(op, path, value)| {
                let mut o = json!({"op": op});
                if !path.is_null() {
                    o["path"] = path;
                }
                if !value.is_null() {
                    o["value"] = value;
                }
                o
            })
        }

        fn apply(doc: Map<String, Value>, ops: &[Value]) -> Result<Map<String, Value>> {
            let body = json!({"schemas": [PATCH_OP_URN], "Operations": ops});
            let (out, _) = apply_user(doc, parse(body, ResourceKind::User)?, &Registry::builtin())?;
            Ok(validate::user(Value::Object(out), &Registry::builtin())?.doc)
        }

        proptest! {
            /// Whatever the operations, a PATCH either fails with a client error or yields a
            /// valid user (one primary email at most, nothing read-only) — never a panic.
            #[test]
            fn a_patch_yields_a_valid_user_or_a_client_error(
                doc in a_user(),
                ops in proptest::collection::vec(an_operation(), 1..5),
            ) {
                match apply(doc, &ops) {
                    Ok(out) => {
                        for key in ["id", "meta", "groups", "schemas"] {
                            prop_assert!(!out.contains_key(key));
                        }
                        let primaries = out.get("emails").and_then(Value::as_array).map_or(0, |e| {
                            e.iter().filter(|v| v["primary"] == json!(true)).count()
                        });
                        prop_assert!(primaries <= 1, "{out:?}");
                    }
                    Err(e) => prop_assert_eq!(e.status().as_u16(), 400, "{}", e),
                }
            }

            /// Adds change nothing the second time (idp-compat.md row 27).
            #[test]
            fn adds_are_idempotent(doc in a_user(), v in "[a-z]{1,4}", t in 0..3usize) {
                let ops = [
                    json!({"op": "add", "path": "emails", "value": [{"value": format!("{v}@z.org"), "type": TYPES[t]}]}),
                    json!({"op": "add", "path": "title", "value": v}),
                ];
                if let Ok(once) = apply(doc, &ops) {
                    let twice = apply(once.clone(), &ops);
                    prop_assert_eq!(twice.ok(), Some(once));
                }
            }

            /// Creating a typed entry by its filter path and removing it by the same filter
            /// gives back the user it started from.
            #[test]
            fn a_created_typed_entry_can_be_removed_by_its_filter(doc in a_user(), v in "[a-z]{1,4}") {
                let path = "emails[type eq \"pager\"]";
                let added = apply(doc.clone(), &[json!({"op": "add", "path": format!("{path}.value"), "value": v})]);
                prop_assert!(added.is_ok());
                let removed = apply(added.unwrap_or_default(), &[json!({"op": "remove", "path": path})]);
                prop_assert_eq!(removed.ok(), Some(doc));
            }
        }
    }
}
