//! Write workloads (issue 4), run after the read workloads on the same server and database:
//!
//! | workload           | what it sends                                                      |
//! |--------------------|--------------------------------------------------------------------|
//! | `patch-group-big`  | PATCH add, then remove, one member of a group of every user        |
//! | `patch-group-1`    | the same on a group of one member; the p50 ratio big/1 is reported |
//! | `patch-users`      | PATCH `replace title` of random users, on `--connections`          |
//! | `create-users`     | durable `POST /Users` of new users, on `--connections`             |
//! | `bulk-creates`     | 1,000 new users by one `POST /Bulk`, against 1,000 `POST /Users`   |
//! |                    | one after the other on one connection, and on `--connections`;     |
//! |                    | `BULK_ROUNDS` rounds of the three, the median of each reported     |
//!
//! The group workloads run on one connection: their latency is the cost of one change, not
//! of a queue of them. Every write is durable (WAL, `synchronous=FULL`: an fsync per commit).
//! The fixture (the two groups and `POOL` extra users the group workloads add and remove) is
//! made through the library before and removed after, with the users `create-users` made, so
//! a reused `--db` stays as seeded.

use super::*;

const BIG_GROUP: &str = "bench-patch-big";
const SMALL_GROUP: &str = "bench-patch-1";
/// Users outside both groups, added and removed by the group workloads.
const POOL: usize = 1000;
const POOL_PREFIX: &str = "bench-pool-";
const CREATE_PREFIX: &str = "bench-create-";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// Users each way of `bulk-creates` makes per round.
const BULK_USERS: usize = 1000;
/// Rounds of `bulk-creates` (each makes `BULK_USERS` users three ways).
const BULK_ROUNDS: usize = 5;

struct Fixture {
    /// Ids of the seeded users, in creation order.
    users: Vec<String>,
    pool: Vec<String>,
    big: String,
    small: String,
}

/// Removes what an earlier (interrupted) run may have left behind.
fn clear(tx: &rusqlite::Transaction) -> scimd::error::Result<()> {
    tx.execute(
        "DELETE FROM groups WHERE display_name IN (?1, ?2)",
        [BIG_GROUP, SMALL_GROUP],
    )?;
    for prefix in [POOL_PREFIX, CREATE_PREFIX] {
        tx.execute(
            "DELETE FROM users WHERE user_name LIKE ?1",
            [format!("{prefix}%")],
        )?;
    }
    Ok(())
}

/// Makes the fixture through the library while the server runs (SQLite serialises the two
/// writers; the server is idle meanwhile).
fn prepare(db: &Path) -> Result<Fixture> {
    let store = Store::open(db)?;
    let users: Vec<String> = store.read_sync(|conn| {
        let mut stmt = conn.prepare("SELECT id FROM users ORDER BY seq")?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    })?;
    let now = time::now();
    let fixture = store.write_sync(|tx| {
        clear(tx)?;
        let mut pool = Vec::with_capacity(POOL);
        for i in 0..POOL {
            let mut doc = validate::user(
                json!({"userName": format!("{POOL_PREFIX}{i}")}),
                &Registry::builtin(),
            )?
            .doc;
            doc.insert("active".into(), Value::Bool(true));
            let id = uuid::Uuid::new_v4().to_string();
            store::users::insert(tx, &id, doc, &now)?;
            pool.push(id);
        }
        let group = |name: &str, members: &[String]| -> scimd::error::Result<String> {
            let doc = validate::group(json!({"displayName": name}), &Registry::builtin())?.doc;
            let id = uuid::Uuid::new_v4().to_string();
            store::groups::insert(tx, &id, doc, members, &now)?;
            Ok(id)
        };
        let big = group(BIG_GROUP, &users)?;
        let small = group(SMALL_GROUP, &users[..1])?;
        Ok(Fixture {
            users: Vec::new(),
            pool,
            big,
            small,
        })
    })?;
    Ok(Fixture { users, ..fixture })
}

pub(super) fn cleanup(db: &Path) -> Result<()> {
    Store::open(db)?.write_sync(clear)?;
    Ok(())
}

pub(super) fn patch_body(ops: Value) -> Option<Bytes> {
    Some(Bytes::from(
        json!({"schemas": [PATCH_OP], "Operations": ops}).to_string(),
    ))
}

