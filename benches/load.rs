//! Load benchmark: the rerunnable proof of the performance figures of issues 3 and 4.
//!
//! It seeds a SQLite database through the library (100,000 users in 200 groups of 500 members
//! by default), starts the real `scimd serve` binary on it as a separate process, and drives
//! it over HTTP/1.1 on loopback with concurrent keep-alive connections. Every even-numbered
//! user carries 20 custom attributes: 10 under an extension schema the benchmark declares
//! first (`BENCH_URN`, its `badgeNumber` unique per user, `uniqueness: server`) and 10 under
//! one it does not (`ACME_URN`); odd-numbered users have none (the "plain" population).
//!
//! | workload             | what it sends                                                     |
//! |----------------------|-------------------------------------------------------------------|
//! | `healthz`            | `GET /healthz`: the HTTP-overhead baseline of every ratio         |
//! | `username-eq`        | `filter=userName eq "user{i}@example.com"`, random `i`            |
//! | `email-typed-eq`     | `filter=emails[type eq "work"].value eq "user{i}@example.com"`    |
//! | `username-eq-plain`  | `userName eq` of random users without custom attributes           |
//! | `username-eq-custom` | `userName eq` of random users with the 20 custom attributes       |
//! |                      | (the two alternate in rounds; the note gives custom / plain)      |
//! | `ext-indexed-eq`     | `filter=urn:…:bench:2.0:User:badgeNumber eq "B{i}"` (declared)    |
//! | `ext-undeclared-eq`  | `filter=urn:…:acme:2.0:User:costCode eq "C{i}"`, 4 connections    |
//! | `co-search`          | `filter=userName co "{3-4 digits}"&count=50`, on 4 connections    |
//! | `export-index`       | every user, `count=1000` pages by `startIndex`, on one connection |
//! | `export-cursor`      | every user, `count=1000` pages by RFC 9865 `cursor`/`nextCursor`  |
//! | `export-linearity`   | both exports again on a database a tenth the size: time ratio     |
//!
//! and the write workloads of `writes.rs` (PATCH of a huge and of a tiny group, PATCH of
//! distinct users, durable creates, 1,000 creates by one `/Bulk` request against 1,000
//! POSTs), after the reads on the same server, then the webhook
//! workloads of `webhooks.rs` (events delivered per second to a receiver in this process,
//! commit-to-receipt latency, write throughput with three endpoints against none), then the
//! console workloads of `console.rs` (`console-search`: the Users search as an admin types;
//! `console-export`: every user as CSV, streamed).
//!
//! Each workload prints one line as it finishes (with the server's peak RSS so far, `VmHWM`)
//! and a row of the final Markdown table: requests, throughput, p50/p99 latency and the ratio
//! of its throughput to `healthz` in the same run. For the exports a request is a page, and
//! the notes give the total time and users/s; `export-linearity` divides the export times by
//! those on the small database (median of 3 runs there). Every answer is checked (status 200,
//! `totalResults`, the user found, each exported user seen exactly once): any error is
//! reported and makes the run exit non-zero. A workload the server does not support yet
//! (`400 invalidFilter` for `co` or an undeclared extension attribute, no cursor paging) is
//! reported as unsupported, not as an error. `username-eq-custom` against `username-eq-plain`
//! is the cost of custom data on a lookup (the issue's bound: at most 1.2×): the note gives
//! the ratios of p50 latency and of throughput.
//!
//! Run it (the bench profile is an optimised build of both the server and this client):
//!
//! ```sh
//! cargo bench --bench load
//! cargo bench --bench load -- --users 20000 --seconds 3
//! cargo bench --bench load -- --only healthz,username-eq --db /tmp/scimd-load.db
//! ```
//!
//! Options: `--users N` (100000), `--groups N` (200), `--connections N` (16), `--seconds N`
//! per load workload (10), `--only a,b,…` to run a subset, `--db PATH` to keep the seeded
//! database at PATH and reuse it on the next run (seeding is skipped when it already holds
//! `--users` users and the benchmark's declared schema). Client and server share the machine: on a small box the load generator
//! takes CPU from the server, which the `healthz` ratio partly cancels out.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use scimd::scim::registry::Registry;
use scimd::scim::resource::ResourceKind;
use scimd::scim::{time, validate};
use scimd::service::audit::Actor;
use scimd::service::{schemas, tokens};
use scimd::store::{self, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;

#[path = "load/console.rs"]
mod console;
#[path = "load/webhooks.rs"]
mod webhooks;
#[path = "load/writes.rs"]
mod writes;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The extension the benchmark declares before seeding.
const BENCH_URN: &str = "urn:ietf:params:scim:schemas:extension:bench:2.0:User";
/// The extension the seeded users carry undeclared.
const ACME_URN: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

/// Users per seeding transaction.
const SEED_BATCH: usize = 5000;
/// Members per seeded group.
const MEMBERS_PER_GROUP: usize = 500;
/// Page size of the exports (the server's maximum).
const EXPORT_PAGE: usize = 1000;
/// Page size of `co-search`.
const CO_PAGE: u64 = 50;
/// Timed runs of each export on the small database of `export-linearity`.
const SMALL_EXPORT_RUNS: usize = 3;
/// Connections of `co-search` and `ext-undeclared-eq` (at most `--connections`).
const CO_CONNECTIONS: usize = 4;
/// Alternating rounds `username-eq-plain` and `username-eq-custom` split their time into, so
/// a drift in the machine's speed (CPU steal) weighs on both alike.
const PAIR_ROUNDS: u32 = 5;
/// Name of the bearer token the benchmark creates (an older one of that name is revoked).
const TOKEN_NAME: &str = "bench";
/// How long the server may take to answer its first `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Error messages kept per workload (all errors are counted).
const ERROR_SAMPLES: usize = 5;

const USAGE: &str = "usage: cargo bench --bench load -- [--users N] [--groups N] \
[--connections N] [--seconds N] [--only workload,…] [--db PATH]
workloads: healthz, username-eq, email-typed-eq, username-eq-plain, username-eq-custom, \
ext-indexed-eq, ext-undeclared-eq, co-search, export-index, export-cursor, export-linearity, patch-group-big, patch-group-1, patch-users, create-users, bulk-creates, \
webhook-delivery, writes-0-endpoints, writes-3-endpoints, console-search, console-export";

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    Healthz,
    UserNameEq,
    EmailTypedEq,
    UserNameEqPlain,
    UserNameEqCustom,
    ExtIndexedEq,
    ExtUndeclaredEq,
    CoSearch,
    ExportIndex,
    ExportCursor,
    ExportLinearity,
    PatchGroupBig,
    PatchGroupSmall,
    PatchUsers,
    CreateUsers,
    BulkCreates,
    WebhookDelivery,
    Writes0Endpoints,
    Writes3Endpoints,
    ConsoleSearch,
    ConsoleExport,
}

