//! SCIM handlers: decode the request, call the service, encode the response (`ETag`,
//! `Location`, status codes of RFC 7644 §3).

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::Value;

use super::router::Route;
use super::{App, Body, Ctx, empty_response, json_response, json_text_response};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::scim::discovery;
use crate::scim::list::{self, ListQuery, Paging};
use crate::scim::project::Projection;
use crate::scim::registry::Registry;
use crate::scim::resource::{self, GroupRecord, Meta, ResourceKind, StoredUser, UserRecord};
use crate::service::ignored::{self, Noted};
use crate::service::{Listed, groups, users};

/// Renders resources for one request: base URL plus the requested projection.
struct View<'a> {
    base: &'a str,
    /// The request's snapshot of the schemas in force.
    registry: Arc<Registry>,
    users: Projection,
    groups: Projection,
}

impl View<'_> {
    fn new<'a>(
        base: &'a str,
        registry: Arc<Registry>,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> View<'a> {
        View {
            base,
            users: Projection::new(attributes, excluded, ResourceKind::User, &registry),
            groups: Projection::new(attributes, excluded, ResourceKind::Group, &registry),
            registry,
        }
    }

    fn user(&self, u: UserRecord) -> Value {
        let mut v = resource::render_user(u, self.base, &self.registry);
        self.users.apply(&mut v, ResourceKind::User, &self.registry);
        v
    }

    /// A user (of a list, or a GET) as JSON text. With nothing to project, its stored
    /// document goes in as it is, never parsed (see `StoredUser`).
    fn user_text(&self, u: StoredUser) -> Result<String> {
        if self.users.is_identity() {
            return resource::write_user(&u, self.base, &self.registry).map_err(Error::internal);
        }
        let u = u.parse().map_err(Error::internal)?;
        Ok(self.user(u).to_string())
    }

    fn group(&self, g: GroupRecord) -> Value {
        let mut v = resource::render_group(g, self.base, &self.registry);
        self.groups
            .apply(&mut v, ResourceKind::Group, &self.registry);
        v
    }

    /// 200 with the user and its `ETag`.
    fn user_ok(&self, u: UserRecord) -> Response<Body> {
        let meta = u.meta.clone();
        with_etag(ok(&self.user(u)), &meta)
    }

    /// 200 with the group and its `ETag`.
    fn group_ok(&self, g: GroupRecord) -> Response<Body> {
        let meta = g.meta.clone();
        with_etag(ok(&self.group(g)), &meta)
    }

    /// Whether group members will be returned, so the store can skip reading them.
    fn with_members(&self) -> bool {
        self.groups.returns("members")
    }
}

/// Counts what a write ignored in `/metrics`, and names it in the audit log when the write
/// changed nothing else and `App::unchanged` admits it (one entry per actor, resource type
/// and set of names a day, so repeated IdP syncs cannot flood the log). The write itself has
/// succeeded: a failure to record is logged, not answered.
pub(super) async fn noted(app: &App, ctx: &Ctx, kind: ResourceKind, noted: Noted) {
    app.metrics.ignored(kind, noted.count);
    let Some(unchanged) = noted.unchanged else {
        return;
    };
    if !app.unchanged.admit(
        ignored::actor_key(&ctx.actor),
        unchanged.key(&ctx.actor),
        std::time::Instant::now(),
    ) {
        return;
    }
    if let Err(e) = ignored::record_unchanged(&app.store, &ctx.actor, unchanged).await {
        tracing::warn!(error = %e, "could not record the names an unchanged write ignored");
    }
}

