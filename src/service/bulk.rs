//! `/Bulk` (RFC 7644 §3.7): runs a bulk request's operations in the order `scim::bulk::plan`
//! decides, each through the same service function as its single request (`users::
//! create_write` and the others): the same validation, tolerance, uniqueness, ETag check,
//! audit entry and change events.
//!
//! Each operation is a write of its own, in its own savepoint, so one that fails changes
//! nothing of its own and undoes none of the others (§3.7); POSTs that reference each other
//! run together, in one savepoint (see `scim::bulk`). The writes go to the writer in batches
//! (`Store::write_each`), which share commits. A batch holds the writer for at most about
//! `Pace::writer_time`: once that has passed, the batch's remaining operations do nothing and
//! go back to the head of the next batch, and writes other clients queued meanwhile run
//! first. So a bulk request never keeps the writer for long, whatever its operations cost,
//! and its total work is bounded by `maxOperations` and `maxPayloadSize`.
//!
//! Every POST's id is chosen before anything runs, so references are written in before an
//! operation is validated, and an operation can share a batch with the POST it references:
//! whether that POST succeeded is checked in the writer, just before the operation runs. The
//! number of failures (`failOnErrors`) is counted there too, so nothing runs after the limit.
//! The next batch is validated while the writer runs one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Transaction;
use serde_json::Value;

use super::audit::Actor;
use super::ignored::Noted;
use super::{groups, new_id, users};
use crate::error::{Error, Result};
use crate::scim::bulk::{self, Method, Operation, Plan, Target, Unit, nth};
use crate::scim::resource::{Meta, ResourceKind};
use crate::store::Store;

/// How a bulk request shares the writer.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Most operations validated and handed to the writer at once.
    pub batch: usize,
    /// How long one batch may hold the writer: once this has passed, the rest of the batch
    /// waits for the writer's next turn (an operation that started is finished first).
    pub writer_time: Duration,
}

impl Default for Pace {
    /// 256 creates take about 35 ms of writer time on the 2-core development machine, and
    /// share one commit; 20 ms is a few single writes' worth of waiting for another client,
    /// and keeps a batch of slow operations (PATCHes of large groups) from holding the writer
    /// much longer than one of them does. With batches of 64 instead, 1,000 creates took half
    /// again as long (218 against 134–146 ms).
    fn default() -> Pace {
        Pace {
            batch: 256,
            writer_time: Duration::from_millis(20),
        }
    }
}

/// What an operation did, for its entry in the BulkResponse.
#[derive(Debug)]
pub struct Outcome {
    /// The method and `bulkId` as sent (see `scim::bulk::Entry`).
    pub method: Option<String>,
    pub bulk_id: Option<String>,
    /// The resource type of its path, if the path parsed.
    pub kind: Option<ResourceKind>,
    /// The id of the resource the operation addressed (`bulkId:<id>` when no resource came of
    /// that reference) or created; `None` for a failed POST and an operation without a path.
    pub id: Option<String>,
    pub result: Result<Done>,
}

/// A write that succeeded.
#[derive(Debug)]
pub struct Done {
    /// The status its single request would have answered.
    pub status: u16,
    /// The resource's version (`ETag`) after the write; `None` after a DELETE.
    pub version: Option<String>,
    /// What the write ignored (`None` for a DELETE), for `/metrics` and the audit log.
    pub noted: Option<Noted>,
}

impl Done {
    fn written(status: u16, meta: &Meta, noted: Noted) -> Done {
        Done {
            status,
            version: Some(meta.etag()),
            noted: Some(noted),
        }
    }
}

/// Runs the bulk request `body` for `actor`: the outcome of each operation that ran, in the
/// order of the request (those after the `failOnErrors` limit did not run and are left out).
/// `Err` only for a request that is not one, or too large (nothing ran).
pub async fn run(store: &Store, body: Value, actor: &Actor) -> Result<Vec<Outcome>> {
    run_paced(store, body, actor, Pace::default()).await
}

