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

/// The newest audit entry about resource `id`: its action and detail.
fn last_entry(s: &Server, id: &str) -> (String, Value) {
    let store = scimd::store::Store::open(&s.db()).unwrap();
    let q = scimd::store::audit::Query {
        limit: 1,
        resource: Some(id.to_string()),
        ..Default::default()
    };
    let log = store
        .read_sync(|conn| scimd::store::audit::list(conn, &q))
        .unwrap();
    let e = log.into_iter().next().expect("an audit entry");
    (e.action, e.detail.unwrap_or(Value::Null))
}

/// Asserts the newest audit entry about `id` is `action` and records each of `changes`
/// (`[path, before, after]`, null for no value) by the attribute's full path.
fn assert_audited(s: &Server, id: &str, action: &str, changes: &[(String, Value, Value)]) {
    let (got, detail) = last_entry(s, id);
    assert_eq!(got, action, "{detail}");
    let recorded = detail["changes"].as_array().cloned().unwrap_or_default();
    for (path, before, after) in changes {
        let want = json!({"path": path, "before": before, "after": after});
        assert!(recorded.contains(&want), "{want} not in {detail}");
    }
}

/// The ids `filter` finds among users.
async fn found(s: &Server, filter: &str) -> Vec<String> {
    let r = s.filter("Users", filter).await;
    ids(&r).iter().map(|i| i.to_string()).collect()
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
    assert_eq!(
        stored(&s, &id).await[ACME],
        json!({"badgeNumber": "42", "loginShell": "/bin/zsh"})
    );
    assert_eq!(
        found(&s, &format!("{ACME}:loginShell eq \"/BIN/ZSH\"")).await,
        [id.as_str()]
    );
    assert_audited(
        &s,
        &id,
        "user.create",
        &[
            (format!("{ACME}:badgeNumber"), json!(null), json!("42")),
            (format!("{ACME}:loginShell"), json!(null), json!("/bin/zsh")),
        ],
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
    assert_eq!(
        found(&s, &format!("{ACME}:badgeNumber eq \"43\"")).await,
        [id.as_str()]
    );
    assert_audited(
        &s,
        &id,
        "user.replace",
        &[
            (format!("{ACME}:badgeNumber"), json!("42"), json!("43")),
            (
                format!("{ACME}:loginShell"),
                json!("/bin/zsh"),
                json!("/bin/bash"),
            ),
        ],
    );

    // PUT replaces: the field the template no longer carries is gone.
    let r = s
        .put(&format!("/scim/v2/Users/{id}"), &onelogin("43", None))
        .await;
    assert_eq!(r.status, 200);
    let u = stored(&s, &id).await;
    assert_eq!(u[ACME], json!({"badgeNumber": "43"}));
    assert!(found(&s, &format!("{ACME}:loginShell pr")).await.is_empty());
    assert_audited(
        &s,
        &id,
        "user.replace",
        &[(
            format!("{ACME}:loginShell"),
            json!("/bin/bash"),
            json!(null),
        )],
    );
    // Found by the custom field, compared as a case-insensitive string.
    let found = s
        .filter("Users", &format!("{ACME}:badgeNumber eq \"43\""))
        .await;
    assert_eq!(ids(&found), [id.as_str()]);
    assert_eq!(
        s.filter("Users", &format!("{ACME}:badgeNumber eq \"42\""))
            .await["totalResults"],
        0
    );
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
    assert_eq!(
        found(&s, &format!("{ns}:uidNumber eq 1001")).await,
        [id.as_str()]
    );
    assert_audited(
        &s,
        &id,
        "user.create",
        &[
            (format!("{ns}:uidNumber"), json!(null), json!(1001)),
            (
                format!("{ns}:sshKeys"),
                json!(null),
                json!(["ssh-ed25519 AAA"]),
            ),
        ],
    );

    let r = s
        .put(&format!("/scim/v2/Users/{id}"), &body(json!(1002)))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[ns]["uidNumber"], 1002);
    assert_eq!(stored(&s, &id).await[ns]["uidNumber"], 1002);
    assert_audited(
        &s,
        &id,
        "user.replace",
        &[(format!("{ns}:uidNumber"), json!(1001), json!(1002))],
    );
    assert!(
        found(&s, &format!("{ns}:uidNumber eq 1001"))
            .await
            .is_empty()
    );
    // Numbers compare as numbers, lists by any element, strings in any case.
    for f in [
        format!("{ns}:uidNumber ge 1002"),
        format!("{ns}:custom_attr_1 eq \"X\""),
        format!("{ns}:sshKeys sw \"ssh-ED25519\""),
    ] {
        assert_eq!(ids(&s.filter("Users", &f).await), [id.as_str()], "{f}");
    }
    assert_eq!(
        s.filter("Users", &format!("{ns}:uidNumber eq \"1002\""))
            .await["totalResults"],
        0
    );
    // sortBy the custom attribute: by its value as stored, missing last when ascending.
    let other = s
        .create_user(&json!({"userName": "kim@example.com", ns: {"uidNumber": 7}}))
        .await;
    let bare = s.create_user(&json!({"userName": "lou@example.com"})).await;
    for (order, expected) in [
        ("ascending", [id_of(&other), id.clone(), id_of(&bare)]),
        ("descending", [id_of(&bare), id.clone(), id_of(&other)]),
    ] {
        let r = s
            .get(&format!(
                "/scim/v2/Users?sortBy={ns}:uidNumber&sortOrder={order}&filter=userName%20pr"
            ))
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(ids(&r.json()), expected, "{order}");
    }
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
    // An http(s) schema id works the same, in filters and PATCH paths too.
    let uri = "https://example.com/scim/GroupExt";
    let id = id_of(&g);
    let r = s
        .patch(
            &format!("/scim/v2/Groups/{id}?attributes=displayName"),
            &json!([{"op": "add", "path": uri, "value": {"site": "Lisbon"}}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let found = s
        .filter("Groups", &format!("{uri}:site eq \"lisbon\""))
        .await;
    assert_eq!(ids(&found), [id.as_str()]);
    let found = s
        .filter("Groups", &format!("{ext}:costCenter eq \"c1\""))
        .await;
    assert_eq!(ids(&found), [id.as_str()]);
    let v = s.get(&format!("/scim/v2/Groups/{id}")).await.json();
    assert_eq!(v["schemas"], json!([GROUP_URN, ext, uri]));
}

/// Entra ID's custom extension attribute
/// `urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:<attr>`.
const ENTRA: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

#[tokio::test]
async fn entra_custom_extension_post_and_patch_by_urn_path() {
    let s = Server::start().await;
    // POST: the block nested under the URN, which `schemas` does not list.
    let created = s
        .create_user(&json!({
            "schemas": [USER_URN, ENTERPRISE_URN],
            "userName": "Test_User@contoso.example",
            "active": true,
            "externalId": "e-1",
            ENTRA: {"badgeNumber": "100", "costCenter": "CC1"},
        }))
        .await;
    let id = id_of(&created);
    let u = stored(&s, &id).await;
    assert_eq!(u[ENTRA], json!({"badgeNumber": "100", "costCenter": "CC1"}));
    assert_eq!(u["schemas"], json!([USER_URN, ENTRA]));
    assert_eq!(
        found(&s, &format!("{ENTRA}:badgeNumber eq \"100\"")).await,
        [id.as_str()]
    );
    assert_audited(
        &s,
        &id,
        "user.create",
        &[
            (format!("{ENTRA}:badgeNumber"), json!(null), json!("100")),
            (format!("{ENTRA}:costCenter"), json!(null), json!("CC1")),
        ],
    );

    let path = format!("/scim/v2/Users/{id}");
    // One PATCH, then its audit entry: each extension attribute changed, by its full path.
    let r = s
        .patch(
            &path,
            &json!([{"op": "Replace", "path": format!("{ENTRA}:badgeNumber"), "value": "7"}]),
        )
        .await;
    assert_eq!(r.status, 200);
    let store = scimd::store::Store::open(&s.db()).unwrap();
    let q = scimd::store::audit::Query {
        limit: 1,
        resource: Some(id.clone()),
        ..Default::default()
    };
    let log = store
        .read_sync(|conn| scimd::store::audit::list(conn, &q))
        .unwrap();
    assert_eq!(log[0].action, "user.patch");
    assert_eq!(
        log[0].detail,
        Some(json!({"changes": [
            {"path": format!("{ENTRA}:badgeNumber"), "before": "100", "after": "7"}
        ]}))
    );
    let r = s
        .patch(
            &path,
            &json!([{"op": "Replace", "path": format!("{ENTRA}:badgeNumber"), "value": "100"}]),
        )
        .await;
    assert_eq!(r.status, 200);
    for flag in ["", "?aadOptscim062020"] {
        let badge = stored(&s, &id).await[ENTRA]["badgeNumber"].clone();
        let r = s
            .patch(
                &format!("{path}{flag}"),
                &json!([
                    {"op": "Add", "path": format!("{ENTRA}:shell"), "value": "/bin/bash"},
                    {"op": "Replace", "path": format!("{ENTRA}:badgeNumber"), "value": "101"},
                    {"op": "Remove", "path": format!("{ENTRA}:costCenter")},
                ]),
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "{flag}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let u = stored(&s, &id).await;
        assert_eq!(
            u[ENTRA],
            json!({"badgeNumber": "101", "shell": "/bin/bash"}),
            "{flag}"
        );
        assert_audited(
            &s,
            &id,
            "user.patch",
            &[
                (format!("{ENTRA}:shell"), json!(null), json!("/bin/bash")),
                (format!("{ENTRA}:badgeNumber"), badge, json!("101")),
                (format!("{ENTRA}:costCenter"), json!("CC1"), json!(null)),
            ],
        );
        assert_eq!(
            found(&s, &format!("{ENTRA}:shell eq \"/bin/bash\"")).await,
            [id.as_str()]
        );
        assert!(
            found(&s, &format!("{ENTRA}:costCenter pr"))
                .await
                .is_empty()
        );
        // Path-less replace with URN-qualified keys (idp-compat.md §2 row 12).
        let r = s
            .patch(
                &format!("{path}{flag}"),
                &json!([{"op": "Replace", "value": {
                    format!("{ENTRA}:badgeNumber"): "102",
                    format!("{ENTRA}:costCenter"): "CC2",
                    "displayName": "Test User",
                }}]),
            )
            .await;
        assert_eq!(r.status, 200, "{flag}");
        let u = stored(&s, &id).await;
        assert_eq!(
            u[ENTRA],
            json!({"badgeNumber": "102", "shell": "/bin/bash", "costCenter": "CC2"}),
            "{flag}"
        );
        assert_eq!(u["displayName"], "Test User");
        assert_audited(
            &s,
            &id,
            "user.patch",
            &[
                (format!("{ENTRA}:badgeNumber"), json!("101"), json!("102")),
                (format!("{ENTRA}:costCenter"), json!(null), json!("CC2")),
            ],
        );
        assert_eq!(
            found(&s, &format!("{ENTRA}:costCenter eq \"cc2\"")).await,
            [id.as_str()]
        );
        // Back to the starting point for the next round.
        let r = s
            .patch(
                &format!("{path}{flag}"),
                &json!([
                    {"op": "Remove", "path": format!("{ENTRA}:shell")},
                    {"op": "Replace", "path": format!("{ENTRA}:costCenter"), "value": "CC1"},
                ]),
            )
            .await;
        assert_eq!(r.status, 200, "{flag}");
    }
    // Removing every attribute drops the block and its URN from `schemas`.
    let r = s
        .patch(
            &path,
            &json!([
                {"op": "Remove", "path": format!("{ENTRA}:badgeNumber")},
                {"op": "Remove", "path": format!("{ENTRA}:costCenter")},
            ]),
        )
        .await;
    assert_eq!(r.status, 200);
    let u = stored(&s, &id).await;
    assert!(u.get(ENTRA).is_none(), "{u}");
    assert_eq!(u["schemas"], json!([USER_URN]));
    assert_audited(
        &s,
        &id,
        "user.patch",
        &[
            (format!("{ENTRA}:badgeNumber"), json!("102"), json!(null)),
            (format!("{ENTRA}:costCenter"), json!("CC1"), json!(null)),
        ],
    );
    assert!(
        found(&s, &format!("{ENTRA}:badgeNumber pr"))
            .await
            .is_empty()
    );
}

/// Sub-attributes and value filters inside an undeclared attribute: searched in SQL and
/// changed by PATCH as a declared attribute's are.
#[tokio::test]
async fn undeclared_sub_attributes_and_value_filters_search_and_patch() {
    let s = Server::start().await;
    let user = |name: &str, key: &str| {
        json!({
            "schemas": [USER_URN, ACME],
            "userName": name,
            ACME: {
                "sshKeys": [{"type": "ed25519", "value": key}, {"type": "rsa", "value": "old"}],
                "sponsor": {"value": format!("sp-{name}"), "name": "Sam"},
            },
        })
    };
    let ana = id_of(&s.create_user(&user("ana", "AAAA")).await);
    let bo = id_of(&s.create_user(&user("bo", "BBBB")).await);
    assert_eq!(
        found(&s, &format!("{ACME}:sshKeys.value eq \"aaaa\"")).await,
        [ana.as_str()]
    );
    assert_eq!(
        found(&s, &format!("{ACME}:sponsor.value eq \"sp-bo\"")).await,
        [bo.as_str()]
    );
    assert_eq!(
        found(
            &s,
            &format!("{ACME}:sshKeys[type eq \"ed25519\" and value sw \"B\"]")
        )
        .await,
        [bo.as_str()]
    );
    let mut both = found(&s, &format!("{ACME}:sshKeys[type eq \"rsa\"]")).await;
    both.sort();
    let mut want = vec![ana.clone(), bo.clone()];
    want.sort();
    assert_eq!(both, want);

    let path = format!("/scim/v2/Users/{ana}");
    let r = s
        .patch(
            &path,
            &json!([
                {"op": "replace", "path": format!("{ACME}:sshKeys[type eq \"ed25519\"].value"), "value": "CCCC"},
                {"op": "remove", "path": format!("{ACME}:sshKeys[type eq \"rsa\"]")},
                {"op": "replace", "path": format!("{ACME}:sponsor.name"), "value": "Kim"},
            ]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json());
    let u = stored(&s, &ana).await;
    assert_eq!(
        u[ACME]["sshKeys"],
        json!([{"type": "ed25519", "value": "CCCC"}])
    );
    assert_eq!(
        u[ACME]["sponsor"],
        json!({"value": "sp-ana", "name": "Kim"})
    );
    assert_eq!(
        found(&s, &format!("{ACME}:sshKeys.value eq \"CCCC\"")).await,
        [ana.as_str()]
    );
    assert!(
        found(&s, &format!("{ACME}:sshKeys.value eq \"AAAA\""))
            .await
            .is_empty()
    );

    // Matching nothing is noTarget and changes nothing.
    let r = s
        .patch(
            &path,
            &json!([{"op": "remove", "path": format!("{ACME}:sshKeys[value eq \"none\"]")}]),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["scimType"], "noTarget");
    assert_eq!(stored(&s, &ana).await[ACME]["sshKeys"], u[ACME]["sshKeys"]);
}
