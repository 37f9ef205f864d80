//! Webhook delivery of real SCIM traffic, verified by a real receiver on loopback with the
//! `standardwebhooks` crate: a OneLogin sequence yielding every event type, per-endpoint
//! order under concurrent writers (the same order the feed serves), and `kill -9` of the
//! real binary amid SCIM writes with the receivers down, then amid deliveries.
//!
//! The receiver and its checks are those of `webhooks` (there the outbox is fed directly).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scimd::service::tokens;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::*;
use crate::webhooks::{Got, Mode, Receiver, add, beside, dedup, scimd, seqs, verified};

/// OneLogin's rendered v2 template (as in `idp_onelogin`), with the externalId it keeps and
/// a password it may send.
fn onelogin(user_name: &str, name: (&str, &str), title: &str, active: &str) -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE_URN],
        "userName": user_name,
        "externalId": format!("ol-{user_name}"),
        "name": {"givenName": name.0, "familyName": name.1,
                 "formatted": format!("{} {}", name.0, name.1)},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "password": "Sup3r-secret!",
        "title": title,
        "active": active,
        ENTERPRISE_URN: {"department": "R&D"}
    })
}

/// The seq a delivery carries in its `webhook-id` (`evt_<history>_<seq>`), whatever its format.
fn seq_of(g: &Got) -> i64 {
    g.id().rsplit('_').next().unwrap().parse().unwrap()
}

fn change<'a>(e: &'a Value, path: &str) -> Option<&'a Value> {
    e["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
}

/// Every event the feed serves (with `query`), in its order.
async fn feed_all(s: &Server, query: &str) -> Vec<Value> {
    let (mut out, mut after) = (Vec::new(), "0".to_string());
    loop {
        let r = s
            .get(&format!("/api/v1/events?after={after}&limit=1000{query}"))
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let page = r.json();
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            return out;
        }
        after = page["next"].as_str().unwrap().to_string();
        out.extend(events);
    }
}

/// A server on a new database where `hooks` added the endpoints before it started, with
/// workers that never look on their own (a one-minute tick, past every wait below): each
/// delivery is woken by the SCIM commit itself.
async fn serve_with<T>(hooks: impl FnOnce(&scimd::store::Store) -> T) -> (Server, T) {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("scimd.db");
    let made = hooks(&scimd::store::Store::open(&db).unwrap());
    let s = Server::start_in(dir, |mut c| {
        c.webhooks.tick = Duration::from_secs(60);
        c
    })
    .await;
    assert_eq!(s.db(), db);
    (s, made)
}

