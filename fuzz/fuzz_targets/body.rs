//! POST/PUT bodies: normalising a user or a group (IdP dialects, string booleans, SCIM 1.1
//! shapes, …) never panics, whatever the JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::validate;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = validate::user(body.clone());
    let _ = validate::group(body.clone());
    let _ = validate::member_ids(body);
});
