//! The console's JSON API under `/admin/api`: sign-in, tokens, the directory (a user or group
//! with the definitions of the extensions it carries), the audit log, settings, schemas and
//! webhooks, and administrators (`admins`: the team, one's own password, sessions and second
//! factor).
//! A world apart from SCIM: only a session cookie opens it (never a bearer token), and every
//! state-changing request must carry the session's CSRF token in `X-CSRF-Token`. Sign-in and
//! setup, which have no session yet, must be JSON sent from the console's own origin.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tracing::warn;

mod admins;

use super::{App, Body, json_response, read_json, read_json_within};
use crate::error::{Error, Result};
use crate::scim::list::ListQuery;
use crate::scim::resource;
use crate::service::audit::{Actor, ActorKind};
use crate::service::{admin, administrators, audit, groups, schemas, tokens};
use crate::store::audit::Query;
use crate::webhooks;

#[path = "admin_api_people.rs"]
mod people;

pub const PREFIX: &str = "/admin/api";
/// The session cookie's name over plain HTTP; over HTTPS it is `__Host-` prefixed, which
/// browsers accept only with `Secure`, `Path=/` and no `Domain`, so no other host or plain-HTTP
/// page can set or shadow it. The console's scripts never read it (it is `HttpOnly`).
const COOKIE: &str = "scimd_session";
const SECURE_COOKIE: &str = "__Host-scimd_session";
/// The device cookie: a browser that signed in as an administrator (`admin::SignInFacts`),
/// named and flagged like the session cookie.
const DEVICE_COOKIE: &str = "scimd_device";
const SECURE_DEVICE_COOKIE: &str = "__Host-scimd_device";

fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE } else { COOKIE }
}

fn device_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_DEVICE_COOKIE
    } else {
        DEVICE_COOKIE
    }
}

/// Sign-in and setup bodies are a few short strings: anything larger is refused (413) before
/// it is read further, and nothing large is held while a request waits to hash.
const SIGN_IN_MAX_BODY: usize = 4 * 1024;

/// The largest page of the console's lists, and of one audit export.
const MAX_PAGE: u32 = 1000;
const MAX_EXPORT: u32 = 100_000;

/// The link that creates the first administrator. The code travels in the fragment, so it
/// never reaches a server log or a `Referer`.
pub fn setup_link(origin: &str, code: &str) -> String {
    format!("{}/setup#code={code}", origin.trim_end_matches('/'))
}

fn cookie_secret<B>(req: &Request<B>, secure: bool) -> Option<String> {
    cookie(req, cookie_name(secure))
}

fn cookie<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_string())
        })
}

pub(super) fn ok(body: Value) -> Response<Body> {
    let mut r = json_response(StatusCode::OK, &body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn set_cookie(r: &mut Response<Body>, value: &str, max_age: u64, secure: bool) {
    add_cookie(r, cookie_name(secure), value, max_age, secure);
}

fn add_cookie(r: &mut Response<Body>, name: &str, value: &str, max_age: u64, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn session_body(s: &admin::NewSession) -> Value {
    json!({"username": s.username, "csrf": s.csrf})
}

/// Sign-in and setup come before any session: they must be JSON (a cross-site form cannot
/// send that without a CORS preflight, which scimd never grants) and, when the browser says
/// where it comes from, come from an origin scimd knows is its own.
fn check_same_origin<B>(app: &App, req: &Request<B>) -> Result<()> {
    // The media type exactly: `application/jsonx` is not JSON.
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Error::Forbidden(
            "send JSON (Content-Type: application/json)".into(),
        ));
    }
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        let local = req
            .extensions()
            .get::<super::LocalAddr>()
            .map_or(app.local_addr, |l| l.0);
        if !origin_allowed(
            app.config.public_url.as_deref(),
            app.tls.is_some(),
            local,
            origin,
        ) {
            return Err(Error::Forbidden(format!(
                "sign-in and setup must come from {}scimd's own address or a loopback name at \
                 its port; this page is at {origin} (open the console at one of those, or set \
                 --public-url to this address)",
                match &app.config.public_url {
                    Some(url) => format!("{}, ", origin_of(url)),
                    None => String::new(),
                }
            )));
        }
    }
    Ok(())
}

/// Whether the browser is on HTTPS for this request, which names the cookies and marks them
/// `Secure`: as the `--public-url` says, unless the request names a non-loopback address as
/// its host (a browser on the LAN reaching the listen address), which is as its connection
/// is (built-in TLS, or a trusted proxy's `X-Forwarded-Proto`): a browser drops a `Secure`
/// cookie that plain HTTP sets on a LAN address. Loopback keeps the public URL's scheme: a
/// proxy on this machine sends that, and browsers take `Secure` cookies from loopback (an SSH
/// tunnel).
fn https_here<B>(app: &App, req: &Request<B>) -> bool {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
    };
    let forwarded = |name| app.config.trust_proxy.then(|| header(name)).flatten();
    let host = forwarded("x-forwarded-host").or_else(|| header("host"));
    if let Some(url) = &app.config.public_url
        && !host.is_some_and(names_a_network_address)
    {
        return url.starts_with("https://");
    }
    match forwarded("x-forwarded-proto") {
        Some(proto) => proto.eq_ignore_ascii_case("https"),
        None => app.tls.is_some(),
    }
}

