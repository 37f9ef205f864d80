//! The console's people routes under `/admin/api`: the Users list (search as you type, state,
//! suspended since) and its export, a user's page (a deleted user's too, from its tombstone),
//! a group's page with its members searched and paged, and the members' export. Exports are
//! streamed batch by batch, so memory stays bounded at any directory size.

use bytes::Bytes;
use http::{Request, Response};
use serde_json::{Value, json};
use tracing::warn;

use super::{App, Body, console_base, csv_field, history, number, param};
use crate::error::{Error, Result};
use crate::scim::list::{ListQuery, Sort};
use crate::scim::resource::{self, ResourceKind};
use crate::service::{groups, people, schemas, users};
use crate::store::Store;
use crate::store::people::{Member, Person, Search, State};

/// The most users or members on one page of the console.
const MAX_PAGE: u64 = 200;
/// Rows read per batch of an export: a batch of the largest users is a few MB at most.
const BATCH: u64 = 500;
/// Text goes to the client in chunks of about this size, at most `QUEUE` of them waiting.
const CHUNK: usize = 64 * 1024;
const QUEUE: usize = 4;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The search and state a request asks for (`q`, `state`).
fn search_of(pairs: &[(String, String)]) -> Result<Search> {
    let state = match param(pairs, "state").unwrap_or("all") {
        "all" | "" => State::All,
        "active" => State::Active,
        "suspended" => State::Suspended,
        other => {
            return Err(Error::InvalidValue(format!(
                "state is all, active or suspended, not \"{other}\""
            )));
        }
    };
    Ok(Search {
        text: param(pairs, "q").unwrap_or("").trim().to_string(),
        state,
    })
}

/// `sortBy` and `sortOrder` as SCIM reads them.
fn sort_of(pairs: &[(String, String)]) -> Result<Option<Sort>> {
    let picked = pairs
        .iter()
        .filter(|(k, v)| (k == "sortBy" || k == "sortOrder") && !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()));
    Ok(ListQuery::from_pairs(picked)?.sort)
}

fn render(store: &Store, base: &str, p: Person) -> Result<Value> {
    let user = p.user.parse().map_err(Error::internal)?;
    let mut v = resource::render_user(user, base, &store.registry());
    if let Some(o) = v.as_object_mut() {
        o.insert("suspendedSince".into(), json!(p.suspended_since));
    }
    Ok(v)
}

/// `GET /users`: a page of the search.
pub async fn list<B>(app: &App, req: &Request<B>, pairs: &[(String, String)]) -> Result<Value> {
    let search = search_of(pairs)?;
    let sort = sort_of(pairs)?;
    let start = u64::from(number(pairs, "startIndex", 1)?.max(1));
    let count = u64::from(number(pairs, "count", 50)?).min(MAX_PAGE);
    let page = people::search(&app.store, search, sort, start - 1, count).await?;
    let base = console_base(app, req);
    let items = page
        .items
        .into_iter()
        .map(|p| render(&app.store, &base, p))
        .collect::<Result<Vec<_>>>()?;
    // `capped`: at least `total` match (counting stops there).
    Ok(json!({"total": page.total, "capped": page.capped, "items": items}))
}

/// `GET /users/<id>`: the user with the extensions it carries and its history; a deleted
/// user's tombstone and history instead, when there is one.
pub async fn user<B>(app: &App, req: &Request<B>, id: &str) -> Result<Value> {
    let user = match users::get(&app.store, id.to_string()).await {
        Ok(u) => u.parse().map_err(Error::internal)?,
        Err(Error::NotFound(why)) => {
            let Some(gone) = people::tombstone(&app.store, id.to_string()).await? else {
                return Err(Error::NotFound(why));
            };
            return Ok(json!({"deleted": gone, "history": history(app, id).await?}));
        }
        Err(e) => return Err(e),
    };
    let extensions = schemas::carried(&app.store, ResourceKind::User, &user.doc).await?;
    let base = console_base(app, req);
    Ok(json!({
        "user": resource::render_user(user, &base, &app.store.registry()),
        "extensions": extensions,
        "history": history(app, id).await?,
    }))
}

/// `GET /groups/<id>`: the group, a page of its members matching `q` (each user's state with
/// it), the extensions it carries and its history.
pub async fn group<B>(
    app: &App,
    req: &Request<B>,
    id: &str,
    pairs: &[(String, String)],
) -> Result<Value> {
    let base = console_base(app, req);
    let group = groups::get(&app.store, id.to_string(), false).await?;
    let extensions = schemas::carried(&app.store, ResourceKind::Group, &group.doc).await?;
    let start = u64::from(number(pairs, "startIndex", 1)?.max(1));
    let count = u64::from(number(pairs, "count", 50)?).min(MAX_PAGE);
    let text = param(pairs, "q").unwrap_or("").trim().to_string();
    let (total, members) =
        people::members(&app.store, id.to_string(), text, start - 1, count).await?;
    let mut v = resource::render_group(group, &base, &app.store.registry());
    if let Some(o) = v.as_object_mut() {
        o.insert("members".into(), json!(members));
        o.insert("memberCount".into(), json!(total));
    }
    Ok(json!({"group": v, "extensions": extensions, "history": history(app, id).await?}))
}

/// The formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

