//! Input tolerance, as idp-compat.md "Decisions" 1–9 set it: what identity providers really
//! send is accepted, and what scimd emits is clean RFC 7643 JSON.

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn string_booleans_are_booleans() {
    let s = Server::start().await;
    for (given, expected) in [
        ("False", false),
        ("true", true),
        ("0", false),
        ("1", true),
        (" TRUE ", true),
    ] {
        let u = s
            .create_user(&json!({"userName": format!("u{given}"), "active": given,
                                 "emails": [{"value": "a@x", "primary": given}]}))
            .await;
        assert_eq!(u["active"], json!(expected), "{given}");
        assert_eq!(u["emails"][0]["primary"], json!(expected), "{given}");
    }
}

#[tokio::test]
async fn a_single_object_stands_for_a_one_element_array() {
    let s = Server::start().await;
    let u = s
        .create_user(
            &json!({"userName": "one", "emails": {"value": "one@x", "type": "work"},
                             "phoneNumbers": {"value": "123"}}),
        )
        .await;
    assert_eq!(
        u["emails"],
        json!([{"value": "one@x", "type": "work", "primary": true}])
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"value": "123", "primary": true}])
    );
    let found = s.filter("Users", "emails.value eq \"one@x\"").await;
    assert_eq!(found["totalResults"], 1);
}

#[tokio::test]
async fn legacy_schema_urns_and_keys_are_understood() {
    let s = Server::start().await;
    let u = s
        .create_user(&json!({
            "schemas": ["urn:scim:schemas:core:1.0", "urn:scim:schemas:extension:enterprise:1.0"],
            "userName": "legacy",
            "urn:scim:schemas:extension:enterprise:1.0": {
                "department": "Ops", "manager": {"managerId": "m-1", "displayName": "Boss"}}
        }))
        .await;
    assert_eq!(u["schemas"], json!([USER_URN, ENTERPRISE_URN]));
    assert_eq!(
        u[ENTERPRISE_URN],
        json!({"department": "Ops", "manager": {"value": "m-1"}})
    );
    let u2 = s
        .create_user(
            &json!({"schemas": ["urn:scim:schemas:core:2.0"], "userName": "legacy2",
                             "urn:scim:schemas:extension:enterprise:2.0": {"division": "EU"}}),
        )
        .await;
    assert_eq!(u2[ENTERPRISE_URN], json!({"division": "EU"}));
}

#[tokio::test]
async fn empty_strings_and_nulls_are_absent() {
    let s = Server::start().await;
    let u = s
        .create_user(&json!({"userName": "blank", "title": "", "nickName": null,
                             "name": {"givenName": "", "familyName": "F"},
                             "emails": [{"value": "", "type": ""}], "addresses": null,
                             ENTERPRISE_URN: {"department": "", "manager": {"value": ""}}}))
        .await;
    assert_eq!(u["name"], json!({"familyName": "F"}));
    for absent in ["title", "nickName", "emails", "addresses", ENTERPRISE_URN] {
        assert!(u.get(absent).is_none(), "{absent}: {u}");
    }
    assert_eq!(u["schemas"], json!([USER_URN]));
}

#[tokio::test]
async fn read_only_attributes_in_bodies_are_ignored() {
    let s = Server::start().await;
    let u = s
        .create_user(&json!({"id": "chosen-by-client", "userName": "ro",
                             "meta": {"resourceType": "User", "version": "W/\"9\""},
                             "groups": [{"value": "g"}],
                             ENTERPRISE_URN: {"manager": {"value": "m", "displayName": "ro"}}}))
        .await;
    assert_ne!(u["id"], "chosen-by-client");
    assert_eq!(u["meta"]["version"], "W/\"1\"");
    assert!(u.get("groups").is_none());
    assert_eq!(u[ENTERPRISE_URN]["manager"], json!({"value": "m"}));
}

#[tokio::test]
async fn attribute_names_are_case_insensitive() {
    let s = Server::start().await;
    let u = s
        .create_user(&json!({"USERNAME": "caps", "Name": {"GivenName": "C"}, "ACTIVE": false}))
        .await;
    assert_eq!(u["userName"], "caps");
    assert_eq!(u["name"], json!({"givenName": "C"}));
    assert_eq!(u["active"], false);
}

