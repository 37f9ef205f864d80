//! What a PATCH leaves alone. A PATCH result is checked again before it is stored, but only
//! what its operations changed must meet the schemas in force: a stored extension value the
//! operations did not touch is kept exactly as stored, even if its declaration was since
//! removed, retyped, made readOnly/writeOnly or dropped that attribute; `required` extensions
//! and attributes are demanded only of the extensions the PATCH touches. So declaring or
//! changing a schema never loses stored data and never blocks deprovisioning (PATCH `active`).
//! Core attributes are checked again as a whole: their schema never changes.
//! Pure: no I/O.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::registry::{KeyMatch, Registry};
use super::resource::ResourceKind;
use super::schema::Schema;
use super::validate::{
    MAX_UNDECLARED_BYTES, MAX_UNDECLARED_EXTENSIONS, is_urn_key, undeclared_id_ok,
};

/// The stored values a PATCH result keeps unchecked, and what it changed.
#[derive(Debug, Default)]
pub struct Prior {
    /// Declared extension attributes whose value the operations left as stored.
    pub kept: Vec<(Arc<Schema>, String, Value)>,
    /// Top-level members kept as stored (e.g. a stored `<URN>:<attr>` block that a later
    /// declaration now reads as an attribute).
    pub verbatim: Vec<(String, Value)>,
    /// The URNs of the declared extensions whose data the operations changed.
    pub touched: Vec<String>,
    /// The undeclared bounds: the usual ones, or what was stored if that was more (a
    /// declaration removed may leave more), so a PATCH never has to shrink data it leaves.
    pub max_undeclared: usize,
    pub max_undeclared_bytes: usize,
}

impl Prior {
    /// Whether `urn`'s `required` rules apply to this write.
    pub fn touches(&self, urn: &str) -> bool {
        self.touched.iter().any(|u| u.eq_ignore_ascii_case(urn))
    }
}

/// Splits the PATCH result `doc` of a resource stored as `before` into what must be checked
/// (returned) and what is kept as stored (`Prior`).
pub fn split(
    doc: Map<String, Value>,
    before: &Map<String, Value>,
    registry: &Registry,
    kind: ResourceKind,
) -> (Map<String, Value>, Prior) {
    let (count, bytes) = undeclared_size(before, registry, kind);
    let mut prior = Prior {
        max_undeclared: count.max(MAX_UNDECLARED_EXTENSIONS),
        max_undeclared_bytes: bytes.max(MAX_UNDECLARED_BYTES),
        ..Prior::default()
    };
    // A block the operations removed whole touches its extension.
    // (`patch` renames a block to its declared spelling: compared in any case.)
    let in_doc = |k: &str| doc.keys().any(|d| d.eq_ignore_ascii_case(k));
    for key in before.keys().filter(|k| is_urn_key(k) && !in_doc(k)) {
        if let KeyMatch::Extension { schema, attr: None } = registry.match_key(kind, key) {
            prior.touched.push(schema.id.clone());
        }
    }
    let mut check = Map::new();
    for (key, value) in doc {
        if !is_urn_key(&key) {
            check.insert(key, value);
            continue;
        }
        let stored = before.get(&key).or_else(|| {
            before
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                .map(|(_, v)| v)
        });
        match registry.match_key(kind, &key) {
            // Stored before undeclared ids had a syntax: kept while untouched.
            KeyMatch::Undeclared if stored == Some(&value) && !undeclared_id_ok(&key) => {
                prior.verbatim.push((key, value));
            }
            KeyMatch::Core { .. } | KeyMatch::Undeclared => {
                check.insert(key, value);
            }
            KeyMatch::Extension { schema, attr: None } => match (value, stored) {
                (Value::Object(block), Some(Value::Object(was))) => {
                    // `patch` renames a touched block's attributes to their declared
                    // spelling: a value kept under a new spelling is kept, not changed.
                    let in_block = |k: &str| block.keys().any(|b| b.eq_ignore_ascii_case(k));
                    let removed = was.keys().any(|k| !in_block(k));
                    let mut changed = Map::new();
                    for (name, v) in block {
                        if member(was, &name) == Some(&v) {
                            prior.kept.push((Arc::clone(schema), name, v));
                        } else {
                            changed.insert(name, v);
                        }
                    }
                    if removed || !changed.is_empty() {
                        prior.touched.push(schema.id.clone());
                    }
                    if !changed.is_empty() {
                        check.insert(key, Value::Object(changed));
                    }
                }
                (value, _) => {
                    prior.touched.push(schema.id.clone());
                    check.insert(key, value);
                }
            },
            KeyMatch::Extension { schema, .. } if stored != Some(&value) => {
                prior.touched.push(schema.id.clone());
                check.insert(key, value);
            }
            KeyMatch::Foreign if stored != Some(&value) => {
                check.insert(key, value);
            }
            KeyMatch::Extension { .. } | KeyMatch::Foreign => prior.verbatim.push((key, value)),
        }
    }
    (check, prior)
}

