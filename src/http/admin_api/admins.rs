//! The console API's administrators (`/admin/api/admins/…` and `/admin/api/invitations`),
//! behind the session and CSRF checks of `admin_api`: the list, removal, invitations, and a
//! signed-in administrator's own password, sessions and second factor (`admins/me/…`).
//! Inviting, removing an administrator and turning two-factor sign-in on or off also need the
//! current password (`step_up`), as a password change does. Checks of a password are counted
//! as sign-in attempts (`limits::SignIn`), so a stolen session cannot guess the password
//! through them any faster than through sign-in.

use std::net::IpAddr;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{App, Body, ok, read_json, text};
use crate::error::{Error, Result};
use crate::service::audit::Actor;
use crate::service::{admin, administrators, totp};

/// The signed-in administrator.
pub(super) struct Me<'a> {
    pub seq: i64,
    pub username: &'a str,
    /// The session's cookie secret (to tell the current session apart, and keep it).
    pub secret: &'a str,
}

/// The link that invites an administrator; like setup's, the code travels in the fragment.
fn invite_link(origin: &str, code: &str) -> String {
    format!("{}/invite#code={code}", origin.trim_end_matches('/'))
}

pub(super) async fn handle(
    app: &App,
    req: Request<Incoming>,
    segs: &[&str],
    client: IpAddr,
    me: Me<'_>,
    actor: &Actor,
) -> Result<Response<Body>> {
    let method = req.method().clone();
    match (&method, segs) {
        (&Method::GET, ["admins"]) => {
            let (admins, invites) = administrators::list(&app.store).await?;
            Ok(ok(
                json!({"admins": admins, "invites": invites, "me": me.username}),
            ))
        }
        (&Method::DELETE, ["admins", name]) => {
            let name = name.to_string();
            let proof = step_up(app, req, client, &me).await?;
            let removed = administrators::remove(&app.store, proof, &name, actor).await?;
            Ok(ok(json!({
                "removed": removed,
                "signedOut": removed.to_lowercase() == me.username.to_lowercase(),
            })))
        }
        (&Method::POST, ["invitations"]) => {
            let origin = super::super::origin(app, &req);
            let proof = step_up(app, req, client, &me).await?;
            let (code, expires) = administrators::invite(&app.store, proof, actor).await?;
            Ok(ok(
                json!({"link": invite_link(&origin, &code), "expires": expires}),
            ))
        }
        (&Method::DELETE, ["invitations"]) => {
            let cancelled = administrators::cancel_invites(&app.store, actor).await?;
            Ok(ok(json!({"cancelled": cancelled})))
        }
        (&Method::POST, ["admins", "me", "password"]) => {
            let body = read_json(app, req).await?;
            let current = text(&body, "current")?.to_string();
            let new = text(&body, "password")?.to_string();
            // A new password that could never do is refused before anything is counted.
            admin::check_password(&new)?;
            let attempt = counted(app, client, me.username).await?;
            let changed = administrators::change_password(
                &app.store,
                &app.hashing,
                me.seq,
                me.secret,
                &current,
                &new,
                actor,
            )
            .await?;
            app.limits.sign_in.succeeded(attempt);
            Ok(ok(json!(changed)))
        }
        (&Method::GET, ["admins", "me", "sessions"]) => {
            let sessions = administrators::sessions(&app.store, me.seq, me.secret).await?;
            Ok(ok(json!({"sessions": sessions})))
        }
        (&Method::DELETE, ["admins", "me", "sessions", id]) => {
            administrators::end_session(&app.store, me.seq, id, actor).await?;
            Ok(ok(json!({})))
        }
        (&Method::GET, ["admins", "me", "totp"]) => {
            Ok(ok(json!(totp::status(&app.store, me.seq).await?)))
        }
        (&Method::POST, ["admins", "me", "totp"]) => Ok(ok(json!(
            totp::begin(&app.store, me.seq, me.username).await?
        ))),
        (&Method::POST, ["admins", "me", "totp", "confirm"]) => {
            let body = read_json(app, req).await?;
            let code = text(&body, "code")?.to_string();
            let proof = reauthenticate(app, &body, client, &me).await?;
            let codes = totp::confirm(&app.store, proof, &code, actor).await?;
            Ok(ok(json!({"recoveryCodes": codes})))
        }
        (&Method::POST, ["admins", "me", "totp", "disable"]) => {
            let proof = step_up(app, req, client, &me).await?;
            totp::disable(&app.store, proof, actor).await?;
            Ok(ok(json!({})))
        }
        _ => Err(Error::NotFound(format!(
            "no console endpoint {method} {}",
            req.uri().path()
        ))),
    }
}

/// Step-up for an action that gives lasting control (inviting, removing an administrator,
/// turning two-factor sign-in on or off): the body's `password` must be the signed-in
/// administrator's current one, so a stolen session cookie alone cannot do it.
async fn step_up(
    app: &App,
    req: Request<Incoming>,
    client: IpAddr,
    me: &Me<'_>,
) -> Result<administrators::Reauthenticated> {
    let body = read_json(app, req).await?;
    reauthenticate(app, &body, client, me).await
}

/// Checks `password` in `body` (`step_up`), counted as a sign-in attempt like every other
/// check of the password.
async fn reauthenticate(
    app: &App,
    body: &Value,
    client: IpAddr,
    me: &Me<'_>,
) -> Result<administrators::Reauthenticated> {
    let password = match body.get("password") {
        Some(Value::String(p)) if !p.is_empty() => p,
        _ => {
            return Err(Error::Forbidden(
                "confirm this with your current password (\"password\")".into(),
            ));
        }
    };
    let attempt = counted(app, client, me.username).await?;
    let proof = administrators::reauthenticate(&app.store, &app.hashing, me.seq, password).await?;
    app.limits.sign_in.succeeded(attempt);
    Ok(proof)
}

/// Counts a check of the administrator's password as a sign-in attempt (429 when there were
/// too many); the caller reports success.
async fn counted(
    app: &App,
    client: IpAddr,
    username: &str,
) -> Result<crate::http::limits::Attempt> {
    let facts = admin::sign_in_facts(&app.store, username, None).await?;
    app.limits.sign_in.attempt(client, username, facts)
}
