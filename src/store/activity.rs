//! SQL for request statistics of SCIM clients (migration 11): hourly counts per token secret
//! and failed authentications per client address, added to by periodic flushes, read by the
//! Overview, pruned by age. Hours are whole hours since the Unix epoch (UTC).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// The row that takes the failures of addresses past the per-hour bound.
pub const OTHER: &str = "other";

/// Counts of one token secret in one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub failures: u64,
    /// Refused as a revoked or rotated-out secret.
    pub refused: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.refused += other.refused;
    }
}

/// Counts of one token secret in one hour: `(hour, token_seq, counts)`.
pub type TokenRow = (i64, i64, Counts);
/// Failures of one client address in one hour: `(hour, address, failures)`.
pub type ClientRow = (i64, String, u64);

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Adds per-token counts.
pub fn add_tokens(conn: &Connection, rows: &[TokenRow]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO token_activity (hour, token_seq, requests, failures, refused)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (hour, token_seq) DO UPDATE SET
             requests = requests + excluded.requests,
             failures = failures + excluded.failures,
             refused = refused + excluded.refused",
    )?;
    for (hour, seq, c) in rows {
        stmt.execute(params![
            hour,
            seq,
            int(c.requests),
            int(c.failures),
            int(c.refused)
        ])?;
    }
    Ok(())
}

/// Adds failures per client address. An hour keeps at most
/// `max_clients` addresses (plus `OTHER`): an address new to a full hour is added to `OTHER`,
/// so a flood from many addresses cannot grow the table without bound.
pub fn add_clients(conn: &Connection, rows: &[ClientRow], max_clients: u64) -> Result<()> {
    let mut held = std::collections::HashMap::<i64, u64>::new();
    let mut bump = conn.prepare_cached(
        "UPDATE client_failures SET failures = failures + ?3 WHERE hour = ?1 AND client = ?2",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO client_failures (hour, client, failures) VALUES (?1, ?2, ?3)
         ON CONFLICT (hour, client) DO UPDATE SET failures = failures + excluded.failures",
    )?;
    let mut size = conn.prepare_cached("SELECT COUNT(*) FROM client_failures WHERE hour = ?1")?;
    for (hour, client, n) in rows {
        if bump.execute(params![hour, client, int(*n)])? > 0 {
            continue;
        }
        let held = match held.get_mut(hour) {
            Some(h) => h,
            None => {
                let n: i64 = size.query_row([hour], |r| r.get(0))?;
                held.entry(*hour).or_insert(count(n))
            }
        };
        let name = if *held < max_clients {
            *held += 1;
            client.as_str()
        } else {
            OTHER
        };
        insert.execute(params![hour, name, int(*n)])?;
    }
    Ok(())
}

/// Deletes the counts of hours before `hour`; how many rows went.
pub fn prune(conn: &Connection, hour: i64) -> Result<usize> {
    let a = conn.execute("DELETE FROM token_activity WHERE hour < ?1", [hour])?;
    let b = conn.execute("DELETE FROM client_failures WHERE hour < ?1", [hour])?;
    Ok(a + b)
}

/// Counts per token secret from `hour` on: `(token_seq, counts)`.
pub fn tokens_since(conn: &Connection, hour: i64) -> Result<Vec<(i64, Counts)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT token_seq, SUM(requests), SUM(failures), SUM(refused) FROM token_activity
         WHERE hour >= ?1 GROUP BY token_seq",
    )?;
    let rows = stmt.query_map([hour], |r| {
        Ok((
            r.get(0)?,
            Counts {
                requests: count(r.get(1)?),
                failures: count(r.get(2)?),
                refused: count(r.get(3)?),
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Failures per client address from `hour` on: the `limit` addresses with the most, most
/// first (`OTHER` among them), and the total over every address.
pub fn clients_since(
    conn: &Connection,
    hour: i64,
    limit: u32,
) -> Result<(Vec<(String, u64)>, u64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT client, SUM(failures) AS n FROM client_failures WHERE hour >= ?1
         GROUP BY client ORDER BY n DESC, client LIMIT ?2",
    )?;
    let top = stmt
        .query_map(params![hour, limit], |r| Ok((r.get(0)?, count(r.get(1)?))))?
        .collect::<rusqlite::Result<_>>()?;
    let total: Option<i64> = conn
        .prepare_cached("SELECT SUM(failures) FROM client_failures WHERE hour >= ?1")?
        .query_row([hour], |r| r.get(0))
        .optional()?
        .flatten();
    Ok((top, count(total.unwrap_or(0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate::run(&mut conn).unwrap();
        conn
    }

    #[test]
    fn counts_add_up_per_hour_and_token_and_prune_by_hour() {
        let conn = db();
        let c = |requests, failures, refused| Counts {
            requests,
            failures,
            refused,
        };
        add_tokens(&conn, &[(10, 1, c(2, 1, 0)), (11, 1, c(3, 0, 0))]).unwrap();
        add_tokens(&conn, &[(11, 1, c(1, 1, 1)), (11, 2, c(5, 0, 0))]).unwrap();
        let mut got = tokens_since(&conn, 10).unwrap();
        got.sort_by_key(|(seq, _)| *seq);
        assert_eq!(got, [(1, c(6, 2, 1)), (2, c(5, 0, 0))]);
        assert_eq!(tokens_since(&conn, 11).unwrap().len(), 2);
        assert_eq!(prune(&conn, 11).unwrap(), 1);
        let mut got = tokens_since(&conn, 0).unwrap();
        got.sort_by_key(|(seq, _)| *seq);
        assert_eq!(got, [(1, c(4, 1, 1)), (2, c(5, 0, 0))]);
    }

    /// An hour holds at most the bound of addresses; known ones keep counting, new ones past
    /// the bound go to `OTHER`, and the next hour starts afresh.
    #[test]
    fn addresses_past_the_bound_fold_into_other() {
        let conn = db();
        let rows: Vec<(i64, String, u64)> = (0..5).map(|i| (7, format!("10.0.0.{i}"), 1)).collect();
        add_clients(&conn, &rows, 3).unwrap();
        add_clients(
            &conn,
            &[(7, "10.0.0.1".into(), 4), (7, "10.0.0.9".into(), 2)],
            3,
        )
        .unwrap();
        add_clients(&conn, &[(8, "10.0.0.9".into(), 1)], 3).unwrap();
        let (top, total) = clients_since(&conn, 7, 10).unwrap();
        assert_eq!(total, 5 + 4 + 2 + 1);
        assert_eq!(
            top,
            [
                ("10.0.0.1".to_string(), 5),
                (OTHER.to_string(), 4),
                ("10.0.0.0".to_string(), 1),
                ("10.0.0.2".to_string(), 1),
                ("10.0.0.9".to_string(), 1),
            ]
        );
        let held: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM client_failures WHERE hour = 7",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(held, 4, "three addresses and other");
    }
}