/// Whether a `Host` value is an IP address other than loopback (`192.168.1.5:8080`,
/// `[2001:db8::5]`).
fn names_a_network_address(host: &str) -> bool {
    let bare = match host.rsplit_once(':') {
        Some((h, port)) if !port.contains(']') && !h.is_empty() && !h.ends_with(':') => h,
        _ => host,
    };
    bare.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| !ip.is_loopback())
}

/// `scheme://host[:port]` of a URL, without its path.
fn origin_of(url: &str) -> &str {
    let host_at = url.find("://").map_or(0, |i| i + 3);
    match url[host_at..].find('/') {
        Some(slash) => &url[..host_at + slash],
        None => url,
    }
}

/// Whether a browser's `Origin` is scimd's own: the `--public-url` origin when set, and
/// (with it or without) the address the client reached or a loopback name, at scimd's port
/// and scheme: so an SSH tunnel to loopback, or the LAN address, still signs in when the
/// public URL is a proxy's or a tunnel's. Never a name the `Host` header merely claims (DNS
/// rebinding: a page on a name the attacker points at a LAN console is same-origin to the
/// browser).
fn origin_allowed(public_url: Option<&str>, tls: bool, local: SocketAddr, origin: &str) -> bool {
    if public_url.is_some_and(|url| origin.eq_ignore_ascii_case(origin_of(url))) {
        return true;
    }
    let (scheme, default_port) = if tls {
        ("https://", 443)
    } else {
        ("http://", 80)
    };
    let Some(authority) = origin
        .get(..scheme.len())
        .filter(|s| s.eq_ignore_ascii_case(scheme))
        .map(|_| &origin[scheme.len()..])
    else {
        return false;
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()),
        _ => (authority, Some(default_port)),
    };
    if port != Some(local.port()) {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        // Canonical: a dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`.
        Ok(ip) => ip.to_canonical() == local.ip().to_canonical() || ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

fn text<'a>(body: &'a Value, key: &str) -> Result<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::InvalidValue(format!("\"{key}\" is required")))
}

/// What a sign-in, setup or invitation request sends.
struct Credentials {
    username: String,
    password: String,
    /// The setup or invitation code (required there), or the second factor of a sign-in
    /// (optional).
    code: Option<String>,
}

/// Reads a sign-in, setup or invitation body (at most `SIGN_IN_MAX_BODY`) into
/// `Credentials`; the parsed JSON is dropped here.
async fn read_credentials(
    app: &App,
    req: Request<Incoming>,
    code_required: bool,
) -> Result<Credentials> {
    let body = read_json_within(app, req, SIGN_IN_MAX_BODY).await?;
    Ok(Credentials {
        username: text(&body, "username")?.to_string(),
        password: text(&body, "password")?.to_string(),
        code: if code_required {
            Some(text(&body, "code")?.to_string())
        } else {
            body.get("code")
                .and_then(Value::as_str)
                .filter(|c| !c.trim().is_empty())
                .map(str::to_string)
        },
    })
}

