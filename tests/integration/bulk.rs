//! `/Bulk` (RFC 7644 §3.7) over HTTP: bulkId references to users and groups, forward and
//! circular ones, mixed methods, failOnErrors, versions, the two limits, scope, and what each
//! operation leaves behind (its audit entry, its change events), as its single request would.

use std::time::Duration;

use serde_json::{Value, json};

use scimd::service::audit::Actor;
use scimd::service::tokens::{self, Scope};
use scimd::store::Store;
use scimd::store::audit::{self, Entry, Query};

use crate::common::*;

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Sends a BulkRequest with `operations` (and `failOnErrors`, if given); asserts 200 and
/// returns the response's operations.
async fn bulk(s: &Server, operations: Value, fail_on_errors: Option<u64>) -> Vec<Value> {
    let mut body = json!({"schemas": [BULK_REQUEST], "Operations": operations});
    if let Some(n) = fail_on_errors {
        body["failOnErrors"] = json!(n);
    }
    let r = s.post("/scim/v2/Bulk", &body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["schemas"], json!([BULK_RESPONSE]), "{v}");
    v["Operations"].as_array().expect("Operations").clone()
}

fn post(path: &str, bulk_id: &str, data: Value) -> Value {
    json!({"method": "POST", "path": path, "bulkId": bulk_id, "data": data})
}

