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
        let Some(Value::Object(stored)) = before.get(urn) else {
            continue;
        };
        for attr in &ext.schema.attributes {
            if attr.mutability != Mutability::Immutable {
                continue;
            }
            let Some(old) = stored.get(&attr.name) else {
                continue;
            };
            let new = after
                .get(urn)
                .and_then(Value::as_object)
                .and_then(|b| b.get(&attr.name));
            match (new, write) {
                (Some(new), _) if new == old => {}
                (None, Write::Replace) => {
                    let block = after
                        .entry(urn.to_string())
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

    #[test]
    fn undeclared_blocks_are_not_checked() {
        let before = json!({"urn:other:2.0:User": {"id": "E1"}});
        assert!(run(before, json!({}), Write::Patch).is_ok());
    }
}