/// Records an export in the audit log with the parameters named in `keys` that selected it;
/// called once the request is known good, before the first byte goes out.
/// `about` names what was exported, ahead of the parameters (a group's id).
async fn audited_export(
    app: &App,
    actor: &Actor,
    action: &'static str,
    about: &[(&str, &str)],
    pairs: &[(String, String)],
    keys: &[&'static str],
) -> Result<()> {
    let mut selected = about.to_vec();
    selected.extend(keys.iter().filter_map(|k| param(pairs, k).map(|v| (*k, v))));
    audit::record_export(&app.store, actor, action, &selected).await
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn number(pairs: &[(String, String)], name: &str, default: u32) -> Result<u32> {
    match param(pairs, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| Error::InvalidValue(format!("\"{name}\" must be a number"))),
    }
}

/// Answers a request from `client` under `/admin/api`. `actor` starts anonymous and becomes
/// the signed-in administrator.
pub async fn handle(
    app: &App,
    req: Request<Incoming>,
    client: IpAddr,
    actor: &mut Actor,
) -> Result<Response<Body>> {
    let path = req.uri().path()[PREFIX.len()..]
        .trim_end_matches('/')
        .to_string();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let pairs: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let secure = https_here(app, &req);

    // Before a session.
    match (&method, segs.as_slice()) {
        (&Method::GET, ["state"]) => {
            return Ok(ok(
                json!({"needsSetup": admin::needs_setup(&app.store).await?}),
            ));
        }
        (&Method::POST, [step @ ("setup" | "login" | "invite")]) => {
            check_same_origin(app, &req)?;
            let device = cookie(&req, device_cookie_name(secure));
            let step = *step;
            let Credentials {
                username,
                password,
                code,
            } = read_credentials(app, req, step != "login").await?;
            let (limits, hashing) = (&app.limits.sign_in, &app.hashing);
            let s = match (step, code) {
                ("setup", Some(code)) => {
                    // Counted only while setup is possible: once it is done, every attempt is
                    // refused anyway, and counting those would only fill the table.
                    if admin::needs_setup(&app.store).await? {
                        limits.setup_attempt(client)?;
                    }
                    admin::setup(&app.store, hashing, &code, &username, &password, actor).await?
                }
                ("invite", Some(code)) => {
                    let store = &app.store;
                    let accepted = administrators::accept_invite(
                        store, hashing, &code, &username, &password, actor,
                    )
                    .await;
                    // Only a wrong code is counted (`Forbidden`, exactly): a current one is
                    // always accepted, whoever shares the address.
                    if let Err(Error::Forbidden(_)) = &accepted {
                        limits.invite_failed(client)?;
                    }
                    accepted?
                }
                (_, code) => {
                    let facts = admin::sign_in_facts(&app.store, &username, device.clone()).await?;
                    let attempt = limits.attempt(client, &username, facts)?;
                    let known_good = attempt.known_good();
                    let credentials = admin::SignInAttempt {
                        username: &username,
                        password: &password,
                        code: code.as_deref(),
                        device,
                        known_good,
                    };
                    let signed_in =
                        admin::login(&app.store, hashing, &app.rejections, credentials, actor)
                            .await?;
                    match signed_in {
                        admin::SignedIn::Session(s) => {
                            limits.succeeded(attempt);
                            s
                        }
                        // The attempt stays counted until the code is right.
                        admin::SignedIn::NeedsCode => return Ok(ok(json!({"needsCode": true}))),
                    }
                }
            };
            let mut r = ok(session_body(&s));
            set_cookie(&mut r, &s.secret, admin::SESSION_LIFETIME.as_secs(), secure);
            let device_name = device_cookie_name(secure);
            let lifetime = admin::DEVICE_LIFETIME.as_secs();
            add_cookie(&mut r, device_name, &s.device, lifetime, secure);
            return Ok(r);
        }
        _ => {}
    }

    let unauthenticated = || Error::Unauthorized("sign in to the console first".into());
    let secret = cookie_secret(&req, secure).ok_or_else(unauthenticated)?;
    let session = admin::session(&app.store, &secret)
        .await?
        .ok_or_else(unauthenticated)?;
    actor.kind = ActorKind::Admin;
    actor.name = session.username.clone();
    if method != Method::GET && method != Method::HEAD {
        let sent = req
            .headers()
            .get("x-csrf-token")
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default();
        if !bool::from(sent.ct_eq(session.csrf.as_bytes())) {
            return Err(Error::Forbidden(
                "missing or wrong X-CSRF-Token: reload the console".into(),
            ));
        }
    }

    if let Err(e) = administrators::seen(&app.store, &secret).await {
        warn!(error = %e, "could not note a console session as seen");
    }

    match (&method, segs.as_slice()) {
        (_, ["admins" | "invitations", ..]) => {
            let me = admins::Me {
                seq: session.admin_seq,
                username: &session.username,
                secret: &secret,
            };
            admins::handle(app, req, &segs, client, me, actor).await
        }
        (&Method::GET, ["session"]) => Ok(ok(json!({
            "username": session.username, "csrf": session.csrf, "expires": session.expires,
        }))),
        (&Method::POST, ["logout"]) => {
            admin::logout(&app.store, &secret, actor).await?;
            let mut r = ok(json!({}));
            set_cookie(&mut r, "", 0, secure);
            Ok(r)
        }
        (&Method::GET, ["tokens"]) => {
            let store = app.store.clone();
            let list = blocking(move || tokens::listed(&store)).await?;
            Ok(ok(json!({"tokens": list, "now": crate::scim::time::now()})))
        }
        (&Method::POST, ["tokens"]) => {
            let body = read_json(app, req).await?;
            let name = text(&body, "name")?.to_string();
            // Absent: write, what an identity provider needs (and what the console made
            // before tokens had scopes).
            let scope = match body.get("scope") {
                None | Some(Value::Null) => tokens::Scope::Write,
                Some(v) => v
                    .as_str()
                    .ok_or_else(|| {
                        Error::InvalidValue("\"scope\" is \"read\" or \"write\"".into())
                    })?
                    .parse()?,
            };
            let (store, who) = (app.store.clone(), actor.clone());
            let n = name.clone();
            let token = blocking(move || tokens::create_as(&store, &n, scope, &who)).await?;
            Ok(ok(json!({"name": name, "scope": scope, "token": token})))
        }
        (&Method::POST, ["tokens", name, "regenerate"]) => {
            let body = read_json(app, req).await?;
            let overlap = overlap(&body)?;
            let (store, who, n) = (app.store.clone(), actor.clone(), name.to_string());
            let token = blocking(move || tokens::regenerate(&store, &n, overlap, &who)).await?;
            Ok(ok(json!({"name": name, "token": token})))
        }
        (&Method::PUT, ["tokens", name, "expectation"]) => {
            let body = read_json(app, req).await?;
            super::admin_api_overview::expect(app, name, &body, actor).await
        }
        (&Method::GET, ["overview"]) => super::admin_api_overview::show(app).await,
        (&Method::DELETE, ["tokens", name]) => {
            let (store, who, n) = (app.store.clone(), actor.clone(), name.to_string());
            blocking(move || tokens::revoke_as(&store, &n, &who)).await?;
            Ok(ok(json!({})))
        }
        (&Method::GET, ["webhooks"]) => {
            let store = app.store.clone();
            let list = blocking(move || webhooks::list(&store)).await?;
            Ok(ok(json!({
                "webhooks": list.iter().map(webhook_json).collect::<Vec<_>>(),
                "types": webhooks::TYPES,
            })))
        }
        (&Method::POST, ["webhooks"]) => {
            let body = read_json(app, req).await?;
            let name = text(&body, "name")?.trim().to_string();
            let url = text(&body, "url")?.trim().to_string();
            let types = event_types(&body)?;
            let format = match body.get("format") {
                None | Some(Value::Null) => "standard".to_string(),
                Some(Value::String(f)) => f.clone(),
                Some(_) => {
                    return Err(Error::InvalidValue(
                        "\"format\" is \"standard\" or \"chat\"".into(),
                    ));
                }
            };
            let allow_http = flag(&body, "allowHttp")?;
            // The service's own refusal names the command line's flag; here it is a box.
            let plain = url
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
            if plain && !allow_http {
                return Err(Error::InvalidValue(
                    "plain http is refused: use an https:// URL, or tick \"Allow plain http \
                     (LAN receivers)\" for a receiver on your own network"
                        .into(),
                ));
            }
            let (store, who) = (app.store.clone(), actor.clone());
            let (endpoint, secret) = blocking(move || {
                let add = webhooks::Add {
                    name: &name,
                    url: &url,
                    types: &types,
                    format: &format,
                    allow_http,
                };
                webhooks::add(&store, &add, &who)
            })
            .await?;
            app.webhooks.changed();
            // It starts at the head of the events: nothing waits for it yet.
            let status = webhooks::Status {
                endpoint,
                pending: 0,
                oldest_pending_at: None,
                pruned: None,
            };
            Ok(ok(
                json!({"webhook": webhook_json(&status), "secret": secret}),
            ))
        }
        (&Method::GET, ["webhooks", name]) => {
            let limit = number(&pairs, "limit", 50)?.clamp(1, WEBHOOK_LOG_MAX);
            let (store, n) = (app.store.clone(), name.to_string());
            let (status, logged) = blocking(move || webhooks::log(&store, &n, limit)).await?;
            Ok(ok(json!({
                "webhook": webhook_json(&status),
                "attempts": logged.iter().map(attempt_json).collect::<Vec<_>>(),
                "limit": limit,
                "max": WEBHOOK_LOG_MAX,
            })))
        }
        (&Method::POST, ["webhooks", name, "test"]) => {
            let sent =
                webhooks::test_audited(&app.store, app.webhooks.client(), name, actor).await?;
            Ok(ok(sent_json(&sent)))
        }
        (&Method::POST, ["webhooks", name, "resend"]) => {
            let body = read_json(app, req).await?;
            let event = match body.get("event") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(t)) => t.parse().ok(),
                _ => None,
            }
            .filter(|seq| *seq > 0)
            .ok_or_else(|| Error::InvalidValue("\"event\" is the event's id".into()))?;
            let client = app.webhooks.client();
            let sent = webhooks::resend_audited(&app.store, client, name, event, actor).await?;
            Ok(ok(sent_json(&sent)))
        }
        (&Method::POST, ["webhooks", name, "rotate"]) => {
            let body = read_json(app, req).await?;
            let overlap = overlap(&body)?;
            let (store, who, n) = (app.store.clone(), actor.clone(), name.to_string());
            let secret = blocking(move || webhooks::rotate(&store, &n, overlap, &who)).await?;
            app.webhooks.changed();
            Ok(ok(json!({"name": name, "secret": secret})))
        }
        (&Method::POST, ["webhooks", name, "resume"]) => {
            let (store, who, n) = (app.store.clone(), actor.clone(), name.to_string());
            let gap = blocking(move || webhooks::resume(&store, &n, &who)).await?;
            app.webhooks.changed();
            // Events retention pruned before delivery were skipped by this resume.
            Ok(ok(json!({"skipped": gap.map(|(first, last)| {
                json!({"first": first.to_string(), "last": last.to_string()})
            })})))
        }
        (&Method::DELETE, ["webhooks", name]) => {
            let (store, who, n) = (app.store.clone(), actor.clone(), name.to_string());
            blocking(move || webhooks::remove(&store, &n, &who)).await?;
            app.webhooks.changed();
            Ok(ok(json!({})))
        }
        (&Method::GET, ["users"]) => Ok(ok(people::list(app, &req, &pairs).await?)),
        (&Method::GET, ["users", "export"]) => {
            let response = people::export_users(app, &req, &pairs)?;
            audited_export(
                app,
                actor,
                "users.export",
                &[],
                &pairs,
                &["q", "state", "format"],
            )
            .await?;
            Ok(response)
        }
        (&Method::GET, ["users", id]) => Ok(ok(people::user(app, &req, id).await?)),
        (&Method::GET, ["groups"]) => {
            let q = directory_query(&pairs, &["displayName", "externalId"])?;
            let listed = groups::list(&app.store, &q, false).await?;
            let ids: Vec<String> = listed.items.iter().map(|g| g.id.clone()).collect();
            let counts = groups::member_counts(&app.store, ids).await?;
            let base = console_base(app, &req);
            let registry = app.store.registry();
            let items: Vec<Value> = listed
                .items
                .into_iter()
                .zip(counts)
                .map(|(g, n)| {
                    let mut v = resource::render_group(g, &base, &registry);
                    if let Some(o) = v.as_object_mut() {
                        o.remove("members");
                        o.insert("memberCount".into(), json!(n));
                    }
                    v
                })
                .collect();
            Ok(ok(json!({"total": listed.total, "items": items})))
        }
        (&Method::GET, ["groups", id]) => Ok(ok(people::group(app, &req, id, &pairs).await?)),
        (&Method::GET, ["groups", id, "members", "export"]) => {
            let response = people::export_members(app, id, &pairs).await?;
            let about = [("group", *id)];
            let keys = ["q", "format"];
            audited_export(app, actor, "group.members_export", &about, &pairs, &keys).await?;
            Ok(response)
        }
        (&Method::GET, ["audit"]) => {
            let q = audit_query(&pairs, MAX_PAGE, 50)?;
            let limit = q.limit;
            let entries = audit::search(&app.store, q).await?;
            let next = (entries.len() as u32 == limit)
                .then(|| entries.last().map(|e| e.entry.seq))
                .flatten();
            Ok(ok(json!({"entries": entries, "next": next})))
        }
        (&Method::GET, ["audit", "suggestions"]) => {
            let field = param(&pairs, "field").unwrap_or_default().to_string();
            let prefix = param(&pairs, "prefix").unwrap_or_default().to_string();
            let values = audit::suggestions(&app.store, &field, prefix).await?;
            Ok(ok(json!({"values": values})))
        }
        (&Method::GET, ["audit", "export"]) => {
            let q = audit_query(&pairs, MAX_EXPORT, MAX_EXPORT)?;
            let format = Format::parse(param(&pairs, "format").unwrap_or("jsonl"))?;
            let keys = [
                "quick", "actor", "resource", "action", "outcome", "since", "until", "format",
            ];
            audited_export(app, actor, "audit.export", &[], &pairs, &keys).await?;
            Ok(export(app, q, format))
        }
        (&Method::GET, ["settings"]) => Ok(ok(audit::retention(&app.store).await?.to_json())),
        (&Method::PUT, ["settings"]) => {
            let body = read_json(app, req).await?;
            // A misspelt field would otherwise be "no limit" without a word.
            let known = ["maxAgeDays", "maxRows", "maxMegabytes"];
            match body.as_object() {
                Some(o) => {
                    if let Some(k) = o.keys().find(|k| !known.contains(&k.as_str())) {
                        return Err(Error::InvalidValue(format!(
                            "unknown setting \"{k}\": retention takes maxAgeDays, maxRows \
                             and maxMegabytes"
                        )));
                    }
                }
                None => {
                    return Err(Error::InvalidValue(
                        "send a JSON object: {\"maxAgeDays\": …, \"maxRows\": …, \
                         \"maxMegabytes\": …}"
                            .into(),
                    ));
                }
            }
            let r = audit::Retention::from_json(&body)?;
            audit::set_retention(&app.store, r.clone(), actor).await?;
            Ok(ok(r.to_json()))
        }
        (&Method::GET, ["schemas"]) => {
            let store = app.store.clone();
            let list = blocking(move || schemas::list(&store)).await?;
            Ok(ok(json!({"schemas": list})))
        }
        (&Method::POST, ["schemas"]) => {
            let body = read_json(app, req).await?;
            let resource = match body.get("resourceType") {
                None | Some(Value::Null) => None,
                Some(Value::String(name)) => Some(schemas::resource_named(name)?),
                Some(_) => {
                    return Err(Error::InvalidValue(
                        "\"resourceType\" is \"User\" or \"Group\"".into(),
                    ));
                }
            };
            let required = match body.get("required") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(Error::InvalidValue(
                        "\"required\" must be true or false".into(),
                    ));
                }
            };
            // `indexed`: the attribute paths to index; absent keeps the current list.
            let indexed: Option<Vec<String>> = match body.get("indexed") {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect(),
                ),
                Some(_) => {
                    return Err(Error::InvalidValue(
                        "\"indexed\" is a list of attribute names".into(),
                    ));
                }
            };
            let (store, who) = (app.store.clone(), actor.clone());
            let (d, replaced) = blocking(move || match body.get("definition") {
                Some(Value::String(text)) => schemas::declare_text_indexed(
                    &store,
                    text,
                    resource,
                    required,
                    indexed.as_deref(),
                    &who,
                ),
                Some(doc @ Value::Object(_)) => schemas::declare_indexed(
                    &store,
                    doc,
                    resource,
                    required,
                    indexed.as_deref(),
                    &who,
                ),
                _ => Err(Error::InvalidValue(
                    "\"definition\" is the schema document: a JSON object, or its text".into(),
                )),
            })
            .await?;
            Ok(ok(json!({
                "schema": crate::scim::declare::document(&d.schema),
                "resourceType": d.resource.name(),
                "required": d.required,
                "replaced": replaced,
            })))
        }
        (&Method::DELETE, ["schemas"]) => {
            let urn = param(&pairs, "urn")
                .ok_or_else(|| Error::InvalidValue("name the schema: ?urn=…".into()))?
                .to_string();
            let (store, who) = (app.store.clone(), actor.clone());
            blocking(move || schemas::remove(&store, &urn, &who)).await?;
            Ok(ok(json!({})))
        }
        (&Method::GET, ["schemas", "seen"]) => {
            let kind = schemas::resource_named(param(&pairs, "resourceType").unwrap_or("User"))?;
            let seen = schemas::seen(&app.store, kind).await?;
            Ok(ok(json!({"resourceType": kind.name(), "seen": seen})))
        }
        (&Method::GET, ["schemas", "draft"]) => {
            let kind = schemas::resource_named(param(&pairs, "resourceType").unwrap_or("User"))?;
            let urn = param(&pairs, "urn")
                .ok_or_else(|| Error::InvalidValue("name the extension: ?urn=…".into()))?
                .to_string();
            let definition = schemas::draft(&app.store, kind, urn).await?;
            Ok(ok(
                json!({"resourceType": kind.name(), "definition": definition}),
            ))
        }
        // The SCIM base URL to give an identity provider and what keeps it from using it;
        // POST makes a real request to it (`connection`).
        (&Method::GET, ["check-connection"]) => {
            let (base, _) = super::connection::target(app, &super::origin(app, &req));
            Ok(ok(json!({
                "baseUrl": base,
                "warnings": super::connection::warnings(&base),
            })))
        }
        (&Method::POST, ["check-connection"]) => {
            let (base, target) = super::connection::target(app, &super::origin(app, &req));
            Ok(ok(super::connection::check(
                &app.check_marks,
                &base,
                &target,
            )
            .await))
        }
        _ => Err(Error::NotFound(format!(
            "no console endpoint {method} {PREFIX}{path}"
        ))),
    }
}

