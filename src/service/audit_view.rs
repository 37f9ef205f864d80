//! An audit entry in words, for the console: what the change amounts to, each attribute by
//! its label ("Department", not the enterprise URN), each value as a person reads it ("Aisha
//! Bello", "aisha@acme.example (work, primary)"), long member lists counted, and a create
//! summarised by its key attributes with the rest set apart. Pure: the entry in, its view
//! out; the console only lays it out. Never changes what is recorded (exports stay raw).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::audit::Entry;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// An entry and its view, as the console receives it.
#[derive(Debug, Serialize)]
pub struct Shown {
    #[serde(flatten)]
    pub entry: Entry,
    pub view: View,
}

#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// The action to show: the derived one (user.suspend) when there is one.
    pub action: String,
    /// A create's one-line summary ("created with 12 attributes").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What changed, first the lines to show.
    pub lines: Vec<Line>,
    /// Lines to show on request (a create's less telling attributes).
    pub more: Vec<Line>,
    /// Members added and removed.
    pub members: Vec<Members>,
    /// Everything else the entry says (an error, names ignored, a token's scope…).
    pub notes: Vec<String>,
}

#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub label: String,
    /// An extension attribute's schema URN (the console shows it on hover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub text: String,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct Members {
    /// "added" or "removed".
    pub verb: &'static str,
    pub count: u64,
    pub items: Vec<Member>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct Member {
    pub id: String,
    pub kind: String,
    pub name: String,
}

pub fn shown(entry: Entry) -> Shown {
    let view = view(&entry);
    Shown { entry, view }
}

/// A create shows at most `KEY_LINES` of these attributes, the first ones of this list it has
/// (shown in the record's order); the rest go under "more", so its row stays a few lines
/// high. The name the entry is filed under (a userName, a group's name) is already in the
/// row, so it comes last.
const KEY_PATHS: &[&str] = &[
    "userName",
    "name",
    "emails",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "displayName",
    "title",
];
const KEY_LINES: usize = 3;

/// The paths of a create's key lines (see `KEY_PATHS`).
fn key_paths<'a>(e: &Entry, changes: &'a [Value]) -> Vec<&'a str> {
    let filed_under = e.resource_name.as_deref().map(Value::from);
    let mut present: Vec<(bool, usize, &str)> = changes
        .iter()
        .filter_map(|c| {
            let path = c.get("path").and_then(Value::as_str)?;
            let shown = filed_under.is_some() && c.get("after") == filed_under.as_ref();
            Some((shown, KEY_PATHS.iter().position(|k| *k == path)?, path))
        })
        .collect();
    present.sort_unstable();
    present
        .into_iter()
        .take(KEY_LINES)
        .map(|(_, _, p)| p)
        .collect()
}

/// Keys of `detail` the view reads itself; any other becomes a note as it is.
const KNOWN: &[&str] = &[
    "changes",
    "membersAdded",
    "membersAddedCount",
    "membersRemoved",
    "membersRemovedCount",
];