/// `run` with the writer shared as `pace` says.
pub async fn run_paced(
    store: &Store,
    body: Value,
    actor: &Actor,
    pace: Pace,
) -> Result<Vec<Outcome>> {
    let request = bulk::parse(body, bulk::MAX_OPERATIONS)?;
    let Plan {
        units,
        declared,
        mut failures,
    } = bulk::plan(&request.entries);
    let n = request.entries.len();
    let mut slots = Vec::with_capacity(n);
    let mut ops = Vec::with_capacity(n);
    for entry in request.entries {
        let op = entry.op.ok();
        slots.push(Slot {
            method: entry.method,
            bulk_id: entry.bulk_id,
            kind: op.as_ref().map(|o| o.kind),
            target: op.as_ref().and_then(|o| o.target.clone()),
            // The new resource's id (RFC 7643 §3.1); one whose POST fails is never used.
            created: op
                .as_ref()
                .filter(|o| o.method == Method::Post)
                .map(|_| new_id()),
        });
        ops.push(op);
    }
    let ids: HashMap<String, String> = declared
        .iter()
        .filter_map(|(b, &i)| slots[i].created.clone().map(|id| (b.clone(), id)))
        .collect();
    let progress = Arc::new(Mutex::new(Progress {
        states: vec![State::Waiting; n],
        own: vec![None; n],
        errors: 0,
        limit: request.fail_on_errors,
        writer_time: pace.writer_time,
        batch_started: None,
        deferring: false,
    }));
    let mut results: Vec<Option<Result<Done>>> = (0..n).map(|_| None).collect();
    let mut units = units.into_iter().peekable();
    let mut prepared = Prepared {
        store,
        actor,
        ops,
        failures: &mut failures,
        slots: &slots,
        ids: &ids,
    };
    let mut batch = prepared.units(&next_batch(&mut units, pace.batch)).await;
    while !batch.is_empty() {
        let ops: Vec<Vec<usize>> = batch.iter().map(|p| p.ops.clone()).collect();
        let writes: Vec<UnitWrite> = batch
            .into_iter()
            .map(|p| unit_write(p, progress.clone()))
            .collect();
        {
            let mut p = lock(&progress);
            p.batch_started = None;
            p.deferring = false;
        }
        // The next batch is validated while the writer runs this one.
        let following = next_batch(&mut units, pace.batch);
        let (answers, following) =
            tokio::join!(store.write_each(writes), prepared.units(&following));
        let mut deferred = Vec::new();
        match answers {
            Ok(answers) => {
                for (ops, answer) in ops.iter().zip(answers) {
                    if let Some(again) = settle(ops, answer, &progress, &mut results) {
                        deferred.push(again);
                    }
                }
            }
            Err(e) => {
                for ops in &ops {
                    settle(ops, Err(e.clone()), &progress, &mut results);
                }
            }
        }
        if lock(&progress).stopped() {
            break;
        }
        // What the writer's time left out goes first next time, in its order.
        deferred.extend(following);
        batch = deferred;
    }
    let states = lock(&progress).states.clone();
    let mut outcomes = Vec::new();
    for (slot, result) in slots.into_iter().zip(results) {
        let Some(result) = result else { continue };
        let id = match (&slot.target, &slot.created) {
            (Some(Target::Id(id)), _) => Some(id.clone()),
            // A resource another operation created, if it was; else the reference as sent,
            // so the operation still has a location (§3.7.3: all but a failed POST do).
            (Some(Target::Ref(b)), _) => Some(
                declared
                    .get(b)
                    .filter(|&&d| states[d] == State::Succeeded)
                    .and_then(|_| ids.get(b).cloned())
                    .unwrap_or_else(|| format!("bulkId:{b}")),
            ),
            (None, Some(id)) if result.is_ok() => Some(id.clone()),
            (None, _) => None,
        };
        outcomes.push(Outcome {
            method: slot.method,
            bulk_id: slot.bulk_id,
            kind: slot.kind,
            id,
            result,
        });
    }
    Ok(outcomes)
}

/// The units of the next batch: at least one, then as many as fit in `size` operations.
fn next_batch(units: &mut std::iter::Peekable<std::vec::IntoIter<Unit>>, size: usize) -> Vec<Unit> {
    let mut batch = Vec::new();
    let mut taken = 0;
    while let Some(unit) = units.next_if(|u| batch.is_empty() || taken + u.ops.len() <= size) {
        taken += unit.ops.len();
        batch.push(unit);
    }
    batch
}

/// How many operations are validated between two yields to the runtime: validation is CPU
/// work on the request's task, and a batch of it must not hold a worker for long.
const YIELD_EVERY: usize = 8;

/// What turning units into writes needs.
struct Prepared<'a> {
    store: &'a Store,
    actor: &'a Actor,
    /// Each operation until it is prepared (then `None`).
    ops: Vec<Option<Operation>>,
    failures: &'a mut [Option<Error>],
    slots: &'a [Slot],
    ids: &'a HashMap<String, String>,
}

