//! Custom schema extensions as identity providers send them (issue 13): undeclared extension
//! blocks are kept as sent, listed in `schemas`, replaced by PUT and reached by PATCH.

use serde_json::{Value, json};

use crate::common::*;

const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

/// The stored user, read back with GET.
async fn stored(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(r.status, 200);
    r.json()
}

/// OneLogin's rendered template with two custom fields under a URN the admin chose.
fn onelogin(badge: &str, shell: Option<&str>) -> Value {
    let mut custom = json!({"badgeNumber": badge});
    if let Some(shell) = shell {
        custom["loginShell"] = json!(shell);
    }
    json!({
        "schemas": [USER_URN, ENTERPRISE_URN, ACME],
        "userName": "jane@example.com",
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"value": "jane@example.com", "type": "work", "primary": true}],
        "active": "true",
        ENTERPRISE_URN: {"department": "R&D", "manager": {"value": "", "displayName": ""}},
        ACME: custom,
    })
}

#[tokio::test]
async fn onelogin_template_with_a_custom_extension_survives_put() {
    let s = Server::start().await;
    let created = s.create_user(&onelogin("42", Some("/bin/zsh"))).await;
    let id = id_of(&created);
    assert_eq!(
        created[ACME],
        json!({"badgeNumber": "42", "loginShell": "/bin/zsh"})
    );

    let r = s
        .put(
            &format!("/scim/v2/Users/{id}"),
            &onelogin("43", Some("/bin/bash")),
        )
        .await;
    assert_eq!(r.status, 200);
    let u = stored(&s, &id).await;
    assert_eq!(
        u[ACME],
        json!({"badgeNumber": "43", "loginShell": "/bin/bash"})
    );
    assert_eq!(u["schemas"], json!([USER_URN, ENTERPRISE_URN, ACME]));

    // PUT replaces: the field the template no longer carries is gone.
    let r = s
        .put(&format!("/scim/v2/Users/{id}"), &onelogin("43", None))
        .await;
    assert_eq!(r.status, 200);
    let u = stored(&s, &id).await;
    assert_eq!(u[ACME], json!({"badgeNumber": "43"}));
    // A template rendering every custom field empty leaves no block, and no URN in `schemas`.
    let r = s
        .put(&format!("/scim/v2/Users/{id}"), &onelogin("", None))
        .await;
    assert_eq!(r.status, 200);
    let u = stored(&s, &id).await;
    assert!(u.get(ACME).is_none(), "{u}");
    assert_eq!(u["schemas"], json!([USER_URN, ENTERPRISE_URN]));
}

#[tokio::test]
async fn okta_custom_namespace_with_put() {
    let s = Server::start().await;
    let ns = "urn:okta:acme:1.0:profile";
    let body = |uid: Value| {
        json!({
            "schemas": [USER_URN],
            "userName": "sam@example.com",
            "name": {"givenName": "Sam", "familyName": "Lee"},
            "active": true,
            ns: {"custom_attr_1": "x", "uidNumber": uid, "sshKeys": ["ssh-ed25519 AAA"]},
        })
    };
    let id = id_of(&s.create_user(&body(json!(1001))).await);
    let u = stored(&s, &id).await;
    assert_eq!(
        u[ns],
        json!({"custom_attr_1": "x", "uidNumber": 1001, "sshKeys": ["ssh-ed25519 AAA"]})
    );
    assert_eq!(u["schemas"], json!([USER_URN, ns]));

    let r = s
        .put(&format!("/scim/v2/Users/{id}"), &body(json!(1002)))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[ns]["uidNumber"], 1002);
    assert_eq!(stored(&s, &id).await[ns]["uidNumber"], 1002);
    // The list answer (written from the stored text) lists the namespace too.
    let list = s.filter("Users", "userName eq \"sam@example.com\"").await;
    assert_eq!(list["Resources"][0]["schemas"], json!([USER_URN, ns]));
    assert_eq!(list["Resources"][0][ns]["uidNumber"], 1002);
    // attributes / excludedAttributes reach into the block.
    let r = s
        .get(&format!("/scim/v2/Users/{id}?attributes={ns}:uidNumber"))
        .await;
    assert_eq!(r.json()[ns], json!({"uidNumber": 1002}));
    assert!(r.json().get("userName").is_none());
    let r = s
        .get(&format!("/scim/v2/Users/{id}?excludedAttributes={ns}"))
        .await;
    assert!(r.json().get(ns).is_none());
    assert_eq!(r.json()["userName"], "sam@example.com");
}

#[tokio::test]
async fn undeclared_extension_data_is_bounded() {
    let s = Server::start().await;
    let mut body = json!({"userName": "big"});
    body[ACME] = json!({"blob": "x".repeat(20 * 1024)});
    let e = s
        .post("/scim/v2/Users", &body)
        .await
        .assert_error(400, Some("invalidValue"));
    assert!(e["detail"].as_str().unwrap_or("").contains("bytes"), "{e}");
    let mut body = json!({"userName": "many"});
    for i in 0..11 {
        body[format!("urn:acme:{i}:User")] = json!({"a": "b"});
    }
    s.post("/scim/v2/Users", &body)
        .await
        .assert_error(400, Some("invalidValue"));
    assert_eq!(s.filter("Users", "userName pr").await["totalResults"], 0);
}

#[tokio::test]
async fn groups_keep_extension_blocks_too() {
    let s = Server::start().await;
    let ext = "urn:acme:2.0:Group";
    let g = s
        .create_group(&json!({"displayName": "Eng", ext: {"costCenter": "C1"}}))
        .await;
    let r = s.get(&format!("/scim/v2/Groups/{}", id_of(&g))).await;
    let v = r.json();
    assert_eq!(v[ext], json!({"costCenter": "C1"}));
    assert_eq!(v["schemas"], json!([GROUP_URN, ext]));
}
