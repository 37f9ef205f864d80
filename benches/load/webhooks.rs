//! Webhook workloads (issue 14), run last on the same server, against a receiver in this
//! process (plain HTTP on 127.0.0.1, answering 204 at once and recording each arrival):
//!
//! | workload             | what it does                                                     |
//! |----------------------|------------------------------------------------------------------|
//! | `webhook-delivery`   | one endpoint; PATCH `replace title` of random users on           |
//! |                      | `--connections` for `--seconds`, then waits until the endpoint   |
//! |                      | has every event: events delivered per second (first write to     |
//! |                      | last receipt) and commit-to-receipt latency p50/p99 under that   |
//! |                      | backlog; then `webhook-latency`: the latency with PATCHes paced  |
//! |                      | at `PACED_RATE` per second on one connection (no backlog)        |
//! | `writes-0-endpoints` | the write mix (3 PATCHes of users to 1 create) with no endpoint  |
//! | `writes-3-endpoints` | the same with three endpoints at the receiver; when both run,   |
//! |                      | they alternate 0, 3, 3, 0 in rounds of `--seconds / 2` (so drift |
//! |                      | weighs on both alike) and the ratio of throughputs is reported   |
//!
//! Endpoints are registered through the library while the server runs, so the server starts
//! their workers at its next look (`webhooks::Settings::tick`); the benchmark then writes once
//! and waits for that event at every endpoint before it measures anything.
//!
//! Latency is receipt minus the event's `time` field. That time is taken inside the write's
//! transaction, before its COMMIT (and it is truncated to the millisecond), so the figure is
//! an upper bound of commit-to-receipt. After each measured round the benchmark waits until
//! every endpoint has the newest event (bounded): each must have received every event after
//! its registration, in order; a missing or reordered one is an error, a duplicate is counted.

use std::sync::Mutex;
use std::time::SystemTime;

use hyper::body::Incoming;

use super::*;

/// Names of the endpoints the benchmark registers (leftovers of an interrupted run are
/// removed first).
const ENDPOINT_PREFIX: &str = "bench-hook-";
/// How long the server may take to start delivering to a new endpoint (its tick is 5 s).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long endpoints may take to catch up after the writes stop.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);
/// Writes per second of the latency part of `webhook-delivery`.
const PACED_RATE: u32 = 100;
/// Endpoints of `writes-3-endpoints`.
const ENDPOINTS: usize = 3;

/// One delivery as the receiver got it; parsed after the run, so the receiver does as little
/// as possible while the load runs (it shares the machine with the server).
struct Arrival {
    endpoint: usize,
    at: SystemTime,
    id: String,
    body: Bytes,
}

/// A local webhook receiver: endpoint `k` is `http://<addr>/hook/<k>`.
struct Receiver {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Arrival>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let shared = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let log = log.clone();
                        async move {
                            let endpoint = req
                                .uri()
                                .path()
                                .strip_prefix("/hook/")
                                .and_then(|k| k.parse().ok())
                                .unwrap_or(usize::MAX);
                            let id = req
                                .headers()
                                .get("webhook-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            let body = req.into_body().collect().await?.to_bytes();
                            let at = SystemTime::now();
                            log.lock().unwrap_or_else(|p| p.into_inner()).push(Arrival {
                                endpoint,
                                at,
                                id,
                                body,
                            });
                            let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                            *resp.status_mut() = StatusCode::NO_CONTENT;
                            Ok::<_, hyper::Error>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Receiver { addr, log, task })
    }

    fn url(&self, endpoint: usize) -> String {
        format!("http://{}/hook/{endpoint}", self.addr)
    }

