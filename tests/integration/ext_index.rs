//! Indexes on declared extension attributes (issue 13, design brief §6–§8): `uniqueness`
//! server enforced case-folded through the side tables, `--index` backfilling existing
//! resources, filters reading the side table, and removal keeping documents.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::*;
use scimd::scim::resource::ResourceKind;
use scimd::service::audit::Actor;
use scimd::service::schemas;
use scimd::store::Store;

const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
const ACME_GROUP: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:Group";

fn acme_user() -> Value {
    json!({"id": ACME, "name": "Acme", "attributes": [
        {"name": "badgeNumber", "uniqueness": "server"},
        {"name": "costCode"},
        {"name": "sshKeys", "type": "complex", "multiValued": true,
         "subAttributes": [{"name": "value", "caseExact": true, "uniqueness": "server"}]}
    ]})
}

fn acme_group() -> Value {
    json!({"id": ACME_GROUP, "name": "AcmeGroup", "attributes": [
        {"name": "costCode", "uniqueness": "global"}
    ]})
}

/// A server whose database already holds the Acme declarations for users and groups.
async fn declared_server() -> Server {
    let dir = tempfile::TempDir::new().unwrap();
    {
        let store = Store::open(&dir.path().join("scimd.db")).unwrap();
        for doc in [acme_user(), acme_group()] {
            schemas::declare(&store, &doc, None, false, &Actor::cli()).unwrap();
        }
    }
    Server::start_in(dir, |c| c).await
}

fn user(name: &str, acme: Value) -> Value {
    json!({"schemas": [USER_URN, ACME], "userName": name, ACME: acme})
}

