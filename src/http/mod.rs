//! The hyper adapter: accept loop, graceful drain on shutdown, and the per-request pipeline
//! (route → authenticate → read body → handler → SCIM-shaped response → one log line).
//! Handlers stay thin: they decode, call a service function and encode.

mod admin_api;
mod admin_api_overview;
mod assets;
mod auth;
mod body;
mod bulk;
mod connection;
mod deadline;
pub mod events;
pub mod limits;
mod metrics;
pub mod router;
mod scim;
pub mod tls;

pub use admin_api::setup_link;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::service::audit::{Actor, ActorKind, Rejections};
use crate::service::tokens::{LastUsed, Scope};
use crate::store::Store;
use router::{Route, RouteError};

/// Request headers larger than this get 431 (hyper also refuses more than 100 headers).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long a client may take to complete the TLS handshake (then the connection is closed).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// What hyper buffers per connection: read, the request head (at most `MAX_HEADER_BYTES`) and
/// pipelined requests after it; to write, the answer. hyper handles one request at a time (the
/// next is read once the answer before it is handed over to be written), so this bounds what a
/// client that pipelines requests can make scimd hold.
const MAX_BUF_BYTES: usize = MAX_HEADER_BYTES + 64 * 1024;

/// What every request handler can reach.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub last_used: LastUsed,
    /// Requests and failures of SCIM clients, per token and client address (the Overview).
    pub activity: crate::service::activity::Activity,
    /// Changes per day of days gone by, kept between reads of the Overview.
    pub days: crate::service::overview::Days,
    /// Rejected SCIM requests waiting for the audit log.
    pub rejections: Rejections,
    /// Which writes that changed nothing but ignored names were recorded lately
    /// (`service::ignored`).
    pub unchanged: crate::service::ignored::Memo,
    /// Bounds the password hashing that sign-in and setup do.
    pub hashing: crate::service::admin::Hashing,
    /// Per-client limits: connections, failed authentications, sign-in.
    pub limits: limits::Limits,
    /// What `/metrics` reports.
    pub metrics: metrics::Metrics,
    /// Webhook delivery: its client, metrics and workers' wake-up.
    pub webhooks: Arc<crate::webhooks::Hub>,
    pub local_addr: SocketAddr,
    /// Built-in HTTPS, when configured.
    pub tls: Option<tls::Tls>,
    /// The change feed's long-poll waiters.
    pub feed: events::Waiters,
    /// The marks of the console's connection checks in progress (`connection`).
    pub check_marks: connection::Marks,
}

pub use body::Body;

/// Serves `listener` until `shutdown` resolves, then stops accepting and drains connections.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_BUF_BYTES);
    let refusing = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSING));
    // Tells every connection that the server is stopping (those serving requests close after
    // the one in flight; those still in their TLS handshake at once).
    let (stopping, stop_seen) = tokio::sync::watch::channel(false);
    // Each connection's task holds a sender: the drain is over when all are dropped.
    let (open_tx, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // One address holds at most its share; at the total, an address over its fair
                // share makes room (`limits::Connections`).
                let slot = match app.limits.connections.open(peer.ip()) {
                    limits::Admit::Open(slot) => Arc::new(slot),
                    limits::Admit::ClientFull => {
                        refused(&app, stream, peer, &refusing, PER_CLIENT_FULL);
                        continue;
                    }
                    limits::Admit::AllFull => {
                        refused(&app, stream, peer, &refusing, ALL_FULL);
                        continue;
                    }
                };
                let conn = Connection {
                    app: app.clone(),
                    builder: builder.clone(),
                    slot,
                    stop_seen: stop_seen.clone(),
                    _open: open_tx.clone(),
                };
                tokio::spawn(conn.serve(stream, peer));
            }
            () = &mut shutdown => break,
        }
    }
    drop((listener, open_tx));
    let _ = stopping.send(true);
    // Long polls answer now rather than hold the drain for up to a minute.
    app.feed.stop();
    info!("shutting down: draining in-flight requests");
    tokio::select! {
        _ = all_closed.recv() => info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => warn!("drain timed out; closing remaining connections"),
    }
}

