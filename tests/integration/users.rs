//! /Users: create, read, replace, delete, list, filter.

use serde_json::{Value, json};

use crate::common::*;

fn jane() -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE_URN],
        "userName": "jane@example.com",
        "externalId": "ext-jane",
        "name": {"givenName": "Jane", "familyName": "Doe", "formatted": "Jane Doe"},
        "displayName": "Jane Doe",
        "title": "Engineer",
        "emails": [{"value": "jane@example.com", "type": "work", "primary": true},
                   {"value": "jd@home.example", "type": "home"}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
        "addresses": [{"type": "work", "locality": "Lisbon", "country": "PT"}],
        "active": true,
        "password": "hunter2-is-not-stored",
        ENTERPRISE_URN: {"employeeNumber": "42", "department": "R&D",
                         "manager": {"value": "boss-id"}}
    })
}

#[tokio::test]
async fn create_returns_201_with_location_etag_and_the_resource() {
    let s = Server::start().await;
    let r = s.post("/scim/v2/Users", &jane()).await;
    assert_eq!(r.status, 201);
    let u = r.json();
    let id = id_of(&u);
    assert_eq!(
        r.header("location"),
        Some(format!("http://{}/scim/v2/Users/{id}", s.addr).as_str())
    );
    assert_eq!(r.header("etag"), u["meta"]["version"].as_str());
    assert_eq!(u["meta"]["location"].as_str(), r.header("location"));
    assert_eq!(u["meta"]["resourceType"], "User");
    assert_eq!(u["meta"]["created"], u["meta"]["lastModified"]);
    assert_eq!(u["schemas"], json!([USER_URN, ENTERPRISE_URN]));
    assert_eq!(u["userName"], "jane@example.com");
    assert_eq!(u["name"]["familyName"], "Doe");
    assert_eq!(u["emails"][1]["value"], "jd@home.example");
    assert_eq!(u[ENTERPRISE_URN]["department"], "R&D");
    assert_eq!(u["active"], true);
    assert!(
        u.get("password").is_none(),
        "password must never be returned"
    );
    assert!(!String::from_utf8_lossy(&r.body).contains("hunter2"));

    let got = s.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), u);
    assert_eq!(got.header("etag"), u["meta"]["version"].as_str());
}

#[tokio::test]
async fn new_users_are_active_unless_told_otherwise() {
    let s = Server::start().await;
    let u = s.create_user(&json!({"userName": "a"})).await;
    assert_eq!(u["active"], true);
    let u = s
        .create_user(&json!({"userName": "b", "active": false}))
        .await;
    assert_eq!(u["active"], false);
}

