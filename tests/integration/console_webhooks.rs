//! The console's Webhooks API (`/admin/api/webhooks`): sign-in and CSRF, add (the secret
//! once, refusals), list (state, last delivery, lag; a chat URL masked), the delivery log,
//! test, resend, rotate with overlap, resume of a paused endpoint, remove, and the audit of
//! each. The server's own workers deliver to a receiver on loopback; their tick is an hour,
//! so a delivery that follows a console change proves the console woke them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use scimd::config::Config;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::*;
use crate::console::{Console, set_up};

/// One request a `Receiver` got.
#[derive(Clone)]
pub(crate) struct Got {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Got {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on loopback: records every request and answers with `status`.
pub(crate) struct Receiver {
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Got>>>,
    status: Arc<Mutex<u16>>,
    task: JoinHandle<()>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let status = Arc::new(Mutex::new(200));
        let (g, st) = (got.clone(), status.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (g, st) = (g.clone(), st.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (g, st) = (g.clone(), st.clone());
                        async move {
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await?.to_bytes();
                            g.lock().unwrap().push(Got { headers, body });
                            let mut r = Response::new(Full::new(Bytes::from("ok")));
                            *r.status_mut() = StatusCode::from_u16(*st.lock().unwrap()).unwrap();
                            Ok::<_, hyper::Error>(r)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            url,
            got,
            status,
            task,
        }
    }

    pub(crate) fn answer(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    pub(crate) fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) until a request matches `what`; it.
    pub(crate) async fn wait(&self, what: impl Fn(&Got) -> bool) -> Got {
        self.wait_from(0, what).await
    }

    /// `wait`, for requests after the first `skip`.
    pub(crate) async fn wait_from(&self, skip: usize, what: impl Fn(&Got) -> bool) -> Got {
        let start = Instant::now();
        loop {
            if let Some(g) = self.got().into_iter().skip(skip).find(&what) {
                return g;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the receiver never got it; it got {} requests",
                self.got().len()
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

/// Workers that never look for changes on their own (an hour), and retries short enough to
/// pause an endpoint within a second.
pub(crate) fn slow_tick(mut c: Config) -> Config {
    c.webhooks.tick = Duration::from_secs(3600);
    c.webhooks.first_retry = Duration::from_millis(50);
    c.webhooks.max_retry = Duration::from_millis(100);
    c.webhooks.retry_window = Duration::from_millis(300);
    c.webhooks.timeouts.response = Duration::from_secs(2);
    c
}

async fn start() -> Server {
    Server::start_in(tempfile::TempDir::new().unwrap(), slow_tick).await
}

fn verify(secret: &str, got: &Got) -> Value {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&got.body, &got.headers)
        .unwrap_or_else(|e| panic!("signature with {secret}: {e:?}"));
    got.json()
}

fn detail(r: &Resp) -> String {
    r.json()["detail"].as_str().unwrap_or_default().to_string()
}

/// Waits until the console's view of endpoint `name` satisfies `what`; that view.
async fn wait_view(c: &Console<'_>, name: &str, what: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let v = c.get(&format!("/admin/api/webhooks/{name}")).await;
        if what(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never true of {name}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn add(c: &Console<'_>, body: Value) -> Value {
    let r = c.call("POST", "/admin/api/webhooks", Some(&body)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn post(c: &Console<'_>, path: &str, body: Value) -> Value {
    let r = c.call("POST", path, Some(&body)).await;
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_adds_an_endpoint_that_is_delivered_to_at_once_tests_resends_and_rotates() {
    let s = start().await;
    let c = set_up(&s).await;
    let receiver = Receiver::start().await;
    let body = json!({"name": "ssh-lock", "url": receiver.url, "allowHttp": true});

    // A session and its CSRF token are needed.
    let r = s.raw("GET", "/admin/api/webhooks", &[], None).await;
    assert_eq!(r.status, 401);
    let r = s
        .raw(
            "POST",
            "/admin/api/webhooks",
            &[("cookie", &c.cookie), ("content-type", "application/json")],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(
        c.get("/admin/api/webhooks").await["webhooks"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let added = add(&c, body.clone()).await;
    let secret = added["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let w = &added["webhook"];
    assert_eq!(w["url"], receiver.url.as_str());
    assert_eq!(
        (&w["format"], &w["state"]),
        (&json!("standard"), &json!("healthy"))
    );
    assert_eq!(w["events"], json!([]), "every type when none is chosen");
    let r = c.call("POST", "/admin/api/webhooks", Some(&body)).await;
    assert_eq!(r.status, 409, "{}", detail(&r));

    // Added in the console, delivered at once (workers look on their own only hourly).
    s.create_user(&json!({"userName": "ana@acme.example"}))
        .await;
    let got = receiver.wait(|_| true).await;
    let event = verify(&secret, &got);
    assert_eq!(event["type"], "user.created");
    let seq = event["id"].as_str().unwrap().to_string();
    let v = wait_view(&c, "ssh-lock", |v| {
        v["webhook"]["deliveredUpTo"] == seq.as_str()
    })
    .await;
    let w = &v["webhook"];
    assert_eq!((&w["lastStatus"], &w["pending"]), (&json!(200), &json!(0)));
    assert!(w["lastSuccessAt"].is_string());
    let row = &v["attempts"][0];
    assert_eq!(row["event"], seq.as_str());
    assert_eq!(row["type"], "user.created");
    assert_eq!((&row["attempt"], &row["status"]), (&json!(1), &json!(200)));
    assert_eq!(row["trigger"], "scheduled");
    assert!(row["durationMs"].is_number() && row["error"].is_null());
    let list = c.get("/admin/api/webhooks").await;
    assert_eq!(list["webhooks"][0]["name"], "ssh-lock");
    assert_eq!(list["types"].as_array().unwrap().len(), 10);

    // A test event: sent now, signed, logged without an event.
    let sent = post(&c, "/admin/api/webhooks/ssh-lock/test", json!({})).await;
    assert_eq!(
        (&sent["delivered"], &sent["status"]),
        (&json!(true), &json!(200))
    );
    let test = receiver.wait(|g| g.json()["type"] == "webhook.test").await;
    let test = verify(&secret, &test);
    assert_eq!(test["actor"], json!({"kind": "admin", "name": "root"}));
    let v = c.get("/admin/api/webhooks/ssh-lock").await;
    assert_eq!(v["attempts"][0]["trigger"], "test");
    assert!(v["attempts"][0]["event"].is_null());

    // Resend: the same event once more, with the same webhook-id.
    let sent = post(
        &c,
        "/admin/api/webhooks/ssh-lock/resend",
        json!({"event": seq}),
    )
    .await;
    assert_eq!(sent["delivered"], true);
    let ids: Vec<_> = receiver
        .got()
        .iter()
        .filter(|g| g.json()["id"] == seq.as_str())
        .map(|g| g.headers["webhook-id"].clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    let v = c.get("/admin/api/webhooks/ssh-lock?limit=2").await;
    assert_eq!(v["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(v["attempts"][0]["trigger"], "manual");
    assert_eq!(v["attempts"][0]["event"], seq.as_str());
    let r = c
        .call(
            "POST",
            "/admin/api/webhooks/ssh-lock/resend",
            Some(&json!({"event": 999_999})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", detail(&r));

    // Rotate with an hour's overlap: the new secret is shown once, and both sign.
    let r = c
        .call(
            "POST",
            "/admin/api/webhooks/ssh-lock/rotate",
            Some(&json!({"overlap": "2h"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let rotated = post(
        &c,
        "/admin/api/webhooks/ssh-lock/rotate",
        json!({"overlap": "1h"}),
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    s.create_user(&json!({"userName": "bo@acme.example"})).await;
    let got = receiver
        .wait(|g| g.json()["resource"]["userName"] == "bo@acme.example")
        .await;
    verify(&new_secret, &got);
    verify(&secret, &got);
    // Without overlap the old one stops at once.
    let third = post(
        &c,
        "/admin/api/webhooks/ssh-lock/rotate",
        json!({"overlap": "none"}),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    post(&c, "/admin/api/webhooks/ssh-lock/test", json!({})).await;
    let last = receiver.got().pop().unwrap();
    verify(&third, &last);
    assert!(
        standardwebhooks::Webhook::new(&new_secret)
            .unwrap()
            .verify(&last.body, &last.headers)
            .is_err()
    );

    // Remove, with nothing left behind; a second remove finds nothing.
    let r = c.call("DELETE", "/admin/api/webhooks/ssh-lock", None).await;
    assert_eq!(r.status, 200);
    let r = c.call("DELETE", "/admin/api/webhooks/ssh-lock", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        c.call("GET", "/admin/api/webhooks/ssh-lock", None)
            .await
            .status,
        404
    );
    let before = receiver.got().len();
    s.create_user(&json!({"userName": "cy@acme.example"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.got().len(),
        before,
        "a removed endpoint gets nothing"
    );

    // Every action is on record as the administrator's, with the host only.
    let audit = c.get("/admin/api/audit?limit=100").await;
    let mut actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resourceType"] == "Webhook")
        .map(|e| {
            assert_eq!(e["resourceName"], "ssh-lock");
            assert_eq!(
                (&e["actor"], &e["actorKind"]),
                (&json!("root"), &json!("admin"))
            );
            e["action"].as_str().unwrap()
        })
        .collect();
    actions.reverse();
    assert_eq!(
        actions,
        [
            "webhook.add",
            "webhook.test",
            "webhook.resend",
            "webhook.rotate",
            "webhook.rotate",
            "webhook.test",
            "webhook.remove"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_bad_endpoints_with_a_reason() {
    let s = start().await;
    let c = set_up(&s).await;
    let refused = |body: Value, status: u16, says: &'static str| {
        let c = &c;
        async move {
            let r = c.call("POST", "/admin/api/webhooks", Some(&body)).await;
            assert_eq!(r.status, status, "{body}: {}", detail(&r));
            assert!(detail(&r).contains(says), "{body}: {}", detail(&r));
        }
    };
    refused(
        json!({"name": "lan", "url": "http://10.0.0.5/hook"}),
        400,
        "Allow plain http",
    )
    .await;
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "https://[fd00:ec2::254]/x",
    ] {
        refused(
            json!({"name": "meta", "url": url, "allowHttp": true}),
            400,
            "refused address",
        )
        .await;
    }
    refused(
        json!({"name": "bad", "url": "not a url"}),
        400,
        "webhook URL",
    )
    .await;
    refused(
        json!({"name": "bad", "url": "ftp://example.com/x"}),
        400,
        "https://",
    )
    .await;
    refused(
        json!({"name": "no spaces", "url": "https://example.com/x"}),
        400,
        "webhook name",
    )
    .await;
    refused(
        json!({"name": "x", "url": "https://example.com/x", "events": []}),
        400,
        "at least one",
    )
    .await;
    refused(
        json!({"name": "x", "url": "https://example.com/x", "events": ["user.exploded"]}),
        400,
        "unknown event type",
    )
    .await;
    refused(
        json!({"name": "x", "url": "https://example.com/x", "format": "xml"}),
        400,
        "standard or chat",
    )
    .await;
    refused(
        json!({"name": "x", "url": "https://example.com/x", "allowHttp": "yes"}),
        400,
        "true or false",
    )
    .await;
    assert!(
        c.get("/admin/api/webhooks").await["webhooks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        c.call("POST", "/admin/api/webhooks/nobody/test", Some(&json!({})))
            .await
            .status,
        404
    );

    // A chat URL's path is its credential: shown only by its first characters, audited by
    // its host.
    let chat = "https://hooks.chat.example/services/T0001/B0002/s3cr3tp4th";
    let w = add(
        &c,
        json!({"name": "offboarding", "url": chat, "format": "chat",
               "events": ["user.deactivated", "user.deleted"]}),
    )
    .await;
    let shown = w["webhook"]["url"].as_str().unwrap();
    assert_eq!(shown, "https://hooks.chat.example/services/…");
    assert_eq!(
        w["webhook"]["events"],
        json!(["user.deactivated", "user.deleted"])
    );
    let everything = [
        c.get("/admin/api/webhooks").await.to_string(),
        c.get("/admin/api/webhooks/offboarding").await.to_string(),
        c.get("/admin/api/audit?limit=100").await.to_string(),
    ];
    for text in everything {
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_endpoint_shows_why_and_resuming_it_in_the_console_delivers_what_it_missed() {
    let s = start().await;
    let c = set_up(&s).await;
    let receiver = Receiver::start().await;
    receiver.answer(503);
    add(
        &c,
        json!({"name": "flaky", "url": receiver.url, "allowHttp": true,
               "events": ["user.created"]}),
    )
    .await;
    s.create_user(&json!({"userName": "ana@acme.example"}))
        .await;
    let v = wait_view(&c, "flaky", |v| v["webhook"]["state"] == "paused").await;
    let w = &v["webhook"];
    assert_eq!(w["lastStatus"], 503);
    assert_eq!(w["lastError"], "HTTP 503");
    assert!(w["failedAttempts"].as_i64().unwrap() >= 2, "{w}");
    assert!(w["failingSince"].is_string());
    assert_eq!(w["pending"], 1);
    assert!(w["oldestPendingAt"].is_string());
    assert_eq!(v["attempts"][0]["error"], "HTTP 503");
    assert_eq!(v["attempts"][0]["type"], "user.created");
    s.create_user(&json!({"userName": "bo@acme.example"})).await;
    let listed = c.get("/admin/api/webhooks").await;
    assert_eq!(listed["webhooks"][0]["state"], "paused");
    assert_eq!(listed["webhooks"][0]["pending"], 2);

    receiver.answer(204);
    post(&c, "/admin/api/webhooks/flaky/resume", json!({})).await;
    let v = wait_view(&c, "flaky", |v| v["webhook"]["pending"] == 0).await;
    assert_eq!(v["webhook"]["state"], "healthy");
    assert_eq!(v["webhook"]["lastStatus"], 204);
    let delivered: Vec<String> = receiver
        .got()
        .iter()
        .filter(|g| g.headers.contains_key("webhook-id"))
        .map(|g| {
            g.json()["resource"]["userName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let last_two = &delivered[delivered.len() - 2..];
    assert_eq!(last_two, ["ana@acme.example", "bo@acme.example"]);
    let audit = c.get("/admin/api/audit?action=webhook.resume").await;
    assert_eq!(audit["entries"][0]["resourceName"], "flaky");
    assert_eq!(audit["entries"][0]["actor"], "root");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_paused_endpoint_shows_the_gap_and_resume_answers_what_it_skipped() {
    let s = start().await;
    let c = set_up(&s).await;
    let receiver = Receiver::start().await;
    receiver.answer(503);
    add(
        &c,
        json!({"name": "behind", "url": receiver.url, "allowHttp": true}),
    )
    .await;
    s.create_user(&json!({"userName": "ana@acme.example"}))
        .await;
    wait_view(&c, "behind", |v| v["webhook"]["state"] == "paused").await;
    s.create_user(&json!({"userName": "bo@acme.example"})).await;
    // Retention keeps only bo's event.
    let store = scimd::store::Store::open_for_command(&s.db()).unwrap();
    store
        .write_sync(|tx| {
            let n: u32 = tx.query_row("SELECT COUNT(*) - 1 FROM events", [], |r| r.get(0))?;
            scimd::store::events::delete_oldest(tx, n)
        })
        .unwrap();
    let v = c.get("/admin/api/webhooks/behind").await;
    let gap = &v["webhook"]["prunedBeforeDelivery"];
    let (first, last) = (
        gap["first"].as_str().unwrap(),
        gap["last"].as_str().unwrap(),
    );
    assert_eq!(
        gap["reason"],
        if first == last {
            format!(
                "event {first} was pruned by retention before delivery: resync the receiver from SCIM, then resume"
            )
        } else {
            format!(
                "events {first}–{last} were pruned by retention before delivery: resync the receiver from SCIM, then resume"
            )
        }
    );
    receiver.answer(200);
    let answer = post(&c, "/admin/api/webhooks/behind/resume", json!({})).await;
    assert_eq!(answer["skipped"], json!({"first": first, "last": last}));
    let v = wait_view(&c, "behind", |v| v["webhook"]["pending"] == 0).await;
    assert_eq!(v["webhook"]["prunedBeforeDelivery"], Value::Null);
    let last_got = receiver.got().last().unwrap().json();
    assert_eq!(last_got["resource"]["userName"], "bo@acme.example");
}
