//! The in-memory filter evaluator: decides whether a rendered resource (the JSON
//! `resource::render_user` / `render_group` produce) matches a filter resolved by
//! `scim::resolve`, whose module doc is the specification implemented here.
//!
//! It must agree exactly with the SQL translation in `store/query.rs`: a differential
//! property test runs both on the same resources and filters and compares the results.
//!
//! How a target is read: `id`, `externalId`, `meta` and core attributes sit at the top level
//! under their schema names, extension attributes under their schema URN. A sub-attribute is
//! read from the singular complex value or from every element of a multi-valued one. JSON
//! `null` counts as absent. Inside a value filter `attr[…]` the targets read only the element
//! being tested. Logic is two-valued: a missing attribute makes a comparison false, never
//! unknown, so `not` is plain negation.
//!
//! Pure: no I/O.

use std::cmp::Ordering;

use serde_json::Value;

use super::filter::CompareOp;
use super::ident::{self, fold};
use super::resolve::{Operand, Origin, Resolved, Target};
use super::schema::{Attribute, Kind};
use super::time;

/// Whether `resource`, as rendered for clients, matches `filter`.
pub fn matches(filter: &Resolved, resource: &Value) -> bool {
    eval(
        filter,
        Scope {
            resource,
            element: None,
        },
    )
}

/// What targets are read from: the resource, or one element of a multi-valued attribute
/// while evaluating the filter inside `attr[…]`.
#[derive(Clone, Copy)]
struct Scope<'a> {
    resource: &'a Value,
    element: Option<&'a Value>,
}

fn eval(filter: &Resolved, scope: Scope<'_>) -> bool {
    match filter {
        Resolved::And(a, b) => eval(a, scope) && eval(b, scope),
        Resolved::Or(a, b) => eval(a, scope) || eval(b, scope),
        Resolved::Not(f) => !eval(f, scope),
        Resolved::Present(t) => candidates(t, scope).into_iter().any(present),
        Resolved::Compare(t, CompareOp::Ne, operand) => !candidates(t, scope)
            .into_iter()
            .any(|v| holds(t, CompareOp::Eq, operand, v)),
        Resolved::Compare(t, op, operand) => candidates(t, scope)
            .into_iter()
            .any(|v| holds(t, *op, operand, v)),
        Resolved::ValuePath(t, inner) => attribute(t, scope.resource)
            .map_or(&[][..], elements)
            .iter()
            // Only objects have sub-attributes; a schema makes every element one.
            .filter(|e| !e.is_null() && (e.is_object() || !untyped(t)))
            .any(|e| {
                let scope = Scope {
                    element: Some(e),
                    ..scope
                };
                eval(inner, scope)
            }),
    }
}

/// The value of `t.attr` in the resource, before any sub-attribute is taken.
fn attribute<'a>(t: &Target, resource: &'a Value) -> Option<&'a Value> {
    match &t.origin {
        Origin::Common | Origin::Core => resource.get(&t.attr.name),
        Origin::Extension(urn) | Origin::Undeclared(urn) => {
            resource.get(&urn[..])?.get(&t.attr.name)
        }
    }
}

/// The values of a multi-valued attribute; a lone value stands for a one-element list.
fn elements(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    }
}

/// The values `t` denotes in `scope`, without nulls: those a comparison tests one by one.
fn candidates<'a>(t: &Target, scope: Scope<'a>) -> Vec<&'a Value> {
    let found: Vec<&Value> = match (scope.element, t.sub.as_deref()) {
        // No schema: a list held by a sub-attribute is its values too.
        (Some(e), Some(sub)) if untyped(t) => {
            e.get(&sub.name).map_or(&[][..], elements).iter().collect()
        }
        (Some(e), Some(sub)) => e.get(&sub.name).into_iter().collect(),
        (Some(e), None) => vec![e],
        (None, sub) => match (attribute(t, scope.resource), sub) {
            (None, _) => Vec::new(),
            // No schema says whether it is multi-valued: a list is its values.
            (Some(v), None) if untyped(t) => elements(v).iter().collect(),
            // Its object, or each object of its list; the sub-attribute's list is its values.
            (Some(v), Some(sub)) if untyped(t) => elements(v)
                .iter()
                .filter_map(|e| e.as_object()?.get(&sub.name))
                .flat_map(elements)
                .collect(),
            (Some(v), None) if t.attr.multi_valued => elements(v).iter().collect(),
            (Some(v), None) => vec![v],
            (Some(v), Some(sub)) if t.attr.multi_valued => elements(v)
                .iter()
                .filter_map(|e| e.get(&sub.name))
                .collect(),
            (Some(v), Some(sub)) => v.get(&sub.name).into_iter().collect(),
        },
    };
    found.into_iter().filter(|v| !v.is_null()).collect()
}

