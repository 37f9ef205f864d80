//! What `/metrics` reports about webhooks: deliveries by endpoint and outcome, delivery
//! latency, the age of the oldest undelivered event per endpoint, endpoint states and worker
//! restarts. Workers update these as they go, so a scrape runs no query.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

/// Upper bounds of the delivery latency buckets, in seconds.
const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Latency {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct PerEndpoint {
    /// Deliveries by outcome: success, failure (retried), paused (the last failure).
    outcomes: BTreeMap<&'static str, u64>,
    latency: Latency,
    /// When the oldest event not yet delivered was committed; `None`: none waiting.
    oldest: Option<OffsetDateTime>,
    state: String,
    /// Events retention pruned before the endpoint got them.
    lost: u64,
}

#[derive(Default)]
pub struct Metrics {
    endpoints: Mutex<BTreeMap<String, PerEndpoint>>,
    restarts: AtomicU64,
}

impl Metrics {
    fn with(&self, endpoint: &str, f: impl FnOnce(&mut PerEndpoint)) {
        let mut all = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(endpoint.to_string()).or_default());
    }

    pub(super) fn delivered(&self, endpoint: &str, outcome: &'static str, took: Duration) {
        self.with(endpoint, |e| {
            *e.outcomes.entry(outcome).or_default() += 1;
            let secs = took.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    e.latency.counts[i] += 1;
                }
            }
            e.latency.count += 1;
            e.latency.sum += secs;
        });
    }

    pub(super) fn waiting(&self, endpoint: &str, state: &str, oldest: Option<OffsetDateTime>) {
        self.with(endpoint, |e| {
            e.oldest = oldest;
            if e.state != state {
                e.state = state.to_string();
            }
        });
    }

    pub(super) fn lost(&self, endpoint: &str, events: u64) {
        self.with(endpoint, |e| e.lost += events);
    }

    pub(super) fn forget(&self, endpoint: &str) {
        self.endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(endpoint);
    }

    pub(super) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the webhook metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let all = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let now = OffsetDateTime::now_utc();
        let label = |name: &str| name.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "# HELP scimd_webhook_deliveries_total Delivery attempts by endpoint and outcome \
             (success; failure: retried later; paused: the failure that paused the endpoint).\n\
             # TYPE scimd_webhook_deliveries_total counter"
        );
        for (name, e) in all.iter() {
            for (outcome, n) in &e.outcomes {
                let _ = writeln!(
                    out,
                    "scimd_webhook_deliveries_total{{endpoint=\"{}\",outcome=\"{outcome}\"}} {n}",
                    label(name)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP scimd_webhook_delivery_seconds Time from sending a delivery to its answer.\n\
             # TYPE scimd_webhook_delivery_seconds histogram"
        );
        for (name, e) in all.iter() {
            let name = label(name);
            for (bound, n) in BUCKETS.iter().zip(e.latency.counts) {
                let _ = writeln!(
                    out,
                    "scimd_webhook_delivery_seconds_bucket{{endpoint=\"{name}\",le=\"{bound}\"}} {n}"
                );
            }
            let h = &e.latency;
            let _ = writeln!(
                out,
                "scimd_webhook_delivery_seconds_bucket{{endpoint=\"{name}\",le=\"+Inf\"}} {}\n\
                 scimd_webhook_delivery_seconds_sum{{endpoint=\"{name}\"}} {}\n\
                 scimd_webhook_delivery_seconds_count{{endpoint=\"{name}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP scimd_webhook_oldest_undelivered_seconds Age of the oldest event an \
             endpoint has not acknowledged yet (0: none waiting).\n\
             # TYPE scimd_webhook_oldest_undelivered_seconds gauge"
        );
        for (name, e) in all.iter() {
            let age = e
                .oldest
                .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
            let _ = writeln!(
                out,
                "scimd_webhook_oldest_undelivered_seconds{{endpoint=\"{}\"}} {age:.3}",
                label(name)
            );
        }
        let _ = writeln!(
            out,
            "# HELP scimd_webhook_endpoint_state 1 for each endpoint's state (healthy, \
             retrying, paused).\n# TYPE scimd_webhook_endpoint_state gauge"
        );
        for (name, e) in all.iter() {
            for state in ["healthy", "retrying", "paused"] {
                let _ = writeln!(
                    out,
                    "scimd_webhook_endpoint_state{{endpoint=\"{}\",state=\"{state}\"}} {}",
                    label(name),
                    u8::from(e.state == state)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP scimd_webhook_events_lost_total Events retention pruned before the \
             endpoint got them (it is paused until resumed).\n\
             # TYPE scimd_webhook_events_lost_total counter"
        );
        for (name, e) in all.iter() {
            let _ = writeln!(
                out,
                "scimd_webhook_events_lost_total{{endpoint=\"{}\"}} {}",
                label(name),
                e.lost
            );
        }
        let _ = writeln!(
            out,
            "# HELP scimd_webhook_worker_restarts_total Delivery workers restarted after \
             failing or panicking.\n# TYPE scimd_webhook_worker_restarts_total counter\n\
             scimd_webhook_worker_restarts_total {}",
            self.restarts.load(Ordering::Relaxed)
        );
    }
}
