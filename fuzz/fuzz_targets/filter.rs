//! Filter text → AST → schema binding → SQL and the in-memory evaluator: errors are fine,
//! panics are not; anything accepted must print back to the same AST.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::resource::ResourceKind;
use scimd::scim::{eval, filter, resolve};
use scimd::store::query;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ast) = filter::parse(text) else {
        return;
    };
    // Printing escapes control characters, so it may outgrow the length limit; below it, the
    // text must parse back to the same AST.
    let printed = ast.to_string();
    if printed.len() <= filter::MAX_FILTER_LEN {
        assert_eq!(filter::parse(&printed).as_ref(), Ok(&ast), "{printed}");
    }
    let doc = serde_json::json!({
        "userName": "ana", "displayName": "Ana", "active": true,
        "emails": [{"value": "ana@example.org", "type": "work", "primary": true}],
        "meta": {"lastModified": "2026-01-01T00:00:00Z"}
    });
    for kind in [ResourceKind::User, ResourceKind::Group] {
        if let Ok(bound) = resolve::resolve(&ast, kind) {
            let _ = eval::matches(&bound, &doc);
        }
        let _ = query::translate(&ast, kind);
        let _ = query::translate_list(&ast, kind);
    }
});