pub async fn dispatch(app: &App, route: Route, ctx: &Ctx, body: Value) -> Result<Response<Body>> {
    let store = &app.store;
    let base = ctx.base.as_str();
    let pairs = query_pairs(ctx);
    let view = View::new(
        base,
        store.registry(),
        param(&pairs, "attributes"),
        param(&pairs, "excludedAttributes"),
    );
    Ok(match route {
        Route::Health => return Err(Error::internal("health is not a SCIM route")),
        Route::Events => return super::events::feed(app, ctx).await,
        Route::ServiceProviderConfig => ok(&discovery::service_provider_config(
            base,
            app.config.max_body_bytes,
        )),
        Route::ResourceTypes => ok(&discovery::resource_types(base, &view.registry)),
        Route::ResourceType(id) => ok(&discovery::resource_type(base, &id, &view.registry)
            .ok_or_else(|| Error::NotFound(format!("no resource type \"{id}\"")))?),
        Route::Schemas => ok(&discovery::schemas(base, &view.registry)),
        Route::Schema(id) => ok(&discovery::schema(base, &id, &view.registry)
            .ok_or_else(|| Error::NotFound(format!("no schema \"{id}\"")))?),
        Route::ListUsers => list_users(app, base, &list_query(&pairs)?).await?,
        Route::SearchUsers => list_users(app, base, &search_query(&body)?).await?,
        Route::ListGroups => list_groups(app, base, &list_query(&pairs)?).await?,
        Route::SearchGroups => list_groups(app, base, &search_query(&body)?).await?,
        Route::SearchAll => search_all(app, base, &search_query(&body)?).await?,
        Route::CreateUser => {
            let (u, ignored) = users::create(store, require_body(body)?, &ctx.actor).await?;
            noted(app, ctx, ResourceKind::User, ignored).await;
            let location = resource::location(base, ResourceKind::User, &u.id);
            let meta = u.meta.clone();
            created(view.user(u), &location, &meta)
        }
        Route::GetUser(id) => {
            let u = users::get(store, id).await?;
            if not_modified(ctx, &u.meta) {
                return Ok(with_etag(empty_response(StatusCode::NOT_MODIFIED), &u.meta));
            }
            let meta = u.meta.clone();
            with_etag(
                json_text_response(StatusCode::OK, view.user_text(u)?),
                &meta,
            )
        }
        Route::ReplaceUser(id) => {
            let (u, ignored) = users::replace(
                store,
                id,
                require_body(body)?,
                ctx.if_match.clone(),
                &ctx.actor,
            )
            .await?;
            noted(app, ctx, ResourceKind::User, ignored).await;
            view.user_ok(u)
        }
        // A user PATCH answers 200 with the user (idp-compat.md Decision 7).
        Route::PatchUser(id) => {
            let (u, ignored) = users::patch(
                store,
                id,
                require_body(body)?,
                ctx.if_match.clone(),
                &ctx.actor,
            )
            .await?;
            noted(app, ctx, ResourceKind::User, ignored).await;
            view.user_ok(u)
        }
        Route::DeleteUser(id) => {
            users::delete(store, id, ctx.if_match.clone(), &ctx.actor).await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::CreateGroup => {
            let (g, ignored) =
                groups::create(store, require_body(body)?, view.with_members(), &ctx.actor).await?;
            noted(app, ctx, ResourceKind::Group, ignored).await;
            let location = resource::location(base, ResourceKind::Group, &g.id);
            let meta = g.meta.clone();
            created(view.group(g), &location, &meta)
        }
        Route::GetGroup(id) => {
            let g = groups::get(store, id, view.with_members()).await?;
            if not_modified(ctx, &g.meta) {
                return Ok(with_etag(empty_response(StatusCode::NOT_MODIFIED), &g.meta));
            }
            view.group_ok(g)
        }
        Route::ReplaceGroup(id) => {
            let body = require_body(body)?;
            let if_match = ctx.if_match.clone();
            let (g, ignored) =
                groups::replace(store, id, body, view.with_members(), if_match, &ctx.actor).await?;
            noted(app, ctx, ResourceKind::Group, ignored).await;
            view.group_ok(g)
        }
        // A group PATCH answers 204, unless the request asks for attributes: echoing a large
        // member list on every membership change is what makes big groups slow (Decision 7).
        Route::PatchGroup(id) => {
            let wants_body = param(&pairs, "attributes").is_some()
                || param(&pairs, "excludedAttributes").is_some();
            let body = require_body(body)?;
            let with_members = wants_body && view.with_members();
            let if_match = ctx.if_match.clone();
            let (g, ignored) =
                groups::patch(store, id, body, with_members, if_match, &ctx.actor).await?;
            noted(app, ctx, ResourceKind::Group, ignored).await;
            let meta = g.meta.clone();
            if wants_body {
                with_etag(ok(&view.group(g)), &meta)
            } else {
                with_etag(empty_response(StatusCode::NO_CONTENT), &meta)
            }
        }
        Route::DeleteGroup(id) => {
            groups::delete(store, id, ctx.if_match.clone(), &ctx.actor).await?;
            empty_response(StatusCode::NO_CONTENT)
        }
        Route::Bulk => super::bulk::respond(app, ctx, require_body(body)?).await?,
        Route::NotImplemented(what) => {
            return Err(Error::NotImplemented(format!(
                "{what} is not supported by this version of scimd"
            )));
        }
    })
}

/// A ListResponse for one page, each resource written as JSON text by `render`.
fn page_response<T>(
    listed: Listed<T>,
    paging: Paging,
    render: impl Fn(T) -> Result<String>,
) -> Result<Response<Body>> {
    let page = list::Page {
        total: listed.total,
        resources: listed
            .items
            .into_iter()
            .map(render)
            .collect::<Result<_>>()?,
        next_cursor: listed.next,
    };
    Ok(json_text_response(
        StatusCode::OK,
        list::response_text(page, paging),
    ))
}

fn list_view<'a>(app: &App, base: &'a str, q: &ListQuery) -> View<'a> {
    View::new(
        base,
        app.store.registry(),
        q.attributes.as_deref(),
        q.excluded_attributes.as_deref(),
    )
}

