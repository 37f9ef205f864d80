//! PATCH (RFC 7644 §3.5.2) and ETags (§3.14) over HTTP: responses, atomicity, errors,
//! membership at scale, concurrency.

use serde_json::{Value, json};

use crate::common::*;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn ana(s: &Server) -> (String, Value) {
    let u = s
        .create_user(&json!({
            "userName": "ana", "displayName": "Ana",
            "name": {"givenName": "Ana", "familyName": "Lima"},
            "emails": [{"value": "ana@work.example", "type": "work", "primary": true}],
        }))
        .await;
    (id_of(&u), u)
}

#[tokio::test]
async fn a_user_patch_answers_200_with_the_resource_and_a_new_version() {
    let s = Server::start().await;
    let (id, _) = ana(&s).await;
    let path = format!("/scim/v2/Users/{id}");
    let r = s
        .patch(
            &path,
            &json!([{"op": "replace", "path": "name.givenName", "value": "Anabela"},
                    {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let u = r.json();
    assert_eq!(u["name"]["givenName"], "Anabela");
    assert_eq!(u["name"]["familyName"], "Lima");
    assert_eq!(u[ENTERPRISE]["department"], "R&D");
    assert_eq!(u["schemas"][1], ENTERPRISE);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    assert_eq!(u["meta"]["version"], "W/\"2\"");
    assert_eq!(s.get(&path).await.json(), u);

    // Changing nothing keeps the version and lastModified.
    let again = s
        .patch(
            &path,
            &json!([{"op": "replace", "path": "name.givenName", "value": "Anabela"}]),
        )
        .await
        .json();
    assert_eq!(again["meta"], u["meta"]);
}

/// RFC 7644 §3.5.2.3: a `replace` or `remove` through a value filter that matches nothing is
/// `400 noTarget` and changes nothing; only Entra's `type eq "…"` paths create the entry they
/// name (idp-compat.md §2 row 14).
#[tokio::test]
async fn value_filters_that_match_nothing_are_no_target() {
    let s = Server::start().await;
    let (id, before) = ana(&s).await;
    let path = format!("/scim/v2/Users/{id}");
    for (op, filter_path, value) in [
        ("remove", "emails[type eq \"home\"]", None),
        (
            "Remove",
            "emails[value eq \"nobody@x.example\"].value",
            None,
        ),
        (
            "replace",
            "emails[value eq \"nobody@x.example\"].type",
            Some("home"),
        ),
        (
            "Replace",
            "emails[type eq \"work\" and primary eq false].value",
            Some("n@x"),
        ),
        (
            "replace",
            "phoneNumbers[value sw \"+1\"].value",
            Some("+1 555"),
        ),
    ] {
        let mut o = json!({"op": op, "path": filter_path});
        if let Some(v) = value {
            o["value"] = json!(v);
        }
        let ops = json!([{"op": "replace", "path": "title", "value": "Boss"}, o]);
        let body = s
            .patch(&path, &ops)
            .await
            .assert_error(400, Some("noTarget"));
        assert!(
            body["detail"].as_str().unwrap().starts_with("operation 2:"),
            "{body}"
        );
        let now = s.get(&path).await;
        assert_eq!(now.json(), before, "{ops}");
        assert_eq!(now.header("etag"), Some("W/\"1\""));
    }
    // The tolerance: a typed entry named by `type eq` is created, by Replace as by Add.
    let r = s
        .patch(
            &path,
            &json!([{"op": "Replace", "path": "emails[type eq \"home\"].value",
                     "value": "ana@home.example"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["emails"][1],
        json!({"type": "home", "value": "ana@home.example"})
    );
}

#[tokio::test]
async fn a_failing_operation_changes_nothing() {
    let s = Server::start().await;
    let (id, before) = ana(&s).await;
    let path = format!("/scim/v2/Users/{id}");
    let cases = [
        (
            json!([{"op": "replace", "path": "title", "value": "Boss"},
                {"op": "replace", "path": "id", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "Boss"},
                {"op": "replace", "path": "nope", "value": "x"},
                {"op": "replace", "path": "title[type eq \"x\"]", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "Boss"},
                {"op": "remove"}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "title", "value": "Boss"},
                {"op": "replace", "path": "active", "value": "maybe"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "remove", "path": "userName"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq]", "value": "x"}]),
            "invalidPath",
        ),
    ];
    for (ops, scim_type) in cases {
        let body = s
            .patch(&path, &ops)
            .await
            .assert_error(400, Some(scim_type));
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("operation") || detail.contains("required"),
            "{body}"
        );
        assert_eq!(s.get(&path).await.json(), before, "{ops}");
    }
    s.call("PATCH", &path, Some("{\"Operations\": ["))
        .await
        .assert_error(400, Some("invalidSyntax"));
    s.call("PATCH", &path, Some("{\"schemas\": []}"))
        .await
        .assert_error(400, Some("invalidSyntax"));
    s.patch(
        "/scim/v2/Users/nobody",
        &json!([{"op": "replace", "path": "title", "value": "x"}]),
    )
    .await
    .assert_error(404, None);
    assert_eq!(s.get(&path).await.json(), before);
}

#[tokio::test]
async fn a_second_user_with_the_same_user_name_is_refused() {
    let s = Server::start().await;
    let (id, _) = ana(&s).await;
    s.create_user(&json!({"userName": "bo"})).await;
    s.patch(
        &format!("/scim/v2/Users/{id}"),
        &json!([{"op": "replace", "path": "userName", "value": "BO"}]),
    )
    .await
    .assert_error(409, Some("uniqueness"));
}

async fn users(s: &Server, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(id_of(
            &s.create_user(&json!({"userName": format!("u{i}")})).await,
        ));
    }
    ids
}

fn member_ids(group: &Value) -> Vec<String> {
    group["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["value"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn group_membership_patches_answer_204_and_change_only_what_they_name() {
    let s = Server::start().await;
    let u = users(&s, 3).await;
    let g = s.create_group(&json!({"displayName": "Eng"})).await;
    let path = format!("/scim/v2/Groups/{}", id_of(&g));

    let r = s
        .patch(
            &path,
            &json!([{"op": "add", "path": "members",
                                "value": [{"value": u[0]}, {"value": u[1]}, {"value": "ghost"}]}]),
        )
        .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    assert_eq!(
        member_ids(&s.get(&path).await.json()),
        [u[0].clone(), u[1].clone()]
    );

    // Adding a member again, or removing one that is not there, changes nothing.
    let r = s
        .patch(&path, &json!([{"op": "add", "path": "members", "value": [{"value": u[0]}]},
                               {"op": "remove", "path": format!("members[value eq \"{}\"]", u[2])}]))
        .await;
    assert_eq!((r.status, r.header("etag")), (204, Some("W/\"2\"")));

    // Replacing the members with the same members changes nothing, not even the version;
    // a removal list naming nobody removes nobody.
    for ops in [
        json!([{"op": "replace", "path": "members", "value": [{"value": u[1]}, {"value": u[0]}]}]),
        json!([{"op": "Remove", "path": "members", "value": []}]),
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": ""}]}]),
    ] {
        let r = s.patch(&path, &ops).await;
        assert_eq!(
            (r.status, r.header("etag")),
            (204, Some("W/\"2\"")),
            "{ops}"
        );
    }
    assert_eq!(
        member_ids(&s.get(&path).await.json()),
        [u[0].clone(), u[1].clone()]
    );

    // Entra's removal by value list removes only the listed member.
    s.patch(
        &path,
        &json!([{"op": "Remove", "path": "members", "value": [{"value": u[0]}]}]),
    )
    .await;
    assert_eq!(member_ids(&s.get(&path).await.json()), [u[1].clone()]);

    // Asking for attributes gets the group back.
    let r = s
        .call(
            "PATCH",
            &format!("{path}?attributes=members"),
            Some(
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                         "Operations": [{"op": "add", "path": "members",
                                         "value": [{"value": u[2]}]}]})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(member_ids(&body), [u[1].clone(), u[2].clone()]);
    assert!(body.get("displayName").is_none());

    // A user's groups follow its memberships, and its version moves with them.
    let user = s.get(&format!("/scim/v2/Users/{}", u[2])).await.json();
    assert_eq!(user["groups"][0]["value"], json!(id_of(&g)));
    assert_eq!(user["meta"]["version"], "W/\"2\"");

    // Removing every member, then renaming.
    s.patch(&path, &json!([{"op": "remove", "path": "members"},
                           {"op": "replace", "value": {"id": "ignored", "displayName": "Platform"}}]))
        .await;
    let after = s.get(&path).await.json();
    assert_eq!(
        (after["members"].clone(), after["displayName"].clone()),
        (json!([]), json!("Platform"))
    );
}

#[tokio::test]
async fn removing_members_by_a_general_filter() {
    let s = Server::start().await;
    let u = users(&s, 2).await;
    let inner = s.create_group(&json!({"displayName": "Inner"})).await;
    let g = s
        .create_group(&json!({"displayName": "Outer", "members": [
            {"value": u[0]}, {"value": id_of(&inner), "type": "Group"}, {"value": u[1]}]}))
        .await;
    let path = format!("/scim/v2/Groups/{}", id_of(&g));
    let r = s
        .patch(
            &path,
            &json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(member_ids(&s.get(&path).await.json()), u);
    let r = s
        .patch(
            &path,
            &json!([{"op": "remove",
                     "path": format!("members[value eq \"{}\" or type eq \"Group\"]", u[0])}]),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(member_ids(&s.get(&path).await.json()), [u[1].clone()]);
    // A member's display is not stored, so it cannot select members.
    s.patch(
        &path,
        &json!([{"op": "remove", "path": "members[display eq \"u1\"]"}]),
    )
    .await
    .assert_error(400, Some("invalidPath"));
}

#[tokio::test]
async fn nesting_that_would_form_a_cycle_is_refused() {
    let s = Server::start().await;
    let a = s.create_group(&json!({"displayName": "A"})).await;
    let b = s
        .create_group(&json!({"displayName": "B", "members": [{"value": id_of(&a)}]}))
        .await;
    let r = s
        .patch(
            &format!("/scim/v2/Groups/{}", id_of(&a)),
            &json!([{"op": "add", "path": "members", "value": [{"value": id_of(&b)}]}]),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let a_now = s
        .get(&format!("/scim/v2/Groups/{}", id_of(&a)))
        .await
        .json();
    assert_eq!(a_now["members"], json!([]));
}

#[tokio::test]
async fn if_match_guards_writes_and_if_none_match_saves_reads() {
    let s = Server::start().await;
    let (id, _) = ana(&s).await;
    let path = format!("/scim/v2/Users/{id}");
    let auth = format!("Bearer {}", s.token);
    let patch =
        json!({"Operations": [{"op": "replace", "path": "title", "value": "x"}]}).to_string();
    let put = json!({"userName": "ana"}).to_string();
    for (method, body) in [
        ("PATCH", Some(patch.as_str())),
        ("PUT", Some(put.as_str())),
        ("DELETE", None),
    ] {
        let r = s
            .raw(
                method,
                &path,
                &[("authorization", &auth), ("if-match", "W/\"7\"")],
                body,
            )
            .await;
        r.assert_error(412, None);
    }
    assert_eq!(s.get(&path).await.json()["meta"]["version"], "W/\"1\"");
    let r = s
        .raw(
            "PATCH",
            &path,
            &[("authorization", &auth), ("if-match", "W/\"1\"")],
            Some(&patch),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .raw(
            "PUT",
            &path,
            &[("authorization", &auth), ("if-match", "*")],
            Some(&put),
        )
        .await;
    assert_eq!(r.status, 200);
    let tag = r.header("etag").unwrap().to_string();

    let r = s
        .raw(
            "GET",
            &path,
            &[("authorization", &auth), ("if-none-match", &tag)],
            None,
        )
        .await;
    assert_eq!((r.status, r.header("etag")), (304, Some(tag.as_str())));
    assert!(r.body.is_empty());
    let r = s
        .raw(
            "GET",
            &path,
            &[("authorization", &auth), ("if-none-match", "W/\"1\"")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    let g = s.create_group(&json!({"displayName": "G"})).await;
    let gpath = format!("/scim/v2/Groups/{}", id_of(&g));
    let r = s
        .raw(
            "GET",
            &gpath,
            &[("authorization", &auth), ("if-none-match", "W/\"1\"")],
            None,
        )
        .await;
    assert_eq!(r.status, 304);
    let r = s
        .raw(
            "DELETE",
            &gpath,
            &[("authorization", &auth), ("if-match", "W/\"2\"")],
            None,
        )
        .await;
    r.assert_error(412, None);
    let r = s
        .raw(
            "DELETE",
            &gpath,
            &[("authorization", &auth), ("if-match", "W/\"1\"")],
            None,
        )
        .await;
    assert_eq!(r.status, 204);
}

/// Entra requires 25 requests/s per tenant; 32 PATCHes at once on one group and on one user
/// must all land.
#[tokio::test]
async fn concurrent_patches_lose_no_update() {
    let s = std::sync::Arc::new(Server::start().await);
    let u = users(&s, 32).await;
    let g = s.create_group(&json!({"displayName": "Busy"})).await;
    let gpath = format!("/scim/v2/Groups/{}", id_of(&g));
    let (uid, _) = ana(&s).await;
    let upath = format!("/scim/v2/Users/{uid}");
    let mut tasks = Vec::new();
    for (i, member) in u.iter().enumerate() {
        let (s, gpath, upath, member) = (s.clone(), gpath.clone(), upath.clone(), member.clone());
        tasks.push(tokio::spawn(async move {
            let r = s
                .patch(
                    &gpath,
                    &json!([{"op": "add", "path": "members", "value": [{"value": member}]}]),
                )
                .await;
            assert_eq!(r.status, 204);
            let r = s
                .patch(
                    &upath,
                    &json!([{"op": "add", "path": "emails",
                                        "value": [{"value": format!("n{i}@example.org")}]}]),
                )
                .await;
            assert_eq!(r.status, 200);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let group = s.get(&gpath).await.json();
    assert_eq!(group["members"].as_array().map(Vec::len), Some(32));
    assert_eq!(group["meta"]["version"], "W/\"33\"");
    let user = s.get(&upath).await.json();
    assert_eq!(user["emails"].as_array().map(Vec::len), Some(33));
    assert_eq!(user["meta"]["version"], "W/\"33\"");
}