/// Each connection adds one of its own pool users, then removes it (Okta's filtered form),
/// then the next: every request is a real change.
fn member_calls(group: &str, pool: Arc<Vec<String>>, connections: usize) -> CallFn {
    let path: Arc<str> = format!("/scim/v2/Groups/{group}").into();
    let per = (pool.len() / connections).max(1);
    Arc::new(move |_, slot| {
        let k = (slot.conn * per + (slot.n / 2) as usize % per) % pool.len();
        let member = &pool[k];
        let ops = if slot.n % 2 == 0 {
            json!([{"op": "add", "path": "members", "value": [{"value": member}]}])
        } else {
            json!([{"op": "remove", "path": format!("members[value eq \"{member}\"]")}])
        };
        Call {
            method: Method::PATCH,
            path: path.to_string(),
            body: patch_body(ops),
            expect: Expect::Status(StatusCode::NO_CONTENT),
        }
    })
}

pub(super) fn user_patch_calls(users: Arc<Vec<String>>) -> CallFn {
    Arc::new(move |rng, slot| {
        let id = &users[rng.below(users.len())];
        Call {
            method: Method::PATCH,
            path: format!("/scim/v2/Users/{id}"),
            body: patch_body(json!([{"op": "replace", "path": "title",
                                     "value": format!("Title {}-{}", slot.conn, slot.n)}])),
            expect: Expect::Status(StatusCode::OK),
        }
    })
}

pub(super) fn create_calls(nonce: u64) -> CallFn {
    Arc::new(move |_, slot| Call {
        method: Method::POST,
        path: "/scim/v2/Users".into(),
        body: Some(Bytes::from(
            json!({
                "schemas": [USER_URN],
                "userName": format!("{CREATE_PREFIX}{nonce}-{}-{}@example.com", slot.conn, slot.n),
                "name": {"givenName": "New", "familyName": "Hire"},
                "emails": [{"value": format!("new{}-{}@example.com", slot.conn, slot.n),
                            "type": "work", "primary": true}],
                "active": true,
            })
            .to_string(),
        )),
        expect: Expect::Status(StatusCode::CREATED),
    })
}

/// The body of one new user of `bulk-creates` (the same shape `create-users` sends).
fn new_user(name: &str) -> Value {
    json!({
        "schemas": [USER_URN],
        "userName": format!("{name}@example.com"),
        "name": {"givenName": "New", "familyName": "Hire"},
        "emails": [{"value": format!("{name}@mail.example.com"), "type": "work", "primary": true}],
        "active": true,
    })
}

/// `BULK_USERS` POSTs on `connections` connections at once (each its share, one after the
/// other): how long until all were answered.
async fn single_creates(
    target: &Target,
    prefix: &str,
    connections: usize,
    errors: &mut Errors,
) -> Result<Duration> {
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(Client::connect(target.addr, Some(&target.token)).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| {
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                let mut errors = Errors::default();
                for i in (c..BULK_USERS).step_by(connections) {
                    let body = Bytes::from(new_user(&format!("{prefix}-{i}")).to_string());
                    match client
                        .send(Method::POST, "/scim/v2/Users", Some(body))
                        .await
                    {
                        Ok((status, body)) => {
                            if let Err(e) =
                                check(Expect::Status(StatusCode::CREATED), status, &body)
                            {
                                errors.push(e);
                            }
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                errors
            })
        })
        .collect();
    for task in tasks {
        errors.merge(task.await?);
    }
    Ok(started.elapsed())
}

/// One `/Bulk` request of `BULK_USERS` POSTs: how long until it was answered; every
/// operation must have answered 201.
async fn bulk_creates(target: &Target, prefix: &str, errors: &mut Errors) -> Result<Duration> {
    let ops: Vec<Value> = (0..BULK_USERS)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                   "data": new_user(&format!("{prefix}-{i}"))})
        })
        .collect();
    let body = Bytes::from(json!({"schemas": [BULK_REQUEST], "Operations": ops}).to_string());
    let mut client = Client::connect(target.addr, Some(&target.token)).await?;
    let started = Instant::now();
    let (status, answer) = client
        .send(Method::POST, "/scim/v2/Bulk", Some(body))
        .await?;
    let took = started.elapsed();
    if status != StatusCode::OK {
        errors.push(format!("status {status}: {}", text(&answer)));
        return Ok(took);
    }
    let response: Value = serde_json::from_slice(&answer)?;
    let ops = response["Operations"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if ops.len() != BULK_USERS {
        errors.push(format!(
            "{} operations answered, expected {BULK_USERS}",
            ops.len()
        ));
    }
    for op in ops.iter().filter(|op| op["status"] != "201") {
        errors.push(format!("bulk operation: {op}"));
    }
    Ok(took)
}

