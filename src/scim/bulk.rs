//! RFC 7644 §3.7 Bulk, the pure parts: reading a BulkRequest into operations, finding the
//! `bulkId` references each operation makes, deciding the order they run in, and writing the
//! created resources' ids in place of the references. No I/O: `service::bulk` runs the plan,
//! each operation through the same service function as its single request.
//!
//! References (§3.7.2). An operation references the resource a POST of the same request
//! creates by `bulkId:<id>`: as the id in its path (`/Groups/bulkId:g1`), as any string of
//! its data that begins with `bulkId:` (a member's `value`, `manager.value`, an extension
//! attribute, a PATCH value), and as a quoted `"bulkId:<id>"` inside a PATCH path
//! (`members[value eq "bulkId:u1"]`). The first POST that carries a `bulkId` declares it.
//!
//! Order. Operations run in the order of the request, except that a POST runs before the
//! first operation that references it (a forward reference), transitively. POSTs that
//! reference each other (a circle, §3.7.1) run together as one unit, in one savepoint: each
//! gets its id before any of them runs, so a reference that need not exist when it is written
//! (a `manager`, an extension attribute) can point forward; a group member must exist, so a
//! group runs after the members it names. A circle of group members (groups containing each
//! other) cannot be resolved, since a group can't contain itself even indirectly: its
//! operations fail with 409, as §3.7.1 allows.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

use super::patch;
use super::resource::ResourceKind;
use crate::error::{Error, Result};

pub const REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Most operations one bulk request may carry (`bulk.maxOperations`). The figure is also the
/// most operations one PATCH takes (`patch::MAX_OPERATIONS`), on purpose: authentik reads
/// `bulk.maxOperations` as the number of operations to put in one PATCH (idp-compat.md §2
/// row 26), so one figure serves both readings and neither client is ever told to send what
/// scimd would refuse.
pub const MAX_OPERATIONS: usize = patch::MAX_OPERATIONS;

/// Longest `bulkId`, in bytes.
pub const MAX_BULK_ID: usize = 256;

/// What a reference to a `bulkId` starts with (§3.7.2).
const PREFIX: &str = "bulkId:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// The resource a PUT, PATCH or DELETE addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A resource id, as the path names it (percent-decoded).
    Id(String),
    /// The resource the POST with this `bulkId` creates.
    Ref(String),
}

/// One operation, as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub method: Method,
    pub kind: ResourceKind,
    /// `None` for a POST.
    pub target: Option<Target>,
    /// `If-Match` for this operation (§3.7: "version").
    pub version: Option<String>,
    /// The body of the single request; `Null` for a DELETE.
    pub data: Value,
}

/// One entry of `Operations`: what the response echoes, and the operation or why it is not
/// one.
#[derive(Debug)]
pub struct Entry {
    /// The method as sent, upper-cased, if it was a string.
    pub method: Option<String>,
    /// The `bulkId` as sent, if it was a string.
    pub bulk_id: Option<String>,
    pub op: Result<Operation>,
}

#[derive(Debug)]
pub struct BulkRequest {
    /// Stop once this many operations have failed (`failOnErrors`); `None`: run them all.
    pub fail_on_errors: Option<usize>,
    pub entries: Vec<Entry>,
}

/// Parses a BulkRequest (attribute names in any case, as everywhere in scimd; `schemas` is
/// not required). A body that is not one, or carries more than `max_operations` operations
/// (413, before anything runs), fails as a whole; an operation that does not parse fails
/// alone (its entry holds the error).
pub fn parse(body: Value, max_operations: usize) -> Result<BulkRequest> {
    let Value::Object(mut map) = body else {
        return Err(Error::InvalidSyntax(
            "a bulk request must be a JSON object (RFC 7644 §3.7)".into(),
        ));
    };
    let Some(ops) = take(&mut map, "Operations") else {
        return Err(Error::InvalidSyntax(
            "a bulk request needs \"Operations\" (RFC 7644 §3.7)".into(),
        ));
    };
    let Value::Array(items) = ops else {
        return Err(Error::InvalidSyntax(
            "\"Operations\" must be an array".into(),
        ));
    };
    if items.len() > max_operations {
        return Err(Error::TooManyOperations(format!(
            "the bulk request carries {} operations; maxOperations is {max_operations}",
            items.len()
        )));
    }
    let fail_on_errors = match take(&mut map, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(fail_on_errors(&v)?),
    };
    Ok(BulkRequest {
        fail_on_errors,
        entries: items.into_iter().map(entry).collect(),
    })
}

/// `failOnErrors`: a positive integer (as a number, or a string of digits).
fn fail_on_errors(v: &Value) -> Result<usize> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => Err(Error::InvalidValue(format!(
            "failOnErrors must be a whole number of at least 1, not {}",
            shown(&v.to_string())
        ))),
    }
}

/// Removes the member named `name` in any letter case.
fn take(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = map.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    map.remove(&key)
}

fn get<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn entry(item: Value) -> Entry {
    let Value::Object(mut fields) = item else {
        return Entry {
            method: None,
            bulk_id: None,
            op: Err(Error::InvalidSyntax(
                "an operation must be a JSON object".into(),
            )),
        };
    };
    let method = take(&mut fields, "method");
    let bulk_id = take(&mut fields, "bulkId");
    let echo_method = method
        .as_ref()
        .and_then(Value::as_str)
        .map(|m| m.trim().to_ascii_uppercase());
    let echo_bulk_id = bulk_id.as_ref().and_then(Value::as_str).map(str::to_string);
    let op = operation(method, bulk_id, fields);
    Entry {
        method: echo_method,
        bulk_id: echo_bulk_id,
        op,
    }
}

