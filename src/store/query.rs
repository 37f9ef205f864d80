//! Filter → SQL `WHERE` clause with bound parameters, so every filter runs inside SQLite and
//! no table is ever loaded into memory to be filtered.
//!
//! The filter is first resolved against the schema (`scim::resolve`, which also defines what
//! it means); this module only chooses how SQLite computes it:
//! - the lookups identity providers make (`id`, `userName`, `externalId`, `emails.value`,
//!   `emails[type eq … and value eq …]`, group `displayName`, `members.value`) hit an index;
//! - other attributes are read from the JSON document with `json_extract`, multi-valued ones
//!   with `json_each`, a group's members from membership rows;
//! - case-insensitive strings are compared through `scim_fold`, the same Unicode fold the
//!   evaluator uses (registered on every connection by `store::configure`).
//!
//! `not` is pushed down to the comparisons, and a negated comparison is made NULL-safe, so
//! SQL's three-valued logic gives the same answers as the two-valued evaluator (an absent
//! attribute is "not equal", never "unknown").

use rusqlite::types::Value as SqlValue;

use crate::error::{Error, Result};
use crate::scim::filter::{CompareOp, Filter};
use crate::scim::registry::Registry;
use crate::scim::resolve::{self, Operand, Origin, Resolved, Target};
use crate::scim::resource::ResourceKind;
use crate::scim::schema::{Kind, Uniqueness};

/// A `WHERE` clause over the `users` or `groups` table and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl SqlFilter {
    /// Matches every row.
    pub fn all() -> Self {
        SqlFilter {
            sql: "1".into(),
            params: Vec::new(),
        }
    }
}

/// Which rows of a list, in which order.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSql {
    pub filter: SqlFilter,
    /// The filter is an index lookup (`is_lookup`): a few microseconds of work.
    pub lookup: bool,
    pub order: Option<Order>,
    pub window: Window,
}

impl ListSql {
    /// Whether reading this list may visit every row (a filter or order no index answers),
    /// rather than an index lookup or range.
    pub fn is_scan(&self) -> bool {
        !self.lookup
            && (self.filter.sql != SqlFilter::all().sql
                || self.order.as_ref().is_some_and(|o| !o.is_empty()))
    }
}

/// `ORDER BY` terms placed before the final tie-break on `seq` (each ending in ", "), and the
/// parameters they bind, numbered after the filter's (`sort_order`): a statement that orders
/// by them binds the filter's parameters, then these.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Order {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Order {
    pub fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }
}

/// Which slice of the ordered rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `startIndex` paging: skip `offset` rows, return up to `limit`.
    Offset { offset: u64, limit: u64 },
    /// Cursor paging in creation order: rows after `after`; `total` when already counted.
    After {
        after: i64,
        limit: u64,
        total: Option<u64>,
    },
}

/// The `ORDER BY` terms for `sortBy` (RFC 7644 §3.4.2.3): by the attribute's value, folded
/// when it is case-insensitive; missing values last when ascending and first when descending,
/// as that section says. A multi-valued attribute sorts by its primary value, else its first.
/// An undeclared extension's attribute sorts by its value as stored (`undeclared_order`).
/// `after`: how many parameters the statement binds before the order's (the filter's).
pub fn sort_order(
    by: &crate::scim::filter::AttrPath,
    descending: bool,
    kind: ResourceKind,
    registry: &Registry,
    after: usize,
) -> Result<Order> {
    let t = resolve::resolve_sort(by, kind, registry)?;
    literal_safe(&t)?;
    let direction = if descending { "DESC" } else { "ASC" };
    if let Origin::Undeclared(_) = &t.origin {
        return Ok(undeclared_order(&t, kind, direction, after));
    }
    // A constant (`meta.resourceType`) orders nothing, and SQLite refuses a constant ORDER BY
    // term: creation order, which is what sorting by it means.
    if column(kind, &t).is_some_and(|(expr, _)| !expr.contains("{t}")) {
        return Ok(Order::default());
    }
    let mut sql = Sql {
        kind,
        params: Vec::new(),
        bind_paths: false,
        registry: None,
    };
    let x = match sql.values(&t, None) {
        Values::Scalar { expr, folded } => {
            if resolve::folds(t.leaf()) && !folded {
                format!("scim_fold({expr})")
            } else {
                expr
            }
        }
        Values::Each { from, on, expr } => {
            let value = format!(
                "(SELECT {expr} FROM {from} WHERE {on} \
                 ORDER BY (json_extract(e.value, '$.\"primary\"') IS NOT 1), CAST(e.key AS INTEGER) \
                 LIMIT 1)"
            );
            if resolve::folds(t.leaf()) {
                format!("scim_fold({value})")
            } else {
                value
            }
        }
    };
    Ok(Order {
        sql: format!("({x}) IS NULL {direction}, {x} {direction}, "),
        params: Vec::new(),
    })
}

/// The order of an undeclared extension attribute: no schema types it, so by its JSON value
/// as stored (a list by its first element): numbers, then strings (folded, as filters compare
/// them), then booleans (false first); objects and lists of them sort as missing. A
/// sub-attribute is read from that value (an object), then taken the same way. Its JSON
/// paths are bound as parameters, never written into the SQL: the names are the client's.
fn undeclared_order(t: &Target, kind: ResourceKind, direction: &str, after: usize) -> Order {
    let data = match kind {
        ResourceKind::User => "users.data",
        ResourceKind::Group => "groups.data",
    };
    let first = |p: &str| {
        format!("(CASE json_type({data}, {p}) WHEN 'array' THEN {p} || '[0]' ELSE {p} END)")
    };
    let mut params = vec![SqlValue::Text(json_path(&t.origin, &t.attr.name))];
    let mut at = first(&format!("?{}", after + 1));
    if let Some(sub) = &t.sub {
        params.push(SqlValue::Text(format!(".\"{}\"", sub.name)));
        at = first(&format!("({at} || ?{})", after + 2));
    }
    let rank = format!(
        "(CASE json_type({data}, {at}) WHEN 'integer' THEN 0 WHEN 'real' THEN 0 \
         WHEN 'text' THEN 1 WHEN 'false' THEN 2 WHEN 'true' THEN 2 END)"
    );
    let value = format!(
        "(CASE json_type({data}, {at}) WHEN 'text' THEN scim_fold(json_extract({data}, {at})) \
         WHEN 'integer' THEN json_extract({data}, {at}) WHEN 'real' THEN json_extract({data}, {at}) \
         WHEN 'false' THEN 0 WHEN 'true' THEN 1 END)"
    );
    Order {
        sql: format!("{rank} IS NULL {direction}, {rank} {direction}, {value} {direction}, "),
        params,
    }
}

/// Whether a filter is answered by an index lookup of an identifying attribute (what IdPs
/// send before they act): cheap enough to run without handing it to the blocking pool.
fn lookup(r: &Resolved, kind: ResourceKind, registry: &Registry) -> bool {
    let key = |t: &Target| {
        let sub = t.sub.as_ref().map(|s| s.name.as_str());
        matches!(
            (kind, &t.origin, t.attr.name.as_str(), sub),
            (_, Origin::Common, "id" | "externalId", None)
                | (ResourceKind::User, Origin::Core, "userName", None)
                | (ResourceKind::User, Origin::Core, "emails", Some("value"))
                | (ResourceKind::Group, Origin::Core, "displayName", None)
                | (ResourceKind::Group, Origin::Core, "members", Some("value"))
        )
    };
    match r {
        Resolved::And(a, b) => lookup(a, kind, registry) || lookup(b, kind, registry),
        Resolved::Or(a, b) => lookup(a, kind, registry) && lookup(b, kind, registry),
        // Only a unique declared attribute: `eq` on it matches at most one row. A non-unique
        // indexed one may match any number, so it is a list like others (scan permits, off
        // the request's thread), though its SQL still reads the index.
        Resolved::Compare(t, CompareOp::Eq, v) => {
            key(t)
                || (t.leaf().uniqueness != Uniqueness::None
                    && ext_indexed(registry, kind, t, CompareOp::Eq, v).is_some())
        }
        Resolved::ValuePath(t, inner) => {
            let mut terms = Vec::new();
            conjunction(inner, &mut terms)
                && terms.iter().any(|(sub, _)| *sub == "value")
                && key(&Target {
                    sub: resolve::find(&t.attr.sub_attributes, "value"),
                    ..t.clone()
                })
        }
        _ => false,
    }
}