/// How long a replaced secret keeps working: `overlap` is none, 1h or 24h (absent: none).
fn overlap(body: &Value) -> Result<Duration> {
    match body
        .get("overlap")
        .and_then(Value::as_str)
        .unwrap_or("none")
    {
        "none" => Ok(Duration::ZERO),
        "1h" => Ok(Duration::from_secs(3600)),
        "24h" => Ok(Duration::from_secs(24 * 3600)),
        other => Err(Error::InvalidValue(format!(
            "overlap is none, 1h or 24h, not \"{other}\""
        ))),
    }
}

/// A boolean member; absent is false.
fn flag(body: &Value, key: &str) -> Result<bool> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::InvalidValue(format!(
            "\"{key}\" must be true or false"
        ))),
    }
}

/// A webhook's `events`: absent or null is every type (the service's empty list); a list
/// must name at least one.
fn event_types(body: &Value) -> Result<Vec<String>> {
    match body.get("events") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            if items.is_empty() {
                return Err(Error::InvalidValue("choose at least one event type".into()));
            }
            Ok(items
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect())
        }
        Some(_) => Err(Error::InvalidValue(
            "\"events\" is a list of event types".into(),
        )),
    }
}

/// Attempts the delivery log shows at most (the store keeps `ATTEMPTS_KEPT` per endpoint).
const WEBHOOK_LOG_MAX: u32 = crate::store::webhooks::ATTEMPTS_KEPT as u32;

