//! Replays of what each identity provider sends (idp-compat.md §1), as the ordered sequence it
//! performs: create, update, deactivate, reactivate, group create, membership changes, delete.
//! Each replay is a table of steps run by one runner; the checks are on the resulting state,
//! not only on status codes.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::common::*;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

enum Step {
    /// A request; `{name}` in the path or in any string of the body is replaced by a saved id.
    Call {
        method: &'static str,
        path: String,
        body: Option<Value>,
        status: u16,
        /// Save the response's `id` (or, for a list, its first resource's id) under this name.
        save: Option<&'static str>,
    },
    /// `GET path` answers 200 and the JSON at `pointer` equals `value` (placeholders replaced).
    Expect {
        path: String,
        pointer: &'static str,
        value: Value,
    },
    /// The group at `path` has exactly these members, in any order.
    Members {
        path: String,
        ids: Vec<&'static str>,
    },
}

fn call(method: &'static str, path: &str, body: Option<Value>, status: u16) -> Step {
    Step::Call {
        method,
        path: path.to_string(),
        body,
        status,
        save: None,
    }
}

fn saving(name: &'static str, step: Step) -> Step {
    match step {
        Step::Call {
            method,
            path,
            body,
            status,
            ..
        } => Step::Call {
            method,
            path,
            body,
            status,
            save: Some(name),
        },
        other => other,
    }
}

fn patch(path: &str, ops: Value, status: u16) -> Step {
    call(
        "PATCH",
        path,
        Some(json!({"schemas": [PATCH_OP], "Operations": ops})),
        status,
    )
}

fn expect(path: &str, pointer: &'static str, value: Value) -> Step {
    Step::Expect {
        path: path.to_string(),
        pointer,
        value,
    }
}