/// Whether `t` is an undeclared extension's attribute: no schema, values as stored.
fn untyped(t: &Target) -> bool {
    matches!(t.origin, Origin::Undeclared(_))
}

/// RFC 7644 `pr`: a non-empty value. An array is present if one of its elements is.
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(present),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Whether one value `v` of `t` satisfies `op operand`. `op` is never `ne`.
fn holds(t: &Target, op: CompareOp, operand: &Operand, v: &Value) -> bool {
    if !untyped(t) {
        return satisfies(t.leaf(), op, operand, v);
    }
    // Untyped: a value compares only with an operand of its own JSON type.
    match operand {
        Operand::Str(s) => v
            .as_str()
            .is_some_and(|text| compare_str(op, &fold(text), s)),
        Operand::Num(n) => v.as_f64().is_some_and(|x| ordered(op, x.partial_cmp(n))),
        Operand::Bool(b) => op == CompareOp::Eq && v.as_bool() == Some(*b),
    }
}

/// Whether one value `v` of the attribute `leaf` satisfies `op operand`. `op` is never `ne`.
/// A value of the wrong JSON type never does.
fn satisfies(leaf: &Attribute, op: CompareOp, operand: &Operand, v: &Value) -> bool {
    match (operand, leaf.kind) {
        (Operand::Str(s), Kind::DateTime) => v
            .as_str()
            .and_then(time::parse)
            .is_some_and(|t| compare_str(op, &time::format(t), s)),
        // `resolve` folds the operand exactly in these cases; binary values are case-exact.
        (Operand::Str(s), Kind::String) if ident::is_identifier(leaf) => v
            .as_str()
            .is_some_and(|text| compare_str(op, &ident::key(text), s)),
        (Operand::Str(s), Kind::String | Kind::Reference) if !leaf.case_exact => v
            .as_str()
            .is_some_and(|text| compare_str(op, &fold(text), s)),
        (Operand::Str(s), Kind::String | Kind::Reference | Kind::Binary) => {
            v.as_str().is_some_and(|text| compare_str(op, text, s))
        }
        (Operand::Bool(b), Kind::Boolean) => op == CompareOp::Eq && v.as_bool() == Some(*b),
        (Operand::Num(n), Kind::Integer | Kind::Decimal) => {
            v.as_f64().is_some_and(|x| ordered(op, x.partial_cmp(n)))
        }
        _ => false,
    }
}

/// A string comparison: substrings for `co`/`sw`/`ew`, code point order otherwise.
fn compare_str(op: CompareOp, value: &str, operand: &str) -> bool {
    match op {
        CompareOp::Co => value.contains(operand),
        CompareOp::Sw => value.starts_with(operand),
        CompareOp::Ew => value.ends_with(operand),
        _ => ordered(op, Some(value.cmp(operand))),
    }
}