pub fn view(e: &Entry) -> View {
    let mut v = View {
        action: e.derived.clone().unwrap_or_else(|| e.action.clone()),
        ..View::default()
    };
    let empty = Map::new();
    let d = e
        .detail
        .as_ref()
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let create = e.action.ends_with(".create");
    let changes = d
        .get("changes")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let keys = if create {
        key_paths(e, changes)
    } else {
        Vec::new()
    };
    for c in changes {
        let path = c.get("path").and_then(Value::as_str).unwrap_or_default();
        let (before, after) = (c.get("before"), c.get("after"));
        let (label, schema) = label(path);
        let after_text = value_text(after.unwrap_or(&Value::Null));
        let text = match (present(before), present(after)) {
            (_, true) if create => after_text,
            (false, true) => format!("set to {after_text}"),
            (true, false) => format!(
                "removed (was {})",
                value_text(before.unwrap_or(&Value::Null))
            ),
            _ => format!(
                "{} → {after_text}",
                value_text(before.unwrap_or(&Value::Null))
            ),
        };
        let line = Line {
            label,
            schema,
            text,
        };
        if create && !keys.contains(&path) {
            v.more.push(line);
        } else {
            v.lines.push(line);
        }
    }
    if create {
        let n = v.lines.len() + v.more.len();
        v.summary = Some(format!(
            "created with {n} attribute{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    for (verb, list, count) in [
        ("added", "membersAdded", "membersAddedCount"),
        ("removed", "membersRemoved", "membersRemovedCount"),
    ] {
        let Some(items) = d.get(list).and_then(Value::as_array) else {
            continue;
        };
        let items: Vec<Member> = items
            .iter()
            .map(|m| {
                let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default();
                let id = s("value").to_string();
                let name = if s("display").is_empty() {
                    id.clone()
                } else {
                    s("display").into()
                };
                Member {
                    id,
                    kind: s("type").to_string(),
                    name,
                }
            })
            .collect();
        let count = d
            .get(count)
            .and_then(Value::as_u64)
            .unwrap_or(items.len() as u64);
        v.members.push(Members { verb, count, items });
    }
    for (k, value) in d {
        if !KNOWN.contains(&k.as_str()) {
            v.notes.push(note(k, value));
        }
    }
    v
}

fn present(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null))
}

/// A detail field other than the changes and members, in words.
fn note(key: &str, v: &Value) -> String {
    let list = |v: &Value| value_text(v);
    match key {
        "error" => list(v),
        "ignored" => format!("ignored: {}", list(v)),
        "ignoredMore" => format!("and {} more names ignored", list(v)),
        "skippedMembers" => format!("skipped unknown member ids: {}", list(v)),
        "unchanged" => {
            "nothing else changed (recorded once a day per actor and set of names)".into()
        }
        "oldSecretValidUntil" => format!("old secret works until {}", list(v)),
        "count" => format!("{} times", list(v)),
        _ => format!("{}: {}", humanize(key).to_lowercase(), list(v)),
    }
}

/// The label of an attribute path, and the schema of a custom extension attribute.
pub fn label(path: &str) -> (String, Option<String>) {
    if let Some(attr) = path
        .strip_prefix(ENTERPRISE)
        .and_then(|p| p.strip_prefix(':'))
    {
        let known = match attr {
            "employeeNumber" => Some("Employee number"),
            "costCenter" => Some("Cost center"),
            "organization" => Some("Organization"),
            "division" => Some("Division"),
            "department" => Some("Department"),
            "manager" => Some("Manager"),
            _ => None,
        };
        // Its schema on hover too: the label says what, the URN where it comes from.
        let label = known.map_or_else(|| humanize(attr), str::to_string);
        return (label, Some(ENTERPRISE.to_string()));
    }
    // A custom extension attribute (`urn:…:badge`): its own name; attribute names never hold a
    // colon, so the last one ends the schema's id.
    let lower = path.to_ascii_lowercase();
    let custom =
        lower.starts_with("urn:") || lower.starts_with("http://") || lower.starts_with("https://");
    if let Some((schema, attr)) = path.rsplit_once(':').filter(|_| custom) {
        return (attr.to_string(), Some(schema.to_string()));
    }
    let known = match path {
        "userName" => "User name",
        "name" => "Name",
        "name.formatted" => "Full name",
        "name.givenName" => "Given name",
        "name.familyName" => "Family name",
        "name.middleName" => "Middle name",
        "name.honorificPrefix" => "Name prefix",
        "name.honorificSuffix" => "Name suffix",
        "displayName" => "Display name",
        "nickName" => "Nickname",
        "profileUrl" => "Profile URL",
        "userType" => "User type",
        "timezone" => "Time zone",
        "ims" => "Instant messaging",
        "x509Certificates" => "Certificates",
        "externalId" => "External id",
        _ => return (humanize(path), None),
    };
    (known.to_string(), None)
}