async fn list_users(app: &App, base: &str, q: &ListQuery) -> Result<Response<Body>> {
    let view = list_view(app, base, q);
    let listed = users::list(&app.store, q).await?;
    page_response(listed, q.paging, |u| view.user_text(u))
}

async fn list_groups(app: &App, base: &str, q: &ListQuery) -> Result<Response<Body>> {
    let view = list_view(app, base, q);
    let listed = groups::list(&app.store, q, view.with_members()).await?;
    page_response(listed, q.paging, |g| Ok(view.group(g).to_string()))
}

/// `POST /.search` at the root (RFC 7644 §3.4.3): users, then groups, as one list. The filter
/// applies to each resource type it makes sense for.
async fn search_all(app: &App, base: &str, q: &ListQuery) -> Result<Response<Body>> {
    let Paging::Index(start) = q.paging else {
        return Err(Error::InvalidValue(
            "a search across resource types pages with startIndex, not cursor".into(),
        ));
    };
    if q.sort.is_some() {
        return Err(Error::InvalidValue(
            "sortBy needs one resource type: search /Users/.search or /Groups/.search".into(),
        ));
    }
    let view = list_view(app, base, q);
    let (users, groups) =
        crate::service::search_all(&app.store, q, start, view.with_members()).await?;
    let mut resources = Vec::with_capacity(users.items.len() + groups.items.len());
    for u in users.items {
        resources.push(view.user_text(u)?);
    }
    resources.extend(groups.items.into_iter().map(|g| view.group(g).to_string()));
    let page = list::Page {
        total: users.total + groups.total,
        resources,
        next_cursor: None,
    };
    Ok(json_text_response(
        StatusCode::OK,
        list::response_text(page, q.paging),
    ))
}

/// The decoded query parameters (`+` is a space: OneLogin encodes spaces that way).
fn query_pairs(ctx: &Ctx) -> Vec<(String, String)> {
    let query = ctx.query.as_deref().unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn list_query(pairs: &[(String, String)]) -> Result<ListQuery> {
    ListQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn search_query(body: &Value) -> Result<ListQuery> {
    match body {
        // An empty body searches everything, as a GET without parameters would.
        Value::Null => Ok(ListQuery::default()),
        other => ListQuery::from_search(other),
    }
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
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

/// `If-None-Match` (RFC 7644 §3.14): the client already has this version.
fn not_modified(ctx: &Ctx, meta: &Meta) -> bool {
    ctx.if_none_match
        .as_deref()
        .is_some_and(|h| meta.matches(h))
}

fn with_etag(mut response: Response<Body>, meta: &Meta) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(&meta.etag()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// 201 with `Location` (RFC 7644 §3.3) and `ETag`.
fn created(body: Value, location: &str, meta: &Meta) -> Response<Body> {
    let mut response = with_etag(json_response(StatusCode::CREATED, &body), meta);
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}