#[tokio::test]
async fn unique_extension_values_conflict_in_any_letter_case() {
    let s = declared_server().await;
    let ana = s
        .create_user(&user(
            "ana",
            json!({"badgeNumber": "AB-1", "sshKeys": [{"value": "K1"}]}),
        ))
        .await;
    // POST with the same badge in another letter case.
    let r = s
        .post(
            "/scim/v2/Users",
            &user("bob", json!({"badgeNumber": "ab-1"})),
        )
        .await;
    let body = r.assert_error(409, Some("uniqueness"));
    assert!(
        body["detail"].as_str().unwrap().contains("badgeNumber"),
        "{body}"
    );
    // The caseExact sub-attribute of a multi-valued complex compares exactly.
    let r = s
        .post(
            "/scim/v2/Users",
            &user(
                "bob",
                json!({"badgeNumber": "AB-2", "sshKeys": [{"value": "K1"}]}),
            ),
        )
        .await;
    let body = r.assert_error(409, Some("uniqueness"));
    assert!(
        body["detail"].as_str().unwrap().contains("sshKeys.value"),
        "{body}"
    );
    let bob = s
        .create_user(&user(
            "bob",
            json!({"badgeNumber": "AB-2", "sshKeys": [{"value": "k1"}, {"value": "k1"}]}),
        ))
        .await;
    let bob_id = id_of(&bob);
    // PUT and PATCH taking Ana's badge fail and change nothing.
    let r = s
        .put(
            &format!("/scim/v2/Users/{bob_id}"),
            &user("bob", json!({"badgeNumber": "aB-1"})),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    let r = s
        .patch(
            &format!("/scim/v2/Users/{bob_id}"),
            &json!([{"op": "replace", "path": format!("{ACME}:badgeNumber"), "value": "Ab-1"}]),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    let now = s.get(&format!("/scim/v2/Users/{bob_id}")).await.json();
    assert_eq!(now[ACME]["badgeNumber"], "AB-2");
    assert_eq!(now["meta"]["version"], bob["meta"]["version"]);
    // A user keeps its own value in another letter case; a deleted user frees its value.
    let r = s
        .put(
            &format!("/scim/v2/Users/{}", id_of(&ana)),
            &user("ana", json!({"badgeNumber": "ab-1"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        s.delete(&format!("/scim/v2/Users/{}", id_of(&ana)))
            .await
            .status,
        204
    );
    let r = s
        .patch(
            &format!("/scim/v2/Users/{bob_id}"),
            &json!([{"op": "replace", "path": format!("{ACME}:badgeNumber"), "value": "AB-1"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn unique_group_extension_values_conflict() {
    let s = declared_server().await;
    let group = |name: &str, code: &str| {
        json!({"schemas": [GROUP_URN, ACME_GROUP], "displayName": name,
               ACME_GROUP: {"costCode": code}})
    };
    s.create_group(&group("one", "CC-1")).await;
    let r = s.post("/scim/v2/Groups", &group("two", "cc-1")).await;
    let body = r.assert_error(409, Some("uniqueness"));
    assert!(
        body["detail"].as_str().unwrap().contains("costCode"),
        "{body}"
    );
    let two = s.create_group(&group("two", "CC-2")).await;
    let path = format!("/scim/v2/Groups/{}", id_of(&two));
    s.put(&path, &group("two", "Cc-1"))
        .await
        .assert_error(409, Some("uniqueness"));
    s.patch(
        &path,
        &json!([{"op": "replace", "path": format!("{ACME_GROUP}:costCode"), "value": "cC-1"}]),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    let now = s.get(&path).await.json();
    assert_eq!(now[ACME_GROUP]["costCode"], "CC-2");
}

/// How many side rows the database at `db` holds for users.
fn side_rows(db: &Path) -> i64 {
    let store = Store::open_existing(db).unwrap();
    store
        .read_sync(|c| Ok(c.query_row("SELECT count(*) FROM user_ext_values", [], |r| r.get(0))?))
        .unwrap()
}

#[tokio::test]
async fn declaring_uniqueness_over_shared_values_is_refused_naming_them() {
    let s = Server::start().await;
    let mut ids = Vec::new();
    for (name, badge) in [
        ("a", "42"),
        ("b", "x-7"),
        ("c", "X-7"),
        ("d", "42"),
        ("e", "1"),
    ] {
        ids.push(id_of(
            &s.create_user(&user(name, json!({"badgeNumber": badge})))
                .await,
        ));
    }
    let store = Store::open_existing(&s.db()).unwrap();
    let e = schemas::declare(&store, &acme_user(), None, false, &Actor::cli())
        .unwrap_err()
        .to_string();
    assert!(e.contains("badgeNumber") && e.contains("\"42\""), "{e}");
    assert!(e.contains(&ids[0]) && e.contains(&ids[3]), "{e}");
    assert!(e.contains("x-7") && e.contains(&ids[2]), "{e}");
    assert!(!e.contains(&ids[4]), "{e}");
    // Nothing was declared, no side row written.
    assert!(schemas::list(&store).unwrap().is_empty());
    assert_eq!(side_rows(&s.db()), 0);
}

#[tokio::test]
async fn an_index_backfills_existing_users_serves_lookups_and_goes_with_its_declaration() {
    let s = Server::start().await;
    let mut ids = Vec::new();
    for (i, code) in ["R-1", "r-1", "R-2", "R-3"].iter().enumerate() {
        ids.push(id_of(
            &s.create_user(&user(&format!("u{i}"), json!({"costCode": code})))
                .await,
        ));
    }
    let db = s.db();
    let db_text = db.to_str().unwrap();
    // Only the costCode attribute: badgeNumber is unique, so it is indexed anyway.
    let file = s.db().with_file_name("acme.json");
    std::fs::write(&file, acme_user().to_string()).unwrap();
    let out = scimd(&[
        "schema",
        "add",
        file.to_str().unwrap(),
        "--index",
        "costCode",
        "--db",
        db_text,
    ]);
    assert!(out.status.success(), "{out:?}");
    let list = stdout(&scimd(&["schema", "list", "--db", db_text]));
    assert!(list.contains("  index costCode (ready)"), "{list}");
    assert!(
        list.contains("  index badgeNumber, unique (ready)"),
        "{list}"
    );
    assert_eq!(side_rows(&db), 4, "backfilled");
    // A write after the declaration keeps its rows.
    s.create_user(&user("u9", json!({"costCode": "R-9"}))).await;
    assert_eq!(side_rows(&db), 5);

    // The filter reads the side table and finds the right users; costCode is not unique, so
    // it may match many: not a lookup (which assumes at most one row), unlike badgeNumber.
    let store = Store::open_existing(&db).unwrap();
    store.refresh_registry().unwrap();
    let registry = store.registry();
    let is_lookup = |text: &str| {
        let filter = scimd::scim::filter::parse(text).unwrap();
        scimd::store::query::translate_list(&filter, ResourceKind::User, &registry)
            .unwrap()
            .1
    };
    assert!(is_lookup(&format!("{ACME}:badgeNumber eq \"B\"")));
    let filter = scimd::scim::filter::parse(&format!("{ACME}:costCode eq \"R-1\"")).unwrap();
    let (sql, lookup) =
        scimd::store::query::translate_list(&filter, ResourceKind::User, &registry).unwrap();
    assert!(!lookup, "a non-unique indexed eq is not a lookup");
    assert!(sql.sql.contains("user_ext_values"), "{}", sql.sql);
    let (found, plan) = store
        .read_sync(|c| {
            let query = format!("SELECT id FROM users WHERE {} ORDER BY seq", sql.sql);
            let params = rusqlite::params_from_iter(&sql.params);
            let found = c
                .prepare(&query)?
                .query_map(params, |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let plan = c
                .prepare(&format!("EXPLAIN QUERY PLAN {query}"))?
                .query_map(rusqlite::params_from_iter(&sql.params), |r| {
                    r.get::<_, String>(3)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((found, plan))
        })
        .unwrap();
    assert_eq!(
        found,
        ids[..2],
        "case-insensitive, as the JSON path compares"
    );
    let plan = plan.join("\n");
    assert!(
        plan.contains("user_ext_values USING") && plan.contains("INDEX user_ext_values_text"),
        "{plan}"
    );
    assert!(
        !plan.contains("SCAN users\n") && !plan.ends_with("SCAN users"),
        "{plan}"
    );
    // Through SCIM, the same answer.
    let list = s
        .filter("Users", &format!("{ACME}:costCode eq \"r-1\""))
        .await;
    assert_eq!(list["totalResults"], 2);

    // `scimd check` compares the side rows with the documents.
    let out = scimd(&["check", "--db", db_text]);
    assert!(!stdout(&out).contains("index of"), "{out:?}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE user_ext_values SET text = 'r-x' WHERE text = 'r-2'",
        [],
    )
    .unwrap();
    drop(conn);
    let out = scimd(&["check", "--db", db_text]);
    let report = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        report.contains(&format!("index of {ACME}:costCode")) && report.contains(&ids[2]),
        "{report}"
    );

    // Removing the declaration drops the side rows and keeps the documents.
    let out = scimd(&["schema", "remove", ACME, "--db", db_text]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(side_rows(&db), 0);
    let u = s.get(&format!("/scim/v2/Users/{}", ids[2])).await.json();
    assert_eq!(u[ACME]["costCode"], "R-2");
}

#[tokio::test]
async fn the_console_marks_attributes_as_indexed_and_shows_their_indexes() {
    let s = Server::start().await;
    let c = crate::console::set_up(&s).await;
    let body = json!({"definition": acme_user(), "indexed": ["COSTCODE"]});
    let r = c.call("POST", "/admin/api/schemas", Some(&body)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let list = c.get("/admin/api/schemas").await;
    let listed = &list["schemas"][0];
    assert_eq!(listed["indexed"], json!(["COSTCODE"]));
    let indexes: Vec<(String, bool, String)> = listed["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap().to_string(),
                i["unique"].as_bool().unwrap(),
                i["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        indexes,
        [
            ("badgeNumber".into(), true, "ready".into()),
            ("sshKeys.value".into(), true, "ready".into()),
            ("costCode".into(), false, "ready".into()),
        ]
    );
    // Declared again without a list, it keeps its own.
    let r = c
        .call(
            "POST",
            "/admin/api/schemas",
            Some(&json!({"definition": acme_user()})),
        )
        .await;
    assert_eq!(r.status, 200);
    let list = c.get("/admin/api/schemas").await;
    assert_eq!(list["schemas"][0]["indexes"].as_array().unwrap().len(), 3);
    for (indexed, part) in [
        (json!(["sshKeys"]), "sub-attributes"),
        (json!(["nope"]), "no such attribute"),
        (json!("costCode"), "list of attribute names"),
    ] {
        let body = json!({"definition": acme_user(), "indexed": indexed});
        let r = c.call("POST", "/admin/api/schemas", Some(&body)).await;
        let e = r.assert_error(400, Some("invalidValue"));
        assert!(e["detail"].as_str().unwrap().contains(part), "{e}");
    }
}

/// A non-unique indexed attribute is read from its index but is no lookup: a filter on it
/// returns every matching user, over pages of any size.
#[tokio::test]
async fn a_non_unique_indexed_attribute_finds_every_matching_user() {
    let dir = tempfile::TempDir::new().unwrap();
    {
        let store = Store::open(&dir.path().join("scimd.db")).unwrap();
        let listed = ["costCode".to_string()];
        schemas::declare_indexed(
            &store,
            &acme_user(),
            None,
            false,
            Some(&listed),
            &Actor::cli(),
        )
        .unwrap();
    }
    let s = Server::start_in(dir, |c| c).await;
    let mut want = Vec::new();
    for i in 0..25 {
        let code = if i % 5 == 4 { "other" } else { "Shared" };
        let u = s
            .create_user(&user(&format!("u{i}"), json!({"costCode": code})))
            .await;
        if code == "Shared" {
            want.push(id_of(&u));
        }
    }
    let filter = format!("{ACME}:costCode eq \"shared\"");
    let list = s.filter("Users", &filter).await;
    assert_eq!(list["totalResults"], 20);
    assert_eq!(ids(&list), want);
    // Small pages (at most the inline bound) and the pages after them.
    let mut got = Vec::new();
    for start in [1, 8, 15] {
        let r = s
            .get(&format!(
                "/scim/v2/Users?{}&startIndex={start}&count=7",
                filter_query(&filter)
            ))
            .await;
        assert_eq!(r.status, 200);
        let page = r.json();
        assert_eq!(page["totalResults"], 20);
        got.extend(ids(&page));
    }
    assert_eq!(got, want);
    // The store says so too: not a lookup.
    let store = Store::open_existing(&s.db()).unwrap();
    store.refresh_registry().unwrap();
    let parsed = scimd::scim::filter::parse(&filter).unwrap();
    let (_, lookup) =
        scimd::store::query::translate_list(&parsed, ResourceKind::User, &store.registry())
            .unwrap();
    assert!(!lookup);
}