fn operation(
    method: Option<Value>,
    bulk_id: Option<Value>,
    mut fields: Map<String, Value>,
) -> Result<Operation> {
    let method = match method {
        None | Some(Value::Null) => {
            return Err(Error::InvalidSyntax(
                "an operation needs \"method\" (POST, PUT, PATCH or DELETE)".into(),
            ));
        }
        Some(Value::String(m)) => match m.trim().to_ascii_uppercase().as_str() {
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => {
                return Err(Error::InvalidValue(format!(
                    "a bulk operation's method is POST, PUT, PATCH or DELETE, not \"{}\"",
                    shown(&m)
                )));
            }
        },
        Some(other) => {
            return Err(Error::InvalidValue(format!(
                "\"method\" must be a string, not {}",
                shown(&other.to_string())
            )));
        }
    };
    match bulk_id {
        None | Some(Value::Null) => {}
        Some(Value::String(b)) if valid_bulk_id(&b) => {}
        Some(Value::String(b)) => {
            return Err(Error::InvalidValue(format!(
                "bulkId \"{}\" must be 1 to {MAX_BULK_ID} bytes without control characters, \
                 quotes, backslashes or slashes",
                shown(&b)
            )));
        }
        Some(other) => {
            return Err(Error::InvalidValue(format!(
                "\"bulkId\" must be a string, not {}",
                shown(&other.to_string())
            )));
        }
    }
    let path = match take(&mut fields, "path") {
        Some(Value::String(p)) => p,
        None | Some(Value::Null) => {
            return Err(Error::InvalidSyntax(
                "an operation needs \"path\" (/Users, /Groups, /Users/{id} or /Groups/{id})".into(),
            ));
        }
        Some(other) => {
            return Err(Error::InvalidValue(format!(
                "\"path\" must be a string, not {}",
                shown(&other.to_string())
            )));
        }
    };
    let (kind, target) = path_of(&path, method)?;
    let version = match take(&mut fields, "version") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) => Some(v),
        Some(other) => {
            return Err(Error::InvalidValue(format!(
                "\"version\" must be a string (an entity tag), not {}",
                shown(&other.to_string())
            )));
        }
    };
    let data = match (method, take(&mut fields, "data")) {
        (Method::Delete, _) => Value::Null,
        (_, None | Some(Value::Null)) => {
            return Err(Error::InvalidSyntax(format!(
                "a {} operation needs \"data\", the body its single request would carry",
                method.as_str()
            )));
        }
        (_, Some(data)) => data,
    };
    Ok(Operation {
        method,
        kind,
        target,
        version,
        data,
    })
}

/// `s` as a message quotes it: at most `SHOWN` characters, so an error never echoes a
/// whole body back.
fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

/// Characters of a client's value a message quotes.
const SHOWN: usize = 100;

/// Whether `s` can be a `bulkId`: it must fit in a path segment and a quoted filter value.
pub fn valid_bulk_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_BULK_ID
        && !s
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\\' | '/'))
}

/// The resource type and target of a path: `/Users` or `/Groups` for a POST, `/Users/{id}` or
/// `/Groups/{id}` (the id percent-decoded; `bulkId:<id>` a reference) for the others. The
/// endpoint matches in any letter case, and the leading slash may be left out.
fn path_of(sent: &str, method: Method) -> Result<(ResourceKind, Option<Target>)> {
    let path = shown(sent);
    let trimmed = sent.trim();
    let trimmed = trimmed.strip_prefix('/').unwrap_or(trimmed);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let (endpoint, id) = match trimmed.split_once('/') {
        Some((e, id)) => (e, Some(id)),
        None => (trimmed, None),
    };
    let kind = if endpoint.eq_ignore_ascii_case("Users") {
        ResourceKind::User
    } else if endpoint.eq_ignore_ascii_case("Groups") {
        ResourceKind::Group
    } else {
        return Err(Error::InvalidValue(format!(
            "a bulk operation's path is /Users, /Groups, /Users/{{id}} or /Groups/{{id}}, \
             not \"{path}\""
        )));
    };
    let id = id
        .map(|id| {
            percent_encoding::percent_decode_str(id)
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|id| !id.is_empty());
    match (method, id) {
        (Method::Post, None) => Ok((kind, None)),
        (Method::Post, Some(_)) => Err(Error::InvalidValue(format!(
            "a POST creates a resource at /{}, without an id, not at \"{path}\"",
            kind.endpoint()
        ))),
        (_, None) => Err(Error::InvalidValue(format!(
            "a {} operation names its resource: /{}/{{id}}, not \"{path}\"",
            method.as_str(),
            kind.endpoint()
        ))),
        (_, Some(id)) if id.contains('/') => Err(Error::InvalidValue(format!(
            "a bulk operation's path is /{}/{{id}}, not \"{path}\"",
            kind.endpoint()
        ))),
        (_, Some(id)) => Ok((
            kind,
            Some(match id.strip_prefix(PREFIX) {
                Some(b) => Target::Ref(b.to_string()),
                None => Target::Id(id),
            }),
        )),
    }
}

/// A `bulkId` an operation references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub bulk_id: String,
    /// A member of the group a POST or PUT writes: it must exist when the group is written
    /// (scimd skips member ids that match nothing, idp-compat.md Decision 3).
    pub member: bool,
}

/// Every `bulkId` `op` references, in the order they appear (repeats included).
pub fn references(op: &Operation) -> Vec<Reference> {
    let mut refs = Vec::new();
    if let Some(Target::Ref(b)) = &op.target {
        refs.push(Reference {
            bulk_id: b.clone(),
            member: false,
        });
    }
    let group_body =
        op.kind == ResourceKind::Group && matches!(op.method, Method::Post | Method::Put);
    walk(&op.data, Place::Top { group_body }, &mut |s, member| {
        if let Some(b) = s.strip_prefix(PREFIX) {
            refs.push(Reference {
                bulk_id: b.to_string(),
                member,
            });
        }
    });
    if op.method == Method::Patch {
        for path in patch_paths(&op.data) {
            for (_, b) in quoted_refs(path) {
                refs.push(Reference {
                    bulk_id: b.to_string(),
                    member: false,
                });
            }
        }
    }
    refs
}

/// Where a value sits, for telling a group member's `value` from other strings.
#[derive(Clone, Copy)]
enum Place {
    Top {
        group_body: bool,
    },
    /// In `members` (the list, or the lone object OneLogin-style clients send).
    Members,
    /// A member's `value`.
    MemberValue,
    Other,
}