#[tokio::test]
async fn put_replaces_clears_omitted_attributes_and_bumps_the_version() {
    let s = Server::start().await;
    let u = s.create_user(&jane()).await;
    let id = id_of(&u);
    let r = s
        .put(
            &format!("/scim/v2/Users/{id}"),
            &json!({"userName": "jane.doe@example.com", "name": {"givenName": "Janet"},
                    "id": "ignored", "meta": {"version": "W/\"99\""}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["id"], json!(id));
    assert_eq!(v["userName"], "jane.doe@example.com");
    assert_eq!(v["name"], json!({"givenName": "Janet"}));
    assert!(v.get("emails").is_none() && v.get("title").is_none());
    assert!(v.get(ENTERPRISE_URN).is_none());
    assert_eq!(v["schemas"], json!([USER_URN]));
    assert_eq!(v["meta"]["version"], "W/\"2\"");
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    assert_eq!(v["meta"]["created"], u["meta"]["created"]);
    // `active` was not mentioned: the account keeps its state.
    assert_eq!(v["active"], true);
    // Emails were cleared, so the old address no longer finds the user.
    let found = s
        .filter("Users", "emails.value eq \"jane@example.com\"")
        .await;
    assert_eq!(found["totalResults"], 0);
}

#[tokio::test]
async fn put_without_active_keeps_a_suspended_user_suspended() {
    let s = Server::start().await;
    let u = s
        .create_user(&json!({"userName": "sus", "active": false}))
        .await;
    let r = s
        .put(
            &format!("/scim/v2/Users/{}", id_of(&u)),
            &json!({"userName": "sus", "title": "x"}),
        )
        .await;
    assert_eq!(r.json()["active"], false);
}

#[tokio::test]
async fn put_with_the_same_body_changes_nothing() {
    let s = Server::start().await;
    let u = s.create_user(&jane()).await;
    let path = format!("/scim/v2/Users/{}", id_of(&u));
    let r = s.put(&path, &jane()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["meta"]["version"], "W/\"1\"");
    assert_eq!(r.json()["meta"]["lastModified"], u["meta"]["lastModified"]);
}

#[tokio::test]
async fn put_may_change_user_name_but_not_to_a_taken_one() {
    let s = Server::start().await;
    let a = s.create_user(&json!({"userName": "a@x"})).await;
    s.create_user(&json!({"userName": "b@x"})).await;
    let path = format!("/scim/v2/Users/{}", id_of(&a));
    s.put(&path, &json!({"userName": "B@X"}))
        .await
        .assert_error(409, Some("uniqueness"));
    // Changing only the case of one's own userName is fine.
    let r = s.put(&path, &json!({"userName": "A@X"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["userName"], "A@X");
}

#[tokio::test]
async fn delete_removes_the_user() {
    let s = Server::start().await;
    let u = s.create_user(&jane()).await;
    let path = format!("/scim/v2/Users/{}", id_of(&u));
    let r = s.delete(&path).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    s.get(&path).await.assert_error(404, None);
    s.delete(&path).await.assert_error(404, None);
    // The userName is free again.
    s.create_user(&json!({"userName": "jane@example.com"}))
        .await;
}

#[tokio::test]
async fn filters_find_users_by_their_lookup_attributes() {
    let s = Server::start().await;
    let u = s.create_user(&jane()).await;
    s.create_user(&json!({"userName": "other", "externalId": "ext-other",
                          "emails": [{"value": "other@example.com"}]}))
        .await;
    let id = id_of(&u);
    for f in [
        "userName eq \"jane@example.com\"".to_string(),
        "userName eq \"JANE@Example.COM\"".to_string(),
        "UserName EQ \"jane@example.com\"".to_string(),
        format!("{USER_URN}:userName eq \"jane@example.com\""),
        "externalId eq \"ext-jane\"".to_string(),
        format!("id eq \"{id}\""),
        "emails.value eq \"JD@home.example\"".to_string(),
        "emails[value eq \"jane@example.com\"]".to_string(),
        "userName eq \"jane@example.com\" and active eq true".to_string(),
        "userName eq \"nobody\" or externalId eq \"ext-jane\"".to_string(),
        "emails[type eq \"work\"].value eq \"JANE@example.com\"".to_string(),
        "emails[type eq \"home\" and value eq \"jd@home.example\"]".to_string(),
    ] {
        let list = s.filter("Users", &f).await;
        assert_eq!(ids(&list), vec![id.clone()], "filter {f}");
        assert_eq!(list["totalResults"], 1, "filter {f}");
    }
    // externalId is caseExact.
    assert_eq!(
        s.filter("Users", "externalId eq \"EXT-JANE\"").await["totalResults"],
        0
    );
    // The type must match the same email as the value.
    let wrong = s
        .filter(
            "Users",
            "emails[type eq \"home\"].value eq \"jane@example.com\"",
        )
        .await;
    assert_eq!(wrong["totalResults"], 0);
    // A user without an externalId matches a negated externalId filter.
    let no_ext = id_of(&s.create_user(&json!({"userName": "noext"})).await);
    let negated = s.filter("Users", "not (externalId eq \"ext-jane\")").await;
    assert!(ids(&negated).contains(&no_ext), "{negated}");
    assert!(!ids(&negated).contains(&id), "{negated}");
}

#[tokio::test]
async fn a_lookup_that_matches_nothing_is_an_empty_list() {
    let s = Server::start().await;
    let list = s
        .filter("Users", "userName eq \"nobody@example.com\"")
        .await;
    assert_eq!(
        list,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
               "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
    );
}

#[tokio::test]
async fn paging_is_exact_stable_and_disjoint() {
    let s = Server::start().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(id_of(
            &s.create_user(&json!({"userName": format!("user{i}")}))
                .await,
        ));
    }
    let mut seen = Vec::new();
    for start in [1, 4, 7] {
        let r = s
            .get(&format!("/scim/v2/Users?startIndex={start}&count=3"))
            .await;
        let page = r.json();
        assert_eq!(page["totalResults"], 7);
        assert_eq!(page["startIndex"], start);
        assert_eq!(
            page["itemsPerPage"],
            page["Resources"].as_array().unwrap().len()
        );
        seen.extend(ids(&page));
    }
    assert_eq!(
        seen, created,
        "pages cover every user once, in a stable order"
    );

    let zero = s.get("/scim/v2/Users?count=0").await.json();
    assert_eq!(
        (zero["totalResults"].as_u64(), zero["itemsPerPage"].as_u64()),
        (Some(7), Some(0))
    );
    let past = s.get("/scim/v2/Users?startIndex=100").await.json();
    assert_eq!(past["itemsPerPage"], 0);
    assert_eq!(past["totalResults"], 7);
    let below = s.get("/scim/v2/Users?startIndex=0&count=2").await.json();
    assert_eq!(below["startIndex"], 1);
    assert_eq!(ids(&below), created[..2].to_vec());
    let all = s.get("/scim/v2/Users").await.json();
    assert_eq!(ids(&all), created);
}

#[tokio::test]
async fn bad_filters_are_invalid_filter() {
    let s = Server::start().await;
    for f in [
        "userName eq",
        "\"bjensen\"",
        "userName eq \"a\" )",
        "nosuch eq \"x\"",
        "active co \"t\"",
        "password eq \"x\"",
        "meta.created gt \"last week\"",
    ] {
        let body = s
            .get(&format!("/scim/v2/Users?{}", filter_query(f)))
            .await
            .assert_error(400, Some("invalidFilter"));
        assert!(body["detail"].as_str().unwrap().len() > 10, "{f}: {body}");
    }
}

#[tokio::test]
async fn a_user_lists_direct_and_indirect_groups() {
    let s = Server::start().await;
    let u = s.create_user(&json!({"userName": "ana"})).await;
    let uid = id_of(&u);
    let finance = s
        .create_group(&json!({"displayName": "Finance", "members": [{"value": uid}]}))
        .await;
    let all = s
        .create_group(&json!({"displayName": "Everyone",
                              "members": [{"value": id_of(&finance), "type": "Group"}]}))
        .await;
    // Two levels above the user's own group, and a second user in no group at all.
    let company = s
        .create_group(&json!({"displayName": "Company",
                              "members": [{"value": id_of(&all), "type": "Group"}]}))
        .await;
    s.create_user(&json!({"userName": "bo"})).await;
    let got = s.get(&format!("/scim/v2/Users/{uid}")).await.json();
    let base = format!("http://{}/scim/v2", s.addr);
    assert_eq!(
        got["groups"],
        json!([
            {"value": id_of(&finance), "$ref": format!("{base}/Groups/{}", id_of(&finance)),
             "display": "Finance", "type": "direct"},
            {"value": id_of(&all), "$ref": format!("{base}/Groups/{}", id_of(&all)),
             "display": "Everyone", "type": "indirect"},
            {"value": id_of(&company), "$ref": format!("{base}/Groups/{}", id_of(&company)),
             "display": "Company", "type": "indirect"},
        ])
    );
    // A lookup (one user) and a page of users read groups by different queries.
    let found = s
        .get(&format!(
            "/scim/v2/Users?{}",
            filter_query("userName eq \"ana\"")
        ))
        .await;
    assert_eq!(found.json()["Resources"][0]["groups"], got["groups"]);
    let page = s.get("/scim/v2/Users?sortBy=userName").await.json();
    assert_eq!(page["Resources"][0]["groups"], got["groups"]);
    assert!(page["Resources"][1].get("groups").is_none(), "{page}");
    // `groups` in a body is readOnly and ignored.
    let r = s
        .put(
            &format!("/scim/v2/Users/{uid}"),
            &json!({"userName": "ana", "groups": []}),
        )
        .await;
    assert_eq!(r.json()["groups"].as_array().map(Vec::len), Some(3));
}

/// The resource segment matches in any letter case, for every method; what scimd writes back
/// (`Location`, `meta.location`) keeps the canonical `/Users/…`, `/Groups/…`.
#[tokio::test]
async fn resource_endpoints_answer_in_any_letter_case() {
    let s = Server::start().await;
    let base = format!("http://{}/scim/v2", s.addr);
    let r = s
        .post("/scim/v2/users", &json!({"userName": "casey"}))
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = id_of(&r.json());
    let canonical = format!("{base}/Users/{id}");
    assert_eq!(r.header("location"), Some(canonical.as_str()));
    assert_eq!(r.json()["meta"]["location"], json!(canonical));
    for path in [
        format!("/scim/v2/users/{id}"),
        format!("/scim/v2/USERS/{id}"),
    ] {
        let got = s.get(&path).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.json()["meta"]["location"], json!(canonical), "{path}");
    }
    let list = s
        .get("/scim/v2/USERS?filter=userName%20eq%20%22casey%22")
        .await;
    assert_eq!(list.status, 200);
    assert_eq!(ids(&list.json()), [id.as_str()]);
    let found = s
        .post(
            "/scim/v2/users/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "userName eq \"casey\""}),
        )
        .await;
    assert_eq!(
        found.status,
        200,
        "{}",
        String::from_utf8_lossy(&found.body)
    );
    assert_eq!(ids(&found.json()), [id.as_str()]);
    let put = s
        .put(
            &format!("/scim/v2/users/{id}"),
            &json!({"userName": "casey", "title": "Put"}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(put.json()["meta"]["location"], json!(canonical));
    let patched = s
        .patch(
            &format!("/scim/v2/uSeRs/{id}"),
            &json!([{"op": "replace", "path": "title", "value": "Patched"}]),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["title"], json!("Patched"));

    let g = s
        .post(
            "/scim/v2/groups",
            &json!({"displayName": "Casey's", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!(g.status, 201);
    let gid = id_of(&g.json());
    let group_location = format!("{base}/Groups/{gid}");
    assert_eq!(g.header("location"), Some(group_location.as_str()));
    let got = s.get(&format!("/scim/v2/GROUPS/{gid}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["meta"]["location"], json!(group_location));
    assert_eq!(ids(&s.get("/scim/v2/groups").await.json()), [gid.as_str()]);
    let renamed = s
        .put(
            &format!("/scim/v2/groups/{gid}"),
            &json!({"displayName": "Renamed"}),
        )
        .await;
    assert_eq!(renamed.status, 200);
    let r = s
        .patch(
            &format!("/scim/v2/groups/{gid}"),
            &json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )
        .await;
    assert_eq!(r.status, 204);
    let searched = s
        .post(
            "/scim/v2/GROUPS/.search",
            &json!({"filter": "displayName eq \"Renamed\""}),
        )
        .await;
    assert_eq!(ids(&searched.json()), [gid.as_str()]);
    assert_eq!(
        s.delete(&format!("/scim/v2/groups/{gid}")).await.status,
        204
    );
    assert_eq!(s.delete(&format!("/scim/v2/USERS/{id}")).await.status, 204);
    assert_eq!(s.get(&format!("/scim/v2/Users/{id}")).await.status, 404);
}
