//! One rule for unknown input: an attribute or sub-attribute scimd does not know is ignored,
//! never refused, in POST, PUT and PATCH; the write goes through, its audit entry names what
//! was ignored (bounded), and `/metrics` counts it. Type errors on known attributes stay 400.

use serde_json::{Value, json};

use scimd::store::Store;
use scimd::store::audit::{self, Entry, Query};

use crate::common::*;

const METRICS_TOKEN: &str = "m3trics-secret";

async fn server() -> Server {
    Server::start_in(tempfile::TempDir::new().unwrap(), |mut c| {
        c.metrics_token = Some(METRICS_TOKEN.into());
        c
    })
    .await
}

/// The newest audit entry of `action`.
fn last(s: &Server, action: &str) -> Entry {
    let store = Store::open(&s.db()).unwrap();
    let q = Query {
        limit: 1000,
        ..Default::default()
    };
    let log = store.read_sync(|conn| audit::list(conn, &q)).unwrap();
    log.into_iter()
        .find(|e| e.action == action)
        .unwrap_or_else(|| panic!("no {action} entry"))
}

/// What the entry says was ignored.
fn ignored(e: &Entry) -> Value {
    e.detail
        .as_ref()
        .map_or(Value::Null, |d| d["ignored"].clone())
}

/// `scimd_ignored_attributes_total` for `resource`.
async fn counted(s: &Server, resource: &str) -> u64 {
    let auth = format!("Bearer {METRICS_TOKEN}");
    let r = s
        .raw("GET", "/metrics", &[("authorization", &auth)], None)
        .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    let prefix = format!("scimd_ignored_attributes_total{{resource=\"{resource}\"}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {text}"));
    line[prefix.len()..].parse().unwrap()
}

