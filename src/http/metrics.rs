//! `GET /metrics` in the Prometheus text format: requests by route and status, a latency
//! histogram by route, requests in flight, unknown attributes ignored in writes, and what the
//! database holds. Served only when a
//! metrics token is configured, and only to a request bearing it (it is not a SCIM token);
//! a wrong token is audited and counted against the client's failed-authentication limit,
//! like a wrong SCIM token.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use subtle::ConstantTimeEq;

use super::{App, Body};
use crate::error::{Error, Result};
use crate::scim::resource::ResourceKind;
use crate::service::audit::Actor;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// A method as a label: the standard ones by name, anything else as `OTHER`, so a client
/// inventing methods cannot grow the table (or allocate on every request).
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("OTHER")
}

#[derive(Default)]
pub struct Metrics {
    in_flight: AtomicI64,
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    /// Unknown attribute names ignored in User and Group writes. Labelled by resource type
    /// only: the names are the client's, so they go to the audit entry, never into a label.
    ignored_users: AtomicU64,
    ignored_groups: AtomicU64,
}

impl Metrics {
    pub fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a finished request (and ends the `start` that began it).
    pub fn finish(&self, method: &str, route: &'static str, status: u16, took: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method_label(method), route, status))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = latency.entry(route).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts `n` unknown names a write of a `kind` resource ignored.
    pub fn ignored(&self, kind: ResourceKind, n: usize) {
        let counter = match kind {
            ResourceKind::User => &self.ignored_users,
            ResourceKind::Group => &self.ignored_groups,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP scimd_http_requests_total Requests answered, by route and status."
        );
        let _ = writeln!(out, "# TYPE scimd_http_requests_total counter");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "scimd_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP scimd_http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(out, "# TYPE scimd_http_request_duration_seconds histogram");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "scimd_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "scimd_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 scimd_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 scimd_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP scimd_http_requests_in_flight Requests being answered now."
        );
        let _ = writeln!(out, "# TYPE scimd_http_requests_in_flight gauge");
        let _ = writeln!(
            out,
            "scimd_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP scimd_ignored_attributes_total Unknown attributes and sub-attributes \
             ignored in writes, by resource type, every one counted. A write that changes \
             the resource names them on its audit entry; one that changes nothing gets an \
             entry naming them (\"unchanged\") at most once a day per actor, resource type \
             and set of names.\n\
             # TYPE scimd_ignored_attributes_total counter\n\
             scimd_ignored_attributes_total{{resource=\"User\"}} {}\n\
             scimd_ignored_attributes_total{{resource=\"Group\"}} {}",
            self.ignored_users.load(Ordering::Relaxed),
            self.ignored_groups.load(Ordering::Relaxed)
        );
    }
}

/// Answers `GET /metrics`: 404 when no metrics token is configured, 401 without it (429 for
/// a client past the failed-authentication limit).
pub async fn serve<B>(
    app: &App,
    req: &Request<B>,
    client: IpAddr,
    actor: &Actor,
) -> Result<Response<Body>> {
    let Some(expected) = &app.config.metrics_token else {
        return Err(Error::NotFound("no endpoint at /metrics".into()));
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        app.limits.failed_auth.fail(client)?;
        let e = Error::Unauthorized("the metrics token is required".into());
        let entry = actor.entry(&format!("{} /metrics", req.method()), "failure", 401);
        app.rejections.push(entry, None, &e);
        return Err(e);
    }
    let mut out = String::new();
    app.metrics.render(&mut out);
    app.webhooks.metrics.render(&mut out);
    let counts = app
        .store
        .read(|conn| {
            let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
            Ok([
                (
                    "scimd_users",
                    "Users stored.",
                    count("SELECT COUNT(*) FROM users")?,
                ),
                (
                    "scimd_groups",
                    "Groups stored.",
                    count("SELECT COUNT(*) FROM groups")?,
                ),
                (
                    "scimd_tokens_live",
                    "SCIM tokens that work.",
                    count("SELECT COUNT(*) FROM tokens WHERE revoked IS NULL")?,
                ),
                (
                    "scimd_audit_entries",
                    "Entries in the audit log.",
                    count("SELECT COUNT(*) FROM audit")?,
                ),
            ])
        })
        .await?;
    for (name, help, n) in counts {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {n}");
    }
    let file_size = |suffix: &str| {
        let mut p = app.config.db.as_os_str().to_owned();
        p.push(suffix);
        std::fs::metadata(p).map_or(0, |m| m.len())
    };
    let batches = app.store.commit_batches();
    let _ = writeln!(
        out,
        "# HELP scimd_commit_batch_size Writes per database commit (group commit shares one \
         fsync among them).\n# TYPE scimd_commit_batch_size histogram"
    );
    for (bound, n) in crate::store::BATCH_BUCKETS.iter().zip(batches.buckets) {
        let _ = writeln!(out, "scimd_commit_batch_size_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "scimd_commit_batch_size_bucket{{le=\"+Inf\"}} {}\n\
         scimd_commit_batch_size_sum {}\nscimd_commit_batch_size_count {}",
        batches.commits, batches.writes, batches.commits
    );
    let _ = writeln!(
        out,
        "# HELP scimd_database_bytes Size of the database file and its WAL.\n\
         # TYPE scimd_database_bytes gauge\nscimd_database_bytes {}",
        file_size("") + file_size("-wal")
    );
    let mut r = Response::new(Body::from(out));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}
