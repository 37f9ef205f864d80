//! The console's people workloads (issue 15), on one connection signed in as an
//! administrator:
//!
//! | workload         | what it sends                                                      |
//! |------------------|--------------------------------------------------------------------|
//! | `console-search` | `GET /admin/api/users?q=…&count=50` as an admin types: a name       |
//! |                  | ("Gra", "Grace", "Grace Hop"), an email fragment ("user{i}@",       |
//! |                  | "u{i}@home"), a department ("Fin", "Finance"); random names and `i`  |
//! | `console-export` | `GET /admin/api/users/export?format=csv`: every user, streamed     |
//!
//! Each search's answer is checked (status 200, a total, exactly one user for `user{i}@` and
//! for `u{i}@home`); the export must hold a header and one line per user. The search row gives
//! p50/p99 over all searches and, in its note, p99 per kind; the export row its time and the
//! server's peak RSS.

use super::*;

const PASSWORD: &str = "load benchmark password";
const ROUNDS: usize = 40;

/// A console session: the cookie and nothing else (every request here is a GET).
async fn sign_in(db: &Path, client: &mut Client, origin: &str) -> Result<String> {
    let store = Store::open(db)?;
    let code = scimd::service::admin::new_setup_code(&store)?;
    drop(store);
    let (path, body) = match code {
        Some(code) => (
            "/admin/api/setup",
            json!({"code": code, "username": "bench", "password": PASSWORD}),
        ),
        None => (
            "/admin/api/login",
            json!({"username": "bench", "password": PASSWORD}),
        ),
    };
    let headers = [("content-type", "application/json"), ("origin", origin)];
    let (status, head, body) = client
        .send_with(
            Method::POST,
            path,
            &headers,
            Some(Bytes::from(body.to_string())),
        )
        .await?;
    if status != StatusCode::OK {
        return Err(format!("console sign-in: {status}: {}", text(&body)).into());
    }
    let cookie = head
        .get(hyper::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("console sign-in set no cookie")?;
    Ok(cookie.to_string())
}

/// One search: its kind, the text, and the exact total when it is known.
fn searches(rng: &mut Rng, users: usize) -> Vec<(&'static str, String, Option<u64>)> {
    let given = GIVEN_NAMES[rng.below(GIVEN_NAMES.len())];
    let family = FAMILY_NAMES[rng.below(FAMILY_NAMES.len())];
    let i = rng.below(users);
    let department = DEPARTMENTS[rng.below(DEPARTMENTS.len())];
    let mut typed = Vec::new();
    for n in [3, given.len()] {
        typed.push(("name", given.chars().take(n).collect(), None));
    }
    typed.push(("name", format!("{given} {}", &family[..3]), None));
    typed.push(("email", format!("user{i}@"), Some(1)));
    typed.push(("email", format!("u{i}@home"), Some(1)));
    typed.push(("department", department.chars().take(3).collect(), None));
    typed.push(("department", department.to_string(), None));
    typed
}

pub(super) async fn run(
    args: &Args,
    db: &Path,
    target: &Target,
    server: &ServerProcess,
    report: &mut Report,
) -> Result<()> {
    let mut client = Client::connect(target.addr, None).await?;
    let origin = format!("http://{}", target.addr);
    let cookie = sign_in(db, &mut client, &origin).await?;
    let headers = [("cookie", cookie.as_str())];
    if args.runs(Workload::ConsoleSearch) {
        let mut rng = Rng::new(15);
        let mut all = Vec::new();
        let mut by_kind: HashMap<&str, Vec<Duration>> = HashMap::new();
        let mut errors = Errors::default();
        let started = Instant::now();
        for _ in 0..ROUNDS {
            for (kind, q, expected) in searches(&mut rng, args.users) {
                let query = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([("q", q.as_str()), ("count", "50")])
                    .finish();
                let sent = Instant::now();
                let (status, _, body) = client
                    .send_with(
                        Method::GET,
                        &format!("/admin/api/users?{query}"),
                        &headers,
                        None,
                    )
                    .await?;
                let took = sent.elapsed();
                all.push(took);
                by_kind.entry(kind).or_default().push(took);
                let total = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["total"].as_u64());
                match (status, total) {
                    (StatusCode::OK, Some(t)) if expected.is_none_or(|e| e == t) => {}
                    _ => errors.push(format!("{q:?}: {status}: {}", text(&body))),
                }
            }
        }
        let elapsed = started.elapsed();
        let latencies = Latencies::new(all);
        let mut kinds: Vec<String> = ["name", "email", "department"]
            .iter()
            .filter_map(|k| {
                let l = Latencies::new(by_kind.remove(k)?);
                Some(format!(
                    "{k} p50 {:.1} / p99 {:.1} ms",
                    ms(l.percentile(50.0)),
                    ms(l.percentile(99.0))
                ))
            })
            .collect();
        kinds.insert(0, "1 connection".into());
        let row = Row {
            workload: Workload::ConsoleSearch.name().into(),
            requests: Some(latencies.0.len()),
            throughput: Some(latencies.0.len() as f64 / elapsed.as_secs_f64()),
            p50: Some(latencies.percentile(50.0)),
            p99: Some(latencies.percentile(99.0)),
            ratio: None,
            note: kinds.join("; "),
            peak_rss_kb: None,
        }
        .with_peak_rss(server.peak_rss_kb());
        report.add(row, errors);
    }
    if args.runs(Workload::ConsoleExport) {
        let started = Instant::now();
        let (status, _, body) = client
            .send_with(
                Method::GET,
                "/admin/api/users/export?format=csv",
                &headers,
                None,
            )
            .await?;
        let elapsed = started.elapsed();
        let mut errors = Errors::default();
        let lines = body.iter().filter(|b| **b == b'\n').count();
        if status != StatusCode::OK || lines != args.users + 1 {
            errors.push(format!("{status}: {lines} lines for {} users", args.users));
        }
        let row = Row {
            workload: Workload::ConsoleExport.name().into(),
            requests: Some(1),
            throughput: Some(1.0 / elapsed.as_secs_f64()),
            p50: Some(elapsed),
            p99: Some(elapsed),
            ratio: None,
            note: format!(
                "{} users, CSV, {:.1} MB in {:.1} s ({:.0} users/s)",
                args.users,
                body.len() as f64 / 1e6,
                elapsed.as_secs_f64(),
                args.users as f64 / elapsed.as_secs_f64()
            ),
            peak_rss_kb: None,
        }
        .with_peak_rss(server.peak_rss_kb());
        report.add(row, errors);
    }
    Ok(())
}
