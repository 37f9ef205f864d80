//! Attribute paths (`attributes=`, `sortBy=`) and PATCH paths: parse and bind to the schema
//! without panicking, whatever the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::resource::ResourceKind;
use scimd::scim::{filter, resolve};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = filter::parse_path(text) {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let _ = resolve::bind(&path, kind);
            let _ = resolve::resolve_sort(&path, kind);
        }
    }
    if let Ok(path) = filter::parse_patch_path(text) {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let _ = resolve::bind(&path.attr, kind);
        }
    }
});
