//! Work without a bound and its edges: the read time budget, the PATCH cost limit, scans
//! that must not starve lookups; every sort key; requests whose client hangs up; duplicate
//! keys and depth in request bodies.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// Every attribute and sub-attribute `/Schemas` lists (bare and URN-qualified) and the common
/// ones, as `sortBy` on `/Users` and `/Groups`: sorted (200) or refused (400), never a 5xx.
#[tokio::test]
async fn every_sort_key_sorts_or_is_refused() {
    let s = Server::start().await;
    let user = s
        .create_user(&json!({"userName": "a", "emails": [{"value": "a@x.org"}]}))
        .await;
    s.create_group(&json!({"displayName": "g", "members": [{"value": id_of(&user)}]}))
        .await;
    let schemas = s.get("/scim/v2/Schemas").await.json();
    let mut paths: Vec<(String, String)> = Vec::new();
    for schema in schemas["Resources"].as_array().unwrap() {
        let urn = schema["id"].as_str().unwrap();
        let endpoint = if urn == GROUP_URN { "Groups" } else { "Users" };
        for attr in schema["attributes"].as_array().unwrap() {
            let name = attr["name"].as_str().unwrap().to_string();
            let mut names = vec![name.clone()];
            for sub in attr["subAttributes"].as_array().into_iter().flatten() {
                names.push(format!("{name}.{}", sub["name"].as_str().unwrap()));
            }
            for n in names {
                paths.push((endpoint.into(), format!("{urn}:{n}")));
                paths.push((endpoint.into(), n));
            }
        }
    }
    let common = ["id", "externalId", "meta", "schemas"].map(String::from);
    let meta = [
        "created",
        "lastModified",
        "resourceType",
        "location",
        "version",
    ];
    for endpoint in ["Users", "Groups"] {
        for path in common
            .iter()
            .cloned()
            .chain(meta.map(|m| format!("meta.{m}")))
        {
            paths.push((endpoint.into(), path));
        }
    }
    assert!(paths.len() > 100, "{}", paths.len());
    let mut sorted = 0;
    for (endpoint, path) in &paths {
        for extra in ["", "&sortOrder=descending", "&filter=id%20pr"] {
            let r = s
                .get(&format!(
                    "/scim/v2/{endpoint}?sortBy={}{extra}",
                    form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
                ))
                .await;
            match r.status {
                200 => sorted += 1,
                400 => {
                    r.assert_error(400, Some("invalidValue"));
                }
                _ => panic!(
                    "{endpoint} sortBy={path}{extra}: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ),
            }
        }
    }
    assert!(sorted > 100, "only {sorted} sorted");
    for endpoint in ["Users", "Groups"] {
        let r = s
            .get(&format!("/scim/v2/{endpoint}?sortBy=meta.resourceType"))
            .await;
        assert_eq!(r.json()["totalResults"], 1, "{endpoint}");
    }
}

/// A key given twice in one object is refused at any level, naming the key, and changes
/// nothing; before, the last one silently won.
#[tokio::test]
async fn duplicate_keys_are_refused_at_every_level() {
    let s = Server::start().await;
    for body in [
        r#"{"userName": "a", "userName": "b"}"#,
        r#"{"userName": "a", "name": {"givenName": "x", "givenName": "y"}}"#,
        r#"{"userName": "a", "emails": [{"value": "a@x.org", "value": "b@x.org"}]}"#,
    ] {
        let r = s.call("POST", "/scim/v2/Users", Some(body)).await;
        let detail = r.assert_error(400, Some("invalidSyntax"))["detail"].to_string();
        assert!(detail.contains("more than once"), "{body}: {detail}");
    }
    assert_eq!(s.filter("Users", "userName pr").await["totalResults"], 0);
    let id = id_of(&s.create_user(&json!({"userName": "ana"})).await);
    let patch = r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "x", "value": "y"}]}"#;
    let r = s
        .call("PATCH", &format!("/scim/v2/Users/{id}"), Some(patch))
        .await;
    let detail = r.assert_error(400, Some("invalidSyntax"))["detail"].to_string();
    assert!(detail.contains("\\\"value\\\""), "{detail}");
    let user = s.get(&format!("/scim/v2/Users/{id}")).await.json();
    assert!(user.get("title").is_none(), "{user}");
}

