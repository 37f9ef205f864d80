//! The console's files (`web/`), embedded in the binary at build time: nothing is loaded from
//! anywhere else. Every console page is the single-page console's `index.html`; so is any other
//! browser path, with status 404 (the console then says "Not found" and links back), but for
//! the machine paths (`/scim…`, `/api…`), whose callers expect JSON.
//! Strict security headers go on these and on the console API's answers.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::Body;

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Web;

/// No inline script or style, nothing from another origin, never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

pub fn security_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The console's own pages, all rendered by `index.html`.
const PAGES: [&str; 12] = [
    "setup", "login", "overview", "connect", "tokens", "users", "groups", "audit", "schemas",
    "webhooks", "admins", "invite",
];

fn is_page(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or_default();
    name.is_empty() || PAGES.contains(&first)
}

/// Paths whose callers are programs expecting JSON (SCIM under any version, the change
/// feed's `/api`): never answered with the console.
fn is_machine_path(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or_default();
    first.eq_ignore_ascii_case("scim") || first.eq_ignore_ascii_case("api")
}

/// The console file at `path`, or `index.html` for a console page (or, with 404, for another
/// browser path); `None` for a machine path. `if_none_match` saves re-sending an unchanged
/// file.
pub fn serve(path: &str, if_none_match: Option<&str>) -> Option<Response<Body>> {
    let name = path.trim_start_matches('/');
    let (file, asset, status) = match Web::get(name) {
        Some(a) if !name.is_empty() => (name, a, StatusCode::OK),
        _ if is_page(name) => ("index.html", Web::get("index.html")?, StatusCode::OK),
        _ if is_machine_path(name) => return None,
        _ => ("index.html", Web::get("index.html")?, StatusCode::NOT_FOUND),
    };
    let etag = format!(
        "\"{}\"",
        asset
            .metadata
            .sha256_hash()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut response = if status == StatusCode::OK && if_none_match == Some(etag.as_str()) {
        let mut r = Response::new(Body::default());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::from(asset.data.into_owned()));
        *r.status_mut() = status;
        r
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file)),
    );
    // Revalidated each time: an upgraded binary serves its own console at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    security_headers(headers);
    Some(response)
}
