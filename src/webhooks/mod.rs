//! Signed webhooks (Standard Webhooks) fed from the events outbox: endpoints, their secrets,
//! delivery workers, and the use cases the CLI and the console call.
//!
//! Delivery state lives in the database (`store::webhooks`): one cursor per endpoint plus
//! the retry state of the event after it. A worker per endpoint delivers events after its
//! cursor one at a time in commit order, and moves the cursor in one write after a 2xx, so a
//! restart or `kill -9` loses nothing and repeats at most the delivery in flight.

pub mod client;
pub mod format;
mod metrics;
pub mod sign;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::scim::time;
use crate::service::audit::Actor;
use crate::store::webhooks::{self as sql, Endpoint, NewEndpoint};
use crate::store::{Store, events};

pub use client::{Client, Sent, Timeouts};
pub use metrics::Metrics;
pub use worker::supervise;

/// The event types an endpoint may ask for (the change events contract).
pub use crate::service::events::TYPES;

/// How deliveries are made and retried.
#[derive(Debug, Clone)]
pub struct Settings {
    /// PEM certificate authorities trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    pub timeouts: Timeouts,
    /// The wait after a first failure; it doubles with each further one, up to `max_retry`.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// How long an endpoint may keep failing before it is paused.
    pub retry_window: Duration,
    /// How often workers look for changes made by another process (`scimd webhook …`
    /// beside the server); changes made in this one wake them at once.
    pub tick: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ca_file: None,
            timeouts: Timeouts::default(),
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(3600),
            retry_window: Duration::from_secs(3 * 24 * 3600),
            tick: Duration::from_secs(5),
        }
    }
}

/// The delivery machinery of a running server: the store, one client, the settings, the
/// metrics, and a signal that wakes workers when an endpoint changes in this process.
pub struct Hub {
    store: Store,
    client: Client,
    settings: Settings,
    epoch: String,
    pub metrics: Metrics,
    changes: tokio::sync::watch::Sender<u64>,
}