/// A comparison on a declared extension attribute whose side-table index is ready
/// (`store::ext_index`) that the side rows answer: its `attr_id` and the column compared.
/// Only with an operand of the attribute's own type, already in the form the side rows hold
/// (strings folded by `resolve` exactly when the rows are): `eq` on any type, ranges on
/// strings and numbers, `sw`/`co`/`ew` on strings (not with "", which every string matches).
fn ext_indexed(
    registry: &Registry,
    kind: ResourceKind,
    t: &Target,
    op: CompareOp,
    v: &Operand,
) -> Option<(i64, &'static str)> {
    let Origin::Extension(urn) = &t.origin else {
        return None;
    };
    let sub = t.sub.as_ref().map(|s| s.name.as_str());
    let id = registry.indexed(kind, urn, &t.attr.name, sub)?;
    let range = matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    );
    let column = match (t.leaf().kind, v, op) {
        (_, _, CompareOp::Ne) => return None,
        (Kind::String | Kind::Reference, Operand::Str(s), _)
            if !s.is_empty() || op == CompareOp::Eq || range =>
        {
            "text"
        }
        (Kind::Binary, Operand::Str(_), CompareOp::Eq) => "text",
        (Kind::Integer | Kind::Decimal, Operand::Num(_), _) if op == CompareOp::Eq || range => {
            "num"
        }
        (Kind::Boolean, Operand::Bool(_), CompareOp::Eq) => "num",
        _ => return None,
    };
    Some((id, column))
}

/// Translates `filter` for resources of `kind`, with the schemas of `registry`.
pub fn translate(filter: &Filter, kind: ResourceKind, registry: &Registry) -> Result<SqlFilter> {
    translate_list(filter, kind, registry).map(|(sql, _)| sql)
}

/// `translate`, and whether the filter is an index lookup (see `ListSql::lookup`).
pub fn translate_list(
    filter: &Filter,
    kind: ResourceKind,
    registry: &Registry,
) -> Result<(SqlFilter, bool)> {
    let resolved = resolve::resolve(filter, kind, registry)?;
    each_target(&resolved, &mut literal_safe)?;
    let is_lookup = lookup(&resolved, kind, registry);
    let mut sql = Sql {
        kind,
        params: Vec::new(),
        bind_paths: true,
        registry: Some(registry),
    };
    let text = sql.node(&resolved, false)?;
    Ok((
        SqlFilter {
            sql: text,
            params: sql.params,
        },
        is_lookup,
    ))
}

/// Where the values of a target come from.
enum Values {
    /// One SQL expression, NULL when absent. `folded`: already case-folded (a `_fold` column).
    Scalar { expr: String, folded: bool },
    /// One row per value: `FROM <from> WHERE <on>`, the value being `expr` (the element itself
    /// when the target has no sub-attribute).
    Each {
        from: String,
        on: String,
        expr: String,
    },
}

/// An undeclared list's element `o` or `e` as JSON when it is an object, else NULL (which
/// `json_each` and `json_type` read as nothing): a string element is not JSON text.
const OBJECT_O: &str = "(CASE o.type WHEN 'object' THEN o.value END)";
const OBJECT_E: &str = "(CASE e.type WHEN 'object' THEN e.value END)";

fn untyped(t: &Target) -> bool {
    matches!(t.origin, Origin::Undeclared(_))
}

/// Inside `attr[…]`: how the current element is named.
#[derive(Clone, Copy)]
enum Element {
    /// A `json_each` row aliased `e`.
    Json,
    /// A membership row `m` joined to its user `mu` or group `mg`.
    Member,
}

const MEMBERS_FROM: &str = "group_members m \
    LEFT JOIN users mu ON mu.seq = m.member_user_seq \
    LEFT JOIN groups mg ON mg.seq = m.member_group_seq";

struct Sql<'r> {
    kind: ResourceKind,
    /// The schemas in force, for the indexes filters may read (none for sort orders).
    registry: Option<&'r Registry>,
    params: Vec<SqlValue>,
    /// Whether JSON paths into extension blocks are bound as parameters (filters), or
    /// written as literals (`sort_order`, whose text is reused under other parameter
    /// numbers; `literal_safe` vets the names first).
    bind_paths: bool,
}

