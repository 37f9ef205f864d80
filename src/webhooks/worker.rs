//! Delivery workers: one task per endpoint, kept running by a supervisor.
//!
//! A worker delivers the first matching event after its endpoint's cursor, waits for the
//! answer, and records it in one write (cursor moved on a 2xx; retry state otherwise), then
//! goes on. One delivery in flight per endpoint keeps commit order: a `user.reactivated`
//! never overtakes the `user.deactivated` before it. No write transaction is held across the
//! HTTP call. All state is in the database, so a restarted worker (or server) goes on where
//! the last recorded attempt left it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::{Delivery, Hub, Settings, outcome};
use crate::error::Result;
use crate::scim::time as stime;
use crate::store::{events, webhooks as sql};

/// How far an endpoint with a type filter may fall behind the head over events it does not
/// want before its cursor is moved past them (one small write).
const SKIP_AFTER_EVENTS: i64 = 1000;
const SKIP_AFTER: Duration = Duration::from_secs(60);

/// Keeps one worker running per endpoint until aborted (aborting it aborts them too): starts
/// workers for new endpoints, stops those of removed ones, and restarts any that ended with
/// an error or a panic (at the next look, so a failing one cannot spin).
pub async fn supervise(hub: Arc<Hub>) {
    let mut tasks: JoinSet<bool> = JoinSet::new();
    let mut running: HashMap<i64, (tokio::task::Id, tokio::task::AbortHandle, String)> =
        HashMap::new();
    let mut changes = hub.changes.subscribe();
    loop {
        while let Some(done) = tasks.try_join_next_with_id() {
            let (id, clean) = match done {
                Ok((id, clean)) => (id, clean),
                // Aborted here, for a removed endpoint: already out of `running`.
                Err(e) if e.is_cancelled() => continue,
                Err(e) => {
                    warn!(error = %e, "webhook worker panicked; restarting it");
                    (e.id(), false)
                }
            };
            running.retain(|_, (task, _, name)| {
                if *task != id {
                    return true;
                }
                if clean {
                    // It ended because its endpoint is gone.
                    hub.metrics.forget(name);
                } else {
                    hub.metrics.restarted();
                }
                false
            });
        }
        changes.borrow_and_update();
        let store = hub.store.clone();
        match store.read(sql::seqs).await {
            Ok(endpoints) => {
                running.retain(|seq, (_, handle, name)| {
                    let keep = endpoints.iter().any(|(s, _)| s == seq);
                    if !keep {
                        handle.abort();
                        hub.metrics.forget(name);
                    }
                    keep
                });
                for (seq, name) in endpoints {
                    if running.contains_key(&seq) {
                        continue;
                    }
                    let worker = hub.clone();
                    let endpoint = name.clone();
                    let handle = tasks.spawn(async move {
                        match run(&worker, seq).await {
                            Ok(()) => true,
                            Err(e) => {
                                warn!(endpoint, error = %e, "webhook worker failed; restarting it");
                                false
                            }
                        }
                    });
                    running.insert(seq, (handle.id(), handle, name));
                }
            }
            Err(e) => warn!(error = %e, "cannot list webhook endpoints"),
        }
        tokio::select! {
            _ = changes.changed() => {}
            () = tokio::time::sleep(hub.settings.tick) => {}
        }
    }
}

/// The wait before the next attempt after `failures` failed ones (1 for the first), with
/// `jitter` in [-1, 1] scaling ±20 %: `first_retry` doubling each time, never above
/// `max_retry`.
pub fn backoff(failures: i64, jitter: f64, s: &Settings) -> Duration {
    let exp = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let base = s
        .first_retry
        .saturating_mul(2u32.saturating_pow(exp))
        .min(s.max_retry);
    base.mul_f64(1.0 + 0.2 * jitter.clamp(-1.0, 1.0))
        .min(s.max_retry)
}

/// A random number in [-1, 1].
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX) * 2.0 - 1.0
}

