//! The console's people views (issue 15): the Users search across every searched attribute,
//! the state filter and "suspended since", exports of the filtered list (CSV defused against
//! formulas, JSON, streamed), a deleted user's page, a group's members searched, paged,
//! marked when suspended and exported.

use serde_json::{Value, json};

use crate::common::*;
use crate::console::set_up;

fn user_names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

async fn suspend(s: &Server, id: &str, active: bool) {
    let r = s
        .patch(
            &format!("/scim/v2/Users/{id}"),
            &json!([{"op": "replace", "path": "active", "value": active}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn the_users_search_finds_every_attribute_and_filters_by_state() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let aisha = s
        .create_user(&json!({
            "schemas": [USER_URN, ENTERPRISE_URN],
            "userName": "abello@acme.example",
            "name": {"givenName": "Aïsha", "familyName": "Bello", "formatted": "Dr Aïsha Bello"},
            "displayName": "Aisha B.",
            "emails": [{"value": "abello@acme.example", "type": "work", "primary": true},
                       {"value": "sunny.day@home.example", "type": "home"}],
            "externalId": "00u4711",
            "title": "Platform Engineer",
            ENTERPRISE_URN: {"department": "Treasury"},
        }))
        .await;
    let bo = s
        .create_user(&json!({"userName": "bo@acme.example", "title": "Accountant"}))
        .await;
    for (q, what) in [
        ("abell", "userName"),
        ("AISHA", "givenName, any case, without its accent"),
        ("bello", "familyName"),
        ("dr a", "formatted"),
        ("aisha b.", "displayName"),
        ("sunny.day", "a second email"),
        ("00u47", "externalId"),
        ("engineer", "title"),
        ("treas", "department"),
    ] {
        let found = c
            .get(&format!("/admin/api/users?q={}", q.replace(' ', "%20")))
            .await;
        assert_eq!(
            user_names(&found),
            ["abello@acme.example"],
            "{what}: {found}"
        );
        assert_eq!(found["total"], 1, "{what}");
    }
    let both = c.get("/admin/api/users?q=acme.example").await;
    assert_eq!(
        user_names(&both),
        ["abello@acme.example", "bo@acme.example"]
    );
    // Two letters: the start of a userName.
    let short = c.get("/admin/api/users?q=bo").await;
    assert_eq!(user_names(&short), ["bo@acme.example"]);

    // Suspended since the PATCH that set active to false; a later change keeps it.
    suspend(&s, &id_of(&bo), false).await;
    let suspended = c.get("/admin/api/users?state=suspended").await;
    assert_eq!(user_names(&suspended), ["bo@acme.example"]);
    let since = suspended["items"][0]["suspendedSince"].clone();
    assert_eq!(since, suspended["items"][0]["meta"]["lastModified"]);
    s.patch(
        &format!("/scim/v2/Users/{}", id_of(&bo)),
        &json!([{"op": "replace", "path": "title", "value": "Auditor"}]),
    )
    .await;
    let later = c.get("/admin/api/users?state=suspended&q=acme").await;
    assert_eq!(later["items"][0]["suspendedSince"], since);
    assert_eq!(later["items"][0]["title"], "Auditor", "the index follows");
    assert_eq!(
        user_names(&c.get("/admin/api/users?state=active&q=acme").await),
        ["abello@acme.example"]
    );
    assert_eq!(
        c.get("/admin/api/users?state=active").await["items"][0]["suspendedSince"],
        Value::Null
    );
    suspend(&s, &id_of(&bo), true).await;
    assert_eq!(c.get("/admin/api/users?state=suspended").await["total"], 0);
    assert_eq!(
        c.call("GET", "/admin/api/users?state=gone", None)
            .await
            .status,
        400
    );
    // A changed name is found by its new value only.
    s.put(
        &format!("/scim/v2/Users/{}", id_of(&aisha)),
        &json!({"userName": "aisha@acme.example"}),
    )
    .await;
    assert_eq!(c.get("/admin/api/users?q=bello").await["total"], 0);
    assert_eq!(c.get("/admin/api/users?q=aisha@").await["total"], 1);
}

/// Users whose text a spreadsheet would run as a formula, and enough of them that the export
/// takes more than one batch (500).
async fn many_users(s: &Server) {
    let store = scimd::store::Store::open(&s.db()).unwrap();
    let registry = store.registry();
    store
        .write_sync(|tx| {
            for i in 0..520 {
                let body = json!({"userName": format!("=cmd{i:03}@calc.example"),
                                  "title": "+SUM(A1)", "displayName": "-x, \"quoted\""});
                let doc = scimd::scim::validate::user(body, &registry)?.doc;
                scimd::store::users::insert(
                    tx,
                    &format!("id{i:03}"),
                    doc,
                    "2026-01-01T00:00:00.000Z",
                )?;
            }
            Ok(())
        })
        .unwrap();
}

/// The search index is kept off the write path, yet a search sees every write made before
/// it (here one made beside the server), and the server indexes users written over SCIM by
/// itself once writes pause.
#[tokio::test]
async fn a_search_sees_every_write_and_the_server_indexes_when_writes_pause() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let store = scimd::store::Store::open(&s.db()).unwrap();
    let registry = store.registry();
    store
        .write_sync(|tx| {
            let body = json!({"schemas": [USER_URN], "userName": "quinn.murphy@acme.example"});
            let doc = scimd::scim::validate::user(body, &registry)?.doc;
            scimd::store::users::insert(tx, "q1", doc, "2026-01-01T00:00:00.000Z")
        })
        .unwrap();
    let found = c.get("/admin/api/users?q=murph").await;
    assert_eq!(user_names(&found), ["quinn.murphy@acme.example"], "{found}");

    s.create_user(&json!({"userName": "rosa.garcia@acme.example"}))
        .await;
    let unindexed = || store.read_sync(scimd::store::people::unindexed).unwrap();
    let mut waited = 0;
    while unindexed() > 0 {
        assert!(
            waited < 200,
            "the server never indexed the user written over SCIM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
}

#[tokio::test]
async fn the_users_export_is_filtered_streamed_and_defused() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    many_users(&s).await;
    s.create_user(&json!({"userName": "other@else.example"}))
        .await;

    let r = c
        .call(
            "GET",
            "/admin/api/users/export?format=csv&q=calc.example",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        r.header("content-disposition")
            .is_some_and(|d| d.contains("scimd-users.csv")),
        "{:?}",
        r.headers
    );
    assert!(
        r.header("content-length").is_none(),
        "streamed, not buffered"
    );
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("id,userName,displayName,"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines.len(),
        521,
        "a header and every match once, across batches"
    );
    assert!(
        lines[1].starts_with("id000,'=cmd000@calc.example,\"'-x, \"\"quoted\"\"\","),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(",'+SUM(A1),"), "{}", lines[1]);
    assert!(!text.contains("other@else"));

    let r = c
        .call("GET", "/admin/api/users/export?format=json&q=cmd01", None)
        .await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let all: Value = serde_json::from_slice(&r.body).unwrap();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 10);
    assert!(names.iter().all(|n| n.starts_with("=cmd01")), "{names:?}");
    assert_eq!(all[0]["title"], "+SUM(A1)", "JSON keeps values as they are");

    // The state filter applies, and without a search every user is exported.
    suspend(&s, "id007", false).await;
    let r = c
        .call(
            "GET",
            "/admin/api/users/export?format=json&state=suspended",
            None,
        )
        .await;
    let suspended: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(suspended.as_array().unwrap().len(), 1);
    assert_eq!(suspended[0]["id"], "id007");
    let r = c
        .call("GET", "/admin/api/users/export?format=csv", None)
        .await;
    assert_eq!(String::from_utf8_lossy(&r.body).lines().count(), 522);
    let r = c
        .call("GET", "/admin/api/users/export?format=xml", None)
        .await;
    assert_eq!(r.status, 400);

    // Each export is in the audit log, with what selected it; the refused one is not.
    let log = c.get("/admin/api/audit?action=users.export").await;
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{log}");
    let details: Vec<&Value> = entries.iter().map(|e| &e["detail"]).collect();
    assert!(
        details.contains(&&json!({"q": "calc.example", "format": "csv"})),
        "{details:?}"
    );
    assert!(details.contains(&&json!({"state": "suspended", "format": "json"})));
    assert_eq!(entries[0]["actor"], "root");
}

#[tokio::test]
async fn a_deleted_user_keeps_a_console_page() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let u = s
        .create_user(&json!({"userName": "leaver@acme.example", "displayName": "Lee Ver"}))
        .await;
    let id = id_of(&u);
    assert_eq!(s.delete(&format!("/scim/v2/Users/{id}")).await.status, 204);
    assert_eq!(s.get(&format!("/scim/v2/Users/{id}")).await.status, 404);

    let page = c.get(&format!("/admin/api/users/{id}")).await;
    let gone = &page["deleted"];
    assert_eq!(gone["id"], id.as_str());
    assert_eq!(gone["userName"], "leaver@acme.example");
    assert_eq!(gone["displayName"], "Lee Ver");
    assert!(
        gone["deletedBy"].as_str().unwrap().starts_with("test-"),
        "the token's name: {gone}"
    );
    assert!(gone["deletedAt"].as_str().unwrap().ends_with('Z'));
    let actions: Vec<&str> = page["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user.delete", "user.create"]);
    assert_eq!(
        c.call("GET", "/admin/api/users/never-was", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn group_members_are_searched_paged_marked_and_exported() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let mut ids = Vec::new();
    for name in ["ana", "anton", "bo", "=cy"] {
        let u = s
            .create_user(&json!({"userName": format!("{name}@acme.example")}))
            .await;
        ids.push(id_of(&u));
    }
    suspend(&s, &ids[1], false).await;
    let inner = s.create_group(&json!({"displayName": "Ana's team"})).await;
    let mut members: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
    members.push(json!({"value": id_of(&inner)}));
    let g = s
        .create_group(&json!({"displayName": "Everyone", "members": members}))
        .await;
    let gid = id_of(&g);

    let found = c.get(&format!("/admin/api/groups/{gid}?q=AN")).await;
    assert_eq!(found["group"]["memberCount"], 3);
    let listed: Vec<(&str, &Value)> = found["group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), &m["active"]))
        .collect();
    assert_eq!(
        listed,
        [
            ("ana@acme.example", &json!(true)),
            ("anton@acme.example", &json!(false)),
            ("Ana's team", &Value::Null)
        ]
    );
    let page2 = c
        .get(&format!("/admin/api/groups/{gid}?count=2&startIndex=3"))
        .await;
    assert_eq!(page2["group"]["memberCount"], 5);
    let names: Vec<&str> = page2["group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bo@acme.example", "=cy@acme.example"]);

    let r = c
        .call(
            "GET",
            &format!("/admin/api/groups/{gid}/members/export?format=csv"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id,type,name,displayName,active");
    assert_eq!(lines.len(), 6);
    assert_eq!(
        lines[2],
        format!("{},User,anton@acme.example,,false", ids[1])
    );
    assert_eq!(lines[4], format!("{},User,'=cy@acme.example,,true", ids[3]));
    let r = c
        .call(
            "GET",
            &format!("/admin/api/groups/{gid}/members/export?format=json&q=team"),
            None,
        )
        .await;
    let json: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        json,
        json!([{"id": id_of(&inner), "type": "Group", "name": "Ana's team",
                "displayName": null, "active": null}])
    );
    let r = c
        .call("GET", "/admin/api/groups/nope/members/export", None)
        .await;
    assert_eq!(r.status, 404);
    let log = c.get("/admin/api/audit?action=group.members_export").await;
    let details: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["detail"])
        .collect();
    assert_eq!(
        details,
        [
            &json!({"group": gid, "q": "team", "format": "json"}),
            &json!({"group": gid, "format": "csv"})
        ],
        "newest first; the unknown group's export is not recorded"
    );
}

/// A database turned read-only (its file deleted under the server) still answers the
/// console's search, from the index as it is: taking in the noted users is a write, and
/// its failure does not fail the search.
#[tokio::test]
async fn a_read_only_server_still_searches() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    s.create_user(&json!({"userName": "pat.lee@acme.example"}))
        .await;
    std::fs::remove_file(s.db()).unwrap();
    let r = c.call("GET", "/admin/api/users?q=acme.example", None).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