impl Sql<'_> {
    fn table(&self) -> &'static str {
        match self.kind {
            ResourceKind::User => "users",
            ResourceKind::Group => "groups",
        }
    }

    /// Binds a parameter; returns its placeholder.
    fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        format!("?{}", self.params.len())
    }

    fn operand(&mut self, v: &Operand) -> String {
        self.bind(match v {
            Operand::Str(s) => SqlValue::Text(s.clone()),
            Operand::Bool(b) => SqlValue::Integer(i64::from(*b)),
            Operand::Num(n) => SqlValue::Real(*n),
        })
    }

    /// `r`, or its negation when `negate`.
    fn node(&mut self, r: &Resolved, negate: bool) -> Result<String> {
        Ok(match (r, negate) {
            (Resolved::And(a, b), false) | (Resolved::Or(a, b), true) => {
                format!("({} AND {})", self.node(a, negate)?, self.node(b, negate)?)
            }
            (Resolved::Or(a, b), false) | (Resolved::And(a, b), true) => {
                format!("({} OR {})", self.node(a, negate)?, self.node(b, negate)?)
            }
            (Resolved::Not(inner), _) => self.node(inner, !negate)?,
            (Resolved::Present(t), _) => wrap(negate, self.present(t, None)?),
            (Resolved::Compare(t, op, v), _) => self.compare(t, *op, v, None, negate)?,
            (Resolved::ValuePath(t, inner), _) => wrap(negate, self.value_path(t, inner)?),
        })
    }

    /// A node inside `attr[…]`, evaluated on one element.
    fn element_node(&mut self, r: &Resolved, el: Element, negate: bool) -> Result<String> {
        Ok(match (r, negate) {
            (Resolved::And(a, b), false) | (Resolved::Or(a, b), true) => format!(
                "({} AND {})",
                self.element_node(a, el, negate)?,
                self.element_node(b, el, negate)?
            ),
            (Resolved::Or(a, b), false) | (Resolved::And(a, b), true) => format!(
                "({} OR {})",
                self.element_node(a, el, negate)?,
                self.element_node(b, el, negate)?
            ),
            (Resolved::Not(inner), _) => self.element_node(inner, el, !negate)?,
            (Resolved::Present(t), _) => wrap(negate, self.present(t, Some(el))?),
            (Resolved::Compare(t, op, v), _) => self.compare(t, *op, v, Some(el), negate)?,
            (Resolved::ValuePath(..), _) => {
                return Err(Error::InvalidFilter(
                    "value filters cannot be nested".into(),
                ));
            }
        })
    }

    /// Where the values of `t` come from, at the top level or on element `el`.
    /// A JSON path as SQL: a parameter for a path into an extension block when binding
    /// paths (names declared by an administrator or sent by a client are never spliced),
    /// else a literal (core paths are this source's own names).
    fn path(&mut self, origin: &Origin, path: String) -> String {
        match origin {
            Origin::Extension(_) | Origin::Undeclared(_) if self.bind_paths => {
                self.bind(SqlValue::Text(path))
            }
            _ => format!("'{path}'"),
        }
    }

    fn values(&mut self, t: &Target, el: Option<Element>) -> Values {
        let table = self.table();
        if let Some(el) = el {
            let sub = &t.leaf().name;
            return Values::Scalar {
                expr: match el {
                    Element::Json => {
                        let p = self.path(&t.origin, format!("$.\"{sub}\""));
                        format!("json_extract(e.value, {p})")
                    }
                    Element::Member => member_expr(sub),
                },
                folded: false,
            };
        }
        if let Some((column, folded)) = column(self.kind, t) {
            return Values::Scalar {
                expr: column.replace("{t}", table),
                folded,
            };
        }
        if self.kind == ResourceKind::Group && t.attr.name == "members" {
            return Values::Each {
                from: MEMBERS_FROM.into(),
                on: "m.group_seq = groups.seq".into(),
                expr: t
                    .sub
                    .as_ref()
                    .map_or("m.rowid".into(), |s| member_expr(&s.name)),
            };
        }
        let path = json_path(&t.origin, &t.attr.name);
        if t.attr.multi_valued {
            let p = self.path(&t.origin, path);
            let expr = match &t.sub {
                Some(s) => {
                    let sp = self.path(&t.origin, format!("$.\"{}\"", s.name));
                    format!("json_extract(e.value, {sp})")
                }
                None => "e.value".into(),
            };
            return Values::Each {
                from: format!("json_each({table}.data, {p}) e"),
                on: "1".into(),
                expr,
            };
        }
        let path = match &t.sub {
            Some(s) => format!("{path}.\"{}\"", s.name),
            None => path,
        };
        let p = self.path(&t.origin, path);
        Values::Scalar {
            expr: format!("json_extract({table}.data, {p})"),
            folded: false,
        }
    }

    /// The objects of an undeclared attribute, one `json_each` row each (with any other
    /// elements of its list, which `OBJECT_O`/`OBJECT_E` turn into nothing): its list, or
    /// its one object as a list of one.
    fn untyped_elements(&mut self, t: &Target) -> String {
        let p = self.path(&t.origin, json_path(&t.origin, &t.attr.name));
        let data = format!("{}.data", self.table());
        format!(
            "json_each(CASE json_type({data}, {p}) WHEN 'array' THEN json_extract({data}, {p}) \
             WHEN 'object' THEN '[' || json_extract({data}, {p}) || ']' END)"
        )
    }

    /// Whether some value at path `p` of the JSON `json` (each element of a list there)
    /// satisfies `op v`, compared only with an operand of its own JSON type, as `eval` does.
    fn untyped_test(&mut self, json: &str, p: &str, op: CompareOp, v: &Operand) -> String {
        let (types, x) = match v {
            Operand::Str(_) => ("'text'", "scim_fold(u.value)"),
            Operand::Num(_) => ("'integer', 'real'", "u.value"),
            Operand::Bool(_) => ("'true', 'false'", "u.value"),
        };
        let test = self.test(x, op, v);
        format!(
            "EXISTS (SELECT 1 FROM json_each({json}, {p}) u WHERE \
             json_type({json}, {p}) <> 'object' AND u.type IN ({types}) AND {test})"
        )
    }

    fn present(&mut self, t: &Target, el: Option<Element>) -> Result<String> {
        if untyped(t) {
            // `validate` stores no empty strings, lists or objects: any value is present.
            return Ok(match (el, &t.sub) {
                (None, None) => {
                    let p = self.path(&t.origin, json_path(&t.origin, &t.attr.name));
                    format!("(json_type({}.data, {p}) IS NOT NULL)", self.table())
                }
                (None, Some(sub)) => {
                    let from = self.untyped_elements(t);
                    let s = self.path(&t.origin, format!("$.\"{}\"", sub.name));
                    format!(
                        "EXISTS (SELECT 1 FROM {from} o WHERE json_type({OBJECT_O}, {s}) IS NOT NULL)"
                    )
                }
                (Some(_), _) => {
                    let s = self.path(&t.origin, format!("$.\"{}\"", t.leaf().name));
                    format!("(json_type({OBJECT_E}, {s}) IS NOT NULL)")
                }
            });
        }
        if el.is_none() && self.kind == ResourceKind::User && t.attr.name == "groups" {
            // Any membership at all: an indirect one implies a direct one.
            return Ok(
                "EXISTS (SELECT 1 FROM group_members gm WHERE gm.member_user_seq = users.seq)"
                    .into(),
            );
        }
        Ok(match self.values(t, el) {
            Values::Scalar { expr, .. } => format!("({expr} IS NOT NULL)"),
            Values::Each { from, on, expr } => {
                format!("EXISTS (SELECT 1 FROM {from} WHERE {on} AND {expr} IS NOT NULL)")
            }
        })
    }

    /// One comparison (negated, NULL-safely, when `negate`). `ne` is `not eq`.
    fn compare(
        &mut self,
        t: &Target,
        op: CompareOp,
        v: &Operand,
        el: Option<Element>,
        negate: bool,
    ) -> Result<String> {
        let (op, negate) = match op {
            CompareOp::Ne => (CompareOp::Eq, !negate),
            other => (other, negate),
        };
        if el.is_none()
            && let Some(sql) = self.ext_compare(t, op, v)
        {
            return Ok(wrap(negate, sql));
        }
        if el.is_none()
            && op == CompareOp::Eq
            && let Some(sql) = self.indexed_eq(t, v)
        {
            return Ok(wrap(negate, sql));
        }
        if untyped(t) {
            let sql = match (el, &t.sub) {
                (None, None) => {
                    let p = self.path(&t.origin, json_path(&t.origin, &t.attr.name));
                    let data = format!("{}.data", self.table());
                    self.untyped_test(&data, &p, op, v)
                }
                (None, Some(sub)) => {
                    let from = self.untyped_elements(t);
                    let s = self.path(&t.origin, format!("$.\"{}\"", sub.name));
                    let test = self.untyped_test(OBJECT_O, &s, op, v);
                    format!("EXISTS (SELECT 1 FROM {from} o WHERE {test})")
                }
                (Some(_), _) => {
                    let s = self.path(&t.origin, format!("$.\"{}\"", t.leaf().name));
                    self.untyped_test(OBJECT_E, &s, op, v)
                }
            };
            return Ok(wrap(negate, sql));
        }
        let fold = resolve::folds(t.leaf());
        Ok(match self.values(t, el) {
            Values::Scalar { expr, folded } => {
                let x = if fold && !folded {
                    format!("scim_fold({expr})")
                } else {
                    expr
                };
                let test = self.test(&x, op, v);
                if negate {
                    format!("(NOT IFNULL({test}, 0))")
                } else {
                    test
                }
            }
            Values::Each { from, on, expr } => {
                let x = if fold {
                    format!("scim_fold({expr})")
                } else {
                    expr
                };
                let test = self.test(&x, op, v);
                wrap(
                    negate,
                    format!("EXISTS (SELECT 1 FROM {from} WHERE {on} AND {test})"),
                )
            }
        })
    }

    /// `x op v` in SQL, for a value `x` already folded as the comparison needs.
    fn test(&mut self, x: &str, op: CompareOp, v: &Operand) -> String {
        if let (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, Operand::Str(s)) = (op, v)
            && s.is_empty()
        {
            // Every string contains, starts and ends with "".
            return format!("({x} IS NOT NULL)");
        }
        let p = self.operand(v);
        match op {
            CompareOp::Eq | CompareOp::Ne => format!("({x} = {p})"),
            CompareOp::Co => format!("(instr({x}, {p}) > 0)"),
            CompareOp::Sw => format!("(substr({x}, 1, length({p})) = {p})"),
            CompareOp::Ew => format!("(substr({x}, -length({p})) = {p})"),
            CompareOp::Gt => format!("({x} > {p})"),
            CompareOp::Ge => format!("({x} >= {p})"),
            CompareOp::Lt => format!("({x} < {p})"),
            CompareOp::Le => format!("({x} <= {p})"),
        }
    }

    /// `attr[…]`: some element satisfies the inner filter.
    fn value_path(&mut self, t: &Target, inner: &Resolved) -> Result<String> {
        if untyped(t) {
            // Not the indexes below: an undeclared attribute may share a core one's name.
            let from = self.untyped_elements(t);
            let cond = self.element_node(inner, Element::Json, false)?;
            return Ok(format!(
                "EXISTS (SELECT 1 FROM {from} e WHERE e.type = 'object' AND {cond})"
            ));
        }
        if let Some(sql) = self.indexed_value_path(t, inner) {
            return Ok(sql);
        }
        let el = if self.kind == ResourceKind::Group && t.attr.name == "members" {
            Element::Member
        } else {
            Element::Json
        };
        let Values::Each { from, on, .. } = self.values(t, None) else {
            return Err(Error::internal("value path over a singular attribute"));
        };
        let cond = self.element_node(inner, el, false)?;
        Ok(format!(
            "EXISTS (SELECT 1 FROM {from} WHERE {on} AND {cond})"
        ))
    }

    /// A comparison on an indexed declared extension attribute, read from its side rows:
    /// one index range over that attribute's rows.
    fn ext_compare(&mut self, t: &Target, op: CompareOp, v: &Operand) -> Option<String> {
        let (id, column) = self
            .registry
            .and_then(|r| ext_indexed(r, self.kind, t, op, v))?;
        let table = self.table();
        let (side, seq) = match self.kind {
            ResourceKind::User => ("user_ext_values", "user_seq"),
            ResourceKind::Group => ("group_ext_values", "group_seq"),
        };
        let id = self.bind(SqlValue::Integer(id));
        let test = self.test(column, op, v);
        Some(format!(
            "{table}.seq IN (SELECT {seq} FROM {side} WHERE attr_id = {id} AND {test})"
        ))
    }

    /// The index-backed forms of the lookups identity providers make.
    fn indexed_eq(&mut self, t: &Target, v: &Operand) -> Option<String> {
        let Operand::Str(s) = v else { return None };
        let sub = t.sub.as_ref().map(|s| s.name.as_str());
        match (self.kind, &t.origin, t.attr.name.as_str(), sub) {
            (ResourceKind::User, Origin::Core, "emails", Some("value")) => {
                let p = self.bind(SqlValue::Text(s.clone()));
                Some(format!(
                    "users.seq IN (SELECT user_seq FROM user_emails WHERE value_fold = {p})"
                ))
            }
            // Each branch resolves the id through its unique index and finds memberships
            // through the index on that member column: no table is scanned.
            (ResourceKind::Group, Origin::Core, "members", Some("value")) => {
                let p = self.bind(SqlValue::Text(s.clone()));
                Some(format!(
                    "groups.seq IN (\
                     SELECT group_seq FROM group_members \
                     WHERE member_user_seq = (SELECT seq FROM users WHERE id = {p}) \
                     UNION ALL SELECT group_seq FROM group_members \
                     WHERE member_group_seq = (SELECT seq FROM groups WHERE id = {p}))"
                ))
            }
            // Members of the group, directly or through the groups nested in it.
            (ResourceKind::User, Origin::Core, "groups", Some("value")) => {
                let p = self.bind(SqlValue::Text(s.clone()));
                Some(format!(
                    "users.seq IN (\
                     WITH RECURSIVE down(seq) AS (\
                     SELECT seq FROM groups WHERE id = {p} \
                     UNION SELECT gm.member_group_seq FROM group_members gm \
                     JOIN down ON gm.group_seq = down.seq \
                     WHERE gm.member_group_seq IS NOT NULL) \
                     SELECT gm.member_user_seq FROM group_members gm \
                     WHERE gm.group_seq IN (SELECT seq FROM down) \
                     AND gm.member_user_seq IS NOT NULL)"
                ))
            }
            _ => None,
        }
    }

    /// `emails[type eq "…" and value eq "…"]` (Entra's `emails[type eq "work"].value eq "…"`)
    /// and `members[value eq "…"]` on their indexes.
    fn indexed_value_path(&mut self, t: &Target, inner: &Resolved) -> Option<String> {
        let mut terms = Vec::new();
        if !conjunction(inner, &mut terms) {
            return None;
        }
        let mut value = None;
        let mut kind = None;
        for (sub, v) in terms {
            let slot = match sub {
                "value" => &mut value,
                "type" => &mut kind,
                _ => return None,
            };
            if slot.replace(v).is_some() {
                return None;
            }
        }
        match (self.kind, t.attr.name.as_str(), value, kind) {
            (ResourceKind::User, "emails", value, kind) if value.is_some() || kind.is_some() => {
                let mut conds = Vec::new();
                for (column, term) in [("value_fold", value), ("type_fold", kind)] {
                    if let Some(s) = term {
                        let p = self.bind(SqlValue::Text(s.to_string()));
                        conds.push(format!("{column} = {p}"));
                    }
                }
                Some(format!(
                    "users.seq IN (SELECT user_seq FROM user_emails WHERE {})",
                    conds.join(" AND ")
                ))
            }
            (ResourceKind::Group, "members", Some(v), None) => {
                let target = Target {
                    sub: resolve::find(&t.attr.sub_attributes, "value"),
                    ..t.clone()
                };
                self.indexed_eq(&target, &Operand::Str(v.to_string()))
            }
            _ => None,
        }
    }
}