fn members(path: &str, ids: &[&'static str]) -> Step {
    Step::Members {
        path: path.to_string(),
        ids: ids.to_vec(),
    }
}

fn fill(text: &str, vars: &HashMap<&str, String>) -> String {
    vars.iter().fold(text.to_string(), |t, (k, v)| {
        t.replace(&format!("{{{k}}}"), v)
    })
}

fn fill_json(v: &Value, vars: &HashMap<&str, String>) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|i| fill_json(i, vars)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (fill(k, vars), fill_json(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn run(idp: &str, steps: Vec<Step>) {
    let s = Server::start().await;
    let mut vars: HashMap<&str, String> = HashMap::new();
    for (n, step) in steps.into_iter().enumerate() {
        let at = format!("{idp} step {}", n + 1);
        match step {
            Step::Call {
                method,
                path,
                body,
                status,
                save,
            } => {
                let path = fill(&path, &vars);
                let body = body.map(|b| fill_json(&b, &vars).to_string());
                let r = s.call(method, &path, body.as_deref()).await;
                let text = String::from_utf8_lossy(&r.body).to_string();
                assert_eq!(r.status, status, "{at}: {method} {path}: {text}");
                if let Some(name) = save {
                    let v = r.json();
                    let id = v["id"]
                        .as_str()
                        .or(v["Resources"][0]["id"].as_str())
                        .unwrap_or_else(|| panic!("{at}: no id in {text}"));
                    vars.insert(name, id.to_string());
                }
            }
            Step::Expect {
                path,
                pointer,
                value,
            } => {
                let path = fill(&path, &vars);
                let r = s.get(&path).await;
                assert_eq!(r.status, 200, "{at}: GET {path}");
                let got = r.json();
                let want = fill_json(&value, &vars);
                assert_eq!(
                    got.pointer(pointer).unwrap_or(&Value::Null),
                    &want,
                    "{at}: {path} {pointer} in {got}"
                );
            }
            Step::Members { path, ids } => {
                let path = fill(&path, &vars);
                let got = s.get(&path).await.json();
                let mut have: Vec<String> = got["members"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{at}: no members in {got}"))
                    .iter()
                    .map(|m| m["value"].as_str().unwrap_or_default().to_string())
                    .collect();
                let mut want: Vec<String> = ids
                    .iter()
                    .map(|i| fill(&format!("{{{i}}}"), &vars))
                    .collect();
                have.sort();
                want.sort();
                assert_eq!(have, want, "{at}: members of {path}");
            }
        }
    }
}

/// OneLogin "SCIM Provisioner with SAML (SCIM v2 Core)" and "(SCIM v2 Enterprise)"
/// (idp-compat.md §1.1): users by POST/PUT of the rendered template, groups by PATCH.
fn onelogin(enterprise: bool) -> Vec<Step> {
    let user = |title: &str, active: &str| {
        let mut u = json!({
            "schemas": [USER],
            "userName": "jane@example.com",
            "name": {"givenName": "Jane", "familyName": "Doe", "formatted": "Jane Doe"},
            "emails": [{"value": "jane@example.com", "type": "work", "primary": true}],
            "title": title,
            "active": active,
        });
        if enterprise {
            // The v2 Enterprise template as a real trace carried it: legacy URNs.
            u["schemas"] = json!([
                "urn:scim:schemas:core:2.0",
                "urn:scim:schemas:extension:enterprise:2.0"
            ]);
            u["urn:scim:schemas:extension:enterprise:2.0"] =
                json!({"department": "R&D", "manager": {"managerId": "", "displayName": ""}});
        }
        u
    };
    let lookup = "/scim/v2/Users?filter=userName+eq+%22jane@example.com%22&";
    vec![
        call(
            "GET",
            "/scim/v2/Users?filter=userName+eq+%22probe%22&",
            None,
            200,
        ),
        expect(lookup, "/totalResults", json!(0)),
        saving(
            "u",
            call(
                "POST",
                "/scim/v2/Users",
                Some(user("Engineer", "true")),
                201,
            ),
        ),
        saving("u", call("GET", lookup, None, 200)),
        call(
            "PUT",
            "/scim/v2/Users/{u}?",
            Some(user("Lead", "true")),
            200,
        ),
        expect("/scim/v2/Users/{u}", "/title", json!("Lead")),
        expect(
            "/scim/v2/Users/{u}",
            if enterprise {
                "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/department"
            } else {
                "/userName"
            },
            json!(if enterprise {
                "R&D"
            } else {
                "jane@example.com"
            }),
        ),
        // Suspend and reactivate: PUT with active as the template renders it.
        call(
            "PUT",
            "/scim/v2/Users/{u}?",
            Some(user("Lead", "false")),
            200,
        ),
        expect(lookup, "/Resources/0/active", json!(false)),
        call(
            "PUT",
            "/scim/v2/Users/{u}?",
            Some(user("Lead", "true")),
            200,
        ),
        expect("/scim/v2/Users/{u}", "/active", json!(true)),
        // Groups: refresh entitlements, create, then membership by PATCH (165-byte form).
        call("GET", "/scim/v2/Groups", None, 200),
        saving(
            "g",
            call(
                "POST",
                "/scim/v2/Groups",
                Some(json!({"schemas": [GROUP], "displayName": "Engineering"})),
                201,
            ),
        ),
        patch(
            "/scim/v2/Groups/{g}",
            json!([{"op": "add", "path": "members", "value": [{"value": "{u}"}]}]),
            204,
        ),
        members("/scim/v2/Groups/{g}", &["u"]),
        expect("/scim/v2/Users/{u}", "/groups/0/value", json!("{g}")),
        patch(
            "/scim/v2/Groups/{g}",
            json!([{"op": "remove", "path": "members", "value": [{"value": "{u}"}]}]),
            204,
        ),
        members("/scim/v2/Groups/{g}", &[]),
        // The SCIM 1.1 form the v1.1 connectors send.
        call(
            "PATCH",
            "/scim/v2/Groups/{g}",
            Some(json!({"schemas": ["urn:scim:schemas:core:1.0"], "members": [{"value": "{u}"}]})),
            204,
        ),
        members("/scim/v2/Groups/{g}", &["u"]),
        call(
            "PATCH",
            "/scim/v2/Groups/{g}",
            Some(
                json!({"schemas": ["urn:scim:schemas:core:1.0"], "members": [{"value": "{u}", "operation": "delete"}]}),
            ),
            204,
        ),
        members("/scim/v2/Groups/{g}", &[]),
        patch(
            "/scim/v2/Groups/{g}",
            json!([{"op": "Add", "path": "members", "value": [{"value": "{u}"}]}]),
            204,
        ),
        call("DELETE", "/scim/v2/Users/{u}", None, 204),
        call("GET", "/scim/v2/Users/{u}", None, 404),
        members("/scim/v2/Groups/{g}", &[]),
        call("DELETE", "/scim/v2/Users/{u}", None, 404),
    ]
}

#[tokio::test]
async fn onelogin_v2_core() {
    run("OneLogin v2 Core", onelogin(false)).await;
}

#[tokio::test]
async fn onelogin_v2_enterprise() {
    run("OneLogin v2 Enterprise", onelogin(true)).await;
}

/// Okta OIN integration (idp-compat.md §1.2): PUT for profiles, PATCH for activation and groups.
#[tokio::test]
async fn okta_oin() {
    let user = json!({"schemas": [USER], "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": "1mz050nq", "active": true});
    let mut updated = user.clone();
    updated["id"] = json!("{u}");
    updated["meta"] = json!({"resourceType": "User"});
    updated["name"]["familyName"] = json!("Userson");
    run("Okta OIN", vec![
        call("GET", "/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100", None, 200),
        saving("u", call("POST", "/scim/v2/Users", Some(user.clone()), 201)),
        call("POST", "/scim/v2/Users", Some(user), 409),
        call("GET", "/scim/v2/Users/{u}", None, 200),
        call("PUT", "/scim/v2/Users/{u}", Some(updated), 200),
        expect("/scim/v2/Users/{u}", "/name/familyName", json!("Userson")),
        expect("/scim/v2/Users/{u}", "/password", Value::Null),
        patch("/scim/v2/Users/{u}", json!([{"op": "replace", "value": {"active": false}}]), 200),
        expect("/scim/v2/Users/{u}", "/active", json!(false)),
        patch("/scim/v2/Users/{u}", json!([{"op": "replace", "value": {"active": true}}]), 200),
        expect("/scim/v2/Users/{u}", "/active", json!(true)),
        saving("other", call("POST", "/scim/v2/Users", Some(json!({"userName": "other@okta.local"})), 201)),
        saving("g", call("POST", "/scim/v2/Groups", Some(json!({"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []})), 201)),
        patch("/scim/v2/Groups/{g}", json!([
            {"op": "replace", "value": {"id": "{g}", "displayName": "Test SCIMv2"}},
            {"op": "add", "path": "members", "value": [{"value": "{u}", "display": "test.user@okta.local"}, {"value": "{other}", "display": "other"}]}]), 204),
        members("/scim/v2/Groups/{g}", &["u", "other"]),
        // Rename travels with every membership update, read-only id included.
        patch("/scim/v2/Groups/{g}", json!([
            {"op": "replace", "value": {"id": "{g}", "displayName": "Renamed"}},
            {"op": "remove", "path": "members[value eq \"{other}\"]"}]), 204),
        members("/scim/v2/Groups/{g}", &["u"]),
        expect("/scim/v2/Groups/{g}", "/displayName", json!("Renamed")),
        patch("/scim/v2/Groups/{g}", json!([{"op": "replace", "path": "members", "value": [{"value": "{other}"}]}]), 204),
        members("/scim/v2/Groups/{g}", &["other"]),
        call("GET", "/scim/v2/Groups?startIndex=1&count=100", None, 200),
        expect("/scim/v2/Groups?startIndex=1&count=100", "/totalResults", json!(1)),
        call("DELETE", "/scim/v2/Groups/{g}", None, 204),
        expect("/scim/v2/Users/{other}", "/groups", Value::Null),
    ]).await;
}

/// Okta custom (AIW) app: PUT for everything, groups included.
#[tokio::test]
async fn okta_custom_app() {
    let user = |active: bool| {
        json!({"schemas": [USER], "userName": "aiw@okta.local",
        "name": {"givenName": "A", "familyName": "W"}, "active": active,
        "emails": [{"primary": true, "value": "aiw@okta.local", "type": "work"}]})
    };
    run("Okta AIW", vec![
        call("GET", "/scim/v2/Users?filter=userName%20eq%20%22aiw%40okta.local%22&startIndex=1&count=100", None, 200),
        saving("u", call("POST", "/scim/v2/Users", Some(user(true)), 201)),
        saving("v", call("POST", "/scim/v2/Users", Some(json!({"userName": "v@okta.local"})), 201)),
        call("PUT", "/scim/v2/Users/{u}", Some(user(false)), 200),
        expect("/scim/v2/Users/{u}", "/active", json!(false)),
        call("PUT", "/scim/v2/Users/{u}", Some(user(true)), 200),
        saving("g", call("POST", "/scim/v2/Groups", Some(json!({"schemas": [GROUP], "displayName": "AIW", "members": []})), 201)),
        call("PUT", "/scim/v2/Groups/{g}", Some(json!({"schemas": [GROUP], "id": "{g}", "displayName": "AIW",
            "members": [{"value": "{u}"}, {"value": "{v}"}]})), 200),
        members("/scim/v2/Groups/{g}", &["u", "v"]),
        call("PUT", "/scim/v2/Groups/{g}", Some(json!({"schemas": [GROUP], "displayName": "AIW",
            "members": [{"value": "{v}"}]})), 200),
        members("/scim/v2/Groups/{g}", &["v"]),
        call("DELETE", "/scim/v2/Groups/{g}", None, 204),
    ]).await;
}

/// Microsoft Entra ID, without and with `aadOptscim062020` (idp-compat.md §1.3).
fn entra(flag: bool) -> Vec<Step> {
    let q = if flag { "?aadOptscim062020" } else { "" };
    let u = format!("/scim/v2/Users/{{u}}{q}");
    let g = format!("/scim/v2/Groups/{{g}}{q}");
    let user = json!({"schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "Test_User_1", "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_1@testuser.com"}],
        "meta": {"resourceType": "User"}, "addresses": null, "phoneNumbers": null, "title": null,
        "department": "stray", "roles": [],
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"}});
    let (replace, add, remove) = if flag {
        ("replace", "add", "remove")
    } else {
        ("Replace", "Add", "Remove")
    };
    let (no, yes) = if flag {
        (json!(false), json!(true))
    } else {
        (json!("False"), json!("True"))
    };
    let update = if flag {
        json!([{"op": "replace", "value": {
                "name.familyName": "updatedFamilyName",
                "nickName": "Nick",
                format!("{ENT}:employeeNumber"): "42"}},
               {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "updated@microsoft.com"},
               {"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"},
               {"op": "add", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"}])
    } else {
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updated@microsoft.com"},
               {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
               {"op": "Add", "path": "nickName", "value": "Nick"},
               {"op": "Add", "path": format!("{ENT}:employeeNumber"), "value": "42"},
               {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"},
               {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"}])
    };
    let remove_member = if flag {
        json!([{"op": "remove", "path": "members[value eq \"{u}\"]"}])
    } else {
        json!([{"op": "Remove", "path": "members", "value": [{"value": "{u}"}]}])
    };
    vec![
        // Test Connection: random GUIDs must be 200 with an empty list.
        expect(
            &format!(
                "/scim/v2/Users?filter=userName%20eq%20%2201234567-89ab-cdef-0123-456789abcdef%22{}",
                if flag { "&aadOptscim062020" } else { "" }
            ),
            "/totalResults",
            json!(0),
        ),
        expect(
            "/scim/v2/Groups?excludedAttributes=members&filter=displayName%20eq%20%2201234567%22",
            "/totalResults",
            json!(0),
        ),
        call(
            "GET",
            "/scim/v2/Users?filter=externalId%20eq%20%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22",
            None,
            200,
        ),
        saving(
            "u",
            call("POST", &format!("/scim/v2/Users{q}"), Some(user), 201),
        ),
        saving(
            "boss",
            call(
                "POST",
                "/scim/v2/Users",
                Some(json!({"userName": "boss"})),
                201,
            ),
        ),
        // The manager arrives in its own PATCH.
        patch(
            &u,
            json!([{"op": add, "path": format!("{ENT}:manager"), "value": [{"$ref": null, "value": "{boss}"}]}]),
            200,
        ),
        expect(
            &u,
            "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/manager/value",
            json!("{boss}"),
        ),
        call(
            "GET",
            "/scim/v2/Users?filter=userName%20eq%20%22Test_User_1%22",
            None,
            200,
        ),
        patch(&u, update, 200),
        expect(&u, "/emails/0/value", json!("updated@microsoft.com")),
        expect(&u, "/emails/0/type", json!("work")),
        expect(&u, "/name/familyName", json!("updatedFamilyName")),
        expect(&u, "/name/givenName", json!("givenName")),
        expect(&u, "/nickName", json!("Nick")),
        expect(
            &u,
            "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/employeeNumber",
            json!("42"),
        ),
        expect(
            &u,
            "/phoneNumbers",
            json!([{"type": "mobile", "value": "+1 555"}]),
        ),
        expect(
            &u,
            "/addresses",
            json!([{"type": "work", "postalCode": "98052"}]),
        ),
        expect(
            "/scim/v2/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22updated%40microsoft.com%22",
            "/Resources/0/id",
            json!("{u}"),
        ),
        // Disable, still visible; enable again.
        patch(
            &u,
            json!([{"op": replace, "path": "active", "value": no}]),
            200,
        ),
        expect(
            "/scim/v2/Users?filter=userName%20eq%20%22Test_User_1%22",
            "/Resources/0/active",
            json!(false),
        ),
        patch(
            &u,
            json!([{"op": replace, "path": "active", "value": yes}]),
            200,
        ),
        expect(&u, "/active", json!(true)),
        // Groups: created without members, matched by displayName, members by PATCH.
        saving(
            "g",
            call(
                "POST",
                &format!("/scim/v2/Groups{q}"),
                Some(json!({
            "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "displayName",
            "meta": {"resourceType": "Group"}})),
                201,
            ),
        ),
        expect(
            "/scim/v2/Groups?excludedAttributes=members&filter=displayName%20eq%20%22displayName%22",
            "/Resources/0/id",
            json!("{g}"),
        ),
        expect(
            "/scim/v2/Groups/{g}?excludedAttributes=members",
            "/members",
            Value::Null,
        ),
        patch(
            &g,
            json!([{"op": add, "path": "members", "value": [{"$ref": null, "value": "{u}"}, {"$ref": null, "value": "{boss}"}]}]),
            204,
        ),
        members("/scim/v2/Groups/{g}", &["u", "boss"]),
        patch(&g, remove_member, 204),
        members("/scim/v2/Groups/{g}", &["boss"]),
        patch(
            &g,
            json!([{"op": replace, "path": "displayName", "value": "Renamed"}]),
            204,
        ),
        expect("/scim/v2/Groups/{g}", "/displayName", json!("Renamed")),
        patch(
            &g,
            json!([{"op": remove, "path": "members", "value": [{"value": "{boss}"}]}]),
            204,
        ),
        members("/scim/v2/Groups/{g}", &[]),
        call("DELETE", &u, None, 204),
        call("DELETE", &g, None, 204),
        call("GET", "/scim/v2/Groups/{g}", None, 404),
    ]
}

#[tokio::test]
async fn entra_id_legacy_patch() {
    run("Entra ID", entra(false)).await;
}

#[tokio::test]
async fn entra_id_with_aad_opt_scim_062020() {
    run("Entra ID (aadOptscim062020)", entra(true)).await;
}

/// JumpCloud (idp-compat.md §1.4): Test Connection creates and deletes a test user and group;
/// member adds repeat; removal by value list.
#[tokio::test]
async fn jumpcloud() {
    run(
        "JumpCloud",
        vec![
            saving(
                "t",
                call(
                    "POST",
                    "/scim/v2/Users",
                    Some(json!({"schemas": [USER], "userName": "jc-test@example.com",
            "emails": [{"value": "jc-test@example.com", "primary": true}], "active": true})),
                    201,
                ),
            ),
            saving(
                "tg",
                call(
                    "POST",
                    "/scim/v2/Groups",
                    Some(json!({"schemas": [GROUP], "displayName": "jc-test-group"})),
                    201,
                ),
            ),
            call("DELETE", "/scim/v2/Users/{t}", None, 204),
            call("DELETE", "/scim/v2/Groups/{tg}", None, 204),
            saving(
                "u",
                call(
                    "POST",
                    "/scim/v2/Users",
                    Some(json!({"schemas": [USER], "userName": "ana@example.com", "active": true})),
                    201,
                ),
            ),
            saving(
                "g",
                call(
                    "POST",
                    "/scim/v2/Groups",
                    Some(json!({"schemas": [GROUP], "displayName": "Staff"})),
                    201,
                ),
            ),
            patch(
                "/scim/v2/Groups/{g}",
                json!([{"op": "add", "path": "members", "value": [{"value": "{u}"}]}]),
                204,
            ),
            patch(
                "/scim/v2/Groups/{g}",
                json!([{"op": "add", "path": "members", "value": [{"value": "{u}"}]}]),
                204,
            ),
            members("/scim/v2/Groups/{g}", &["u"]),
            expect("/scim/v2/Groups/{g}", "/meta/version", json!("W/\"2\"")),
            patch(
                "/scim/v2/Users/{u}",
                json!([{"op": "replace", "path": "active", "value": false}]),
                200,
            ),
            expect("/scim/v2/Users/{u}", "/active", json!(false)),
            patch(
                "/scim/v2/Groups/{g}",
                json!([{"op": "remove", "path": "members", "value": [{"value": "{u}"}]}]),
                204,
            ),
            members("/scim/v2/Groups/{g}", &[]),
        ],
    )
    .await;
}

/// authentik's SCIM provider (idp-compat.md §1.6): SPC on every client start, PUT for users,
/// adopt a group after a 409, one PATCH operation per member, whole-group replace.
#[tokio::test]
async fn authentik() {
    run("authentik", vec![
        expect("/scim/v2/ServiceProviderConfig", "/patch/supported", json!(true)),
        saving("u", call("POST", "/scim/v2/Users", Some(json!({"schemas": [USER], "userName": "akadmin",
            "externalId": "ak-uid-1", "name": {"formatted": "authentik Default Admin"}, "active": true,
            "emails": [{"value": "root@localhost", "primary": true, "type": "other"}]})), 201)),
        saving("v", call("POST", "/scim/v2/Users", Some(json!({"userName": "second", "externalId": "ak-uid-2"})), 201)),
        call("PUT", "/scim/v2/Users/{u}", Some(json!({"schemas": [USER], "userName": "akadmin",
            "externalId": "ak-uid-1", "displayName": "Admin", "active": true})), 200),
        expect("/scim/v2/Users/{u}", "/displayName", json!("Admin")),
        expect("/scim/v2/Users/{u}", "/emails", Value::Null),
        saving("g", call("POST", "/scim/v2/Groups", Some(json!({"schemas": [GROUP], "displayName": "authentik Admins"})), 201)),
        call("POST", "/scim/v2/Groups", Some(json!({"schemas": [GROUP], "displayName": "authentik Admins"})), 409),
        saving("g", call("GET", "/scim/v2/Groups?filter=displayName%20eq%20%22authentik%20Admins%22", None, 200)),
        patch("/scim/v2/Groups/{g}", json!([{"op": "add", "path": "members", "value": [{"value": "{u}"}]},
                                           {"op": "add", "path": "members", "value": [{"value": "{v}"}]}]), 204),
        members("/scim/v2/Groups/{g}", &["u", "v"]),
        patch("/scim/v2/Groups/{g}", json!([{"op": "remove", "path": "members", "value": [{"value": "{v}"}]}]), 204),
        members("/scim/v2/Groups/{g}", &["u"]),
        // Older versions replace the whole group in one path-less op, id included.
        patch("/scim/v2/Groups/{g}", json!([{"op": "replace", "value": {"id": "{g}", "schemas": [GROUP],
            "displayName": "authentik Admins", "externalId": "ak-group-1"}}]), 204),
        expect("/scim/v2/Groups/{g}", "/externalId", json!("ak-group-1")),
        members("/scim/v2/Groups/{g}", &["u"]),
        call("DELETE", "/scim/v2/Users/{v}", None, 204),
        call("DELETE", "/scim/v2/Users/{u}", None, 204),
        members("/scim/v2/Groups/{g}", &[]),
    ]).await;
}

/// The Keycloak SCIM-client plugin (idp-compat.md §1.7): POST without lookup, PUT with the full
/// resource, optional PATCH mode with string booleans, groups by PUT.
#[tokio::test]
async fn keycloak_plugin() {
    run("Keycloak", vec![
        saving("u", call("POST", "/scim/v2/Users", Some(json!({"schemas": [USER], "userName": "kc-user",
            "displayName": "KC User", "active": true, "externalId": "kc-1"})), 201)),
        call("POST", "/scim/v2/Users", Some(json!({"schemas": [USER], "userName": "kc-user", "active": true})), 409),
        call("PUT", "/scim/v2/Users/{u}", Some(json!({"schemas": [USER], "id": "{u}", "userName": "kc-user",
            "displayName": "KC Renamed", "active": true, "externalId": "kc-1"})), 200),
        patch("/scim/v2/Users/{u}", json!([{"op": "replace", "path": "active", "value": "false"},
                                          {"op": "replace", "path": "userName", "value": "kc-user-2"},
                                          {"op": "replace", "path": "displayName", "value": "KC 2"}]), 200),
        expect("/scim/v2/Users/{u}", "/active", json!(false)),
        expect("/scim/v2/Users/{u}", "/userName", json!("kc-user-2")),
        patch("/scim/v2/Users/{u}", json!([{"op": "replace", "path": "active", "value": "true"}]), 200),
        saving("g", call("POST", "/scim/v2/Groups", Some(json!({"schemas": [GROUP], "displayName": "kc-group"})), 201)),
        call("PUT", "/scim/v2/Groups/{g}", Some(json!({"schemas": [GROUP], "displayName": "kc-group",
            "members": [{"value": "{u}", "$ref": "http://x/scim/v2/Users/{u}"}]})), 200),
        members("/scim/v2/Groups/{g}", &["u"]),
        expect("/scim/v2/Users/{u}", "/groups/0/display", json!("kc-group")),
        call("DELETE", "/scim/v2/Users/{u}", None, 204),
        members("/scim/v2/Groups/{g}", &[]),
    ]).await;
}
