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