/// When the next attempt is due after a failure now, or `None` if the endpoint has failed
/// for longer than the retry window (it is paused then). A receiver's `Retry-After` is
/// honoured within [the scheduled wait, twice that] (and never past `max_retry`), so it can
/// neither make us hammer it nor stall its endpoint.
pub fn next_attempt(
    now: OffsetDateTime,
    failing_since: Option<OffsetDateTime>,
    failures: i64,
    jitter: f64,
    retry_after: Option<Duration>,
    s: &Settings,
) -> Option<OffsetDateTime> {
    let since = failing_since.unwrap_or(now);
    let scheduled = backoff(failures, jitter, s);
    let wait = retry_after.map_or(scheduled, |asked| {
        asked
            .clamp(scheduled, scheduled.saturating_mul(2))
            .min(s.max_retry)
    });
    let next = now + wait;
    (next - since <= s.retry_window).then_some(next)
}

/// Waits until the event head moves (unless `head` is `None`), an endpoint changes in this
/// process, or `max` passed.
async fn wait(
    head: Option<&mut watch::Receiver<i64>>,
    changes: &mut watch::Receiver<u64>,
    max: Duration,
) {
    let moved = async {
        match head {
            Some(head) => {
                let _ = head.changed().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = moved => {}
        _ = changes.changed() => {}
        () = tokio::time::sleep(max) => {}
    }
}

/// The worker of endpoint `seq`: delivers until the endpoint is removed (`Ok`) or the
/// database fails (`Err`; the supervisor restarts it).
async fn run(hub: &Arc<Hub>, seq: i64) -> Result<()> {
    let mut head = hub.store.events_watch();
    let mut changes = hub.changes.subscribe();
    let mut last_skip = Instant::now();
    // Attempts until the next pruning of the attempts log (the first one prunes).
    let mut until_prune: u32 = 0;
    loop {
        // Marked seen before reading, so a commit after the read wakes the wait below.
        head.borrow_and_update();
        changes.borrow_and_update();
        // One read per turn (the endpoint, its gap, its next event, the head, the secrets, in
        // one snapshot; a paused endpoint's only what it shows): a backlog is delivered at
        // one read and one write on the blocking pool per event.
        let Some((ep, next, head_seq, gap, secrets)) = hub
            .store
            .read(move |c| {
                let Some(ep) = sql::get(c, seq)? else {
                    return Ok(None);
                };
                let gap = sql::gap(c, ep.cursor)?;
                let next = events::after(c, ep.cursor, &ep.types, 1)?.pop();
                if ep.state == "paused" {
                    return Ok(Some((ep, next, 0, gap, Vec::new())));
                }
                let secrets = sql::secrets(c, seq, &stime::now())?;
                Ok(Some((ep, next, events::head(c)?, gap, secrets)))
            })
            .await?
        else {
            return Ok(());
        };
        if ep.state == "paused" {
            // Retention may overtake an endpoint paused by the retry window too: that is
            // recorded once (its reason becomes the gap's, which resume acknowledges).
            if let Some((first, last)) = gap
                && !super::gap_recorded(ep.last_error.as_deref(), first)
            {
                pause_for_gap(hub, &ep, first, last).await?;
                continue;
            }
            hub.metrics.waiting(
                &ep.name,
                &ep.state,
                next.as_ref().and_then(|e| stime::parse(&e.at)),
            );
            // New events change nothing for a paused endpoint (and each wake-up would cost
            // a scan after its cursor): only a resume, from here or at the tick, does.
            wait(None, &mut changes, hub.settings.tick).await;
            continue;
        }
        let cursor = ep.cursor;
        if let Some((first, last)) = gap {
            // Delivering the next kept event would skip these silently: stop until an
            // admin resumes (which acknowledges the gap).
            pause_for_gap(hub, &ep, first, last).await?;
            continue;
        }
        let Some(event) = next else {
            hub.metrics.waiting(&ep.name, &ep.state, None);
            // Only filtered-out events lie ahead (read in the same snapshot): now and then
            // the cursor moves past them, so the next read starts near the head.
            let behind = head_seq - cursor;
            if behind > 0 && (behind >= SKIP_AFTER_EVENTS || last_skip.elapsed() >= SKIP_AFTER) {
                hub.store
                    .write(move |tx| sql::skip_to(tx, seq, cursor, head_seq))
                    .await?;
                last_skip = Instant::now();
            }
            wait(Some(&mut head), &mut changes, hub.settings.tick).await;
            continue;
        };
        hub.metrics
            .waiting(&ep.name, &ep.state, stime::parse(&event.at));
        let now = OffsetDateTime::now_utc();
        if let Some(due) = ep.next_attempt_at.as_deref().and_then(stime::parse)
            && due > now
        {
            let until = (due - now).unsigned_abs().min(hub.settings.tick);
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(until) => {}
            }
            continue;
        }
        let attempt = ep.head_attempts + 1;
        let sent = Delivery::event(&hub.epoch, event.seq, &event.payload, &ep.format)
            .send(&hub.client, &ep, &secrets)
            .await;
        let done = OffsetDateTime::now_utc();
        let next = (!sent.ok())
            .then(|| {
                let since = ep.failing_since.as_deref().and_then(stime::parse);
                next_attempt(
                    done,
                    since,
                    attempt,
                    jitter(),
                    sent.retry_after,
                    &hub.settings,
                )
            })
            .flatten();
        let record = sent.clone();
        let event_seq = event.seq;
        let prune = (until_prune == 0).then(super::oldest_kept);
        until_prune = until_prune.checked_sub(1).unwrap_or(sql::PRUNE_EVERY - 1);
        let recorded = hub
            .store
            .write(move |tx| {
                // Removed while the delivery was in flight: nothing to record (nor count or
                // log), and the next turn of the loop ends the worker.
                if sql::get(tx, seq)?.is_none() {
                    return Ok(false);
                }
                let at = stime::format(done);
                let o = outcome(Some(event_seq), attempt, "scheduled", &at, &record);
                sql::log_attempt(tx, seq, &o, prune.as_deref())?;
                if record.ok() {
                    sql::delivered(tx, seq, cursor, event_seq, &at)?;
                } else {
                    let next = next.map(stime::format);
                    sql::failed(tx, seq, (cursor, attempt - 1), &at, next.as_deref())?;
                }
                Ok(true)
            })
            .await?;
        if !recorded {
            continue;
        }
        let result = match (sent.ok(), next) {
            (true, _) => "success",
            (false, Some(_)) => "failure",
            (false, None) => "paused",
        };
        hub.metrics.delivered(&ep.name, result, sent.duration);
        if result == "paused" {
            warn!(
                endpoint = ep.name,
                event = event.seq,
                error = sent.error.as_deref().unwrap_or_default(),
                "webhook endpoint paused: it kept failing for the whole retry window; \
                 `scimd webhook resume {}` delivers what it missed",
                ep.name
            );
        } else if !sent.ok() && attempt == 1 {
            info!(
                endpoint = ep.name,
                event = event.seq,
                error = sent.error.as_deref().unwrap_or_default(),
                "webhook delivery failed; retrying with backoff"
            );
        }
    }
}

/// Pauses `ep` because retention pruned events `first..=last` before it got them: logged
/// as an attempt (whose error is the reason `webhook list` and the console show), counted
/// and warned about.
async fn pause_for_gap(hub: &Hub, ep: &sql::Endpoint, first: i64, last: i64) -> Result<()> {
    let reason = super::gap_reason(first, last);
    let (seq, cursor, error) = (ep.seq, ep.cursor, reason.clone());
    let oldest_kept = super::oldest_kept();
    let paused = hub
        .store
        .write(move |tx| {
            let at = stime::now();
            if !sql::pause_for_gap(tx, seq, cursor, &at)? {
                return Ok(false);
            }
            // Logged against the first lost event, as the scheduled attempt that found it
            // gone (the log's triggers are fixed by its table's CHECK).
            let o = sql::Outcome {
                event_seq: Some(first),
                attempt: 0,
                trigger: "scheduled",
                at: &at,
                duration_ms: 0,
                status: None,
                error: Some(&error),
                response: None,
            };
            sql::log_attempt(tx, seq, &o, Some(&oldest_kept))?;
            Ok(true)
        })
        .await?;
    if paused {
        hub.metrics
            .lost(&ep.name, u64::try_from(last - first + 1).unwrap_or(0));
        hub.metrics.waiting(&ep.name, "paused", None);
        warn!(
            endpoint = ep.name,
            first, last, "webhook endpoint paused: {reason} (`scimd webhook resume {}`)", ep.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_paused_worker_is_not_woken_by_new_events() {
        let (head_tx, mut head) = watch::channel(0i64);
        let (changes_tx, mut changes) = watch::channel(0u64);
        let max = Duration::from_millis(300);
        head_tx.send_replace(1);
        let start = Instant::now();
        wait(None, &mut changes, max).await;
        assert!(start.elapsed() >= max, "a new event ended the wait");
        head_tx.send_replace(2);
        let start = Instant::now();
        wait(Some(&mut head), &mut changes, max).await;
        assert!(start.elapsed() < max, "a running one is");
        changes_tx.send_replace(1);
        let start = Instant::now();
        wait(None, &mut changes, max).await;
        assert!(start.elapsed() < max, "a resume wakes a paused one");
    }

    #[test]
    fn backoff_doubles_from_seconds_up_to_an_hour_with_jitter() {
        let s = Settings::default();
        let secs = |n, j| backoff(n, j, &s).as_secs_f64();
        assert_eq!(
            (1..=12).map(|n| secs(n, 0.0)).collect::<Vec<_>>(),
            [
                5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0, 3600.0, 3600.0
            ]
        );
        assert_eq!(secs(1, 1.0), 6.0);
        assert_eq!(secs(1, -1.0), 4.0);
        assert_eq!(secs(3, 0.5), 22.0);
        assert_eq!(secs(200, 1.0), 3600.0, "never above an hour");
        assert_eq!(secs(11, -1.0), 2880.0);
    }

    #[test]
    fn retries_stop_after_three_days_of_failure() {
        let s = Settings::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20000);
        assert_eq!(
            next_attempt(t0, None, 1, 0.0, None, &s),
            Some(t0 + time::Duration::seconds(5))
        );
        // Retry-After within [scheduled, 2 × scheduled], never above an hour.
        let after = |failures, asked: u64| {
            next_attempt(
                t0,
                None,
                failures,
                0.0,
                Some(Duration::from_secs(asked)),
                &s,
            )
            .map(|t| (t - t0).whole_seconds())
        };
        assert_eq!(after(1, 1), Some(5));
        assert_eq!(after(1, 8), Some(8));
        assert_eq!(after(1, 86400), Some(10));
        assert_eq!(after(12, 86400), Some(3600));
        let day2 = t0 + time::Duration::days(2);
        assert_eq!(
            next_attempt(day2, Some(t0), 40, 0.0, None, &s),
            Some(day2 + time::Duration::hours(1))
        );
        let late = t0 + time::Duration::days(3) - time::Duration::minutes(30);
        assert_eq!(next_attempt(late, Some(t0), 70, 0.0, None, &s), None);
        // Tries over the window: about 12 ramping up, then hourly.
        let (mut now, mut tries) = (t0, 0);
        while let Some(next) = next_attempt(now, Some(t0), tries + 1, 0.0, None, &s) {
            now = next;
            tries += 1;
        }
        assert!((75..=85).contains(&tries), "{tries}");
    }
}