/// One accepted connection and what it needs to be served.
struct Connection {
    app: Arc<App>,
    builder: http1::Builder,
    slot: Arc<limits::ConnectionSlot>,
    stop_seen: tokio::sync::watch::Receiver<bool>,
    /// Dropped with the connection: `serve` drains until every one is.
    _open: tokio::sync::mpsc::Sender<()>,
}

impl Connection {
    async fn serve(mut self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        // The address the client reached, for the console's origin check.
        let local = stream.local_addr().ok().map(LocalAddr);
        match &self.app.tls {
            None => self.serve_io(stream, peer, local).await,
            Some(tls) => {
                let handshake =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream));
                let stream = tokio::select! {
                    done = handshake => match done {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            if let Some(closed) = self.app.limits.closed_log.note() {
                                info!(%peer, closed, "no TLS handshake in time: closed");
                            }
                            return;
                        }
                    },
                    _ = self.stop_seen.wait_for(|stop| *stop) => return,
                    // Asked to make room for another before it said anything.
                    () = self.slot.close_requested().notified() => return,
                };
                self.serve_io(stream, peer, local).await;
            }
        }
    }

    /// Serves HTTP/1 on `stream` until the client or hyper ends it, or until the connection
    /// is asked to close (to make room, or at shutdown): then after the request in flight.
    async fn serve_io<T>(mut self, stream: T, peer: SocketAddr, local: Option<LocalAddr>)
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        // Whether the connection carried a request: an idle keep-alive connection timing out
        // is routine, a client that never sent one is not.
        let used = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let service = service_fn({
            let (app, used, slot) = (self.app.clone(), used.clone(), self.slot.clone());
            move |mut req: Request<Incoming>| {
                used.store(true, std::sync::atomic::Ordering::Relaxed);
                // Only the console's sign-in reads it; other requests skip the allocation.
                if let Some(local) = local
                    && req.uri().path().starts_with(admin_api::PREFIX)
                {
                    req.extensions_mut().insert(local);
                }
                // In flight until answered: a connection with none may be asked to close.
                let in_flight = slot.request();
                let app = app.clone();
                async move {
                    let response = handle(app, req, peer, &in_flight).await;
                    drop(in_flight);
                    response
                }
            }
        });
        let write_timeout = self.app.config.write_timeout;
        let io = TokioIo::new(deadline::WriteDeadline::new(stream, write_timeout));
        let conn = self.builder.serve_connection(io, service);
        tokio::pin!(conn);
        let close = self.slot.close_requested();
        let stop_seen = &mut self.stop_seen;
        // Whether the connection was asked to close to make room (else the server stops).
        let asked = async {
            tokio::select! {
                () = close.notified() => true,
                _ = stop_seen.wait_for(|stop| *stop) => false,
            }
        };
        let served = tokio::select! {
            served = conn.as_mut() => served,
            to_make_room = asked => {
                // A flood of newcomers costs a few lines per interval, not one each.
                if to_make_room && let Some(closed) = self.app.limits.closed_log.note() {
                    info!(%peer, closed, "closing a connection to make room for another client \
                        (its address held the most, over a fair share; behind a proxy: idle longest)");
                }
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = served {
            let used = used.load(std::sync::atomic::Ordering::Relaxed);
            log_connection_error(&self.app, &e, peer, used);
        }
    }
}

/// One log line for a connection hyper closed because a client broke a limit (a few per
/// `limits::CLOSED_LOG_EVERY` at most, `closed` counting those since the last line); other
/// ends (the client hung up mid-response, an idle keep-alive connection timing out after
/// serving requests) are routine and only logged at debug.
fn log_connection_error(app: &App, e: &hyper::Error, peer: SocketAddr, served_a_request: bool) {
    // `deadline::WriteDeadline`'s error: the client did not read its answers.
    let not_reading = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
    let broke_a_limit = e.is_parse_too_large()
        || e.is_parse()
        || (e.is_timeout() && !served_a_request)
        || not_reading;
    if !broke_a_limit {
        debug!(error = %e, %peer, "connection ended");
        return;
    }
    // A flood of such connections costs a few lines per interval, not one each.
    let Some(closed) = app.limits.closed_log.note() else {
        return;
    };
    if not_reading {
        info!(%peer, closed, "answers not read in time (write deadline): closed");
    } else if e.is_parse_too_large() {
        info!(%peer, closed, error = %e, "request line or headers over the limit: refused, closed");
    } else if e.is_parse() {
        info!(%peer, closed, error = %e, "malformed or unsupported request: closed");
    } else {
        info!(%peer, closed, "no complete request in time (slow client): closed");
    }
}