/// Whether `value.cmp(operand)` satisfies the equality or ordering operator `op`.
fn ordered(op: CompareOp, ord: Option<Ordering>) -> bool {
    use CompareOp::{Eq, Ge, Gt, Le, Lt};
    use Ordering::{Equal, Greater, Less};
    matches!(
        (op, ord),
        (Eq | Ge | Le, Some(Equal)) | (Gt | Ge, Some(Greater)) | (Lt | Le, Some(Less))
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::filter::parse;
    use crate::scim::registry::Registry;
    use crate::scim::resolve::resolve;
    use crate::scim::resource::ResourceKind;
    use crate::scim::schema::ENTERPRISE_USER_URN;

    fn user_matches(f: &str, user: &Value) -> bool {
        let filter = parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        let r = resolve(&filter, ResourceKind::User, &Registry::builtin())
            .unwrap_or_else(|e| panic!("{f}: {e:?}"));
        matches(&r, user)
    }

    fn group_matches(f: &str, group: &Value) -> bool {
        let filter = parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        let r = resolve(&filter, ResourceKind::Group, &Registry::builtin())
            .unwrap_or_else(|e| panic!("{f}: {e:?}"));
        matches(&r, group)
    }

    /// Asserts each filter's outcome on `user`, reporting every mismatch at once.
    fn check(user: &Value, cases: &[(&str, bool)]) {
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(f, want)| user_matches(f, user) != *want)
            .map(|(f, want)| format!("{f}: expected {want}"))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    fn meta(last_modified: &str) -> Value {
        json!({
            "resourceType": "User",
            "created": "2026-01-01T00:00:00.000Z",
            "lastModified": last_modified,
            "location": "https://h/scim/v2/Users/U-1",
            "version": "W/\"3\"",
        })
    }

    /// A full user as `render_user` produces it.
    fn ana() -> Value {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                ENTERPRISE_USER_URN,
            ],
            "id": "U-1",
            "externalId": "Ext-AB",
            "userName": "Ana.Lima",
            "name": {"givenName": "Ana", "familyName": "Lima"},
            "displayName": "ÉMILE Ana",
            "active": true,
            "emails": [
                {"value": "ana@Work.example", "type": "work", "primary": true},
                {"value": "ana@home.x", "type": "home", "primary": false},
            ],
            "x509Certificates": [{"value": "QUJD"}],
            ENTERPRISE_USER_URN: {
                "department": "R&D",
                "manager": {"value": "M-9", "displayName": "Boss"},
            },
            "groups": [
                {"value": "G-1", "$ref": "https://h/scim/v2/Groups/G-1",
                 "display": "Finance", "type": "direct"},
            ],
            "meta": meta("2026-03-10T12:00:00.000Z"),
        })
    }

    /// A bare user: only the always-present attributes.
    fn bare() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "U-2",
            "userName": "bob",
            "meta": meta("2026-01-01T00:00:00.000Z"),
        })
    }

    #[test]
    fn every_operator_on_a_case_insensitive_string() {
        check(
            &ana(),
            &[
                ("userName eq \"ana.lima\"", true),
                ("userName eq \"ANA.LIMA\"", true),
                ("USERNAME eq \"Ana.Lima\"", true),
                ("userName eq \"ana\"", false),
                ("userName ne \"ANA.lima\"", false),
                ("userName ne \"ana\"", true),
                ("userName co \"A.L\"", true),
                ("userName co \"\"", true),
                ("userName co \"x\"", false),
                ("userName sw \"ANA\"", true),
                ("userName sw \"lima\"", false),
                ("userName ew \"LIMA\"", true),
                ("userName ew \"ana\"", false),
                ("userName sw \"\"", true),
                ("userName ew \"\"", true),
                ("userName gt \"ana\"", true),
                ("userName gt \"ana.lima\"", false),
                ("userName ge \"ANA.LIMA\"", true),
                ("userName lt \"B\"", true),
                ("userName lt \"ana.lima\"", false),
                ("userName le \"ana.lima\"", true),
                ("userName le \"ana\"", false),
                (
                    "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"ana.lima\"",
                    true,
                ),
            ],
        );
    }

    #[test]
    fn case_exact_strings_keep_case() {
        check(
            &ana(),
            &[
                ("externalId eq \"Ext-AB\"", true),
                ("externalId eq \"ext-ab\"", false),
                ("externalId ne \"ext-ab\"", true),
                ("externalId co \"t-A\"", true),
                ("externalId co \"T-A\"", false),
                ("externalId sw \"Ext\"", true),
                ("externalId sw \"ext\"", false),
                ("externalId ew \"AB\"", true),
                ("externalId ew \"ab\"", false),
                // "E" < "e" in code point order.
                ("externalId lt \"ext\"", true),
                ("externalId gt \"Ext-AA\"", true),
                ("id eq \"U-1\"", true),
                ("id eq \"u-1\"", false),
                ("meta.resourceType eq \"User\"", true),
                ("meta.resourceType eq \"user\"", false),
            ],
        );
    }

    #[test]
    fn code_point_order_not_locale_order() {
        // "é" (U+00E9) sorts after every ASCII letter.
        check(
            &ana(),
            &[
                ("displayName gt \"z\"", true),
                ("displayName lt \"f\"", false),
                ("name.familyName gt \"LIM\"", true),
                ("name.familyName lt \"limb\"", true),
            ],
        );
    }

    #[test]
    fn non_ascii_case_folding() {
        check(
            &ana(),
            &[
                ("displayName eq \"émile ana\"", true),
                ("displayName eq \"ÉMILE ANA\"", true),
                ("displayName sw \"émile\"", true),
                ("displayName co \"MILE\"", true),
                ("displayName eq \"emile ana\"", false),
            ],
        );
        let mut u = bare();
        u["userName"] = json!("émile");
        assert!(user_matches("userName eq \"ÉMILE\"", &u));
        assert!(!user_matches("userName ne \"ÉMILE\"", &u));
        u["externalId"] = json!("ÉMILE");
        assert!(!user_matches("externalId eq \"émile\"", &u));
        assert!(user_matches("externalId eq \"ÉMILE\"", &u));
    }

    #[test]
    fn full_folding_and_identifier_keys() {
        let mut u = bare();
        u["userName"] = json!(" Stra\u{df}e ");
        u["displayName"] = json!("Jose\u{301} \u{fb01}le");
        check(
            &u,
            &[
                // userName compares by its key: folded and trimmed.
                ("userName eq \"STRASSE\"", true),
                ("userName eq \"strasse  \"", true),
                ("userName ne \"STRASSE\"", false),
                ("userName sw \"STRA\"", true),
                ("userName sw \" stra\"", false),
                ("userName ew \"SSE\"", true),
                ("userName gt \"strass\"", true),
                // Other caseExact=false strings fold (NFKC, full case folding) without trimming.
                ("displayName eq \"jos\u{e9} FILE\"", true),
                ("displayName co \"\u{c9} F\"", true),
                ("displayName eq \" jos\u{e9} file\"", false),
            ],
        );
    }

    #[test]
    fn multi_valued_comparisons_hold_for_any_value() {
        check(
            &ana(),
            &[
                ("emails eq \"ANA@home.x\"", true),
                ("emails co \"work\"", true),
                ("emails co \"nowhere\"", false),
                ("emails.value eq \"ana@work.example\"", true),
                ("emails.value ew \".x\"", true),
                ("emails.type eq \"work\"", true),
                ("emails.type eq \"HOME\"", true),
                ("emails.type eq \"other\"", false),
                ("emails.value sw \"ana@h\"", true),
                ("emails.value gt \"ana@w\"", true),
                ("emails.value lt \"ana@a\"", false),
                ("groups.value eq \"G-1\"", true),
                ("groups eq \"G-2\"", false),
                ("groups eq \"g-1\"", true),
                ("groups.value ne \"G-1\"", false),
                ("groups.value ne \"G-2\"", true),
                ("x509Certificates.value eq \"QUJD\"", true),
                ("x509Certificates eq \"QUJD\"", true),
            ],
        );
    }

    #[test]
    fn binary_values_compare_exactly() {
        // resolve does not fold binary operands; base64 is case-significant.
        check(
            &ana(),
            &[
                ("x509Certificates.value eq \"qujd\"", false),
                ("x509Certificates.value ne \"qujd\"", true),
            ],
        );
    }

    #[test]
    fn ne_is_the_negation_of_eq() {
        check(
            &ana(),
            &[
                ("emails.value ne \"ana@home.x\"", false),
                ("emails ne \"ANA@HOME.X\"", false),
                ("emails.value ne \"z@z\"", true),
                ("emails.type ne \"work\"", false),
                ("emails.type ne \"other\"", true),
                ("emails.primary ne true", false),
                ("emails.primary ne false", false),
                ("title ne \"x\"", true),
            ],
        );
        check(
            &bare(),
            &[
                ("externalId ne \"x\"", true),
                ("title ne \"x\"", true),
                ("emails ne \"x\"", true),
                ("emails.type ne \"work\"", true),
                ("active ne true", true),
                ("active ne false", true),
                ("name.givenName ne \"x\"", true),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department \
                     ne \"x\"",
                    true,
                ),
                ("not (externalId eq \"x\")", true),
                ("externalId eq \"x\"", false),
            ],
        );
    }

    #[test]
    fn missing_attributes_match_no_comparison() {
        check(
            &bare(),
            &[
                ("title eq \"x\"", false),
                ("title co \"\"", false),
                ("title sw \"\"", false),
                ("title gt \"\"", false),
                ("emails co \"\"", false),
                ("name.givenName ew \"\"", false),
                ("active eq true", false),
                ("active eq false", false),
                ("groups.value eq \"G-1\"", false),
                ("groups.value ne \"G-1\"", true),
                ("groups pr", false),
            ],
        );
    }

    #[test]
    fn present() {
        check(
            &ana(),
            &[
                ("userName pr", true),
                ("externalId pr", true),
                ("title pr", false),
                ("name pr", true),
                ("name.givenName pr", true),
                ("name.middleName pr", false),
                ("emails pr", true),
                ("emails.type pr", true),
                ("emails.display pr", false),
                ("emails.primary pr", true),
                ("phoneNumbers pr", false),
                ("active pr", true),
                ("groups pr", true),
                ("meta pr", true),
                ("meta.lastModified pr", true),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr",
                    true,
                ),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager pr",
                    true,
                ),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr",
                    true,
                ),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr",
                    false,
                ),
                ("not (title pr)", true),
                ("not (userName pr)", false),
            ],
        );
        check(
            &bare(),
            &[
                ("externalId pr", false),
                ("name pr", false),
                ("name.givenName pr", false),
                ("emails pr", false),
                ("emails.value pr", false),
                ("active pr", false),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr",
                    false,
                ),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager pr",
                    false,
                ),
            ],
        );
    }

    #[test]
    fn empty_and_null_values_are_not_present() {
        let mut u = bare();
        u["title"] = json!("");
        u["nickName"] = Value::Null;
        u["name"] = json!({});
        u["emails"] = json!([]);
        u["phoneNumbers"] = json!([{}, null]);
        u["ims"] = json!([{"value": "", "type": null}]);
        u["active"] = Value::Null;
        check(
            &u,
            &[
                ("title pr", false),
                ("nickName pr", false),
                ("name pr", false),
                ("emails pr", false),
                ("phoneNumbers pr", false),
                ("ims.value pr", false),
                ("ims.type pr", false),
                ("ims[value pr]", false),
                ("active pr", false),
                ("title eq \"\"", true),
                ("nickName ne \"x\"", true),
                ("ims.type ne \"x\"", true),
                ("active ne false", true),
            ],
        );
        let mut u = bare();
        u["emails"] = json!([{}, {"value": "a@b"}]);
        assert!(user_matches("emails pr", &u));
        assert!(user_matches("emails.value pr", &u));
        assert!(!user_matches("emails.type pr", &u));
    }

    #[test]
    fn booleans() {
        let mut inactive = bare();
        inactive["active"] = json!(false);
        inactive["emails"] = json!([{"value": "b@x", "primary": false}]);
        check(
            &ana(),
            &[
                ("active eq true", true),
                ("active eq false", false),
                ("active ne false", true),
                ("active ne true", false),
                ("emails.primary eq true", true),
                ("emails.primary eq false", true),
                ("emails[primary eq true and value co \"work\"]", true),
                ("emails[primary eq true and type eq \"home\"]", false),
            ],
        );
        check(
            &inactive,
            &[
                ("active eq false", true),
                ("active eq true", false),
                ("not (active eq true)", true),
                ("emails.primary eq true", false),
                ("emails.primary ne true", true),
                ("emails[not (primary eq true)]", true),
            ],
        );
    }

    #[test]
    fn wrong_json_types_never_match() {
        let mut u = bare();
        u["active"] = json!("true");
        u["title"] = json!(7);
        u["emails"] = json!([{"value": ["a@b"], "primary": "true"}]);
        check(
            &u,
            &[
                ("active eq true", false),
                ("active ne true", true),
                ("title eq \"7\"", false),
                ("title co \"\"", false),
                ("emails.value eq \"a@b\"", false),
                ("emails.primary eq true", false),
                ("title pr", true),
            ],
        );
    }

    #[test]
    fn date_times_compare_as_instants() {
        // lastModified is 2026-03-10T12:00:00.000Z.
        check(
            &ana(),
            &[
                ("meta.lastModified gt \"2026-03-10T11:59:59Z\"", true),
                ("meta.lastModified gt \"2026-03-10T12:00:00Z\"", false),
                ("meta.lastModified ge \"2026-03-10T12:00:00Z\"", true),
                ("meta.lastModified eq \"2026-03-10T12:00:00Z\"", true),
                ("meta.lastModified eq \"2026-03-10T14:00:00+02:00\"", true),
                (
                    "meta.lastModified eq \"2026-03-10T07:00:00.000-05:00\"",
                    true,
                ),
                ("meta.lastModified ne \"2026-03-10T14:00:00+02:00\"", false),
                // 13:30+02:00 is 11:30Z: before lastModified although "13" > "12".
                ("meta.lastModified gt \"2026-03-10T13:30:00+02:00\"", true),
                ("meta.lastModified lt \"2026-03-10T13:30:00+02:00\"", false),
                // 11:00-02:00 is 13:00Z: after lastModified although "11" < "12".
                ("meta.lastModified lt \"2026-03-10T11:00:00-02:00\"", true),
                ("meta.lastModified le \"2026-03-10T11:00:00-02:00\"", true),
                ("meta.lastModified gt \"2026-03-10T11:00:00-02:00\"", false),
                ("meta.created lt \"2026-01-01T00:00:00.001Z\"", true),
                ("meta.created gt \"2025-12-31T23:59:59.999Z\"", true),
                ("meta.created eq \"2026-01-01T01:00:00+01:00\"", true),
            ],
        );
    }

    #[test]
    fn stored_date_times_are_normalised_before_comparing() {
        let mut u = bare();
        u["meta"]["lastModified"] = json!("2026-03-10T14:00:00+02:00");
        assert!(user_matches(
            "meta.lastModified eq \"2026-03-10T12:00:00Z\"",
            &u
        ));
        assert!(user_matches(
            "meta.lastModified lt \"2026-03-10T13:00:00Z\"",
            &u
        ));
        u["meta"]["lastModified"] = json!("not a time");
        assert!(!user_matches(
            "meta.lastModified lt \"2999-01-01T00:00:00Z\"",
            &u
        ));
        assert!(!user_matches(
            "meta.lastModified gt \"1970-01-01T00:00:00Z\"",
            &u
        ));
        assert!(user_matches(
            "meta.lastModified ne \"2026-03-10T12:00:00Z\"",
            &u
        ));
    }

    #[test]
    fn value_paths_hold_on_one_element() {
        check(
            &ana(),
            &[
                ("emails[type eq \"work\"]", true),
                ("emails[type eq \"other\"]", false),
                ("emails[type eq \"work\" and value co \"@work\"]", true),
                ("emails[type eq \"WORK\" and value co \"@WORK\"]", true),
                ("emails[type eq \"work\" and value co \"@home\"]", false),
                ("emails[type eq \"home\" and value co \"@work\"]", false),
                ("emails[type eq \"home\" or value co \"@nowhere\"]", true),
                ("emails[not (type eq \"work\")]", true),
                ("emails[type ne \"work\"]", true),
                ("emails[type eq \"work\" and not (primary eq true)]", false),
                ("emails[display pr]", false),
                ("emails[type pr and value pr]", true),
                ("emails[type eq \"work\"].value ew \"example\"", true),
                ("emails[type eq \"home\"].value ew \"example\"", false),
                ("emails[type eq \"work\"] and userName sw \"ana\"", true),
                ("not (emails[type eq \"work\"])", false),
            ],
        );
    }

    #[test]
    fn value_path_conditions_must_hold_on_the_same_element() {
        let mut u = bare();
        u["emails"] = json!([
            {"value": "bob@elsewhere.org", "type": "work"},
            {"value": "bob@x.org", "type": "home"},
        ]);
        check(
            &u,
            &[
                ("emails[type eq \"work\" and value co \"@x\"]", false),
                ("emails[type eq \"home\" and value co \"@x\"]", true),
                // Outside a value path each comparison may hold on a different element.
                ("emails.type eq \"work\" and emails.value co \"@x\"", true),
                ("emails[type eq \"work\"] and emails[value co \"@x\"]", true),
            ],
        );
    }

    #[test]
    fn value_paths_on_missing_or_empty_attributes() {
        let mut u = bare();
        for f in [
            "emails[type eq \"work\"]",
            "emails[not (type eq \"work\")]",
            "emails[type ne \"work\"]",
            "emails[not (value pr)]",
        ] {
            assert!(!user_matches(f, &u), "{f} on no emails");
        }
        u["emails"] = json!([]);
        assert!(!user_matches("emails[not (value pr)]", &u));
        // An element lacking `type` satisfies a negated condition on it.
        u["emails"] = json!([{"value": "a@b"}]);
        assert!(user_matches("emails[not (type eq \"work\")]", &u));
        assert!(user_matches("emails[type ne \"work\"]", &u));
        assert!(user_matches("emails[not (type pr)]", &u));
        assert!(!user_matches("emails[type eq \"work\"]", &u));
    }

    #[test]
    fn enterprise_extension_attributes() {
        let ext = |a: &str| format!("{ENTERPRISE_USER_URN}:{a}");
        check(
            &ana(),
            &[
                (&format!("{} eq \"r&d\"", ext("department")), true),
                (&format!("{} co \"&\"", ext("department")), true),
                (&format!("{} eq \"Sales\"", ext("department")), false),
                (&format!("{} ne \"Sales\"", ext("department")), true),
                (&format!("{} eq \"m-9\"", ext("manager.value")), true),
                (&format!("{} eq \"boss\"", ext("manager.displayName")), true),
                (&format!("{} pr", ext("manager.displayName")), true),
                (&format!("{} eq \"x\"", ext("organization")), false),
                (&format!("{} ne \"x\"", ext("organization")), true),
                (&format!("{} eq \"r&d\"", ext("DEPARTMENT")), true),
            ],
        );
        // The attribute lives under the URN, not at the top level.
        let mut u = bare();
        u["department"] = json!("R&D");
        assert!(!user_matches(
            &format!("{} eq \"R&D\"", ext("department")),
            &u
        ));
        assert!(!user_matches(&format!("{} pr", ext("department")), &u));
    }

    #[test]
    fn logical_operators_and_precedence() {
        check(
            &ana(),
            &[
                ("userName eq \"ana.lima\" and active eq true", true),
                ("userName eq \"ana.lima\" and active eq false", false),
                ("userName eq \"x\" or active eq true", true),
                ("userName eq \"x\" or active eq false", false),
                // `and` binds tighter than `or`.
                ("title pr and active eq false or userName sw \"ana\"", true),
                ("userName sw \"ana\" or title pr and active eq false", true),
                (
                    "(userName sw \"ana\" or title pr) and active eq false",
                    false,
                ),
                ("userName sw \"x\" or title pr and active eq true", false),
                // `not` applies to its parenthesised filter only.
                ("not (active eq false) and userName sw \"ana\"", true),
                ("not (active eq true) or title pr", false),
                ("not (active eq true or title pr)", false),
                ("not (active eq false and title pr)", true),
                ("not (not (active eq true))", true),
            ],
        );
    }

    fn finance() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "G-1",
            "displayName": "Finance",
            "members": [
                {"value": "U-1", "$ref": "https://h/scim/v2/Users/U-1", "type": "User"},
                {"value": "G-2", "$ref": "https://h/scim/v2/Groups/G-2", "type": "Group"},
            ],
            "meta": {
                "resourceType": "Group",
                "created": "2026-01-01T00:00:00.000Z",
                "lastModified": "2026-01-02T00:00:00.000Z",
                "location": "https://h/scim/v2/Groups/G-1",
                "version": "W/\"1\"",
            },
        })
    }

    #[test]
    fn groups_and_members() {
        let g = finance();
        let cases = [
            ("displayName eq \"FINANCE\"", true),
            ("displayName ne \"finance\"", false),
            ("members.value eq \"U-1\"", true),
            // members.value is not caseExact in the schema, so ids compare folded.
            ("members.value eq \"u-1\"", true),
            ("members eq \"G-2\"", true),
            ("members.value eq \"U-3\"", false),
            ("members.value ne \"U-1\"", false),
            ("members.type eq \"Group\"", true),
            ("members.type eq \"user\"", true),
            ("members[type eq \"User\" and value eq \"U-1\"]", true),
            ("members[type eq \"Group\" and value eq \"U-1\"]", false),
            ("members[type eq \"Group\" and value eq \"G-2\"]", true),
            ("members pr", true),
            ("meta.resourceType eq \"Group\"", true),
            ("meta.lastModified gt \"2026-01-01T23:00:00-02:00\"", false),
        ];
        for (f, want) in cases {
            assert_eq!(group_matches(f, &g), want, "{f}");
        }
        let empty = json!({"id": "G-3", "displayName": "Empty", "members": [], "meta": {}});
        assert!(!group_matches("members pr", &empty));
        assert!(group_matches("not (members pr)", &empty));
        assert!(group_matches("members.value ne \"U-1\"", &empty));
        assert!(!group_matches("members[value pr]", &empty));
    }

    /// An undeclared attribute's sub-attributes and value filters read its object or each
    /// object of its list (other elements never match); a list under a sub-attribute is its
    /// values; comparisons are by JSON type, strings folded.
    #[test]
    fn undeclared_sub_attributes_and_value_filters() {
        let user = json!({
            "userName": "okta",
            "urn:x:2.0:User": {
                "keys": ["ssh", {"type": "SSH", "value": ["a", "K1"]}, {"type": "gpg", "value": 7}],
                "manager": {"value": "Ana"},
            },
        });
        check(
            &user,
            &[
                ("urn:x:2.0:User:manager.value eq \"ANA\"", true),
                ("urn:x:2.0:User:manager.value pr", true),
                ("urn:x:2.0:User:manager.id pr", false),
                ("urn:x:2.0:User:keys.value eq \"k1\"", true),
                ("urn:x:2.0:User:keys.value eq 7", true),
                ("urn:x:2.0:User:keys.value eq \"7\"", false),
                ("urn:x:2.0:User:keys.value ne \"a\"", false),
                ("urn:x:2.0:User:keys[type eq \"ssh\"]", true),
                ("urn:x:2.0:User:keys[type eq \"ssh\" and value eq 7]", false),
                ("urn:x:2.0:User:keys[type eq \"gpg\" and value ge 7]", true),
                ("urn:x:2.0:User:keys[not (type pr)]", false),
                ("urn:x:2.0:User:manager[value sw \"an\"]", true),
                ("urn:x:2.0:User:missing[value pr]", false),
            ],
        );
    }
}