impl Workload {
    const ALL: [Workload; 21] = [
        Workload::Healthz,
        Workload::UserNameEq,
        Workload::EmailTypedEq,
        Workload::UserNameEqPlain,
        Workload::UserNameEqCustom,
        Workload::ExtIndexedEq,
        Workload::ExtUndeclaredEq,
        Workload::CoSearch,
        Workload::ExportIndex,
        Workload::ExportCursor,
        Workload::ExportLinearity,
        Workload::PatchGroupBig,
        Workload::PatchGroupSmall,
        Workload::PatchUsers,
        Workload::CreateUsers,
        Workload::BulkCreates,
        Workload::WebhookDelivery,
        Workload::Writes0Endpoints,
        Workload::Writes3Endpoints,
        Workload::ConsoleSearch,
        Workload::ConsoleExport,
    ];

    fn writes(self) -> bool {
        matches!(
            self,
            Workload::PatchGroupBig
                | Workload::PatchGroupSmall
                | Workload::PatchUsers
                | Workload::CreateUsers
                | Workload::BulkCreates
        )
    }

    fn webhooks(self) -> bool {
        matches!(
            self,
            Workload::WebhookDelivery | Workload::Writes0Endpoints | Workload::Writes3Endpoints
        )
    }

    fn name(self) -> &'static str {
        match self {
            Workload::Healthz => "healthz",
            Workload::UserNameEq => "username-eq",
            Workload::EmailTypedEq => "email-typed-eq",
            Workload::UserNameEqPlain => "username-eq-plain",
            Workload::UserNameEqCustom => "username-eq-custom",
            Workload::ExtIndexedEq => "ext-indexed-eq",
            Workload::ExtUndeclaredEq => "ext-undeclared-eq",
            Workload::CoSearch => "co-search",
            Workload::ExportIndex => "export-index",
            Workload::ExportCursor => "export-cursor",
            Workload::ExportLinearity => "export-linearity",
            Workload::PatchGroupBig => "patch-group-big",
            Workload::PatchGroupSmall => "patch-group-1",
            Workload::PatchUsers => "patch-users",
            Workload::CreateUsers => "create-users",
            Workload::BulkCreates => "bulk-creates",
            Workload::WebhookDelivery => "webhook-delivery",
            Workload::Writes0Endpoints => "writes-0-endpoints",
            Workload::Writes3Endpoints => "writes-3-endpoints",
            Workload::ConsoleSearch => "console-search",
            Workload::ConsoleExport => "console-export",
        }
    }

    fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name.trim())
    }
}

#[derive(Debug)]
struct Args {
    users: usize,
    groups: usize,
    connections: usize,
    seconds: u64,
    workloads: Vec<Workload>,
    db: Option<PathBuf>,
}

impl Args {
    /// Parses `--name value` or `--name=value` options; `None` for `--help`. `--bench`, which
    /// `cargo bench` passes to every bench binary, is ignored.
    fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let mut args = Args {
            users: 100_000,
            groups: 200,
            connections: 16,
            seconds: 10,
            workloads: Workload::ALL.to_vec(),
            db: None,
        };
        while let Some(arg) = argv.next() {
            let (key, inline) = match arg.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
                _ => (arg, None),
            };
            if key == "--bench" {
                continue;
            }
            if key == "--help" || key == "-h" {
                return Ok(None);
            }
            let value = inline
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{key} needs a value"))?;
            match key.as_str() {
                "--users" => args.users = number(&key, &value)?,
                "--groups" => args.groups = number(&key, &value)?,
                "--connections" => args.connections = number(&key, &value)?,
                "--seconds" => args.seconds = number(&key, &value)?,
                "--db" => args.db = Some(PathBuf::from(value)),
                "--only" => {
                    let wanted = value
                        .split(',')
                        .map(|w| Workload::parse(w).ok_or_else(|| format!("no workload {w:?}")))
                        .collect::<Result<Vec<_>, _>>()?;
                    // Always in the canonical order: `healthz` first, so ratios can use it.
                    args.workloads = Workload::ALL
                        .into_iter()
                        .filter(|w| wanted.contains(w))
                        .collect();
                }
                _ => return Err(format!("unknown option {key}")),
            }
        }
        if args.users < 1000 {
            return Err("--users must be at least 1000".into());
        }
        if args.connections == 0 || args.seconds == 0 {
            return Err("--connections and --seconds must be at least 1".into());
        }
        Ok(Some(args))
    }

    fn runs(&self, w: Workload) -> bool {
        self.workloads.contains(&w)
    }

    fn load_duration(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{key} needs a number, not {value:?}"))
}

// ---------------------------------------------------------------------------------------------
// Seeding, through the library (one transaction per batch instead of one fsync per user)
// ---------------------------------------------------------------------------------------------

const GIVEN_NAMES: [&str; 16] = [
    "Ada", "Alan", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace", "Hedy", "Ivan",
    "Joan", "Ken", "Leslie", "Margaret", "Niklaus", "Radia",
];
const FAMILY_NAMES: [&str; 16] = [
    "Allen",
    "Backus",
    "Cerf",
    "Dijkstra",
    "Engelbart",
    "Floyd",
    "Goldberg",
    "Hamilton",
    "Hopper",
    "Kay",
    "Knuth",
    "Lamport",
    "Liskov",
    "Perlman",
    "Ritchie",
    "Wirth",
];
const TITLES: [&str; 8] = [
    "Engineer",
    "Senior Engineer",
    "Staff Engineer",
    "Engineering Manager",
    "Designer",
    "Product Manager",
    "Analyst",
    "Director",
];
const DEPARTMENTS: [&str; 20] = [
    "Engineering",
    "Platform",
    "Infrastructure",
    "Security",
    "Data",
    "Design",
    "Product",
    "Marketing",
    "Sales",
    "Customer Success",
    "Support",
    "Finance",
    "Legal",
    "People",
    "Recruiting",
    "Operations",
    "Facilities",
    "IT",
    "Research",
    "Executive",
];

fn user_name(i: usize) -> String {
    format!("user{i}@example.com")
}

const SHELLS: [&str; 3] = ["/bin/bash", "/bin/zsh", "/usr/bin/fish"];
const REGIONS: [&str; 4] = ["EMEA", "AMER", "APAC", "LATAM"];

/// Whether seeded user `i` carries the 20 custom attributes (the even-numbered half).
fn has_custom(i: usize) -> bool {
    i.is_multiple_of(2)
}

/// The value of the declared, unique `badgeNumber` of user `i`.
fn badge_number(i: usize) -> String {
    format!("B{i}")
}