/// The `sub eq "string"` terms joined by `and`, or `false` if the filter holds anything else.
fn conjunction<'a>(r: &'a Resolved, out: &mut Vec<(&'a str, &'a str)>) -> bool {
    match r {
        Resolved::And(a, b) => conjunction(a, out) && conjunction(b, out),
        Resolved::Compare(t, CompareOp::Eq, Operand::Str(s)) => match &t.sub {
            Some(sub) => {
                out.push((&sub.name, s.as_str()));
                true
            }
            None => false,
        },
        _ => false,
    }
}

fn wrap(negate: bool, sql: String) -> String {
    if negate { format!("(NOT {sql})") } else { sql }
}

/// Columns that hold an attribute directly: (expression with `{t}` for the table, whether it
/// holds the folded value). For the identifiers that is their uniqueness key (`ident::key`),
/// which `resolve` folds their operands to.
fn column(kind: ResourceKind, t: &Target) -> Option<(&'static str, bool)> {
    let sub = t.sub.as_ref().map(|s| s.name.as_str());
    Some(match (kind, &t.origin, t.attr.name.as_str(), sub) {
        (_, Origin::Common, "id", None) => ("{t}.id", false),
        (_, Origin::Common, "externalId", None) => ("{t}.external_id", false),
        (_, Origin::Common, "meta", Some("created")) => ("{t}.created", false),
        (_, Origin::Common, "meta", Some("lastModified")) => ("{t}.last_modified", false),
        (ResourceKind::User, Origin::Common, "meta", Some("resourceType")) => ("'User'", false),
        (ResourceKind::Group, Origin::Common, "meta", Some("resourceType")) => ("'Group'", false),
        (ResourceKind::User, Origin::Core, "userName", None) => ("{t}.user_name_fold", true),
        (ResourceKind::User, Origin::Core, "displayName", None) => ("{t}.display_name", false),
        (ResourceKind::Group, Origin::Core, "displayName", None) => ("{t}.display_name_fold", true),
        _ => return None,
    })
}

/// The JSON path of a top-level attribute in the stored document.
/// Calls `f` on every target of `r`.
fn each_target(r: &Resolved, f: &mut impl FnMut(&Target) -> Result<()>) -> Result<()> {
    match r {
        Resolved::And(a, b) | Resolved::Or(a, b) => {
            each_target(a, f)?;
            each_target(b, f)
        }
        Resolved::Not(inner) => each_target(inner, f),
        Resolved::ValuePath(t, inner) => {
            f(t)?;
            each_target(inner, f)
        }
        Resolved::Present(t) | Resolved::Compare(t, ..) => f(t),
    }
}

/// Sort orders write JSON paths into the SQL text as literals (`json_path`); filters bind
/// the paths into extension blocks as parameters. Extension URNs and attribute names come
/// from declarations and clients, not from this source, so a name that could end a literal
/// or a quoted path key is refused either way rather than used.
fn literal_safe(t: &Target) -> Result<()> {
    let safe = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":._-/$#@+=,;!~*()?&%".contains(c))
    };
    let urn = match &t.origin {
        // An undeclared URN is bound as a parameter (`undeclared_path`); checked all the same
        // in case a path ever reaches `json_path`.
        Origin::Extension(urn) | Origin::Undeclared(urn) => urn,
        Origin::Core | Origin::Common => "",
    };
    let names = [
        Some(urn),
        Some(t.attr.name.as_str()),
        t.sub.as_ref().map(|s| s.name.as_str()),
    ];
    if names.into_iter().flatten().all(safe) {
        Ok(())
    } else {
        Err(Error::InvalidFilter(format!(
            "\"{}\" cannot be filtered or sorted on: its name has characters scimd does not \
             put in a query",
            t.attr.name
        )))
    }
}

