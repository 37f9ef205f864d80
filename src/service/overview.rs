//! The console's Overview, in one read: how many users (active, suspended), groups and
//! tokens there are; per token its last request, its requests, failures and refusals of the
//! last 24 hours and whether it has been silent for longer than the admin expects; failed
//! authentications per client address; who joined, was suspended, reactivated or deleted in
//! the last 7 days; and changes per day over 30 days.
//!
//! The week and the days come from the change events (kept 30 days by default): an event
//! already says whether a change suspended or reinstated the account. Per-day counts of
//! days gone by do not change, so they are counted once and kept (`Days`); each read counts
//! only today's.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ::time::{Date, Duration, OffsetDateTime};
use serde::Serialize;
use serde_json::Value;

use super::activity;
use super::audit::Actor;
use super::events::{USER_CREATED, USER_DEACTIVATED, USER_DELETED, USER_REACTIVATED};
use crate::error::{Error, Result};
use crate::scim::time;
use crate::store::activity::Counts;
use crate::store::overview::{self, PersonChange, Secret};
use crate::store::tokens::Scope;
use crate::store::{Store, tokens};

/// Days the chart covers, today included.
pub const DAYS: usize = 30;
/// Days "this week" covers, back from now.
const WEEK_DAYS: i64 = 7;
/// People listed per kind of change; the count says how many there were in all.
const PEOPLE_LISTED: u32 = 50;
/// Client addresses listed with their failures.
const CLIENTS_LISTED: u32 = 20;
/// The longest expectation: a year.
pub const MAX_EXPECT_HOURS: u32 = 8760;

/// A token as the Overview shows it: all its secrets together (a rotation keeps the name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenActivity {
    pub name: String,
    pub scope: Scope,
    /// It has a secret that still works; otherwise it shows only because a revoked secret
    /// of it still arrives.
    pub live: bool,
    pub last_used: Option<String>,
    pub last_client: Option<String>,
    pub last_request: Option<String>,
    /// The last 24 hours.
    pub requests: u64,
    pub failures: u64,
    /// Refused as a revoked or rotated-out secret.
    pub refused: u64,
    pub expect_every_hours: Option<u32>,
    /// Hours without a request, when longer than expected.
    pub silent_hours: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientFailures {
    pub client: String,
    pub failures: u64,
}

/// One kind of change to people over the week: the newest few, and how many in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct People {
    pub count: u64,
    pub people: Vec<PersonChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Week {
    pub since: String,
    pub joined: People,
    pub suspended: People,
    pub reactivated: People,
    pub deleted: People,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    pub date: String,
    pub changes: u64,
}

/// How many there are: users (all, active, suspended), groups, live tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub users: u64,
    pub active: u64,
    pub suspended: u64,
    pub groups: u64,
    pub tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub now: String,
    pub counts: Totals,
    pub tokens: Vec<TokenActivity>,
    /// Failed authentications without any token of ours, per client address (last 24 h).
    pub client_failures: Vec<ClientFailures>,
    pub client_failures_total: u64,
    pub week: Week,
    pub days: Vec<Day>,
}

/// Counts of days gone by, by date (`YYYY-MM-DD`).
#[derive(Default)]
pub struct Days(Mutex<BTreeMap<String, u64>>);

