//! What changed between two versions of a resource document, for the audit log: one entry per
//! attribute, sub-attribute of a singular complex attribute, or extension attribute
//! (`name.givenName`, `urn:…:User:department`); multi-valued attributes compare as a whole.
//! Pure: no I/O.

use serde_json::{Map, Value, json};

use super::validate::is_urn_key;

/// One changed attribute; `None` is "no value".
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Change {
    pub fn to_json(&self) -> Value {
        json!({"path": self.path, "before": self.before, "after": self.after})
    }
}

/// The changes from `before` to `after`, in a stable order (the keys of `after`, then those
/// only in `before`).
pub fn changes(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn walk(
    prefix: &str,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    out: &mut Vec<Change>,
) {
    let keys = after
        .keys()
        .chain(before.keys().filter(|k| !after.contains_key(*k)));
    for key in keys {
        let (b, a) = (before.get(key), after.get(key));
        if b == a {
            continue;
        }
        // An extension block (`urn:…`, `https://…`) is keyed `<URN>:attr`, a complex value
        // `attr.sub`;
        // one level down only, as SCIM paths go.
        let path = if prefix.is_empty() {
            key.clone()
        } else if is_urn_key(prefix) {
            format!("{prefix}:{key}")
        } else {
            format!("{prefix}.{key}")
        };
        match (b, a) {
            (Some(Value::Object(bm)), Some(Value::Object(am))) if prefix.is_empty() => {
                walk(&path, bm, am, out);
            }
            (Some(Value::Object(bm)), None) if prefix.is_empty() && is_urn_key(key) => {
                walk(&path, bm, &Map::new(), out);
            }
            (None, Some(Value::Object(am))) if prefix.is_empty() && is_urn_key(key) => {
                walk(&path, &Map::new(), am, out);
            }
            _ => out.push(Change {
                path,
                before: b.cloned(),
                after: a.cloned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn reports_attributes_sub_attributes_and_extension_attributes() {
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let before = map(json!({"userName": "ana", "title": "Eng",
            "name": {"givenName": "Ana", "familyName": "Lima"},
            "emails": [{"value": "a@x"}], urn: {"department": "R&D"}}));
        let after = map(json!({"userName": "ana", "active": false,
            "name": {"givenName": "Anabela", "familyName": "Lima"},
            "emails": [{"value": "b@x"}], urn: {"department": "Ops", "costCenter": "7"}}));
        let got: Vec<(String, Option<Value>, Option<Value>)> = changes(&before, &after)
            .into_iter()
            .map(|c| (c.path, c.before, c.after))
            .collect();
        assert_eq!(
            got,
            vec![
                ("active".into(), None, Some(json!(false))),
                (
                    "name.givenName".into(),
                    Some(json!("Ana")),
                    Some(json!("Anabela"))
                ),
                (
                    "emails".into(),
                    Some(json!([{"value": "a@x"}])),
                    Some(json!([{"value": "b@x"}]))
                ),
                (
                    format!("{urn}:department"),
                    Some(json!("R&D")),
                    Some(json!("Ops"))
                ),
                (format!("{urn}:costCenter"), None, Some(json!("7"))),
                ("title".into(), Some(json!("Eng")), None),
            ]
        );
    }

    #[test]
    fn uri_keyed_extension_blocks_are_walked_like_urn_ones() {
        let ext = "https://example.com/scim/ext";
        let before = map(json!({ext: {"a": "1"}}));
        let after = map(json!({"urn:acme:2.0:User": {"b": 2}}));
        let paths: Vec<String> = changes(&before, &after)
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(
            paths,
            ["urn:acme:2.0:User:b".to_string(), format!("{ext}:a")]
        );
    }

    #[test]
    fn equal_documents_have_no_changes_and_creation_lists_everything() {
        let doc = map(json!({"userName": "ana", "name": {"givenName": "Ana"}}));
        assert!(changes(&doc, &doc).is_empty());
        let created = changes(&Map::new(), &doc);
        assert_eq!(created.len(), 2);
        assert_eq!(created[1].after, Some(json!({"givenName": "Ana"})));
    }
}