/// Calls `visit` on every string of `v`, saying whether it is a group member's value.
fn walk(v: &Value, place: Place, visit: &mut impl FnMut(&str, bool)) {
    match v {
        Value::String(s) => visit(s, matches!(place, Place::MemberValue)),
        Value::Array(items) => {
            let inner = match place {
                Place::Members => Place::Members,
                _ => Place::Other,
            };
            for item in items {
                walk(item, inner, visit);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let inner = match place {
                    Place::Top { group_body: true } if k.eq_ignore_ascii_case("members") => {
                        Place::Members
                    }
                    Place::Members if k.eq_ignore_ascii_case("value") => Place::MemberValue,
                    _ => Place::Other,
                };
                walk(item, inner, visit);
            }
        }
        _ => {}
    }
}

/// `walk`, able to change the strings: `f` gives the new text of a string, or `None` to keep it.
fn walk_mut(v: &mut Value, f: &mut impl FnMut(&str) -> Result<Option<String>>) -> Result<()> {
    match v {
        Value::String(s) => {
            if let Some(new) = f(s)? {
                *s = new;
            }
        }
        Value::Array(items) => {
            for item in items {
                walk_mut(item, f)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                walk_mut(item, f)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The `path` of each operation of a PATCH body.
fn patch_paths(data: &Value) -> impl Iterator<Item = &str> {
    let ops = data
        .as_object()
        .and_then(|m| get(m, "Operations"))
        .and_then(Value::as_array);
    ops.into_iter()
        .flatten()
        .filter_map(|op| op.as_object().and_then(|m| get(m, "path")))
        .filter_map(Value::as_str)
}

/// Every quoted `"bulkId:<id>"` in a PATCH path: its byte range (quotes included) and the id.
fn quoted_refs(path: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let open = format!("\"{PREFIX}");
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = path[from..].find(&open) {
        let start = from + at;
        let id_start = start + open.len();
        let Some(len) = path[id_start..].find('"') else {
            break;
        };
        let end = id_start + len + 1;
        found.push((start..end, &path[id_start..id_start + len]));
        from = end;
    }
    found
}

/// Writes the ids `ids` gives (by `bulkId`) in place of `op`'s references. A reference `ids`
/// does not know is a 409 (the planner fails such operations before they get here).
pub fn substitute(op: &mut Operation, ids: &HashMap<String, String>) -> Result<()> {
    let id_of = |b: &str| {
        ids.get(b).cloned().ok_or_else(|| {
            Error::Conflict(format!(
                "no operation of this request created bulkId \"{b}\""
            ))
        })
    };
    if let Some(Target::Ref(b)) = &op.target {
        op.target = Some(Target::Id(id_of(b)?));
    }
    walk_mut(&mut op.data, &mut |s| match s.strip_prefix(PREFIX) {
        Some(b) => id_of(b).map(Some),
        None => Ok(None),
    })?;
    if op.method != Method::Patch {
        return Ok(());
    }
    let Some(ops) = op
        .data
        .as_object_mut()
        .and_then(|m| {
            let key = m
                .keys()
                .find(|k| k.eq_ignore_ascii_case("Operations"))?
                .clone();
            m.get_mut(&key)
        })
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    for item in ops.iter_mut().filter_map(Value::as_object_mut) {
        let Some(key) = item
            .keys()
            .find(|k| k.eq_ignore_ascii_case("path"))
            .cloned()
        else {
            continue;
        };
        let Some(Value::String(path)) = item.get_mut(&key) else {
            continue;
        };
        let mut rewritten = String::with_capacity(path.len());
        let mut last = 0;
        for (range, b) in quoted_refs(path) {
            rewritten.push_str(&path[last..range.start]);
            rewritten.push('"');
            rewritten.push_str(&id_of(b)?);
            rewritten.push('"');
            last = range.end;
        }
        rewritten.push_str(&path[last..]);
        *path = rewritten;
    }
    Ok(())
}

/// How the operations of a request run.
#[derive(Debug)]
pub struct Plan {
    /// In the order they run; each unit runs whole or not at all.
    pub units: Vec<Unit>,
    /// The operation that declares each `bulkId`: the first POST carrying it.
    pub declared: HashMap<String, usize>,
    /// Operations that fail without running, and why (by operation).
    pub failures: Vec<Option<Error>>,
}

/// One operation, or POSTs that reference each other, in the order they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub ops: Vec<usize>,
    /// The POSTs outside the unit that its operations reference: each must have succeeded
    /// before the unit runs.
    pub needs: Vec<usize>,
}

/// How many operations a message about a circle names (then "N more").
const NAMED: usize = 5;
/// The most POSTs that reference each other (a circle) that are resolved, as one write.
pub const MAX_CIRCLE: usize = 100;

/// "operation 3": operations are numbered from 1 in messages, as PATCH operations are.
pub fn nth(i: usize) -> String {
    format!("operation {}", i + 1)
}

/// Plans `entries` (see the module's header for the rules).
pub fn plan(entries: &[Entry]) -> Plan {
    let n = entries.len();
    let mut failures: Vec<Option<Error>> = entries
        .iter()
        .map(|e| e.op.as_ref().err().cloned())
        .collect();
    let mut declared: HashMap<String, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let (Some("POST"), Some(b)) = (e.method.as_deref(), e.bulk_id.as_deref()) else {
            continue;
        };
        if !valid_bulk_id(b) {
            continue;
        }
        match declared.get(b) {
            None => {
                declared.insert(b.to_string(), i);
            }
            Some(&first) => {
                failures[i].get_or_insert_with(|| {
                    Error::InvalidValue(format!(
                        "bulkId \"{b}\" is declared by {} already: each POST needs its own",
                        nth(first)
                    ))
                });
            }
        }
    }
    // What each operation depends on: (the declaring POST, whether as a group member).
    let mut deps: Vec<Vec<(usize, bool)>> = vec![Vec::new(); n];
    let mut seen = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let Ok(op) = &e.op else { continue };
        if failures[i].is_some() {
            continue;
        }
        seen.clear();
        for r in references(op) {
            match declared.get(&r.bulk_id) {
                Some(&d) => {
                    if seen.insert((d, r.member)) {
                        deps[i].push((d, r.member));
                    }
                }
                None => {
                    failures[i] = Some(Error::Conflict(format!(
                        "no POST of this request declares bulkId \"{}\"",
                        r.bulk_id
                    )));
                    break;
                }
            }
        }
        if failures[i].is_some() {
            deps[i].clear();
        }
    }
    let targets: Vec<Vec<usize>> = deps
        .iter()
        .map(|d| d.iter().map(|&(x, _)| x).collect())
        .collect();
    let comp = components(&targets);
    let units = order(&comp, &deps, &mut failures);
    Plan {
        units,
        declared,
        failures,
    }
}

/// The strongly connected component of each node (Tarjan's algorithm, without recursion);
/// `deps[i]` are the nodes `i` has edges to.
fn components(deps: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = deps.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![UNSEEN; n];
    let (mut next, mut comps) = (0, 0);
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        let mut calls = vec![(root, 0usize)];
        while let Some(top) = calls.last_mut() {
            let v = top.0;
            if let Some(&w) = deps[v].get(top.1) {
                top.1 += 1;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = comps;
                    if w == v {
                        break;
                    }
                }
                comps += 1;
            }
        }
    }
    comp
}

