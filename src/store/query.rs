//! Filter AST → SQL `WHERE` clause with bound parameters, so lookups run in SQLite on indexed
//! columns and never load a table into memory.
//!
//! Supported today: `eq` on the attributes identity providers look resources up by (Users:
//! `id`, `userName`, `externalId`, `emails.value`, `emails[type eq … and value eq …]`,
//! `active`; Groups: `id`, `displayName`, `externalId`, `members.value`), combined with `and`,
//! `or`, `not`.
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
        // `IS`, not `=`: under `not`, a user without an externalId must match
        // `not (externalId eq "x")`, and `NULL = 'x'` is NULL, not false.
        (_, Some("externalid")) => ("external_id IS {p}", string_value(value, path)?),
        (ResourceKind::User, Some("username")) => {
            ("user_name_fold = {p}", fold(&string_value(value, path)?))
        }
        // `seq IN (…)` rather than a correlated `EXISTS`: SQLite then looks the value up in
        // the index and the user by rowid, instead of scanning every user.
        (ResourceKind::User, Some("emails.value")) => (
            "users.seq IN (SELECT user_seq FROM user_emails WHERE value_fold = {p})",
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
        // The member is a user or a group: each branch resolves the id through its unique
        // index and finds the memberships through the index on that member column, so no
        // table is scanned.
        (ResourceKind::Group, Some("members.value")) => (
            "groups.seq IN (
                 SELECT group_seq FROM group_members
                 WHERE member_user_seq = (SELECT seq FROM users WHERE id = {p})
                 UNION ALL
                 SELECT group_seq FROM group_members
                 WHERE member_group_seq = (SELECT seq FROM groups WHERE id = {p}))",
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

/// The `attr eq value` comparisons joined by `and` in a value filter, or `None` if it holds
/// anything else.
fn conjunction<'a>(filter: &'a Filter, out: &mut Vec<(&'a AttrPath, &'a CompValue)>) -> bool {
    match filter {
        Filter::And(a, b) => conjunction(a, out) && conjunction(b, out),
        Filter::Compare(path, CompareOp::Eq, value)
            if path.urn.is_none() && path.sub_attr.is_none() =>
        {
            out.push((path, value));
            true
        }
        _ => false,
    }
}