/// A unit, validated: ready for the writer.
struct Pending {
    ops: Vec<usize>,
    /// The POSTs outside the unit it references, with their bulkIds (for messages).
    needs: Vec<(usize, String)>,
    steps: Vec<(usize, Result<Step>)>,
}

impl Prepared<'_> {
    /// The units of `batch`, validated.
    async fn units(&mut self, batch: &[Unit]) -> Vec<Pending> {
        let mut pending = Vec::with_capacity(batch.len());
        let mut since_yield = 0;
        for unit in batch {
            let mut steps = Vec::with_capacity(unit.ops.len());
            for &i in &unit.ops {
                let step = match self.failures[i].take() {
                    Some(e) => Err(e),
                    None => prepare(
                        self.store,
                        self.actor,
                        self.ops[i].take(),
                        &self.slots[i],
                        self.ids,
                    ),
                };
                steps.push((i, step));
                since_yield += 1;
                if since_yield == YIELD_EVERY {
                    since_yield = 0;
                    tokio::task::yield_now().await;
                }
            }
            let needs = unit
                .needs
                .iter()
                .map(|&d| (d, self.slots[d].bulk_id.clone().unwrap_or_default()))
                .collect();
            pending.push(Pending {
                ops: unit.ops.clone(),
                needs,
                steps,
            });
        }
        pending
    }
}

/// What the response needs to know about an operation once its `Operation` has run.
struct Slot {
    method: Option<String>,
    bulk_id: Option<String>,
    kind: Option<ResourceKind>,
    target: Option<Target>,
    created: Option<String>,
}

/// Where each operation stands, as the writer sees it: shared by the writes of a request,
/// which run one after the other on the writer's thread.
struct Progress {
    states: Vec<State>,
    /// Why an operation failed, when it was for a reason of its own (not because the POST it
    /// references, or another POST of its circle, failed).
    own: Vec<Option<Error>>,
    /// Operations that failed so far.
    errors: usize,
    /// `failOnErrors`.
    limit: Option<usize>,
    /// How long a batch may hold the writer (`Pace::writer_time`).
    writer_time: Duration,
    /// When the batch's first unit started, in the writer.
    batch_started: Option<Instant>,
    /// Whether the batch's time is up: its remaining units do nothing.
    deferring: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Succeeded,
    Failed,
}

impl Progress {
    /// Whether the client's `failOnErrors` is reached: nothing more runs.
    fn stopped(&self) -> bool {
        self.limit.is_some_and(|limit| self.errors >= limit)
    }

    /// Whether the unit about to start must wait for the writer's next turn: the batch has
    /// had its time. The batch's first unit always runs.
    fn time_is_up(&mut self) -> bool {
        let now = Instant::now();
        let started = *self.batch_started.get_or_insert(now);
        if !self.deferring && now.duration_since(started) > self.writer_time {
            self.deferring = true;
        }
        self.deferring
    }

    /// Marks `ops` failed (each counted once).
    fn fail(&mut self, ops: &[usize]) {
        for &i in ops {
            if self.states[i] != State::Failed {
                self.states[i] = State::Failed;
                self.errors += 1;
            }
        }
    }
}