    /// Takes what arrived so far.
    fn take(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The highest event seq each of `endpoints` has received so far.
    fn newest(&self, endpoints: usize) -> Vec<i64> {
        let mut newest = vec![0; endpoints];
        for a in self.log.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if let (Some(n), Some(seq)) = (newest.get_mut(a.endpoint), seq_of(&a.id)) {
                *n = (*n).max(seq);
            }
        }
        newest
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The event seq of a `webhook-id` (`evt_<epoch>_<seq>`).
fn seq_of(id: &str) -> Option<i64> {
    id.strip_prefix("evt_")?.rsplit('_').next()?.parse().ok()
}

/// The newest committed event seq.
fn head(store: &Store) -> Result<i64> {
    Ok(store.read_sync(store::events::head)?)
}

/// Registers `n` standard-format endpoints at the receiver; they get events committed from
/// now on. Returns their names.
fn register(store: &Store, receiver: &Receiver, n: usize) -> Result<Vec<String>> {
    unregister_all(store)?;
    (0..n)
        .map(|k| {
            let name = format!("{ENDPOINT_PREFIX}{k}");
            let add = scimd::webhooks::Add {
                name: &name,
                url: &receiver.url(k),
                types: &[],
                format: "standard",
                allow_http: true,
            };
            scimd::webhooks::add(store, &add, &Actor::cli())?;
            Ok(name)
        })
        .collect()
}

/// Removes every endpoint the benchmark registered.
fn unregister_all(store: &Store) -> Result<()> {
    for status in scimd::webhooks::list(store)? {
        let name = status.endpoint.name;
        if name.starts_with(ENDPOINT_PREFIX) {
            scimd::webhooks::remove(store, &name, &Actor::cli())?;
        }
    }
    Ok(())
}

/// Writes one change and waits until each of `endpoints` has its event: the server's
/// workers for them are running. The arrivals are discarded.
async fn wait_ready(
    target: &Target,
    store: &Store,
    receiver: &Receiver,
    users: &[String],
    endpoints: usize,
) -> Result<()> {
    let mut client = Client::connect(target.addr, Some(&target.token)).await?;
    // A title never set before: a PATCH that changes nothing makes no event.
    let nanos = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let ops = json!([{"op": "replace", "path": "title", "value": format!("Ready {nanos}")}]);
    let path = format!("/scim/v2/Users/{}", users.first().ok_or("no users")?);
    let (status, body) = client
        .send(Method::PATCH, &path, writes::patch_body(ops))
        .await?;
    if status != StatusCode::OK {
        return Err(format!("warm-up PATCH: status {status}: {}", text(&body)).into());
    }
    let seq = head(store)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    while receiver.newest(endpoints).iter().any(|&n| n < seq) {
        if Instant::now() > deadline {
            return Err(format!(
                "the server did not deliver to {endpoints} new endpoint(s) within {READY_TIMEOUT:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    receiver.take();
    Ok(())
}

/// Waits until each of `endpoints` has received event `seq` (bounded); the time it took.
async fn catch_up(receiver: &Receiver, endpoints: usize, seq: i64) -> Option<Duration> {
    let started = Instant::now();
    while receiver.newest(endpoints).iter().any(|&n| n < seq) {
        if started.elapsed() > CATCH_UP_TIMEOUT {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Some(started.elapsed())
}

/// What the endpoints received for events `(first, last]`.
struct Delivered {
    /// Distinct events received, over all endpoints.
    events: usize,
    duplicates: usize,
    /// Receipt minus the event's `time`, per delivery.
    latencies: Latencies,
    /// When the last of them arrived.
    last: Option<SystemTime>,
}

/// Checks the arrivals of a round: each endpoint got every event in `(first, last]` once, in
/// order (a repeat is counted, not an error). Errors go to `errors`.
fn account(
    arrivals: &[Arrival],
    endpoints: usize,
    first: i64,
    last: i64,
    errors: &mut Errors,
) -> Delivered {
    let mut seen: Vec<HashSet<i64>> = vec![HashSet::new(); endpoints];
    let mut newest = vec![first; endpoints];
    let mut latencies = Vec::with_capacity(arrivals.len());
    let mut duplicates = 0;
    let mut last_at = None;
    for a in arrivals {
        let Some(seq) = seq_of(&a.id) else {
            errors.push(format!("a delivery without an event id: {:?}", a.id));
            continue;
        };
        if a.endpoint >= endpoints {
            errors.push(format!("a delivery to an unknown endpoint {}", a.endpoint));
            continue;
        }
        if !seen[a.endpoint].insert(seq) {
            duplicates += 1;
            continue;
        }
        if seq <= newest[a.endpoint] {
            errors.push(format!(
                "endpoint {}: event {seq} arrived after {}",
                a.endpoint, newest[a.endpoint]
            ));
        }
        newest[a.endpoint] = newest[a.endpoint].max(seq);
        last_at = last_at.max(Some(a.at));
        match event_time(&a.body) {
            Some(time) => latencies.push(a.at.duration_since(time).unwrap_or_default()),
            None => errors.push(format!("event {seq}: no readable \"time\" in its body")),
        }
    }
    let want = usize::try_from(last - first).unwrap_or(0);
    for (k, got) in seen.iter().enumerate() {
        let missing = (first + 1..=last).filter(|s| !got.contains(s)).count();
        if missing > 0 {
            errors.push(format!(
                "endpoint {k}: {missing} of {want} events never arrived"
            ));
        }
    }
    Delivered {
        events: seen.iter().map(HashSet::len).sum(),
        duplicates,
        latencies: Latencies::new(latencies),
        last: last_at,
    }
}

/// The `time` field of an event body, as a wall-clock instant.
fn event_time(body: &Bytes) -> Option<SystemTime> {
    #[derive(Deserialize)]
    struct Event {
        time: String,
    }
    let event: Event = serde_json::from_slice(body).ok()?;
    time::parse(&event.time).map(SystemTime::from)
}

/// The write mix of the endpoint comparison: of each connection's requests, three PATCHes
/// of random users to one durable create.
fn mixed_calls(users: Arc<Vec<String>>, nonce: u64) -> CallFn {
    let patch = writes::user_patch_calls(users);
    let create = writes::create_calls(nonce);
    Arc::new(move |rng, slot| {
        if slot.n % 4 == 3 {
            create(rng, slot)
        } else {
            patch(rng, slot)
        }
    })
}

/// Ids of the seeded users (`userN@example.com`).
fn seeded_users(store: &Store) -> Result<Vec<String>> {
    Ok(store.read_sync(|conn| {
        let mut stmt =
            conn.prepare("SELECT id FROM users WHERE user_name LIKE 'user%' ORDER BY seq")?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    })?)
}

/// Runs the selected webhook workloads against `server`, then removes the endpoints and the
/// users the creates made.
pub(super) async fn run(
    args: &Args,
    db: &Path,
    target: &Target,
    server: &ServerProcess,
    report: &mut Report,
) -> Result<()> {
    let store = Store::open(db)?;
    let users = Arc::new(seeded_users(&store)?);
    let receiver = Receiver::start().await?;
    let outcome = async {
        if args.runs(Workload::WebhookDelivery) {
            delivery(args, target, &store, &receiver, &users, server, report).await?;
        }
        compare(args, target, &store, &receiver, &users, server, report).await
    }
    .await;
    unregister_all(&store)?;
    drop(store);
    writes::cleanup(db)?;
    outcome
}

/// `webhook-delivery`: one endpoint, PATCHes of users for `--seconds`, then the catch-up.
async fn delivery(
    args: &Args,
    target: &Target,
    store: &Store,
    receiver: &Receiver,
    users: &Arc<Vec<String>>,
    server: &ServerProcess,
    report: &mut Report,
) -> Result<()> {
    register(store, receiver, 1)?;
    wait_ready(target, store, receiver, users, 1).await?;
    let first = head(store)?;
    let started = SystemTime::now();
    let calls = writes::user_patch_calls(users.clone());
    let r = drive(target, true, args.connections, args.load_duration(), calls).await?;
    let last = head(store)?;
    let behind = last - receiver.newest(1)[0];
    let caught_up = catch_up(receiver, 1, last).await;
    unregister_all(store)?;
    let mut errors = Errors::default();
    if caught_up.is_none() {
        errors.push(format!(
            "the endpoint did not catch up within {CATCH_UP_TIMEOUT:?}"
        ));
    }
    let d = account(&receiver.take(), 1, first, last, &mut errors);
    let span = d
        .last
        .and_then(|t| t.duration_since(started).ok())
        .unwrap_or(r.elapsed);
    let row = Row {
        workload: Workload::WebhookDelivery.name().into(),
        requests: Some(d.events),
        throughput: Some(d.events as f64 / span.as_secs_f64()),
        p50: Some(d.latencies.percentile(50.0)),
        p99: Some(d.latencies.percentile(99.0)),
        ratio: None,
        note: format!(
            "events/s from the first write to the last receipt; latency = receipt − event \
             time; 1 endpoint; {} PATCHes at {:.1} req/s on {} connections; {behind} events \
             behind when the writes stopped, caught up {}; {} duplicates",
            r.requests(),
            r.throughput(),
            r.connections,
            caught_up.map_or("—".into(), |t| format!("{:.2} s later", t.as_secs_f64())),
            d.duplicates
        ),
        peak_rss_kb: server.peak_rss_kb(),
    };
    errors.merge(r.errors);
    report.add(row, errors);
    paced(args, target, store, receiver, users, server, report).await
}

/// The second part of `webhook-delivery`: commit-to-receipt latency without a backlog, with
/// PATCHes at `PACED_RATE` per second (below what one endpoint takes) on one connection.
async fn paced(
    args: &Args,
    target: &Target,
    store: &Store,
    receiver: &Receiver,
    users: &Arc<Vec<String>>,
    server: &ServerProcess,
    report: &mut Report,
) -> Result<()> {
    register(store, receiver, 1)?;
    wait_ready(target, store, receiver, users, 1).await?;
    let first = head(store)?;
    let mut errors = Errors::default();
    let mut client = Client::connect(target.addr, Some(&target.token)).await?;
    let calls = writes::user_patch_calls(users.clone());
    // Seeded from the clock: a rerun on the same `--db` must not repeat titles users
    // already have (a PATCH that changes nothing makes no event).
    let mut rng = Rng::new(
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1) / PACED_RATE);
    let until = Instant::now() + args.load_duration();
    let mut sent = 0;
    while Instant::now() < until {
        tick.tick().await;
        let call = calls(&mut rng, Slot { conn: 0, n: sent });
        sent += 1;
        let (status, body) = client.send(call.method, &call.path, call.body).await?;
        if let Err(e) = check(call.expect, status, &body) {
            errors.push(format!("{}: {e}", call.path));
        }
    }
    let last = head(store)?;
    let caught_up = catch_up(receiver, 1, last).await;
    unregister_all(store)?;
    if caught_up.is_none() {
        errors.push(format!(
            "the endpoint did not catch up within {CATCH_UP_TIMEOUT:?}"
        ));
    }
    let d = account(&receiver.take(), 1, first, last, &mut errors);
    let mut row = Row::empty(
        "webhook-latency",
        format!(
            "{sent} PATCHes paced at {PACED_RATE}/s on 1 connection, 1 endpoint; latency = \
             receipt − event time; {} duplicates",
            d.duplicates
        ),
    )
    .with_peak_rss(server.peak_rss_kb());
    row.requests = Some(d.events);
    row.throughput = Some(d.events as f64 / args.load_duration().as_secs_f64());
    row.p50 = Some(d.latencies.percentile(50.0));
    row.p99 = Some(d.latencies.percentile(99.0));
    report.add(row, errors);
    Ok(())
}

/// `writes-0-endpoints` and `writes-3-endpoints`: the same write mix without and with three
/// endpoints, alternating 0, 3, 3, 0 when both run.
async fn compare(
    args: &Args,
    target: &Target,
    store: &Store,
    receiver: &Receiver,
    users: &Arc<Vec<String>>,
    server: &ServerProcess,
    report: &mut Report,
) -> Result<()> {
    let selected: Vec<Workload> = [Workload::Writes0Endpoints, Workload::Writes3Endpoints]
        .into_iter()
        .filter(|&w| args.runs(w))
        .collect();
    let rounds: Vec<Workload> = match selected.as_slice() {
        [] => return Ok(()),
        [one] => vec![*one],
        [none, three, ..] => vec![*none, *three, *three, *none],
    };
    let round_time = args.load_duration() * selected.len() as u32 / rounds.len() as u32;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    // Short and unrecorded: the first writes after the other workloads warm the caches.
    drive(
        target,
        true,
        args.connections,
        Duration::from_secs(1),
        mixed_calls(users.clone(), nonce),
    )
    .await?;
    let mut results: [Option<LoadResult>; 2] = [None, None];
    let mut cpu_seconds = [0.0; 2];
    let mut registered = false;
    let mut lag = Vec::new();
    let mut delivery_errors = Errors::default();
    let mut delivered = 0;
    let mut duplicates = 0;
    for (round, &w) in rounds.iter().enumerate() {
        let three = w == Workload::Writes3Endpoints;
        if three && !registered {
            register(store, receiver, ENDPOINTS)?;
            wait_ready(target, store, receiver, users, ENDPOINTS).await?;
            registered = true;
        } else if !three && registered {
            unregister_all(store)?;
            registered = false;
        }
        let first = head(store)?;
        // Each round its own user names (the creates' `conn`/`n` restart per round).
        let calls = mixed_calls(users.clone(), nonce * 100 + round as u64);
        let cpu = (server.cpu_ticks(), cpu_ticks("/proc/self/stat"));
        let r = drive(target, true, args.connections, round_time, calls).await?;
        // Where the CPU went during the round (ticks of 10 ms on Linux): the server's, and
        // this process's (the load generator and the receiver). Other engineers' work on a
        // shared machine takes CPU from the rounds unevenly; writes per CPU second do not
        // depend on how much CPU a round got.
        let used = |before: Option<u64>, after: Option<u64>| {
            after
                .zip(before)
                .map_or(f64::NAN, |(a, b)| (a - b) as f64 / 100.0)
        };
        let (server_cpu, bench_cpu) = (
            used(cpu.0, server.cpu_ticks()),
            used(cpu.1, cpu_ticks("/proc/self/stat")),
        );
        println!(
            "  round {}: {} {:.1} req/s; CPU s in {:.1} s: server {server_cpu:.2}, benchmark {bench_cpu:.2}",
            round + 1,
            w.name(),
            r.throughput(),
            r.elapsed.as_secs_f64(),
        );
        cpu_seconds[usize::from(three)] += server_cpu + bench_cpu;
        if three {
            // Not measured: the endpoints get what they are owed before the next round, so
            // no round inherits another's deliveries.
            let last = head(store)?;
            let behind = last - receiver.newest(ENDPOINTS).into_iter().min().unwrap_or(0);
            let caught_up = catch_up(receiver, ENDPOINTS, last).await;
            if caught_up.is_none() {
                delivery_errors.push(format!(
                    "round {}: endpoints did not catch up within {CATCH_UP_TIMEOUT:?}",
                    round + 1
                ));
            }
            let d = account(
                &receiver.take(),
                ENDPOINTS,
                first,
                last,
                &mut delivery_errors,
            );
            delivered += d.events;
            duplicates += d.duplicates;
            lag.push(format!(
                "{behind} behind, caught up {}",
                caught_up.map_or("—".into(), |t| format!("in {:.2} s", t.as_secs_f64()))
            ));
        }
        let slot = &mut results[usize::from(three)];
        *slot = Some(match slot.take() {
            Some(before) => before.merge(r),
            None => r,
        });
    }
    if registered {
        unregister_all(store)?;
    }
    let mut throughput = [None, None];
    for (k, (w, r)) in [Workload::Writes0Endpoints, Workload::Writes3Endpoints]
        .into_iter()
        .zip(results)
        .enumerate()
    {
        let Some(r) = r else { continue };
        let per_cpu = r.requests() as f64 / cpu_seconds[k];
        throughput[k] = Some((r.throughput(), per_cpu));
        let mut row = Row::load(w, &r, None).with_peak_rss(server.peak_rss_kb());
        row.note += &format!(
            "; 3 PATCHes of users to 1 create; {per_cpu:.0} writes per CPU second (server + benchmark)"
        );
        let mut errors = r.errors;
        if k == 1 {
            row.note += &format!(
                "; {delivered} deliveries, {duplicates} duplicates; when the writes stopped: {}",
                lag.join("; ")
            );
            errors.merge(std::mem::take(&mut delivery_errors));
        }
        report.add(row, errors);
    }
    if let [Some((none, none_cpu)), Some((three, three_cpu))] = throughput {
        let note = format!(
            "3 endpoints / none = {three:.1} / {none:.1} req/s = {:.2} (target ≥ 0.9); per CPU second: {three_cpu:.0} / {none_cpu:.0} = {:.2}; rounds 0, 3, 3, 0 of {:.1} s",
            three / none,
            three_cpu / none_cpu,
            round_time.as_secs_f64()
        );
        report.add(
            Row::empty("writes-endpoints-ratio", note),
            Errors::default(),
        );
    }
    Ok(())
}
