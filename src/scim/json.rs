//! Request bodies as JSON, stricter than `serde_json::from_slice`: a key given twice in one
//! object is refused (RFC 8259 leaves which one counts to the parser; the case-variant
//! duplicates `validate` refuses would otherwise have an exact twin that slips through), and
//! nesting is bounded by our own count, so the limit is exactly `MAX_DEPTH` levels.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// Arrays and objects nested deeper than this are refused (the outermost one is level 1).
pub const MAX_DEPTH: usize = 128;

/// Parses `bytes` as one JSON value; `invalidSyntax` naming the problem otherwise.
pub fn parse(bytes: &[u8]) -> Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Our own depth count replaces serde_json's (which stops one level short of 128) and
    // bounds the recursion just the same: nothing deeper than `MAX_DEPTH` is descended into.
    de.disable_recursion_limit();
    let value = Node { depth: 1 }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Error::InvalidSyntax(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// A value at nesting level `depth`.
struct Node {
    depth: usize,
}

impl Node {
    fn enter<E: de::Error>(&self) -> std::result::Result<Node, E> {
        if self.depth > MAX_DEPTH {
            return Err(E::custom(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(Node {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Node {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        // As serde_json's own `Value`: a float it parsed is finite.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Node { depth: inner.depth })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "key \"{key}\" is given more than once in one object"
                )));
            }
            let value = map.next_value_seed(Node { depth: inner.depth })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(text: &str) -> String {
        match parse(text.as_bytes()) {
            Err(Error::InvalidSyntax(m)) => m,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn nested(levels: usize, open: &str, close: &str) -> String {
        format!("{}{}", open.repeat(levels), close.repeat(levels))
    }

    #[test]
    fn values_parse_as_serde_json_does() {
        for text in [
            r#"{"a": [1, -2, 3.5, 1e300, true, null, "x\u00e9"], "b": {"c": {}}, "d": []}"#,
            "18446744073709551615",
            "-9223372036854775808",
            r#""\ud83d\ude00""#,
            "  [ ]  ",
        ] {
            let ours = parse(text.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
        // Key order is kept (preserve_order), as serde_json keeps it.
        let v = parse(br#"{"z": 1, "a": 2}"#).unwrap();
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["z", "a"]
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_by_name_at_any_level() {
        for (text, key) in [
            (r#"{"userName": "a", "userName": "b"}"#, "userName"),
            (
                r#"{"name": {"givenName": "a", "x": 1, "givenName": "a"}}"#,
                "givenName",
            ),
            (r#"{"Operations": [{"op": "add", "op": "remove"}]}"#, "op"),
            (r#"[[[{"k": {"": 1, "": 2}}]]]"#, ""),
        ] {
            let m = refused(text);
            assert!(
                m.contains(&format!("key \"{key}\" is given more than once")),
                "{m}"
            );
        }
        // The same key in different objects, and keys differing in case, are not duplicates
        // here (`validate` decides about case variants of attribute names).
        assert_eq!(
            parse(br#"[{"a": 1}, {"a": 2, "A": 3}]"#).unwrap(),
            json!([{"a": 1}, {"a": 2, "A": 3}])
        );
    }

    #[test]
    fn nesting_is_accepted_to_exactly_max_depth_levels() {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let mut deepest = nested(MAX_DEPTH - 1, open, close);
            deepest.insert_str(open.len() * (MAX_DEPTH - 1), "[]");
            assert!(parse(deepest.as_bytes()).is_ok(), "{open} × {MAX_DEPTH}");
            let mut too_deep = nested(MAX_DEPTH, open, close);
            too_deep.insert_str(open.len() * MAX_DEPTH, "[]");
            let m = refused(&too_deep);
            assert!(m.contains("nested deeper than 128 levels"), "{m}");
        }
        // Far deeper input is refused without descending into it.
        assert!(refused(&nested(100_000, "[", "]")).contains("deeper"));
    }

    #[test]
    fn malformed_input_is_invalid_syntax() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "1e999",
            "\"\\ud800\"",
            "[] []",
            "nul",
        ] {
            refused(text);
        }
        assert!(matches!(parse(b"\"\xff\""), Err(Error::InvalidSyntax(_))));
    }
}
