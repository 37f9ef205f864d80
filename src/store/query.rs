//! Filter AST → SQL `WHERE` clause with bound parameters, so lookups run in SQLite on indexed
//! columns and never load a table into memory.
//!
//! Supported today: `eq` on the attributes identity providers look resources up by (Users:
//! `id`, `userName`, `externalId`, `emails.value`, `emails[value eq …]`, `active`; Groups:
//! `id`, `displayName`, `externalId`, `members.value`), combined with `and`, `or`, `not`.
//! Anything else is refused with `invalidFilter`, which RFC 7644 §3.4.2.2 prescribes for
//! "a filter comparison combination that is not supported".

use rusqlite::types::Value as SqlValue;

use super::fold;
use crate::error::{Error, Result};
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::scim::resource::ResourceKind;
use crate::scim::schema::{GROUP_URN, USER_URN};

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

/// Translates `filter` for resources of `kind`.
pub fn translate(filter: &Filter, kind: ResourceKind) -> Result<SqlFilter> {
    let mut params = Vec::new();
    let sql = node(filter, kind, &mut params)?;
    Ok(SqlFilter { sql, params })
}

fn node(filter: &Filter, kind: ResourceKind, params: &mut Vec<SqlValue>) -> Result<String> {
    Ok(match filter {
        Filter::And(a, b) => format!(
            "({} AND {})",
            node(a, kind, params)?,
            node(b, kind, params)?
        ),
        Filter::Or(a, b) => format!("({} OR {})", node(a, kind, params)?, node(b, kind, params)?),
        Filter::Not(f) => format!("(NOT {})", node(f, kind, params)?),
        Filter::Compare(path, CompareOp::Eq, value) => eq(path, value, kind, params)?,
        Filter::ValuePath(path, inner) => value_path(path, inner, kind, params)?,
        other => return Err(unsupported(other)),
    })
}

fn unsupported(filter: &Filter) -> Error {
    Error::InvalidFilter(format!(
        "the filter \"{filter}\" is not supported: scimd filters with \"eq\" on id, userName, \
         externalId, emails.value and active (Users) or id, displayName, externalId and \
         members.value (Groups)"
    ))
}

/// The attribute name of `path` relative to the resource's core schema, lower-cased, with a
/// core-schema URN prefix removed; `None` for another schema's attribute.
fn core_name(path: &AttrPath, kind: ResourceKind) -> Option<String> {
    let core = match kind {
        ResourceKind::User => USER_URN,
        ResourceKind::Group => GROUP_URN,
    };
    if let Some(urn) = &path.urn
        && !urn.eq_ignore_ascii_case(core)
    {
        return None;
    }
    let mut name = path.attr.to_ascii_lowercase();
    if let Some(sub) = &path.sub_attr {
        name.push('.');
        name.push_str(&sub.to_ascii_lowercase());
    }
    Some(name)
}

fn string_value(value: &CompValue, path: &AttrPath) -> Result<String> {
    match value {
        CompValue::String(s) => Ok(s.clone()),
        _ => Err(Error::InvalidFilter(format!(
            "\"{path}\" is compared with a string, not {value}"
        ))),
    }
}

fn eq(
    path: &AttrPath,
    value: &CompValue,
    kind: ResourceKind,
    params: &mut Vec<SqlValue>,
) -> Result<String> {
    let name = core_name(path, kind);
    let (sql, param) = match (kind, name.as_deref()) {
        (_, Some("id")) => ("id = {p}", string_value(value, path)?),
        (_, Some("externalid")) => ("external_id = {p}", string_value(value, path)?),
        (ResourceKind::User, Some("username")) => {
            ("user_name_fold = {p}", fold(&string_value(value, path)?))
        }
        (ResourceKind::User, Some("emails.value")) => (
            "EXISTS (SELECT 1 FROM user_emails e WHERE e.user_seq = users.seq AND e.value_fold = {p})",
            fold(&string_value(value, path)?),
        ),
        (ResourceKind::User, Some("active")) => match value {
            CompValue::Bool(b) => return Ok(if *b { "active = 1" } else { "active = 0" }.into()),
            _ => {
                return Err(Error::InvalidFilter(
                    "\"active\" is compared with true or false".into(),
                ));
            }
        },
        (ResourceKind::Group, Some("displayname")) => {
            ("display_name_fold = {p}", fold(&string_value(value, path)?))
        }
        (ResourceKind::Group, Some("members.value")) => (
            "EXISTS (SELECT 1 FROM group_members m
                     LEFT JOIN users mu ON mu.seq = m.member_user_seq
                     LEFT JOIN groups mg ON mg.seq = m.member_group_seq
                     WHERE m.group_seq = groups.seq AND (mu.id = {p} OR mg.id = {p}))",
            string_value(value, path)?,
        ),
        _ => {
            return Err(unsupported(&Filter::Compare(
                path.clone(),
                CompareOp::Eq,
                value.clone(),
            )));
        }
    };
    // Numbered placeholders let a clause use its parameter more than once.
    params.push(SqlValue::Text(param));
    Ok(sql.replace("{p}", &format!("?{}", params.len())))
}

/// `emails[value eq "…"]` and `members[value eq "…"]`: the same lookups written as value
/// filters.
fn value_path(
    path: &AttrPath,
    inner: &Filter,
    kind: ResourceKind,
    params: &mut Vec<SqlValue>,
) -> Result<String> {
    if let Filter::Compare(sub, CompareOp::Eq, value) = inner
        && sub.urn.is_none()
        && sub.sub_attr.is_none()
        && sub.attr.eq_ignore_ascii_case("value")
    {
        let flat = AttrPath {
            urn: path.urn.clone(),
            attr: path.attr.clone(),
            sub_attr: Some("value".into()),
        };
        return eq(&flat, value, kind, params);
    }
    Err(unsupported(&Filter::ValuePath(
        path.clone(),
        Box::new(inner.clone()),
    )))
}