impl Days {
    fn get(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Keeps the counts of `days` (each a whole day gone by), and only days from `first` on.
    fn keep(&self, days: impl IntoIterator<Item = (String, u64)>, first: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.extend(days);
        map.retain(|d, _| d.as_str() >= first);
    }
}

/// `YYYY-MM-DD`.
fn date_text(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The start of day `d` in the stored timestamp format.
fn day_start(d: Date) -> String {
    time::format(d.midnight().assume_utc())
}

/// The `n` days ending with `today`, oldest first.
pub fn last_days(today: Date, n: usize) -> Vec<Date> {
    let mut days: Vec<Date> = std::iter::successors(Some(today), |d| d.previous_day())
        .take(n)
        .collect();
    days.reverse();
    days
}

/// Every day of `days` with its count in `counted` (0 when none).
fn series(days: &[Date], counted: &BTreeMap<String, u64>) -> Vec<Day> {
    days.iter()
        .map(|d| {
            let date = date_text(*d);
            let changes = counted.get(&date).copied().unwrap_or(0);
            Day { date, changes }
        })
        .collect()
}

/// How many whole hours a token with `expect` has been silent, when longer than that: since
/// its last request, or since it was created if it never sent one.
pub fn silent_hours(
    expect: Option<u32>,
    last_used: Option<&str>,
    created: &str,
    now: OffsetDateTime,
) -> Option<i64> {
    let expect = i64::from(expect?);
    let since = time::parse(last_used.unwrap_or(created))?;
    let hours = (now - since).whole_hours();
    (hours >= expect).then_some(hours)
}

/// The tokens to show: every token with a live secret, and a revoked one whose secrets
/// still arrived in the last 24 hours; live ones first, each in order of its first secret.
fn token_activity(
    secrets: &[Secret],
    counts: &BTreeMap<i64, Counts>,
    now: OffsetDateTime,
) -> Vec<TokenActivity> {
    let mut by_name: Vec<(String, Vec<&Secret>)> = Vec::new();
    for s in secrets {
        match by_name.iter_mut().find(|(n, _)| *n == s.name) {
            Some((_, list)) => list.push(s),
            None => by_name.push((s.name.clone(), vec![s])),
        }
    }
    let mut shown: Vec<TokenActivity> = by_name
        .into_iter()
        .filter_map(|(name, list)| {
            let mut c = Counts::default();
            for s in &list {
                if let Some(n) = counts.get(&s.seq) {
                    c.add(*n);
                }
            }
            let live: Vec<&&Secret> = list.iter().filter(|s| s.live).collect();
            if live.is_empty() && c.requests == 0 {
                return None;
            }
            let last = list
                .iter()
                .filter(|s| s.last_used.is_some())
                .max_by(|a, b| a.last_used.cmp(&b.last_used));
            // The newest secret speaks for the token: scope, created, expectation.
            let newest = live.last().copied().or(list.last())?;
            let silent = if live.is_empty() {
                None
            } else {
                silent_hours(
                    newest.expect_every_hours,
                    last.and_then(|s| s.last_used.as_deref()),
                    &list[0].created,
                    now,
                )
            };
            Some(TokenActivity {
                name,
                scope: newest.scope,
                live: !live.is_empty(),
                last_used: last.and_then(|s| s.last_used.clone()),
                last_client: last.and_then(|s| s.last_client.clone()),
                last_request: last.and_then(|s| s.last_request.clone()),
                requests: c.requests,
                failures: c.failures,
                refused: c.refused,
                expect_every_hours: newest.expect_every_hours,
                silent_hours: silent,
            })
        })
        .collect();
    shown.sort_by_key(|t| !t.live);
    shown
}

/// Everything the Overview shows. `days` keeps the counts of days gone by between reads.
pub async fn read(store: &Store, days: &Days) -> Result<Overview> {
    let now = OffsetDateTime::now_utc();
    let today = now.date();
    let window = last_days(today, DAYS);
    let first = date_text(window[0]);
    let cached = days.get();
    // Days gone by not counted yet are counted in one range, together with today.
    let from = window
        .iter()
        .copied()
        .find(|d| *d != today && !cached.contains_key(&date_text(*d)))
        .unwrap_or(today);
    let until = today.next_day().unwrap_or(today);
    let (from_text, until_text) = (day_start(from), day_start(until));
    let now_text = time::format(now);
    let week_since = time::format(now - Duration::days(WEEK_DAYS));
    let hour = activity::day_ago(activity::this_hour());
    let (read, fresh) = store
        .read(move |conn| {
            let counts = overview::counts(conn)?;
            let secrets = overview::secrets(conn, &now_text)?;
            let used: BTreeMap<i64, Counts> = crate::store::activity::tokens_since(conn, hour)?
                .into_iter()
                .collect();
            let (top, total) = crate::store::activity::clients_since(conn, hour, CLIENTS_LISTED)?;
            let people = |kind| -> Result<People> {
                let (people, count) =
                    overview::people_changes(conn, kind, &week_since, PEOPLE_LISTED)?;
                Ok(People { count, people })
            };
            let week = Week {
                since: week_since.clone(),
                joined: people(USER_CREATED)?,
                suspended: people(USER_DEACTIVATED)?,
                reactivated: people(USER_REACTIVATED)?,
                deleted: people(USER_DELETED)?,
            };
            let fresh = overview::changes_per_day(conn, &from_text, &until_text)?;
            let tokens = token_activity(&secrets, &used, now);
            let live = tokens.iter().filter(|t| t.live).count();
            let overview = Overview {
                now: now_text,
                counts: Totals {
                    users: counts.users,
                    active: counts.users.saturating_sub(counts.suspended),
                    suspended: counts.suspended,
                    groups: counts.groups,
                    tokens: u64::try_from(live).unwrap_or(u64::MAX),
                },
                tokens,
                client_failures: top
                    .into_iter()
                    .map(|(client, failures)| ClientFailures { client, failures })
                    .collect(),
                client_failures_total: total,
                week,
                days: Vec::new(),
            };
            Ok((overview, fresh))
        })
        .await?;
    let fresh: BTreeMap<String, u64> = fresh.into_iter().collect();
    let today_text = date_text(today);
    // Every day gone by in the counted range is known now, those without events as 0.
    let gone_by = window
        .iter()
        .filter(|d| **d >= from && **d != today)
        .map(|d| {
            let date = date_text(*d);
            let n = fresh.get(&date).copied().unwrap_or(0);
            (date, n)
        });
    days.keep(gone_by.collect::<Vec<_>>(), &first);
    let mut counted = days.get();
    counted.insert(
        today_text.clone(),
        fresh.get(&today_text).copied().unwrap_or(0),
    );
    let mut overview = read;
    overview.days = series(&window, &counted);
    Ok(overview)
}

/// `{"everyHours": n}` (1 to a year) or `{"everyHours": null}` (no expectation).
pub fn expectation(body: &Value) -> Result<Option<u32>> {
    let bad = || {
        Error::InvalidValue(format!(
            "\"everyHours\" is a whole number of hours from 1 to {MAX_EXPECT_HOURS} (a year), \
             or null for no expectation"
        ))
    };
    match body.get("everyHours") {
        Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=MAX_EXPECT_HOURS).contains(n))
            .map(Some)
            .ok_or_else(bad),
        None => Err(bad()),
    }
}