/// README: JSON nested deeper than 128 levels is refused; 128 levels are accepted.
#[tokio::test]
async fn json_nesting_is_accepted_to_exactly_128_levels() {
    let s = Server::start().await;
    // The body object is level 1; a key of the Group schema (ignored on a user) carries the
    // rest (undeclared extension data is kept, so bounded more tightly).
    let body = |levels: usize| {
        format!(
            r#"{{"userName": "deep{levels}", "urn:ietf:params:scim:schemas:core:2.0:Group": {}{}}}"#,
            "[".repeat(levels - 1),
            "]".repeat(levels - 1)
        )
    };
    let r = s.call("POST", "/scim/v2/Users", Some(&body(128))).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = s.call("POST", "/scim/v2/Users", Some(&body(129))).await;
    let detail = r.assert_error(400, Some("invalidSyntax"))["detail"].to_string();
    assert!(detail.contains("deeper than 128"), "{detail}");
}

/// A client that hangs up before its answer (here: while its create waits for the database)
/// still gets a log line and leaves `/metrics` as it found it; the write itself completes.
#[test]
fn a_request_whose_client_hangs_up_is_logged_and_counted() {
    use std::io::Write;
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let token = cli_token(db, "idp");
    let (child, addr, lines) = spawn_server(db, &["--metrics-token", "m3trics-secret"]);
    let _child = KillOnDrop(child);
    let log = log_channel(lines);
    // Another connection holds SQLite's write lock: the create waits for it.
    let lock = rusqlite::Connection::open(db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    {
        let body = r#"{"userName": "gone"}"#;
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            conn,
            "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let line = wait_for(&log, "client went away");
    assert!(
        line.contains("status=499") && line.contains("/scim/v2/Users"),
        "{line}"
    );
    lock.execute_batch("COMMIT").unwrap();
    let wait = std::time::Duration::from_secs(5);
    let auth = format!("Authorization: Bearer {token}");
    let lookup = format!("GET /scim/v2/Users?filter=userName%20eq%20%22gone%22 HTTP/1.1\r\n{auth}");
    let deadline = std::time::Instant::now() + wait;
    while !http_once(&addr, &lookup, "", wait)
        .unwrap()
        .contains("\"totalResults\":1")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the create never committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let metrics = http_once(
        &addr,
        "GET /metrics HTTP/1.1\r\nAuthorization: Bearer m3trics-secret",
        "",
        wait,
    )
    .unwrap();
    // In flight: only the scrape itself.
    assert!(
        metrics.contains("\nscimd_http_requests_in_flight 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"scimd_http_requests_total{method="POST",route="/scim/v2/Users",status="499"} 1"#
        ),
        "{metrics}"
    );
}

/// `n` users (`user0`, … with three emails each), written straight into the database in
/// `dir` before a server starts on it: far quicker than `n` POSTs.
fn seed_users(dir: &tempfile::TempDir, n: usize) {
    let store = scimd::store::Store::open(&dir.path().join("scimd.db")).unwrap();
    store
        .write_sync(|tx| {
            for i in 0..n {
                let serde_json::Value::Object(doc) = json!({
                    "userName": format!("user{i}"),
                    "emails": [{"value": format!("a{i}@x.org")}, {"value": format!("b{i}@x.org")},
                               {"value": format!("c{i}@x.org"), "primary": true}],
                }) else {
                    unreachable!()
                };
                scimd::store::users::insert(
                    tx,
                    &format!("id-{i}"),
                    doc,
                    "2026-01-01T00:00:00.000Z",
                )?;
            }
            Ok(())
        })
        .unwrap();
}

/// A filter no index answers: `terms` substring tests of every email, none matching.
fn heavy_filter(terms: usize) -> String {
    let terms: Vec<String> = (0..terms)
        .map(|i| format!("emails.value co \"zz{i}\""))
        .collect();
    filter_query(&terms.join(" or "))
}

/// A scan past the read budget is answered 400 tooMany (RFC 7644 §3.12: a filter more
/// expensive than the server will evaluate) instead of running for as long as it takes; the
/// reader it held serves the next requests.
#[tokio::test]
async fn a_scan_over_the_read_budget_is_too_many() {
    let dir = tempfile::TempDir::new().unwrap();
    seed_users(&dir, 6000);
    let s = Server::start_in(dir, |mut c| {
        c.budget.read = Duration::from_millis(100);
        c
    })
    .await;
    let r = s
        .get(&format!("/scim/v2/Users?{}", heavy_filter(140)))
        .await;
    let detail = r.assert_error(400, Some("tooMany"))["detail"].to_string();
    assert!(detail.contains("narrow"), "{detail}");
    // Every reader still answers: more reads than there are pooled connections.
    for i in 0..20 {
        let found = s.filter("Users", &format!("userName eq \"user{i}\"")).await;
        assert_eq!(found["totalResults"], 1);
    }
    let page = s.get("/scim/v2/Users?count=5").await.json();
    assert_eq!(page["totalResults"], 6000);
}

/// Eight heavy scans at once hold at most the scan permits' worth of readers, so an indexed
/// lookup sent while they run is answered before any of them; before, the scans took every
/// reader and the lookup waited for one to finish.
#[tokio::test]
async fn lookups_are_answered_while_heavy_scans_run() {
    let dir = tempfile::TempDir::new().unwrap();
    seed_users(&dir, 6000);
    let s = std::sync::Arc::new(
        Server::start_in(dir, |mut c| {
            c.budget.read = Duration::from_millis(1500);
            c.budget.scans = 1;
            c
        })
        .await,
    );
    let scans: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.get(&format!("/scim/v2/Users?{}", heavy_filter(140)))
                    .await
            })
        })
        .collect();
    // Long enough for every scan to be under way, well within the budget.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let found = s.filter("Users", "userName eq \"user5999\"").await;
    assert_eq!(found["totalResults"], 1);
    assert!(
        scans.iter().all(|scan| !scan.is_finished()),
        "a scan was answered before the lookup"
    );
    for scan in scans {
        let r = scan.await.unwrap();
        match r.status {
            400 => {
                r.assert_error(400, Some("tooMany"));
            }
            503 => {
                r.assert_error(503, None);
                assert_eq!(r.header("retry-after"), Some("1"));
            }
            other => panic!("scan answered {other}"),
        }
    }
}