/// Waits (at most `within`) until `done` holds for what `receiver` got.
async fn until(receiver: &Receiver, within: Duration, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
    let start = Instant::now();
    loop {
        let got = receiver.got();
        if done(&got) {
            return got;
        }
        assert!(
            start.elapsed() < within,
            "not within {within:?}: {:?}",
            dedup(&got)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Users created, updated, suspended and reactivated as OneLogin (PUT), Okta and Entra
/// (PATCH) do; a group created with a member, members added and removed, renamed; deletes.
/// Every event type arrives at the all-types endpoint signed, once, in commit order with no
/// gaps, as the feed serves it; the chat endpoint gets a sentence for its types only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_onelogin_sequence_through_scim_delivers_every_event_type_signed_and_in_order() {
    let all = Receiver::start().await;
    let chat = Receiver::start().await;
    let (mut s, (secret, chat_secret)) = serve_with(|store| {
        let chat_types = ["user.deactivated", "user.deleted", "group.members_added"];
        (
            add(store, "all", &all.url(), &[], "standard"),
            add(store, "chat", &chat.url(), &chat_types, "chat"),
        )
    })
    .await;
    let store = beside(&s);
    // The IdP's token and two others, as Okta and Entra suspend users by PATCH.
    s.token = tokens::create(&store, "onelogin").unwrap();
    let okta = format!("Bearer {}", tokens::create(&store, "okta").unwrap());
    let entra = format!("Bearer {}", tokens::create(&store, "entra").unwrap());
    let patch_as = |auth: &str, path: String, ops: Value| {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": ops})
        .to_string();
        let (s, auth) = (&s, auth.to_string());
        async move {
            let r = s
                .raw("PATCH", &path, &[("authorization", &auth)], Some(&body))
                .await;
            assert!(r.status < 300, "{}", String::from_utf8_lossy(&r.body));
        }
    };

    let jane = s
        .create_user(&onelogin(
            "jane@example.com",
            ("Jane", "Doe"),
            "Engineer",
            "true",
        ))
        .await;
    let ana = s
        .create_user(&onelogin(
            "ana@example.com",
            ("Ana", "Lima"),
            "Analyst",
            "true",
        ))
        .await;
    let (jid, aid) = (id_of(&jane), id_of(&ana));
    let jane_path = format!("/scim/v2/Users/{jid}");
    let ana_path = format!("/scim/v2/Users/{aid}");
    let put = |path: &str, body: Value| {
        let (s, path) = (&s, path.to_string());
        async move {
            let r = s.put(&path, &body).await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
    };
    let jane_as = |title, active| onelogin("jane@example.com", ("Jane", "Doe"), title, active);
    // OneLogin updates, suspends and reactivates with the whole template by PUT.
    put(&jane_path, jane_as("Lead", "true")).await;
    put(&jane_path, jane_as("Lead", "false")).await;
    put(&jane_path, jane_as("Lead", "true")).await;
    // Okta: replace with a value object; Entra: a path and a string boolean.
    patch_as(
        &okta,
        ana_path.clone(),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;
    patch_as(
        &okta,
        ana_path.clone(),
        json!([{"op": "replace", "value": {"active": true}}]),
    )
    .await;
    patch_as(
        &entra,
        ana_path.clone(),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    patch_as(
        &entra,
        ana_path.clone(),
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    )
    .await;
    // A group with a member; one added, one removed, renamed, by PATCH as Okta and Entra do.
    let g = s
        .create_group(
            &json!({"schemas": [GROUP_URN], "displayName": "Engineering",
                              "externalId": "ol-eng", "members": [{"value": jid}]}),
        )
        .await;
    let gid = id_of(&g);
    let group_path = format!("/scim/v2/Groups/{gid}");
    let op = |ops: Value| patch_as(&format!("Bearer {}", s.token), group_path.clone(), ops);
    op(json!([{"op": "add", "path": "members", "value": [{"value": aid}]}])).await;
    op(json!([{"op": "remove", "path": format!("members[value eq \"{jid}\"]")}])).await;
    op(json!([{"op": "replace", "path": "displayName", "value": "Platform"}])).await;
    // OneLogin's own way with members: the group PUT with its whole list (Jane back).
    let full = json!({"displayName": "Platform", "externalId": "ol-eng",
                      "members": [{"value": aid}, {"value": jid}]});
    assert_eq!(s.put(&group_path, &full).await.status, 200);
    // Deletes: a member (its group loses it), the group, the other user.
    assert_eq!(s.delete(&ana_path).await.status, 204);
    assert_eq!(s.delete(&group_path).await.status, 204);
    assert_eq!(s.delete(&jane_path).await.status, 204);

    let want = [
        ("user.created", "onelogin"),
        ("user.created", "onelogin"),
        ("user.updated", "onelogin"),
        ("user.deactivated", "onelogin"),
        ("user.reactivated", "onelogin"),
        ("user.deactivated", "okta"),
        ("user.reactivated", "okta"),
        ("user.deactivated", "entra"),
        ("user.reactivated", "entra"),
        ("group.created", "onelogin"),
        ("group.members_added", "onelogin"),
        ("group.members_added", "onelogin"),
        ("group.members_removed", "onelogin"),
        ("group.updated", "onelogin"),
        ("group.members_added", "onelogin"),
        ("user.deleted", "onelogin"),
        ("group.members_removed", "onelogin"),
        ("group.deleted", "onelogin"),
        ("user.deleted", "onelogin"),
    ];
    let got = all.wait_for(want.len(), Duration::from_secs(10)).await;
    let bodies: Vec<Value> = got.iter().map(|g| verified(&secret, g)).collect();
    assert_eq!(seqs(&got), (1..=want.len() as i64).collect::<Vec<_>>());
    let kinds: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| {
            (
                b["type"].as_str().unwrap(),
                b["actor"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, want);
    for (g, b) in got.iter().zip(&bodies) {
        assert_eq!(b["actor"]["kind"], "token", "{b}");
        assert_eq!(seq_of(g).to_string(), b["id"].as_str().unwrap());
        assert!(!b.to_string().contains("Sup3r"), "no secret: {b}");
    }
    let times: Vec<&str> = bodies.iter().map(|b| b["time"].as_str().unwrap()).collect();
    assert!(times.iter().all(|t| t.ends_with('Z')), "{times:?}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let every: std::collections::BTreeSet<&str> = kinds.iter().map(|k| k.0).collect();
    assert_eq!(every.len(), 10, "every event type: {every:?}");

    let jane_r = json!({"type": "User", "id": jid, "userName": "jane@example.com",
                        "externalId": "ol-jane@example.com", "name": "Jane Doe"});
    let ana_r = json!({"type": "User", "id": aid, "userName": "ana@example.com",
                       "externalId": "ol-ana@example.com", "name": "Ana Lima"});
    let resources: Vec<&Value> = bodies.iter().map(|b| &b["resource"]).collect();
    for i in [0, 2, 3, 4, 18] {
        assert_eq!(resources[i], &jane_r, "event {}", i + 1);
    }
    for i in [1, 5, 6, 7, 8, 15] {
        assert_eq!(resources[i], &ana_r, "event {}", i + 1);
    }
    let eng = json!({"type": "Group", "id": gid, "displayName": "Engineering",
                     "externalId": "ol-eng"});
    let platform = json!({"type": "Group", "id": gid, "displayName": "Platform",
                          "externalId": "ol-eng"});
    for i in [9, 10, 11, 12] {
        assert_eq!(resources[i], &eng, "event {}", i + 1);
    }
    for i in [13, 14, 16, 17] {
        assert_eq!(resources[i], &platform, "event {}", i + 1);
    }
    assert_eq!(
        change(&bodies[0], "title").unwrap(),
        &json!({"path": "title", "before": null, "after": "Engineer"})
    );
    assert_eq!(
        change(&bodies[2], "title").unwrap(),
        &json!({"path": "title", "before": "Engineer", "after": "Lead"})
    );
    for (i, before, after) in [(3, true, false), (4, false, true), (5, true, false)] {
        assert_eq!(
            change(&bodies[i], "active").unwrap(),
            &json!({"path": "active", "before": before, "after": after}),
            "event {}",
            i + 1
        );
    }
    for i in [6, 8] {
        assert_eq!(change(&bodies[i], "active").unwrap()["after"], true);
    }
    assert_eq!(change(&bodies[7], "active").unwrap()["after"], false);
    assert_eq!(
        bodies[13]["changes"],
        json!([{"path": "displayName", "before": "Engineering", "after": "Platform"}])
    );
    let member = |id: &str, name: &str| json!([{"id": id, "type": "User", "name": name}]);
    assert_eq!(bodies[10]["members"], member(&jid, "jane@example.com"));
    assert_eq!(bodies[11]["members"], member(&aid, "ana@example.com"));
    assert_eq!(bodies[12]["members"], member(&jid, "jane@example.com"));
    assert_eq!(bodies[14]["members"], member(&jid, "jane@example.com"));
    assert_eq!(bodies[16]["members"], member(&aid, "ana@example.com"));

    // What was delivered is what the feed serves, event for event.
    assert_eq!(feed_all(&s, "").await, bodies);

    // The chat endpoint: one sentence each, for its types only, in commit order.
    let texts = [
        (4, "Jane Doe (jane@example.com) was deactivated by onelogin"),
        (6, "Ana Lima (ana@example.com) was deactivated by okta"),
        (8, "Ana Lima (ana@example.com) was deactivated by entra"),
        (
            11,
            "1 member was added to the group Engineering by onelogin: jane@example.com",
        ),
        (
            12,
            "1 member was added to the group Engineering by onelogin: ana@example.com",
        ),
        (
            15,
            "1 member was added to the group Platform by onelogin: jane@example.com",
        ),
        (16, "Ana Lima (ana@example.com) was deleted by onelogin"),
        (19, "Jane Doe (jane@example.com) was deleted by onelogin"),
    ];
    let said = chat.wait_for(texts.len(), Duration::from_secs(10)).await;
    let said: Vec<(i64, String)> = said
        .iter()
        .map(|g| {
            let body = verified(&chat_secret, g);
            (seq_of(g), body["text"].as_str().unwrap().to_string())
        })
        .collect();
    let want: Vec<(i64, String)> = texts.iter().map(|(n, t)| (*n, t.to_string())).collect();
    assert_eq!(said, want);
    // Nothing more comes to either.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((all.got().len(), chat.got().len()), (19, 8));
}

/// For each user, the types of its deactivated/reactivated events in delivery order.
fn toggles_by_user(bodies: &[Value]) -> HashMap<String, Vec<String>> {
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for b in bodies {
        let kind = b["type"].as_str().unwrap();
        if kind == "user.deactivated" || kind == "user.reactivated" {
            let id = b["resource"]["id"].as_str().unwrap().to_string();
            by.entry(id).or_default().push(kind.to_string());
        }
    }
    by
}

/// Asserts `kinds` alternate deactivated, reactivated, … from an active user.
fn alternate(user: &str, kinds: &[String]) {
    for (i, k) in kinds.iter().enumerate() {
        let want = ["user.deactivated", "user.reactivated"][i % 2];
        assert_eq!(k, want, "{user}: event {i} of {kinds:?}");
    }
}

const CLIENTS: usize = 16;
const ROUNDS: usize = 4;

/// Clients at once, each suspending and reactivating its own user and moving it in and out
/// of one group: each endpoint gets its events once each in commit order (the feed's), and a
/// user's reactivation never overtakes the suspension before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scim_writers_are_delivered_per_endpoint_in_the_feeds_order() {
    let all = Receiver::start().await;
    let offboard = Receiver::start().await;
    let toggles = ["user.deactivated", "user.reactivated"];
    let (s, (secret, off_secret)) = serve_with(|store| {
        (
            add(store, "all", &all.url(), &[], "standard"),
            add(store, "offboard", &offboard.url(), &toggles, "standard"),
        )
    })
    .await;
    let s = Arc::new(s);
    let mut users = Vec::new();
    for c in 0..CLIENTS {
        let u = s
            .create_user(&json!({"userName": format!("c{c}@example.com")}))
            .await;
        users.push(id_of(&u));
    }
    let g = s
        .create_group(&json!({"schemas": [GROUP_URN], "displayName": "Everyone"}))
        .await;
    let group_path = format!("/scim/v2/Groups/{}", id_of(&g));
    // Each client suspends and reactivates its own user, and joins and leaves the group,
    // while the others do the same.
    let mut clients = tokio::task::JoinSet::new();
    for uid in users.clone() {
        let (s, group_path) = (s.clone(), group_path.clone());
        clients.spawn(async move {
            let user_path = format!("/scim/v2/Users/{uid}");
            let member = json!([{"value": uid}]);
            for _ in 0..ROUNDS {
                for (path, ops) in [
                    (
                        &user_path,
                        json!([{"op": "replace", "value": {"active": false}}]),
                    ),
                    (
                        &group_path,
                        json!([{"op": "add", "path": "members", "value": member}]),
                    ),
                    (
                        &user_path,
                        json!([{"op": "replace", "path": "active", "value": true}]),
                    ),
                    (
                        &group_path,
                        json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]),
                    ),
                ] {
                    let r = s.patch(path, &ops).await;
                    assert!(r.status < 300, "{}", String::from_utf8_lossy(&r.body));
                }
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }

    let total = CLIENTS + 1 + CLIENTS * ROUNDS * 4;
    let got = all.wait_for(total, Duration::from_secs(10)).await;
    let bodies: Vec<Value> = got.iter().map(|g| verified(&secret, g)).collect();
    // Commit order, once each, no gaps: exactly the feed's sequence.
    assert_eq!(seqs(&got), (1..=total as i64).collect::<Vec<_>>());
    assert_eq!(feed_all(&s, "").await, bodies);
    let off = offboard
        .wait_for(CLIENTS * ROUNDS * 2, Duration::from_secs(10))
        .await;
    let off_bodies: Vec<Value> = off.iter().map(|g| verified(&off_secret, g)).collect();
    let s_off = seqs(&off);
    assert!(s_off.windows(2).all(|w| w[0] < w[1]), "{s_off:?}");
    assert_eq!(
        feed_all(&s, "&types=user.deactivated,user.reactivated").await,
        off_bodies
    );
    // Per user: deactivated and reactivated alternate, ending active as the user is.
    for received in [&bodies, &off_bodies] {
        let by = toggles_by_user(received);
        assert_eq!(by.len(), CLIENTS);
        for uid in &users {
            let kinds = &by[uid];
            assert_eq!(kinds.len(), ROUNDS * 2, "{uid}: {kinds:?}");
            alternate(uid, kinds);
        }
    }
    for uid in &users {
        assert_eq!(
            s.get(&format!("/scim/v2/Users/{uid}")).await.json()["active"],
            true
        );
    }
    // And membership: each user's additions and removals alternate too.
    let mut joins: HashMap<String, Vec<&str>> = HashMap::new();
    for b in &bodies {
        let kind = b["type"].as_str().unwrap();
        if let Some(members) = b["members"].as_array() {
            for m in members {
                joins
                    .entry(m["id"].as_str().unwrap().to_string())
                    .or_default()
                    .push(kind);
            }
        }
    }
    for uid in &users {
        let want: Vec<&str> = (0..ROUNDS * 2)
            .map(|i| ["group.members_added", "group.members_removed"][i % 2])
            .collect();
        assert_eq!(joins[uid], want, "{uid}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        (all.got().len(), offboard.got().len()),
        (total, CLIENTS * ROUNDS * 2),
        "nothing delivered twice"
    );
}

const WRITERS: usize = 4;

/// One request on its own connection to a spawned server: the status and body, or `None`
/// if the server went away (the request may or may not have been applied).
fn send(addr: &str, head: &str, body: &str) -> Option<(u16, String)> {
    let reply = http_once(addr, head, body, Duration::from_secs(5)).ok()?;
    let status = reply.get(9..12)?.parse().ok()?;
    let body = reply.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// What one writer saw: writes acknowledged, and whether one was cut off by the kill.
#[derive(Default, Clone, Copy, Debug)]
struct Tally {
    acked: usize,
    cut: usize,
}

/// A writer suspending and reactivating its own user from `active` until `stop` or the
/// server goes away; every acknowledged write is a change (one event).
fn toggler(
    addr: String,
    auth: String,
    uid: String,
    mut active: bool,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<usize>>,
) -> std::thread::JoinHandle<Tally> {
    std::thread::spawn(move || {
        let mut t = Tally::default();
        let head = format!("PATCH /scim/v2/Users/{uid} HTTP/1.1\r\n{auth}");
        while !stop.load(Ordering::Relaxed) {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": !active}}]});
            match send(&addr, &head, &body.to_string()) {
                Some((s, _)) if (200..300).contains(&s) => {
                    t.acked += 1;
                    active = !active;
                    *acked.lock().unwrap() += 1;
                }
                Some((s, b)) => panic!("{uid}: status {s}: {b}"),
                None => {
                    t.cut = 1;
                    return t;
                }
            }
        }
        t
    })
}

/// A user's `active` as the server at `addr` has it.
fn active(addr: &str, auth: &str, uid: &str) -> bool {
    let (status, body) = send(
        addr,
        &format!("GET /scim/v2/Users/{uid} HTTP/1.1\r\n{auth}"),
        "",
    )
    .expect("the server answers");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["active"]
        .as_bool()
        .unwrap()
}

/// The server, with its log drained so it never blocks on a full pipe.
fn serve(db: &str) -> (KillOnDrop, String) {
    let (child, addr, lines) = spawn_server(db, &[]);
    std::thread::spawn(move || for _ in lines {});
    (KillOnDrop(child), addr)
}

fn kill(server: &mut KillOnDrop) {
    server.0.kill().unwrap(); // SIGKILL: no drain, no shutdown code.
    server.0.wait().unwrap();
}

/// Waits (at most `within`) until `done()`.
async fn wait_until(within: Duration, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `kill -9` of the real binary twice: first mid-stream of SCIM writes from several clients
/// with the receivers down, then (receivers up, answering slowly) with deliveries in flight
/// and writes going on. After the last restart every event arrives at each endpoint, in
/// commit order, none lost, so every acknowledged write is announced; repeats are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_scim_writes_loses_no_acknowledged_change_and_keeps_order() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("kill.db");
    let db = db.to_str().unwrap().to_string();
    let token = cli_token(&db, "onelogin");
    let auth = format!("Authorization: Bearer {token}");
    let free = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (all_at, off_at) = (free(), free());
    let hook = |name: &str, at: std::net::SocketAddr, types: &[&str]| {
        let url = format!("http://{at}/hook");
        let mut args = vec![
            "webhook",
            "add",
            "--name",
            name,
            "--url",
            url.as_str(),
            "--allow-http",
        ];
        let types = types.join(",");
        if !types.is_empty() {
            args.extend(["--events", types.as_str()]);
        }
        args.extend(["--db", db.as_str()]);
        let (ok, out, err) = scimd(&args);
        assert!(ok, "{err}");
        out.lines().last().unwrap().to_string()
    };
    let all_secret = hook("all", all_at, &[]);
    let off_secret = hook("offboard", off_at, &["user.deactivated"]);

    // Receivers down: the users, then writers toggling them, killed mid-stream.
    let (mut server, addr) = serve(&db);
    let mut users = Vec::new();
    for w in 0..WRITERS {
        let body = json!({"userName": format!("k{w}@example.com")}).to_string();
        let (status, body) = send(
            &addr,
            &format!("POST /scim/v2/Users HTTP/1.1\r\n{auth}"),
            &body,
        )
        .expect("created");
        assert_eq!(status, 201, "{body}");
        users.push(
            serde_json::from_str::<Value>(&body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut tallies = vec![Tally::default(); WRITERS];
    let phase = |addr: &str, stop: &Arc<AtomicBool>, acked: &Arc<Mutex<usize>>| {
        users
            .iter()
            .map(|uid| {
                let on = active(addr, &auth, uid);
                toggler(
                    addr.to_string(),
                    auth.clone(),
                    uid.clone(),
                    on,
                    stop.clone(),
                    acked.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(0)));
    let writers = phase(&addr, &stop, &acked);
    wait_until(Duration::from_secs(10), "40 writes acknowledged", || {
        *acked.lock().unwrap() >= 40
    })
    .await;
    kill(&mut server);
    stop.store(true, Ordering::Relaxed);
    for (t, w) in tallies.iter_mut().zip(writers) {
        let got = w.join().unwrap();
        t.acked += got.acked;
        t.cut += got.cut;
    }

    // Receivers up, answering slowly. Once the first retry after the refused connection is
    // due (seconds after it) and deliveries flow, more writes; killed again amid both.
    let all = Receiver::on(TcpListener::bind(all_at).await.unwrap());
    let off = Receiver::on(TcpListener::bind(off_at).await.unwrap());
    all.set_default(Mode::Slow(Duration::from_millis(20)));
    off.set_default(Mode::Slow(Duration::from_millis(20)));
    let (mut server, addr) = serve(&db);
    wait_until(Duration::from_secs(10), "the retry", || {
        !all.got().is_empty()
    })
    .await;
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(0)));
    let writers = phase(&addr, &stop, &acked);
    wait_until(Duration::from_secs(10), "writes and deliveries", || {
        *acked.lock().unwrap() >= 40 && all.got().len() >= 15 && off.got().len() >= 3
    })
    .await;
    kill(&mut server);
    stop.store(true, Ordering::Relaxed);
    for (t, w) in tallies.iter_mut().zip(writers) {
        let got = w.join().unwrap();
        t.acked += got.acked;
        t.cut += got.cut;
    }

    // What committed, read from the file: every event, in seq order.
    let committed: Vec<(i64, String, String)> = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut q = conn
            .prepare(
                "SELECT seq, type, json_extract(payload, '$.resource.id') FROM events ORDER BY seq",
            )
            .unwrap();
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let seqs_of = |kinds: &[&str]| -> Vec<i64> {
        committed
            .iter()
            .filter(|(_, k, _)| kinds.is_empty() || kinds.contains(&k.as_str()))
            .map(|(s, _, _)| *s)
            .collect()
    };
    let (want_all, want_off) = (seqs_of(&[]), seqs_of(&["user.deactivated"]));
    all.set_default(Mode::Ok);
    off.set_default(Mode::Ok);
    let (_server, addr) = serve(&db);
    let all_got = until(&all, Duration::from_secs(20), |g| {
        dedup(g).0.len() >= want_all.len()
    })
    .await;
    let off_got = until(&off, Duration::from_secs(20), |g| {
        dedup(g).0.len() >= want_off.len()
    })
    .await;

    let (delivered, all_repeats) = dedup(&all_got);
    let (off_delivered, off_repeats) = dedup(&off_got);
    let report = format!(
        "{} events committed ({} acknowledged writes, {} cut off by a kill); repeated \
         deliveries: {all_repeats} to all, {off_repeats} to offboard",
        committed.len(),
        tallies.iter().map(|t| t.acked).sum::<usize>(),
        tallies.iter().map(|t| t.cut).sum::<usize>(),
    );
    eprintln!("kill -9 with SCIM writes: {report}");
    assert_eq!(delivered, want_all, "{report}");
    assert_eq!(want_all, (1..=committed.len() as i64).collect::<Vec<_>>());
    assert_eq!(off_delivered, want_off, "{report}");
    assert!(
        all_repeats <= 1 && off_repeats <= 1,
        "only what was in flight repeats: {report}"
    );
    let mut bodies: HashMap<i64, Value> = HashMap::new();
    for g in &all_got {
        bodies.insert(seq_of(g), verified(&all_secret, g));
    }
    for g in &off_got {
        assert_eq!(verified(&off_secret, g)["type"], "user.deactivated");
    }
    for (seq, kind, id) in &committed {
        let b = &bodies[seq];
        assert_eq!(
            (&b["type"], &b["resource"]["id"]),
            (&json!(kind), &json!(id)),
            "{b}"
        );
        assert_eq!(b["actor"]["name"], "onelogin");
    }
    // Every acknowledged write announced: one event per write (a cut-off one may have
    // committed too), alternating from an active user.
    let in_order: Vec<Value> = committed
        .iter()
        .map(|(s, _, _)| bodies[s].clone())
        .collect();
    let by = toggles_by_user(&in_order);
    for (uid, t) in users.iter().zip(&tallies) {
        let kinds = by.get(uid).cloned().unwrap_or_default();
        assert!(
            kinds.len() >= t.acked && kinds.len() <= t.acked + t.cut,
            "{uid}: {} events for {t:?}: {report}",
            kinds.len()
        );
        alternate(uid, &kinds);
        assert_eq!(
            active(&addr, &auth, uid),
            kinds.len() % 2 == 0,
            "{uid}: {kinds:?}"
        );
    }
}