/// The units in the order they run: request order, each component after the components it
/// depends on (depth first, from the first operation that needs them). Orders the POSTs of a
/// circle so each group comes after the members it names; where that is impossible, fails
/// them all.
fn order(comp: &[usize], deps: &[Vec<(usize, bool)>], failures: &mut [Option<Error>]) -> Vec<Unit> {
    let count = comp.iter().map(|&c| c + 1).max().unwrap_or(0);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (i, &c) in comp.iter().enumerate() {
        members[c].push(i);
    }
    // The components each depends on, in the order its operations reference them.
    let mut below: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut seen = HashSet::new();
    for (c, ops) in members.iter().enumerate() {
        for &i in ops {
            for &(d, _) in &deps[i] {
                let dc = comp[d];
                if dc != c && seen.insert((c, dc)) {
                    below[c].push(dc);
                }
            }
        }
    }
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![UNSEEN; count];
    let mut units = Vec::with_capacity(count);
    for i in 0..comp.len() {
        let root = comp[i];
        if state[root] != UNSEEN {
            continue;
        }
        state[root] = ON_PATH;
        let mut calls = vec![(root, 0usize)];
        while let Some(top) = calls.last_mut() {
            let c = top.0;
            if let Some(&d) = below[c].get(top.1) {
                top.1 += 1;
                // The components form a DAG: one on the path cannot be met again.
                if state[d] == UNSEEN {
                    state[d] = ON_PATH;
                    calls.push((d, 0));
                }
                continue;
            }
            calls.pop();
            state[c] = DONE;
            units.push(unit(&members[c], comp, deps, failures));
        }
    }
    units
}