/// The value of the undeclared `costCode` of user `i`, unique too.
fn cost_code(i: usize) -> String {
    format!("C{i}")
}

/// The schema declared before seeding (RFC 7643 §7): 10 attributes of most types.
fn bench_schema() -> Value {
    let attr = |name: &str, kind: &str| json!({"name": name, "type": kind});
    json!({
        "id": BENCH_URN,
        "name": "Bench",
        "description": "The load benchmark's declared extension",
        "attributes": [
            {"name": "badgeNumber", "type": "string", "uniqueness": "server"},
            attr("building", "string"),
            attr("floor", "integer"),
            attr("desk", "string"),
            {"name": "loginShell", "type": "string", "canonicalValues": SHELLS},
            attr("uidNumber", "integer"),
            attr("gidNumber", "integer"),
            attr("contractor", "boolean"),
            attr("startDate", "dateTime"),
            {"name": "sshPublicKeys", "type": "string", "multiValued": true, "caseExact": true},
        ],
    })
}

/// The 10 declared (`BENCH_URN`) and 10 undeclared (`ACME_URN`) attributes of user `i`.
fn custom_blocks(i: usize) -> (Value, Value) {
    let declared = json!({
        "badgeNumber": badge_number(i),
        "building": format!("HQ-{}", i % 7),
        "floor": i % 12,
        "desk": format!("{}-{:03}", i % 12, i % 997),
        "loginShell": SHELLS[i % SHELLS.len()],
        "uidNumber": 10_000 + i,
        "gidNumber": 10_000 + i % 200,
        "contractor": i.is_multiple_of(5),
        "startDate": format!("20{:02}-{:02}-{:02}T09:00:00Z", 10 + i % 15, 1 + i % 12, 1 + i % 28),
        "sshPublicKeys": [format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i:0>40} user{i}")],
    });
    let undeclared = json!({
        "costCode": cost_code(i),
        "costCenter": format!("CC-{:04}", i % 500),
        "division": DEPARTMENTS[(i / 3) % DEPARTMENTS.len()],
        "region": REGIONS[i % REGIONS.len()],
        "managerEmail": user_name(i / 10),
        "clearance": i % 4,
        "remote": i.is_multiple_of(3),
        "team": format!("Team {:03}", i % 200),
        "location": format!("Site {}", i % 40),
        "hireYear": 2000 + i % 25,
    });
    (declared, undeclared)
}

/// A User as an identity provider sends it, with the custom attributes if `has_custom(i)`.
fn user_body(i: usize) -> Value {
    let given = GIVEN_NAMES[i % GIVEN_NAMES.len()];
    let family = FAMILY_NAMES[(i / GIVEN_NAMES.len()) % FAMILY_NAMES.len()];
    let mut body = json!({
        "schemas": [USER_URN, ENTERPRISE_URN],
        "userName": user_name(i),
        "externalId": format!("00u{i:08}"),
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "displayName": format!("{given} {family}"),
        "emails": [
            {"value": user_name(i), "type": "work", "primary": true},
            {"value": format!("u{i}@home.example"), "type": "home"},
        ],
        "active": true,
        "title": TITLES[i % TITLES.len()],
        ENTERPRISE_URN: {
            "department": DEPARTMENTS[i % DEPARTMENTS.len()],
            "employeeNumber": i.to_string(),
        },
    });
    if has_custom(i) {
        let (declared, undeclared) = custom_blocks(i);
        body["schemas"] = json!([USER_URN, ENTERPRISE_URN, BENCH_URN, ACME_URN]);
        body[BENCH_URN] = declared;
        body[ACME_URN] = undeclared;
    }
    body
}

fn group_body(g: usize) -> Value {
    json!({
        "schemas": [GROUP_URN],
        "displayName": format!("Team {g:03}"),
        "externalId": format!("00g{g:06}"),
    })
}

/// Makes sure the database at `path` holds `users` seeded users (seeding an empty one), and
/// returns a fresh bearer token for it. The store is closed on return, which checkpoints WAL.
fn prepare_database(path: &Path, users: usize, groups: usize) -> Result<String> {
    let store = Store::open(path)?;
    let (existing, existing_groups) = store.read_sync(|conn| {
        let count = |table: &str| {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
        };
        Ok((count("users")?, count("groups")?))
    })?;
    let existing = usize::try_from(existing)?;
    if existing == 0 {
        let started = Instant::now();
        // Declared first, so the values are stored (and indexed) as a declaration's.
        schemas::declare(
            &store,
            &bench_schema(),
            Some(ResourceKind::User),
            false,
            &Actor::cli(),
        )?;
        seed(&store, users, groups)?;
        // The server's indexer would otherwise take the seeded users into the console's
        // search index while the first workloads run.
        scimd::service::people::index_everyone(&store)?;
        println!(
            "seeded {users} users and {groups} groups ({} memberships) in {:.1} s",
            groups * MEMBERS_PER_GROUP.min(users),
            started.elapsed().as_secs_f64()
        );
    } else if existing == users && !store.declared()?.iter().any(|d| d.schema.id == BENCH_URN) {
        return Err(format!(
            "{} was seeded without the custom attributes (an older benchmark): use another --db",
            path.display()
        )
        .into());
    } else if existing == users {
        println!(
            "reusing {}: {existing} users, {existing_groups} groups",
            path.display()
        );
    } else {
        return Err(format!(
            "{} holds {existing} users, not {users}: pass --users {existing} or another --db",
            path.display()
        )
        .into());
    }
    // The token name is unique among live tokens; a rerun on the same database replaces it.
    let _ = tokens::revoke(&store, TOKEN_NAME);
    Ok(tokens::create(&store, TOKEN_NAME)?)
}

