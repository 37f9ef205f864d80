//! OneLogin's "SCIM Provisioner with SAML (SCIM v2 Core)" as idp-compat.md §1.1 describes it:
//! (a) Enable, (b) create, (c) update by PUT, suspend/reactivate, (f) delete, (g) groups.

use serde_json::{Value, json};

use crate::common::*;

/// The rendered v2 Enterprise template OneLogin sends as a POST/PUT body.
fn template(user_name: &str, title: &str, active: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Jane", "familyName": "Doe", "formatted": "Jane Doe"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "title": title,
        "active": active,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "R&D",
            "manager": {"value": "", "displayName": ""}
        }
    })
}

async fn lookup(s: &Server, user_name: &str) -> Value {
    // Exactly as OneLogin encodes it, stray `&` included.
    let r = s
        .get(&format!(
            "/scim/v2/Users?filter=userName+eq+%22{user_name}%22&"
        ))
        .await;
    assert_eq!(r.status, 200);
    r.json()
}

#[tokio::test]
async fn onelogin_provisioning_sequence() {
    let s = Server::start().await;

    // (a) Enable: a lookup of a user that does not exist must be 200 with an empty list.
    let probe = lookup(&s, "onelogin-probe-user").await;
    assert_eq!(probe["totalResults"], 0);
    assert_eq!(probe["Resources"], json!([]));

    // (b) Create: lookup, no match, POST the template.
    assert_eq!(lookup(&s, "jane@example.com").await["totalResults"], 0);
    let r = s
        .call(
            "POST",
            "/scim/v2/Users",
            Some(&template("jane@example.com", "Engineer", "{$user.active}").to_string()),
        )
        .await;
    // An unrendered placeholder is not a boolean: rejected, nothing created.
    r.assert_error(400, Some("invalidValue"));
    let created = s
        .create_user(&template("jane@example.com", "Engineer", "true"))
        .await;
    let id = id_of(&created);
    assert_eq!(created["active"], true);
    assert_eq!(created["title"], "Engineer");
    assert_eq!(created[ENTERPRISE_URN], json!({"department": "R&D"}));

    // A second lookup (OneLogin adopts by userName, case-insensitively) finds it.
    let found = lookup(&s, "JANE@example.com").await;
    assert_eq!(ids(&found), vec![id.clone()]);

    // (c) Update: lookup, then PUT the whole template to /Users/{id}? (bare `?` included).
    let r = s
        .put(
            &format!("/scim/v2/Users/{id}?"),
            &template("jane@example.com", "Lead", "true"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["title"], "Lead");
    assert_eq!(r.json()["meta"]["version"], "W/\"2\"");

    // (d) Suspend by PUT with active "false": still visible to lookups, with active false.
    let r = s
        .put(
            &format!("/scim/v2/Users/{id}"),
            &template("jane@example.com", "Lead", "false"),
        )
        .await;
    assert_eq!(r.json()["active"], false);
    let found = lookup(&s, "jane@example.com").await;
    assert_eq!(found["Resources"][0]["active"], false);

    // (e) Reactivate.
    let r = s
        .put(
            &format!("/scim/v2/Users/{id}"),
            &template("jane@example.com", "Lead", "true"),
        )
        .await;
    assert_eq!(r.json()["active"], true);
    assert_eq!(r.json()["id"], json!(id));

    // (g) Groups: import the list, create one, add the user to it.
    let groups = s.get("/scim/v2/Groups").await.json();
    assert_eq!(groups["totalResults"], 0);
    let g = s
        .create_group(&json!({"schemas": [GROUP_URN], "displayName": "Engineering"}))
        .await;
    let gid = id_of(&g);
    let listed = s.get("/scim/v2/Groups").await.json();
    assert_eq!(listed["Resources"][0]["displayName"], "Engineering");
    assert_eq!(listed["Resources"][0]["id"], json!(gid));
    let r = s
        .put(
            &format!("/scim/v2/Groups/{gid}"),
            &json!({"displayName": "Engineering", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let user = s.get(&format!("/scim/v2/Users/{id}")).await.json();
    assert_eq!(user["groups"][0]["value"], json!(gid));

    // (f) Delete: 204, then gone; a repeated DELETE is 404.
    let r = s.delete(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(r.status, 204);
    assert_eq!(lookup(&s, "jane@example.com").await["totalResults"], 0);
    s.delete(&format!("/scim/v2/Users/{id}"))
        .await
        .assert_error(404, None);
    let group = s.get(&format!("/scim/v2/Groups/{gid}")).await.json();
    assert_eq!(group["members"], json!([]));
}