fn json_path(origin: &Origin, attr: &str) -> String {
    match origin {
        Origin::Extension(urn) | Origin::Undeclared(urn) => format!("$.\"{urn}\".\"{attr}\""),
        Origin::Core | Origin::Common => format!("$.\"{attr}\""),
    }
}

/// A sub-attribute of a group member, from the membership row and its user or group.
fn member_expr(sub: &str) -> String {
    match sub {
        "value" => "COALESCE(mu.id, mg.id)".into(),
        "type" => "(CASE WHEN mu.seq IS NOT NULL THEN 'User' ELSE 'Group' END)".into(),
        // `resolve` admits no other sub-attribute of members.
        _ => "NULL".into(),
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::scim::filter::parse;
    use crate::store::{groups, migrate, users};

    const NOW: &str = "2026-01-01T00:00:00.000Z";

    fn translate_text(text: &str, kind: ResourceKind) -> Result<SqlFilter> {
        let filter = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        translate(&filter, kind, &Registry::builtin())
    }

    fn users_sql(text: &str) -> SqlFilter {
        translate_text(text, ResourceKind::User).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn groups_sql(text: &str) -> SqlFilter {
        translate_text(text, ResourceKind::Group).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn refused(text: &str, kind: ResourceKind) -> String {
        match translate_text(text, kind) {
            Err(Error::InvalidFilter(m)) => m,
            other => panic!("{text}: expected invalidFilter, got {other:?}"),
        }
    }

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.to_string())
    }

    // ---- SQL shape ------------------------------------------------------------------------

    #[test]
    fn all_matches_everything() {
        assert_eq!(SqlFilter::all().sql, "1");
    }

    #[test]
    fn lookups_bind_folded_or_exact_values() {
        let f = users_sql(r#"UserName eq "ÉMILE""#);
        assert_eq!(f.sql, "(users.user_name_fold = ?1)");
        assert_eq!(f.params, vec![text("émile")]);
        let f = users_sql(r#"externalId eq "AbC""#);
        assert_eq!(f.params, vec![text("AbC")]);
        let f = users_sql(r#"emails[type eq "Work"].value eq "A@X""#);
        assert_eq!(
            f.sql,
            "users.seq IN (SELECT user_seq FROM user_emails WHERE value_fold = ?1 AND type_fold = ?2)"
        );
        assert_eq!(f.params, vec![text("a@x"), text("work")]);
        assert_eq!(users_sql(r#"emails[value eq "a@x" and type eq "work"]"#), f);
    }

    #[test]
    fn parameters_are_numbered_in_order_and_reused_by_members_value() {
        let f = groups_sql(r#"displayName eq "a" or members.value eq "u" and externalId eq "e""#);
        assert_eq!(f.params, vec![text("a"), text("u"), text("e")]);
        assert_eq!(f.sql.matches("?2").count(), 2, "{}", f.sql);
        assert!(f.sql.contains("?3"), "{}", f.sql);
        let many = (0..12)
            .map(|i| format!("userName eq \"u{i}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let f = users_sql(&many);
        assert_eq!(f.params.len(), 12);
        assert!(f.sql.contains("?12"), "{}", f.sql);
    }

    #[test]
    fn not_is_pushed_down_and_null_safe() {
        let f = users_sql(r#"not (userName eq "a" or title co "b")"#);
        assert_eq!(
            f.sql,
            "((NOT IFNULL((users.user_name_fold = ?1), 0)) AND \
             (NOT IFNULL((instr(scim_fold(json_extract(users.data, '$.\"title\"')), ?2) > 0), 0)))"
        );
        // ne is not eq.
        assert_eq!(
            users_sql(r#"userName ne "a""#).sql,
            "(NOT IFNULL((users.user_name_fold = ?1), 0))"
        );
        // Double negation cancels.
        assert_eq!(
            users_sql(r#"not (not (userName eq "a"))"#),
            users_sql(r#"userName eq "a""#)
        );
    }

    #[test]
    fn resolve_errors_surface_as_invalid_filter() {
        for f in [r#"nosuch eq "x""#, r#"active co "x""#, r#"password pr"#] {
            refused(f, ResourceKind::User);
        }
        refused(r#"userName eq "x""#, ResourceKind::Group);
    }

    // ---- against SQLite ------------------------------------------------------------------

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::configure(&conn).unwrap();
        migrate::run(&mut conn).unwrap();
        conn
    }

    /// The `detail` lines of the query plan of `sql`.
    fn plan_of(conn: &Connection, sql: &str, params: &[SqlValue]) -> Vec<String> {
        let sql = format!("EXPLAIN QUERY PLAN {sql}");
        let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        stmt.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    /// The `detail` lines of the query plan for `SELECT seq FROM table WHERE filter`.
    fn plan(conn: &Connection, table: &str, f: &SqlFilter) -> Vec<String> {
        let sql = format!("SELECT seq FROM {table} WHERE {}", f.sql);
        plan_of(conn, &sql, &f.params)
    }

    /// Asserts that the lookup reads `table` through an index and scans no table at all.
    fn assert_indexed(conn: &Connection, table: &str, f: &SqlFilter) {
        assert_plan_indexed(table, &f.sql, &plan(conn, table, f));
    }

    /// Asserts that the plan `lines` of a statement filtered by `sql` reads `table` through an
    /// index and scans no table at all.
    fn assert_plan_indexed(table: &str, sql: &str, lines: &[String]) {
        let shown = lines.join("\n");
        let searched = lines.iter().any(|l| {
            l.starts_with(&format!("SEARCH {table} "))
                && [
                    "USING INDEX",
                    "USING COVERING INDEX",
                    "USING INTEGER PRIMARY KEY",
                    "USING PRIMARY KEY",
                ]
                .iter()
                .any(|u| l.contains(u))
        });
        assert!(
            searched,
            "{table} is not searched by index for {sql}:\n{shown}"
        );
        for l in lines {
            assert!(!l.starts_with("SCAN "), "full scan for {sql}:\n{shown}");
        }
    }

    #[test]
    fn user_lookups_use_an_index() {
        let conn = db();
        for text in [
            r#"userName eq "a""#,
            r#"externalId eq "a""#,
            r#"id eq "a""#,
            r#"emails.value eq "a@x""#,
            r#"emails[value eq "a@x"]"#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#,
        ] {
            assert_indexed(&conn, "users", &users_sql(text));
        }
    }

    #[test]
    fn group_lookups_use_an_index() {
        let conn = db();
        for text in [
            r#"displayName eq "a""#,
            r#"externalId eq "a""#,
            r#"id eq "a""#,
            r#"members.value eq "a""#,
            r#"members[value eq "a"]"#,
        ] {
            assert_indexed(&conn, "groups", &groups_sql(text));
        }
    }

    #[test]
    fn or_of_indexed_lookups_uses_indexes() {
        let conn = db();
        assert_indexed(
            &conn,
            "users",
            &users_sql(r#"userName eq "a" or emails.value eq "a""#),
        );
        assert_indexed(
            &conn,
            "groups",
            &groups_sql(r#"displayName eq "a" or members.value eq "a""#),
        );
    }

    /// The two statements `store::page` runs for a list request: the count, and the page in
    /// insertion order with LIMIT/OFFSET bound after the filter's parameters.
    #[test]
    fn list_and_count_statements_use_an_index_without_sorting() {
        let conn = db();
        for (table, kind, text) in [
            ("users", ResourceKind::User, r#"userName eq "a""#),
            ("users", ResourceKind::User, r#"externalId eq "a""#),
            ("users", ResourceKind::User, r#"id eq "a""#),
            ("users", ResourceKind::User, r#"emails.value eq "a@x""#),
            ("groups", ResourceKind::Group, r#"displayName eq "a""#),
            ("groups", ResourceKind::Group, r#"externalId eq "a""#),
            ("groups", ResourceKind::Group, r#"id eq "a""#),
            ("groups", ResourceKind::Group, r#"members.value eq "a""#),
        ] {
            let f = translate_text(text, kind).unwrap();
            let count = format!("SELECT COUNT(*) FROM {table} WHERE {}", f.sql);
            assert_plan_indexed(table, &f.sql, &plan_of(&conn, &count, &f.params));
            let n = f.params.len();
            let page = format!(
                "SELECT seq, id, version, created, last_modified, data FROM {table} WHERE {} \
                 ORDER BY seq LIMIT ?{} OFFSET ?{}",
                f.sql,
                n + 1,
                n + 2
            );
            let mut params = f.params.clone();
            params.extend([SqlValue::Integer(100), SqlValue::Integer(0)]);
            let lines = plan_of(&conn, &page, &params);
            assert_plan_indexed(table, &f.sql, &lines);
            assert!(
                !lines.iter().any(|l| l.contains("TEMP B-TREE")),
                "{text} sorts:\n{}",
                lines.join("\n")
            );
        }
    }

    #[test]
    fn plan_check_detects_a_scan() {
        // The assertion above must be able to fail: `active` has no index.
        let conn = db();
        let lines = plan(&conn, "users", &users_sql("active eq true"));
        assert!(
            lines.iter().any(|l| l.starts_with("SCAN users")),
            "{lines:?}"
        );
    }

    fn user_doc(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    /// Three users and three groups: g1 = {u1, u2}, g2 = {g1, u3} (nested), g3 = {}.
    fn populated() -> Connection {
        let conn = db();
        let add_user = |id: &str, doc: Value| {
            users::insert(&conn, id, user_doc(doc), NOW).unwrap();
        };
        add_user(
            "u1",
            json!({"userName": "Émile", "externalId": "ext-1", "active": true,
                   "emails": [{"value": "Emile@Example.COM", "primary": true}]}),
        );
        add_user(
            "u2",
            json!({"userName": "EMILE", "active": true,
                   "emails": [{"value": "other@example.com"}, {"value": "shared@example.com"}]}),
        );
        add_user(
            "u3",
            json!({"userName": "bob", "externalId": "EXT-1", "active": false,
                   "emails": [{"value": "Shared@Example.com"}]}),
        );
        let add_group = |id: &str, doc: Value, members: &[&str]| {
            let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            let (skipped, _) = groups::insert(&conn, id, user_doc(doc), &members, NOW).unwrap();
            assert!(skipped.is_empty(), "{skipped:?}");
        };
        add_group("g1", json!({"displayName": "Admins"}), &["u1", "u2"]);
        add_group("g2", json!({"displayName": "Staff"}), &["g1", "u3"]);
        add_group(
            "g3",
            json!({"displayName": "Émigrés", "externalId": "G-3"}),
            &[],
        );
        conn
    }

    fn window(filter: SqlFilter, offset: u64, limit: u64) -> ListSql {
        ListSql {
            filter,
            lookup: false,
            order: None,
            window: Window::Offset { offset, limit },
        }
    }

    fn user_ids(conn: &Connection, filter: &str) -> Vec<String> {
        let page = users::list(conn, &window(users_sql(filter), 0, 100)).unwrap();
        let ids: Vec<String> = page.items.into_iter().map(|u| u.id).collect();
        assert_eq!(page.total, ids.len() as u64, "{filter}");
        ids
    }

    fn group_ids(conn: &Connection, filter: &str) -> Vec<String> {
        let page = groups::list(conn, &window(groups_sql(filter), 0, 100), true).unwrap();
        let ids: Vec<String> = page.items.into_iter().map(|g| g.id).collect();
        assert_eq!(page.total, ids.len() as u64, "{filter}");
        ids
    }

    /// Scans (which take a scan permit) are the lists no index answers: a non-lookup filter
    /// or a real sort order; lookups, unfiltered pages and a constant sort key are not.
    #[test]
    fn scans_are_lists_no_index_answers() {
        let list = |filter: Option<&str>, sort: Option<&str>| {
            let (filter, lookup) = match filter {
                Some(f) => {
                    translate_list(&parse(f).unwrap(), ResourceKind::User, &Registry::builtin())
                        .unwrap()
                }
                None => (SqlFilter::all(), false),
            };
            let order = sort.map(|by| {
                let by = crate::scim::filter::parse_path(by).unwrap();
                let after = filter.params.len();
                sort_order(&by, false, ResourceKind::User, &Registry::builtin(), after).unwrap()
            });
            ListSql {
                lookup: lookup && order.is_none(),
                order,
                ..window(filter, 0, 10)
            }
        };
        for (filter, sort, scan) in [
            (None, None, false),
            (Some("userName eq \"a\""), None, false),
            (
                Some("emails.value eq \"a@x.org\" or externalId eq \"e\""),
                None,
                false,
            ),
            (None, Some("meta.resourceType"), false),
            (Some("emails.value co \"a\""), None, true),
            (Some("title eq \"x\""), None, true),
            (None, Some("name.familyName"), true),
            (Some("userName eq \"a\""), Some("title"), true),
        ] {
            assert_eq!(list(filter, sort).is_scan(), scan, "{filter:?} {sort:?}");
        }
    }

    /// Only a unique indexed declared attribute is a lookup (at most one row); a non-unique
    /// indexed one still reads its index but is a list like others, and finds every match.
    #[test]
    fn only_unique_indexed_declared_attributes_are_lookups() {
        use crate::scim::registry::Indexed;
        const URN: &str = "urn:acme:2.0:User";
        let doc = json!({"id": URN, "attributes": [
            {"name": "badge", "uniqueness": "server"},
            {"name": "dept"}
        ]});
        let d = crate::scim::declare::parse(&doc, ResourceKind::User, false).unwrap();
        let indexed = |id, attr: &str| Indexed {
            id,
            resource: ResourceKind::User,
            urn: URN.into(),
            attr: attr.into(),
            sub: None,
        };
        let registry =
            Registry::new(vec![d]).with_indexed(vec![indexed(1, "badge"), indexed(2, "dept")]);
        let is_lookup = |f: &str| {
            translate_list(&parse(f).unwrap(), ResourceKind::User, &registry)
                .unwrap()
                .1
        };
        assert!(is_lookup(&format!("{URN}:badge eq \"b1\"")));
        assert!(!is_lookup(&format!("{URN}:dept eq \"sales\"")));
        assert!(!is_lookup(&format!(
            "{URN}:dept eq \"sales\" or userName eq \"a\""
        )));
        assert!(is_lookup(&format!(
            "{URN}:dept eq \"sales\" and userName eq \"a\""
        )));

        // The index still answers it, with every matching user.
        let conn = db();
        conn.execute_batch(&format!(
            "INSERT INTO scim_indexed_attrs (id, resource_type, urn, urn_fold, attr, type, \
             case_exact, uniq, state) VALUES (2, 'User', '{URN}', '{URN}', 'dept', 'string', 0, 0, 'ready')"
        ))
        .unwrap();
        for i in 0..3 {
            let doc = json!({"userName": format!("u{i}"), URN: {"dept": "Sales"}});
            users::insert(&conn, &format!("u{i}"), user_doc(doc), NOW).unwrap();
        }
        let filter = parse(&format!("{URN}:dept eq \"sales\"")).unwrap();
        let (sql, lookup) = translate_list(&filter, ResourceKind::User, &registry).unwrap();
        assert!(sql.sql.contains("user_ext_values"), "{}", sql.sql);
        let page = users::list(
            &conn,
            &ListSql {
                lookup,
                ..window(sql, 0, 100)
            },
        )
        .unwrap();
        assert_eq!(page.total, 3);
        assert_eq!(page.items.len(), 3);
    }

    /// Every attribute and sub-attribute of the schemas, bare and URN-qualified, as `sortBy`
    /// in either direction: sorts a list (filtered or not) or is refused as invalidValue,
    /// never a database error.
    #[test]
    fn every_attribute_sorts_or_is_refused_as_invalid() {
        use crate::scim::filter::parse_path;
        use crate::scim::schema::{COMMON, ENTERPRISE_USER, GROUP, USER};
        let conn = populated();
        let mut sorted = 0;
        for (kind, schemas) in [
            (ResourceKind::User, vec![&USER, &ENTERPRISE_USER]),
            (ResourceKind::Group, vec![&GROUP]),
        ] {
            let mut paths = Vec::new();
            let attrs = schemas
                .iter()
                .flat_map(|s| s.attributes.iter().map(move |a| (Some(s.id.as_str()), a)))
                .chain(COMMON.iter().map(|a| (None, a)));
            for (urn, attr) in attrs {
                let names = std::iter::once(attr.name.to_string()).chain(
                    attr.sub_attributes
                        .iter()
                        .map(|sub| format!("{}.{}", attr.name, sub.name)),
                );
                for name in names {
                    if let Some(urn) = urn {
                        paths.push(format!("{urn}:{name}"));
                    }
                    paths.push(name);
                }
            }
            for path in paths {
                let by = parse_path(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                for descending in [false, true] {
                    // Unfiltered (a page read) and filtered (a scan).
                    let scan = translate_text("meta.created pr", kind).unwrap();
                    for filter in [SqlFilter::all(), scan] {
                        let after = filter.params.len();
                        let order =
                            match sort_order(&by, descending, kind, &Registry::builtin(), after) {
                                Ok(order) => order,
                                Err(Error::InvalidValue(_)) => continue,
                                Err(e) => panic!("{path}: {e:?}"),
                            };
                        let list = ListSql {
                            order: Some(order),
                            ..window(filter, 0, 100)
                        };
                        let listed = match kind {
                            ResourceKind::User => users::list(&conn, &list).map(|p| p.total),
                            ResourceKind::Group => {
                                groups::list(&conn, &list, true).map(|p| p.total)
                            }
                        };
                        assert_eq!(listed.unwrap_or_else(|e| panic!("{path}: {e:?}")), 3);
                        sorted += 1;
                    }
                }
            }
        }
        assert!(sorted > 60, "only {sorted} sortable paths");
    }

    #[test]
    fn user_name_matches_case_insensitively_including_non_ascii() {
        let conn = populated();
        assert_eq!(user_ids(&conn, r#"userName eq "ÉMILE""#), ["u1"]);
        assert_eq!(user_ids(&conn, r#"userName eq "émile""#), ["u1"]);
        assert_eq!(user_ids(&conn, r#"userName eq "Émile""#), ["u1"]);
        assert_eq!(user_ids(&conn, r#"userName eq "emile""#), ["u2"]);
        assert_eq!(user_ids(&conn, r#"userName eq "BOB""#), ["u3"]);
        assert!(user_ids(&conn, r#"userName eq "emil""#).is_empty());
    }

    #[test]
    fn external_id_matches_exactly() {
        let conn = populated();
        assert_eq!(user_ids(&conn, r#"externalId eq "ext-1""#), ["u1"]);
        assert_eq!(user_ids(&conn, r#"externalId eq "EXT-1""#), ["u3"]);
        assert!(user_ids(&conn, r#"externalId eq "Ext-1""#).is_empty());
        assert_eq!(group_ids(&conn, r#"externalId eq "G-3""#), ["g3"]);
        assert!(group_ids(&conn, r#"externalId eq "g-3""#).is_empty());
    }

    #[test]
    fn id_matches_exactly() {
        let conn = populated();
        assert_eq!(user_ids(&conn, r#"id eq "u2""#), ["u2"]);
        assert!(user_ids(&conn, r#"id eq "U2""#).is_empty());
        assert!(user_ids(&conn, r#"id eq "g1""#).is_empty());
        assert_eq!(group_ids(&conn, r#"id eq "g1""#), ["g1"]);
    }

    #[test]
    fn emails_value_matches_case_insensitively() {
        let conn = populated();
        assert_eq!(
            user_ids(&conn, r#"emails.value eq "emile@example.com""#),
            ["u1"]
        );
        assert_eq!(
            user_ids(&conn, r#"emails.value eq "SHARED@example.COM""#),
            ["u2", "u3"]
        );
        assert_eq!(
            user_ids(&conn, r#"emails[value eq "Other@Example.com"]"#),
            ["u2"]
        );
        assert!(user_ids(&conn, r#"emails.value eq "nobody@example.com""#).is_empty());
    }

    #[test]
    fn undeclared_extension_attributes_filter_by_their_json_type() {
        let conn = populated();
        let ext = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
        for (id, data) in [
            (
                "u4",
                json!({"badgeNumber": "Forty-Two", "uid": 1001, "vip": true}),
            ),
            (
                "u5",
                json!({"badgeNumber": ["x", "FORTY-two"], "uid": "1001"}),
            ),
            (
                "u6",
                json!({"badgeNumber": {"badgeNumber": "forty-two"}, "uid": 1001.0}),
            ),
        ] {
            let doc = json!({"userName": id, ext: data});
            users::insert(&conn, id, user_doc(doc), NOW).unwrap();
        }
        let ids = |f: &str| user_ids(&conn, &f.replace("EXT", ext));
        assert_eq!(ids(r#"EXT:badgeNumber eq "forty-two""#), ["u4", "u5"]);
        assert_eq!(
            ids(r#"EXT:badgenumber eq "forty-two""#),
            Vec::<String>::new()
        );
        assert_eq!(ids(r#"EXT:badgeNumber sw "FORTY""#), ["u4", "u5"]);
        assert_eq!(ids("EXT:uid eq 1001"), ["u4", "u6"]);
        assert_eq!(ids(r#"EXT:uid eq "1001""#), ["u5"]);
        assert_eq!(ids("EXT:uid gt 1000"), ["u4", "u6"]);
        assert_eq!(ids("EXT:vip eq true"), ["u4"]);
        assert_eq!(ids("EXT:vip pr"), ["u4"]);
        assert_eq!(
            ids(r#"not (EXT:badgeNumber eq "forty-two")"#),
            ["u1", "u2", "u3", "u6"]
        );
        // The URN is bound as a parameter, never written into the SQL; so is a declared one.
        let sql = users_sql(&format!(r#"{ext}:uid eq 1"#));
        assert!(!sql.sql.contains("acme"), "{}", sql.sql);
        let acme = crate::scim::registry::testing::acme();
        for f in [
            r#"urn:acme:2.0:User:uid eq 1"#,
            r#"urn:acme:2.0:User:keys[type eq "ssh" and value sw "k"]"#,
            r#"urn:acme:2.0:User:keys.value eq "k""#,
        ] {
            let sql = translate(&parse(f).unwrap(), ResourceKind::User, &acme).unwrap();
            assert!(
                !sql.sql.contains("acme") && !sql.sql.contains("keys"),
                "{}",
                sql.sql
            );
        }
        assert!(translate_text(&format!("{ext}:uid co 1"), ResourceKind::User).is_err());
    }

    /// Sub-attributes and value filters of an undeclared attribute: read from its object or
    /// each object of its list (a list held by a sub-attribute is its values), compared by
    /// JSON type; elements that are not objects never match; the paths are bound.
    #[test]
    fn undeclared_sub_attributes_and_value_filters() {
        let conn = populated();
        let ext = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
        for (id, data) in [
            (
                "u4",
                json!({"keys": [{"type": "ssh", "value": "K1"}, {"type": "gpg", "value": 7}],
                       "manager": {"value": "Boss"}}),
            ),
            (
                "u5",
                json!({"keys": ["ssh", {"type": "SSH", "value": ["a", "K2"]}],
                       "manager": [{"value": "boss"}, "x"]}),
            ),
            (
                "u6",
                json!({"keys": {"type": "gpg", "value": "k1"}, "manager": "boss"}),
            ),
        ] {
            let doc = json!({"userName": id, ext: data});
            users::insert(&conn, id, user_doc(doc), NOW).unwrap();
        }
        let ids = |f: &str| user_ids(&conn, &f.replace("EXT", ext));
        assert_eq!(ids(r#"EXT:manager.value eq "BOSS""#), ["u4", "u5"]);
        assert_eq!(ids(r#"EXT:keys.value eq "k1""#), ["u4", "u6"]);
        assert_eq!(ids(r#"EXT:keys.value eq "k2""#), ["u5"]);
        assert_eq!(ids("EXT:keys.value gt 5"), ["u4"]);
        assert_eq!(ids("EXT:keys.type pr"), ["u4", "u5", "u6"]);
        assert_eq!(ids("EXT:manager.value pr"), ["u4", "u5"]);
        assert_eq!(ids(r#"EXT:keys[type eq "ssh"]"#), ["u4", "u5"]);
        assert_eq!(ids(r#"EXT:keys[type eq "ssh" and value eq "k1"]"#), ["u4"]);
        assert_eq!(ids(r#"EXT:keys[type eq "gpg" and value eq 7]"#), ["u4"]);
        assert_eq!(ids(r#"EXT:keys[value sw "k"]"#), ["u4", "u5", "u6"]);
        assert_eq!(ids(r#"EXT:keys[not (type eq "ssh")]"#), ["u4", "u6"]);
        assert_eq!(
            ids(r#"not (EXT:keys[type eq "ssh"])"#),
            ["u1", "u2", "u3", "u6"]
        );
        let sql = users_sql(&format!(r#"{ext}:keys[type eq "ssh"].value eq "k1""#));
        assert!(
            !sql.sql.contains("acme") && !sql.sql.contains("keys"),
            "{}",
            sql.sql
        );
        // An undeclared `emails` is not the core one, whose index would answer for it.
        assert!(user_ids(&conn, &format!(r#"{ext}:emails[value eq "x"]"#)).is_empty());
    }

    /// `sortBy` an undeclared sub-attribute: the attribute's value (a list by its first
    /// element), then its sub-attribute's (a list by its first element).
    #[test]
    fn undeclared_sub_attributes_sort_by_their_stored_value() {
        let conn = populated();
        let ext = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
        for (id, v) in [
            ("u4", json!({"value": "bravo"})),
            ("u5", json!([{"value": ["ALPHA", "zulu"]}, {"value": "a"}])),
            ("u6", json!(["x", {"value": "a"}])),
            ("u7", json!([{"value": 3}])),
        ] {
            let doc = json!({"userName": id, ext: {"manager": v}});
            users::insert(&conn, id, user_doc(doc), NOW).unwrap();
        }
        let by = crate::scim::filter::parse_path(&format!("{ext}:manager.value")).unwrap();
        let filter = users_sql(r#"userName sw "u""#);
        let after = filter.params.len();
        let order =
            sort_order(&by, false, ResourceKind::User, &Registry::builtin(), after).unwrap();
        assert!(!order.sql.contains("acme"), "{}", order.sql);
        let list = ListSql {
            order: Some(order),
            ..window(filter, 0, 100)
        };
        let ids: Vec<_> = users::list(&conn, &list)
            .unwrap()
            .items
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(ids, ["u7", "u5", "u4", "u6"]);
    }

    /// `sortBy` an undeclared extension attribute: by its JSON value as stored (numbers, then
    /// strings folded, then booleans; a list by its first element; an object as missing),
    /// missing last ascending and first descending; the path is bound, never spliced.
    #[test]
    fn undeclared_extension_attributes_sort_by_their_stored_value() {
        let conn = populated();
        let ext = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
        for (id, v) in [
            ("u4", json!("bravo")),
            ("u5", json!(["ALPHA", "zulu"])),
            ("u6", json!(true)),
            ("u7", json!(10)),
            ("u8", json!(2.5)),
            ("u9", json!({"x": 1})),
            ("u10", json!("Charlie")),
            ("u11", json!(false)),
        ] {
            let doc = json!({"userName": id, ext: {"badge": v}});
            users::insert(&conn, id, user_doc(doc), NOW).unwrap();
        }
        let by = crate::scim::filter::parse_path(&format!("{ext}:badge")).unwrap();
        let sorted = |descending: bool, filter: &str| {
            let filter = users_sql(filter);
            let after = filter.params.len();
            let order = sort_order(
                &by,
                descending,
                ResourceKind::User,
                &Registry::builtin(),
                after,
            )
            .unwrap();
            assert!(!order.sql.contains("acme"), "{}", order.sql);
            let list = ListSql {
                order: Some(order),
                ..window(filter, 0, 100)
            };
            let page = users::list(&conn, &list).unwrap();
            page.items.into_iter().map(|u| u.id).collect::<Vec<_>>()
        };
        let ascending = [
            "u8", "u7", "u5", "u4", "u10", "u11", "u6", "u1", "u2", "u3", "u9",
        ];
        assert_eq!(sorted(false, "meta.created pr"), ascending);
        assert_eq!(sorted(false, "userName pr"), ascending);
        // Descending: missing first (in creation order), then the rest reversed.
        let descending = [
            "u1", "u2", "u3", "u9", "u6", "u11", "u10", "u4", "u5", "u7", "u8",
        ];
        assert_eq!(sorted(true, "meta.created pr"), descending);
        // A filter with parameters of its own: the order's are numbered after them.
        assert_eq!(sorted(false, r#"userName sw "u1""#), ["u10", "u11"]);
    }

    #[test]
    fn active_matches() {
        let conn = populated();
        assert_eq!(user_ids(&conn, "active eq false"), ["u3"]);
        assert_eq!(user_ids(&conn, "active eq true"), ["u1", "u2"]);
        // An unassigned `active` (a PATCH can remove it) is neither true nor false.
        users::insert(&conn, "u4", user_doc(json!({"userName": "dee"})), NOW).unwrap();
        assert_eq!(user_ids(&conn, "active eq true"), ["u1", "u2"]);
        assert_eq!(user_ids(&conn, "not (active pr)"), ["u4"]);
    }

    #[test]
    fn composed_user_filters_match() {
        let conn = populated();
        assert_eq!(
            user_ids(
                &conn,
                r#"userName eq "bob" or emails.value eq "emile@example.com""#
            ),
            ["u1", "u3"]
        );
        assert_eq!(user_ids(&conn, r#"not (userName eq "bob")"#), ["u1", "u2"]);
        assert_eq!(
            user_ids(
                &conn,
                r#"emails.value eq "shared@example.com" and not (active eq false)"#
            ),
            ["u2"]
        );
        assert_eq!(
            user_ids(&conn, r#"not (emails.value eq "shared@example.com")"#),
            ["u1"]
        );
    }

    #[test]
    fn display_name_matches_case_insensitively_including_non_ascii() {
        let conn = populated();
        assert_eq!(group_ids(&conn, r#"displayName eq "admins""#), ["g1"]);
        assert_eq!(group_ids(&conn, r#"displayName eq "ÉMIGRÉS""#), ["g3"]);
        assert!(group_ids(&conn, r#"displayName eq "EMIGRES""#).is_empty());
    }

    #[test]
    fn members_value_matches_user_and_group_members() {
        let conn = populated();
        assert_eq!(group_ids(&conn, r#"members.value eq "u1""#), ["g1"]);
        assert_eq!(group_ids(&conn, r#"members.value eq "u3""#), ["g2"]);
        assert_eq!(group_ids(&conn, r#"members.value eq "g1""#), ["g2"]);
        assert_eq!(group_ids(&conn, r#"members[value eq "u2"]"#), ["g1"]);
        // members.value is caseExact=false (RFC 7643 §8.7.1); scimd's ids are lower-case.
        assert_eq!(group_ids(&conn, r#"members.value eq "U1""#), ["g1"]);
        assert!(group_ids(&conn, r#"members.value eq "nobody""#).is_empty());
        assert!(
            group_ids(&conn, r#"members.value eq "g2""#).is_empty(),
            "g2 is nested in nothing"
        );
    }

    #[test]
    fn composed_group_filters_match() {
        let conn = populated();
        assert_eq!(
            group_ids(&conn, r#"members.value eq "u1" or members.value eq "u3""#),
            ["g1", "g2"]
        );
        assert_eq!(
            group_ids(&conn, r#"not (members.value eq "u1")"#),
            ["g2", "g3"]
        );
        assert!(group_ids(&conn, r#"members.value eq "u1" and displayName eq "Staff""#).is_empty());
        assert_eq!(
            group_ids(
                &conn,
                r#"displayName eq "émigrés" or members.value eq "g1""#
            ),
            ["g2", "g3"]
        );
    }

    #[test]
    fn paging_parameters_follow_the_filter_parameters() {
        // `page` appends LIMIT/OFFSET as ?n+1/?n+2 after the filter's own parameters; the
        // members clause's doubled ?1 must not disturb that.
        let conn = populated();
        let f = groups_sql(r#"members.value eq "u1" or members.value eq "g1""#);
        let page = groups::list(&conn, &window(f, 1, 1), true).unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(
            page.items.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["g2"]
        );
    }
}
