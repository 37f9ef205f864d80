//! `POST /Bulk` (RFC 7644 §3.7): runs the request (`service::bulk`) and answers its
//! BulkResponse: each operation that ran, in the order of the request, with `method`,
//! `bulkId`, `location`, `version` and `status` as its single request would have answered,
//! and on failure its SCIM error as `response` (§3.7.3). The request itself answers 200
//! whatever its operations did; it fails as a whole only when it is not a bulk request or is
//! over a limit (413), and then nothing ran.
//!
//! Each operation is on the audit log as its single request would be: a change by the entry
//! its service function writes with it, a failure among the rejected requests under the
//! single request's method and route. What a write ignored is counted and named as for a
//! single request (`scim::noted`).

use http::StatusCode;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value, json};
use tracing::error;

use super::{App, Body, Ctx, json_response};
use crate::error::{Error, Result};
use crate::scim::bulk::RESPONSE_URN;
use crate::scim::resource::{self, ResourceKind};
use crate::service::bulk::{self, Outcome};
use crate::service::tokens::Scope;
use http::Response;

/// What an id in a location's path segment must have encoded.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'/')
    .add(b'%')
    .add(b'?')
    .add(b'#');

pub async fn respond(app: &App, ctx: &Ctx, body: Value) -> Result<Response<Body>> {
    let outcomes = bulk::run(&app.store, body, &ctx.actor).await?;
    let mut operations = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let mut entry = Map::new();
        if let Some(m) = &o.method {
            entry.insert("method".into(), json!(m));
        }
        if let Some(b) = &o.bulk_id {
            entry.insert("bulkId".into(), json!(b));
        }
        // Every operation but a failed POST has one (§3.7.3), a failed PUT, PATCH or DELETE
        // too; the id as the path named it, so encoded again.
        if let (Some(kind), Some(id)) = (o.kind, &o.id) {
            let id = utf8_percent_encode(id, SEGMENT).to_string();
            entry.insert(
                "location".into(),
                json!(resource::location(&ctx.base, kind, &id)),
            );
        }
        match &o.result {
            Ok(done) => {
                if let Some(v) = &done.version {
                    entry.insert("version".into(), json!(v));
                }
                entry.insert("status".into(), json!(done.status.to_string()));
            }
            Err(e) => {
                entry.insert("status".into(), json!(e.status().as_u16().to_string()));
                entry.insert("response".into(), e.body());
            }
        }
        operations.push(Value::Object(entry));
        record(app, ctx, o).await;
    }
    let body = json!({"schemas": [RESPONSE_URN], "Operations": operations});
    Ok(json_response(StatusCode::OK, &body))
}

/// What the audit log and `/metrics` keep of one operation, as for its single request.
async fn record(app: &App, ctx: &Ctx, o: Outcome) {
    match o.result {
        Ok(done) => {
            if let (Some(kind), Some(noted)) = (o.kind, done.noted) {
                super::scim::noted(app, ctx, kind, noted).await;
            }
        }
        Err(e) => {
            if let Error::Internal(cause) = &e {
                error!(cause = %cause, "internal error in a bulk operation");
            }
            let action = action(o.method.as_deref(), o.kind);
            let mut entry = ctx.actor.entry(&action, "failure", e.status().as_u16());
            entry.resource_id = o.id;
            // Only a write token reaches `/Bulk` (`Route::needs`).
            app.rejections.push(entry, Some(Scope::Write), &e);
        }
    }
}

/// The method and route of the operation's single request ("PATCH /scim/v2/Users/{id}"), or
/// of the bulk request when the operation's path did not parse.
fn action(method: Option<&str>, kind: Option<ResourceKind>) -> String {
    match (method, kind) {
        (Some("POST"), Some(kind)) => format!("POST /scim/v2/{}", kind.endpoint()),
        (Some(m), Some(kind)) => format!("{m} /scim/v2/{}/{{id}}", kind.endpoint()),
        _ => "POST /scim/v2/Bulk".into(),
    }
}