fn patch_data(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// The id at the end of an operation's `location`.
fn id_in(op: &Value) -> String {
    let location = op["location"].as_str().unwrap_or_else(|| panic!("{op}"));
    location.rsplit('/').next().unwrap().to_string()
}

/// Asserts an operation failed with `status` and, if given, `scimType` (a SCIM error as its
/// `response`); returns the error's detail.
fn failed(op: &Value, status: u16, scim_type: Option<&str>) -> String {
    let code = status.to_string();
    assert_eq!(op["status"], json!(code), "{op}");
    let response = &op["response"];
    assert_eq!(response["schemas"], json!([ERROR_URN]), "{op}");
    assert_eq!(response["status"], json!(code), "{op}");
    match scim_type {
        Some(t) => assert_eq!(response["scimType"], t, "{op}"),
        None => assert!(response.get("scimType").is_none(), "{op}"),
    }
    response["detail"].as_str().expect("detail").to_string()
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

async fn count(s: &Server, endpoint: &str) -> u64 {
    s.get(&format!("/scim/v2/{endpoint}?count=0")).await.json()["totalResults"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn bulk_ids_reach_users_and_groups() {
    let s = Server::start().await;
    let ops = bulk(
        &s,
        json!([
            post(
                "/Users",
                "alice",
                json!({"schemas": [USER_URN], "userName": "alice"})
            ),
            post(
                "/Users",
                "bob",
                json!({"userName": "bob",
                ENTERPRISE_URN: {"manager": {"value": "bulkId:alice"}}})
            ),
            post(
                "/Groups",
                "guides",
                json!({"schemas": [GROUP_URN], "displayName": "Tour Guides",
                "members": [{"type": "User", "value": "bulkId:alice"},
                            {"type": "User", "value": "bulkId:bob"}]})
            ),
            post(
                "/Groups",
                "all",
                json!({"displayName": "Everyone",
                "members": [{"type": "Group", "value": "bulkId:guides"}]})
            ),
        ]),
        None,
    )
    .await;
    assert_eq!(ops.len(), 4);
    for (op, (bulk_id, endpoint)) in ops.iter().zip([
        ("alice", "Users"),
        ("bob", "Users"),
        ("guides", "Groups"),
        ("all", "Groups"),
    ]) {
        assert_eq!(op["method"], "POST", "{op}");
        assert_eq!(op["bulkId"], bulk_id, "{op}");
        assert_eq!(op["status"], "201", "{op}");
        let location = op["location"].as_str().unwrap();
        let prefix = format!("http://{}/scim/v2/{endpoint}/", s.addr);
        assert!(location.starts_with(&prefix), "{op}");
        let r = s.get(&location[location.find("/scim").unwrap()..]).await;
        assert_eq!(r.status, 200);
        // The ETag the single request would have answered (a user's version moves again
        // when a later operation puts it in a group).
        assert_eq!(op["version"], "W/\"1\"", "{op}");
        assert!(op.get("response").is_none(), "{op}");
    }
    let (alice, bob, guides, all) = (
        id_in(&ops[0]),
        id_in(&ops[1]),
        id_in(&ops[2]),
        id_in(&ops[3]),
    );
    let b = s.get(&format!("/scim/v2/Users/{bob}")).await.json();
    assert_eq!(b[ENTERPRISE_URN]["manager"]["value"], alice.as_str());
    let g = s.get(&format!("/scim/v2/Groups/{guides}")).await.json();
    let mut want = vec![alice.clone(), bob.clone()];
    want.sort();
    assert_eq!(member_ids(&g), want);
    let e = s.get(&format!("/scim/v2/Groups/{all}")).await.json();
    assert_eq!(member_ids(&e), std::slice::from_ref(&guides));
    assert_eq!(e["members"][0]["type"], "Group");
    // Nothing of the literal `bulkId:` was stored anywhere.
    for path in [
        format!("/scim/v2/Users/{bob}"),
        format!("/scim/v2/Groups/{guides}"),
    ] {
        let text = String::from_utf8_lossy(&s.get(&path).await.body).into_owned();
        assert!(!text.contains("bulkId"), "{text}");
    }
    // Alice is in both groups, the second through the first.
    let a = s.get(&format!("/scim/v2/Users/{alice}")).await.json();
    let groups: Vec<&str> = a["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert!(
        groups.contains(&guides.as_str()) && groups.contains(&all.as_str()),
        "{a}"
    );
}

/// §3.7.2: a reference may come before the POST it names, in a path, a value, a PATCH value
/// or a PATCH path; the POST runs first, and the response keeps the request's order.
#[tokio::test]
async fn forward_references_run_the_post_first() {
    let s = Server::start().await;
    let carol = s.create_user(&json!({"userName": "carol"})).await;
    let carol = id_of(&carol);
    let ops = bulk(
        &s,
        json!([
            post("/Groups", "team", json!({"displayName": "Team",
                "members": [{"value": "bulkId:dave"}, {"value": carol}]})),
            {"method": "PATCH", "path": "/Users/bulkId:dave",
             "data": patch_data(json!([{"op": "replace", "path": "title", "value": "Lead"}]))},
            {"method": "PATCH", "path": "/Groups/bulkId:team",
             "data": patch_data(json!([
                 {"op": "remove", "path": "members[value eq \"bulkId:dave\"]"},
                 {"op": "add", "path": "members", "value": [{"value": "bulkId:erin"}]}]))},
            post("/Users", "dave", json!({"userName": "dave"})),
            post("/Users", "erin", json!({"userName": "erin"})),
        ]),
        None,
    )
    .await;
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "200", "204", "201", "201"], "{ops:?}");
    let methods: Vec<&str> = ops.iter().map(|o| o["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["POST", "PATCH", "PATCH", "POST", "POST"]);
    let (team, dave, erin) = (id_in(&ops[0]), id_in(&ops[3]), id_in(&ops[4]));
    assert_eq!(id_in(&ops[1]), dave, "a PATCH's location is its resource's");
    assert_eq!(id_in(&ops[2]), team);
    let d = s.get(&format!("/scim/v2/Users/{dave}")).await.json();
    assert_eq!(d["title"], "Lead");
    // Created (1), put in the group (2), PATCHed (3), taken out of the group (4).
    assert_eq!(ops[3]["version"], "W/\"1\"");
    assert_eq!(ops[1]["version"], "W/\"3\"");
    assert_eq!(d["meta"]["version"], "W/\"4\"");
    let t = s.get(&format!("/scim/v2/Groups/{team}")).await.json();
    let mut want = vec![carol, erin];
    want.sort();
    assert_eq!(
        member_ids(&t),
        want,
        "dave added, then removed by his bulkId"
    );
}

/// §3.7.1: circular references are resolved where they can be (users naming each other as
/// manager; a group and a user that names it), and otherwise fail with 409, only those
/// operations, changing nothing.
#[tokio::test]
async fn circular_references_resolve_or_fail_alone() {
    let s = Server::start().await;
    let manager = |b: &str| json!({ENTERPRISE_URN: {"manager": {"value": format!("bulkId:{b}")}}});
    let mut u1 = manager("u2");
    u1["userName"] = json!("u1");
    let mut u2 = manager("u1");
    u2["userName"] = json!("u2");
    let mut owner = manager("club");
    owner["userName"] = json!("owner");
    let ops = bulk(
        &s,
        json!([
            post("/Users", "u1", u1),
            post("/Users", "u2", u2),
            // A group and its member, who names the group as manager: the user runs first.
            post(
                "/Groups",
                "club",
                json!({"displayName": "Club", "members": [{"value": "bulkId:owner"}]})
            ),
            post("/Users", "owner", owner),
            // Groups containing each other: scimd never lets a group contain itself.
            post(
                "/Groups",
                "a",
                json!({"displayName": "A", "members": [{"value": "bulkId:b"}]})
            ),
            post(
                "/Groups",
                "b",
                json!({"displayName": "B", "members": [{"value": "bulkId:a"}]})
            ),
            post(
                "/Groups",
                "self",
                json!({"displayName": "Self", "members": [{"value": "bulkId:self"}]})
            ),
            post("/Users", "after", json!({"userName": "after"})),
        ]),
        None,
    )
    .await;
    assert_eq!(ops.len(), 8);
    for op in &ops[..4] {
        assert_eq!(op["status"], "201", "{op}");
    }
    let (u1, u2, club, owner) = (
        id_in(&ops[0]),
        id_in(&ops[1]),
        id_in(&ops[2]),
        id_in(&ops[3]),
    );
    let manager_of = |v: &Value| {
        v[ENTERPRISE_URN]["manager"]["value"]
            .as_str()
            .map(str::to_string)
    };
    let u1v = s.get(&format!("/scim/v2/Users/{u1}")).await.json();
    let u2v = s.get(&format!("/scim/v2/Users/{u2}")).await.json();
    assert_eq!(manager_of(&u1v), Some(u2.clone()));
    assert_eq!(manager_of(&u2v), Some(u1.clone()));
    let c = s.get(&format!("/scim/v2/Groups/{club}")).await.json();
    assert_eq!(member_ids(&c), std::slice::from_ref(&owner));
    let o = s.get(&format!("/scim/v2/Users/{owner}")).await.json();
    assert_eq!(manager_of(&o), Some(club));
    for op in &ops[4..7] {
        let detail = failed(op, 409, None);
        assert!(detail.contains("can't contain itself"), "{detail}");
        assert!(
            op.get("location").is_none(),
            "a failed POST has no location: {op}"
        );
    }
    assert_eq!(ops[7]["status"], "201");
    assert_eq!(count(&s, "Groups").await, 1, "only Club");

    // A circle where one POST fails for its own reason: both fail, nothing of either stays.
    let mut x = manager("y");
    x["userName"] = json!("x");
    let mut y = manager("x");
    y["userName"] = json!("U1");
    let ops = bulk(
        &s,
        json!([post("/Users", "x", x), post("/Users", "y", y)]),
        None,
    )
    .await;
    failed(&ops[1], 409, Some("uniqueness"));
    let detail = failed(&ops[0], 409, None);
    assert!(detail.contains("operation 2"), "{detail}");
    assert_eq!(
        s.filter("Users", "userName eq \"x\"").await["totalResults"],
        0
    );
}

/// A reference no POST declares, or to a POST that failed, fails the operations that need it
/// (409) and nothing else.
#[tokio::test]
async fn unresolvable_bulk_ids_fail_only_what_needs_them() {
    let s = Server::start().await;
    s.create_user(&json!({"userName": "taken"})).await;
    let ops = bulk(
        &s,
        json!([
            post("/Users", "dup", json!({"userName": "TAKEN"})),
            post("/Groups", "g", json!({"displayName": "G", "members": [{"value": "bulkId:dup"}]})),
            {"method": "DELETE", "path": "/Users/bulkId:dup"},
            {"method": "PATCH", "path": "/Users/bulkId:nobody",
             "data": patch_data(json!([{"op": "replace", "path": "title", "value": "x"}]))},
            post("/Users", "ok", json!({"userName": "fine"})),
            post("/Groups", "g2", json!({"displayName": "G2", "members": [{"value": "bulkId:ok"}]})),
        ]),
        None,
    )
    .await;
    assert_eq!(ops.len(), 6);
    failed(&ops[0], 409, Some("uniqueness"));
    for op in &ops[1..3] {
        let detail = failed(op, 409, None);
        assert!(
            detail.contains("bulkId \"dup\"") && detail.contains("operation 1"),
            "{detail}"
        );
    }
    // A failed POST has no location; a failed DELETE names what its path named.
    assert!(ops[1].get("location").is_none(), "{}", ops[1]);
    let location = ops[2]["location"].as_str().unwrap();
    assert!(
        location.ends_with("/scim/v2/Users/bulkId:dup"),
        "{location}"
    );
    let detail = failed(&ops[3], 409, None);
    assert!(detail.contains("\"nobody\""), "{detail}");
    assert_eq!(ops[4]["status"], "201");
    assert_eq!(ops[5]["status"], "201");
    assert_eq!(count(&s, "Groups").await, 1);
    assert_eq!(count(&s, "Users").await, 2);
}

/// POST, PUT, PATCH and DELETE of users and groups in one request, each answering the
/// status its single request would; a failing one changes nothing and undoes nothing.
#[tokio::test]
async fn mixed_methods_answer_as_their_single_requests() {
    let s = Server::start().await;
    let ana = id_of(
        &s.create_user(&json!({"userName": "ana", "title": "Dev"}))
            .await,
    );
    let ben = id_of(&s.create_user(&json!({"userName": "ben"})).await);
    let ops_group = id_of(&s.create_group(&json!({"displayName": "Ops"})).await);
    let old = id_of(&s.create_group(&json!({"displayName": "Old"})).await);
    let ops = bulk(
        &s,
        json!([
            post("/Users", "cy", json!({"userName": "cy"})),
            {"method": "PUT", "path": format!("/Users/{ana}"),
             "data": {"userName": "ana", "displayName": "Ana"}},
            {"method": "patch", "path": format!("/users/{ben}"),
             "data": patch_data(json!([{"op": "add", "path": "nickName", "value": "B"}]))},
            {"method": "PATCH", "path": format!("/Groups/{ops_group}"),
             "data": patch_data(json!([{"op": "add", "path": "members",
                                        "value": [{"value": ana}, {"value": "bulkId:cy"}]}]))},
            {"method": "PUT", "path": format!("/Groups/{old}"), "data": {"displayName": "Older"}},
            {"method": "DELETE", "path": format!("/Users/{ben}")},
            {"method": "DELETE", "path": format!("/Groups/{old}")},
            {"method": "DELETE", "path": "/Users/no%20such%20user"},
            {"method": "PUT", "path": format!("/Users/{ana}"), "data": {"userName": "ana", "active": "maybe"}},
        ]),
        None,
    )
    .await;
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        [
            "201", "200", "200", "204", "200", "204", "204", "404", "400"
        ]
    );
    for (op, method) in ops.iter().zip([
        "POST", "PUT", "PATCH", "PATCH", "PUT", "DELETE", "DELETE", "DELETE", "PUT",
    ]) {
        assert_eq!(op["method"], method, "{op}");
    }
    // A version for every write that leaves a resource, none for a DELETE.
    for op in &ops[..5] {
        assert!(
            op["version"]
                .as_str()
                .is_some_and(|v| v.starts_with("W/\"")),
            "{op}"
        );
    }
    for op in &ops[5..] {
        assert!(op.get("version").is_none(), "{op}");
    }
    // A failed DELETE or PUT still says where its resource is (§3.7.3).
    assert!(
        ops[7]["location"]
            .as_str()
            .unwrap()
            .ends_with("/Users/no%20such%20user")
    );
    failed(&ops[7], 404, None);
    failed(&ops[8], 400, Some("invalidValue"));
    let a = s.get(&format!("/scim/v2/Users/{ana}")).await.json();
    assert_eq!(a["displayName"], "Ana");
    assert!(a.get("title").is_none(), "PUT replaced the user");
    // The PUT (2), joining Ops (3); the failed PUT changed nothing.
    assert_eq!(ops[1]["version"], "W/\"2\"");
    assert_eq!(a["meta"]["version"], "W/\"3\"");
    assert_eq!(a["active"], true);
    s.get(&format!("/scim/v2/Users/{ben}"))
        .await
        .assert_error(404, None);
    s.get(&format!("/scim/v2/Groups/{old}"))
        .await
        .assert_error(404, None);
    let g = s.get(&format!("/scim/v2/Groups/{ops_group}")).await.json();
    let mut want = vec![ana.clone(), id_in(&ops[0])];
    want.sort();
    assert_eq!(member_ids(&g), want);
}

/// Operations that are not operations fail alone, with the status their single request would
/// have had where there is one.
#[tokio::test]
async fn malformed_operations_fail_alone() {
    let s = Server::start().await;
    let ops = bulk(
        &s,
        json!([
            "not an object",
            {"path": "/Users", "data": {"userName": "m"}},
            {"method": "GET", "path": "/Users"},
            {"method": "POST", "path": "/Devices", "data": {}},
            {"method": "POST", "path": "/Users/some-id", "bulkId": "p", "data": {"userName": "p"}},
            {"method": "PUT", "path": "/Users", "data": {"userName": "q"}},
            {"method": "POST", "path": "/Users", "bulkId": "n"},
            {"method": "POST", "path": "/Users", "bulkId": "same", "data": {"userName": "s1"}},
            {"method": "POST", "path": "/Users", "bulkId": "same", "data": {"userName": "s2"}},
            {"method": "POST", "path": "/Users", "bulkId": "a/b", "data": {"userName": "s3"}},
            {"method": "PUT", "path": "/Users/x", "version": 3, "data": {"userName": "s4"}},
            // No bulkId on a POST is tolerated: the resource is made, the response has none.
            {"method": "POST", "path": "Users", "data": {"userName": "nobulk"}},
        ]),
        None,
    )
    .await;
    assert_eq!(ops.len(), 12);
    failed(&ops[0], 400, Some("invalidSyntax"));
    failed(&ops[1], 400, Some("invalidSyntax"));
    assert!(ops[1].get("method").is_none());
    failed(&ops[2], 400, Some("invalidValue"));
    assert_eq!(ops[2]["method"], "GET");
    failed(&ops[3], 400, Some("invalidValue"));
    failed(&ops[4], 400, Some("invalidValue"));
    assert_eq!(ops[4]["bulkId"], "p");
    failed(&ops[5], 400, Some("invalidValue"));
    failed(&ops[6], 400, Some("invalidSyntax"));
    assert_eq!(ops[7]["status"], "201");
    let detail = failed(&ops[8], 400, Some("invalidValue"));
    assert!(detail.contains("operation 8"), "{detail}");
    failed(&ops[9], 400, Some("invalidValue"));
    failed(&ops[10], 400, Some("invalidValue"));
    assert_eq!(ops[11]["status"], "201");
    assert!(ops[11].get("bulkId").is_none());
    assert_eq!(count(&s, "Users").await, 2);

    // What is not a bulk request at all fails as a whole.
    for body in [
        "[]",
        "{}",
        "{\"Operations\": {}}",
        "{\"Operations\": [], \"failOnErrors\": 0}",
    ] {
        let r = s.call("POST", "/scim/v2/Bulk", Some(body)).await;
        assert_eq!(
            r.status,
            400,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    s.call("POST", "/scim/v2/Bulk", None)
        .await
        .assert_error(400, Some("invalidSyntax"));
    let empty = s
        .call("POST", "/scim/v2/Bulk", Some("{\"Operations\": []}"))
        .await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["Operations"], json!([]));
}

/// §3.7.3: with failOnErrors, the request stops at that many errors; the response holds what
/// ran, and nothing after it ran.
#[tokio::test]
async fn fail_on_errors_stops_after_that_many_errors() {
    let s = Server::start().await;
    s.create_user(&json!({"userName": "taken"})).await;
    let ops = |prefix: &str| {
        json!([
            post("/Users", "a", json!({"userName": format!("{prefix}-a")})),
            post("/Users", "b", json!({"userName": "taken"})),
            post("/Users", "c", json!({"userName": format!("{prefix}-c")})),
            {"method": "DELETE", "path": "/Users/missing"},
            post("/Users", "d", json!({"userName": format!("{prefix}-d")})),
        ])
    };
    let one = bulk(&s, ops("one"), Some(1)).await;
    assert_eq!(one.len(), 2, "{one:?}");
    assert_eq!(one[0]["status"], "201");
    failed(&one[1], 409, Some("uniqueness"));
    assert_eq!(
        s.filter("Users", "userName eq \"one-c\"").await["totalResults"],
        0
    );

    let two = bulk(&s, ops("two"), Some(2)).await;
    let statuses: Vec<&str> = two.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "409", "201", "404"]);
    assert_eq!(
        s.filter("Users", "userName eq \"two-d\"").await["totalResults"],
        0
    );

    // Without failOnErrors every operation runs.
    let all = bulk(&s, ops("all"), None).await;
    assert_eq!(all.len(), 5);
    // A failure the plan knows before anything runs counts where it stands.
    let early = bulk(
        &s,
        json!([
            post("/Users", "e1", json!({"userName": "early-1"})),
            {"method": "PATCH", "path": "/Users/bulkId:nope", "data": patch_data(json!([]))},
            post("/Users", "e2", json!({"userName": "early-2"})),
        ]),
        Some(1),
    )
    .await;
    assert_eq!(early.len(), 2);
    failed(&early[1], 409, None);
    assert_eq!(
        s.filter("Users", "userName eq \"early-2\"").await["totalResults"],
        0
    );
}

/// `version` is the operation's If-Match (§3.7, §3.14): a stale one is 412 and changes
/// nothing; the current one or `*` goes through.
#[tokio::test]
async fn versions_are_if_match() {
    let s = Server::start().await;
    let u = s.create_user(&json!({"userName": "v"})).await;
    let id = id_of(&u);
    let v1 = u["meta"]["version"].as_str().unwrap().to_string();
    let g = s.create_group(&json!({"displayName": "VG"})).await;
    let gid = id_of(&g);
    let title = |t: &str| patch_data(json!([{"op": "replace", "path": "title", "value": t}]));
    let ops = bulk(
        &s,
        json!([
            {"method": "PATCH", "path": format!("/Users/{id}"), "version": v1, "data": title("one")},
            {"method": "PATCH", "path": format!("/Users/{id}"), "version": v1, "data": title("two")},
            {"method": "PUT", "path": format!("/Users/{id}"), "version": "W/\"99\"",
             "data": {"userName": "v"}},
            {"method": "DELETE", "path": format!("/Groups/{gid}"), "version": "W/\"99\""},
            {"method": "PATCH", "path": format!("/Users/{id}"), "version": "*", "data": title("three")},
        ]),
        None,
    )
    .await;
    assert_eq!(ops[0]["status"], "200");
    let detail = failed(&ops[1], 412, None);
    assert!(detail.contains("W/\"2\""), "{detail}");
    failed(&ops[2], 412, None);
    failed(&ops[3], 412, None);
    assert_eq!(ops[4]["status"], "200");
    let now = s.get(&format!("/scim/v2/Users/{id}")).await.json();
    assert_eq!(now["title"], "three");
    assert_eq!(now["meta"]["version"], "W/\"3\"");
    assert_eq!(s.get(&format!("/scim/v2/Groups/{gid}")).await.status, 200);
}

/// §3.7.4: maxOperations and maxPayloadSize are advertised and enforced with 413 before any
/// operation runs; the payload limit while the body is read.
#[tokio::test]
async fn both_limits_are_413_before_anything_runs() {
    let s = Server::start_in(tempfile::TempDir::new().unwrap(), |mut c| {
        c.max_body_bytes = 200_000;
        c
    })
    .await;
    let spc = s.get("/scim/v2/ServiceProviderConfig").await.json();
    assert_eq!(
        spc["bulk"],
        json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 200_000})
    );
    let create = |i: usize| {
        post(
            "/Users",
            &format!("u{i}"),
            json!({"userName": format!("u{i}")}),
        )
    };
    let too_many: Vec<Value> = (0..1001).map(create).collect();
    let body = json!({"schemas": [BULK_REQUEST], "Operations": too_many}).to_string();
    assert!(body.len() < 200_000);
    let r = s.call("POST", "/scim/v2/Bulk", Some(&body)).await;
    let e = r.assert_error(413, None);
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("maxOperations is 1000"),
        "{e}"
    );
    assert_eq!(count(&s, "Users").await, 0);

    // Over the payload limit, declared: refused before the body is read.
    let big: Vec<Value> = (0..900)
        .map(|i| {
            post(
                "/Users",
                &format!("b{i}"),
                json!({"userName": format!("b{i}"), "title": "x".repeat(200)}),
            )
        })
        .collect();
    let body = json!({"Operations": big}).to_string();
    assert!(body.len() > 200_000);
    let r = s.call("POST", "/scim/v2/Bulk", Some(&body)).await;
    let e = r.assert_error(413, None);
    assert!(e["detail"].as_str().unwrap().contains("200000"), "{e}");
    assert_eq!(r.header("connection"), Some("close"));

    // Undeclared (chunked, no Content-Length): the answer comes once the limit is passed,
    // though the body never ends.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /scim/v2/Bulk HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        s.token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 10_000, " ".repeat(10_000));
    for _ in 0..21 {
        let _ = conn.write_all(chunk.as_bytes()).await;
    }
    let mut reply = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut reply))
        .await
        .expect("answered without the rest of the body")
        .unwrap();
    assert_eq!(&reply[9..12], b"413");
    assert_eq!(count(&s, "Users").await, 0);

    // Exactly at the limits, the request runs.
    let at: Vec<Value> = (0..1000).map(create).collect();
    let ops = bulk(&s, json!(at), None).await;
    assert_eq!(ops.len(), 1000);
    assert!(ops.iter().all(|o| o["status"] == "201"));
    assert_eq!(count(&s, "Users").await, 1000);
}