fn header_text<B>(req: &Request<B>, name: http::header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The address a connection reached (this server's side), as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// Connections being refused at once, at most; beyond, a refused connection is just closed.
const MAX_REFUSING: usize = 64;
/// How long a refused connection may take to send its request head (and to take the answer).
const REFUSE_WAIT: Duration = Duration::from_secs(1);
/// How much of a refused connection's request head is read.
const REFUSE_HEAD_BYTES: usize = 8 * 1024;
const PER_CLIENT_FULL: &str =
    "too many connections from this client address: close some or retry later";
const ALL_FULL: &str = "too many connections: retry later";

/// Counts and (at most once per interval) logs a refused connection, then answers it 503.
fn refused(
    app: &App,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    refusing: &Arc<tokio::sync::Semaphore>,
    why: &'static str,
) {
    if let Some(n) = app.limits.connections.note_refused() {
        warn!(
            %peer,
            refused = n,
            reason = why,
            per_client = app.limits.connections.per_client(),
            total = app.config.max_connections,
            "connections refused (one line per {} s at most; `refused` counts them since the last)",
            limits::REFUSED_LOG_EVERY.as_secs()
        );
    }
    // A TLS client could not read a plain-text 503: it is just closed.
    if app.tls.is_some() {
        return;
    }
    if let Ok(permit) = refusing.clone().try_acquire_owned() {
        tokio::spawn(refuse(stream, permit, why));
    }
}

/// Answers a refused connection with a readable 503: reads the request head first (bounded
/// in bytes and time), then answers, closes its side and reads whatever else comes until the
/// client closes too; closing with unread data would reset the connection and lose the answer.
async fn refuse(
    mut stream: tokio::net::TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
    why: &str,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read_head = async {
        while head.len() < REFUSE_HEAD_BYTES && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(REFUSE_WAIT, read_head).await;
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "503",
        "detail": why,
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    if !matches!(tokio::time::timeout(REFUSE_WAIT, answer).await, Ok(Ok(()))) {
        return;
    }
    let drain = async { while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(REFUSE_WAIT, drain).await;
}

/// Every line of a list-valued header, joined with commas; a value that is not visible ASCII
/// is kept as one that matches no entity tag, so a garbled `If-Match` fails (412) rather than
/// being ignored.
fn header_list<B>(req: &Request<B>, name: http::header::HeaderName) -> Option<String> {
    let values: Vec<&str> = req
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("\"\u{fffd}\""))
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Everything a handler needs to know about the request besides its body.
pub struct Ctx {
    /// The SCIM base URL for locations: `<origin>/scim/v2`.
    pub base: String,
    pub query: Option<String>,
    /// `If-Match` and `If-None-Match` (RFC 7644 §3.14).
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    /// Who is asking, for the audit log.
    pub actor: Actor,
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
    conn: &limits::InFlightRequest,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let json_only = accepts_only_json(&req);
    // Behind a trusted reverse proxy, the client is who the proxy says it is.
    let client = client_ip(&app, &req, peer.ip());
    let route = router::route(req.method(), req.uri().path());
    let pattern = match &route {
        Ok(r) => r.pattern(),
        Err(_) if req.uri().path() == "/metrics" => "/metrics",
        Err(_) if req.uri().path().starts_with(admin_api::PREFIX) => admin_api::PREFIX,
        Err(_) => "-",
    };
    let in_flight = InFlight::start(app.clone(), method, pattern, client, started);
    // A panic in the handler becomes a 500 for this request instead of a dropped connection.
    // Caught in place rather than by spawning a task per request: a spawned task is often
    // stolen by the other worker, and that hand-off cost more than the work of a lookup.
    let handled = AssertUnwindSafe(respond(app.clone(), req, route, client))
        .catch_unwind()
        .await;
    let (mut response, token, writer) = match handled {
        Ok(out) => out,
        Err(_) => {
            error!("request handler panicked");
            (
                error_response(&Error::internal("handler panicked")),
                None,
                false,
            )
        }
    };
    set_content_type(&mut response, json_only);
    if writer {
        // The identity provider's connection: never closed to make room for a newcomer. Only
        // a write token proves one: read tokens are handed to scripts and may leak, and a
        // holder of one from a few addresses must not be able to fill every slot for good.
        conn.prove();
    }
    in_flight.finish(response.status().as_u16(), token.as_deref());
    Ok(response)
}

/// What `/metrics` and the log record for a request that ends without an answer because its
/// client went away (nginx's "client closed request").
const CLIENT_GONE: u16 = 499;

/// A request being answered: counted in flight from `start` until it is recorded, with its
/// log line, exactly once: by `finish`, or — when hyper drops the handler because the client
/// hung up — on drop, as `CLIENT_GONE`. Work handed to the writer still completes then.
struct InFlight {
    app: Arc<App>,
    method: http::Method,
    pattern: &'static str,
    client: IpAddr,
    started: Instant,
    recorded: bool,
}

impl InFlight {
    fn start(
        app: Arc<App>,
        method: http::Method,
        pattern: &'static str,
        client: IpAddr,
        started: Instant,
    ) -> InFlight {
        app.metrics.start();
        InFlight {
            app,
            method,
            pattern,
            client,
            started,
            recorded: false,
        }
    }

    fn finish(mut self, status: u16, token: Option<&str>) {
        self.record(status, token);
    }

    fn record(&mut self, status: u16, token: Option<&str>) {
        self.recorded = true;
        let took = self.started.elapsed();
        self.app
            .metrics
            .finish(self.method.as_str(), self.pattern, status, took);
        // Failures without a token are what a flood from many addresses is made of: they get
        // a bounded number of lines, the rest counted into the next one (`unlogged`).
        let mut unlogged = 0;
        if token.is_none() && status >= 400 {
            match self.app.limits.anonymous_log.note() {
                Some(since) => unlogged = since - 1,
                None => return,
            }
        }
        let latency_ms = format!("{:.1}", took.as_secs_f64() * 1000.0);
        let (method, route, peer) = (&self.method, self.pattern, self.client);
        let token = token.unwrap_or("-");
        if status == CLIENT_GONE {
            info!(target: "scimd::request", %method, route, status, latency_ms, token, %peer,
                unlogged, "client went away before the answer");
        } else if unlogged > 0 {
            info!(target: "scimd::request", %method, route, status, latency_ms, token, %peer,
                unlogged);
        } else {
            info!(target: "scimd::request", %method, route, status, latency_ms, token, %peer);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.recorded {
            self.record(CLIENT_GONE, None);
        }
    }
}

/// Runs one request to its response; returns the token name for the log line, and whether
/// a live write-scope token was accepted for it.
async fn respond(
    app: Arc<App>,
    req: Request<Incoming>,
    route: Result<Route, RouteError>,
    client: IpAddr,
) -> (Response<Body>, Option<String>, bool) {
    if route == Ok(Route::Health) {
        return (health(&app), None, false);
    }
    let mut actor = Actor {
        kind: ActorKind::Anonymous,
        name: String::new(),
        client: client.to_string(),
        user_agent: header_text(&req, header::USER_AGENT).unwrap_or_default(),
    };
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if path == "/metrics" {
        let response = metrics::serve(&app, &req, client, &actor)
            .await
            .unwrap_or_else(|e| error_response(&e));
        return (response, None, false);
    }
    if path == admin_api::PREFIX || path.starts_with("/admin/api/") {
        let mut response = admin_api::handle(&app, req, client, &mut actor)
            .await
            .unwrap_or_else(|e| {
                if let Error::Internal(cause) = &e {
                    error!(cause = %cause, "internal error");
                }
                error_response(&e)
            });
        assets::security_headers(response.headers_mut());
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return (response, None, false);
    }
    if matches!(route, Err(RouteError::NotFound))
        && !router::is_scim_path(&path)
        && (method == http::Method::GET || method == http::Method::HEAD)
        && let Some(response) =
            assets::serve(&path, header_text(&req, header::IF_NONE_MATCH).as_deref())
    {
        return (response, None, false);
    }
    // This server's own connection check, without a token by design: the 401 it expects,
    // with its mark echoed, and nothing counted or recorded against anyone.
    if router::is_token_path(&path)
        && let Some(mark) = req.headers().get(connection::MARK_HEADER)
        && app.check_marks.take(mark.as_bytes())
    {
        let mut response = error_response(&Error::Unauthorized(
            "the connection check reached scimd; a client needs a bearer token here".into(),
        ));
        response
            .headers_mut()
            .insert(connection::MARK_HEADER, mark.clone());
        return (response, None, false);
    }
    let pattern = route.as_ref().map_or("-", Route::pattern);
    let mut seen = TokenSeen::default();
    let result = route_and_dispatch(&app, req, route.clone(), &mut actor, &mut seen, client).await;
    let TokenSeen {
        token_seq,
        scope,
        refused,
    } = seen;
    // A write token is never refused by its scope, so this is an accepted one.
    let writer = scope == Some(Scope::Write);
    let token = (actor.kind == ActorKind::Token).then(|| actor.name.clone());
    if let Some(seq) = token_seq {
        let status = result.as_ref().map_or_else(|e| e.status(), |r| r.status());
        app.last_used
            .record(seq, client, method.clone(), pattern, status.as_u16());
        app.activity.served(seq, status.as_u16());
    }
    match refused {
        Some(Refused::Secret(seq)) => app.activity.refused(seq),
        Some(Refused::Unknown) => app.activity.unknown(client),
        None => {}
    }
    match result {
        Ok(response) => (response, token, writer),
        Err(e) => {
            if let Error::Internal(cause) = &e {
                error!(cause = %cause, "internal error");
            }
            // Everything under the SCIM prefix that fails is on record: who, what, and why;
            // a client past the failed-authentication limit is not, each time, unless it
            // holds a revoked token (folded into one entry, in its own budget).
            if router::is_token_path(&path)
                && (!matches!(e, Error::TooManyRequests(_))
                    || actor.kind == ActorKind::RevokedToken)
            {
                let mut entry = actor.entry(
                    &format!("{method} {pattern}"),
                    "failure",
                    e.status().as_u16(),
                );
                entry.resource_id = route.ok().and_then(|r| r.resource_id().map(str::to_string));
                // A read token's failures, whatever they are, go to its own budget.
                app.rejections.push(entry, scope, &e);
            }
            (error_response(&e), token, writer)
        }
    }
}

/// What a request's token turned out to be.
#[derive(Default)]
struct TokenSeen {
    /// A live token's seq (for its last-used record).
    token_seq: Option<i64>,
    /// A live token's scope, whether or not it covered the request: write is the identity
    /// provider's; read tokens are handed to scripts and may leak.
    scope: Option<Scope>,
    /// Why authentication failed, if it did.
    refused: Option<Refused>,
}

/// A failed authentication, as the Overview counts it.
enum Refused {
    /// A revoked or rotated-out secret of a token (its row): counted against the token.
    Secret(i64),
    /// No token of ours (unknown, missing, malformed): counted against the client address.
    Unknown,
}

async fn route_and_dispatch(
    app: &App,
    req: Request<Incoming>,
    route: Result<Route, RouteError>,
    actor: &mut Actor,
    seen: &mut TokenSeen,
    client: IpAddr,
) -> Result<Response<Body>> {
    // Everything under the SCIM prefix needs a token before anything else is said about it,
    // even that a path or method does not exist.
    let needs_auth = match &route {
        Ok(r) => r.needs_auth(),
        Err(_) => router::is_token_path(req.uri().path()),
    };
    // A path or method that does not exist changes nothing: any live token learns so.
    let needed = route
        .as_ref()
        .map_or(Scope::Read, |r| r.needs(req.method()));
    if needs_auth {
        let p = match auth::bearer(app, req.headers(), needed) {
            Ok(p) => p,
            Err(auth::Refused::Revoked { error, seq, name }) => {
                // A real client with a revoked token: on record by name (in its own budget),
                // and never refused for a table that guessers filled.
                actor.kind = ActorKind::RevokedToken;
                actor.name = name;
                seen.refused = Some(Refused::Secret(seq));
                app.limits.failed_auth.fail_known(client)?;
                return Err(error);
            }
            Err(auth::Refused::OutOfScope { error, principal }) => {
                // A valid token sending what its scope does not cover, before its body is
                // read: on record (and its last request) under the token's name, and not a
                // failed authentication.
                seen.token_seq = Some(principal.token_seq);
                seen.scope = Some(principal.scope);
                actor.kind = ActorKind::Token;
                actor.name = principal.name;
                return Err(error);
            }
            Err(auth::Refused::Unknown(error)) => {
                // Not a failure looking the token up: that one is ours, not the client's.
                if matches!(error, Error::Unauthorized(_)) {
                    seen.refused = Some(Refused::Unknown);
                }
                app.limits.failed_auth.fail(client)?;
                return Err(error);
            }
        };
        seen.token_seq = Some(p.token_seq);
        seen.scope = Some(p.scope);
        actor.kind = ActorKind::Token;
        actor.name = p.name;
    }
    let route = match route {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            let path = req.uri().path();
            return Err(Error::NotFound(format!("no endpoint at {path}")));
        }
        Err(RouteError::MethodNotAllowed(allow)) => return Err(Error::MethodNotAllowed(allow)),
    };
    let ctx = Ctx {
        base: format!("{}{}", origin(app, &req), router::SCIM_PREFIX),
        query: req.uri().query().map(str::to_string),
        if_match: header_list(&req, http::header::IF_MATCH),
        if_none_match: header_list(&req, http::header::IF_NONE_MATCH),
        actor: actor.clone(),
    };
    // A bulk request's turn is taken before its body is read and held until it has run.
    let _turn = match route {
        Route::Bulk => Some(app.limits.bulk.enter(seen.token_seq.unwrap_or(0))?),
        _ => None,
    };
    let body = read_json(app, req).await?;
    scim::dispatch(app, route, &ctx, body).await
}

/// `GET /healthz`: no authentication; reports the version and whether the database answers
/// and is still the file scimd opened (not deleted or replaced since).
fn health(app: &App) -> Response<Body> {
    // What the last look at the file found (every write and every few seconds look): a
    // look per health check would cost each one a system call.
    let (status, db_status) = match app.store.file_seen_gone().and_then(|()| app.store.ping()) {
        Ok(_) => (StatusCode::OK, "ok"),
        // Logged once, when it was first noticed.
        Err(Error::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Err(e) => {
            error!(error = %e, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ok" } else { "error" },
        "version": env!("CARGO_PKG_VERSION"),
        "database": db_status,
    });
    let mut response = json_response(status, &body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The externally visible origin: `--public-url`, else `http://<Host>`, else the listen
/// address.
fn origin<B>(app: &App, req: &Request<B>) -> String {
    if let Some(url) = &app.config.public_url {
        return url.clone();
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|h| h.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
    };
    let forwarded = |name| app.config.trust_proxy.then(|| header(name)).flatten();
    let host = forwarded("x-forwarded-host")
        .or_else(|| header("host"))
        .filter(|h| is_host(h))
        .map(str::to_string)
        .unwrap_or_else(|| app.local_addr.to_string());
    let scheme = match forwarded("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(_) => "http",
        None if app.tls.is_some() => "https",
        None => "http",
    };
    format!("{scheme}://{host}")
}

/// The client's address: the connection's peer or, with `--trust-proxy`, the last entry of
/// `X-Forwarded-For` (the one the proxy itself appended; earlier ones come from the client).
fn client_ip<B>(app: &App, req: &Request<B>, peer: IpAddr) -> IpAddr {
    if !app.config.trust_proxy {
        return peer;
    }
    let last_line = req.headers().get_all("x-forwarded-for").iter().next_back();
    last_line
        .and_then(|v| v.to_str().ok())
        .and_then(forwarded_client)
        .unwrap_or(peer)
}

/// The address in the last entry of an `X-Forwarded-For` value: `203.0.113.5`, `2001:db8::5`,
/// or with the port some proxies add, `203.0.113.5:4711` or `[2001:db8::5]:443`. Only the
/// last entry counts: when it is not an address, the answer is `None` (the peer is used),
/// never an earlier entry, which the client wrote itself.
fn forwarded_client(value: &str) -> Option<IpAddr> {
    let last = value.rsplit(',').next()?.trim();
    if let Ok(ip) = last.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = last.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok.then(|| v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))?;
    }
    let (v4, port) = last.split_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A `Host` value fit to put in a URL: `name[:port]` or `[v6]:port`, nothing that could add
/// a path, query or credentials to the locations scimd returns.
fn is_host(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Reads the body (up to the configured limit) as JSON, whatever the Content-Type says
/// (idp-compat.md Decision 8); duplicate keys and nesting are checked (`scim::json`). An
/// empty body is `Value::Null`.
async fn read_json(app: &App, req: Request<Incoming>) -> Result<Value> {
    read_json_within(app, req, app.config.max_body_bytes).await
}

/// `read_json` with a smaller limit than the configured one (console sign-in and setup).
async fn read_json_within(app: &App, req: Request<Incoming>, limit: usize) -> Result<Value> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::PayloadTooLarge(limit));
    }
    let read = Limited::new(req.into_body(), limit).collect();
    let timeout = app.config.body_read_timeout;
    let Ok(read) = tokio::time::timeout(timeout, read).await else {
        return Err(Error::Timeout(timeout.as_secs_f64()));
    };
    let bytes = match read {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(Error::PayloadTooLarge(limit));
        }
        Err(e) => {
            return Err(Error::InvalidSyntax(format!(
                "could not read the body: {e}"
            )));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    crate::scim::json::parse(&bytes)
}

pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response
}

/// `json_response` for a body already written as JSON text.
pub fn json_text_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = status;
    response
}

/// The SCIM error response for `e` (RFC 7644 §3.12), with the headers its status calls for.
pub fn error_response(e: &Error) -> Response<Body> {
    let mut response = json_response(e.status(), &e.body());
    let headers = response.headers_mut();
    match e {
        Error::Unauthorized(_) => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimd\""),
            );
        }
        Error::TooManyRequests(seconds) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
        }
        Error::Busy(_) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Error::MethodNotAllowed(allow) => {
            if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                headers.insert(header::ALLOW, v);
            }
        }
        // The rest of the body is not read, so the connection cannot be reused.
        Error::PayloadTooLarge(_) | Error::Timeout(_) => {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    response
}

/// Decision 8: `application/scim+json` unless the client's Accept names only
/// `application/json`.
fn accepts_only_json(req: &Request<Incoming>) -> bool {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let types: Vec<String> = accept
        .split(',')
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect();
    types.iter().any(|t| t == "application/json")
        && !types
            .iter()
            .any(|t| t == "application/scim+json" || t == "*/*" || t == "application/*")
}

/// Sets the JSON content type on every response with a body that has none yet.
fn set_content_type(response: &mut Response<Body>, json_only: bool) {
    use hyper::body::Body as _;
    if response.body().size_hint().exact() == Some(0)
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return;
    }
    let ctype = if json_only {
        "application/json; charset=utf-8"
    } else {
        "application/scim+json; charset=utf-8"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_forwarded_entry_names_the_client() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        for (value, expected) in [
            ("203.0.113.5", ip("203.0.113.5")),
            ("6.6.6.6, 203.0.113.5", ip("203.0.113.5")),
            ("6.6.6.6,203.0.113.5:4711", ip("203.0.113.5")),
            ("6.6.6.6, 2001:db8::5", ip("2001:db8::5")),
            ("6.6.6.6, [2001:db8::5]", ip("2001:db8::5")),
            ("6.6.6.6, [2001:db8::5]:443", ip("2001:db8::5")),
            ("6.6.6.6, unknown", None),
            ("6.6.6.6, ", None),
            ("6.6.6.6, 203.0.113.5:port", None),
            ("6.6.6.6, [2001:db8::5]x", None),
            ("6.6.6.6, [203.0.113.5]", None),
            ("6.6.6.6, 203.0.113.5:1:2", None),
        ] {
            assert_eq!(forwarded_client(value), expected, "{value}");
        }
    }
}
