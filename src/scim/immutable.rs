//! `mutability: immutable` of extension attributes (RFC 7643 §7: "MAY be defined at resource
//! creation (e.g., POST) or at record replacement via a request (e.g., a PUT). The attribute
//! SHALL NOT be updated"; RFC 7644 §3.5.1: the values a PUT sends for one already set "MUST
//! match"). Checked on the document a PUT or PATCH would store, against the stored one.
//! Pure: no I/O.

use serde_json::{Map, Value};

use super::registry::Registry;
use super::resource::ResourceKind;
use super::schema::Mutability;
use crate::error::{Error, Result};

/// How the new document was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A PUT: an immutable attribute it leaves out is not asserted, so the stored value stays
    /// (an IdP whose template lacks the attribute must not fail every push).
    Replace,
    /// A PATCH: the document is the stored one with the operations applied, so a missing value
    /// was removed.
    Patch,
}

/// Checks that `after` keeps every immutable extension attribute `before` has a value for
/// (`400 mutability` naming it otherwise); a PUT that leaves one out gets the stored value
/// back. One not set yet may be set, once.
pub fn check(
    before: &Map<String, Value>,
    after: &mut Map<String, Value>,
    kind: ResourceKind,
    registry: &Registry,
    write: Write,
) -> Result<()> {
    for ext in registry.extensions(kind) {
        let urn = ext.schema.id.as_str();
        // Names in any letter case (RFC 7643 §2.1): a block or value stored under another
        // spelling (kept from before the declaration) is still the immutable one.
        let Some(Value::Object(stored)) = member(before, urn) else {
            continue;
        };
        for attr in &ext.schema.attributes {
            if attr.mutability != Mutability::Immutable {
                continue;
            }
            let Some(old) = member(stored, &attr.name) else {
                continue;
            };
            let new = member(after, urn)
                .and_then(Value::as_object)
                .and_then(|b| member(b, &attr.name));
            match (new, write) {
                (Some(new), _) if new == old => {}
                (None, Write::Replace) => {
                    let key = after
                        .keys()
                        .find(|k| k.eq_ignore_ascii_case(urn))
                        .cloned()
                        .unwrap_or_else(|| urn.to_string());
                    let block = after
                        .entry(key)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(block) = block {
                        block.insert(attr.name.clone(), old.clone());
                    }
                }
                _ => {
                    return Err(Error::Mutability(format!(
                        "\"{urn}:{}\" is immutable: it is set and cannot change",
                        attr.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `obj`'s member `name`, in any letter case (the exact spelling first).
fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::registry::Declared;
    use crate::scim::schema::{Attribute, Schema};
    use serde_json::json;
    use std::sync::Arc;

    const EXT: &str = "urn:hr:2.0:User";

    fn registry() -> Registry {
        Registry::new(vec![Declared {
            schema: Schema {
                id: EXT.into(),
                name: "HR".into(),
                description: String::new(),
                attributes: vec![
                    Arc::new(Attribute::string("id", "").mutability(Mutability::Immutable)),
                    Arc::new(Attribute::string("nick", "")),
                ],
            },
            resource: ResourceKind::User,
            required: false,
        }])
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn run(before: Value, after: Value, write: Write) -> Result<Value> {
        let mut after = map(after);
        check(
            &map(before),
            &mut after,
            ResourceKind::User,
            &registry(),
            write,
        )?;
        Ok(Value::Object(after))
    }

    #[test]
    fn set_once_then_kept() {
        let set = json!({EXT: {"id": "E1", "nick": "a"}});
        for write in [Write::Replace, Write::Patch] {
            // Not set before: may be set.
            assert!(run(json!({}), set.clone(), write).is_ok());
            assert!(run(json!({EXT: {"nick": "a"}}), set.clone(), write).is_ok());
            // The same value again, other attributes changing: fine.
            let same = json!({EXT: {"id": "E1", "nick": "b"}});
            assert_eq!(run(set.clone(), same.clone(), write).unwrap(), same);
            // Another value: refused, naming it.
            match run(set.clone(), json!({EXT: {"id": "E2"}}), write) {
                Err(Error::Mutability(m)) => assert!(m.contains(&format!("{EXT}:id")), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn left_out_is_kept_by_put_and_refused_by_patch() {
        let set = json!({EXT: {"id": "E1", "nick": "a"}});
        assert_eq!(
            run(set.clone(), json!({"userName": "x"}), Write::Replace).unwrap(),
            json!({"userName": "x", EXT: {"id": "E1"}})
        );
        assert_eq!(
            run(set.clone(), json!({EXT: {"nick": "b"}}), Write::Replace).unwrap(),
            json!({EXT: {"nick": "b", "id": "E1"}})
        );
        assert!(matches!(
            run(set, json!({EXT: {"nick": "a"}}), Write::Patch),
            Err(Error::Mutability(_))
        ));
    }

    /// Review #2: names are compared in any letter case, so another spelling of the block
    /// or of the attribute cannot change (or drop) a stored immutable value.
    #[test]
    fn names_in_any_letter_case_are_the_immutable_attribute() {
        let stored = json!({EXT: {"id": "E1"}});
        let upper = EXT.to_uppercase();
        for write in [Write::Replace, Write::Patch] {
            for after in [
                json!({EXT: {"ID": "E2"}}),
                json!({upper.clone(): {"id": "E2"}}),
            ] {
                assert!(
                    matches!(
                        run(stored.clone(), after.clone(), write),
                        Err(Error::Mutability(_))
                    ),
                    "{after}"
                );
            }
            // Stored under another spelling (from before the declaration).
            for before in [
                json!({EXT: {"ID": "E1"}}),
                json!({upper.clone(): {"id": "E1"}}),
            ] {
                assert!(
                    matches!(
                        run(before.clone(), json!({EXT: {"id": "E2"}}), write),
                        Err(Error::Mutability(_))
                    ),
                    "{before}"
                );
                assert!(run(before, json!({EXT: {"id": "E1"}}), write).is_ok());
            }
        }
        // A PUT leaving it out gets it back once, under the declared name.
        assert_eq!(
            run(
                json!({EXT: {"ID": "E1"}}),
                json!({EXT: {"nick": "b"}}),
                Write::Replace
            )
            .unwrap(),
            json!({EXT: {"nick": "b", "id": "E1"}})
        );
    }

    #[test]
    fn undeclared_blocks_are_not_checked() {
        let before = json!({"urn:other:2.0:User": {"id": "E1"}});
        assert!(run(before, json!({}), Write::Patch).is_ok());
    }
}