/// Value filters on the lookup attributes: `emails[value eq "…"]`, Entra's
/// `emails[type eq "work"].value eq "…"` (parsed as `emails[type eq "work" and value eq "…"]`)
/// and `members[value eq "…"]`.
fn value_path(
    path: &AttrPath,
    inner: &Filter,
    kind: ResourceKind,
    params: &mut Vec<SqlValue>,
) -> Result<String> {
    let refuse = || unsupported(&Filter::ValuePath(path.clone(), Box::new(inner.clone())));
    let mut terms = Vec::new();
    if !conjunction(inner, &mut terms) {
        return Err(refuse());
    }
    let mut value = None;
    let mut email_type = None;
    for (sub, v) in terms {
        let slot = if sub.attr.eq_ignore_ascii_case("value") {
            &mut value
        } else if sub.attr.eq_ignore_ascii_case("type") {
            &mut email_type
        } else {
            return Err(refuse());
        };
        if slot.replace((sub, v)).is_some() {
            return Err(refuse());
        }
    }
    match (kind, core_name(path, kind).as_deref(), value, email_type) {
        (ResourceKind::User, Some("emails"), value, email_type)
            if value.is_some() || email_type.is_some() =>
        {
            let mut conds = Vec::new();
            for (column, term) in [("value_fold", value), ("type_fold", email_type)] {
                if let Some((sub, v)) = term {
                    params.push(SqlValue::Text(fold(&string_value(v, sub)?)));
                    conds.push(format!("{column} = ?{}", params.len()));
                }
            }
            Ok(format!(
                "users.seq IN (SELECT user_seq FROM user_emails WHERE {})",
                conds.join(" AND ")
            ))
        }
        (ResourceKind::Group, Some("members"), Some((_, v)), None) => {
            let flat = AttrPath {
                urn: path.urn.clone(),
                attr: path.attr.clone(),
                sub_attr: Some("value".into()),
            };
            eq(&flat, v, kind, params)
        }
        _ => Err(refuse()),
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
        translate(&filter, kind)
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

    /// The SQL of `filter` with its `?1` renumbered to `?n`, for building expected compositions.
    fn renumbered(filter: &SqlFilter, n: usize) -> String {
        assert!(!filter.sql.contains("?2"), "{}", filter.sql);
        filter.sql.replace("?1", &format!("?{n}"))
    }

    // ---- single lookups ------------------------------------------------------------------

    #[test]
    fn all_matches_everything() {
        assert_eq!(
            SqlFilter::all(),
            SqlFilter {
                sql: "1".into(),
                params: vec![]
            }
        );
    }

    #[test]
    fn user_name_is_folded() {
        let f = users_sql(r#"userName eq "BJensen""#);
        assert_eq!(f.sql, "user_name_fold = ?1");
        assert_eq!(f.params, vec![text("bjensen")]);
    }

    #[test]
    fn user_name_folds_non_ascii() {
        let f = users_sql(r#"userName eq "ÉMILE.Ødegård""#);
        assert_eq!(f.params, vec![text("émile.ødegård")]);
    }

    #[test]
    fn attribute_names_are_case_insensitive() {
        assert_eq!(
            users_sql(r#"USERNAME eq "a""#),
            users_sql(r#"userName eq "a""#)
        );
        assert_eq!(
            users_sql(r#"EMAILS.VALUE eq "a""#),
            users_sql(r#"emails.value eq "a""#)
        );
        assert_eq!(
            groups_sql(r#"DisplayName eq "a""#),
            groups_sql(r#"displayName eq "a""#)
        );
    }

    #[test]
    fn core_urn_prefixed_user_name_is_supported() {
        let f = users_sql(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "BJensen""#);
        assert_eq!(f, users_sql(r#"userName eq "bjensen""#));
        let f = users_sql(r#"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:userName eq "x""#);
        assert_eq!(f.sql, "user_name_fold = ?1");
    }

    #[test]
    fn core_urn_prefixed_group_display_name_is_supported() {
        let f = groups_sql(r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "A""#);
        assert_eq!(f, groups_sql(r#"displayName eq "a""#));
    }

    #[test]
    fn unquoted_value_is_a_string() {
        assert_eq!(
            users_sql("externalId eq jyoung"),
            users_sql(r#"externalId eq "jyoung""#)
        );
    }

    #[test]
    fn external_id_is_exact() {
        let f = users_sql(r#"externalId eq "AbC-1""#);
        assert_eq!(f.sql, "external_id IS ?1");
        assert_eq!(f.params, vec![text("AbC-1")]);
        let f = groups_sql(r#"externalId eq "AbC-1""#);
        assert_eq!(f.sql, "external_id IS ?1");
        assert_eq!(f.params, vec![text("AbC-1")]);
    }

    #[test]
    fn id_is_exact() {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let f = translate_text(r#"id eq "AbC-1""#, kind).unwrap();
            assert_eq!(f.sql, "id = ?1");
            assert_eq!(f.params, vec![text("AbC-1")]);
        }
    }

    #[test]
    fn emails_value_is_folded_and_uses_the_email_table() {
        let f = users_sql(r#"emails.value eq "BJ@Example.COM""#);
        assert!(f.sql.contains("user_emails"), "{}", f.sql);
        assert!(f.sql.contains("value_fold"), "{}", f.sql);
        assert_eq!(f.sql.matches("?1").count(), 1, "{}", f.sql);
        assert_eq!(f.params, vec![text("bj@example.com")]);
    }

    #[test]
    fn emails_value_filter_equals_the_flat_path() {
        let flat = users_sql(r#"emails.value eq "a@x""#);
        assert_eq!(users_sql(r#"emails[value eq "a@x"]"#), flat);
        assert_eq!(users_sql(r#"EMAILS[VALUE eq "A@X"]"#), flat);
    }

    #[test]
    fn active_takes_no_parameter() {
        let f = users_sql("active eq true");
        assert_eq!(f.sql, "active = 1");
        assert!(f.params.is_empty());
        let f = users_sql("active eq false");
        assert_eq!(f.sql, "active = 0");
        assert!(f.params.is_empty());
    }

    #[test]
    fn display_name_is_folded() {
        let f = groups_sql(r#"displayName eq "Ärzte Team""#);
        assert_eq!(f.sql, "display_name_fold = ?1");
        assert_eq!(f.params, vec![text("ärzte team")]);
    }

    #[test]
    fn members_value_uses_its_parameter_twice() {
        let f = groups_sql(r#"members.value eq "U-1""#);
        assert_eq!(f.sql.matches("?1").count(), 2, "{}", f.sql);
        assert!(!f.sql.contains("?2"), "{}", f.sql);
        assert_eq!(f.params, vec![text("U-1")], "member ids are case-exact");
        assert_eq!(groups_sql(r#"members[value eq "U-1"]"#), f);
    }

    // ---- composition and parameter numbering ---------------------------------------------

    #[test]
    fn and_or_not_compose_with_numbered_parameters() {
        let emails = users_sql(r#"emails.value eq "C""#);
        let f =
            users_sql(r#"userName eq "A" and (externalId eq "B" or not (emails.value eq "C"))"#);
        assert_eq!(
            f.sql,
            format!(
                "(user_name_fold = ?1 AND (external_id IS ?2 OR (NOT {})))",
                renumbered(&emails, 3)
            )
        );
        assert_eq!(f.params, vec![text("a"), text("B"), text("c")]);
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = users_sql(r#"id eq "1" or userName eq "b" and externalId eq "c""#);
        assert_eq!(
            f.sql,
            "(id = ?1 OR (user_name_fold = ?2 AND external_id IS ?3))"
        );
        assert_eq!(f.params, vec![text("1"), text("b"), text("c")]);
    }

    #[test]
    fn parameterless_clauses_do_not_shift_numbering() {
        let f = users_sql(r#"active eq true and userName eq "X""#);
        assert_eq!(f.sql, "(active = 1 AND user_name_fold = ?1)");
        assert_eq!(f.params, vec![text("x")]);
    }

    #[test]
    fn members_value_between_other_clauses_keeps_numbering() {
        let members = groups_sql(r#"members.value eq "m""#);
        let f = groups_sql(r#"displayName eq "X" or members.value eq "m" and externalId eq "Z""#);
        assert_eq!(
            f.sql,
            format!(
                "(display_name_fold = ?1 OR ({} AND external_id IS ?3))",
                renumbered(&members, 2)
            )
        );
        assert_eq!(f.sql.matches("?2").count(), 2, "{}", f.sql);
        assert_eq!(f.params, vec![text("x"), text("m"), text("Z")]);
    }

    #[test]
    fn two_members_clauses_each_use_their_own_parameter_twice() {
        let f = groups_sql(r#"members.value eq "a" or members.value eq "b""#);
        assert_eq!(f.sql.matches("?1").count(), 2, "{}", f.sql);
        assert_eq!(f.sql.matches("?2").count(), 2, "{}", f.sql);
        assert!(!f.sql.contains("?3"), "{}", f.sql);
        assert_eq!(f.params, vec![text("a"), text("b")]);
    }

    #[test]
    fn ten_clauses_number_past_nine() {
        let text_filter = (1..=10)
            .map(|i| format!(r#"id eq "{i}""#))
            .collect::<Vec<_>>()
            .join(" or ");
        let f = users_sql(&text_filter);
        assert_eq!(f.params.len(), 10);
        assert!(f.sql.contains("id = ?10"), "{}", f.sql);
        assert_eq!(f.params[9], text("10"));
    }

    // ---- refusals ------------------------------------------------------------------------

    #[test]
    fn operators_other_than_eq_are_refused() {
        for op in ["ne", "co", "sw", "ew", "gt", "ge", "lt", "le"] {
            let m = refused(&format!(r#"userName {op} "a""#), ResourceKind::User);
            assert!(m.contains("not supported"), "{op}: {m}");
            refused(&format!(r#"displayName {op} "a""#), ResourceKind::Group);
        }
        refused("userName pr", ResourceKind::User);
        refused("members pr", ResourceKind::Group);
    }

    #[test]
    fn unsupported_user_attributes_are_refused() {
        for f in [
            r#"displayName eq "a""#,
            r#"name.givenName eq "a""#,
            r#"title eq "a""#,
            r#"emails.type eq "work""#,
            r#"emails eq "a@x""#,
            r#"members.value eq "a""#,
            r#"groups.value eq "a""#,
            r#"meta.created eq "2026-01-01T00:00:00Z""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "a""#,
        ] {
            let m = refused(f, ResourceKind::User);
            assert!(m.contains("not supported"), "{f}: {m}");
        }
    }

    #[test]
    fn unsupported_group_attributes_are_refused() {
        for f in [
            r#"userName eq "a""#,
            r#"emails.value eq "a""#,
            "active eq true",
            r#"members.display eq "a""#,
            r#"members.type eq "User""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#,
        ] {
            refused(f, ResourceKind::Group);
        }
    }

    #[test]
    fn enterprise_urn_attributes_are_refused() {
        for f in [
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "a""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName eq "a""#,
        ] {
            refused(f, ResourceKind::User);
        }
    }

    #[test]
    fn unsupported_value_types_are_refused() {
        for f in [
            "userName eq 5",
            "userName eq null",
            "userName eq true",
            "externalId eq 1",
            "id eq false",
            "emails.value eq null",
            "active eq \"true\"",
            "active eq 1",
            "active eq null",
        ] {
            refused(f, ResourceKind::User);
        }
        for f in [
            "members.value eq 5",
            "displayName eq true",
            "externalId eq null",
        ] {
            refused(f, ResourceKind::Group);
        }
    }

    #[test]
    fn unsupported_value_filters_are_refused() {
        for f in [
            r#"emails[value co "x"]"#,
            r#"emails[value eq "a" or type eq "work"]"#,
            r#"emails[value eq "a" and value eq "b"]"#,
            r#"emails[primary eq true]"#,
            r#"emails[not (value eq "a")]"#,
            r#"addresses[value eq "a"]"#,
        ] {
            refused(f, ResourceKind::User);
        }
        refused(r#"members[type eq "User"]"#, ResourceKind::Group);
    }

    #[test]
    fn typed_email_filters_fold_value_and_type() {
        let entra = users_sql(r#"emails[type eq "Work"].value eq "A@X""#);
        assert_eq!(
            entra.sql,
            "users.seq IN (SELECT user_seq FROM user_emails WHERE value_fold = ?1 AND type_fold = ?2)"
        );
        assert_eq!(entra.params, vec![text("a@x"), text("work")]);
        let either_order = users_sql(r#"emails[value eq "A@X" and type eq "work"]"#);
        assert_eq!(either_order, entra);
        let type_only = users_sql(r#"emails[type eq "home"]"#);
        assert_eq!(
            type_only.sql,
            "users.seq IN (SELECT user_seq FROM user_emails WHERE type_fold = ?1)"
        );
    }

    #[test]
    fn one_unsupported_clause_refuses_the_whole_filter() {
        let m = refused(r#"userName eq "a" and title eq "b""#, ResourceKind::User);
        assert!(m.contains("title"), "{m}");
        refused(
            r#"userName eq "a" or not (userName ne "b")"#,
            ResourceKind::User,
        );
    }

    // ---- against SQLite ------------------------------------------------------------------

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
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
            json!({"userName": "Émile", "externalId": "ext-1",
                   "emails": [{"value": "Emile@Example.COM", "primary": true}]}),
        );
        add_user(
            "u2",
            json!({"userName": "EMILE",
                   "emails": [{"value": "other@example.com"}, {"value": "shared@example.com"}]}),
        );
        add_user(
            "u3",
            json!({"userName": "bob", "externalId": "EXT-1", "active": false,
                   "emails": [{"value": "Shared@Example.com"}]}),
        );
        let add_group = |id: &str, doc: Value, members: &[&str]| {
            let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            let skipped = groups::insert(&conn, id, user_doc(doc), &members, NOW).unwrap();
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

    fn user_ids(conn: &Connection, filter: &str) -> Vec<String> {
        let (total, found) = users::list(conn, &users_sql(filter), 0, 100).unwrap();
        let ids: Vec<String> = found.into_iter().map(|u| u.id).collect();
        assert_eq!(total, ids.len() as u64, "{filter}");
        ids
    }

    fn group_ids(conn: &Connection, filter: &str) -> Vec<String> {
        let (total, found) = groups::list(conn, &groups_sql(filter), 0, 100, true).unwrap();
        let ids: Vec<String> = found.into_iter().map(|g| g.id).collect();
        assert_eq!(total, ids.len() as u64, "{filter}");
        ids
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
    fn active_matches() {
        let conn = populated();
        assert_eq!(user_ids(&conn, "active eq false"), ["u3"]);
        assert_eq!(user_ids(&conn, "active eq true"), ["u1", "u2"]);
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
        assert!(group_ids(&conn, r#"members.value eq "U1""#).is_empty());
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
        let (total, page) = groups::list(&conn, &f, 1, 1, true).unwrap();
        assert_eq!(total, 2);
        assert_eq!(
            page.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["g2"]
        );
    }
}