#[tokio::test]
async fn unknown_user_attributes_are_ignored_named_and_counted() {
    let s = server().await;
    // POST: the write is stored without the unknown names.
    let created = s
        .post(
            "/scim/v2/Users",
            &json!({
                "userName": "ana",
                "adreses": [{"street": "x"}],
                "name": {"givenName": "Ana", "nickname": "A"},
                "department": "Sales",
                ENTERPRISE_URN: {"costCenter": "42", "shoeSize": 38},
                "urn:example:acme:2.0:User": {"badge": "7"},
            }),
        )
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let u = created.json();
    let path = format!("/scim/v2/Users/{}", id_of(&u));
    let stored = s.get(&path).await.json();
    assert_eq!(stored["name"], json!({"givenName": "Ana"}));
    assert_eq!(stored[ENTERPRISE_URN], json!({"costCenter": "42"}));
    assert!(stored.get("adreses").is_none(), "{stored}");
    // Another extension's object is not this rule's to name.
    assert_eq!(
        ignored(&last(&s, "user.create")),
        json!([
            "adreses",
            "name.nickname",
            "department",
            format!("{ENTERPRISE_URN}:shoeSize")
        ])
    );
    assert_eq!(counted(&s, "User").await, 4);

    // PUT: the same.
    let r = s
        .put(
            &path,
            &json!({"userName": "ana", "title": "Lead", "adreses": "x",
                    "emails": [{"value": "a@x.example", "label": "work"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let stored = s.get(&path).await.json();
    assert_eq!(stored["title"], "Lead");
    assert_eq!(stored["emails"], json!([{"value": "a@x.example"}]));
    assert_eq!(
        ignored(&last(&s, "user.replace")),
        json!(["adreses", "emails.label"])
    );
    assert_eq!(counted(&s, "User").await, 6);

    // PATCH: by path and inside values; the known operation does its work.
    let r = s
        .patch(
            &path,
            &json!([
                {"op": "replace", "path": "adreses", "value": "x"},
                {"op": "add", "path": "name.nickname", "value": "A"},
                {"op": "replace", "value": {"title": "Boss", "favouriteColour": "blue"}},
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.get(&path).await.json()["title"], "Boss");
    assert_eq!(
        ignored(&last(&s, "user.patch")),
        json!(["adreses", "name.nickname", "favouriteColour"])
    );
    assert_eq!(counted(&s, "User").await, 9);
    assert_eq!(counted(&s, "Group").await, 0);
}

#[tokio::test]
async fn type_errors_and_bad_paths_still_refuse_the_write() {
    let s = server().await;
    let u = s.create_user(&json!({"userName": "ana"})).await;
    let path = format!("/scim/v2/Users/{}", id_of(&u));
    s.post(
        "/scim/v2/Users",
        &json!({"userName": "bob", "adreses": "x", "active": "maybe"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    s.put(
        &path,
        &json!({"userName": "ana", "adreses": "x", "title": 5}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    s.patch(
        &path,
        &json!([{"op": "replace", "path": "adreses", "value": "x"},
                {"op": "replace", "path": "emails[type eq]", "value": "x"}]),
    )
    .await
    .assert_error(400, Some("invalidPath"));
    assert_eq!(s.get(&path).await.json(), u);
    assert_eq!(
        counted(&s, "User").await,
        0,
        "a refused write counts nothing"
    );
}

#[tokio::test]
async fn what_an_entry_records_is_bounded() {
    let s = server().await;
    let mut body = json!({"userName": "ana"});
    for i in 0..200 {
        body[format!("x{i:03}{}", "y".repeat(1000))] = json!(i);
    }
    let r = s.post("/scim/v2/Users", &body).await;
    assert_eq!(r.status, 201);
    let e = last(&s, "user.create");
    let names = ignored(&e);
    let names = names.as_array().unwrap();
    assert_eq!(names.len(), 20);
    assert!(
        names.iter().all(|n| n.as_str().unwrap().len() == 64),
        "{names:?}"
    );
    assert_eq!(e.detail.as_ref().unwrap()["ignoredMore"], 180);
    assert!(e.detail.as_ref().unwrap().to_string().len() < 2000);
    assert_eq!(counted(&s, "User").await, 200);
}

#[tokio::test]
async fn members_with_display_name_are_added() {
    let s = server().await;
    let a = id_of(&s.create_user(&json!({"userName": "a"})).await);
    let b = id_of(&s.create_user(&json!({"userName": "b"})).await);
    let c = id_of(&s.create_user(&json!({"userName": "c"})).await);
    // Microsoft's Entra SCIM test suite sends members this way.
    let r = s
        .post(
            "/scim/v2/Groups",
            &json!({"schemas": [GROUP_URN], "displayName": "Eng", "description": "x",
                    "members": [{"value": a, "displayName": "a", "display": "a",
                                 "type": "User", "$ref": null}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let path = format!("/scim/v2/Groups/{}", id_of(&r.json()));
    assert_eq!(
        ignored(&last(&s, "group.create")),
        json!(["description", "members.displayName"])
    );
    let r = s
        .patch(
            &path,
            &json!([{"op": "add", "path": "members",
                     "value": [{"value": b, "displayName": "b"}]}]),
        )
        .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        ignored(&last(&s, "group.patch")),
        json!(["members.displayName"])
    );
    let r = s
        .put(
            &path,
            &json!({"displayName": "Eng", "members": [
                {"value": a, "displayName": "a"}, {"value": b}, {"value": c, "x": 1}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut members: Vec<String> = s.get(&path).await.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    members.sort();
    let mut expected = vec![a, b, c];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(
        ignored(&last(&s, "group.replace")),
        json!(["members.displayName", "members.x"])
    );
    assert_eq!(counted(&s, "Group").await, 5);
    // A member that names nobody is still refused.
    s.patch(
        &path,
        &json!([{"op": "add", "path": "members", "value": [{"displayName": "d"}]}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
}

/// A member whose `value` is null or empty but which says something else names nobody: it is
/// refused in POST, PUT and PATCH, never dropped (a `replace` with it would empty the group).
#[tokio::test]
async fn a_member_with_a_blank_value_and_other_keys_is_refused() {
    let s = server().await;
    let a = id_of(&s.create_user(&json!({"userName": "a"})).await);
    let g = s
        .create_group(&json!({"displayName": "Eng", "members": [{"value": a}]}))
        .await;
    let path = format!("/scim/v2/Groups/{}", id_of(&g));
    for nobody in [
        json!({"value": null, "displayName": "Bob"}),
        json!({"value": "", "display": "Bob"}),
    ] {
        let members = json!([nobody.clone()]);
        s.post(
            "/scim/v2/Groups",
            &json!({"displayName": "Other", "members": members}),
        )
        .await
        .assert_error(400, Some("invalidValue"));
        s.put(&path, &json!({"displayName": "Eng", "members": members}))
            .await
            .assert_error(400, Some("invalidValue"));
        for op in ["replace", "add", "remove"] {
            s.patch(
                &path,
                &json!([{"op": op, "path": "members", "value": members}]),
            )
            .await
            .assert_error(400, Some("invalidValue"));
        }
        s.patch(
            &path,
            &json!([{"op": "replace", "value": {"members": [nobody]}}]),
        )
        .await
        .assert_error(400, Some("invalidValue"));
    }
    let after = s.get(&path).await.json();
    assert_eq!(after["members"][0]["value"], json!(a), "{after}");
    assert_eq!(after["meta"], g["meta"], "nothing changed");
}

/// The entries of `action`, newest first.
fn entries(s: &Server, action: &str) -> Vec<Entry> {
    let store = Store::open(&s.db()).unwrap();
    let q = Query {
        limit: 1000,
        ..Default::default()
    };
    let log = store.read_sync(|conn| audit::list(conn, &q)).unwrap();
    log.into_iter().filter(|e| e.action == action).collect()
}

/// A write that changes nothing but ignores names (OneLogin's unchanged PUT, Entra's PATCH of
/// an attribute scimd does not keep) still names them, once a day per actor, resource type and
/// set of names; every one is counted.
#[tokio::test]
async fn a_write_that_changes_nothing_names_what_it_ignored_once() {
    let s = server().await;
    let u = s
        .create_user(&json!({"userName": "ana", "title": "Lead"}))
        .await;
    let path = format!("/scim/v2/Users/{}", id_of(&u));
    let put = json!({"userName": "ana", "title": "Lead", "adreses": "x"});
    for _ in 0..3 {
        let r = s.put(&path, &put).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["meta"], u["meta"], "nothing changed");
    }
    let replaced = entries(&s, "user.replace");
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(
        replaced[0].detail,
        Some(json!({"ignored": ["adreses"], "unchanged": true}))
    );
    assert_eq!(replaced[0].resource_id.as_deref(), Some(id_of(&u).as_str()));
    // Another set of names is another key; the same set in PATCH is another action but the
    // same key (actor, resource type, names), so it is not recorded again.
    let other = json!({"userName": "ana", "title": "Lead", "adreses": "x", "shoe": 1});
    assert_eq!(s.put(&path, &other).await.status, 200);
    assert_eq!(entries(&s, "user.replace").len(), 2);
    for _ in 0..2 {
        let r = s
            .patch(
                &path,
                &json!([{"op": "add", "path": "nickName2", "value": "x"}]),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let patched = entries(&s, "user.patch");
    assert_eq!(patched.len(), 1, "{patched:?}");
    assert_eq!(
        patched[0].detail,
        Some(json!({"ignored": ["nickName2"], "unchanged": true}))
    );
    assert_eq!(counted(&s, "User").await, 7);
    // Groups too.
    let g = s.create_group(&json!({"displayName": "Eng"})).await;
    let gpath = format!("/scim/v2/Groups/{}", id_of(&g));
    for _ in 0..2 {
        let r = s
            .patch(
                &gpath,
                &json!([{"op": "replace", "path": "description", "value": "x"}]),
            )
            .await;
        assert_eq!(r.status, 204);
    }
    let patched = entries(&s, "group.patch");
    assert_eq!(patched.len(), 1, "{patched:?}");
    assert_eq!(
        patched[0].detail,
        Some(json!({"ignored": ["description"], "unchanged": true}))
    );
    // A write that changes nothing and ignores nothing leaves no entry.
    let r = s
        .put(&path, &json!({"userName": "ana", "title": "Lead"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(entries(&s, "user.replace").len(), 2);
}
