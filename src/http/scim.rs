//! SCIM handlers: decode the request, call the service, encode the response (`ETag`,
//! `Location`, status codes of RFC 7644 §3).

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::Value;

use super::router::Route;
use super::{App, Body, Ctx, empty_response, json_response};
use crate::error::{Error, Result};
use crate::scim::discovery;
use crate::scim::list::{self, ListQuery};
use crate::scim::resource::{self, Meta};
use crate::service::{groups, users};

pub async fn dispatch(app: &App, route: Route, ctx: &Ctx, body: Value) -> Result<Response<Body>> {
    let store = &app.store;
    let base = ctx.base.as_str();
    Ok(match route {
        Route::Health => return Err(Error::internal("health is not a SCIM route")),
        Route::ServiceProviderConfig => ok(&discovery::service_provider_config(base)),
        Route::ResourceTypes => ok(&discovery::resource_types(base)),
        Route::ResourceType(id) => ok(&discovery::resource_type(base, &id)
            .ok_or_else(|| Error::NotFound(format!("no resource type \"{id}\"")))?),
        Route::Schemas => ok(&discovery::schemas(base)),
        Route::Schema(id) => ok(&discovery::schema(base, &id)
            .ok_or_else(|| Error::NotFound(format!("no schema \"{id}\"")))?),
        Route::ListUsers => {
            let q = list_query(ctx)?;
            let start = q.start_index;
            let (total, found) = users::list(store, q).await?;
            let rendered = found
                .iter()
                .map(|u| resource::render_user(u, base))
                .collect();
            ok(&list::response(total, start, rendered))
        }
        Route::CreateUser => {
            let user = users::create(store, require_body(body)?).await?;
            created(resource::render_user(&user, base), &user.meta)
        }
        Route::GetUser(id) => {
            let user = users::get(store, id).await?;
            with_etag(ok(&resource::render_user(&user, base)), &user.meta)
        }
        Route::ReplaceUser(id) => {
            let user = users::replace(store, id, require_body(body)?).await?;
            with_etag(ok(&resource::render_user(&user, base)), &user.meta)
        }
        Route::DeleteUser(id) => {
            users::delete(store, id).await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::ListGroups => {
            let q = list_query(ctx)?;
            let start = q.start_index;
            let (total, found) = groups::list(store, q).await?;
            let rendered = found
                .iter()
                .map(|g| resource::render_group(g, base))
                .collect();
            ok(&list::response(total, start, rendered))
        }
        Route::CreateGroup => {
            let group = groups::create(store, require_body(body)?).await?;
            created(resource::render_group(&group, base), &group.meta)
        }
        Route::GetGroup(id) => {
            let group = groups::get(store, id).await?;
            with_etag(ok(&resource::render_group(&group, base)), &group.meta)
        }
        Route::ReplaceGroup(id) => {
            let group = groups::replace(store, id, require_body(body)?).await?;
            with_etag(ok(&resource::render_group(&group, base)), &group.meta)
        }
        Route::DeleteGroup(id) => {
            groups::delete(store, id).await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::NotImplemented(what) => {
            return Err(Error::NotImplemented(format!(
                "{what} is not supported by this version of scimd"
            )));
        }
    })
}

fn list_query(ctx: &Ctx) -> Result<ListQuery> {
    let query = ctx.query.as_deref().unwrap_or("");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    ListQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn require_body(body: Value) -> Result<Value> {
    match body {
        Value::Null => Err(Error::InvalidSyntax("the request body is empty".into())),
        other => Ok(other),
    }
}

fn ok(body: &Value) -> Response<Body> {
    json_response(StatusCode::OK, body)
}

fn with_etag(mut response: Response<Body>, meta: &Meta) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(&meta.etag()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// 201 with `Location` (RFC 7644 §3.3) and `ETag`.
fn created(body: Value, meta: &Meta) -> Response<Body> {
    let location = body["meta"]["location"].as_str().map(HeaderValue::from_str);
    let mut response = with_etag(json_response(StatusCode::CREATED, &body), meta);
    if let Some(Ok(v)) = location {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}
