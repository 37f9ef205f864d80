//! Changing or removing a declared extension schema never loses stored values, and never
//! blocks deprovisioning: a PATCH checks only what its operations changed.

use serde_json::{Value, json};

use crate::common::*;

const ACME: &str = "urn:acme:2.0:User";

async fn declare(c: &crate::console::Console<'_>, doc: Value, required: bool) {
    let r = c
        .call(
            "POST",
            "/admin/api/schemas",
            Some(&json!({"definition": doc, "required": required})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

async fn deactivate(s: &Server, id: &str) -> Resp {
    s.patch(
        &format!("/scim/v2/Users/{id}"),
        &json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
}

#[tokio::test]
async fn patch_keeps_stored_values_a_later_declaration_lacks_retypes_or_requires() {
    let s = Server::start().await;
    let stored = json!({"badge": "42", "costCenter": "C7", "secret": "s1", "uid": "abc"});
    let ana = id_of(
        &s.create_user(&json!({
            "userName": "ana",
            ACME: stored,
            "urn:acme:2.0:User:v2": {"x": "1"},
        }))
        .await,
    );
    let bo = id_of(&s.create_user(&json!({"userName": "bo"})).await);
    let c = crate::console::set_up(&s).await;
    declare(
        &c,
        json!({"id": ACME, "attributes": [
            {"name": "badge"},
            {"name": "secret", "mutability": "readOnly"},
            {"name": "uid", "type": "integer"},
            {"name": "level", "type": "integer", "required": true},
        ]}),
        true,
    )
    .await;

    // Deprovisioning works for both, and loses nothing the operation did not touch.
    let r = deactivate(&s, &ana).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let u = s.get(&format!("/scim/v2/Users/{ana}")).await.json();
    assert_eq!(u["active"], false);
    assert_eq!(u[ACME], stored);
    assert_eq!(u["urn:acme:2.0:User:v2"], json!({"x": "1"}));
    let r = deactivate(&s, &bo).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // What a PATCH changes meets the declaration; what it leaves is kept as stored.
    let path = format!("/scim/v2/Users/{ana}");
    let r = s
        .patch(
            &path,
            &json!([{"op": "replace", "path": format!("{ACME}:uid"), "value": "x"}]),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    // Touching the required extension demands its required attribute…
    let r = s
        .patch(
            &path,
            &json!([{"op": "replace", "path": format!("{ACME}:badge"), "value": "43"}]),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let r = s
        .patch(
            &path,
            &json!([{"op": "replace", "path": format!("{ACME}:badge"), "value": "43"},
                    {"op": "add", "path": format!("{ACME}:level"), "value": 3}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let u = r.json();
    assert_eq!(
        u[ACME],
        json!({"badge": "43", "costCenter": "C7", "secret": "s1", "uid": "abc", "level": 3})
    );
    // …and so does a PUT (all new input): the required extension must be there.
    let r = s
        .put(&format!("/scim/v2/Users/{bo}"), &json!({"userName": "bo"}))
        .await;
    r.assert_error(400, Some("invalidValue"));

    // Removing the declaration keeps the data, and deprovisioning still works.
    let r = c
        .call("DELETE", &format!("/admin/api/schemas?urn={ACME}"), None)
        .await;
    assert!(r.status < 300, "{}", r.status);
    let r = deactivate(&s, &ana).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()[ACME]["secret"], "s1");
}

#[tokio::test]
async fn group_patch_keeps_stored_values_a_later_declaration_lacks() {
    let s = Server::start().await;
    const G: &str = "urn:acme:2.0:Group";
    let g = id_of(
        &s.create_group(&json!({"displayName": "eng", G: {"code": "abc", "site": "x"}}))
            .await,
    );
    let c = crate::console::set_up(&s).await;
    let r = c
        .call(
            "POST",
            "/admin/api/schemas",
            Some(
                &json!({"resourceType": "Group", "required": true, "definition":
                {"id": G, "attributes": [{"name": "code", "type": "integer"}]}}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = s
        .patch(
            &format!("/scim/v2/Groups/{g}"),
            &json!([{"op": "replace", "path": "displayName", "value": "Eng"}]),
        )
        .await;
    assert!(r.status < 300, "{}", String::from_utf8_lossy(&r.body));
    let v = s.get(&format!("/scim/v2/Groups/{g}")).await.json();
    assert_eq!(v["displayName"], "Eng");
    assert_eq!(v[G], json!({"code": "abc", "site": "x"}));
}

/// review2 #5: a block stored under another spelling than the declared one is the declared
/// block: PATCH reaches it (no second block, no "given more than once"), and it moves to the
/// declared spelling; a case-only re-declaration keeps the first spelling.
#[tokio::test]
async fn blocks_stored_under_another_spelling_are_the_declared_block() {
    let s = Server::start().await;
    const OLD: &str = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User";
    const NEW: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
    let id = id_of(
        &s.create_user(&json!({"userName": "cy", OLD: {"badge": "1", "site": "x"}}))
            .await,
    );
    let c = crate::console::set_up(&s).await;
    declare(
        &c,
        json!({"id": NEW, "attributes": [{"name": "badge"}]}),
        false,
    )
    .await;
    let r = s
        .patch(
            &format!("/scim/v2/Users/{id}"),
            &json!([{"op": "replace", "path": format!("{OLD}:badge"), "value": "2"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let u = r.json();
    assert_eq!(u[NEW], json!({"badge": "2", "site": "x"}));
    assert!(u.get(OLD).is_none(), "{u}");
    assert!(
        u["schemas"].as_array().unwrap().contains(&json!(NEW)),
        "{u}"
    );
    let found = s.filter("Users", &format!("{NEW}:badge eq \"2\"")).await;
    assert_eq!(ids(&found), [id.as_str()]);

    // Declared again in another case: the first spelling stays, and so does the data's key.
    declare(
        &c,
        json!({"id": NEW.to_uppercase(), "attributes": [{"name": "badge"}]}),
        false,
    )
    .await;
    assert_eq!(
        s.get(&format!("/scim/v2/Schemas/{NEW}")).await.json()["id"],
        NEW
    );
    let r = deactivate(&s, &id).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()[NEW], json!({"badge": "2", "site": "x"}));
}

/// Review #1: an attribute stored under another spelling than the declared one (`Badge`
/// for a unique `badge`, or the reverse) is the declared attribute's: a PATCH setting it
/// leaves exactly one key, under the declared spelling, and uniqueness holds for the new
/// value and frees the old one.
#[tokio::test]
async fn patch_of_an_attribute_stored_under_another_spelling_leaves_one_key() {
    let s = Server::start().await;
    let ana = id_of(
        &s.create_user(&json!({"userName": "ana", ACME: {"Badge": "B-1", "site": "x"}}))
            .await,
    );
    let bo = id_of(
        &s.create_user(&json!({"userName": "bo", ACME: {"BADGE": "B-9"}}))
            .await,
    );
    let c = crate::console::set_up(&s).await;
    declare(
        &c,
        json!({"id": ACME, "attributes": [{"name": "badge", "uniqueness": "server"}]}),
        false,
    )
    .await;
    let stored_values_are_unique = s
        .post(
            "/scim/v2/Users",
            &json!({"userName": "cy", ACME: {"badge": "b-1"}}),
        )
        .await;
    stored_values_are_unique.assert_error(409, Some("uniqueness"));

    for path in [format!("{ACME}:badge"), format!("{ACME}:BADGE")] {
        let r = s
            .patch(
                &format!("/scim/v2/Users/{ana}"),
                &json!([{"op": "replace", "path": path, "value": "B-2"}]),
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.json()[ACME],
            json!({"badge": "B-2", "site": "x"}),
            "{path}"
        );
    }
    let u = s.get(&format!("/scim/v2/Users/{ana}")).await.json();
    assert_eq!(u[ACME], json!({"badge": "B-2", "site": "x"}));
    // The new value is taken, the old one free.
    s.post(
        "/scim/v2/Users",
        &json!({"userName": "cy", ACME: {"badge": "b-2"}}),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    s.create_user(&json!({"userName": "cy", ACME: {"badge": "B-1"}}))
        .await;
    // Bo's value (stored as BADGE) can't be taken by a PATCH, and Bo may re-case his own.
    let r = s
        .patch(
            &format!("/scim/v2/Users/{ana}"),
            &json!([{"op": "replace", "path": format!("{ACME}:badge"), "value": "b-9"}]),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    let r = s
        .patch(
            &format!("/scim/v2/Users/{bo}"),
            &json!([{"op": "add", "value": {ACME: {"badge": "b-9"}}}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()[ACME], json!({"badge": "b-9"}));
    let found = s.filter("Users", &format!("{ACME}:badge eq \"B-9\"")).await;
    assert_eq!(ids(&found), [bo.as_str()]);
}

/// review2 #9: an http(s) schema's `meta.location` is a URL that serves it, and a schema
/// declared without a name or description shows none rather than "".
#[tokio::test]
async fn discovery_of_an_http_schema_without_a_name() {
    let s = Server::start().await;
    let c = crate::console::set_up(&s).await;
    const EXT: &str = "https://example.com:8443/scim/Ext";
    declare(
        &c,
        json!({"id": EXT, "attributes": [{"name": "badge"}]}),
        false,
    )
    .await;
    let all = s.get("/scim/v2/Schemas").await.json();
    let doc = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == EXT)
        .cloned()
        .expect("listed");
    assert!(
        doc.get("name").is_none() && doc.get("description").is_none(),
        "{doc}"
    );
    let location = doc["meta"]["location"].as_str().unwrap();
    let path = &location[location.find("/scim/v2/").unwrap()..];
    let r = s.get(path).await;
    assert_eq!(r.status, 200, "{location}");
    assert_eq!(r.json(), doc);
}