/// A read token's scope covers no operation: the whole request is 403 before its body is
/// read, nothing changes, and the refusal is on the audit log.
#[tokio::test]
async fn a_read_token_runs_no_operation() {
    let s = Server::start().await;
    let reader = {
        let store = Store::open(&s.db()).unwrap();
        tokens::create_as(&store, "bulk-reader", Scope::Read, &Actor::cli()).unwrap()
    };
    let body = json!({"Operations": [post("/Users", "r", json!({"userName": "r"}))]}).to_string();
    let bearer = format!("Bearer {reader}");
    let r = s
        .raw(
            "POST",
            "/scim/v2/Bulk",
            &[("authorization", &bearer)],
            Some(&body),
        )
        .await;
    r.assert_error(403, None);
    assert_eq!(count(&s, "Users").await, 0);
    let entries = entries_by(&s, "bulk-reader", 1).await;
    assert!(
        entries
            .iter()
            .any(|e| e.action == "POST /scim/v2/Bulk" && e.status == 403),
        "{entries:?}"
    );
}

/// Audit entries of `actor`, waiting up to 5 s for at least `n` (rejections are written a
/// moment after the request).
async fn entries_by(s: &Server, actor: &str, n: usize) -> Vec<Entry> {
    let q = Query {
        limit: 1000,
        ..Default::default()
    };
    let mut found = Vec::new();
    for _ in 0..50 {
        let store = Store::open(&s.db()).unwrap();
        found = store.read_sync(|conn| audit::list(conn, &q)).unwrap();
        found.retain(|e| e.actor == actor);
        if found.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found.reverse();
    found
}

/// The name of the server's own token, as the audit log records it.
async fn token_name(s: &Server) -> String {
    let store = Store::open(&s.db()).unwrap();
    let listed = tokens::list(&store).unwrap();
    listed.into_iter().next().expect("the server's token").name
}

/// Each operation leaves the audit entry its single request would: a change its own entry
/// (written with it), a failure a rejected request under the single request's route.
#[tokio::test]
async fn the_audit_log_has_one_entry_per_operation() {
    let s = Server::start().await;
    let name = token_name(&s).await;
    let ops = bulk(
        &s,
        json!([
            post("/Users", "a", json!({"userName": "audited"})),
            post("/Groups", "g", json!({"displayName": "Audited", "members": [{"value": "bulkId:a"}]})),
            {"method": "PATCH", "path": "/Users/bulkId:a",
             "data": patch_data(json!([{"op": "replace", "path": "title", "value": "T"}]))},
            {"method": "DELETE", "path": "/Groups/bulkId:g"},
            {"method": "DELETE", "path": "/Users/gone-already"},
            post("/Users", "dup", json!({"userName": "AUDITED"})),
        ]),
        None,
    )
    .await;
    assert_eq!(ops.len(), 6);
    let entries = entries_by(&s, &name, 6).await;
    let seen: Vec<(&str, &str, u16)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str(), e.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("user.create", "success", 201),
            ("group.create", "success", 201),
            ("user.patch", "success", 200),
            ("group.delete", "success", 204),
            ("DELETE /scim/v2/Users/{id}", "failure", 404),
            ("POST /scim/v2/Users", "failure", 409),
        ]
    );
    assert_eq!(entries[4].resource_id.as_deref(), Some("gone-already"));
    assert_eq!(
        entries[0].resource_id.as_deref(),
        Some(id_in(&ops[0]).as_str())
    );
}

