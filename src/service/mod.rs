//! Use cases: one function per thing a client can do, each owning its one transaction.
//! Handlers call these; these call the pure core (`scim`) to decide and the store to persist.

pub mod activity;
pub mod admin;
pub mod administrators;
pub mod audit;
pub mod audit_view;
pub mod bulk;
pub mod events;
pub mod feed;
pub mod groups;
pub mod ignored;
pub mod overview;
pub mod people;
mod rejections;
pub mod schemas;
pub mod tokens;
pub mod totp;
pub mod users;

use crate::error::{Error, Result};
use crate::scim::list::{Cursor, ListQuery, Paging};
use crate::scim::registry::Registry;
use crate::scim::resource::ResourceKind;
use crate::scim::resource::{GroupRecord, StoredUser};
use crate::store::ListPage;
use crate::store::Store;
use crate::store::query::{self, ListSql, SqlFilter, Window};

/// A fresh resource id (RFC 7643 §3.1: unique, stable, never reassigned).
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn not_found(kind: &str, id: &str) -> Error {
    Error::NotFound(format!("{kind} \"{id}\" not found"))
}

/// The SQL for one page of `q` over resources of `kind`, with the schemas of `registry`.
fn list_sql(q: &ListQuery, kind: ResourceKind, registry: &Registry) -> Result<ListSql> {
    let (filter, lookup) = match &q.filter {
        Some(f) => query::translate_list(f, kind, registry)?,
        None => (SqlFilter::all(), false),
    };
    let order = q
        .sort
        .as_ref()
        .map(|s| query::sort_order(&s.by, s.descending, kind, registry, filter.params.len()))
        .transpose()?;
    let window = match q.paging {
        Paging::Index(start) => Window::Offset {
            offset: start - 1,
            limit: q.count,
        },
        Paging::Cursor(None) => Window::After {
            after: 0,
            limit: q.count,
            total: None,
        },
        Paging::Cursor(Some(c)) => Window::After {
            after: c.after,
            limit: q.count,
            total: Some(c.total),
        },
    };
    Ok(ListSql {
        lookup: lookup && order.is_none(),
        filter,
        order,
        window,
    })
}

/// `sql` as asked, and as it will be read: a `startIndex` page that continues the previous
/// page of the same list resumes after its last row (see `Store::resume`). The generation is
/// taken first, so a write racing this read voids what `remember` records.
fn resume(store: &Store, table: &'static str, sql: ListSql) -> ((ListSql, u64), ListSql) {
    let generation = store.generation();
    let mut resumed = sql.clone();
    store.resume(table, &mut resumed);
    ((sql, generation), resumed)
}

/// Records where a `startIndex` page ended, for the next page of a sequential export.
fn remember<T>(
    store: &Store,
    table: &str,
    (sql, generation): &(ListSql, u64),
    page: ListPage<T>,
) -> Listed<T> {
    if let Window::Offset { offset, .. } = sql.window {
        store.remember(table, sql, offset, *generation, &page);
    }
    page.into()
}

/// A page of resources and, for cursor paging, the cursor of the next page.
#[derive(Debug)]
pub struct Listed<T> {
    pub total: u64,
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> From<ListPage<T>> for Listed<T> {
    fn from(page: ListPage<T>) -> Self {
        Listed {
            next: page.next_after.map(|after| Cursor {
                after,
                total: page.total,
            }),
            total: page.total,
            items: page.items,
        }
    }
}

/// A search across users and groups (RFC 7644 §3.4.3 at the root): one window over users
/// followed by groups, read in one snapshot. A resource type the filter does not apply to
/// (it names an attribute that type lacks) contributes nothing; if it applies to neither, its
/// error is returned.
pub async fn search_all(
    store: &Store,
    q: &ListQuery,
    start: u64,
    with_members: bool,
) -> Result<(Listed<StoredUser>, Listed<GroupRecord>)> {
    let registry = store.registry();
    let (user_sql, group_sql) = match (
        list_sql(q, ResourceKind::User, &registry),
        list_sql(q, ResourceKind::Group, &registry),
    ) {
        (Err(e), Err(_)) => return Err(e),
        (u, g) => (u.ok(), g.ok()),
    };
    let (count, offset) = (q.count, start - 1);
    let scan = [&user_sql, &group_sql]
        .into_iter()
        .any(|sql| sql.as_ref().is_some_and(ListSql::is_scan));
    store
        .read_list(scan, move |conn| {
            let users = match user_sql {
                Some(sql) => crate::store::users::list(conn, &sql)?,
                None => ListPage::empty(),
            };
            let taken = users.items.len() as u64;
            let groups = match group_sql {
                Some(mut sql) => {
                    sql.window = Window::Offset {
                        offset: offset.saturating_sub(users.total),
                        limit: count - taken,
                    };
                    crate::store::groups::list(conn, &sql, with_members)?
                }
                None => ListPage::empty(),
            };
            Ok((users.into(), groups.into()))
        })
        .await
}

/// The key a client is counted under by every per-client limit and budget: an IPv4 address
/// (also when mapped into IPv6), or the /64 network of an IPv6 address, since one host
/// commonly holds a whole /64.
pub fn client_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv6Addr};
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}