/// `obj`'s member `name`, in any letter case (the exact spelling first).
fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// How many undeclared blocks `doc` holds and their size, counted as `validate` counts them.
pub(crate) fn undeclared_size(
    doc: &Map<String, Value>,
    registry: &Registry,
    kind: ResourceKind,
) -> (usize, usize) {
    doc.iter()
        .filter(|(k, _)| is_urn_key(k) && registry.match_key(kind, k) == KeyMatch::Undeclared)
        .fold((0, 0), |(n, bytes), (k, v)| {
            let len = serde_json::to_string(v).map_or(0, |t| t.len());
            (n + 1, bytes + k.len() + len)
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::registry::testing::{ACME, acme};
    use crate::scim::validate;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn untouched_values_are_kept_and_changed_ones_checked() {
        let before = obj(json!({"userName": "a", ACME: {"uid": "abc", "serial": "s", "x": 1}}));
        let mut doc = before.clone();
        doc.insert("active".into(), json!(false));
        let (check, prior) = split(doc.clone(), &before, &acme(), ResourceKind::User);
        assert_eq!(check, obj(json!({"userName": "a", "active": false})));
        assert_eq!(prior.kept.len(), 3);
        assert!(prior.touched.is_empty());
        let out = validate::patched_user(doc, &before, &acme()).unwrap();
        assert_eq!(out.doc[ACME], before[ACME]);

        let mut doc = before.clone();
        doc[ACME]["uid"] = json!("x");
        assert!(validate::patched_user(doc, &before, &acme()).is_err());
        let mut doc = before.clone();
        doc[ACME]["uid"] = json!(7);
        let out = validate::patched_user(doc, &before, &acme()).unwrap();
        assert_eq!(out.doc[ACME], json!({"uid": 7, "serial": "s", "x": 1}));
    }

    #[test]
    fn a_block_removed_whole_or_changed_touches_its_extension() {
        let before = obj(json!({"userName": "a", ACME: {"uid": 1}}));
        let doc = obj(json!({"userName": "a"}));
        let (_, prior) = split(doc, &before, &acme(), ResourceKind::User);
        assert!(prior.touches(ACME));
        let doc = obj(json!({"userName": "a", ACME: {"uid": 1, "vip": true}}));
        let (check, prior) = split(doc, &before, &acme(), ResourceKind::User);
        assert!(prior.touches(ACME));
        assert_eq!(check[ACME], json!({"vip": true}));
    }

    #[test]
    fn stored_undeclared_data_over_the_bounds_is_tolerated_not_grown() {
        let big = "x".repeat(MAX_UNDECLARED_BYTES);
        let before = obj(json!({"userName": "a", "urn:old:ext:User": {"a": big}}));
        let mut doc = before.clone();
        doc.insert("active".into(), json!(true));
        assert!(validate::patched_user(doc.clone(), &before, &acme()).is_ok());
        doc.insert("urn:new:ext:User".into(), json!({"b": "y"}));
        assert!(validate::patched_user(doc, &before, &acme()).is_err());
    }
}
