//! The crash test: the real binary takes concurrent SCIM writes and is killed with SIGKILL at
//! a random moment, 20 times over. After each kill the database must hold every write that got
//! a 2xx, show nothing half-applied, have their change events (and no event is without its
//! change), and pass `PRAGMA integrity_check`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::common::{cli_token, http_once, spawn_server};

const ROUNDS: u64 = 20;
const WRITERS: usize = 4;

/// One request on its own connection: the status, or `None` if the server went away.
fn send(addr: &str, head: &str, body: &str) -> Option<u16> {
    let reply = http_once(addr, head, body, Duration::from_secs(5)).ok()?;
    reply.get(9..12)?.parse().ok()
}

/// The server, with its log drained so it never blocks on a full pipe.
fn start(db: &str) -> (std::process::Child, String) {
    let (child, addr, lines) = spawn_server(db, &[]);
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[test]
fn acknowledged_writes_survive_sigkill_at_random_moments() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("crash.db");
    let db = db.to_str().unwrap().to_string();
    let token = cli_token(&db, "crash");
    let auth = format!("Authorization: Bearer {token}");
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut seed: u64 = 0x5eed_cafe;
    let mut total_acknowledged = 0;
    for round in 0..ROUNDS {
        let (mut server, addr) = start(&db);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (addr, auth, stop, acked) =
                    (addr.clone(), auth.clone(), stop.clone(), acknowledged.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let name = format!("r{round}-w{w}-{n}");
                        let body = format!(
                            "{{\"userName\":\"{name}\",\"emails\":[{{\"value\":\"{name}@example.com\"}}]}}"
                        );
                        let head = format!("POST /scim/v2/Users HTTP/1.1\r\n{auth}");
                        match send(&addr, &head, &body) {
                            Some(201) => acked.lock().unwrap().push(name),
                            Some(status) => panic!("{name}: status {status}"),
                            None => return,
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        // A pseudo-random moment between 20 and 220 ms into the writes.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 200));
        server.kill().unwrap(); // SIGKILL: no drain, no shutdown code.
        server.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }

        let conn = Connection::open(&db).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "round {round}");
        let acked = acknowledged.lock().unwrap();
        total_acknowledged = acked.len();
        let mut present = conn
            .prepare("SELECT COUNT(*) FROM users WHERE user_name_fold = ?1")
            .unwrap();
        for name in acked.iter() {
            let n: i64 = present.query_row([name], |r| r.get(0)).unwrap();
            assert_eq!(n, 1, "round {round}: acknowledged {name} is missing");
        }
        // Nothing half-applied: every stored user has its email row and its audit entry,
        // written in the same transaction.
        let orphans: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM users u
                 WHERE NOT EXISTS (SELECT 1 FROM user_emails e WHERE e.user_seq = u.seq)
                    OR NOT EXISTS (SELECT 1 FROM audit a
                                   WHERE a.action = 'user.create' AND a.resource_id = u.id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0, "round {round}: half-applied writes");
        // An event exists if and only if its change does: one user.created per stored user,
        // none for a user that is not there.
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        let announced = "SELECT json_extract(payload, '$.resource.id') FROM events
                         WHERE type = 'user.created'";
        assert_eq!(
            count(&format!("SELECT COUNT(*) FROM ({announced})")),
            count("SELECT COUNT(*) FROM users"),
            "round {round}: one event per user"
        );
        let unannounced = count(&format!(
            "SELECT COUNT(*) FROM (SELECT id FROM users EXCEPT {announced})"
        ));
        let phantom = count(&format!(
            "SELECT COUNT(*) FROM ({announced} EXCEPT SELECT id FROM users)"
        ));
        assert_eq!(
            (unannounced, phantom),
            (0, 0),
            "round {round}: events iff changes"
        );
    }
    eprintln!("crash test: {ROUNDS} rounds, {total_acknowledged} writes acknowledged, 0 lost");
    assert!(
        total_acknowledged > ROUNDS as usize,
        "the writers barely wrote"
    );
}
