//! Webhook delivery against a real receiver on loopback: every delivery is verified with the
//! `standardwebhooks` crate (an implementation we did not write); order, retries through
//! failures of every kind, restarts, pause and resume, secret rotation, the chat format,
//! `scimd webhook …` and the address rules.
//!
//! Events are appended to the outbox directly (beside the running server, as another
//! process would), shaped like the change events contract.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use scimd::config::Config;
use scimd::service::audit::Actor;
use scimd::store::{Store, events};
use scimd::webhooks;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::Server;

/// How the receiver answers a request.
#[derive(Clone, Debug)]
pub(crate) enum Mode {
    Ok,
    Status(u16),
    /// Answers 200, but only after this long.
    Slow(Duration),
    /// 302 to this URL.
    Redirect(String),
    /// Closes the connection without an answer.
    Close,
    /// 429 with `Retry-After: <seconds>`.
    Throttle(u64),
}

#[derive(Clone)]
pub(crate) struct Got {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Got {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub(crate) fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_string()
    }
}

/// A webhook receiver: records every request, answers as scripted (then as `default`).
pub(crate) struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    script: Arc<Mutex<VecDeque<Mode>>>,
    default: Arc<Mutex<Mode>>,
    task: JoinHandle<()>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    pub(crate) fn on(listener: TcpListener) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<Mode>>> = Arc::default();
        let default = Arc::new(Mutex::new(Mode::Ok));
        let (g, s, d) = (got.clone(), script.clone(), default.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (g, s, d) = (g.clone(), s.clone(), d.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (g, s, d) = (g.clone(), s.clone(), d.clone());
                        async move {
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            g.lock().unwrap().push(Got { headers, body });
                            let mode = s
                                .lock()
                                .unwrap()
                                .pop_front()
                                .unwrap_or_else(|| d.lock().unwrap().clone());
                            let mut resp = Response::new(Full::new(Bytes::from("ok")));
                            match mode {
                                Mode::Ok => {}
                                Mode::Status(code) => {
                                    *resp.status_mut() = code.try_into().unwrap();
                                }
                                Mode::Slow(d) => tokio::time::sleep(d).await,
                                Mode::Redirect(to) => {
                                    *resp.status_mut() = http::StatusCode::FOUND;
                                    resp.headers_mut().insert("location", to.parse().unwrap());
                                }
                                Mode::Close => {
                                    return Err(std::io::Error::other("closing"));
                                }
                                Mode::Throttle(secs) => {
                                    *resp.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                                    resp.headers_mut()
                                        .insert("retry-after", secs.to_string().parse().unwrap());
                                }
                            }
                            Ok::<_, std::io::Error>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            got,
            script,
            default,
            task,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn script(&self, modes: impl IntoIterator<Item = Mode>) {
        self.script.lock().unwrap().extend(modes);
    }

    pub(crate) fn set_default(&self, mode: Mode) {
        *self.default.lock().unwrap() = mode;
    }

    pub(crate) fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests came (at most `within`); all of them.
    pub(crate) async fn wait_for(&self, n: usize, within: Duration) -> Vec<Got> {
        let start = Instant::now();
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < within,
                "{} of {n} requests within {within:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Retries, ticks and timeouts short enough for tests.
fn fast(mut c: Config) -> Config {
    c.webhooks.first_retry = Duration::from_millis(50);
    c.webhooks.max_retry = Duration::from_millis(200);
    c.webhooks.tick = Duration::from_millis(50);
    c.webhooks.timeouts.response = Duration::from_secs(1);
    c.metrics_token = Some("metrics-secret".into());
    c
}

async fn start() -> Server {
    Server::start_in(tempfile::TempDir::new().unwrap(), fast).await
}

/// A store on the server's database, as a command beside it would open.
pub(crate) fn beside(server: &Server) -> Store {
    Store::open_for_command(&server.db()).unwrap()
}

/// A user event payload as the change events contract shapes it (stored without an id).
fn user_event(kind: &str, n: usize) -> String {
    json!({
        "type": kind,
        "time": "2026-12-05T10:00:00.000Z",
        "actor": {"kind": "token", "name": "onelogin"},
        "resource": {"type": "User", "id": format!("u{n}"),
                     "userName": format!("user{n}@acme.example"), "name": format!("User {n}")},
        "changes": [],
    })
    .to_string()
}

fn append(store: &Store, kind: &str, payload: &str) -> i64 {
    store
        .write_sync(|tx| events::append(tx, "2026-12-05T10:00:00.000Z", kind, payload))
        .unwrap()
}

pub(crate) fn add(store: &Store, name: &str, url: &str, types: &[&str], format: &str) -> String {
    let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    let add = webhooks::Add {
        name,
        url,
        types: &types,
        format,
        allow_http: true,
    };
    webhooks::add(store, &add, &Actor::cli()).unwrap().1
}

/// Asserts the delivery verifies with `secret` (the standardwebhooks crate); its body.
pub(crate) fn verified(secret: &str, got: &Got) -> Value {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&got.body, &got.headers)
        .unwrap_or_else(|e| panic!("signature: {e:?}: {:?}", got.headers));
    got.json()
}

/// The event seqs of standard deliveries, in arrival order.
pub(crate) fn seqs(got: &[Got]) -> Vec<i64> {
    got.iter()
        .map(|g| g.json()["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// `seqs` without repeats of a delivery already received (at-least-once), and how many
/// repeats there were; asserts a repeat only ever repeats the latest delivery.
pub(crate) fn dedup(got: &[Got]) -> (Vec<i64>, usize) {
    let mut out: Vec<i64> = Vec::new();
    let mut repeats = 0;
    for s in seqs(got) {
        if out.contains(&s) {
            assert_eq!(out.last(), Some(&s), "only the delivery in flight repeats");
            repeats += 1;
        } else {
            out.push(s);
        }
    }
    (out, repeats)
}

async fn wait_state(store: &Store, name: &str, state: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let all = webhooks::list(store).unwrap();
        let e = &all
            .iter()
            .find(|s| s.endpoint.name == name)
            .unwrap()
            .endpoint;
        if e.state == state {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{name} is {} not {state}",
            e.state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_and_arrive_once_each_in_commit_order() {
    let server = start().await;
    let store = beside(&server);
    let (all, some) = (Receiver::start().await, Receiver::start().await);
    let secret = add(&store, "all", &all.url(), &[], "standard");
    let other = add(
        &store,
        "offboard",
        &some.url(),
        &["user.deactivated"],
        "standard",
    );
    // Writers on three threads at once: commit order is seq order.
    let kinds = ["user.created", "user.deactivated", "user.reactivated"];
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let kind = kinds[(w + i) % 3];
                    append(&store, kind, &user_event(kind, w * 100 + i));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let got = all.wait_for(120, Duration::from_secs(60)).await;
    let mut ids = HashSet::new();
    for g in &got {
        let body = verified(&secret, g);
        assert!(ids.insert(g.id()), "webhook-id repeated: {}", g.id());
        assert!(
            g.id().starts_with("evt_") && !g.id().contains('.'),
            "{}",
            g.id()
        );
        assert_eq!(
            g.id().rsplit('_').next().unwrap(),
            body["id"].as_str().unwrap()
        );
        assert_eq!(g.headers["content-type"], "application/json");
        assert_eq!(body["resource"]["type"], "User");
    }
    assert_eq!(seqs(&got), (1..=120).collect::<Vec<i64>>());
    let deactivated = some.wait_for(40, Duration::from_secs(30)).await;
    for g in &deactivated {
        assert_eq!(verified(&other, g)["type"], "user.deactivated");
    }
    assert!(
        standardwebhooks::Webhook::new(&secret)
            .unwrap()
            .verify(&deactivated[0].body, &deactivated[0].headers)
            .is_err(),
        "each endpoint has its own secret"
    );
    let s = seqs(&deactivated);
    assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(all.got().len(), 120, "nothing delivered twice");
    let m = server
        .raw(
            "GET",
            "/metrics",
            &[("authorization", "Bearer metrics-secret")],
            None,
        )
        .await;
    let text = String::from_utf8_lossy(&m.body);
    for line in [
        "scimd_webhook_deliveries_total{endpoint=\"all\",outcome=\"success\"} 120",
        "scimd_webhook_deliveries_total{endpoint=\"offboard\",outcome=\"success\"} 40",
        "scimd_webhook_delivery_seconds_count{endpoint=\"all\"} 120",
        "scimd_webhook_oldest_undelivered_seconds{endpoint=\"all\"} 0.000",
        "scimd_webhook_endpoint_state{endpoint=\"all\",state=\"healthy\"} 1",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_of_every_kind_are_retried_and_redirects_never_followed() {
    let server = start().await;
    let store = beside(&server);
    let receiver = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    receiver.script([
        Mode::Status(500),
        Mode::Slow(Duration::from_secs(3)),
        Mode::Redirect(elsewhere.url()),
        Mode::Close,
        Mode::Status(503),
    ]);
    let secret = add(&store, "flaky", &receiver.url(), &[], "standard");
    append(
        &store,
        "user.deactivated",
        &user_event("user.deactivated", 1),
    );
    append(
        &store,
        "user.reactivated",
        &user_event("user.reactivated", 1),
    );
    let got = receiver.wait_for(7, Duration::from_secs(30)).await;
    for g in &got {
        verified(&secret, g);
    }
    // Five failed tries of the first event, all the same delivery, then it and the next.
    assert_eq!(seqs(&got), [1, 1, 1, 1, 1, 1, 2]);
    assert_eq!(got.iter().filter(|g| g.id() == got[0].id()).count(), 6);
    assert!(elsewhere.got().is_empty(), "the redirect was not followed");
    // The receiver has a request before the worker has its answer and logs the attempt.
    let start = Instant::now();
    while webhooks::attempts(&store, "flaky", 100).unwrap().len() < 7 {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = webhooks::attempts(&store, "flaky", 100).unwrap();
    let errors: Vec<String> = log
        .iter()
        .rev()
        .map(|a| {
            a.error
                .clone()
                .unwrap_or_else(|| format!("ok {:?}", a.status))
        })
        .collect();
    assert_eq!(log.len(), 7, "{errors:?}");
    assert_eq!(errors[0], "HTTP 500");
    assert!(errors[1].contains("timed out"), "{errors:?}");
    assert!(
        errors[2].contains("redirects are not followed"),
        "{errors:?}"
    );
    assert_eq!(
        log[log.len() - 4].status,
        None,
        "closed without an answer: {errors:?}"
    );
    assert_eq!(errors[4], "HTTP 503");
    assert_eq!(errors[5..], ["ok Some(200)", "ok Some(200)"]);
    assert_eq!(
        log.iter().rev().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 1]
    );
    let status = &webhooks::list(&store).unwrap()[0];
    assert_eq!(
        (
            status.endpoint.state.as_str(),
            status.endpoint.cursor,
            status.pending
        ),
        ("healthy", 2, 0)
    );

    // A closed port: refused until a receiver listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let secret = add(
        &store,
        "late",
        &format!("http://{port}/hook"),
        &[],
        "standard",
    );
    append(&store, "user.deleted", &user_event("user.deleted", 2));
    let start = Instant::now();
    while webhooks::attempts(&store, "late", 10).unwrap().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = webhooks::attempts(&store, "late", 10).unwrap();
    assert!(
        refused[0].error.as_deref().unwrap().contains("onnect"),
        "{:?}",
        refused[0].error
    );
    let late = Receiver::on(TcpListener::bind(port).await.unwrap());
    let got = late.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(verified(&secret, &got[0])["type"], "user.deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_undelivered_events_loses_none_and_keeps_order() {
    let server = start().await;
    let store = beside(&server);
    // The receiver is down while the first events are written.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let secret = add(
        &store,
        "down",
        &format!("http://{port}/hook"),
        &[],
        "standard",
    );
    for i in 0..30 {
        append(&store, "user.created", &user_event("user.created", i));
    }
    let start = Instant::now();
    while webhooks::attempts(&store, "down", 10).unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(store);
    let dir = server.stop().await;
    let receiver = Receiver::on(TcpListener::bind(port).await.unwrap());
    // Deliveries in flight while the server stops a second time.
    receiver.set_default(Mode::Slow(Duration::from_millis(20)));
    let server = Server::start_in(dir, fast).await;
    let store = beside(&server);
    for i in 30..60 {
        append(&store, "user.updated", &user_event("user.updated", i));
    }
    receiver.wait_for(10, Duration::from_secs(30)).await;
    drop(store);
    let dir = server.stop().await;
    let server = Server::start_in(dir, fast).await;
    let start = Instant::now();
    while dedup(&receiver.got()).0.len() < 60 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            dedup(&receiver.got())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = receiver.got();
    for g in &got {
        verified(&secret, g);
    }
    let (delivered, repeats) = dedup(&got);
    assert_eq!(delivered, (1..=60).collect::<Vec<i64>>());
    eprintln!("restart: 60 events delivered in order, {repeats} repeated delivery(ies)");
    assert!(
        repeats <= 1,
        "at most what was in flight repeats: {repeats}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_past_the_retry_window_pauses_and_resume_delivers_what_it_missed() {
    let server = Server::start_in(tempfile::TempDir::new().unwrap(), |c| {
        let mut c = fast(c);
        c.webhooks.retry_window = Duration::from_millis(400);
        c
    })
    .await;
    let store = beside(&server);
    let receiver = Receiver::start().await;
    receiver.set_default(Mode::Status(500));
    let secret = add(&store, "broken", &receiver.url(), &[], "chat");
    append(
        &store,
        "user.deactivated",
        &user_event("user.deactivated", 1),
    );
    wait_state(&store, "broken", "paused", Duration::from_secs(20)).await;
    for i in 2..=4 {
        append(&store, "user.deleted", &user_event("user.deleted", i));
    }
    let tried = receiver.got().len();
    assert!(tried >= 2, "{tried}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        receiver.got().len(),
        tried,
        "a paused endpoint is not tried"
    );
    let status = &webhooks::list(&store).unwrap()[0];
    assert_eq!((status.endpoint.cursor, status.pending), (0, 4));
    assert!(status.oldest_pending_at.is_some());
    receiver.set_default(Mode::Ok);
    webhooks::resume(&store, "broken", &Actor::cli()).unwrap();
    let got = receiver.wait_for(tried + 4, Duration::from_secs(20)).await;
    let texts: Vec<String> = got[tried - 1..]
        .iter()
        .map(|g| verified(&secret, g)["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "User 1 (user1@acme.example) was deactivated by onelogin",
            "User 1 (user1@acme.example) was deactivated by onelogin",
            "User 2 (user2@acme.example) was deleted by onelogin",
            "User 3 (user3@acme.example) was deleted by onelogin",
            "User 4 (user4@acme.example) was deleted by onelogin",
        ]
    );
    wait_state(&store, "broken", "healthy", Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_pruned_before_delivery_pause_the_endpoint_and_resume_acknowledges_the_gap() {
    let server = start().await;
    let store = beside(&server);
    let receiver = Receiver::start().await;
    receiver.set_default(Mode::Status(500));
    add(&store, "lock-ssh", &receiver.url(), &[], "standard");
    let first = append(&store, "user.created", &user_event("user.created", 1));
    for i in 2..=4 {
        append(
            &store,
            "user.deactivated",
            &user_event("user.deactivated", i),
        );
    }
    receiver.wait_for(1, Duration::from_secs(20)).await;
    // Retention overtakes the retrying endpoint: events 1 and 2 go before it got them.
    store.write_sync(|tx| events::delete_oldest(tx, 2)).unwrap();
    receiver.set_default(Mode::Ok);
    wait_state(&store, "lock-ssh", "paused", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (delivered, _) = dedup(&receiver.got());
    assert_eq!(delivered, [first], "nothing after the gap is delivered");
    let reason = format!(
        "events {first}–{} were pruned by retention before delivery: resync the receiver from \
         SCIM, then resume",
        first + 1
    );
    let status = &webhooks::list(&store).unwrap()[0];
    assert_eq!(status.endpoint.last_error.as_deref(), Some(reason.as_str()));
    assert_eq!(status.pruned, Some((first, first + 1)));
    let log = webhooks::attempts(&store, "lock-ssh", 1).unwrap();
    assert_eq!(
        (log[0].event_seq, log[0].status, log[0].error.as_deref()),
        (Some(first), None, Some(reason.as_str()))
    );
    let m = server
        .raw(
            "GET",
            "/metrics",
            &[("authorization", "Bearer metrics-secret")],
            None,
        )
        .await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains("scimd_webhook_events_lost_total{endpoint=\"lock-ssh\"} 2"),
        "{text}"
    );
    let db = server.db();
    let db = db.to_str().unwrap();
    let (_, out, _) = scimd(&["webhook", "list", "--db", db]);
    assert!(
        out.contains("state paused") && out.contains(&reason),
        "{out}"
    );
    let (ok, out, _) = scimd(&["check", "--db", db]);
    assert!(!ok && out.contains("webhook \"lock-ssh\": events"), "{out}");
    // The gap is the operator's to resolve, never a reason to refuse the backup they want
    // now, nor its restore.
    let copy = tempfile::TempDir::new().unwrap();
    let backup = copy.path().join("b.db");
    let (ok, _, err) = scimd(&["backup", backup.to_str().unwrap(), "--db", db]);
    assert!(ok, "{err}");
    let restored = copy.path().join("r.db");
    let (ok, _, err) = scimd(&[
        "restore",
        backup.to_str().unwrap(),
        "--db",
        restored.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    // Resume acknowledges the gap (and says so), then delivers from the oldest kept event.
    let tried = receiver.got().len();
    let (ok, out, err) = scimd(&["webhook", "resume", "lock-ssh", "--db", db]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("Events {first}–{} were pruned", first + 1))
            && !out.contains("what it missed"),
        "{out}"
    );
    let got = receiver.wait_for(tried + 2, Duration::from_secs(20)).await;
    assert_eq!(seqs(&got[tried..]), [first + 2, first + 3]);
    wait_state(&store, "lock-ssh", "healthy", Duration::from_secs(5)).await;
    assert_eq!(webhooks::list(&store).unwrap()[0].pruned, None);
    let detail: String = store
        .read_sync(|c| {
            Ok(c.query_row(
                "SELECT detail FROM audit WHERE action = 'webhook.resume' ORDER BY seq DESC",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(detail.contains("prunedEvents"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_overtaking_an_endpoint_paused_by_the_retry_window_is_recorded_once() {
    let server = Server::start_in(tempfile::TempDir::new().unwrap(), |c| {
        let mut c = fast(c);
        c.webhooks.retry_window = Duration::from_millis(400);
        c
    })
    .await;
    let store = beside(&server);
    let receiver = Receiver::start().await;
    receiver.set_default(Mode::Status(500));
    add(&store, "gone-quiet", &receiver.url(), &[], "standard");
    let first = append(&store, "user.created", &user_event("user.created", 1));
    for i in 2..=3 {
        append(&store, "user.updated", &user_event("user.updated", i));
    }
    wait_state(&store, "gone-quiet", "paused", Duration::from_secs(20)).await;
    store.write_sync(|tx| events::delete_oldest(tx, 2)).unwrap();
    let reason = format!(
        "events {first}–{} were pruned by retention before delivery: resync the receiver from \
         SCIM, then resume",
        first + 1
    );
    let start = Instant::now();
    while webhooks::list(&store).unwrap()[0]
        .endpoint
        .last_error
        .as_deref()
        != Some(&reason)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the gap is not recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Many ticks later it is still recorded once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = webhooks::attempts(&store, "gone-quiet", 100).unwrap();
    let gaps: Vec<_> = log
        .iter()
        .filter(|a| a.error.as_deref() == Some(reason.as_str()))
        .map(|a| (a.event_seq, a.status))
        .collect();
    assert_eq!(gaps, [(Some(first), None)]);
    assert_eq!(log[0].error.as_deref(), Some(reason.as_str()));
    let m = server
        .raw(
            "GET",
            "/metrics",
            &[("authorization", "Bearer metrics-secret")],
            None,
        )
        .await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains("scimd_webhook_events_lost_total{endpoint=\"gone-quiet\"} 2"),
        "{text}"
    );
    let status = &webhooks::list(&store).unwrap()[0];
    assert_eq!(status.endpoint.state, "paused");
    assert_eq!(status.pruned, Some((first, first + 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_racing_the_removal_of_its_endpoint_is_answered_not_failed() {
    let server = start().await;
    let store = beside(&server);
    let receiver = Receiver::start().await;
    receiver.set_default(Mode::Slow(Duration::from_millis(600)));
    add(&store, "racing", &receiver.url(), &[], "standard");
    let client = webhooks::Client::new(None, webhooks::Timeouts::default()).unwrap();
    let sending = {
        let store = store.clone();
        tokio::spawn(async move {
            webhooks::test_audited(&store, &client, "racing", &Actor::cli()).await
        })
    };
    receiver.wait_for(1, Duration::from_secs(20)).await;
    webhooks::remove(&store, "racing", &Actor::cli()).unwrap();
    let sent = sending
        .await
        .unwrap()
        .expect("the console's Test answers, not 500");
    assert_eq!(sent.status, Some(200));
    assert!(webhooks::list(&store).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_beside_the_old_one_during_the_overlap() {
    let server = start().await;
    let store = beside(&server);
    let receiver = Receiver::start().await;
    let old = add(&store, "rotating", &receiver.url(), &[], "standard");
    append(&store, "user.created", &user_event("user.created", 1));
    let first = receiver.wait_for(1, Duration::from_secs(20)).await;
    verified(&old, &first[0]);
    let new =
        webhooks::rotate(&store, "rotating", Duration::from_secs(3600), &Actor::cli()).unwrap();
    append(&store, "user.updated", &user_event("user.updated", 1));
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    let tokens = got[1].headers["webhook-signature"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(tokens.split(' ').count(), 2, "{tokens}");
    // Each secret verifies on its own: a receiver still on the old one, or already moved on.
    verified(&old, &got[1]);
    verified(&new, &got[1]);
    let newest = webhooks::rotate(&store, "rotating", Duration::ZERO, &Actor::cli()).unwrap();
    append(&store, "user.deleted", &user_event("user.deleted", 1));
    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    verified(&newest, &got[2]);
    for gone in [&old, &new] {
        assert!(
            standardwebhooks::Webhook::new(gone)
                .unwrap()
                .verify(&got[2].body, &got[2].headers)
                .is_err()
        );
    }
    // Resend (the console's button): the same delivery again, now, signed anew; the
    // endpoint's position stays.
    let client = webhooks::Client::new(None, webhooks::Timeouts::default()).unwrap();
    let sent = webhooks::resend(&store, &client, "rotating", 1)
        .await
        .unwrap();
    assert_eq!(sent.status, Some(200));
    let got = receiver.wait_for(4, Duration::from_secs(5)).await;
    assert_eq!((got[3].id(), &got[3].body), (got[0].id(), &got[0].body));
    verified(&newest, &got[3]);
    let log = webhooks::attempts(&store, "rotating", 10).unwrap();
    assert_eq!(
        (log[0].trigger.as_str(), log[0].event_seq),
        ("manual", Some(1))
    );
    assert_eq!(webhooks::list(&store).unwrap()[0].endpoint.cursor, 3);
    assert!(
        webhooks::resend(&store, &client, "rotating", 99)
            .await
            .is_err()
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_deliveries_are_one_signed_sentence() {
    let server = start().await;
    let store = beside(&server);
    let receiver = Receiver::start().await;
    let secret = add(
        &store,
        "chat",
        &receiver.url(),
        &["user.deactivated", "group.members_added"],
        "chat",
    );
    let ana = json!({
        "type": "user.deactivated", "time": "2026-12-05T10:00:00.000Z",
        "actor": {"kind": "token", "name": "onelogin"},
        "resource": {"type": "User", "id": "u1", "userName": "ana@acme.example",
                     "name": "Ana Lima"},
        "changes": [{"path": "active", "before": true, "after": false}],
    });
    append(&store, "user.created", &user_event("user.created", 9));
    append(&store, "user.deactivated", &ana.to_string());
    let members = json!({
        "type": "group.members_added", "time": "2026-12-05T10:00:00.000Z",
        "actor": {"kind": "admin", "name": "root"},
        "resource": {"type": "Group", "id": "g1", "displayName": "Engineering"},
        "changes": [],
        "members": [{"id": "u1", "type": "User", "name": "Ana Lima"},
                    {"id": "u2", "type": "User", "name": "Bo Chen"}],
    });
    append(&store, "group.members_added", &members.to_string());
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(
        got[0].body,
        r#"{"text":"Ana Lima (ana@acme.example) was deactivated by onelogin"}"#
    );
    verified(&secret, &got[0]);
    assert_eq!(
        verified(&secret, &got[1])["text"],
        "2 members were added to the group Engineering by root: Ana Lima, Bo Chen"
    );
    drop(server);
}

pub(crate) fn scimd(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_commands_work_beside_a_running_server_and_refuse_unsafe_urls() {
    let server = start().await;
    let db = server.db();
    let db = db.to_str().unwrap();
    let receiver = Receiver::start().await;
    let url = receiver.url();
    // Plain http needs --allow-http; metadata addresses are refused outright.
    let (ok, _, err) = scimd(&["webhook", "add", "--name", "lan", "--url", &url, "--db", db]);
    assert!(!ok && err.contains("--allow-http"), "{err}");
    for bad in [
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00:ec2::254]/",
        "https://[::ffff:169.254.169.254]/",
    ] {
        let (ok, _, err) = scimd(&["webhook", "add", "--name", "md", "--url", bad, "--db", db]);
        assert!(!ok && err.contains("refused address"), "{bad}: {err}");
    }
    let (ok, _, err) = scimd(&[
        "webhook",
        "add",
        "--name",
        "lan",
        "--url",
        &url,
        "--allow-http",
        "--events",
        "user.deleted,user.exploded",
        "--db",
        db,
    ]);
    assert!(!ok && err.contains("user.exploded"), "{err}");
    let (ok, out, err) = scimd(&[
        "webhook",
        "add",
        "--name",
        "lan",
        "--url",
        &url,
        "--allow-http",
        "--events",
        "user.deactivated,user.deleted",
        "--db",
        db,
    ]);
    assert!(ok, "{err}");
    let secret = out.lines().last().unwrap().to_string();
    assert!(
        secret.starts_with("whsec_") && !secret.contains(' '),
        "{out}"
    );
    let (ok, out, _) = scimd(&["webhook", "list", "--db", db]);
    assert!(
        ok && out.contains("lan") && out.contains("user.deactivated,user.deleted"),
        "{out}"
    );
    assert!(out.contains("state healthy"), "{out}");

    let (ok, out, err) = scimd(&["webhook", "test", "lan", "--db", db]);
    assert!(ok && out.contains("Delivered: HTTP 200"), "{out}{err}");
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let body = verified(&secret, &got[0]);
    assert_eq!(body["type"], "webhook.test");
    assert!(got[0].id().starts_with("test_"));

    // The running server picks the endpoint up and delivers what it asked for.
    let store = beside(&server);
    append(&store, "user.created", &user_event("user.created", 1));
    append(&store, "user.deleted", &user_event("user.deleted", 1));
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(verified(&secret, &got[1])["type"], "user.deleted");

    let (ok, out, _) = scimd(&["webhook", "rotate", "lan", "--overlap", "none", "--db", db]);
    let rotated = out.lines().last().unwrap().to_string();
    assert!(
        ok && rotated.starts_with("whsec_") && rotated != secret,
        "{out}"
    );
    receiver.set_default(Mode::Status(500));
    let (ok, _, err) = scimd(&["webhook", "test", "lan", "--db", db]);
    assert!(!ok && err.contains("HTTP 500"), "{err}");
    assert!(
        verified(
            &rotated,
            &receiver.wait_for(3, Duration::from_secs(5)).await[2]
        )
        .is_object()
    );

    // An endpoint stored with a refused address (as if written by hand) is refused at
    // delivery too, and `test` says why.
    store
        .write_sync(|tx| {
            tx.execute(
                "UPDATE webhook_endpoints SET url = 'http://169.254.169.254/latest' WHERE name = 'lan'",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    let (ok, _, err) = scimd(&["webhook", "test", "lan", "--db", db]);
    assert!(
        !ok && err.contains("refused address 169.254.169.254"),
        "{err}"
    );
    let (ok, _, err) = scimd(&["webhook", "resume", "nope", "--db", db]);
    assert!(!ok && err.contains("no webhook named"), "{err}");
    let (ok, _, _) = scimd(&["webhook", "remove", "lan", "--db", db]);
    assert!(ok);
    // Audited, with the host but never the URL's path (a chat webhook URL is a secret).
    let audited: Vec<(String, String)> = store
        .read_sync(|c| {
            Ok(c.prepare(
                "SELECT action, IFNULL(detail, '') FROM audit
                 WHERE resource_type = 'Webhook' AND resource_name = 'lan' ORDER BY seq",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
        })
        .unwrap();
    let actions: Vec<&str> = audited.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["webhook.add", "webhook.rotate", "webhook.remove"]);
    assert!(
        audited[0].1.contains("127.0.0.1") && !audited[0].1.contains("/hook"),
        "{audited:?}"
    );
    let (_, out, _) = scimd(&["webhook", "list", "--db", db]);
    assert!(out.contains("No webhooks"), "{out}");
    // The server stops its worker and forgets its metrics (for good: a few supervisor
    // passes later too); stopping is no restart.
    let metrics = || async {
        let m = server
            .raw(
                "GET",
                "/metrics",
                &[("authorization", "Bearer metrics-secret")],
                None,
            )
            .await;
        String::from_utf8_lossy(&m.body).into_owned()
    };
    let start = Instant::now();
    while metrics().await.contains("endpoint=\"lan\"") {
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = metrics().await;
    assert!(!text.contains("endpoint=\"lan\""), "{text}");
    assert!(
        text.contains("scimd_webhook_worker_restarts_total 0"),
        "{text}"
    );
}

/// Names resolve through the checking resolver: `localhost` (loopback) is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_is_resolved_and_checked_on_connect() {
    let receiver = Receiver::start().await;
    let client = webhooks::Client::new(None, webhooks::Timeouts::default()).unwrap();
    let url = format!("http://localhost:{}/hook", receiver.addr.port());
    let sent = client.post(&url, &[], Bytes::from_static(b"{}")).await;
    assert_eq!((sent.status, sent.error), (Some(200), None));
    receiver.script([Mode::Throttle(7)]);
    let sent = client.post(&url, &[], Bytes::from_static(b"{}")).await;
    assert_eq!(
        (sent.status, sent.retry_after),
        (Some(429), Some(Duration::from_secs(7)))
    );
    let sent = client
        .post("http://169.254.169.254/x", &[], Bytes::from_static(b"{}"))
        .await;
    assert!(sent.error.unwrap().contains("refused address"));
    // Not an IP literal to Rust, so it goes to the resolver, whose answer (169.254.169.254,
    // as the C library reads a bare number) is checked after DNS.
    let sent = client
        .post("http://2852039166/x", &[], Bytes::from_static(b"{}"))
        .await;
    let error = sent.error.unwrap();
    assert!(error.contains("refused address 169.254.169.254"), "{error}");
    let sent = client
        .post(
            "http://[::ffff:a9fe:a9fe]:80/x",
            &[],
            Bytes::from_static(b"{}"),
        )
        .await;
    assert!(sent.error.unwrap().contains("refused address"));
}

/// The writes and reads the tests above rely on, without a server: an event committed
/// before an endpoint exists is not delivered to it (it starts at the head).
#[test]
fn a_new_endpoint_starts_at_the_event_head() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = Store::open(&dir.path().join("scimd.db")).unwrap();
    append(&store, "user.created", &user_event("user.created", 1));
    add(
        &store,
        "late",
        "https://hooks.example.com/x",
        &[],
        "standard",
    );
    let s = &webhooks::list(&store).unwrap()[0];
    assert_eq!((s.endpoint.cursor, s.pending), (1, 0));
}

/// HTTPS deliveries trust the system store plus `--webhook-ca-file`: a receiver with a
/// certificate from neither fails with the TLS error named; trusted, it is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_trusts_the_extra_ca_file_and_names_tls_errors() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    let (cert, key) = (format!("{tls}/a.crt"), format!("{tls}/a.key"));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from_pem_file(&cert).unwrap()],
        PrivateKeyDer::from_pem_file(&key).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, std::io::Error>(Response::new(Full::new(Bytes::from("ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let url = format!("https://127.0.0.1:{}/hook", addr.port());
    let untrusted = webhooks::Client::new(None, webhooks::Timeouts::default()).unwrap();
    let sent = untrusted.post(&url, &[], Bytes::from_static(b"{}")).await;
    let error = sent.error.unwrap();
    assert!(error.contains("certificate"), "{error}");
    let trusted = webhooks::Client::new(
        Some(std::path::Path::new(&cert)),
        webhooks::Timeouts::default(),
    )
    .unwrap();
    let sent = trusted.post(&url, &[], Bytes::from_static(b"{}")).await;
    assert_eq!((sent.status, sent.error), (Some(200), None));
    let bad = webhooks::Client::new(Some(std::path::Path::new(&key)), Default::default());
    assert!(bad.is_err(), "a key is no CA file");
    server.abort();
}

/// `kill -9` of the real binary, first with the receiver down and then with deliveries in
/// flight: after each restart every event arrives, in order; repeats are only of what was
/// in flight, and are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_undelivered_events_then_restart_delivers_every_event_in_order() {
    use crate::common::{KillOnDrop, new_db, spawn_server};
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("kill.db");
    let db = db.to_str().unwrap().to_string();
    new_db(&db);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (ok, out, err) = scimd(&[
        "webhook",
        "add",
        "--name",
        "ssh",
        "--url",
        &format!("http://{port}/hook"),
        "--allow-http",
        "--db",
        &db,
    ]);
    assert!(ok, "{err}");
    let secret = out.lines().last().unwrap().to_string();
    let store = Store::open_for_command(std::path::Path::new(&db)).unwrap();
    for i in 0..20 {
        append(
            &store,
            "user.deactivated",
            &user_event("user.deactivated", i),
        );
    }
    // Down: the first attempt fails, then scimd is killed.
    let (child, _, _log) = spawn_server(&db, &[]);
    let mut child = KillOnDrop(child);
    let start = Instant::now();
    while webhooks::attempts(&store, "ssh", 10).unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Up, slowly: killed again while deliveries are in flight.
    let receiver = Receiver::on(TcpListener::bind(port).await.unwrap());
    receiver.set_default(Mode::Slow(Duration::from_millis(30)));
    for i in 20..40 {
        append(
            &store,
            "user.reactivated",
            &user_event("user.reactivated", i),
        );
    }
    let (child, _, _log) = spawn_server(&db, &[]);
    let mut child = KillOnDrop(child);
    receiver.wait_for(5, Duration::from_secs(30)).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let (child, _, _log) = spawn_server(&db, &[]);
    let _child = KillOnDrop(child);
    let start = Instant::now();
    while dedup(&receiver.got()).0.len() < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            dedup(&receiver.got())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = receiver.got();
    for g in &got {
        verified(&secret, g);
    }
    let (delivered, repeats) = dedup(&got);
    assert_eq!(delivered, (1..=40).collect::<Vec<i64>>());
    eprintln!("kill -9: 40 events delivered in order, {repeats} repeated delivery(ies)");
    assert!(
        repeats <= 1,
        "only the delivery in flight at the kill repeats: {repeats}"
    );
}

/// A restored database gets a new event history id, so a `webhook-id` is never reused for
/// other content: events after the backup get the seqs the lost ones had.
#[test]
fn a_restore_draws_a_new_event_history_id() {
    use crate::common::new_db;
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("scimd.db");
    let backup = dir.path().join("backup.db");
    new_db(db.to_str().unwrap());
    let epoch = |path: &std::path::Path| {
        Store::open_existing(path)
            .unwrap()
            .read_sync(scimd::store::webhooks::epoch)
            .unwrap()
    };
    let before = epoch(&db);
    let (ok, _, err) = scimd(&[
        "backup",
        backup.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(epoch(&backup), before, "a backup is a copy");
    let (ok, _, err) = scimd(&[
        "restore",
        backup.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let after = epoch(&db);
    assert_eq!(after.len(), 16);
    assert_ne!(after, before);
}

/// A worker that fails (here: an event it cannot read) is restarted by its supervisor,
/// counted in `/metrics`, and goes on once the cause is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_worker_is_restarted_and_goes_on() {
    let server = start().await;
    let store = beside(&server);
    let receiver = Receiver::start().await;
    let secret = add(&store, "sup", &receiver.url(), &[], "standard");
    append(&store, "user.created", &user_event("user.created", 1));
    receiver.wait_for(1, Duration::from_secs(20)).await;
    store
        .write_sync(|tx| {
            tx.execute(
                "INSERT INTO events (at, type, payload) VALUES ('t', 'user.updated', x'00')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    append(&store, "user.deleted", &user_event("user.deleted", 1));
    let restarts = || async {
        let m = server
            .raw(
                "GET",
                "/metrics",
                &[("authorization", "Bearer metrics-secret")],
                None,
            )
            .await;
        let text = String::from_utf8_lossy(&m.body).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("scimd_webhook_worker_restarts_total "))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let start = Instant::now();
    while restarts().await < 2 {
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(receiver.got().len(), 1);
    store
        .write_sync(|tx| {
            tx.execute("DELETE FROM events WHERE seq = 2", [])?;
            Ok(())
        })
        .unwrap();
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(seqs(&got), [1, 3]);
    verified(&secret, &got[1]);
}
