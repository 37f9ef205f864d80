//! scimd: a self-hosted SCIM 2.0 server (RFC 7643, RFC 7644) backed by one SQLite file.
//!
//! Layers, and the only direction they depend on each other:
//! `http` → `service` → {`scim`, `store`}; `store` → `scim` (model types and filter AST).
//! `scim` is the pure protocol core and depends on nothing else here.

pub mod config;
pub mod error;
pub mod http;
pub mod scim;
pub mod service;
pub mod store;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::config::Config;
use crate::error::Result;
use crate::service::tokens::LastUsed;
use crate::store::Store;

/// How often "last used" times of tokens, and request counts, are written.
const LAST_USED_FLUSH: Duration = Duration::from_secs(30);
/// How often the retention of the audit log and of change events is applied (also once at
/// start).
const AUDIT_PRUNE: Duration = Duration::from_secs(3600);
/// How often rejected requests are written to the audit log.
const REJECTIONS_FLUSH: Duration = Duration::from_secs(1);
/// How often the database file is checked for being deleted or replaced (writes and
/// `/healthz` also check it each time).
const DB_FILE_WATCH: Duration = Duration::from_secs(5);

/// Serves SCIM on `listener` from the database in `config` until `shutdown` resolves, then
/// drains in-flight requests and writes pending bookkeeping. `main` and the integration tests
/// both start the server through this one function.
pub async fn run(
    mut config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    // First of all: from here on SIGHUP (`systemctl reload`) never meets its default action,
    // exit, even while migrations run.
    let sighup = hangups()?;
    // Only `serve` creates a database, and only where nothing of an earlier one is left.
    store::dbfile::create(&config.db)?;
    // Held until `run` returns: `scimd restore` and a second server refuse while it is,
    // through whatever name they reach the file by.
    let lock = store::dbfile::ServerLock::acquire(&config.db)?;
    config.db = lock.path().to_path_buf();
    let db = config.db.clone();
    let store = tokio::task::spawn_blocking(move || Store::open_existing(&db))
        .await
        .map_err(error::Error::internal)??
        .with_budget(config.budget);
    store.set_group_commit(config.group_commit);
    // The declared extension schemas; one that no longer parses stops the start, naming it.
    store.refresh_registry()?;
    // An index a stopped process left half-filled is finished in the background; filters
    // read documents until it is.
    let filling = store.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = service::schemas::backfill(&filling) {
            warn!("index backfill: {e}");
        }
    });
    // A bad certificate stops the start here rather than failing every handshake later.
    let tls = config.tls.clone().map(http::tls::Tls::load).transpose()?;
    let local_addr = listener.local_addr().map_err(error::Error::internal)?;
    // Behind a proxy every connection is the proxy's: no per-address share of connections.
    let limits = http::limits::Limits::new(config.max_connections, !config.trust_proxy);
    // A bad --webhook-ca-file stops the start here.
    let hub = Arc::new(webhooks::Hub::new(store.clone(), config.webhooks.clone())?);
    let app = Arc::new(http::App {
        config,
        store,
        webhooks: hub.clone(),
        last_used: LastUsed::default(),
        activity: Default::default(),
        days: Default::default(),
        rejections: Default::default(),
        unchanged: Default::default(),
        hashing: Default::default(),
        limits,
        metrics: Default::default(),
        local_addr,
        tls,
        feed: Default::default(),
        check_marks: Default::default(),
    });
    if let Some(code) = service::admin::new_setup_code(&app.store)? {
        // Addresses a browser can open (never 0.0.0.0), the one to try first first.
        let origins = config::console_origins(
            app.config.public_url.as_deref(),
            local_addr,
            app.tls.is_some(),
        );
        info!(
            "no console administrator yet: open {} within an hour to create one, or run \
             `scimd admin set-password`",
            setup_links(&origins, &code)
        );
    }
    info!(
        listen = %local_addr,
        db = %app.config.db.display(),
        version = env!("CARGO_PKG_VERSION"),
        scheme = if app.tls.is_some() { "https" } else { "http" },
        "scimd is serving SCIM at /scim/v2"
    );
    let reloader = tokio::spawn(on_sighup(sighup, app.clone()));
    // Notices the file going even while nothing writes (one log line, then read-only), and
    // schemas declared or removed by `scimd schema` beside this server.
    let watcher = every(
        &app,
        DB_FILE_WATCH,
        Start::AfterOnePeriod,
        |app| async move {
            let store = app.store.clone();
            let refreshed = tokio::task::spawn_blocking(move || store.refresh_registry()).await;
            match refreshed {
                Ok(Ok(true)) => info!("declared schemas changed: now in force"),
                Ok(Ok(false)) => {}
                // The registry in force stays; the next look tries again.
                Ok(Err(e)) => warn!(error = %e, "declared schemas could not be loaded"),
                Err(e) => warn!(error = %e, "declared schemas could not be loaded"),
            }
        },
    );
    let flusher = every(
        &app,
        LAST_USED_FLUSH,
        Start::AfterOnePeriod,
        |app| async move {
            if let Err(e) = app.last_used.flush(&app.store).await {
                warn!(error = %e, "could not record token use");
            }
            if let Err(e) = app.activity.flush(&app.store).await {
                warn!(error = %e, "could not record request counts");
            }
        },
    );
    let pruner = every(&app, AUDIT_PRUNE, Start::Now, |app| async move {
        match service::audit::prune(&app.store).await {
            Ok(0) => {}
            Ok(n) => info!(deleted = n, "audit log: old entries removed (retention)"),
            Err(e) => warn!(error = %e, "audit log retention failed"),
        }
        match service::feed::prune(&app.store, app.config.event_retention).await {
            Ok(0) => {}
            Ok(n) => info!(deleted = n, "change events: old events removed (retention)"),
            Err(e) => warn!(error = %e, "change event retention failed"),
        }
        if let Err(e) = service::activity::prune(&app.store).await {
            warn!(error = %e, "request counts retention failed");
        }
    });
    let rejections = every(&app, REJECTIONS_FLUSH, Start::Now, |app| async move {
        if let Err(e) = app.rejections.flush(&app.store).await {
            warn!(error = %e, "could not write rejected requests to the audit log");
        }
    });
    // Delivers the events outbox to webhook endpoints, one supervised worker per endpoint.
    let deliveries = tokio::spawn(webhooks::supervise(hub));
    // Takes the users each write notes into the console's search index, off the write path.
    let indexer = tokio::spawn(service::people::keep_search_index(app.store.clone()));
    http::serve(listener, app.clone(), shutdown).await;
    indexer.abort();
    deliveries.abort();
    flusher.abort();
    reloader.abort();
    rejections.abort();
    pruner.abort();
    watcher.abort();
    if app.store.check_file().is_ok() {
        app.last_used.flush(&app.store).await?;
        app.activity.flush(&app.store).await?;
        app.rejections.flush(&app.store).await?;
    }
    drop(lock);
    info!("stopped");
    Ok(())
}