/// An endpoint as the console shows it. Its URL only as `webhooks::shown_url` masks it: a
/// chat URL's path is the credential to post into the channel.
pub(super) fn webhook_json(s: &webhooks::Status) -> Value {
    let e = &s.endpoint;
    json!({
        "name": e.name,
        "url": webhooks::shown_url(&e.url, &e.format),
        "format": e.format,
        "events": e.types,
        "allowHttp": e.allow_http,
        "state": e.state,
        "failedAttempts": e.head_attempts,
        "nextAttemptAt": e.next_attempt_at,
        "failingSince": e.failing_since,
        "lastAttemptAt": e.last_attempt_at,
        "lastStatus": e.last_status,
        "lastError": e.last_error,
        "lastSuccessAt": e.last_success_at,
        "deliveredUpTo": e.cursor.to_string(),
        "pending": s.pending,
        "pendingCapped": s.pending >= webhooks::LAG_CAP,
        "oldestPendingAt": s.oldest_pending_at,
        "prunedBeforeDelivery": s.pruned.map(|(first, last)| {
            json!({"first": first.to_string(), "last": last.to_string(),
                   "reason": webhooks::gap_reason(first, last)})
        }),
        "created": e.created,
    })
}

fn attempt_json(l: &crate::store::webhooks::Logged) -> Value {
    let a = &l.attempt;
    json!({
        "event": a.event_seq.map(|seq| seq.to_string()),
        "type": l.event_type,
        "attempt": a.attempt,
        "trigger": a.trigger,
        "at": a.at,
        "durationMs": a.duration_ms,
        "status": a.status,
        "error": a.error,
    })
}