fn seed(store: &Store, users: usize, groups: usize) -> Result<()> {
    let now = time::now();
    // Holds the declaration made before seeding.
    let registry = store.registry();
    let mut ids = Vec::with_capacity(users);
    for first in (0..users).step_by(SEED_BATCH) {
        let batch = (first..users.min(first + SEED_BATCH))
            .map(|i| {
                let mut doc = validate::user(user_body(i), &registry)?.doc;
                doc.insert("active".into(), Value::Bool(true));
                Ok((uuid::Uuid::new_v4().to_string(), doc))
            })
            .collect::<scimd::error::Result<Vec<_>>>()?;
        ids.extend(batch.iter().map(|(id, _)| id.clone()));
        store.write_sync(|tx| {
            for (id, doc) in batch {
                store::users::insert(tx, &id, doc, &now)?;
            }
            Ok(())
        })?;
    }
    let per_group = MEMBERS_PER_GROUP.min(users);
    store.write_sync(|tx| {
        for g in 0..groups {
            let doc = validate::group(group_body(g), &Registry::builtin())?.doc;
            let members: Vec<String> = (0..per_group)
                .map(|k| ids[(g * per_group + k) % users].clone())
                .collect();
            let id = uuid::Uuid::new_v4().to_string();
            let (skipped, _) = store::groups::insert(tx, &id, doc, &members, &now)?;
            if !skipped.is_empty() {
                return Err(scimd::error::Error::internal(format!(
                    "group {g}: {} member ids matched no user",
                    skipped.len()
                )));
            }
        }
        Ok(())
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

/// A running `scimd serve`; dropping it stops the process (SIGTERM, then SIGKILL), also when
/// the benchmark panics.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    /// Starts the server on a free loopback port and waits until `/healthz` answers 200.
    async fn start(db: &Path) -> Result<ServerProcess> {
        // With `--log warn` the server does not log its address, so pick the port here.
        let addr = StdTcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = Command::new(env!("CARGO_BIN_EXE_scimd"))
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--db")
            .arg(db)
            .args(["--log", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let mut server = ServerProcess { child, addr };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("scimd exited during start-up: {status}").into());
            }
            if let Ok(mut client) = Client::connect(self.addr, None).await
                && let Ok((StatusCode::OK, _)) = client.get("/healthz").await
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(
                    format!("scimd did not answer /healthz within {START_TIMEOUT:?}").into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn peak_rss_kb(&self) -> Option<u64> {
        self.memory_kb().map(|(peak, _)| peak)
    }

    /// CPU time (user + system) the server has used so far, in clock ticks (Linux).
    fn cpu_ticks(&self) -> Option<u64> {
        cpu_ticks(&format!("/proc/{}/stat", self.child.id()))
    }

    /// Peak and current resident set size, in kB, from `/proc/<pid>/status` (Linux).
    fn memory_kb(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        };
        Some((field("VmHWM:")?, field("VmRSS:")?))
    }
}

/// utime + stime of a `/proc/…/stat` file (fields 14 and 15; the name before them may hold
/// spaces, so fields are counted after its closing parenthesis).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(stat).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM first: the server drains and closes the database cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client: one keep-alive HTTP/1.1 connection
// ---------------------------------------------------------------------------------------------

/// Where to send requests, and the bearer token for `/scim/v2`.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    token: Arc<str>,
}

struct Client {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    authorization: Option<String>,
}

impl Client {
    async fn connect(addr: SocketAddr, token: Option<&str>) -> Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Client {
            sender,
            host: addr.to_string(),
            authorization: token.map(|t| format!("Bearer {t}")),
        })
    }

    /// `GET path`: the status and the whole body.
    async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes)> {
        self.send(Method::GET, path, None).await
    }

    /// Any request, with an optional JSON body: the status and the whole response body.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let headers: &[(&str, &str)] = match body {
            Some(_) => &[("content-type", "application/scim+json")],
            None => &[],
        };
        let (status, _, body) = self.send_with(method, path, headers, body).await?;
        Ok((status, body))
    }

    /// `send` with these headers: the status, the response headers and the whole body.
    async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes)> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host);
        if let Some(auth) = &self.authorization {
            req = req.header(AUTHORIZATION, auth);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = self
            .sender
            .send_request(req.body(Full::new(body.unwrap_or_default()))?)
            .await?;
        let status = resp.status();
        let head = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, head, body))
    }
}

/// `/scim/v2/Users?<pairs, URL-encoded>`.
fn users_path(pairs: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("/scim/v2/Users?{query}")
}

/// The parts of a `ListResponse` the checks read (everything else is skipped unparsed).
#[derive(Deserialize)]
struct ListPage {
    #[serde(rename = "totalResults")]
    total_results: Option<u64>,
    #[serde(rename = "Resources", default)]
    resources: Vec<UserSummary>,
    #[serde(rename = "nextCursor")]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct UserSummary {
    id: String,
    #[serde(rename = "userName")]
    user_name: Option<String>,
}

#[derive(Deserialize)]
struct ScimError {
    #[serde(rename = "scimType")]
    scim_type: Option<String>,
    detail: Option<String>,
}

#[derive(Deserialize)]
struct Health {
    status: String,
}

fn text(body: &Bytes) -> String {
    let s = String::from_utf8_lossy(body);
    s.chars().take(300).collect()
}

/// Whether a non-200 answer means "this version does not do that yet" (400, or 501).
fn unsupported(status: StatusCode, body: &Bytes) -> Option<String> {
    if status != StatusCode::BAD_REQUEST && status != StatusCode::NOT_IMPLEMENTED {
        return None;
    }
    let err: ScimError = serde_json::from_slice(body).ok()?;
    Some(format!(
        "{} {}: {}",
        status.as_u16(),
        err.scim_type.unwrap_or_default(),
        err.detail.unwrap_or_default()
    ))
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// Request latencies, sorted.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn new(mut all: Vec<Duration>) -> Latencies {
        all.sort_unstable();
        Latencies(all)
    }

    /// The nearest-rank percentile `p` (0–100); zero when there are no samples.
    fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Errors of one workload: all counted, the first few kept to show.
#[derive(Default)]
struct Errors {
    count: u64,
    samples: Vec<String>,
}