/// `preferredLanguage` → "Preferred language", `name.givenName` → "Name given name".
fn humanize(path: &str) -> String {
    let mut out = String::new();
    for c in path.chars() {
        if c == '.' || c == '_' {
            out.push(' ');
        } else if c.is_uppercase() {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = out.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => out,
    }
}

/// A value as a person reads it.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_text).collect();
            let sep = if items.iter().any(Value::is_object) {
                "; "
            } else {
                ", "
            };
            parts.join(sep)
        }
        Value::Object(m) => object_text(m),
    }
}

/// A complex value: a name as its full name, an address as its lines, a multi-valued item
/// (an email, a manager) as its value with its type and primary flag, anything else as its
/// sub-attributes.
fn object_text(m: &Map<String, Value>) -> String {
    let s = |k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let joined = |keys: &[&str], sep: &str| {
        keys.iter()
            .filter_map(|k| s(k))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let name = [
        "honorificPrefix",
        "givenName",
        "middleName",
        "familyName",
        "honorificSuffix",
    ];
    let address = [
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
    ];
    let main = if name.iter().any(|k| m.contains_key(*k)) {
        s("formatted").map_or_else(|| joined(&name, " "), str::to_string)
    } else if address.iter().any(|k| m.contains_key(*k)) {
        s("formatted").map_or_else(|| joined(&address, ", "), str::to_string)
    } else if let Some(value) = m.get("value") {
        let shown = s("display").or(s("displayName"));
        match shown {
            Some(d) if Some(d) != value.as_str() => format!("{d} ({})", value_text(value)),
            _ => value_text(value),
        }
    } else if let Some(f) = s("formatted") {
        f.to_string()
    } else {
        return m
            .iter()
            .map(|(k, v)| format!("{}: {}", humanize(k).to_lowercase(), value_text(v)))
            .collect::<Vec<_>>()
            .join(", ");
    };
    let mut qualifiers: Vec<String> = s("type").map(str::to_string).into_iter().collect();
    if m.get("primary") == Some(&Value::Bool(true)) {
        qualifiers.push("primary".into());
    }
    if qualifiers.is_empty() {
        main
    } else {
        format!("{main} ({})", qualifiers.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(action: &str, detail: Value) -> Entry {
        Entry {
            seq: 1,
            at: "2026-12-01T00:00:00.000Z".into(),
            actor_kind: "token".into(),
            actor: "onelogin".into(),
            client: "127.0.0.1".into(),
            user_agent: String::new(),
            action: action.into(),
            derived: crate::store::audit::derived(action, Some(&detail)).map(str::to_string),
            resource_type: Some("User".into()),
            resource_id: Some("u1".into()),
            resource_name: Some("aisha".into()),
            outcome: "success".into(),
            status: 200,
            detail: Some(detail),
        }
    }

    fn line(label: &str, text: &str) -> Line {
        Line {
            label: label.into(),
            schema: None,
            text: text.into(),
        }
    }

    #[test]
    fn labels_core_enterprise_and_custom_attributes() {
        let enterprise = Some(ENTERPRISE.to_string());
        assert_eq!(
            label(&format!("{ENTERPRISE}:department")),
            ("Department".into(), enterprise.clone())
        );
        assert_eq!(
            label(&format!("{ENTERPRISE}:newThing")),
            ("New thing".into(), enterprise)
        );
        assert_eq!(label("name.givenName"), ("Given name".into(), None));
        assert_eq!(
            label("preferredLanguage"),
            ("Preferred language".into(), None)
        );
        assert_eq!(label("phoneNumbers"), ("Phone numbers".into(), None));
        assert_eq!(
            label("urn:acme:scim:2.0:User:badgeNumber"),
            ("badgeNumber".into(), Some("urn:acme:scim:2.0:User".into()))
        );
    }

    #[test]
    fn writes_values_as_a_person_reads_them() {
        assert_eq!(
            value_text(&json!({"givenName": "Aisha", "familyName": "Bello"})),
            "Aisha Bello"
        );
        assert_eq!(
            value_text(
                &json!([{"value": "aisha@acme.example", "type": "work", "primary": true},
                               {"value": "a@home.example"}])
            ),
            "aisha@acme.example (work, primary); a@home.example"
        );
        assert_eq!(
            value_text(&json!({"value": "m1", "displayName": "Maria Chen"})),
            "Maria Chen (m1)"
        );
        assert_eq!(
            value_text(&json!([{"locality": "Lagos", "country": "NG", "type": "work"}])),
            "Lagos, NG (work)"
        );
        assert_eq!(value_text(&json!(false)), "no");
        assert_eq!(value_text(&json!(["a", "b"])), "a, b");
        assert_eq!(
            value_text(&json!({"foo": 1, "barBaz": "x"})),
            "foo: 1, bar baz: x"
        );
    }

    #[test]
    fn a_create_shows_its_key_attributes_and_sets_the_rest_apart() {
        let v = view(&entry(
            "user.create",
            json!({"changes": [
                {"path": "userName", "before": null, "after": "aisha"},
                {"path": "title", "before": null, "after": "Analyst"},
                {"path": "name", "before": null, "after": {"givenName": "Aisha", "familyName": "Bello"}},
                {"path": "active", "before": null, "after": true},
                {"path": "locale", "before": null, "after": "en-NG"},
                {"path": "emails", "before": null, "after": [{"value": "aisha@acme.example"}]},
                {"path": format!("{ENTERPRISE}:department"), "before": null, "after": "Finance"},
            ]}),
        ));
        assert_eq!(v.summary.as_deref(), Some("created with 7 attributes"));
        // The userName is the name the entry is filed under, already in its row.
        assert_eq!(
            v.lines,
            [
                line("Name", "Aisha Bello"),
                line("Emails", "aisha@acme.example"),
                Line {
                    label: "Department".into(),
                    schema: Some(ENTERPRISE.into()),
                    text: "Finance".into()
                }
            ]
        );
        let more: Vec<&str> = v.more.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(more, ["User name", "Title", "Active", "Locale"]);

        // With room to spare, the name it is filed under is shown too.
        let mut group = entry(
            "group.create",
            json!({"changes": [{"path": "displayName", "before": null, "after": "aisha"}]}),
        );
        group.resource_type = Some("Group".into());
        let v = view(&group);
        assert_eq!(v.lines, [line("Display name", "aisha")]);
        assert_eq!(v.summary.as_deref(), Some("created with 1 attribute"));
    }

    #[test]
    fn a_suspension_is_its_own_action_and_changes_read_before_and_after() {
        let v = view(&entry(
            "user.patch",
            json!({"changes": [
                {"path": "active", "before": true, "after": false},
                {"path": "title", "before": "Eng", "after": null},
                {"path": "nickName", "before": null, "after": "Ash"},
            ]}),
        ));
        assert_eq!(v.action, "user.suspend");
        assert_eq!(
            v.lines,
            [
                line("Active", "yes → no"),
                line("Title", "removed (was Eng)"),
                line("Nickname", "set to Ash")
            ]
        );
        assert_eq!(v.summary, None);
    }

    #[test]
    fn counts_members_and_words_the_rest() {
        let added: Vec<Value> = (0..3)
            .map(|n| json!({"value": format!("u{n}"), "type": "User", "display": format!("user{n}")}))
            .collect();
        let v = view(&entry(
            "group.patch",
            json!({"membersAdded": added, "membersAddedCount": 1500,
                   "ignored": ["adreses"], "error": "no such user"}),
        ));
        assert_eq!(v.members.len(), 1);
        assert_eq!((v.members[0].verb, v.members[0].count), ("added", 1500));
        assert_eq!(v.members[0].items[2].name, "user2");
        assert_eq!(v.notes, ["ignored: adreses", "no such user"]);
    }
}