/// `bulk-creates`: `BULK_ROUNDS` rounds of 1,000 users made three ways, alternating so a drift
/// of the machine's speed weighs on all three; one row with the median of each.
async fn bulk_vs_single(
    args: &Args,
    target: &Target,
    server: &ServerProcess,
    report: &mut Report,
) -> Result<()> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut errors = Errors::default();
    let (mut bulk, mut one, mut many) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..BULK_ROUNDS {
        let prefix = |way: &str| format!("{CREATE_PREFIX}{nonce}-{way}{round}");
        bulk.push(bulk_creates(target, &prefix("b"), &mut errors).await?);
        one.push(single_creates(target, &prefix("s"), 1, &mut errors).await?);
        many.push(single_creates(target, &prefix("c"), args.connections, &mut errors).await?);
    }
    let median = |all: Vec<Duration>| Latencies::new(all).percentile(50.0);
    let (bulk, one, many) = (median(bulk), median(one), median(many));
    let rate = |d: Duration| BULK_USERS as f64 / d.as_secs_f64();
    let row = Row::empty(
        Workload::BulkCreates.name(),
        format!(
            "{BULK_USERS} users, median of {BULK_ROUNDS}: one /Bulk request {:.0} ms ({:.0} users/s); \
             {BULK_USERS} POSTs on 1 connection {:.0} ms ({:.0}/s, bulk {:.1}x faster), on {} \
             connections {:.0} ms ({:.0}/s, bulk {:.1}x faster)",
            ms(bulk),
            rate(bulk),
            ms(one),
            rate(one),
            one.as_secs_f64() / bulk.as_secs_f64(),
            args.connections,
            ms(many),
            rate(many),
            many.as_secs_f64() / bulk.as_secs_f64(),
        ),
    );
    report.add(row.with_peak_rss(server.peak_rss_kb()), errors);
    Ok(())
}

/// Runs the selected write workloads against `server`, then removes the fixture.
pub(super) async fn run(
    args: &Args,
    db: &Path,
    target: &Target,
    server: &ServerProcess,
    report: &mut Report,
) -> Result<()> {
    let started = Instant::now();
    let fixture = prepare(db)?;
    println!(
        "write fixture: a group of {} members, a group of 1, {POOL} pool users ({:.1} s)",
        fixture.users.len(),
        started.elapsed().as_secs_f64()
    );
    let load = args.load_duration();
    let pool = Arc::new(fixture.pool);
    let mut p50 = [None, None];
    for (slot, workload, group) in [
        (0, Workload::PatchGroupBig, &fixture.big),
        (1, Workload::PatchGroupSmall, &fixture.small),
    ] {
        if args.runs(workload) {
            let r = drive(target, true, 1, load, member_calls(group, pool.clone(), 1)).await?;
            p50[slot] = Some(r.latencies.percentile(50.0));
            let mut row = Row::load(workload, &r, None).with_peak_rss(server.peak_rss_kb());
            let members = if slot == 0 { fixture.users.len() } else { 1 };
            row.note = format!("1 connection, {members} member(s)");
            report.add(row, r.errors);
        }
    }
    if let [Some(big), Some(small)] = p50 {
        let note = format!(
            "p50 on {} members / p50 on 1 member = {:.2} / {:.2} ms = {:.2}",
            fixture.users.len(),
            ms(big),
            ms(small),
            big.as_secs_f64() / small.as_secs_f64()
        );
        report.add(Row::empty("patch-group-ratio", note), Errors::default());
    }
    if args.runs(Workload::PatchUsers) {
        let users = Arc::new(fixture.users);
        let r = drive(
            target,
            true,
            args.connections,
            load,
            user_patch_calls(users),
        )
        .await?;
        let row = Row::load(Workload::PatchUsers, &r, None).with_peak_rss(server.peak_rss_kb());
        report.add(row, r.errors);
    }
    if args.runs(Workload::CreateUsers) {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let r = drive(target, true, args.connections, load, create_calls(nonce)).await?;
        let row = Row::load(Workload::CreateUsers, &r, None).with_peak_rss(server.peak_rss_kb());
        report.add(row, r.errors);
    }
    if args.runs(Workload::BulkCreates) {
        bulk_vs_single(args, target, server, report).await?;
    }
    cleanup(db)
}