#[tokio::test]
async fn any_json_content_type_or_none_is_parsed() {
    let s = Server::start().await;
    let auth = format!("Bearer {}", s.token);
    for (i, ctype) in [
        Some("application/scim+json"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(c) = ctype {
            headers.push(("content-type", c));
        }
        let body = json!({"userName": format!("ct{i}")}).to_string();
        let r = s.raw("POST", "/scim/v2/Users", &headers, Some(&body)).await;
        assert_eq!(r.status, 201, "{ctype:?}");
    }
}

#[tokio::test]
async fn responses_are_scim_json_unless_only_json_is_accepted() {
    let s = Server::start().await;
    let auth = format!("Bearer {}", s.token);
    for (accept, expected) in [
        (None, "application/scim+json; charset=utf-8"),
        (
            Some("application/scim+json"),
            "application/scim+json; charset=utf-8",
        ),
        (Some("application/json"), "application/json; charset=utf-8"),
        (
            Some("application/json, */*;q=0.5"),
            "application/scim+json; charset=utf-8",
        ),
    ] {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(a) = accept {
            headers.push(("accept", a));
        }
        let r = s.raw("GET", "/scim/v2/Users", &headers, None).await;
        assert_eq!(r.header("content-type"), Some(expected), "{accept:?}");
        let r = s.raw("GET", "/scim/v2/Users/none", &headers, None).await;
        assert_eq!(
            r.header("content-type"),
            Some(expected),
            "error, {accept:?}"
        );
    }
}

#[tokio::test]
async fn odd_query_strings_are_tolerated() {
    let s = Server::start().await;
    let u = s
        .create_user(&json!({"userName": "onelogin-test-user01"}))
        .await;
    // OneLogin: `+` for spaces and a stray `&`; Entra: an unknown flag; OneLogin's PUT: bare `?`.
    let r = s
        .get("/scim/v2/Users?filter=userName+eq+%22onelogin-test-user01%22&")
        .await
        .json();
    assert_eq!(r["totalResults"], 1);
    let r = s
        .get("/scim/v2/Users?aadOptscim062020&filter=userName%20eq%20%22onelogin-test-user01%22")
        .await
        .json();
    assert_eq!(r["totalResults"], 1);
    let path = format!("/scim/v2/Users/{}?", id_of(&u));
    assert_eq!(
        s.put(&path, &json!({"userName": "onelogin-test-user01"}))
            .await
            .status,
        200
    );
    // Entra's unquoted filter value.
    let r = s
        .get("/scim/v2/Users?filter=userName+eq+onelogin-test-user01")
        .await
        .json();
    assert_eq!(r["totalResults"], 1);
}

#[tokio::test]
async fn entra_and_okta_create_bodies_are_accepted() {
    let s = Server::start().await;
    // Entra ID: extra nulls, top-level enterprise keys, a misspelt extension URN, meta.
    let entra: Value = json!({
        "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_1@contoso.example",
        "active": true,
        "addresses": null, "phoneNumbers": null, "title": null,
        "department": "Sales", "manager": "someone",
        "emails": [{"primary": true, "type": "work", "value": "Test_User_1@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": []
    });
    let u = s.create_user(&entra).await;
    assert_eq!(u["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");
    assert!(u.get("department").is_none() && u.get(ENTERPRISE_URN).is_none());
    // Entra groups carry a Microsoft schema and meta.
    let g = s
        .create_group(&json!({
            "schemas": [GROUP_URN, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0", "displayName": "displayName", "meta": {"resourceType": "Group"}}))
        .await;
    assert_eq!(g["displayName"], "displayName");
    // Okta: password and read-only groups in the body.
    let okta = json!({"schemas": [USER_URN], "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": "1mz050nq", "active": true});
    let r = s.post("/scim/v2/Users", &okta).await;
    assert_eq!(r.status, 201);
    assert!(!String::from_utf8_lossy(&r.body).contains("1mz050nq"));
    s.post("/scim/v2/Users", &okta)
        .await
        .assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn manager_may_be_an_object_an_array_or_a_bare_id() {
    let s = Server::start().await;
    for (i, manager) in [
        json!({"value": "m1"}),
        json!([{"$ref": null, "value": "m1"}]),
        json!("m1"),
    ]
    .into_iter()
    .enumerate()
    {
        let u = s
            .create_user(
                &json!({"userName": format!("m{i}"), ENTERPRISE_URN: {"manager": manager}}),
            )
            .await;
        assert_eq!(u[ENTERPRISE_URN]["manager"], json!({"value": "m1"}), "{i}");
    }
}

#[tokio::test]
async fn resource_segments_answer_in_any_letter_case() {
    // Microsoft's Entra ID test collection starts with `GET /users`; scripts send it too.
    let s = Server::start().await;
    let r = s.get("/scim/v2/users").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["totalResults"], json!(0));

    let r = s.post("/scim/v2/users", &json!({"userName": "ann"})).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let u = r.json();
    let id = u["id"].as_str().unwrap();
    // What scimd emits stays canonical.
    assert!(
        u["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/Users/{id}")),
        "{u}"
    );
    assert_eq!(
        s.get(&format!("/scim/v2/USERS/{id}")).await.json()["userName"],
        json!("ann")
    );

    let g = s
        .post("/scim/v2/groups", &json!({"displayName": "eng"}))
        .await
        .json();
    let gid = g["id"].as_str().unwrap();
    let r = s
        .patch(
            &format!("/scim/v2/gRoUpS/{gid}"),
            &json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    let r = s
        .post(
            "/scim/v2/groups/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
        )
        .await;
    assert_eq!(r.json()["Resources"][0]["members"][0]["value"], json!(id));
    assert_eq!(s.delete(&format!("/scim/v2/users/{id}")).await.status, 204);
    // Other segments keep their one spelling.
    s.get("/scim/v2/devices").await.assert_error(404, None);
    s.get("/scim/v2/users/a/b").await.assert_error(404, None);
}