/// Sets how often the live token `name` is expected to send a request. Blocking.
pub fn set_expectation(store: &Store, name: &str, hours: Option<u32>, actor: &Actor) -> Result<()> {
    let now = time::now();
    let done = store.write_sync(|tx| {
        let ok = tokens::set_expectation(tx, name, hours, &now)?;
        if ok {
            let detail = serde_json::json!({"everyHours": hours});
            super::audit::record_named(tx, actor, "token.expect", "Token", name, Some(detail))?;
        }
        Ok(ok)
    })?;
    if done {
        Ok(())
    } else {
        Err(Error::NotFound(format!("no live token named \"{name}\"")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::macros::{date, datetime};
    use serde_json::json;

    #[test]
    fn the_last_days_end_today_oldest_first() {
        let days = last_days(date!(2026 - 03 - 02), 3);
        assert_eq!(
            days,
            [
                date!(2026 - 02 - 28),
                date!(2026 - 03 - 01),
                date!(2026 - 03 - 02)
            ]
        );
        assert_eq!(day_start(days[0]), "2026-02-28T00:00:00.000Z");
        let counted = BTreeMap::from([("2026-03-01".to_string(), 4)]);
        let s = series(&days, &counted);
        let got: Vec<(&str, u64)> = s.iter().map(|d| (d.date.as_str(), d.changes)).collect();
        assert_eq!(
            got,
            [("2026-02-28", 0), ("2026-03-01", 4), ("2026-03-02", 0)]
        );
        assert_eq!(last_days(date!(2026 - 03 - 02), DAYS).len(), DAYS);
    }

    #[test]
    fn silence_counts_from_the_last_request_or_creation() {
        let now = datetime!(2026-01-02 12:00 UTC);
        let created = "2026-01-01T00:00:00.000Z";
        let last = Some("2026-01-02T06:30:00.000Z");
        assert_eq!(silent_hours(None, last, created, now), None);
        assert_eq!(silent_hours(Some(6), last, created, now), None, "5 h 30");
        assert_eq!(silent_hours(Some(5), last, created, now), Some(5));
        assert_eq!(silent_hours(Some(24), None, created, now), Some(36));
        assert_eq!(silent_hours(Some(48), None, created, now), None);
    }

    #[test]
    fn expectations_are_whole_hours_up_to_a_year_or_null() {
        assert_eq!(expectation(&json!({"everyHours": 6})).unwrap(), Some(6));
        assert_eq!(
            expectation(&json!({"everyHours": 8760})).unwrap(),
            Some(8760)
        );
        assert_eq!(expectation(&json!({"everyHours": null})).unwrap(), None);
        for bad in [
            json!({}),
            json!({"everyHours": 0}),
            json!({"everyHours": -1}),
            json!({"everyHours": 1.5}),
            json!({"everyHours": "6"}),
            json!({"everyHours": "abc"}),
            json!({"everyHours": 8761}),
        ] {
            assert!(expectation(&bad).is_err(), "{bad}");
        }
    }

    /// Days gone by are counted once and kept; today is counted on every read.
    #[tokio::test]
    async fn days_gone_by_are_counted_once_and_today_every_time() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("o.db")).unwrap();
        let now = OffsetDateTime::now_utc();
        let add = |at: OffsetDateTime| {
            store
                .write_sync(|tx| {
                    crate::store::events::append(tx, &time::format(at), "user.updated", "{}")?;
                    Ok(())
                })
                .unwrap();
        };
        let three_days_ago = now - Duration::days(3);
        add(three_days_ago);
        add(now);
        let days = Days::default();
        let series = |o: &Overview| -> Vec<u64> { o.days.iter().map(|d| d.changes).collect() };
        let first = read(&store, &days).await.unwrap();
        assert_eq!(first.days.len(), DAYS);
        assert_eq!(first.days[DAYS - 1].date, date_text(now.date()));
        let counted = series(&first);
        assert_eq!((counted[DAYS - 4], counted[DAYS - 1]), (1, 1));
        assert_eq!(counted.iter().sum::<u64>(), 2);
        add(three_days_ago);
        add(now);
        let second = series(&read(&store, &days).await.unwrap());
        assert_eq!((second[DAYS - 4], second[DAYS - 1]), (1, 2));
        // A new reader (a restart) counts every day again.
        let fresh = series(&read(&store, &Days::default()).await.unwrap());
        assert_eq!((fresh[DAYS - 4], fresh[DAYS - 1]), (2, 2));
    }

    fn secret(seq: i64, name: &str, live: bool, last: Option<&str>) -> Secret {
        Secret {
            seq,
            name: name.into(),
            scope: Scope::Write,
            created: "2026-01-01T00:00:00.000Z".into(),
            live,
            last_used: last.map(str::to_string),
            last_client: last.map(|_| format!("client of {seq}")),
            last_request: None,
            expect_every_hours: Some(1),
        }
    }

    /// A token's secrets are one row: counts summed, the newest use shown; a revoked token
    /// shows only while its secret still arrives; a revoked one never warns of silence.
    #[test]
    fn secrets_of_a_token_are_one_row() {
        let now = datetime!(2026-01-01 10:00 UTC);
        let secrets = [
            secret(1, "onelogin", false, Some("2026-01-01T09:00:00.000Z")),
            secret(2, "gone", false, Some("2026-01-01T01:00:00.000Z")),
            secret(3, "onelogin", true, Some("2026-01-01T08:00:00.000Z")),
            secret(4, "quiet", false, None),
        ];
        let c = |requests, failures, refused| Counts {
            requests,
            failures,
            refused,
        };
        let counts = BTreeMap::from([(1, c(3, 3, 3)), (3, c(10, 1, 0)), (2, c(1, 1, 1))]);
        let shown = token_activity(&secrets, &counts, now);
        let names: Vec<(&str, bool)> = shown.iter().map(|t| (t.name.as_str(), t.live)).collect();
        assert_eq!(names, [("onelogin", true), ("gone", false)]);
        let one = &shown[0];
        assert_eq!((one.requests, one.failures, one.refused), (13, 4, 3));
        assert_eq!(one.last_client.as_deref(), Some("client of 1"));
        assert_eq!(one.silent_hours, Some(1));
        assert_eq!(shown[1].silent_hours, None);
    }
}