impl Hub {
    pub fn new(store: Store, settings: Settings) -> Result<Hub> {
        let client = Client::new(settings.ca_file.as_deref(), settings.timeouts)?;
        let epoch = store.read_sync(sql::epoch)?;
        Ok(Hub {
            store,
            client,
            settings,
            epoch,
            metrics: Metrics::default(),
            changes: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Wakes the supervisor and the workers: an endpoint was added, changed or removed.
    /// The service functions below change the database only; a caller inside the server
    /// (the console) calls this after them, and changes from another process (`scimd
    /// webhook …`) are noticed within `Settings::tick`.
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// What `add` needs.
pub struct Add<'a> {
    pub name: &'a str,
    pub url: &'a str,
    /// Event types delivered; empty: all.
    pub types: &'a [String],
    /// `standard` or `chat`.
    pub format: &'a str,
    pub allow_http: bool,
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidValue(format!(
            "webhook name \"{name}\": 1 to 64 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Checks a list of event types against `TYPES`.
pub fn check_types(types: &[String]) -> Result<()> {
    match types.iter().find(|t| !TYPES.contains(&t.as_str())) {
        Some(t) => Err(Error::InvalidValue(format!(
            "unknown event type \"{t}\"; known: {}",
            TYPES.join(", ")
        ))),
        None => Ok(()),
    }
}

fn audit(
    tx: &rusqlite::Connection,
    actor: &Actor,
    action: &str,
    name: &str,
    detail: Option<serde_json::Value>,
) -> Result<()> {
    crate::service::audit::record_named(tx, actor, action, "Webhook", name, detail)
}

fn missing(name: &str) -> Error {
    Error::NotFound(format!("no webhook named \"{name}\""))
}

/// Registers an endpoint; it receives events committed from now on. Returns it with its
/// signing secret as shown (`whsec_…`), which is shown only this once. Blocking.
pub fn add(store: &Store, add: &Add<'_>, actor: &Actor) -> Result<(Endpoint, String)> {
    check_name(add.name)?;
    check_types(add.types)?;
    if !["standard", "chat"].contains(&add.format) {
        return Err(Error::InvalidValue(format!(
            "webhook format \"{}\": standard or chat",
            add.format
        )));
    }
    let url = client::check_url(add.url, add.allow_http)?;
    let secret = sign::fresh()?;
    let new = NewEndpoint {
        name: add.name,
        url: &url,
        types: add.types,
        format: add.format,
        allow_http: add.allow_http,
    };
    let endpoint = store.write_sync(|tx| {
        if sql::by_name(tx, add.name)?.is_some() {
            return Err(Error::Uniqueness(format!(
                "a webhook named \"{}\" exists already",
                add.name
            )));
        }
        let seq = sql::insert(tx, &new, events::head(tx)?, &secret, &time::now())?;
        // The host only: a chat webhook URL's path is itself a secret.
        let host = url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(String::from));
        let detail = serde_json::json!({"host": host, "format": add.format, "events": add.types});
        audit(tx, actor, "webhook.add", add.name, Some(detail))?;
        sql::get(tx, seq)?.ok_or_else(|| Error::internal("the new webhook vanished"))
    })?;
    Ok((endpoint, sign::show(&secret)))
}

/// An endpoint with how far behind it is.
#[derive(Debug, Clone)]
pub struct Status {
    pub endpoint: Endpoint,
    /// Matching events not yet delivered (counted up to `LAG_CAP`).
    pub pending: i64,
    /// When the oldest of them was committed.
    pub oldest_pending_at: Option<String>,
    /// Events retention pruned before the endpoint got them (first, last seq), if any.
    pub pruned: Option<(i64, i64)>,
}

/// Lag is counted up to this many events ("10000+").
pub const LAG_CAP: i64 = 10_000;

fn status(conn: &rusqlite::Connection, endpoint: Endpoint) -> Result<Status> {
    let pending = sql::pending(conn, endpoint.cursor, &endpoint.types, LAG_CAP)?;
    let oldest_pending_at = events::after(conn, endpoint.cursor, &endpoint.types, 1)?
        .pop()
        .map(|e| e.at);
    let pruned = sql::gap(conn, endpoint.cursor)?;
    Ok(Status {
        endpoint,
        pending,
        oldest_pending_at,
        pruned,
    })
}

/// Every endpoint with its lag. Blocking.
pub fn list(store: &Store) -> Result<Vec<Status>> {
    store.read_sync(|conn| {
        sql::list(conn)?
            .into_iter()
            .map(|endpoint| status(conn, endpoint))
            .collect()
    })
}

/// One endpoint with its lag and its newest `limit` attempts (newest first), each with the
/// type of its event while the event is kept: what the console's delivery log shows. Blocking.
pub fn log(store: &Store, name: &str, limit: u32) -> Result<(Status, Vec<sql::Logged>)> {
    store.read_sync(|conn| {
        let e = sql::by_name(conn, name)?.ok_or_else(|| missing(name))?;
        let logged = sql::logged(conn, e.seq, limit)?;
        Ok((status(conn, e)?, logged))
    })
}

/// How an endpoint's URL is shown: scheme, host and path, never the query (it may hold a
/// key); a chat URL's path is itself the secret, so only its first few characters.
pub fn shown_url(url: &str, format: &str) -> String {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return "(unreadable URL)".into();
    };
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map_or("", |a| a.as_str());
    let path = uri.path();
    let mut shown = format!("{scheme}://{authority}");
    if format == "chat" && path.len() > 1 {
        // At most half of it, so a short path is never shown whole.
        let shown_chars = CHAT_PATH_SHOWN.min(path.chars().count() / 2);
        let head: String = path.chars().take(shown_chars).collect();
        shown.push_str(&head);
        shown.push('…');
    } else {
        shown.push_str(path);
        if uri.query().is_some() {
            shown.push_str("?…");
        }
    }
    shown
}

/// Characters of a chat URL's path shown at most (Slack's `/services/…`, Mattermost's
/// `/hooks/xx…`).
const CHAT_PATH_SHOWN: usize = 10;

/// Removes an endpoint (its secrets and attempts log with it). Blocking.
pub fn remove(store: &Store, name: &str, actor: &Actor) -> Result<()> {
    store.write_sync(|tx| {
        if !sql::remove(tx, name)? {
            return Err(missing(name));
        }
        audit(tx, actor, "webhook.remove", name, None)
    })
}

/// Gives an endpoint a new signing secret and returns it as shown; the old one keeps
/// signing beside it for `overlap` (zero: it stops at once). Blocking.
pub fn rotate(store: &Store, name: &str, overlap: Duration, actor: &Actor) -> Result<String> {
    let secret = sign::fresh()?;
    let now = ::time::OffsetDateTime::now_utc();
    let until = time::format(now + overlap);
    store.write_sync(|tx| {
        let e = sql::by_name(tx, name)?.ok_or_else(|| missing(name))?;
        sql::rotate(tx, e.seq, &secret, &time::format(now), &until)?;
        let detail = serde_json::json!({"oldSecretValidUntil": until});
        audit(tx, actor, "webhook.rotate", name, Some(detail))
    })?;
    Ok(sign::show(&secret))
}

/// Resumes an endpoint: the event it is stuck at is tried now, with a fresh retry window,
/// and everything after it follows. If retention pruned events it never got, resuming
/// acknowledges that gap: it goes on from the oldest kept event, and the gap is returned
/// (and audited) so the caller can say so. Blocking.
pub fn resume(store: &Store, name: &str, actor: &Actor) -> Result<Option<(i64, i64)>> {
    store.write_sync(|tx| {
        let e = sql::by_name(tx, name)?.ok_or_else(|| missing(name))?;
        let gap = sql::gap(tx, e.cursor)?;
        if let Some((_, last)) = gap {
            sql::skip_to(tx, e.seq, e.cursor, last)?;
        }
        sql::resume(tx, name, &time::now())?;
        let detail = gap.map(|(first, last)| {
            serde_json::json!({"prunedEvents": {"first": first.to_string(), "last": last.to_string()}})
        });
        audit(tx, actor, "webhook.resume", name, detail)?;
        Ok(gap)
    })
}

/// Why an endpoint is paused when retention pruned events `first..=last` before it got them.
pub fn gap_reason(first: i64, last: i64) -> String {
    let events = if first == last {
        format!("event {first} was")
    } else {
        format!("events {first}–{last} were")
    };
    format!("{events} {GAP_REASON}")
}

const GAP_REASON: &str =
    "pruned by retention before delivery: resync the receiver from SCIM, then resume";

/// Whether `last_error` is the reason of a pause for a gap starting at event `first`: that
/// gap is recorded already (growing afterwards does not record it again).
pub fn gap_recorded(last_error: Option<&str>, first: i64) -> bool {
    last_error.is_some_and(|e| {
        e.ends_with(GAP_REASON)
            && (e.starts_with(&format!("event {first} was "))
                || e.starts_with(&format!("events {first}–")))
    })
}

/// The newest delivery attempts of an endpoint, newest first (`log` without the types).
/// Blocking.
pub fn attempts(store: &Store, name: &str, limit: u32) -> Result<Vec<sql::Attempt>> {
    Ok(log(store, name, limit)?
        .1
        .into_iter()
        .map(|l| l.attempt)
        .collect())
}

/// What is sent: the body and the signed headers.
pub struct Delivery {
    pub id: String,
    pub body: Bytes,
}

impl Delivery {
    /// The delivery of event `seq` (with stored `payload`) to an endpoint of `format`.
    /// `epoch` makes the id unique across restores of the database.
    pub fn event(epoch: &str, seq: i64, payload: &str, format: &str) -> Delivery {
        Delivery::formatted(
            format!("evt_{epoch}_{seq}"),
            events::body(seq, payload),
            format,
        )
    }

    /// A test event, delivered outside the endpoint's order and never retried.
    pub fn test(format: &str, actor: &Actor) -> Delivery {
        let id = format!("test_{}", uuid::Uuid::new_v4().simple());
        let body = serde_json::json!({
            "id": id,
            "type": "webhook.test",
            "time": time::now(),
            "actor": {"kind": actor.kind.as_str(), "name": actor.name},
        })
        .to_string();
        Delivery::formatted(id, body, format)
    }

    /// The event `body` as an endpoint of `format` takes it: as is, or its chat sentence.
    fn formatted(id: String, body: String, format: &str) -> Delivery {
        let body = if format == "chat" {
            format::chat(&body)
        } else {
            body
        };
        Delivery {
            id,
            body: Bytes::from(body),
        }
    }

    /// Signs and POSTs this delivery now, with every secret that signs (current first).
    pub async fn send(&self, client: &Client, endpoint: &Endpoint, secrets: &[Vec<u8>]) -> Sent {
        let timestamp = ::time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign::signature(secrets, &self.id, timestamp, &self.body);
        // An endpoint stored before its URL was allowed (or edited by hand) is checked again.
        if let Err(e) = client::check_url(&endpoint.url, endpoint.allow_http) {
            return Sent {
                status: None,
                error: Some(e.to_string()),
                response: String::new(),
                duration: Duration::ZERO,
                retry_after: None,
            };
        }
        let headers = [
            ("webhook-id", self.id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        client
            .post(&endpoint.url, &headers, self.body.clone())
            .await
    }
}

/// Logs a test or manual attempt (the endpoint's cursor and retry state stay; nothing if it
/// was removed meanwhile) and, with an `auditor`, audits it as theirs with what came of it
/// (never the error text: it may quote the URL).
async fn log_manual(
    store: &Store,
    endpoint: &Endpoint,
    event: Option<i64>,
    trigger: &'static str,
    sent: &Sent,
    auditor: Option<&Actor>,
) -> Result<()> {
    let (sent, auditor, seq, name) = (
        sent.clone(),
        auditor.cloned(),
        endpoint.seq,
        endpoint.name.clone(),
    );
    let action = if event.is_some() {
        "webhook.resend"
    } else {
        "webhook.test"
    };
    store
        .write(move |tx| {
            let now = time::now();
            // Removed while the attempt was in flight: its log went with it.
            if sql::get(tx, seq)?.is_some() {
                sql::log_attempt(
                    tx,
                    seq,
                    &outcome(event, 1, trigger, &now, &sent),
                    Some(&oldest_kept()),
                )?;
            }
            let Some(actor) = auditor else {
                return Ok(());
            };
            let detail = serde_json::json!({
                "event": event,
                "delivered": sent.error.is_none(),
                "httpStatus": sent.status,
            });
            audit(tx, &actor, action, &name, Some(detail))
        })
        .await
}

/// The attempts log row of `sent`.
fn outcome<'a>(
    event: Option<i64>,
    attempt: i64,
    trigger: &'a str,
    at: &'a str,
    sent: &'a Sent,
) -> sql::Outcome<'a> {
    sql::Outcome {
        event_seq: event,
        attempt,
        trigger,
        at,
        duration_ms: i64::try_from(sent.duration.as_millis()).unwrap_or(i64::MAX),
        status: sent.status.map(i64::from),
        error: sent.error.as_deref(),
        response: (!sent.response.is_empty()).then_some(sent.response.as_str()),
    }
}

/// Attempts older than this are dropped from the log.
fn oldest_kept() -> String {
    time::format(::time::OffsetDateTime::now_utc() - ::time::Duration::days(sql::ATTEMPTS_DAYS))
}

/// Sends a test event (naming `actor`) to the endpoint called `name` now and logs it: what
/// came of it. Not audited: it changes nothing (`test_audited` is the console's).
pub async fn test(store: &Store, client: &Client, name: &str, actor: &Actor) -> Result<Sent> {
    send_test(store, client, name, actor, None).await
}

/// `test`, audited as `actor`'s: the console records every action of its administrators.
pub async fn test_audited(
    store: &Store,
    client: &Client,
    name: &str,
    actor: &Actor,
) -> Result<Sent> {
    send_test(store, client, name, actor, Some(actor)).await
}

async fn send_test(
    store: &Store,
    client: &Client,
    name: &str,
    actor: &Actor,
    auditor: Option<&Actor>,
) -> Result<Sent> {
    let (endpoint, secrets) = signing(store, name).await?;
    let sent = Delivery::test(&endpoint.format, actor)
        .send(client, &endpoint, &secrets)
        .await;
    log_manual(store, &endpoint, None, "test", &sent, auditor).await?;
    Ok(sent)
}

/// Sends event `seq` to the endpoint called `name` once more, now, outside its order (its
/// cursor stays); logged as a manual attempt.
pub async fn resend(store: &Store, client: &Client, name: &str, seq: i64) -> Result<Sent> {
    send_again(store, client, name, seq, None).await
}

/// `resend`, audited as `actor`'s (the console's administrator).
pub async fn resend_audited(
    store: &Store,
    client: &Client,
    name: &str,
    seq: i64,
    actor: &Actor,
) -> Result<Sent> {
    send_again(store, client, name, seq, Some(actor)).await
}

async fn send_again(
    store: &Store,
    client: &Client,
    name: &str,
    seq: i64,
    auditor: Option<&Actor>,
) -> Result<Sent> {
    let (endpoint, secrets) = signing(store, name).await?;
    let (event, epoch) = store
        .read(move |conn| {
            let event = events::after(conn, seq - 1, &[], 1)?
                .pop()
                .filter(|e| e.seq == seq);
            Ok((event, sql::epoch(conn)?))
        })
        .await?;
    let event =
        event.ok_or_else(|| Error::NotFound(format!("no event {seq} (past retention?)")))?;
    let sent = Delivery::event(&epoch, event.seq, &event.payload, &endpoint.format)
        .send(client, &endpoint, &secrets)
        .await;
    log_manual(store, &endpoint, Some(seq), "manual", &sent, auditor).await?;
    Ok(sent)
}

/// The endpoint called `name` and the secrets that sign for it now.
async fn signing(store: &Store, name: &str) -> Result<(Endpoint, Vec<Vec<u8>>)> {
    let name = name.to_string();
    store
        .read(move |conn| {
            let e = sql::by_name(conn, &name)?.ok_or_else(|| missing(&name))?;
            let secrets = sql::secrets(conn, e.seq, &time::now())?;
            Ok((e, secrets))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_recorded_once_by_its_first_event_whatever_its_last() {
        let reason = gap_reason(7, 9);
        assert!(gap_recorded(Some(&reason), 7));
        assert!(gap_recorded(Some(&gap_reason(7, 7)), 7));
        assert!(!gap_recorded(Some(&reason), 8), "a new gap after a resume");
        assert!(!gap_recorded(Some(&gap_reason(17, 19)), 1));
        assert!(!gap_recorded(Some("HTTP 500"), 7));
        assert!(!gap_recorded(None, 7));
    }

    #[test]
    fn a_url_is_shown_without_its_query_and_a_chat_url_without_its_path() {
        let show = shown_url;
        assert_eq!(
            show("https://hooks.example.com:8443/scimd?key=k1", "standard"),
            "https://hooks.example.com:8443/scimd?…"
        );
        assert_eq!(
            show("http://10.0.0.5/hook", "standard"),
            "http://10.0.0.5/hook"
        );
        assert_eq!(
            show("https://hooks.slack.com/services/T0/B0/secret", "chat"),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(
            show("https://mm.example/hooks/abcdefghijkl", "chat"),
            "https://mm.example/hooks/ab…"
        );
        assert_eq!(
            show("https://h.example/abcd", "chat"),
            "https://h.example/a…"
        );
        assert_eq!(show("https://h.example/", "chat"), "https://h.example/");
    }
}
