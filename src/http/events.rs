//! `GET /api/v1/events`: the change feed, in commit order, with long polling.
//!
//! `?after=ID|now&limit=N&types=a,b&wait=SECONDS` → `{"events": [...], "next": "ID"}`. The
//! token check, throttling and auditing of failures are the SCIM routes' (the router sends
//! the feed through the same pipeline); reading is `service::feed::read_page`. A request
//! that finds nothing and asks to wait sleeps on `Store::events_watch` (moved only after a
//! COMMIT) and reads again when it moves, so the answer follows the next matching commit by
//! milliseconds; at the deadline it answers with no events and `next` at the newest event.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::{App, Body, Ctx, json_text_response};
use crate::error::{Error, Result};
use crate::service::client_key;
use crate::service::events::TYPES;
use crate::service::feed::{self, After, DEFAULT_PAGE, MAX_PAGE, Page};

/// Longest `wait`, in seconds (longer ones are cut to it): under Cloudflare's 100-s idle
/// limit; behind nginx, `proxy_read_timeout` must be above it (its default is 60 s).
pub const MAX_WAIT_SECS: u64 = 60;
/// Requests waiting at once; beyond, a request that would wait is answered 503 with
/// `Retry-After` (answering it 200 at once would set its loop spinning).
pub const MAX_WAITERS: usize = 64;
/// Requests waiting at once per token, and per client (address, or IPv6 /64): within the
/// global cap, so one reader (a leaked read token, one address) cannot take every slot.
pub const MAX_WAITERS_PER_TOKEN: usize = 8;
pub const MAX_WAITERS_PER_CLIENT: usize = 8;

/// Who a waiter is counted under: its token, and its client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Token(String),
    Client(IpAddr),
}

/// The feed's long-poll waiters: how many may wait, in all and per holder, and the signal
/// that ends every wait at shutdown.
pub struct Waiters {
    permits: Arc<Semaphore>,
    held: Mutex<HashMap<Holder, usize>>,
    stop: watch::Sender<bool>,
}

impl Default for Waiters {
    fn default() -> Self {
        Waiters {
            permits: Arc::new(Semaphore::new(MAX_WAITERS)),
            held: Mutex::default(),
            stop: watch::Sender::new(false),
        }
    }
}

impl Waiters {
    /// Ends every wait now and every later one at once: the server is stopping.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// A place to wait for `token` from `client`, unless either holds its share already or
    /// every place is taken; given back when dropped.
    fn enter(&self, token: &str, client: Option<IpAddr>) -> Result<Waiting<'_>> {
        let holders: Vec<(Holder, usize)> =
            std::iter::once((Holder::Token(token.to_string()), MAX_WAITERS_PER_TOKEN))
                .chain(client.map(|c| (Holder::Client(client_key(c)), MAX_WAITERS_PER_CLIENT)))
                .collect();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((holder, cap)) = holders
            .iter()
            .find(|(h, cap)| held.get(h).copied().unwrap_or(0) >= *cap)
        {
            let who = match holder {
                Holder::Token(_) => "this token",
                Holder::Client(_) => "this client",
            };
            return Err(Error::Busy(format!(
                "{cap} feed requests from {who} are waiting already; retry shortly"
            )));
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Err(Error::Busy(format!(
                "{MAX_WAITERS} feed requests are waiting already; retry shortly"
            )));
        };
        for (h, _) in &holders {
            *held.entry(h.clone()).or_default() += 1;
        }
        Ok(Waiting {
            waiters: self,
            holders: holders.into_iter().map(|(h, _)| h).collect(),
            _permit: permit,
        })
    }
}

/// One request's place among the waiters.
struct Waiting<'a> {
    waiters: &'a Waiters,
    holders: Vec<Holder>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut held = self
            .waiters
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for h in &self.holders {
            if let Some(n) = held.get_mut(h) {
                *n -= 1;
                if *n == 0 {
                    held.remove(h);
                }
            }
        }
    }
}

/// The feed's query parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Query {
    after: After,
    types: Vec<String>,
    limit: u32,
    wait: Duration,
}