/// The writer thread and this task take turns; a panic while holding the lock leaves plain
/// data behind, still usable.
fn lock(p: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// One operation's write, validated and with its references written in.
type Step = Box<dyn FnOnce(&Transaction) -> Result<Done> + Send>;

/// A unit's write (see `unit_write`).
type UnitWrite = Box<dyn FnOnce(&Transaction) -> Result<Ran> + Send>;

/// What a unit's write did, when nothing of it failed.
enum Ran {
    Done(Vec<Done>),
    /// `failOnErrors` was reached before it: it did nothing and is not reported.
    Skipped,
    /// The batch's writer time was up: it did nothing, and goes to the next batch.
    Deferred(Pending),
}

/// The write of one unit (see `scim::bulk::Unit`): `Err` if a POST it references did not
/// succeed, or one of its operations failed (then nothing of the unit stays, and each
/// operation's own error is in `Progress::own`).
fn unit_write(unit: Pending, progress: Arc<Mutex<Progress>>) -> UnitWrite {
    Box::new(move |tx| {
        let Pending { ops, needs, steps } = unit;
        let mut ready = Vec::with_capacity(steps.len());
        {
            let mut p = lock(&progress);
            if p.stopped() {
                return Ok(Ran::Skipped);
            }
            if p.time_is_up() {
                return Ok(Ran::Deferred(Pending { ops, needs, steps }));
            }
            let unmet = needs.iter().find(|(d, _)| p.states[*d] != State::Succeeded);
            if let Some((d, b)) = unmet {
                let why = Error::Conflict(format!(
                    "bulkId \"{b}\" names the resource {} was to create, and that POST failed",
                    nth(*d)
                ));
                for &i in &ops {
                    p.own[i] = Some(why.clone());
                }
                p.fail(&ops);
                return Err(why);
            }
            // Operations that failed before reaching the writer (validation, the plan).
            let mut first = None;
            for (i, step) in steps {
                match step {
                    Ok(f) => ready.push(f),
                    Err(e) => {
                        first.get_or_insert_with(|| e.clone());
                        p.own[i] = Some(e);
                    }
                }
            }
            if let Some(e) = first {
                p.fail(&ops);
                return Err(e);
            }
        }
        let mut done = Vec::with_capacity(ready.len());
        for (&i, f) in ops.iter().zip(ready) {
            match f(tx) {
                Ok(d) => done.push(d),
                Err(e) => {
                    let mut p = lock(&progress);
                    p.own[i] = Some(e.clone());
                    p.fail(&ops);
                    return Err(e);
                }
            }
        }
        let mut p = lock(&progress);
        for &i in &ops {
            p.states[i] = State::Succeeded;
        }
        Ok(Ran::Done(done))
    })
}

/// Records the answer for a unit's operations; gives back a unit the writer's time left out.
fn settle(
    ops: &[usize],
    answer: Result<Ran>,
    progress: &Mutex<Progress>,
    results: &mut [Option<Result<Done>>],
) -> Option<Pending> {
    match answer {
        Ok(Ran::Skipped) => None,
        Ok(Ran::Deferred(unit)) => Some(unit),
        Ok(Ran::Done(done)) => {
            for (&i, d) in ops.iter().zip(done) {
                results[i] = Some(Ok(d));
            }
            None
        }
        Err(e) => {
            let mut p = lock(progress);
            // A commit that failed undid writes the writer saw succeed.
            p.fail(ops);
            let cause = ops.iter().copied().find(|&i| p.own[i].is_some());
            for &i in ops {
                results[i] = Some(Err(match (p.own[i].take(), cause) {
                    (Some(own), _) => own,
                    (None, Some(k)) => Error::Conflict(format!(
                        "this POST is part of a circular reference with {}, which failed: \
                         none of the circle's POSTs was made",
                        nth(k)
                    )),
                    (None, None) => e.clone(),
                }));
            }
            None
        }
    }
}

/// The write of `op`, validated, its references replaced by the ids of `ids`.
fn prepare(
    store: &Store,
    actor: &Actor,
    op: Option<Operation>,
    slot: &Slot,
    ids: &HashMap<String, String>,
) -> Result<Step> {
    // `plan` fails every entry that is not an operation, so this cannot be `None`.
    let mut op = op.ok_or_else(|| Error::internal("a bulk operation was planned twice"))?;
    bulk::substitute(&mut op, ids)?;
    let id = match (op.target.take(), &slot.created) {
        (Some(Target::Id(id)), _) => id,
        (None, Some(id)) => id.clone(),
        _ => return Err(Error::internal("a bulk operation without its resource id")),
    };
    let (data, version) = (op.data, op.version);
    Ok(match (op.method, op.kind) {
        (Method::Post, ResourceKind::User) => {
            let write = users::create_write(store, data, id, actor)?;
            Box::new(move |tx| write(tx).map(|(u, n)| Done::written(201, &u.meta, n)))
        }
        (Method::Put, ResourceKind::User) => {
            let write = users::replace_write(store, id, data, version, actor)?;
            Box::new(move |tx| write(tx).map(|(u, n)| Done::written(200, &u.meta, n)))
        }
        (Method::Patch, ResourceKind::User) => {
            let write = users::patch_write(store, id, data, version, actor)?;
            Box::new(move |tx| write(tx).map(|(u, n)| Done::written(200, &u.meta, n)))
        }
        (Method::Delete, ResourceKind::User) => {
            let write = users::delete_write(id, version, actor);
            Box::new(move |tx| write(tx).map(|()| deleted()))
        }
        // The group is not returned, so its members are not read back (with_members false).
        (Method::Post, ResourceKind::Group) => {
            let write = groups::create_write(store, data, id, false, actor)?;
            Box::new(move |tx| write(tx).map(|(g, n)| Done::written(201, &g.meta, n)))
        }
        (Method::Put, ResourceKind::Group) => {
            let write = groups::replace_write(store, id, data, false, version, actor)?;
            Box::new(move |tx| write(tx).map(|(g, n)| Done::written(200, &g.meta, n)))
        }
        // 204, as a single group PATCH that asks for no attributes answers.
        (Method::Patch, ResourceKind::Group) => {
            let write = groups::patch_write(store, id, data, false, version, actor)?;
            Box::new(move |tx| write(tx).map(|(g, n)| Done::written(204, &g.meta, n)))
        }
        (Method::Delete, ResourceKind::Group) => {
            let write = groups::delete_write(id, version, actor);
            Box::new(move |tx| write(tx).map(|()| deleted()))
        }
    })
}

fn deleted() -> Done {
    Done {
        status: 204,
        version: None,
        noted: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn creates(n: usize, prefix: &str) -> Value {
        let ops: Vec<Value> = (0..n)
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                       "data": {"userName": format!("{prefix}{i:03}")}})
            })
            .collect();
        json!({"Operations": ops})
    }

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("b.db")).unwrap()
    }

    fn statuses(outcomes: &[Outcome]) -> Vec<u16> {
        outcomes
            .iter()
            .map(|o| match &o.result {
                Ok(d) => d.status,
                Err(e) => e.status().as_u16(),
            })
            .collect()
    }

    /// The user names in creation order.
    fn created(store: &Store) -> Vec<String> {
        store
            .read_sync(|c| {
                Ok(c.prepare("SELECT user_name FROM users ORDER BY seq")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .unwrap()
    }

    /// With time to spare, 200 creates take one commit per `Pace::batch` operations (on a
    /// store with no other writer, so every commit is the request's own).
    #[tokio::test]
    async fn operations_reach_the_writer_a_batch_at_a_time() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = store(&dir);
        let pace = Pace {
            batch: 64,
            writer_time: Duration::from_secs(3600),
        };
        let before = store.commit_batches();
        let outcomes = run_paced(&store, creates(200, "u"), &Actor::cli(), pace)
            .await
            .unwrap();
        assert_eq!(statuses(&outcomes), vec![201; 200]);
        let after = store.commit_batches();
        assert_eq!(after.commits - before.commits, 4, "64, 64, 64 and 8");
        assert_eq!(after.writes - before.writes, 200);
        let at_most_64 = crate::store::BATCH_BUCKETS
            .iter()
            .position(|&b| b == 64)
            .unwrap();
        assert_eq!(
            after.buckets[at_most_64] - before.buckets[at_most_64],
            4,
            "no commit carried more than 64"
        );
    }

    /// Once a batch has had its writer time, its other operations wait for the next turn,
    /// and still run, in order. With no time at all, each turn runs one operation.
    #[tokio::test]
    async fn a_batch_gives_the_writer_up_when_its_time_is_up() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = store(&dir);
        let pace = Pace {
            batch: 256,
            writer_time: Duration::ZERO,
        };
        let before = store.commit_batches();
        let outcomes = run_paced(&store, creates(10, "t"), &Actor::cli(), pace)
            .await
            .unwrap();
        assert_eq!(statuses(&outcomes), vec![201; 10]);
        assert_eq!(store.commit_batches().commits - before.commits, 10);
        let want: Vec<String> = (0..10).map(|i| format!("t{i:03}")).collect();
        assert_eq!(created(&store), want);
    }

    /// failOnErrors is counted in the writer: an operation in the same batch as the failure
    /// that reached the limit does not run.
    #[tokio::test]
    async fn nothing_runs_after_the_limit_even_within_a_batch() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = store(&dir);
        let mut body = creates(5, "f");
        body["Operations"][1]["data"]["userName"] = json!("f000");
        body["failOnErrors"] = json!(1);
        let pace = Pace {
            batch: 256,
            writer_time: Duration::from_secs(3600),
        };
        let before = store.commit_batches();
        let outcomes = run_paced(&store, body, &Actor::cli(), pace).await.unwrap();
        assert_eq!(statuses(&outcomes), [201, 409]);
        assert_eq!(created(&store), ["f000"]);
        assert_eq!(store.commit_batches().commits - before.commits, 1);
    }
}