/// `count` remove operations on `attr[…]`, each a `terms`-term filter matching nothing.
fn costly_removes(attr: &str, count: usize, terms: usize) -> serde_json::Value {
    let filter: Vec<String> = (0..terms).map(|i| format!("value co \"z{i}\"")).collect();
    let op = json!({"op": "remove", "path": format!("{attr}[{}]", filter.join(" or "))});
    serde_json::Value::Array(vec![op; count])
}

/// A PATCH past the cost limit (values visited × filter terms, summed over its operations)
/// is refused as 400 tooMany and changes nothing; before, it held the single writer for as
/// long as it took (233 operations of 199 terms over 20,000 emails: 102 s).
#[tokio::test]
async fn a_patch_over_the_cost_limit_is_too_many() {
    let dir = tempfile::TempDir::new().unwrap();
    seed_users(&dir, 5000);
    let s = Server::start_in(dir, |c| c).await;
    let emails: Vec<_> = (0..5000)
        .map(|i| json!({"value": format!("{i}@x.org")}))
        .collect();
    let user = s
        .create_user(&json!({"userName": "many", "emails": emails}))
        .await;
    let members: Vec<_> = (0..5000)
        .map(|i| json!({"value": format!("id-{i}")}))
        .collect();
    let group = s
        .create_group(&json!({"displayName": "big", "members": members}))
        .await;
    for (path, attr, resource) in [("Users", "emails", &user), ("Groups", "members", &group)] {
        let url = format!("/scim/v2/{path}/{}", id_of(resource));
        // 5000 values × 201 terms: over the limit of 1,000,000 in one operation, refused
        // before it is evaluated.
        let r = s.patch(&url, &costly_removes(attr, 1, 201)).await;
        let detail = r.assert_error(400, Some("tooMany"))["detail"].to_string();
        assert!(detail.contains("1000000"), "{detail}");
        let after = s.get(&url).await.json();
        assert_eq!(
            after["meta"]["version"], resource["meta"]["version"],
            "{path}"
        );
        // Within the limit the same operations are evaluated: their filters match no email,
        // which is noTarget (RFC 7644 §3.5.2.3), while member removals tolerate it (Decision 4).
        let r = s.patch(&url, &costly_removes(attr, 2, 10)).await;
        if attr == "emails" {
            r.assert_error(400, Some("noTarget"));
        } else {
            assert!(
                matches!(r.status, 200 | 204),
                "{}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}