impl Query {
    fn parse(query: Option<&str>) -> Result<Query> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let param = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        };
        let after = match param("after") {
            None | Some("") => After::Oldest,
            Some(v) if v.eq_ignore_ascii_case("now") => After::Now,
            Some(v) => After::Seq(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                Error::InvalidValue(format!("\"after\" is an event id or \"now\", not \"{v}\""))
            })?),
        };
        let limit = match param("limit") {
            None | Some("") => DEFAULT_PAGE,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    Error::InvalidValue(format!(
                        "\"limit\" is a whole number from 1 to {MAX_PAGE}, not \"{v}\""
                    ))
                })?,
        };
        let wait = match param("wait") {
            None | Some("") => 0,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| {
                    Error::InvalidValue(format!(
                        "\"wait\" is a whole number of seconds (at most {MAX_WAIT_SECS}), \
                         not \"{v}\""
                    ))
                })?
                .min(MAX_WAIT_SECS),
        };
        let mut types: Vec<String> = Vec::new();
        for t in param("types").unwrap_or("").split(',').map(str::trim) {
            if t.is_empty() || types.iter().any(|k| k == t) {
                continue;
            }
            if !TYPES.contains(&t) {
                return Err(Error::InvalidValue(format!(
                    "unknown event type \"{t}\"; the types are {}",
                    TYPES.join(", ")
                )));
            }
            types.push(t.to_string());
        }
        Ok(Query {
            after,
            types,
            limit,
            wait: Duration::from_secs(wait),
        })
    }
}

async fn read(app: &App, after: After, types: &[String], limit: u32) -> Result<Page> {
    // A filtered read may look at `feed::MAX_EXAMINED` events to serve none: it takes a scan
    // permit, as SCIM searches no index answers do, so such reads never hold every reader
    // against the identity provider's lookups. An unfiltered one looks only at what it serves.
    let scan = !types.is_empty();
    let types = types.to_vec();
    app.store
        .read_list(scan, move |conn| {
            feed::read_page(conn, after, &types, limit)
        })
        .await
}

pub async fn feed(app: &App, ctx: &Ctx) -> Result<Response<Body>> {
    let q = Query::parse(ctx.query.as_deref())?;
    // Subscribed before the first read, so a commit between that read and the wait still
    // wakes it.
    let mut head = app.store.events_watch();
    head.borrow_and_update();
    let mut page = read(app, q.after, &q.types, q.limit).await?;
    // A read that stopped at its bound answers at once, so the consumer carries on from `next`.
    if page.events.is_empty() && !page.more && !q.wait.is_zero() {
        let _waiting = app
            .feed
            .enter(&ctx.actor.name, ctx.actor.client.parse().ok())?;
        let mut stop = app.feed.stop.subscribe();
        let deadline = tokio::time::Instant::now() + q.wait;
        while page.events.is_empty() && !page.more && !*stop.borrow_and_update() {
            tokio::select! {
                moved = head.changed() => if moved.is_err() { break },
                _ = stop.changed() => break,
                () = tokio::time::sleep_until(deadline) => break,
            }
            page = read(app, After::Seq(page.next), &q.types, q.limit).await?;
        }
        // At the deadline (or shutdown) `page` is empty with `next` at the newest event
        // read: a consumer of a few types advances past the others instead of going stale.
    }
    let body = format!(
        "{{\"events\":[{}],\"next\":\"{}\"}}",
        page.events.join(","),
        page.next
    );
    let mut response = json_text_response(StatusCode::OK, body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<Query> {
        Query::parse(Some(s))
    }

    #[test]
    fn parameters_default_and_are_bounded() {
        let d = Query::parse(None).unwrap();
        assert_eq!(
            d,
            Query {
                after: After::Oldest,
                types: vec![],
                limit: DEFAULT_PAGE,
                wait: Duration::ZERO
            }
        );
        assert_eq!(q("after=12").unwrap().after, After::Seq(12));
        assert_eq!(q("after=0").unwrap().after, After::Seq(0));
        assert_eq!(q("AFTER=now").unwrap().after, After::Now);
        assert_eq!(q("after=").unwrap().after, After::Oldest);
        assert_eq!(q("limit=1000").unwrap().limit, 1000);
        assert_eq!(q("wait=30").unwrap().wait, Duration::from_secs(30));
        assert_eq!(
            q("wait=600").unwrap().wait,
            Duration::from_secs(MAX_WAIT_SECS)
        );
        for bad in [
            "after=-1",
            "after=abc",
            "after=1.5",
            "limit=0",
            "limit=1001",
            "limit=x",
            "wait=-1",
            "wait=1.5",
        ] {
            assert!(
                matches!(q(bad), Err(Error::InvalidValue(_))),
                "{bad} is refused"
            );
        }
    }

    #[test]
    fn types_are_a_comma_list_of_known_types() {
        let t = q("types=user.deactivated,%20group.members_added,,user.deactivated").unwrap();
        assert_eq!(t.types, vec!["user.deactivated", "group.members_added"]);
        assert!(q("types=").unwrap().types.is_empty());
        for bad in [
            "types=user.*",
            "types=user.created,user.suspended",
            "types=User.Created",
        ] {
            let Err(Error::InvalidValue(m)) = q(bad) else {
                panic!("{bad} is refused")
            };
            assert!(m.contains("user.reactivated"), "names the known types: {m}");
        }
    }
}