/// The unit of the operations `ops` (one component, in request order).
fn unit(
    ops: &[usize],
    comp: &[usize],
    deps: &[Vec<(usize, bool)>],
    failures: &mut [Option<Error>],
) -> Unit {
    let c = comp[ops[0]];
    let mut needs = Vec::new();
    let mut seen = HashSet::new();
    for &i in ops {
        for &(d, _) in &deps[i] {
            if comp[d] != c && seen.insert(d) {
                needs.push(d);
            }
        }
    }
    let circular = ops.len() > 1 || deps[ops[0]].iter().any(|&(d, _)| d == ops[0]);
    if !circular {
        return Unit {
            ops: ops.to_vec(),
            needs,
        };
    }
    // A circle runs as one write, with no turn given up inside it: a large one would hold
    // the writer far past a batch's time slice (1,000 POSTs tied by references in any string
    // they carry take some 140 ms).
    if ops.len() > MAX_CIRCLE {
        for &i in ops {
            failures[i].get_or_insert_with(|| {
                Error::Conflict(format!(
                    "{} operations reference each other; a circle of more than {MAX_CIRCLE} \
                     is not resolved (it would be one write): break it into smaller ones, \
                     or set such references with a PATCH after the POSTs",
                    ops.len()
                ))
            });
        }
        return Unit {
            ops: ops.to_vec(),
            needs,
        };
    }
    // Kahn's algorithm on the member references inside the circle: a group after the
    // members it names, otherwise in request order.
    let position: HashMap<usize, usize> = ops.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let mut waiting = vec![0usize; ops.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    for (k, &i) in ops.iter().enumerate() {
        for &(d, member) in &deps[i] {
            if let (true, Some(&dk)) = (member, position.get(&d)) {
                waiting[k] += 1;
                dependents[dk].push(k);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..ops.len()).filter(|&k| waiting[k] == 0).collect();
    let mut ordered = Vec::with_capacity(ops.len());
    while let Some(k) = ready.pop_first() {
        ordered.push(ops[k]);
        for &j in &dependents[k] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.insert(j);
            }
        }
    }
    if ordered.len() < ops.len() {
        let mut names: Vec<String> = ops.iter().take(NAMED).map(|&i| nth(i)).collect();
        if ops.len() > NAMED {
            names.push(format!("{} more", ops.len() - NAMED));
        }
        let names = names.join(", ");
        for &i in ops {
            failures[i].get_or_insert_with(|| {
                Error::Conflict(format!(
                    "{names} reference each other as group members: a group can't contain \
                     itself, even indirectly, so this circular reference cannot be resolved"
                ))
            });
        }
        ordered = ops.to_vec();
    }
    Unit {
        ops: ordered,
        needs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parsed(ops: Value) -> BulkRequest {
        parse(
            json!({"schemas": [REQUEST_URN], "Operations": ops}),
            MAX_OPERATIONS,
        )
        .unwrap()
    }

    fn one(op: Value) -> Result<Operation> {
        parsed(json!([op])).entries.remove(0).op
    }

    fn err_text(r: Result<impl std::fmt::Debug>) -> (u16, Option<&'static str>, String) {
        let e = r.unwrap_err();
        (e.status().as_u16(), e.scim_type(), e.to_string())
    }

    #[test]
    fn a_request_that_is_not_one_fails_whole() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({}), "needs \"Operations\""),
            (json!({"Operations": {}}), "must be an array"),
            (json!({"Operations": [], "failOnErrors": 0}), "at least 1"),
            (json!({"Operations": [], "failOnErrors": -1}), "at least 1"),
            (json!({"Operations": [], "failOnErrors": 1.5}), "at least 1"),
            (
                json!({"Operations": [], "failOnErrors": true}),
                "at least 1",
            ),
            (
                json!({"Operations": [], "failOnErrors": "two"}),
                "at least 1",
            ),
        ];
        for (body, want) in cases {
            let text = format!("{body}");
            let e = parse(body, 10).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{text}");
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
        let e = parse(json!({"Operations": [{}, {}, {}]}), 2).unwrap_err();
        assert_eq!(e.status().as_u16(), 413);
        assert!(e.scim_type().is_none());
        assert!(
            e.to_string().contains("3 operations; maxOperations is 2"),
            "{e}"
        );
        assert_eq!(
            parse(json!({"Operations": [{}, {}]}), 2)
                .unwrap()
                .entries
                .len(),
            2
        );
    }

    #[test]
    fn names_match_in_any_case_and_fail_on_errors_is_a_count() {
        let r = parse(
            json!({"operations": [{"METHOD": "post", "Path": "/users", "BulkId": "a",
                                   "DATA": {"userName": "a"}}],
                   "FAILONERRORS": "2"}),
            10,
        )
        .unwrap();
        assert_eq!(r.fail_on_errors, Some(2));
        let e = &r.entries[0];
        assert_eq!(e.method.as_deref(), Some("POST"));
        assert_eq!(e.bulk_id.as_deref(), Some("a"));
        let op = e.op.as_ref().unwrap();
        assert_eq!(
            (op.method, op.kind, &op.target),
            (Method::Post, ResourceKind::User, &None)
        );
        assert_eq!(op.data, json!({"userName": "a"}));
        let r = parse(json!({"Operations": [], "failOnErrors": 3}), 10).unwrap();
        assert_eq!(r.fail_on_errors, Some(3));
        let r = parse(json!({"Operations": [], "failOnErrors": null}), 10).unwrap();
        assert_eq!(r.fail_on_errors, None);
    }

    #[test]
    fn paths_name_an_endpoint_and_an_id() {
        let target = |method: &str, path: &str| {
            let op = one(json!({"method": method, "path": path, "data": {}})).unwrap();
            (op.kind, op.target)
        };
        let id = |s: &str| Some(Target::Id(s.into()));
        assert_eq!(target("POST", "/Users"), (ResourceKind::User, None));
        assert_eq!(target("POST", "Groups/"), (ResourceKind::Group, None));
        assert_eq!(target("PUT", "/users/abc"), (ResourceKind::User, id("abc")));
        assert_eq!(
            target("PATCH", " /GROUPS/g1/ "),
            (ResourceKind::Group, id("g1"))
        );
        assert_eq!(
            target("DELETE", "/Users/a%20b"),
            (ResourceKind::User, id("a b"))
        );
        let reference = Some(Target::Ref("u1".into()));
        assert_eq!(
            target("PUT", "/Users/bulkId:u1"),
            (ResourceKind::User, reference.clone())
        );
        assert_eq!(
            target("PUT", "/Users/bulkId%3Au1"),
            (ResourceKind::User, reference)
        );
        for (method, path, want) in [
            ("POST", "/Devices", "is /Users, /Groups"),
            ("POST", "/", "is /Users, /Groups"),
            ("POST", "/Users/x", "without an id"),
            ("PUT", "/Users", "names its resource"),
            ("DELETE", "/Groups/", "names its resource"),
            ("PATCH", "/Users/a/b", "/Users/{id}"),
            ("PATCH", "/Users/a%2Fb", "/Users/{id}"),
        ] {
            let (status, scim_type, text) =
                err_text(one(json!({"method": method, "path": path, "data": {}})));
            assert_eq!(
                (status, scim_type),
                (400, Some("invalidValue")),
                "{method} {path}"
            );
            assert!(text.contains(want), "{method} {path}: {text}");
        }
    }

    #[test]
    fn each_malformed_operation_says_what_is_wrong() {
        let cases = [
            (json!("x"), 400, "invalidSyntax", "JSON object"),
            (
                json!({"path": "/Users"}),
                400,
                "invalidSyntax",
                "needs \"method\"",
            ),
            (
                json!({"method": 1, "path": "/Users"}),
                400,
                "invalidValue",
                "must be a string",
            ),
            (
                json!({"method": "GET", "path": "/Users"}),
                400,
                "invalidValue",
                "not \"GET\"",
            ),
            (
                json!({"method": "POST"}),
                400,
                "invalidSyntax",
                "needs \"path\"",
            ),
            (
                json!({"method": "POST", "path": 3}),
                400,
                "invalidValue",
                "\"path\" must be",
            ),
            (
                json!({"method": "POST", "path": "/Users"}),
                400,
                "invalidSyntax",
                "needs \"data\"",
            ),
            (
                json!({"method": "PUT", "path": "/Users/x", "data": null}),
                400,
                "invalidSyntax",
                "needs \"data\"",
            ),
            (
                json!({"method": "PUT", "path": "/Users/x", "version": 2, "data": {}}),
                400,
                "invalidValue",
                "\"version\"",
            ),
            (
                json!({"method": "POST", "path": "/Users", "bulkId": 7, "data": {}}),
                400,
                "invalidValue",
                "\"bulkId\" must be a string",
            ),
            (
                json!({"method": "POST", "path": "/Users", "bulkId": "", "data": {}}),
                400,
                "invalidValue",
                "bulkId \"\"",
            ),
            (
                json!({"method": "POST", "path": "/Users", "bulkId": "a\"b", "data": {}}),
                400,
                "invalidValue",
                "quotes",
            ),
        ];
        for (op, status, scim_type, want) in cases {
            let text = op.to_string();
            let (s, t, detail) = err_text(one(op));
            assert_eq!((s, t), (status, Some(scim_type)), "{text}: {detail}");
            assert!(detail.contains(want), "{text}: {detail}");
        }
        // A DELETE needs no data, and any it carries is dropped.
        let op = one(json!({"method": "delete", "path": "/Users/x", "data": {"a": 1}})).unwrap();
        assert_eq!((op.method, op.data), (Method::Delete, Value::Null));
        let op = one(
            json!({"method": "PUT", "path": "/Users/x", "version": "W/\"3\"",
                            "data": {"userName": "x"}}),
        )
        .unwrap();
        assert_eq!(op.version.as_deref(), Some("W/\"3\""));
        // The echo keeps what was sent even when it is not valid.
        let e = parsed(json!([{"method": "get", "bulkId": "a/b", "path": "/Users"}])).entries;
        assert_eq!(
            (e[0].method.as_deref(), e[0].bulk_id.as_deref()),
            (Some("GET"), Some("a/b"))
        );
        assert!(valid_bulk_id(&"x".repeat(MAX_BULK_ID)));
        assert!(!valid_bulk_id(&"x".repeat(MAX_BULK_ID + 1)));
        for bad in ["", "a/b", "a\\b", "a\"b", "a\nb", "\u{7f}"] {
            assert!(!valid_bulk_id(bad), "{bad:?}");
        }
        for good in ["qwerty", "user 1", "ü-ß", "bulkId:x", "a[b]"] {
            assert!(valid_bulk_id(good), "{good:?}");
        }
        // Messages quote at most 100 characters of what was sent.
        let long = "é".repeat(5000);
        let (_, _, text) = err_text(one(json!({"method": long, "path": "/Users"})));
        assert!(
            text.len() < 400 && text.contains(&format!("{}…", "é".repeat(100))),
            "{text}"
        );
        let (_, _, text) = err_text(one(json!({"method": "PUT", "path": format!("/x/{long}")})));
        assert!(text.len() < 400, "{text}");
        let e = parse(json!({"Operations": [], "failOnErrors": [long]}), 1).unwrap_err();
        assert!(e.to_string().len() < 400, "{e}");
    }

    fn refs(op: Value) -> Vec<(String, bool)> {
        references(&one(op).unwrap())
            .into_iter()
            .map(|r| (r.bulk_id, r.member))
            .collect()
    }

    fn r(b: &str, member: bool) -> (String, bool) {
        (b.to_string(), member)
    }

    #[test]
    fn references_are_found_where_ids_stand() {
        let got = refs(
            json!({"method": "POST", "path": "/Groups", "bulkId": "g", "data": {
                "displayName": "bulkId:name",
                "Members": [{"VALUE": "bulkId:u1", "type": "User"}, {"value": "plain"},
                            {"value": "bulkId:u2", "display": "bulkId:d"}],
                "urn:acme:2.0:Group": {"owner": "bulkId:o", "list": ["bulkId:l"]},
            }}),
        );
        assert_eq!(
            got,
            [
                r("name", false),
                r("u1", true),
                r("u2", true),
                r("d", false),
                r("o", false),
                r("l", false),
            ]
        );
        // A lone member object (OneLogin's style) is a member too; a PUT's members as well.
        let got = refs(json!({"method": "PUT", "path": "/Groups/bulkId:g",
                              "data": {"members": {"value": "bulkId:u"}}}));
        assert_eq!(got, [r("g", false), r("u", true)]);
        // A user's manager need not exist when it is written: not a member.
        let got = refs(json!({"method": "POST", "path": "/Users", "data": {
            "userName": "x",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"manager": {"value": "bulkId:m"}},
            "members": [{"value": "bulkId:not-a-group"}],
        }}));
        assert_eq!(got, [r("m", false), r("not-a-group", false)]);
        // PATCH: values, and quoted references inside paths (repeats kept).
        let got = refs(
            json!({"method": "PATCH", "path": "/Groups/bulkId:g", "data": {
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": "bulkId:a"}]},
                {"op": "remove", "path": "members[value eq \"bulkId:b\" or value eq \"bulkId:a\"]"},
                {"op": "remove", "path": "members[value eq \"bulkId:unterminated]"},
            ]}}),
        );
        assert_eq!(
            got,
            [r("g", false), r("a", false), r("b", false), r("a", false)]
        );
        // Only a PATCH's paths are read for quoted references.
        let got = refs(json!({"method": "PUT", "path": "/Users/u",
                              "data": {"Operations": [{"path": "x[value eq \"bulkId:q\"]"}]}}));
        assert!(got.is_empty(), "{got:?}");
        // Only strings that begin with the prefix, in its exact case.
        let got = refs(json!({"method": "POST", "path": "/Users",
                              "data": {"a": "xbulkId:y", "b": "bulkid:z", "c": 3}}));
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn substitution_writes_the_ids_in() {
        let ids: HashMap<String, String> = [("u1", "id-1"), ("g", "id-g")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut op = one(
            json!({"method": "PATCH", "path": "/Groups/bulkId:g", "data": {
            "operations": [
                {"op": "add", "value": {"members": [{"value": "bulkId:u1"}], "x": "y"}},
                {"op": "remove", "PATH": "members[value eq \"bulkId:u1\"].x eq \"bulkId:g\""},
            ]}}),
        )
        .unwrap();
        substitute(&mut op, &ids).unwrap();
        assert_eq!(op.target, Some(Target::Id("id-g".into())));
        assert_eq!(
            op.data,
            json!({"operations": [
                {"op": "add", "value": {"members": [{"value": "id-1"}], "x": "y"}},
                {"op": "remove", "PATH": "members[value eq \"id-1\"].x eq \"id-g\""},
            ]})
        );
        let mut op = one(json!({"method": "POST", "path": "/Users",
                                "data": {"a": ["bulkId:u1", {"b": "bulkId:nope"}]}}))
        .unwrap();
        let e = substitute(&mut op, &ids).unwrap_err();
        assert_eq!(e.status().as_u16(), 409);
        assert!(e.to_string().contains("\"nope\""), "{e}");
    }

    fn user(bulk_id: &str, data: Value) -> Value {
        let mut data = data;
        data["userName"] = json!(bulk_id);
        json!({"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": data})
    }

    fn group(bulk_id: &str, members: &[&str]) -> Value {
        let members: Vec<Value> = members
            .iter()
            .map(|m| json!({"value": format!("bulkId:{m}")}))
            .collect();
        json!({"method": "POST", "path": "/Groups", "bulkId": bulk_id,
               "data": {"displayName": bulk_id, "members": members}})
    }

    fn manager(of: &str) -> Value {
        json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
               {"manager": {"value": format!("bulkId:{of}")}}})
    }

    fn planned(ops: Value) -> Plan {
        plan(&parsed(ops).entries)
    }

    fn order(p: &Plan) -> Vec<Vec<usize>> {
        p.units.iter().map(|u| u.ops.clone()).collect()
    }

    fn failed(p: &Plan) -> Vec<usize> {
        (0..p.failures.len())
            .filter(|&i| p.failures[i].is_some())
            .collect()
    }

    #[test]
    fn operations_run_in_request_order_with_posts_hoisted() {
        let p = planned(json!([
            user("a", json!({})),
            user("b", json!({})),
            user("c", json!({}))
        ]));
        assert_eq!(order(&p), [[0], [1], [2]]);
        // A forward reference runs the POST first; transitively.
        let p = planned(json!([
            group("g", &["c"]),
            user("b", json!({})),
            {"method": "PATCH", "path": "/Users/bulkId:d", "data": {"Operations": []}},
            user("c", manager("d")),
            user("d", json!({})),
        ]));
        assert_eq!(order(&p), [[4], [3], [0], [1], [2]]);
        assert!(failed(&p).is_empty());
        assert_eq!(p.units[2].needs, [3]);
        assert_eq!(p.units[1].needs, [4]);
        assert_eq!(p.units[4].needs, [4]);
        assert_eq!(p.declared["g"], 0);
    }

    #[test]
    fn circles_run_as_one_unit_groups_after_their_members() {
        // Users naming each other: request order.
        let p = planned(json!([
            user("u1", manager("u2")),
            user("u2", manager("u1"))
        ]));
        assert_eq!(order(&p), [[0, 1]]);
        assert!(failed(&p).is_empty() && p.units[0].needs.is_empty());
        // A group and the member who names it: the member first.
        let p = planned(json!([
            group("g", &["u"]),
            user("u", manager("g")),
            user("x", json!({}))
        ]));
        assert_eq!(order(&p), vec![vec![1, 0], vec![2]]);
        assert!(failed(&p).is_empty());
        // A user naming itself: one unit of one, resolvable.
        let p = planned(json!([user("me", manager("me"))]));
        assert_eq!(order(&p), [[0]]);
        assert!(failed(&p).is_empty());
        // A circle that needs a POST outside it.
        let p = planned(json!([
            user("a", manager("b")),
            user("b", {
                let mut m = manager("a");
                m["title"] = json!("bulkId:z");
                m
            }),
            user("z", json!({}))
        ]));
        assert_eq!(order(&p), vec![vec![2], vec![0, 1]]);
        assert_eq!(p.units[1].needs, [2]);
    }

    /// A circle of up to `MAX_CIRCLE` POSTs is resolved; a larger one fails whole with 409
    /// (it would be one long write).
    #[test]
    fn circles_larger_than_the_bound_fail_whole() {
        let ring = |n: usize| -> Value {
            json!(
                (0..n)
                    .map(|i| user(&format!("u{i}"), manager(&format!("u{}", (i + 1) % n))))
                    .collect::<Vec<_>>()
            )
        };
        let p = planned(ring(MAX_CIRCLE));
        assert!(failed(&p).is_empty());
        assert_eq!(order(&p).len(), 1);
        let p = planned(ring(MAX_CIRCLE + 1));
        assert_eq!(failed(&p).len(), MAX_CIRCLE + 1);
        let e = p.failures[0].as_ref().unwrap();
        assert_eq!((e.status().as_u16(), e.scim_type()), (409, None));
        assert!(e.to_string().contains("more than 100"), "{e}");
    }

    #[test]
    fn circles_of_group_members_fail_whole() {
        let p = planned(json!([
            group("a", &["b"]),
            group("b", &["a"]),
            group("self", &["self"]),
            user("fine", json!({})),
        ]));
        assert_eq!(failed(&p), [0, 1, 2]);
        for i in 0..3 {
            let e = p.failures[i].as_ref().unwrap();
            assert_eq!((e.status().as_u16(), e.scim_type()), (409, None));
            assert!(e.to_string().contains("can't contain itself"), "{e}");
        }
        assert!(
            p.failures[0]
                .as_ref()
                .unwrap()
                .to_string()
                .contains("operation 1, operation 2")
        );
        // A user caught in such a circle fails with it.
        let p = planned(json!([
            group("a", &["b", "u"]),
            group("b", &["a"]),
            user("u", manager("a"))
        ]));
        assert_eq!(failed(&p), [0, 1, 2]);
        // Long circles name a few operations.
        let n = 12;
        let ops: Vec<Value> = (0..n)
            .map(|i| group(&format!("g{i}"), &[&format!("g{}", (i + 1) % n)]))
            .collect();
        let p = planned(json!(ops));
        let text = p.failures[0].as_ref().unwrap().to_string();
        assert!(text.contains("operation 5, 7 more"), "{text}");
        assert_eq!(order(&p).len(), 1);
    }

    #[test]
    fn undeclared_and_duplicate_bulk_ids_fail_their_operations() {
        let p = planned(json!([
            user("a", json!({})),
            user("a", json!({})),
            user("b", manager("nobody")),
            {"method": "PUT", "path": "/Users/bulkId:a", "bulkId": "c", "data": {"userName": "a"}},
            {"method": "POST", "path": "/Devices", "bulkId": "bad", "data": {}},
            user("d", manager("bad")),
            user("e", manager("c")),
        ]));
        let status = |i: usize| {
            p.failures[i]
                .as_ref()
                .map(|e| (e.status().as_u16(), e.to_string()))
        };
        assert_eq!(p.declared["a"], 0);
        let (s, t) = status(1).unwrap();
        assert_eq!(s, 400);
        assert!(t.contains("declared by operation 1"), "{t}");
        let (s, t) = status(2).unwrap();
        assert_eq!(s, 409);
        assert!(t.contains("\"nobody\""), "{t}");
        assert_eq!(
            status(3),
            None,
            "a PUT's bulkId declares nothing, and needs none"
        );
        assert_eq!(p.units.iter().find(|u| u.ops == [3]).unwrap().needs, [0]);
        assert_eq!(status(4).unwrap().0, 400);
        // A POST that fails to parse still declares its bulkId: its referencer runs after it
        // and fails at run time, as it would after any failed POST.
        assert_eq!(p.declared["bad"], 4);
        assert_eq!(status(5), None);
        assert_eq!(p.units.iter().find(|u| u.ops == [5]).unwrap().needs, [4]);
        // "c" is a PUT's bulkId, not a POST's.
        assert_eq!(status(6).unwrap().0, 409);
    }

    /// A random request: `n` operations, some POSTs of users or groups with bulkIds, some
    /// PATCHes, each referencing random bulkIds (declared or not), as members or not.
    fn request() -> impl Strategy<Value = Vec<Value>> {
        (1usize..24).prop_flat_map(|n| {
            proptest::collection::vec(
                (
                    0u8..4,
                    proptest::collection::vec((0..n + 2, any::<bool>()), 0..4),
                ),
                n,
            )
            .prop_map(|ops| {
                ops.into_iter()
                    .enumerate()
                    .map(|(i, (kind, refs))| {
                        let b = |j: usize| format!("bulkId:b{j}");
                        let members: Vec<Value> = refs
                            .iter()
                            .filter(|r| r.1)
                            .map(|r| json!({"value": b(r.0)}))
                            .collect();
                        let others: Vec<String> =
                            refs.iter().filter(|r| !r.1).map(|r| b(r.0)).collect();
                        match kind {
                            0 => json!({"method": "POST", "path": "/Groups", "bulkId": format!("b{i}"),
                                        "data": {"displayName": i, "members": members, "x": others}}),
                            1 => json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                                        "data": {"userName": i, "x": others, "y": members}}),
                            2 => json!({"method": "PATCH", "path": format!("/Users/{}", b(i % 3)),
                                        "data": {"Operations": [{"op": "add", "value": others}]}}),
                            _ => json!({"method": "POST", "path": "/Users", "bulkId": format!("b{}", i / 2),
                                        "data": {"userName": i}}),
                        }
                    })
                    .collect()
            })
        })
    }

    /// Whether the plan ordered operation `i` by its references: it did unless `i` failed
    /// before (only a circle of group members fails after being ordered).
    fn ordered(p: &Plan, i: usize) -> bool {
        p.failures[i]
            .as_ref()
            .is_none_or(|e| e.to_string().contains("can't contain itself"))
    }

    /// Which operations each reaches through references (itself included after a cycle).
    fn reach(entries: &[Entry], p: &Plan) -> Vec<Vec<bool>> {
        let n = entries.len();
        let mut r = vec![vec![false; n]; n];
        for (i, e) in entries.iter().enumerate() {
            let (Ok(op), true) = (&e.op, ordered(p, i)) else {
                continue;
            };
            for x in references(op) {
                if let Some(&d) = p.declared.get(&x.bulk_id) {
                    r[i][d] = true;
                }
            }
        }
        // Warshall's transitive closure.
        for k in 0..n {
            let through = r[k].clone();
            for row in r.iter_mut().filter(|row| row[k]) {
                for (x, &y) in row.iter_mut().zip(&through) {
                    *x |= y;
                }
            }
        }
        r
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every operation runs exactly once; a POST before every operation that references
        /// it from another unit; a unit is exactly one strongly connected set; inside a
        /// resolvable circle, members before their groups; operations nobody references and
        /// that reference nothing keep the request's order.
        #[test]
        fn plans_respect_references(ops in request()) {
            let entries = parsed(json!(ops)).entries;
            let p = plan(&entries);
            let n = entries.len();
            let mut unit_of = vec![usize::MAX; n];
            let mut place = vec![usize::MAX; n];
            for (u, unit) in p.units.iter().enumerate() {
                for (k, &i) in unit.ops.iter().enumerate() {
                    prop_assert_eq!(unit_of[i], usize::MAX, "operation {} twice", i);
                    unit_of[i] = u;
                    place[i] = k;
                }
            }
            prop_assert!(unit_of.iter().all(|&u| u != usize::MAX));
            let reaches = reach(&entries, &p);
            let mut referenced = vec![false; n];
            for (i, e) in entries.iter().enumerate() {
                let (Ok(op), true) = (&e.op, ordered(&p, i)) else { continue };
                for x in references(op) {
                    let d = p.declared[&x.bulk_id];
                    referenced[d] = true;
                    if unit_of[d] != unit_of[i] {
                        prop_assert!(unit_of[d] < unit_of[i], "{} runs before {}", i, d);
                        prop_assert!(p.units[unit_of[i]].needs.contains(&d));
                    } else if x.member && p.failures[i].is_none() && d != i {
                        prop_assert!(place[d] < place[i], "member {} after group {}", d, i);
                    }
                }
            }
            for unit in &p.units {
                for &a in &unit.ops {
                    for &b in &unit.ops {
                        prop_assert!(a == b || (reaches[a][b] && reaches[b][a]));
                    }
                }
            }
            for i in 0..n {
                for j in 0..n {
                    if i != j && unit_of[i] != unit_of[j] {
                        prop_assert!(!(reaches[i][j] && reaches[j][i]), "{} and {} split", i, j);
                    }
                }
            }
            let free: Vec<usize> = (0..n)
                .filter(|&i| !referenced[i] && reaches[i].iter().all(|r| !r))
                .collect();
            prop_assert!(free.windows(2).all(|w| unit_of[w[0]] < unit_of[w[1]]));
        }

        /// After substitution with an id for every declared bulkId, no reference is left.
        #[test]
        fn substitution_leaves_no_reference(ops in request()) {
            let entries = parsed(json!(ops)).entries;
            let p = plan(&entries);
            let ids: HashMap<String, String> =
                p.declared.keys().map(|b| (b.clone(), format!("id-{b}"))).collect();
            for (i, e) in entries.into_iter().enumerate() {
                let (Ok(mut op), None) = (e.op, &p.failures[i]) else { continue };
                substitute(&mut op, &ids).unwrap();
                prop_assert!(references(&op).is_empty(), "{:?}", op);
            }
        }
    }
}