/// What came of a test or a resend.
fn sent_json(sent: &webhooks::Sent) -> Value {
    json!({
        "delivered": sent.error.is_none(),
        "status": sent.status,
        "error": sent.error,
        "durationMs": u64::try_from(sent.duration.as_millis()).unwrap_or(u64::MAX),
    })
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn console_base<B>(app: &App, req: &Request<B>) -> String {
    format!("{}{}", super::origin(app, req), super::router::SCIM_PREFIX)
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}

/// A page of the directory: `q` searches the given attributes (`co`, through the filter
/// engine), `sortBy`/`sortOrder` sort, `startIndex`/`count` page.
fn directory_query(pairs: &[(String, String)], searched: &[&str]) -> Result<ListQuery> {
    let mut scim: Vec<(String, String)> = Vec::new();
    if let Some(q) = param(pairs, "q") {
        let quoted = serde_json::to_string(q).map_err(Error::internal)?;
        let filter = searched
            .iter()
            .map(|a| format!("{a} co {quoted}"))
            .collect::<Vec<_>>()
            .join(" or ");
        scim.push(("filter".into(), filter));
    }
    for key in ["sortBy", "sortOrder", "startIndex"] {
        if let Some(v) = param(pairs, key) {
            scim.push((key.into(), v.into()));
        }
    }
    scim.push((
        "count".into(),
        number(pairs, "count", 50)?.min(MAX_PAGE).to_string(),
    ));
    ListQuery::from_pairs(scim.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn audit_query(pairs: &[(String, String)], max: u32, default: u32) -> Result<Query> {
    let s = |k: &str| param(pairs, k).map(str::to_string);
    let before = match param(pairs, "before") {
        Some(v) => Some(
            v.parse()
                .map_err(|_| Error::InvalidValue("\"before\" must be a number".into()))?,
        ),
        None => None,
    };
    let mut q = Query {
        actor: s("actor"),
        action: s("action"),
        outcome: s("outcome"),
        resource: s("resource"),
        since: s("since"),
        until: s("until"),
        before,
        limit: number(pairs, "limit", default)?.clamp(1, max),
        ..Default::default()
    };
    if let Some(quick) = param(pairs, "quick") {
        audit::Quick::parse(quick)?.apply(&mut q, ::time::OffsetDateTime::now_utc());
    }
    Ok(q)
}

/// A user's or group's history, each entry with its view.
async fn history(app: &App, id: &str) -> Result<Vec<crate::service::audit_view::Shown>> {
    let q = Query {
        resource: Some(id.to_string()),
        limit: 100,
        ..Default::default()
    };
    let entries = audit::list(&app.store, q).await?;
    Ok(entries
        .into_iter()
        .map(crate::service::audit_view::shown)
        .collect())
}

/// The formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Jsonl,
}

const CSV_HEADER: &str = "seq,at,actorKind,actor,client,userAgent,action,resourceType,resourceId,\
    resourceName,outcome,status,detail\n";

impl Format {
    fn parse(text: &str) -> Result<Format> {
        match text {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            other => Err(Error::InvalidValue(format!(
                "format is csv or jsonl, not \"{other}\""
            ))),
        }
    }

    /// Appends one entry as a line.
    fn write(self, e: &crate::store::audit::Entry, out: &mut String) -> Result<()> {
        match self {
            Format::Jsonl => {
                out.push_str(&serde_json::to_string(e).map_err(Error::internal)?);
            }
            Format::Csv => {
                let detail = e.detail.as_ref().map(Value::to_string).unwrap_or_default();
                let fields = [
                    e.seq.to_string(),
                    e.at.clone(),
                    e.actor_kind.clone(),
                    e.actor.clone(),
                    e.client.clone(),
                    e.user_agent.clone(),
                    e.action.clone(),
                    e.resource_type.clone().unwrap_or_default(),
                    e.resource_id.clone().unwrap_or_default(),
                    e.resource_name.clone().unwrap_or_default(),
                    e.outcome.clone(),
                    e.status.to_string(),
                    detail,
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
            }
        }
        out.push('\n');
        Ok(())
    }
}

/// Entries read per page of an export: a page of the largest entries is a few MB, and only
/// a page and a few chunks are ever held, however long the export.
const EXPORT_PAGE: u32 = 200;
/// Text is sent to the client in chunks of about this size…
const EXPORT_CHUNK: usize = 64 * 1024;
/// …and at most this many wait for a slow client before reading pauses.
const EXPORT_QUEUE: usize = 4;

/// The entries `q` selects as CSV or JSON Lines, as a download streamed page by page (keyset
/// on `seq`, like the console's pages): memory stays bounded whatever the export's size.
fn export(app: &App, q: Query, format: Format) -> Response<Body> {
    let (tx, body) = Body::channel(EXPORT_QUEUE);
    let store = app.store.clone();
    tokio::spawn(async move {
        if let Err(e) = stream_export(&store, q, format, &tx).await {
            warn!(error = %e, "audit export failed part way: the download is cut off");
            let _ = tx.send(Err(e.into())).await;
        }
    });
    let (ctype, ext) = match format {
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    attachment(body, ctype, &format!("scimd-audit.{ext}"))
}

/// `body` as a download of type `ctype` saved as `file`: every console export answers so.
fn attachment(body: Body, ctype: &'static str, file: &str) -> Response<Body> {
    let mut r = Response::new(body);
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// Writes the export to `tx`; stops quietly when the client goes away.
async fn stream_export(
    store: &crate::store::Store,
    mut q: Query,
    format: Format,
    tx: &super::body::Sender,
) -> Result<()> {
    let mut out = String::new();
    if format == Format::Csv {
        out.push_str(CSV_HEADER);
    }
    let mut remaining = q.limit;
    while remaining > 0 {
        q.limit = remaining.min(EXPORT_PAGE);
        let page = audit::list(store, q.clone()).await?;
        let last_page = (page.len() as u32) < q.limit;
        remaining -= page.len() as u32;
        q.before = page.last().map(|e| e.seq);
        for e in &page {
            format.write(e, &mut out)?;
            if out.len() >= EXPORT_CHUNK
                && tx
                    .send(Ok(Bytes::from(std::mem::take(&mut out))))
                    .await
                    .is_err()
            {
                return Ok(());
            }
        }
        if last_page {
            break;
        }
    }
    if !out.is_empty() {
        let _ = tx.send(Ok(Bytes::from(out))).await;
    }
    Ok(())
}

/// RFC 4180 quoting; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet
/// does not run it as a formula (CSV injection).
fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{f}")
    } else {
        f.to_string()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("\t=1"), "'\t=1");
    }

    #[test]
    fn sign_in_origins_are_scimd_s_own_never_a_claimed_name() {
        let lan: SocketAddr = "192.168.1.5:8080".parse().unwrap();
        let allowed = |origin| origin_allowed(None, false, lan, origin);
        for ok in [
            "http://192.168.1.5:8080",
            "HTTP://localhost:8080",
            "http://127.0.0.1:8080",
            "http://127.9.9.9:8080",
            "http://[::1]:8080",
        ] {
            assert!(allowed(ok), "{ok}");
        }
        for bad in [
            "http://evil.example:8080",
            "http://192.168.1.6:8080",
            "http://192.168.1.5:8081",
            "http://192.168.1.5",
            "https://192.168.1.5:8080",
            "http://localhost.evil.example:8080",
            "http://192.168.1.5:8080/",
            "null",
            "",
        ] {
            assert!(!allowed(bad), "{bad}");
        }
        let dual_stack: SocketAddr = "[::ffff:192.168.1.5]:8080".parse().unwrap();
        assert!(origin_allowed(
            None,
            false,
            dual_stack,
            "http://192.168.1.5:8080"
        ));
        // Default ports, and HTTPS with built-in TLS.
        let https: SocketAddr = "[2001:db8::5]:443".parse().unwrap();
        assert!(origin_allowed(None, true, https, "https://[2001:db8::5]"));
        assert!(origin_allowed(
            None,
            true,
            https,
            "https://[2001:db8::5]:443"
        ));
        assert!(!origin_allowed(None, true, https, "http://[2001:db8::5]"));
        // With a public URL, that origin (its path aside), and still the address reached and
        // loopback (the LAN, an SSH tunnel); never another name.
        let public = Some("https://scim.example.com/base");
        let allowed = |origin| origin_allowed(public, false, lan, origin);
        assert!(allowed("https://scim.example.com"));
        assert!(allowed("http://192.168.1.5:8080"));
        assert!(allowed("http://localhost:8080"));
        assert!(allowed("http://127.0.0.1:8080"));
        assert!(!allowed("http://scim.example.com"));
        assert!(!allowed("https://evil.example"));
        assert!(!allowed("http://rebound.example:8080"));
        assert!(!allowed("http://127.0.0.1:9090"));
    }

    #[test]
    fn a_network_address_is_told_from_names_and_loopback() {
        for (host, network) in [
            ("192.168.1.5:8080", true),
            ("192.168.1.5", true),
            ("[2001:db8::5]:8080", true),
            ("[2001:db8::5]", true),
            ("127.0.0.1:8080", false),
            ("[::1]:8080", false),
            ("localhost:8080", false),
            ("scim.example.com", false),
        ] {
            assert_eq!(names_a_network_address(host), network, "{host}");
        }
    }

    #[test]
    fn the_setup_code_travels_in_the_fragment() {
        assert_eq!(
            setup_link("https://scim.example.com/", "abc"),
            "https://scim.example.com/setup#code=abc"
        );
    }
}