/// Each operation appends the change events its single request would, in commit order.
#[tokio::test]
async fn events_follow_the_operations_in_commit_order() {
    let s = Server::start().await;
    let ops = bulk(
        &s,
        json!([
            post("/Groups", "g", json!({"displayName": "Evented", "members": [{"value": "bulkId:u"}]})),
            post("/Users", "u", json!({"userName": "evented"})),
            {"method": "PATCH", "path": "/Users/bulkId:u",
             "data": patch_data(json!([{"op": "replace", "path": "active", "value": false}]))},
            post("/Users", "fails", json!({"userName": "EVENTED"})),
        ]),
        None,
    )
    .await;
    let (g, u) = (id_in(&ops[0]), id_in(&ops[1]));
    let feed = s.get("/api/v1/events?limit=100").await.json();
    let events: Vec<(String, String)> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["resource"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("user.created".to_string(), u.clone()),
            ("group.created".to_string(), g.clone()),
            ("group.members_added".to_string(), g),
            ("user.deactivated".to_string(), u),
        ]
    );
    let ids: Vec<u64> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

/// What single requests tolerate and refuse, a bulk operation tolerates and refuses alike:
/// unknown attributes ignored (and named on the audit entry), IdP dialects read, wrong types
/// refused, names unique.
#[tokio::test]
async fn operations_are_validated_as_their_single_requests() {
    let s = Server::start().await;
    let ops = bulk(
        &s,
        json!([
            post(
                "/Users",
                "t",
                json!({"userName": "tolerant", "adreses": "x", "active": "True",
                "emails": {"value": "t@example.com"}})
            ),
            post(
                "/Users",
                "w",
                json!({"userName": "wrong", "active": "maybe"})
            ),
            post("/Users", "c", json!({"userName": "Tolerant"})),
            post(
                "/Groups",
                "g",
                json!({"displayName": "Skips", "members": [{"value": "no-such-id"}]})
            ),
        ]),
        None,
    )
    .await;
    assert_eq!(ops[0]["status"], "201");
    let t = s
        .get(&format!("/scim/v2/Users/{}", id_in(&ops[0])))
        .await
        .json();
    assert_eq!(t["active"], true);
    assert_eq!(t["emails"][0]["value"], "t@example.com");
    assert!(t.get("adreses").is_none());
    failed(&ops[1], 400, Some("invalidValue"));
    failed(&ops[2], 409, Some("uniqueness"));
    assert_eq!(
        ops[3]["status"], "201",
        "unknown member ids are skipped, as always"
    );
    let name = token_name(&s).await;
    let entries = entries_by(&s, &name, 1).await;
    let created = entries.iter().find(|e| e.action == "user.create").unwrap();
    let detail = created.detail.as_ref().unwrap().to_string();
    assert!(detail.contains("adreses"), "{detail}");
}

