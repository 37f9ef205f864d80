//! Change events and the change feed (`GET /api/v1/events`): every event type from a
//! OneLogin sequence, events if and only if changes, bounded membership events, paging,
//! types, long polls, 410 past retention or past the newest event, and authentication.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use scimd::service::audit::Actor;
use scimd::service::tokens::{self, Scope};
use scimd::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// OneLogin's rendered v2 template (as in `idp_onelogin`), with a password it may send.
fn template(user_name: &str, title: &str, active: &str) -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE_URN],
        "userName": user_name,
        "externalId": format!("ol-{user_name}"),
        "name": {"givenName": "Jane", "familyName": "Doe", "formatted": "Jane Doe"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "password": "Sup3r-secret!",
        "title": title,
        "active": active,
        ENTERPRISE_URN: {"department": "R&D"}
    })
}

/// The feed page at `query`, asserting 200.
async fn feed(s: &Server, query: &str) -> Value {
    let r = s.get(&format!("/api/v1/events?{query}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

/// Reads every event after `cursor`, advancing it; the events.
async fn since(s: &Server, cursor: &mut String) -> Vec<Value> {
    let page = feed(s, &format!("after={cursor}&limit=1000")).await;
    *cursor = page["next"].as_str().unwrap().to_string();
    page["events"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn change<'a>(e: &'a Value, path: &str) -> Option<&'a Value> {
    e["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
}

#[tokio::test]
async fn a_onelogin_sequence_yields_every_event_type_and_events_exist_iff_changes_do() {
    let s = Server::start().await;
    let mut cursor = "0".to_string();

    // Create: one user.created, the resource named, the password nowhere.
    let jane = s
        .create_user(&template("jane@example.com", "Engineer", "true"))
        .await;
    let jid = id_of(&jane);
    let ev = since(&s, &mut cursor).await;
    assert_eq!(types(&ev), ["user.created"]);
    let e = &ev[0];
    assert_eq!(e["id"], "1");
    assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
    assert_eq!(e["actor"]["kind"], "token");
    assert!(e["actor"]["name"].as_str().unwrap().starts_with("test-"));
    assert_eq!(
        e["resource"],
        json!({"type": "User", "id": jid, "userName": "jane@example.com",
               "externalId": "ol-jane@example.com", "name": "Jane Doe"})
    );
    assert_eq!(change(e, "title").unwrap()["after"], "Engineer");
    assert_eq!(
        change(e, &format!("{ENTERPRISE_URN}:department")).unwrap()["after"],
        "R&D"
    );
    assert!(!e.to_string().contains("Sup3r"), "no secret: {e}");

    // The same PUT again (OneLogin's sync) changes nothing: no event. A rejected write none.
    let put = |body: Value| {
        let s = &s;
        let path = format!("/scim/v2/Users/{jid}");
        async move { s.put(&path, &body).await }
    };
    assert_eq!(
        put(template("jane@example.com", "Engineer", "true"))
            .await
            .status,
        200
    );
    put(template("jane@example.com", "Engineer", "{$user.active}"))
        .await
        .assert_error(400, Some("invalidValue"));
    assert_eq!(since(&s, &mut cursor).await, Vec::<Value>::new());

    // Update, suspend (carrying the title change made with it), reactivate.
    put(template("jane@example.com", "Lead", "true")).await;
    put(template("jane@example.com", "Manager", "false")).await;
    put(template("jane@example.com", "Manager", "true")).await;
    let ev = since(&s, &mut cursor).await;
    assert_eq!(
        types(&ev),
        ["user.updated", "user.deactivated", "user.reactivated"]
    );
    assert_eq!(
        change(&ev[0], "title").unwrap(),
        &json!({"path": "title", "before": "Engineer", "after": "Lead"})
    );
    assert_eq!(
        change(&ev[1], "active").unwrap(),
        &json!({"path": "active", "before": true, "after": false})
    );
    assert_eq!(change(&ev[1], "title").unwrap()["after"], "Manager");
    assert_eq!(change(&ev[2], "active").unwrap()["after"], true);

    // Groups: created with a member, a member added, one removed, a repeated add (nothing),
    // a rename keeping the members.
    let ana = s.create_user(&json!({"userName": "ana@example.com"})).await;
    let aid = id_of(&ana);
    let g = s
        .create_group(
            &json!({"schemas": [GROUP_URN], "displayName": "Engineering",
            "externalId": "ol-eng", "members": [{"value": jid}]}),
        )
        .await;
    let gid = id_of(&g);
    let group_path = format!("/scim/v2/Groups/{gid}");
    let add_ana = json!([{"op": "add", "path": "members", "value": [{"value": aid}]}]);
    assert!(s.patch(&group_path, &add_ana).await.status < 300);
    let remove_jane = json!([{"op": "remove", "path": format!("members[value eq \"{jid}\"]")}]);
    assert!(s.patch(&group_path, &remove_jane).await.status < 300);
    assert!(s.patch(&group_path, &add_ana).await.status < 300);
    let renamed = json!({"schemas": [GROUP_URN], "displayName": "Platform",
        "externalId": "ol-eng", "members": [{"value": aid}]});
    assert_eq!(s.put(&group_path, &renamed).await.status, 200);
    let ev = since(&s, &mut cursor).await;
    assert_eq!(
        types(&ev),
        [
            "user.created",
            "group.created",
            "group.members_added",
            "group.members_added",
            "group.members_removed",
            "group.updated"
        ]
    );
    let eng = json!({"type": "Group", "id": gid, "displayName": "Engineering",
                     "externalId": "ol-eng"});
    assert_eq!(ev[1]["resource"], eng);
    assert_eq!(
        ev[2]["members"],
        json!([{"id": jid, "type": "User", "name": "jane@example.com"}])
    );
    assert_eq!(
        ev[3]["members"],
        json!([{"id": aid, "type": "User", "name": "ana@example.com"}])
    );
    assert_eq!(ev[4]["members"][0]["id"], json!(jid));
    assert_eq!(
        ev[5]["changes"],
        json!([{"path": "displayName", "before": "Engineering", "after": "Platform"}])
    );
    assert_eq!(ev[5]["resource"]["displayName"], "Platform");

    // Deletes: the user (its group loses it), the group, the other user.
    assert_eq!(s.delete(&format!("/scim/v2/Users/{aid}")).await.status, 204);
    assert_eq!(s.delete(&group_path).await.status, 204);
    assert_eq!(s.delete(&format!("/scim/v2/Users/{jid}")).await.status, 204);
    s.delete(&format!("/scim/v2/Users/{jid}"))
        .await
        .assert_error(404, None);
    let ev = since(&s, &mut cursor).await;
    assert_eq!(
        types(&ev),
        [
            "user.deleted",
            "group.members_removed",
            "group.deleted",
            "user.deleted"
        ]
    );
    assert_eq!(ev[0]["resource"]["userName"], "ana@example.com");
    assert_eq!(ev[1]["resource"]["id"], json!(gid));
    assert_eq!(ev[1]["members"][0]["id"], json!(aid));
    assert_eq!(ev[2]["resource"]["displayName"], "Platform");

    // Ids are the commit order, with no gaps: one event per change above.
    let all = feed(&s, "limit=1000").await;
    let ids: Vec<i64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
    assert_eq!(all["next"], json!(ids.len().to_string()));
}

#[tokio::test]
async fn a_large_membership_change_is_split_into_events_of_at_most_a_thousand_members() {
    let s = Server::start().await;
    let mut members = Vec::new();
    for chunk in (0..1001).collect::<Vec<_>>().chunks(50) {
        let made = futures_util::future::join_all(chunk.iter().map(|n| {
            let s = &s;
            async move { s.create_user(&json!({"userName": format!("u{n}")})).await }
        }))
        .await;
        members.extend(made.iter().map(|u| json!({"value": id_of(u)})));
    }
    let mut cursor = "1001".to_string();
    s.create_group(&json!({"displayName": "All", "members": members}))
        .await;
    let ev = since(&s, &mut cursor).await;
    assert_eq!(
        types(&ev),
        [
            "group.created",
            "group.members_added",
            "group.members_added"
        ]
    );
    assert_eq!(ev[1]["members"].as_array().unwrap().len(), 1000);
    assert_eq!(ev[2]["members"].as_array().unwrap().len(), 1);
    let mut named: Vec<String> = ev[1..]
        .iter()
        .flat_map(|e| e["members"].as_array().unwrap().clone())
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    named.sort();
    named.dedup();
    assert_eq!(named.len(), 1001, "every member once");
}

#[tokio::test]
async fn the_feed_pages_with_limit_and_filters_by_type() {
    let s = Server::start().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(id_of(
            &s.create_user(&json!({"userName": format!("p{n}")})).await,
        ));
    }
    let off = json!([{"op": "replace", "path": "active", "value": false}]);
    s.patch(&format!("/scim/v2/Users/{}", ids[2]), &off).await;
    // Pages of two, in order, each `next` the last served.
    let mut got = Vec::new();
    let mut after = String::new();
    loop {
        let page = feed(&s, &format!("after={after}&limit=2")).await;
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        if events.is_empty() {
            assert_eq!(page["next"], "6");
            break;
        }
        after = page["next"].as_str().unwrap().to_string();
        assert_eq!(events.last().unwrap()["id"], json!(after));
        got.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
    }
    assert_eq!(got, ["1", "2", "3", "4", "5", "6"]);
    // A filtered reader sees its type and advances to the newest event.
    let page = feed(&s, "types=user.deactivated,user.deleted").await;
    assert_eq!(
        types(page["events"].as_array().unwrap()),
        ["user.deactivated"]
    );
    assert_eq!(page["events"][0]["resource"]["id"], json!(ids[2]));
    assert_eq!(page["next"], "6");
    let page = feed(&s, "types=user.deleted").await;
    assert_eq!(page, json!({"events": [], "next": "6"}));
    let page = feed(&s, "after=now").await;
    assert_eq!(page, json!({"events": [], "next": "6"}));
    for bad in ["types=user.suspended", "limit=0", "limit=1001", "after=x"] {
        s.get(&format!("/api/v1/events?{bad}"))
            .await
            .assert_error(400, Some("invalidValue"));
    }
    s.call("POST", "/api/v1/events", Some("{}"))
        .await
        .assert_error(405, None);
}

#[tokio::test]
async fn a_long_poll_answers_on_the_next_matching_commit_and_advances_at_its_deadline() {
    let s = Server::start().await;
    s.create_user(&json!({"userName": "first"})).await;
    // Waiting for anything after the newest: answered by the next commit, not the deadline.
    let waiting = {
        let (addr, token) = (s.addr, s.token.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let r = get_with(addr, &token, "/api/v1/events?after=1&wait=30").await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written = Instant::now();
    s.create_user(&json!({"userName": "second"})).await;
    let (page, took) = waiting.await.unwrap();
    assert!(
        took < Duration::from_secs(10) && written.elapsed() < Duration::from_secs(5),
        "answered by the commit, not the 30-s deadline: {took:?}"
    );
    assert_eq!(types(page["events"].as_array().unwrap()), ["user.created"]);
    assert_eq!(page["events"][0]["resource"]["userName"], "second");
    assert_eq!(page["next"], "2");

    // Within 100 ms of the commit: from the start of the write (its commit comes before its
    // answer) to the waiter's answer. The median of five, so one scheduling hiccup of a busy
    // test machine does not decide it; a consumer that is woken by polling would miss it.
    let mut delays = Vec::new();
    for n in 0..5 {
        let after = 2 + n;
        let waiting = {
            let (addr, token) = (s.addr, s.token.clone());
            tokio::spawn(async move {
                get_with(
                    addr,
                    &token,
                    &format!("/api/v1/events?after={after}&wait=30"),
                )
                .await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let write = Instant::now();
        s.create_user(&json!({"userName": format!("woken{n}")}))
            .await;
        delays.push(waiting.await.unwrap().saturating_duration_since(write));
    }
    delays.sort();
    assert!(
        delays[2] < Duration::from_millis(100),
        "long polls answered {delays:?} after the write began"
    );

    // A filtered wait: other commits do not answer it; at its deadline it answers with no
    // events and `next` at the newest, so the consumer does not read them again.
    let waiting = {
        let (addr, token) = (s.addr, s.token.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let r = get_with(
                addr,
                &token,
                "/api/v1/events?after=7&wait=2&types=user.deleted",
            )
            .await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.create_user(&json!({"userName": "third"})).await;
    let (page, took) = waiting.await.unwrap();
    assert_eq!(page, json!({"events": [], "next": "8"}));
    assert!(took >= Duration::from_millis(1900), "waited: {took:?}");
}

/// `GET path` with `token` on a fresh connection; the JSON body, asserting 200.
async fn get_with(addr: std::net::SocketAddr, token: &str, path: &str) -> Value {
    let out = tokio::task::spawn_blocking({
        let (addr, head) = (
            addr.to_string(),
            format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer {token}"),
        );
        move || http_once(&addr, &head, "", Duration::from_secs(60))
    })
    .await
    .unwrap()
    .unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn shutdown_ends_long_polls_at_once() {
    let mut s = Server::start().await;
    let waiting = {
        let (addr, token) = (s.addr, s.token.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let r = get_with(addr, &token, "/api/v1/events?after=now&wait=60").await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.signal_shutdown();
    let (page, took) = waiting.await.unwrap();
    assert_eq!(page, json!({"events": [], "next": "0"}));
    assert!(
        took < Duration::from_secs(10),
        "not held to its wait: {took:?}"
    );
}

#[tokio::test]
async fn a_position_whose_events_were_pruned_or_past_the_newest_is_gone() {
    let s = Server::start().await;
    for n in 0..5 {
        s.create_user(&json!({"userName": format!("r{n}")})).await;
    }
    s.get("/api/v1/events?after=6")
        .await
        .assert_error(410, None);
    let dir = s.stop().await;
    // Keep two events: pruning runs at start.
    let s = Server::start_in(dir, |mut c| {
        c.event_retention.max_rows = 2;
        c
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while feed(&s, "").await["events"].as_array().unwrap().len() > 2 {
        assert!(Instant::now() < deadline, "pruned at start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = feed(&s, "").await;
    let ids: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["4", "5"]);
    let gone = s
        .get("/api/v1/events?after=2")
        .await
        .assert_error(410, None);
    assert_eq!(gone["oldest"], "4");
    assert_eq!(gone["head"], "5");
    assert!(
        gone["detail"].as_str().unwrap().contains("resync"),
        "{gone}"
    );
    // The position just before the oldest kept still continues.
    assert_eq!(feed(&s, "after=3").await["events"][0]["id"], "4");
    assert_eq!(feed(&s, "after=5").await["events"], json!([]));
    // Past the newest: the database is older than the consumer's cursor (a restore).
    let gone = s
        .get("/api/v1/events?after=9&wait=5")
        .await
        .assert_error(410, None);
    assert_eq!(gone["head"], "5");
}

/// After `scimd restore`, positions the replaced history handed out are gone (410, the
/// consumer saw changes the restore undid), and new events take ids that history never
/// used, so the backup's own positions go on without being served other events under ids
/// they have seen. Restoring onto a new machine (the old head unknown) jumps far past it.
#[tokio::test]
async fn after_a_restore_the_replaced_history_s_positions_are_gone_and_its_ids_never_reused() {
    let s = Server::start().await;
    for n in 0..2 {
        s.create_user(&json!({"userName": format!("kept{n}")}))
            .await;
    }
    let backup = s.dir.path().join("backup.db");
    let db = s.db();
    let (db_arg, backup_arg) = (db.to_str().unwrap(), backup.to_str().unwrap());
    let out = scimd(&["backup", backup_arg, "--db", db_arg]);
    assert!(out.status.success(), "{out:?}");
    for n in 0..2 {
        s.create_user(&json!({"userName": format!("lost{n}")}))
            .await;
    }
    assert_eq!(feed(&s, "after=now").await["next"], "4");
    let dir = s.stop().await;
    let db = db_path(&dir);
    let out = scimd(&["restore", backup_arg, "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let s = Server::start_in(dir, |c| c).await;
    for lost in ["3", "4"] {
        let gone = s
            .get(&format!("/api/v1/events?after={lost}"))
            .await
            .assert_error(410, None);
        assert!(
            gone["detail"].as_str().unwrap().contains("restore"),
            "{gone}"
        );
    }
    // The backup's newest position continues past the ids the lost history used.
    let page = feed(&s, "after=2").await;
    assert_eq!(
        (page["events"].clone(), page["next"].clone()),
        (json!([]), json!("5"))
    );
    let made = s.create_user(&json!({"userName": "new"})).await;
    let page = feed(&s, "after=2").await;
    assert_eq!(page["events"][0]["id"], "6", "{page}");
    assert_eq!(page["events"][0]["resource"]["id"], made["id"]);
    assert_eq!(feed(&s, "after=5").await["events"][0]["id"], "6");
    // A filtered read from there moves on too (its bound starts past the unused ids).
    let page = feed(&s, "after=2&types=group.created").await;
    assert_eq!(page["next"], "6", "{page}");
    s.get("/api/v1/events?after=4")
        .await
        .assert_error(410, None);
    assert_eq!(
        feed(&s, "after=0").await["events"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Onto a new machine: the replaced history is unknown.
    let elsewhere = s.dir.path().join("elsewhere.db");
    let out = scimd(&["restore", backup_arg, "--db", elsewhere.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let head = Store::open_existing(&elsewhere)
        .unwrap()
        .read_sync(scimd::store::events::head)
        .unwrap();
    assert_eq!(head, 2 + scimd::store::events::UNKNOWN_JUMP + 1);
}

#[tokio::test]
async fn the_feed_needs_a_token() {
    let s = Server::start().await;
    let r = s.raw("GET", "/api/v1/events", &[], None).await;
    r.assert_error(401, None);
    assert!(r.header("www-authenticate").is_some());
    let r = s
        .raw(
            "GET",
            "/api/v1/events?wait=30",
            &[("authorization", "Bearer scimd_not-a-token")],
            None,
        )
        .await;
    r.assert_error(401, None);
    // Even the wrong method is not answered before the token.
    s.raw("DELETE", "/api/v1/events", &[], None)
        .await
        .assert_error(401, None);
    // On record as a SCIM route's failures are (written within about a second).
    let store = scimd::store::Store::open(&s.db()).unwrap();
    let q = || scimd::store::audit::Query {
        limit: 100,
        ..Default::default()
    };
    let mut failed = Vec::new();
    for _ in 0..50 {
        failed = store
            .read_sync(|c| scimd::store::audit::list(c, &q()))
            .unwrap();
        failed.retain(|e| e.outcome == "failure" && e.action == "GET /api/v1/events");
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!failed.is_empty(), "the refused feed requests are audited");
    assert!(
        failed
            .iter()
            .all(|e| e.status == 401 && e.actor_kind == "anonymous")
    );
}

#[tokio::test]
async fn concurrent_writes_sharing_a_commit_leave_events_only_for_those_that_succeeded() {
    let s = Server::start().await;
    let answers = futures_util::future::join_all((0..40).map(|n| {
        let s = &s;
        async move {
            let r = s
                .post(
                    "/scim/v2/Users",
                    &json!({"userName": format!("dup{}", n % 10)}),
                )
                .await;
            (r.status, r.json())
        }
    }))
    .await;
    let mut made: Vec<String> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, u)| id_of(u))
        .collect();
    assert_eq!(made.len(), 10, "one of each name");
    assert!(answers.iter().all(|(st, _)| *st == 201 || *st == 409));
    let page = feed(&s, "limit=1000").await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(types(events), ["user.created"; 10]);
    let mut announced: Vec<String> = events
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    made.sort();
    announced.sort();
    assert_eq!(
        announced, made,
        "an event for each committed change, none for refused ones"
    );
    assert_eq!(
        page["next"], "10",
        "ids were not spent on rolled-back events"
    );
}

#[tokio::test]
async fn deleting_a_nested_group_tells_the_groups_it_was_in() {
    let s = Server::start().await;
    let child = id_of(&s.create_group(&json!({"displayName": "Child"})).await);
    let parent = s
        .create_group(&json!({"displayName": "Parent", "members": [{"value": child}]}))
        .await;
    let mut cursor = "0".to_string();
    let ev = since(&s, &mut cursor).await;
    assert_eq!(
        types(&ev),
        ["group.created", "group.created", "group.members_added"]
    );
    assert_eq!(
        ev[2]["members"],
        json!([{"id": child, "type": "Group", "name": "Child"}])
    );
    assert_eq!(
        s.delete(&format!("/scim/v2/Groups/{child}")).await.status,
        204
    );
    let ev = since(&s, &mut cursor).await;
    assert_eq!(types(&ev), ["group.deleted", "group.members_removed"]);
    assert_eq!(ev[1]["resource"]["id"], parent["id"]);
    assert_eq!(ev[1]["members"][0]["id"], json!(child));
}

/// A read token called `name` on the server's database.
fn reader(s: &Server, name: &str) -> String {
    let store = Store::open(&s.db()).unwrap();
    tokens::create_as(&store, name, Scope::Read, &Actor::cli()).unwrap()
}

/// `GET path` with `token` from the local address `from`: the status and the whole answer.
async fn get_from(to: SocketAddr, from: IpAddr, token: &str, path: &str) -> (u16, String) {
    let mut conn = connect_from(from, to).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), conn.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, reply)
}

/// Starts `n` long polls with `token` from `from`, each expected to end 200 with the next
/// event.
fn wait_from(
    s: &Server,
    from: IpAddr,
    token: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(u16, String)>> {
    (0..n)
        .map(|_| {
            let (to, token) = (s.addr, token.to_string());
            tokio::spawn(async move {
                get_from(to, from, &token, "/api/v1/events?after=0&wait=30").await
            })
        })
        .collect()
}

#[tokio::test]
async fn at_most_64_requests_wait_and_another_is_told_to_retry() {
    let s = Server::start().await;
    // Eight readers from eight addresses, each within its own share: 64 in all.
    let mut waiting = Vec::new();
    for i in 0..8 {
        let token = reader(&s, &format!("reader-{i}"));
        waiting.extend(wait_from(&s, loopback_client(i), &token, 8));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = s.get("/api/v1/events?after=0&wait=5").await;
    r.assert_error(503, None);
    assert_eq!(r.header("retry-after"), Some("1"));
    // A read that does not wait is served as ever.
    assert_eq!(feed(&s, "after=0").await["events"], json!([]));
    s.create_user(&json!({"userName": "wakes-them-all"})).await;
    for w in waiting {
        let (status, reply) = w.await.unwrap();
        assert_eq!(status, 200, "{reply}");
        assert!(reply.contains("wakes-them-all"), "{reply}");
    }
    // Their places are free again.
    let started = Instant::now();
    assert_eq!(feed(&s, "after=1&wait=1").await["events"], json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// One reader (one token, one address) cannot take every place: past 8 waiting per token and
/// per address, its requests are told to retry, while another token from another address
/// still waits.
#[tokio::test]
async fn one_token_or_one_address_cannot_take_every_long_poll() {
    let s = Server::start().await;
    let (hog, other) = (reader(&s, "hog"), reader(&s, "other"));
    let (hog_from, other_from) = (loopback_client(1), loopback_client(2));
    let waiting = wait_from(&s, hog_from, &hog, 8);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let path = "/api/v1/events?after=0&wait=5";
    // The same token from elsewhere, and another token from the same address.
    for (from, token, who) in [
        (hog_from, &hog, "this token"),
        (loopback_client(3), &hog, "this token"),
        (hog_from, &other, "this client"),
    ] {
        let (status, reply) = get_from(s.addr, from, token, path).await;
        assert_eq!(status, 503, "{reply}");
        assert!(
            reply.contains("Retry-After: 1") || reply.contains("retry-after: 1"),
            "{reply}"
        );
        assert!(reply.contains(who), "{reply}");
    }
    // Anyone else still waits, and is answered by the next commit.
    let theirs = wait_from(&s, other_from, &other, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.create_user(&json!({"userName": "wakes-them-all"})).await;
    for w in waiting.into_iter().chain(theirs) {
        let (status, reply) = w.await.unwrap();
        assert_eq!(status, 200, "{reply}");
        assert!(reply.contains("wakes-them-all"), "{reply}");
    }
}

/// A consumer of a rare type behind many other events is answered in bounded steps: each read
/// looks at no more than 10,000 events, answers at once (a `wait` does not hold it) with
/// `next` past what it looked at, and following `next` reaches the match and the head.
#[tokio::test]
async fn a_filtered_feed_over_many_other_events_advances_in_bounded_steps() {
    let s = Server::start().await;
    let total = 25_000;
    // Written straight to the outbox: 25,000 SCIM writes would take minutes here.
    Store::open(&s.db())
        .unwrap()
        .write_sync(|tx| {
            for n in 1..=total {
                let kind = if n == total - 10 {
                    "user.deleted"
                } else {
                    "user.updated"
                };
                scimd::store::events::append(tx, "2026-12-05T00:00:00.000Z", kind, "{}")?;
            }
            Ok(())
        })
        .unwrap();
    let started = Instant::now();
    let first = feed(&s, "types=user.deleted&wait=30").await;
    assert_eq!(first, json!({"events": [], "next": "10000"}));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not held to its wait"
    );
    let second = feed(&s, "types=user.deleted&after=10000&wait=30").await;
    assert_eq!(second, json!({"events": [], "next": "20000"}));
    let third = feed(&s, "types=user.deleted&after=20000&wait=30").await;
    assert_eq!(third["events"].as_array().unwrap().len(), 1, "{third}");
    assert_eq!(third["events"][0]["id"], format!("{}", total - 10));
    assert_eq!(third["next"], format!("{total}"));
}
