//! /Groups: create, read, replace, delete, list, filter; members and nesting.

use serde_json::{Value, json};

use crate::common::*;

async fn user(s: &Server, name: &str) -> String {
    id_of(
        &s.create_user(&json!({"userName": name, "displayName": format!("{name} D")}))
            .await,
    )
}

fn member_ids(group: &Value) -> Vec<String> {
    group["members"]
        .as_array()
        .expect("members array")
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn create_with_members_renders_type_ref_and_display() {
    let s = Server::start().await;
    let a = user(&s, "a").await;
    let r = s
        .post(
            "/scim/v2/Groups",
            &json!({"schemas": [GROUP_URN], "displayName": "Engineering", "externalId": "eng",
                    "members": [{"value": a, "display": "ignored", "type": "User"}]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let g = r.json();
    let id = id_of(&g);
    assert_eq!(r.header("location"), g["meta"]["location"].as_str());
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(g["schemas"], json!([GROUP_URN]));
    assert_eq!(g["displayName"], "Engineering");
    assert_eq!(g["externalId"], "eng");
    assert_eq!(
        g["members"],
        json!([{"value": a, "$ref": format!("http://{}/scim/v2/Users/{a}", s.addr),
                "type": "User"}])
    );
    assert_eq!(s.get(&format!("/scim/v2/Groups/{id}")).await.json(), g);
}

#[tokio::test]
async fn an_empty_group_has_an_empty_member_list() {
    let s = Server::start().await;
    let g = s.create_group(&json!({"displayName": "Empty"})).await;
    assert_eq!(g["members"], json!([]));
}

#[tokio::test]
async fn unknown_member_ids_are_skipped_not_fatal() {
    let s = Server::start().await;
    let a = user(&s, "a").await;
    let g = s
        .create_group(&json!({"displayName": "G",
                              "members": [{"value": "no-such-id"}, {"value": a}, {"value": a}]}))
        .await;
    assert_eq!(member_ids(&g), vec![a]);
}

#[tokio::test]
async fn put_replaces_members_and_renames() {
    let s = Server::start().await;
    let (a, b, c) = (
        user(&s, "a").await,
        user(&s, "b").await,
        user(&s, "c").await,
    );
    let g = s
        .create_group(&json!({"displayName": "G", "members": [{"value": a}, {"value": b}]}))
        .await;
    let path = format!("/scim/v2/Groups/{}", id_of(&g));
    let r = s
        .put(
            &path,
            &json!({"displayName": "G2", "members": [{"value": b}, {"value": c}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["displayName"], "G2");
    assert_eq!(member_ids(&v), vec![b.clone(), c.clone()]);
    assert_eq!(v["meta"]["version"], "W/\"2\"");
    // The same body again changes nothing.
    let again = s
        .put(
            &path,
            &json!({"displayName": "G2", "members": [{"value": c}, {"value": b}]}),
        )
        .await
        .json();
    assert_eq!(again["meta"]["version"], "W/\"2\"");
    // PUT without members empties the group.
    let empty = s.put(&path, &json!({"displayName": "G2"})).await.json();
    assert_eq!(empty["members"], json!([]));
    assert_eq!(empty["meta"]["version"], "W/\"3\"");
}

#[tokio::test]
async fn display_names_are_unique_case_insensitively() {
    let s = Server::start().await;
    s.create_group(&json!({"displayName": "Finance"})).await;
    s.post("/scim/v2/Groups", &json!({"displayName": "FINANCE"}))
        .await
        .assert_error(409, Some("uniqueness"));
    let other = s.create_group(&json!({"displayName": "Sales"})).await;
    s.put(
        &format!("/scim/v2/Groups/{}", id_of(&other)),
        &json!({"displayName": "finance"}),
    )
    .await
    .assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn nested_groups_are_allowed_but_not_cycles() {
    let s = Server::start().await;
    let inner = s.create_group(&json!({"displayName": "Inner"})).await;
    let outer = s
        .create_group(&json!({"displayName": "Outer", "members": [{"value": id_of(&inner)}]}))
        .await;
    assert_eq!(outer["members"][0]["type"], "Group");
    // Inner ⊂ Outer, so Outer ⊂ Inner would close a loop; so would a group in itself.
    let inner_path = format!("/scim/v2/Groups/{}", id_of(&inner));
    s.put(
        &inner_path,
        &json!({"displayName": "Inner", "members": [{"value": id_of(&outer)}]}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    s.put(
        &inner_path,
        &json!({"displayName": "Inner", "members": [{"value": id_of(&inner)}]}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    // Nothing changed.
    assert_eq!(
        s.get(&inner_path).await.json()["meta"]["version"],
        "W/\"1\""
    );
}

#[tokio::test]
async fn deleting_a_member_updates_its_groups() {
    let s = Server::start().await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    let g = s
        .create_group(&json!({"displayName": "G", "members": [{"value": a}, {"value": b}]}))
        .await;
    let path = format!("/scim/v2/Groups/{}", id_of(&g));
    assert_eq!(s.delete(&format!("/scim/v2/Users/{a}")).await.status, 204);
    let after = s.get(&path).await.json();
    assert_eq!(member_ids(&after), vec![b]);
    assert_eq!(after["meta"]["version"], "W/\"2\"");
}

#[tokio::test]
async fn delete_group_keeps_its_members_and_frees_the_name() {
    let s = Server::start().await;
    let a = user(&s, "a").await;
    let g = s
        .create_group(&json!({"displayName": "G", "members": [{"value": a}]}))
        .await;
    let path = format!("/scim/v2/Groups/{}", id_of(&g));
    assert_eq!(s.delete(&path).await.status, 204);
    s.get(&path).await.assert_error(404, None);
    s.delete(&path).await.assert_error(404, None);
    let u = s.get(&format!("/scim/v2/Users/{a}")).await.json();
    assert!(u.get("groups").is_none());
    s.create_group(&json!({"displayName": "G"})).await;
}

#[tokio::test]
async fn filters_find_groups() {
    let s = Server::start().await;
    let a = user(&s, "a").await;
    let g = s
        .create_group(&json!({"displayName": "Finance", "externalId": "fin",
                              "members": [{"value": a}]}))
        .await;
    s.create_group(&json!({"displayName": "Sales"})).await;
    let id = id_of(&g);
    for f in [
        "displayName eq \"finance\"".to_string(),
        "externalId eq \"fin\"".to_string(),
        format!("id eq \"{id}\""),
        format!("members.value eq \"{a}\""),
        format!("members[value eq \"{a}\"]"),
    ] {
        assert_eq!(ids(&s.filter("Groups", &f).await), vec![id.clone()], "{f}");
    }
    let list = s.get("/scim/v2/Groups?startIndex=2&count=5").await.json();
    assert_eq!(list["totalResults"], 2);
    assert_eq!(list["Resources"][0]["displayName"], "Sales");
}

#[tokio::test]
async fn excluded_members_and_attribute_lists() {
    let s = Server::start().await;
    let a = user(&s, "a").await;
    let g = s
        .create_group(&json!({"displayName": "G", "members": [{"value": a}]}))
        .await;
    let id = id_of(&g);
    let v = s
        .get(&format!("/scim/v2/Groups/{id}?excludedAttributes=members"))
        .await
        .json();
    assert!(v.get("members").is_none());
    assert_eq!(v["displayName"], "G");
    let list = s
        .get("/scim/v2/Groups?excludedAttributes=members&filter=displayName+eq+%22G%22")
        .await
        .json();
    assert!(list["Resources"][0].get("members").is_none());
    let v = s
        .get(&format!("/scim/v2/Users/{a}?attributes=userName"))
        .await
        .json();
    assert_eq!(v, json!({"schemas": [USER_URN], "id": a, "userName": "a"}));
}