/// The setup link at each of `origins`: "A (also B, C)".
fn setup_links(origins: &[String], code: &str) -> String {
    let mut links = origins.iter().map(|o| http::setup_link(o, code));
    let first = links.next().unwrap_or_default();
    let also: Vec<String> = links.collect();
    if also.is_empty() {
        first
    } else {
        format!("{first} (also {})", also.join(", "))
    }
}

/// When a periodic job first runs.
enum Start {
    Now,
    /// For jobs with nothing to do yet at start (token use is only recorded while serving).
    AfterOnePeriod,
}

/// Runs `job` every `period` on its own task, one run at a time, until the task is aborted.
/// Runs are skipped once the database file is gone (the check logs that once): the jobs write,
/// and each failure would log again.
fn every<F, Fut>(
    app: &Arc<http::App>,
    period: Duration,
    start: Start,
    job: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Arc<http::App>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let app = app.clone();
    tokio::spawn(async move {
        let first = match start {
            Start::Now => tokio::time::Instant::now(),
            Start::AfterOnePeriod => tokio::time::Instant::now() + period,
        };
        let mut tick = tokio::time::interval_at(first, period);
        loop {
            tick.tick().await;
            if app.store.check_file().is_ok() {
                job(app.clone()).await;
            }
        }
    })
}

/// SIGHUP, watched from the start of `run`: `systemctl reload` must never meet the default
/// action (exit), whether or not TLS is on.
#[cfg(unix)]
fn hangups() -> Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup()).map_err(error::Error::internal)
}

/// Reloads the TLS certificate and key on every SIGHUP (as after a renewal); without TLS
/// there is nothing to reload, and SIGHUP only says so.
#[cfg(unix)]
async fn on_sighup(mut hangups: tokio::signal::unix::Signal, app: Arc<http::App>) {
    while hangups.recv().await.is_some() {
        let Some(tls) = &app.tls else {
            info!("SIGHUP: nothing to reload (no --tls-cert)");
            continue;
        };
        match tls.reload() {
            Ok(()) => info!(
                cert = %tls.files().cert.display(),
                "SIGHUP: TLS certificate reloaded"
            ),
            Err(e) => warn!(
                error = %e,
                "SIGHUP: TLS reload failed; still serving the previous certificate"
            ),
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Result<()> {
    Ok(())
}

#[cfg(not(unix))]
async fn on_sighup((): (), _app: Arc<http::App>) {}
