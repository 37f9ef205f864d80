//! Work without a bound and its edges: time budgets on reads and writes, the PATCH cost
//! limit, scans that must not starve lookups; every sort key; requests whose client hangs
//! up; duplicate keys and depth in request bodies.

use serde_json::json;

use crate::common::*;

/// Every attribute and sub-attribute `/Schemas` lists (bare and URN-qualified) and the common
/// ones, as `sortBy` on `/Users` and `/Groups`: sorted (200) or refused (400), never a 5xx.
#[tokio::test]
async fn every_sort_key_sorts_or_is_refused() {
    let s = Server::start().await;
    let user = s
        .create_user(&json!({"userName": "a", "emails": [{"value": "a@x.org"}]}))
        .await;
    s.create_group(&json!({"displayName": "g", "members": [{"value": id_of(&user)}]}))
        .await;
    let schemas = s.get("/scim/v2/Schemas").await.json();
    let mut paths: Vec<(String, String)> = Vec::new();
    for schema in schemas["Resources"].as_array().unwrap() {
        let urn = schema["id"].as_str().unwrap();
        let endpoint = if urn == GROUP_URN { "Groups" } else { "Users" };
        for attr in schema["attributes"].as_array().unwrap() {
            let name = attr["name"].as_str().unwrap().to_string();
            let mut names = vec![name.clone()];
            for sub in attr["subAttributes"].as_array().into_iter().flatten() {
                names.push(format!("{name}.{}", sub["name"].as_str().unwrap()));
            }
            for n in names {
                paths.push((endpoint.into(), format!("{urn}:{n}")));
                paths.push((endpoint.into(), n));
            }
        }
    }
    let common = ["id", "externalId", "meta", "schemas"].map(String::from);
    let meta = [
        "created",
        "lastModified",
        "resourceType",
        "location",
        "version",
    ];
    for endpoint in ["Users", "Groups"] {
        for path in common
            .iter()
            .cloned()
            .chain(meta.map(|m| format!("meta.{m}")))
        {
            paths.push((endpoint.into(), path));
        }
    }
    assert!(paths.len() > 100, "{}", paths.len());
    let mut sorted = 0;
    for (endpoint, path) in &paths {
        for extra in ["", "&sortOrder=descending", "&filter=id%20pr"] {
            let r = s
                .get(&format!(
                    "/scim/v2/{endpoint}?sortBy={}{extra}",
                    form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
                ))
                .await;
            match r.status {
                200 => sorted += 1,
                400 => {
                    r.assert_error(400, Some("invalidValue"));
                }
                _ => panic!(
                    "{endpoint} sortBy={path}{extra}: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ),
            }
        }
    }
    assert!(sorted > 100, "only {sorted} sorted");
    for endpoint in ["Users", "Groups"] {
        let r = s
            .get(&format!("/scim/v2/{endpoint}?sortBy=meta.resourceType"))
            .await;
        assert_eq!(r.json()["totalResults"], 1, "{endpoint}");
    }
}

/// A key given twice in one object is refused at any level, naming the key, and changes
/// nothing; before, the last one silently won.
#[tokio::test]
async fn duplicate_keys_are_refused_at_every_level() {
    let s = Server::start().await;
    for body in [
        r#"{"userName": "a", "userName": "b"}"#,
        r#"{"userName": "a", "name": {"givenName": "x", "givenName": "y"}}"#,
        r#"{"userName": "a", "emails": [{"value": "a@x.org", "value": "b@x.org"}]}"#,
    ] {
        let r = s.call("POST", "/scim/v2/Users", Some(body)).await;
        let detail = r.assert_error(400, Some("invalidSyntax"))["detail"].to_string();
        assert!(detail.contains("more than once"), "{body}: {detail}");
    }
    assert_eq!(s.filter("Users", "userName pr").await["totalResults"], 0);
    let id = id_of(&s.create_user(&json!({"userName": "ana"})).await);
    let patch = r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "x", "value": "y"}]}"#;
    let r = s
        .call("PATCH", &format!("/scim/v2/Users/{id}"), Some(patch))
        .await;
    let detail = r.assert_error(400, Some("invalidSyntax"))["detail"].to_string();
    assert!(detail.contains("\\\"value\\\""), "{detail}");
    let user = s.get(&format!("/scim/v2/Users/{id}")).await.json();
    assert!(user.get("title").is_none(), "{user}");
}

/// README: JSON nested deeper than 128 levels is refused; 128 levels are accepted.
#[tokio::test]
async fn json_nesting_is_accepted_to_exactly_128_levels() {
    let s = Server::start().await;
    // The body object is level 1; an extension key (ignored) carries the rest.
    let body = |levels: usize| {
        format!(
            r#"{{"userName": "deep{levels}", "urn:example:x": {}{}}}"#,
            "[".repeat(levels - 1),
            "]".repeat(levels - 1)
        )
    };
    let r = s.call("POST", "/scim/v2/Users", Some(&body(128))).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = s.call("POST", "/scim/v2/Users", Some(&body(129))).await;
    let detail = r.assert_error(400, Some("invalidSyntax"))["detail"].to_string();
    assert!(detail.contains("deeper than 128"), "{detail}");
}