/// A bulk request takes the writer a batch at a time (at most 256 operations, and about
/// 20 ms of its time; `service::bulk`'s unit tests count the commits exactly): 300 creates
/// take more than one commit, so other clients' writes queued meanwhile run in between.
#[tokio::test]
async fn a_bulk_request_shares_the_writer_a_batch_at_a_time() {
    let s = Server::start_in(tempfile::TempDir::new().unwrap(), |mut c| {
        c.metrics_token = Some("bulk-metrics".into());
        c
    })
    .await;
    let commits = || async {
        let r = s
            .raw(
                "GET",
                "/metrics",
                &[("authorization", "Bearer bulk-metrics")],
                None,
            )
            .await;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("scimd_commit_batch_size_count"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no commit count in {text}"))
    };
    let before = commits().await;
    let creates: Vec<Value> = (0..300)
        .map(|i| {
            post(
                "/Users",
                &format!("u{i}"),
                json!({"userName": format!("batch{i}")}),
            )
        })
        .collect();
    let ops = bulk(&s, json!(creates), None).await;
    assert!(ops.iter().all(|o| o["status"] == "201"));
    assert!(commits().await - before >= 2);
}

/// Two bulk requests of one token run at once, four in all: a third of the same token is
/// `429` before its body is read, and once one of the two ends the token may send again.
#[tokio::test]
async fn a_token_runs_two_bulk_requests_at_once() {
    use tokio::io::AsyncWriteExt;
    let s = Server::start().await;
    // Requests whose bodies are still arriving hold their turns.
    let mut slow = Vec::new();
    for n in 0..2 {
        let mut conn = connect_from(loopback_client(40 + n), s.addr).await.unwrap();
        let head = format!(
            "POST /scim/v2/Bulk HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/scim+json\r\nContent-Length: 100000\r\n\r\n{{",
            s.token
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        slow.push(conn);
    }
    // A probe that changes nothing if it runs (its one operation is a 404).
    let probe = json!({"schemas": [BULK_REQUEST], "Operations": [
        {"method": "DELETE", "path": "/Users/nobody"}]});
    let mut refused = None;
    // The slow ones reach their turns within moments of connecting.
    for _ in 0..100 {
        let r = s.post("/scim/v2/Bulk", &probe).await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = refused.expect("a third bulk request of the token is refused");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["status"], "429");
    drop(slow);
    let body = json!({"schemas": [BULK_REQUEST], "Operations": [
        post("/Users", "u1", json!({"userName": "turns@acme.example"}))]});
    for _ in 0..100 {
        let r = s.post("/scim/v2/Bulk", &body).await;
        if r.status == 200 {
            assert_eq!(r.json()["Operations"][0]["status"], "201");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the token's turns never came back");
}