impl Errors {
    fn push(&mut self, message: String) {
        self.count += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(message);
        }
    }

    fn merge(&mut self, other: Errors) {
        self.count += other.count;
        for s in other.samples {
            if self.samples.len() < ERROR_SAMPLES {
                self.samples.push(s);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Load workloads: N connections sending back-to-back requests for a fixed time
// ---------------------------------------------------------------------------------------------

/// What a load request's answer must be.
#[derive(Clone, Copy)]
enum Expect {
    /// 200 `{"status": "ok", …}`.
    Healthy,
    /// This status, whatever the body.
    Status(StatusCode),
    /// 200 ListResponse with `totalResults` = `total`, a page of `min(total, page)` users and,
    /// if `user` is given, that user (by index) as the first one.
    List {
        total: u64,
        page: u64,
        user: Option<usize>,
    },
}

/// One request of a load workload.
struct Call {
    method: Method,
    path: String,
    body: Option<Bytes>,
    expect: Expect,
}

impl Call {
    fn get(path: String, expect: Expect) -> Call {
        Call {
            method: Method::GET,
            path,
            body: None,
            expect,
        }
    }
}

/// Which request this is: of connection `conn` (from 0), its `n`th (from 0). Write workloads
/// use it to give each connection its own resources.
#[derive(Clone, Copy)]
struct Slot {
    conn: usize,
    n: u64,
}

fn check(expect: Expect, status: StatusCode, body: &Bytes) -> Result<(), String> {
    if let Expect::Status(want) = expect {
        if status != want {
            return Err(format!("status {status}, expected {want}: {}", text(body)));
        }
        return Ok(());
    }
    if status != StatusCode::OK {
        return Err(format!("status {status}: {}", text(body)));
    }
    match expect {
        Expect::Status(_) => {}
        Expect::Healthy => {
            let health: Health = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            if health.status != "ok" {
                return Err(format!("unhealthy: {}", text(body)));
            }
        }
        Expect::List { total, page, user } => {
            let list: ListPage = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            if list.total_results != Some(total) {
                return Err(format!(
                    "totalResults {:?}, expected {total}",
                    list.total_results
                ));
            }
            let want = total.min(page) as usize;
            if list.resources.len() != want {
                return Err(format!(
                    "{} resources, expected {want}",
                    list.resources.len()
                ));
            }
            if let Some(i) = user {
                let got = list.resources.first().and_then(|r| r.user_name.as_deref());
                if got != Some(user_name(i).as_str()) {
                    return Err(format!("found {got:?}, expected {}", user_name(i)));
                }
            }
        }
    }
    Ok(())
}

/// A small, fast PRNG (SplitMix64); each connection has its own.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

type CallFn = Arc<dyn Fn(&mut Rng, Slot) -> Call + Send + Sync>;

struct LoadResult {
    connections: usize,
    elapsed: Duration,
    latencies: Latencies,
    errors: Errors,
}

impl LoadResult {
    /// `self` and `other` as one run: their requests, times and errors added up.
    fn merge(self, other: LoadResult) -> LoadResult {
        let mut all = self.latencies.0;
        all.extend(other.latencies.0);
        let mut errors = self.errors;
        errors.merge(other.errors);
        LoadResult {
            connections: self.connections,
            elapsed: self.elapsed + other.elapsed,
            latencies: Latencies::new(all),
            errors,
        }
    }

    fn requests(&self) -> usize {
        self.latencies.0.len()
    }

    fn throughput(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `connections` tasks, each on its own keep-alive connection, sending `next_call()`
/// back to back for `duration`.
async fn drive(
    target: &Target,
    authenticate: bool,
    connections: usize,
    duration: Duration,
    next_call: CallFn,
) -> Result<LoadResult> {
    let token = authenticate.then_some(&*target.token);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(Client::connect(target.addr, token).await?);
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(n, client)| {
            let next_call = next_call.clone();
            let target = target.clone();
            let rng = Rng::new(seed ^ ((n as u64 + 1) << 40));
            tokio::spawn(connection_loop(
                n,
                client,
                target,
                authenticate,
                deadline,
                rng,
                next_call,
            ))
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = Errors::default();
    for task in tasks {
        let (latencies, task_errors) = task.await?;
        all.extend(latencies);
        errors.merge(task_errors);
    }
    Ok(LoadResult {
        connections,
        elapsed: started.elapsed(),
        latencies: Latencies::new(all),
        errors,
    })
}

async fn connection_loop(
    conn: usize,
    mut client: Client,
    target: Target,
    authenticate: bool,
    deadline: Instant,
    mut rng: Rng,
    next_call: CallFn,
) -> (Vec<Duration>, Errors) {
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = Errors::default();
    let mut n = 0;
    while Instant::now() < deadline {
        let call = next_call(&mut rng, Slot { conn, n });
        n += 1;
        let sent = Instant::now();
        match client.send(call.method, &call.path, call.body).await {
            Ok((status, body)) => {
                latencies.push(sent.elapsed());
                if let Err(e) = check(call.expect, status, &body) {
                    errors.push(format!("{}: {e}", call.path));
                }
            }
            Err(e) => {
                errors.push(format!("{}: transport error: {e}", call.path));
                let token = authenticate.then_some(&*target.token);
                match Client::connect(target.addr, token).await {
                    Ok(fresh) => client = fresh,
                    Err(e) => {
                        errors.push(format!("cannot reconnect: {e}"));
                        break;
                    }
                }
            }
        }
    }
    (latencies, errors)
}

fn healthz_calls() -> CallFn {
    Arc::new(|_, _| Call::get("/healthz".into(), Expect::Healthy))
}

/// The filter an exact-lookup workload finds user `i` with, as IdPs send it.
fn lookup_filter(workload: Workload, i: usize) -> String {
    match workload {
        Workload::EmailTypedEq => {
            format!("emails[type eq \"work\"].value eq \"{}\"", user_name(i))
        }
        Workload::ExtIndexedEq => format!("{BENCH_URN}:badgeNumber eq \"{}\"", badge_number(i)),
        Workload::ExtUndeclaredEq => format!("{ACME_URN}:costCode eq \"{}\"", cost_code(i)),
        _ => format!("userName eq \"{}\"", user_name(i)),
    }
}

/// A random existing user of the population `workload` looks up: with the custom attributes
/// (even numbers), without them (odd numbers), or any.
fn lookup_user(rng: &mut Rng, users: usize, workload: Workload) -> usize {
    match workload {
        Workload::UserNameEqCustom | Workload::ExtIndexedEq | Workload::ExtUndeclaredEq => {
            2 * rng.below(users.div_ceil(2))
        }
        Workload::UserNameEqPlain => 2 * rng.below(users / 2) + 1,
        _ => rng.below(users),
    }
}

/// Exact lookups (`lookup_filter`) of random existing users, each expected to find that user.
fn lookup_calls(users: usize, workload: Workload) -> CallFn {
    Arc::new(move |rng, _| {
        let i = lookup_user(rng, users, workload);
        Call::get(
            users_path(&[("filter", &lookup_filter(workload, i))]),
            Expect::List {
                total: 1,
                page: 1,
                user: Some(i),
            },
        )
    })
}

/// How many of `user0…user{users-1}` contain each 3- and 4-digit string: the expected
/// `totalResults` of `userName co "<digits>"` (the rest of a userName has no digits).
fn digit_substring_counts(users: usize) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    let mut seen = HashSet::new();
    for i in 0..users {
        let digits = i.to_string();
        seen.clear();
        for len in 3..=4 {
            for window in digits.as_bytes().windows(len) {
                let piece = String::from_utf8_lossy(window).into_owned();
                if seen.insert(piece.clone()) {
                    *counts.entry(piece).or_insert(0) += 1;
                }
            }
        }
    }
    counts
}

/// `userName co` searches for 3- or 4-digit pieces of random existing users' numbers.
fn co_calls(users: usize) -> CallFn {
    let counts = Arc::new(digit_substring_counts(users));
    Arc::new(move |rng, _| {
        let needle = loop {
            let digits = rng.below(users).to_string();
            let len = 3 + rng.below(2);
            if digits.len() >= len {
                let start = rng.below(digits.len() - len + 1);
                break digits[start..start + len].to_string();
            }
        };
        let total = counts.get(&needle).copied().unwrap_or(0);
        let count = CO_PAGE.to_string();
        Call::get(
            users_path(&[
                ("filter", &format!("userName co \"{needle}\"")),
                ("count", &count),
            ]),
            Expect::List {
                total,
                page: CO_PAGE,
                user: None,
            },
        )
    })
}

/// Sends `filter` once to find out whether the server supports it yet.
async fn probe(target: &Target, filter: &str) -> Result<Option<String>> {
    let mut client = Client::connect(target.addr, Some(&target.token)).await?;
    let (status, body) = client
        .get(&users_path(&[("filter", filter), ("count", "1")]))
        .await?;
    if status == StatusCode::OK {
        return Ok(None);
    }
    match unsupported(status, &body) {
        Some(why) => Ok(Some(why)),
        None => Err(format!("probe of {filter}: status {status}: {}", text(&body)).into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Exports: every user, page by page, on one connection
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Paging {
    StartIndex,
    Cursor,
}

impl Paging {
    fn name(self) -> &'static str {
        match self {
            Paging::StartIndex => "startIndex",
            Paging::Cursor => "cursor",
        }
    }
}

struct ExportResult {
    users: usize,
    elapsed: Duration,
    /// Time to the last byte of each page, in page order.
    pages: Vec<Duration>,
    errors: Errors,
}

impl ExportResult {
    fn users_per_second(&self) -> f64 {
        self.users as f64 / self.elapsed.as_secs_f64()
    }

    fn summary(&self) -> String {
        let first = self.pages.first().copied().unwrap_or_default();
        let last = self.pages.last().copied().unwrap_or_default();
        format!(
            "{} users in {:.2} s = {:.0} users/s; first page {:.1} ms, last page {:.1} ms",
            self.users,
            self.elapsed.as_secs_f64(),
            self.users_per_second(),
            ms(first),
            ms(last)
        )
    }
}

enum Outcome<T> {
    Done(T),
    Unsupported(String),
}

/// Exports every user with `count=1000` pages; checks each user is seen exactly once and that
/// `totalResults` is `expected` throughout.
async fn export(target: &Target, paging: Paging, expected: usize) -> Result<Outcome<ExportResult>> {
    let mut client = Client::connect(target.addr, Some(&target.token)).await?;
    let count = EXPORT_PAGE.to_string();
    let max_pages = expected / EXPORT_PAGE + 2;
    let mut seen: HashSet<String> = HashSet::with_capacity(expected);
    let mut errors = Errors::default();
    let mut pages = Vec::with_capacity(max_pages);
    let mut start_index = 1usize;
    let mut cursor = Some(String::new());
    let started = Instant::now();
    loop {
        let path = match paging {
            Paging::StartIndex => {
                let start = start_index.to_string();
                users_path(&[("count", &count), ("startIndex", &start)])
            }
            Paging::Cursor => users_path(&[
                ("count", &count),
                ("cursor", cursor.as_deref().unwrap_or_default()),
            ]),
        };
        let sent = Instant::now();
        let (status, body) = client.get(&path).await?;
        pages.push(sent.elapsed());
        if status != StatusCode::OK {
            if pages.len() == 1
                && let Some(why) = unsupported(status, &body)
            {
                return Ok(Outcome::Unsupported(why));
            }
            errors.push(format!("{path}: status {status}: {}", text(&body)));
            break;
        }
        let page: ListPage = match serde_json::from_slice(&body) {
            Ok(page) => page,
            Err(e) => {
                errors.push(format!("{path}: not a ListResponse: {e}"));
                break;
            }
        };
        match page.total_results {
            Some(t) if t as usize == expected => {}
            // RFC 9865 lets cursor pages leave totalResults out.
            None if paging == Paging::Cursor => {}
            other => errors.push(format!(
                "{path}: totalResults {other:?}, expected {expected}"
            )),
        }
        let n = page.resources.len();
        for user in page.resources {
            if !seen.insert(user.id.clone()) {
                errors.push(format!("{path}: user {} seen twice", user.id));
            }
        }
        let more = match paging {
            Paging::StartIndex => {
                start_index += n;
                n > 0 && start_index <= expected
            }
            Paging::Cursor => {
                if pages.len() == 1 && page.next_cursor.is_none() && n < expected {
                    return Ok(Outcome::Unsupported(format!(
                        "200 without nextCursor after {n} of {expected} users (cursor ignored)"
                    )));
                }
                cursor = page.next_cursor.filter(|c| !c.is_empty());
                cursor.is_some()
            }
        };
        if !more {
            break;
        }
        if pages.len() >= max_pages {
            errors.push(format!("still paging after {max_pages} pages: stopped"));
            break;
        }
    }
    let elapsed = started.elapsed();
    if seen.len() != expected {
        errors.push(format!(
            "saw {} distinct users, expected {expected}",
            seen.len()
        ));
    }
    Ok(Outcome::Done(ExportResult {
        users: seen.len(),
        elapsed,
        pages,
        errors,
    }))
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/// One row of the final table.
struct Row {
    workload: String,
    requests: Option<usize>,
    throughput: Option<f64>,
    p50: Option<Duration>,
    p99: Option<Duration>,
    ratio: Option<f64>,
    note: String,
    /// The server's peak RSS (kB) once the workload is done; shown on the line, not in the table.
    peak_rss_kb: Option<u64>,
}

impl Row {
    fn empty(workload: &str, note: String) -> Row {
        Row {
            workload: workload.into(),
            requests: None,
            throughput: None,
            p50: None,
            p99: None,
            ratio: None,
            note,
            peak_rss_kb: None,
        }
    }

    fn with_peak_rss(mut self, kb: Option<u64>) -> Row {
        self.peak_rss_kb = kb;
        self
    }

    fn load(workload: Workload, r: &LoadResult, healthz: Option<f64>) -> Row {
        Row {
            workload: workload.name().into(),
            requests: Some(r.requests()),
            throughput: Some(r.throughput()),
            p50: Some(r.latencies.percentile(50.0)),
            p99: Some(r.latencies.percentile(99.0)),
            ratio: healthz.map(|h| r.throughput() / h),
            note: match r.connections {
                1 => "1 connection".into(),
                n => format!("{n} connections"),
            },
            peak_rss_kb: None,
        }
    }

    fn export(workload: Workload, r: &ExportResult) -> Row {
        let latencies = Latencies::new(r.pages.clone());
        Row {
            workload: workload.name().into(),
            requests: Some(r.pages.len()),
            throughput: Some(r.pages.len() as f64 / r.elapsed.as_secs_f64()),
            p50: Some(latencies.percentile(50.0)),
            p99: Some(latencies.percentile(99.0)),
            ratio: None,
            note: r.summary(),
            peak_rss_kb: None,
        }
    }

    fn line(&self) -> String {
        let mut line = format!("{:<18}", self.workload);
        if let (Some(n), Some(t), Some(p50), Some(p99)) =
            (self.requests, self.throughput, self.p50, self.p99)
        {
            line += &format!(
                " {n:>8} req {t:>9.1} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms",
                ms(p50),
                ms(p99)
            );
        }
        if let Some(r) = self.ratio {
            line += &format!("  ratio {r:.2}");
        }
        if !self.note.is_empty() {
            line += &format!("  ({})", self.note);
        }
        if let Some(kb) = self.peak_rss_kb {
            line += &format!("  [server peak RSS {:.0} MB]", kb as f64 / 1024.0);
        }
        line
    }
}

fn print_table(rows: &[Row]) {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    println!();
    println!("| workload | requests | req/s | p50 ms | p99 ms | ratio to healthz | notes |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.workload,
            opt(r.requests.map(|n| n.to_string())),
            opt(r.throughput.map(|t| format!("{t:.1}"))),
            opt(r.p50.map(|d| format!("{:.2}", ms(d)))),
            opt(r.p99.map(|d| format!("{:.2}", ms(d)))),
            opt(r.ratio.map(|x| format!("{x:.2}"))),
            r.note
        );
    }
}

/// Collects rows and errors as workloads finish, printing each row at once.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    errors: Vec<(String, Errors)>,
}

impl Report {
    fn add(&mut self, row: Row, errors: Errors) {
        println!("{}", row.line());
        if errors.count > 0 {
            println!("  {} errors, e.g.:", errors.count);
            for e in &errors.samples {
                println!("    {e}");
            }
            self.errors.push((row.workload.clone(), errors));
        }
        self.rows.push(row);
    }

    fn add_export(
        &mut self,
        workload: Workload,
        outcome: Outcome<ExportResult>,
        peak_rss_kb: Option<u64>,
    ) -> Option<Duration> {
        match outcome {
            Outcome::Done(r) => {
                let elapsed = r.elapsed;
                let ok = r.errors.count == 0;
                let row = Row::export(workload, &r).with_peak_rss(peak_rss_kb);
                self.add(row, r.errors);
                ok.then_some(elapsed)
            }
            Outcome::Unsupported(why) => {
                self.add(
                    Row::empty(workload.name(), format!("unsupported: {why}")),
                    Errors::default(),
                );
                None
            }
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.iter().map(|(_, e)| e.count).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("load: {errors} requests failed their checks");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the selected workloads; returns the number of failed checks.
async fn run(args: &Args) -> Result<u64> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("scimd load benchmark");
    println!(
        "machine: {cores} cores (client and server share them); server: {}",
        env!("CARGO_BIN_EXE_scimd")
    );
    println!(
        "parameters: users={} groups={} members/group={} connections={} seconds={} workloads={}",
        args.users,
        args.groups,
        MEMBERS_PER_GROUP.min(args.users),
        args.connections,
        args.seconds,
        args.workloads
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(",")
    );

    // Declared before the servers, so they are dropped (and stopped) first.
    let temp = tempfile::TempDir::new()?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| temp.path().join("load.db"));
    let token = prepare_database(&db, args.users, args.groups)?;
    if let Ok(meta) = std::fs::metadata(&db) {
        println!(
            "database: {} ({:.0} MB)",
            db.display(),
            meta.len() as f64 / 1e6
        );
    }
    println!();

    let mut report = Report::default();
    let server = ServerProcess::start(&db).await?;
    let target = Target {
        addr: server.addr,
        token: token.into(),
    };
    // A short unrecorded warm-up: the server's threads and connections come up.
    drive(
        &target,
        false,
        args.connections,
        Duration::from_secs(1),
        healthz_calls(),
    )
    .await?;

    let load = args.load_duration();
    let mut healthz = None;
    if args.runs(Workload::Healthz) {
        let r = drive(&target, false, args.connections, load, healthz_calls()).await?;
        healthz = Some(r.throughput());
        let row = Row::load(Workload::Healthz, &r, healthz).with_peak_rss(server.peak_rss_kb());
        report.add(row, r.errors);
    }
    for workload in [Workload::UserNameEq, Workload::EmailTypedEq] {
        if args.runs(workload) {
            warm_up(&target, args, workload, Duration::from_secs(2)).await?;
            let calls = lookup_calls(args.users, workload);
            let r = drive(&target, true, args.connections, load, calls).await?;
            let row = Row::load(workload, &r, healthz).with_peak_rss(server.peak_rss_kb());
            report.add(row, r.errors);
        }
    }
    custom_data_cost(&target, args, healthz, &server, &mut report).await?;
    if args.runs(Workload::ExtIndexedEq) {
        let workload = Workload::ExtIndexedEq;
        warm_up(&target, args, workload, Duration::from_secs(2)).await?;
        let calls = lookup_calls(args.users, workload);
        let r = drive(&target, true, args.connections, load, calls).await?;
        let row = Row::load(workload, &r, healthz).with_peak_rss(server.peak_rss_kb());
        report.add(row, r.errors);
    }
    if args.runs(Workload::ExtUndeclaredEq) {
        let workload = Workload::ExtUndeclaredEq;
        match probe(&target, &lookup_filter(workload, 0)).await? {
            Some(why) => report.add(
                Row::empty(workload.name(), format!("unsupported: {why}")),
                Errors::default(),
            ),
            None => {
                // A scan: few connections, like `co-search`, and no warm-up (each request
                // reads the whole table anyway).
                let connections = CO_CONNECTIONS.min(args.connections);
                let calls = lookup_calls(args.users, workload);
                let r = drive(&target, true, connections, load, calls).await?;
                let row = Row::load(workload, &r, healthz).with_peak_rss(server.peak_rss_kb());
                report.add(row, r.errors);
            }
        }
    }
    if args.runs(Workload::CoSearch) {
        match probe(&target, "userName co \"123\"").await? {
            Some(why) => report.add(
                Row::empty("co-search", format!("unsupported: {why}")),
                Errors::default(),
            ),
            None => {
                let connections = CO_CONNECTIONS.min(args.connections);
                let calls = co_calls(args.users);
                let r = drive(&target, true, connections, load, calls).await?;
                let row =
                    Row::load(Workload::CoSearch, &r, healthz).with_peak_rss(server.peak_rss_kb());
                report.add(row, r.errors);
            }
        }
    }
    // The linearity comparison needs both big exports, selected or not.
    let linearity = args.runs(Workload::ExportLinearity);
    let mut big = [None, None];
    for (slot, workload, paging) in [
        (0, Workload::ExportIndex, Paging::StartIndex),
        (1, Workload::ExportCursor, Paging::Cursor),
    ] {
        if args.runs(workload) || linearity {
            let outcome = export(&target, paging, args.users).await?;
            big[slot] = report.add_export(workload, outcome, server.peak_rss_kb());
        }
    }

    if args.workloads.iter().any(|w| w.writes()) {
        writes::run(args, &db, &target, &server, &mut report).await?;
    }
    if args.workloads.iter().any(|w| w.webhooks()) {
        webhooks::run(args, &db, &target, &server, &mut report).await?;
    }
    if args.runs(Workload::ConsoleSearch) || args.runs(Workload::ConsoleExport) {
        console::run(args, &db, &target, &server, &mut report).await?;
    }

    let memory = server.memory_kb();
    drop(server);

    if linearity {
        linearity_check(args, big, &mut report).await?;
    }

    print_table(&report.rows);
    println!();
    match memory {
        Some((peak, now)) => println!(
            "server RSS after the workloads on {} users: peak (VmHWM) {:.1} MB, current (VmRSS) {:.1} MB",
            args.users,
            peak as f64 / 1024.0,
            now as f64 / 1024.0
        ),
        None => println!("server RSS: /proc/<pid>/status unreadable"),
    }
    let errors = report.error_count();
    if errors > 0 {
        println!("errors:");
        for (workload, e) in &report.errors {
            println!("  {workload}: {}", e.count);
        }
    }
    Ok(errors)
}

/// Unrecorded lookups, like the healthz warm-up: the first lookups after start-up read the
/// index pages from disk into each connection's cache.
async fn warm_up(target: &Target, args: &Args, workload: Workload, time: Duration) -> Result<()> {
    let calls = lookup_calls(args.users, workload);
    drive(target, true, args.connections, time, calls).await?;
    Ok(())
}

/// `username-eq-plain` and `username-eq-custom`, in `PAIR_ROUNDS` alternating rounds that
/// share `--seconds` each (so both see the same machine); when both run, the custom row's note
/// gives custom / plain for p50 latency and plain / custom for throughput.
async fn custom_data_cost(
    target: &Target,
    args: &Args,
    healthz: Option<f64>,
    server: &ServerProcess,
    report: &mut Report,
) -> Result<()> {
    let pair: Vec<Workload> = [Workload::UserNameEqPlain, Workload::UserNameEqCustom]
        .into_iter()
        .filter(|&w| args.runs(w))
        .collect();
    for &w in &pair {
        warm_up(target, args, w, Duration::from_secs(1)).await?;
    }
    let round = args.load_duration() / PAIR_ROUNDS;
    let mut results: Vec<Option<LoadResult>> = pair.iter().map(|_| None).collect();
    for _ in 0..PAIR_ROUNDS {
        for (&w, slot) in pair.iter().zip(&mut results) {
            let calls = lookup_calls(args.users, w);
            let r = drive(target, true, args.connections, round, calls).await?;
            *slot = Some(match slot.take() {
                Some(before) => before.merge(r),
                None => r,
            });
        }
    }
    let mut plain: Option<(Duration, f64)> = None;
    for (w, r) in pair.into_iter().zip(results) {
        let Some(r) = r else { continue };
        let mut row = Row::load(w, &r, healthz).with_peak_rss(server.peak_rss_kb());
        let p50 = r.latencies.percentile(50.0);
        match (w, plain) {
            (Workload::UserNameEqPlain, _) => plain = Some((p50, r.throughput())),
            (_, Some((plain_p50, plain_throughput))) => {
                row.note += &format!(
                    "; custom/plain: p50 {:.2}×, time per request (1/throughput) {:.2}×",
                    p50.as_secs_f64() / plain_p50.as_secs_f64(),
                    plain_throughput / r.throughput()
                );
            }
            _ => {}
        }
        report.add(row, r.errors);
    }
    Ok(())
}

/// Seeds a database a tenth the size (same shape), exports it both ways on a fresh server and
/// prints time(big) / time(small) per paging method; linear paging gives about 10. A small
/// export takes well under a second, so it is timed as the median of `SMALL_EXPORT_RUNS`.
async fn linearity_check(
    args: &Args,
    big_times: [Option<Duration>; 2],
    report: &mut Report,
) -> Result<()> {
    let users = (args.users / 10).max(1000);
    let groups = (args.groups * users / args.users).max(1);
    println!();
    println!("export-linearity: a second database with {users} users, {groups} groups");
    let temp = tempfile::TempDir::new()?;
    let db = temp.path().join("small.db");
    let token = prepare_database(&db, users, groups)?;
    let server = ServerProcess::start(&db).await?;
    let target = Target {
        addr: server.addr,
        token: token.into(),
    };
    let linear = args.users as f64 / users as f64;
    let mut parts = Vec::new();
    let mut errors = Errors::default();
    for (big, paging) in big_times
        .into_iter()
        .zip([Paging::StartIndex, Paging::Cursor])
    {
        let part = match (big, median_export(&target, paging, users).await?) {
            (Some(big), Outcome::Done(small)) => {
                println!(
                    "  {} on {users} users (median of {SMALL_EXPORT_RUNS}): {}",
                    paging.name(),
                    small.summary()
                );
                errors.merge(small.errors);
                format!(
                    "{}: {:.2} s / {:.2} s = {:.1}×",
                    paging.name(),
                    big.as_secs_f64(),
                    small.elapsed.as_secs_f64(),
                    big.as_secs_f64() / small.elapsed.as_secs_f64()
                )
            }
            (None, _) => format!("{}: no result on {} users", paging.name(), args.users),
            (_, Outcome::Unsupported(why)) => format!("{}: unsupported ({why})", paging.name()),
        };
        parts.push(part);
    }
    drop(server);
    let note = format!(
        "time({}k)/time({}k), linear = {linear:.0}×: {}",
        args.users / 1000,
        users / 1000,
        parts.join("; ")
    );
    report.add(Row::empty(Workload::ExportLinearity.name(), note), errors);
    Ok(())
}

/// `export` run `SMALL_EXPORT_RUNS` times: the run with the median time, carrying the errors
/// of every run.
async fn median_export(
    target: &Target,
    paging: Paging,
    expected: usize,
) -> Result<Outcome<ExportResult>> {
    let mut runs = Vec::with_capacity(SMALL_EXPORT_RUNS);
    for _ in 0..SMALL_EXPORT_RUNS {
        match export(target, paging, expected).await? {
            Outcome::Done(r) => runs.push(r),
            unsupported => return Ok(unsupported),
        }
    }
    runs.sort_by_key(|r| r.elapsed);
    let mut median = runs.swap_remove(runs.len() / 2);
    for r in runs {
        median.errors.merge(r.errors);
    }
    Ok(Outcome::Done(median))
}