impl Format {
    fn of(pairs: &[(String, String)]) -> Result<Format> {
        match param(pairs, "format").unwrap_or("csv") {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(Error::InvalidValue(format!(
                "format is csv or json, not \"{other}\""
            ))),
        }
    }

    /// The start of the file, before any row.
    fn open(self, csv_header: &str) -> String {
        match self {
            Format::Csv => format!("{csv_header}\n"),
            Format::Json => "[".into(),
        }
    }

    /// Appends one row (`first`: the first of the file).
    fn row(self, out: &mut String, first: bool, cells: &[String], doc: &Value) {
        match self {
            Format::Csv => {
                let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            Format::Json => {
                out.push_str(if first { "\n" } else { ",\n" });
                out.push_str(&doc.to_string());
            }
        }
    }

    fn close(self, out: &mut String) {
        if self == Format::Json {
            out.push_str("\n]\n");
        }
    }
}

/// A download streamed from `producer`, which writes to the sender it is given.
fn download<F, Fut>(format: Format, name: &str, producer: F) -> Response<Body>
where
    F: FnOnce(super::super::body::Sender) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let (tx, body) = Body::channel(QUEUE);
    let work = producer(tx.clone());
    tokio::spawn(async move {
        if let Err(e) = work.await {
            warn!(error = %e, "export failed part way: the download is cut off");
            let _ = tx.send(Err(e.into())).await;
        }
    });
    let (ctype, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    super::attachment(body, ctype, &format!("{name}.{ext}"))
}

/// Sends `out` once it is a chunk (with `all`, whatever it holds); false when the client
/// went away.
async fn flush(tx: &super::super::body::Sender, out: &mut String, all: bool) -> bool {
    let ready = out.len() >= CHUNK || (all && !out.is_empty());
    if !ready {
        return true;
    }
    tx.send(Ok(Bytes::from(std::mem::take(out)))).await.is_ok()
}

const USER_CSV: &str = "id,userName,displayName,givenName,familyName,emails,active,\
    suspendedSince,externalId,title,department,created,lastModified";

/// One user as CSV cells (emails joined with spaces).
fn user_cells(v: &Value) -> Vec<String> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let emails = v["emails"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter_map(|e| e["value"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    vec![
        s(v.get("id")),
        s(v.get("userName")),
        s(v.get("displayName")),
        s(v.pointer("/name/givenName")),
        s(v.pointer("/name/familyName")),
        emails,
        (v["active"].as_bool() != Some(false)).to_string(),
        s(v.get("suspendedSince")),
        s(v.get("externalId")),
        s(v.get("title")),
        s(v.get(ENTERPRISE).and_then(|e| e.get("department"))),
        s(v.pointer("/meta/created")),
        s(v.pointer("/meta/lastModified")),
    ]
}

/// `GET /users/export`: every user the search selects, as CSV or a JSON array of SCIM users.
pub fn export_users<B>(
    app: &App,
    req: &Request<B>,
    pairs: &[(String, String)],
) -> Result<Response<Body>> {
    let search = search_of(pairs)?;
    let format = Format::of(pairs)?;
    let base = console_base(app, req);
    let store = app.store.clone();
    Ok(download(format, "scimd-users", move |tx| async move {
        let mut out = format.open(USER_CSV);
        let (mut after, mut first) = (0, true);
        loop {
            let (batch, next) = people::batch(&store, search.clone(), after, BATCH).await?;
            for p in batch {
                let v = render(&store, &base, p)?;
                format.row(&mut out, first, &user_cells(&v), &v);
                first = false;
                if !flush(&tx, &mut out, false).await {
                    return Ok(());
                }
            }
            match next {
                Some(n) => after = n,
                None => break,
            }
        }
        format.close(&mut out);
        flush(&tx, &mut out, true).await;
        Ok(())
    }))
}

const MEMBER_CSV: &str = "id,type,name,displayName,active";

/// `GET /groups/<id>/members/export`: the group's members matching `q`.
pub async fn export_members(
    app: &App,
    id: &str,
    pairs: &[(String, String)],
) -> Result<Response<Body>> {
    let format = Format::of(pairs)?;
    let text = param(pairs, "q").unwrap_or("").trim().to_string();
    // Checked before the download starts, so a wrong id is a 404, not an empty file.
    groups::get(&app.store, id.to_string(), false).await?;
    let (store, id) = (app.store.clone(), id.to_string());
    Ok(download(format, "scimd-members", move |tx| async move {
        let mut out = format.open(MEMBER_CSV);
        let (mut after, mut first) = (0, true);
        loop {
            let batch: Vec<Member> =
                people::member_batch(&store, id.clone(), text.clone(), after, BATCH).await?;
            let full = batch.len() as u64 == BATCH;
            for m in &batch {
                let doc = serde_json::to_value(m).map_err(Error::internal)?;
                let cells = [
                    m.id.clone(),
                    m.kind.to_string(),
                    m.name.clone(),
                    m.display_name.clone().unwrap_or_default(),
                    m.active.map(|a| a.to_string()).unwrap_or_default(),
                ];
                format.row(&mut out, first, &cells, &doc);
                first = false;
                if !flush(&tx, &mut out, false).await {
                    return Ok(());
                }
            }
            match batch.last() {
                Some(m) if full => after = m.row,
                _ => break,
            }
        }
        format.close(&mut out);
        flush(&tx, &mut out, true).await;
        Ok(())
    }))
}
