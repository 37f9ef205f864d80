//! A PATCH body, as JSON, applied to a user and to a group: a client error or a result that
//! still passes validation; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::resource::ResourceKind;
use scimd::scim::{patch, validate};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let user = json!({
        "userName": "ana", "name": {"givenName": "Ana"}, "active": true,
        "emails": [{"value": "ana@example.org", "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}
    });
    if let (Ok(ops), Value::Object(doc)) = (patch::parse(body.clone(), ResourceKind::User), user) {
        if let Ok(out) = patch::apply_user(doc, ops) {
            let _ = validate::user(Value::Object(out));
        }
    }
    let group = json!({"displayName": "Ops"});
    if let (Ok(ops), Value::Object(doc)) = (patch::parse(body, ResourceKind::Group), group) {
        if let Ok((out, _members)) = patch::apply_group(doc, ops) {
            let _ = validate::group(Value::Object(out));
        }
    }
});
