//! Discovery endpoints (RFC 7644 §4): generated from the schemas the server validates with.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn service_provider_config_says_what_is_supported() {
    let s = Server::start().await;
    let r = s.get("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/scim+json; charset=utf-8")
    );
    let spc = r.json();
    assert_eq!(
        spc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(
        spc["filter"],
        json!({"supported": true, "maxResults": 1000})
    );
    for feature in ["patch", "bulk", "changePassword", "sort", "etag"] {
        assert!(spc[feature]["supported"].is_boolean(), "{feature}");
    }
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
}

#[tokio::test]
async fn resource_types_and_schemas() {
    let s = Server::start().await;
    let types = s.get("/scim/v2/ResourceTypes").await.json();
    assert_eq!(types["totalResults"], 2);
    let user = s.get("/scim/v2/ResourceTypes/User").await.json();
    assert_eq!(user["endpoint"], "/Users");
    assert_eq!(user["schema"], USER_URN);
    assert_eq!(
        user["schemaExtensions"],
        json!([{"schema": ENTERPRISE_URN, "required": false}])
    );
    assert_eq!(
        s.get("/scim/v2/ResourceTypes/Group").await.json()["schema"],
        GROUP_URN
    );
    s.get("/scim/v2/ResourceTypes/Device")
        .await
        .assert_error(404, None);

    let schemas = s.get("/scim/v2/Schemas").await.json();
    assert_eq!(schemas["totalResults"], 3);
    let user_schema = s.get(&format!("/scim/v2/Schemas/{USER_URN}")).await.json();
    let names: Vec<&str> = user_schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for expected in [
        "userName",
        "name",
        "emails",
        "password",
        "groups",
        "x509Certificates",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let enterprise = s
        .get(&format!("/scim/v2/Schemas/{ENTERPRISE_URN}"))
        .await
        .json();
    assert_eq!(enterprise["id"], ENTERPRISE_URN);
    s.get("/scim/v2/Schemas/urn:nope")
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn discovery_endpoints_are_read_only() {
    let s = Server::start().await;
    for path in [
        "/scim/v2/ServiceProviderConfig",
        "/scim/v2/ResourceTypes",
        "/scim/v2/Schemas",
    ] {
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let r = s.call(method, path, Some("{}")).await;
            r.assert_error(405, None);
            assert_eq!(r.header("allow"), Some("GET"), "{method} {path}");
        }
    }
}

/// What `/Schemas` publishes of a group's members is what a group read returns: `value`,
/// `$ref` and `type`, never `display` (accepted on the way in, as Okta sends it, and ignored).
#[tokio::test]
async fn published_group_members_match_what_a_group_read_returns() {
    let s = Server::start().await;
    let published = |schema: &serde_json::Value| -> Vec<String> {
        let members = schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "members")
            .expect("members");
        let mut subs: Vec<String> = members["subAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sub| sub["name"].as_str().unwrap().to_string())
            .collect();
        subs.sort();
        subs
    };
    let one = s.get(&format!("/scim/v2/Schemas/{GROUP_URN}")).await.json();
    let all = s.get("/scim/v2/Schemas").await.json();
    let listed = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == GROUP_URN)
        .expect("the Group schema");
    assert_eq!(published(&one), published(listed));

    let u = s
        .create_user(&json!({"userName": "ana", "displayName": "Ana"}))
        .await;
    let inner = s.create_group(&json!({"displayName": "Inner"})).await;
    let g = s
        .create_group(&json!({"displayName": "Outer", "members": [
            {"value": id_of(&u), "display": "Ana", "type": "User"},
            {"value": id_of(&inner), "display": "Inner"}]}))
        .await;
    let read = s
        .get(&format!("/scim/v2/Groups/{}", id_of(&g)))
        .await
        .json();
    let members = read["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    for m in members {
        let mut keys: Vec<String> = m.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, published(&one), "{m}");
    }
}
