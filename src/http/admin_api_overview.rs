//! The console's Overview under `/admin/api`: `GET overview` answers the whole page in one
//! read (the service's overview plus each webhook endpoint's state and lag), and
//! `PUT tokens/<name>/expectation` sets how often a token is expected to send a request.
//! Reached only through `admin_api::handle`, after its session and CSRF checks.

use http::Response;
use serde_json::{Value, json};
use tracing::warn;

use super::admin_api::{blocking, ok, webhook_json};
use super::{App, Body};
use crate::error::Result;
use crate::service::audit::Actor;
use crate::service::overview;
use crate::webhooks;

/// `GET /admin/api/overview`.
pub(super) async fn show(app: &App) -> Result<Response<Body>> {
    // What was counted since the last flush shows at once; a flush that fails (the file is
    // gone) leaves the page showing what is on record.
    if let Err(e) = app.last_used.flush(&app.store).await {
        warn!(error = %e, "could not record token use");
    }
    if let Err(e) = app.activity.flush(&app.store).await {
        warn!(error = %e, "could not record request counts");
    }
    let o = overview::read(&app.store, &app.days).await?;
    let store = app.store.clone();
    let hooks = blocking(move || webhooks::list(&store)).await?;
    let mut body = serde_json::to_value(&o).map_err(crate::error::Error::internal)?;
    body["webhooks"] = Value::Array(hooks.iter().map(webhook_json).collect());
    Ok(ok(body))
}

/// `PUT /admin/api/tokens/<name>/expectation` with `{"everyHours": n|null}`.
pub(super) async fn expect(
    app: &App,
    name: &str,
    body: &Value,
    actor: &Actor,
) -> Result<Response<Body>> {
    let hours = overview::expectation(body)?;
    let (store, who, n) = (app.store.clone(), actor.clone(), name.to_string());
    blocking(move || overview::set_expectation(&store, &n, hours, &who)).await?;
    Ok(ok(json!({"name": name, "everyHours": hours})))
}
