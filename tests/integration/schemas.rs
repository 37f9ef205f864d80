//! Declared extension schemas: `scimd schema add|list|remove` and the console's Schemas API.

use serde_json::{Value, json};

use crate::common::{cli_token, http_once, new_db, scimd, stdout, wait_for};

pub(crate) const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

fn acme_doc() -> Value {
    json!({"id": ACME, "name": "Acme", "attributes": [
        {"name": "badgeNumber", "uniqueness": "server"},
        {"name": "sshKeys", "type": "complex", "multiValued": true,
         "subAttributes": [{"name": "value", "caseExact": true}]}
    ]})
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn schema_cli_declares_lists_changes_and_removes() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    new_db(db);
    // A store open on the file stands for a running server: it notices each change once.
    let server = scimd::store::Store::open_existing(std::path::Path::new(db)).unwrap();
    assert!(server.declared().unwrap().is_empty());
    let file = dir.path().join("acme.json");
    std::fs::write(&file, acme_doc().to_string()).unwrap();
    let file = file.to_str().unwrap();

    let out = scimd(&["schema", "add", file, "--db", db]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains(&format!("Declared {ACME} for User (2 attributes)")));
    assert!(server.refresh_registry().unwrap(), "noticed");
    assert!(server.registry().find(ACME).is_some());
    assert!(!server.refresh_registry().unwrap(), "noticed once");

    let list = stdout(&scimd(&["schema", "list", "--db", db]));
    assert!(list.contains(&format!("{ACME} (User)")), "{list}");
    assert!(list.contains("  badgeNumber string\n"), "{list}");
    assert!(list.contains("  sshKeys complex[]\n"), "{list}");

    let out = scimd(&[
        "schema",
        "add",
        file,
        "--resource-type",
        "Group",
        "--required",
        "--db",
        db,
    ]);
    assert!(stdout(&out).contains("Changed"), "{out:?}");
    let list = stdout(&scimd(&["schema", "list", "--db", db]));
    assert!(
        list.contains(&format!("{ACME} (Group, required)")),
        "{list}"
    );
    assert!(server.refresh_registry().unwrap());

    let out = scimd(&["schema", "remove", &ACME.to_uppercase(), "--db", db]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("are kept"));
    assert!(server.refresh_registry().unwrap());
    assert!(server.registry().find(ACME).is_none());
    let out = scimd(&["schema", "remove", ACME, "--db", db]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no declared schema"), "{out:?}");
    let list = stdout(&scimd(&["schema", "list", "--db", db]));
    assert!(list.contains("No declared schemas"), "{list}");

    // Each change is on the audit log, by the command line.
    let entries = server
        .read_sync(|conn| {
            scimd::store::audit::list(
                conn,
                &scimd::store::audit::Query {
                    limit: 10,
                    ..Default::default()
                },
            )
        })
        .unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("schema.remove", "cli"),
            ("schema.change", "cli"),
            ("schema.declare", "cli")
        ]
    );
}

#[test]
fn schema_cli_refuses_bad_input_clearly_and_creates_no_database() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let file = dir.path().join("bad.json");
    let file_s = file.to_str().unwrap();
    std::fs::write(&file, acme_doc().to_string()).unwrap();
    let out = scimd(&["schema", "add", file_s, "--db", db]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no database at"), "{out:?}");
    assert!(!dir.path().join("s.db").exists());
    new_db(db);
    for (doc, part) in [
        (
            json!({"id": ACME, "attributes": [{"name": "badge", "type": "number"}]}),
            "attribute \"badge\": \"type\" is one of",
        ),
        (
            json!({"id": "urn:ietf:params:scim:schemas:core:2.0:User",
                   "attributes": [{"name": "a"}]}),
            "built into scimd",
        ),
        (json!({"id": ACME, "attributes": []}), "non-empty array"),
    ] {
        std::fs::write(&file, doc.to_string()).unwrap();
        let out = scimd(&["schema", "add", file_s, "--db", db]);
        assert!(!out.status.success(), "{doc}");
        assert!(stderr(&out).contains(part), "{doc}: {out:?}");
    }
    std::fs::write(&file, "{not json").unwrap();
    let out = scimd(&["schema", "add", file_s, "--db", db]);
    assert!(stderr(&out).contains("not JSON"), "{out:?}");
    std::fs::write(&file, " ".repeat(64 * 1024 + 1)).unwrap();
    let out = scimd(&["schema", "add", file_s, "--db", db]);
    assert!(stderr(&out).contains("larger than 65536 bytes"), "{out:?}");
    std::fs::write(&file, acme_doc().to_string()).unwrap();
    let out = scimd(&[
        "schema",
        "add",
        file_s,
        "--resource-type",
        "Device",
        "--db",
        db,
    ]);
    assert!(stderr(&out).contains("User or Group"), "{out:?}");
    let list = stdout(&scimd(&["schema", "list", "--db", db]));
    assert!(list.contains("No declared schemas"), "{list}");
}

/// Users holding extension data as another scimd (or a later version of this one) stores it:
/// written straight into the file, as the SCIM path does not keep undeclared data yet here.
pub(crate) fn users_with_extension_data(db: &std::path::Path) {
    let store = scimd::store::Store::open_existing(db).unwrap();
    store
        .write_sync(|tx| {
            for (i, block) in [
                json!({"badge": "42", "hired": "2024-01-02T03:04:05Z", "level": 3}),
                json!({"badge": "x7", "level": 4, "keys": ["a", "b"]}),
            ]
            .into_iter()
            .enumerate()
            {
                let data = json!({"userName": format!("u{i}"), ACME: block});
                tx.execute(
                    "INSERT INTO users (id, user_name, user_name_fold, active, version, created,
                                        last_modified, data)
                     VALUES (?1, ?1, ?1, 1, 1, 't', 't', ?2)",
                    rusqlite::params![format!("u{i}"), data.to_string()],
                )?;
            }
            Ok(())
        })
        .unwrap();
}

/// Adds `value` under `urn` to the stored document of the user or group `id` (`table` is
/// `users` or `groups`), straight in the file, as `users_with_extension_data` does.
pub(crate) fn add_extension(db: &std::path::Path, table: &str, id: &str, urn: &str, value: Value) {
    let store = scimd::store::Store::open_existing(db).unwrap();
    store
        .write_sync(|tx| {
            let n = tx.execute(
                &format!("UPDATE {table} SET data = json_set(data, ?1, json(?2)) WHERE id = ?3"),
                rusqlite::params![format!("$.\"{urn}\""), value.to_string(), id],
            )?;
            assert_eq!(n, 1, "no {table} row {id}");
            Ok(())
        })
        .unwrap();
}

/// The console's user and group pages get, beside the resource, the definitions of the
/// extensions it carries: the built-in Enterprise User, a declaration for the resource type,
/// or null for an extension nothing declares, in the document's order.
#[tokio::test]
async fn console_user_and_group_pages_carry_their_extensions_definitions() {
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const OTHER: &str = "urn:ietf:params:scim:schemas:extension:other:2.0:User";
    const TEAM: &str = "urn:ietf:params:scim:schemas:extension:team:2.0:Group";
    let s = crate::common::Server::start().await;
    let c = crate::console::set_up(&s).await;
    let team = json!({"id": TEAM, "name": "Team", "attributes": [{"name": "costCenter"}]});
    for definition in [acme_doc(), team] {
        let r = c
            .call(
                "POST",
                "/admin/api/schemas",
                Some(&json!({"definition": definition})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let user = s
        .create_user(&json!({"userName": "ana", ENTERPRISE: {"department": "R&D"}}))
        .await;
    let uid = user["id"].as_str().unwrap();
    let plain = s.create_user(&json!({"userName": "bo"})).await;
    let group = s.create_group(&json!({"displayName": "eng"})).await;
    let gid = group["id"].as_str().unwrap();
    let db = s.db();
    add_extension(
        &db,
        "users",
        uid,
        ACME,
        json!({"badgeNumber": "42", "shell": "zsh"}),
    );
    add_extension(&db, "users", uid, OTHER, json!({"uid": 1001}));
    // Declared for groups: on a user it is undeclared.
    add_extension(&db, "users", uid, TEAM, json!({"costCenter": "CC-1"}));
    add_extension(&db, "groups", gid, TEAM, json!({"costCenter": "CC-2"}));

    let page = c.get(&format!("/admin/api/users/{uid}")).await;
    assert_eq!(page["user"][ACME]["shell"], "zsh", "{page}");
    let ext = page["extensions"].as_array().unwrap();
    let urns: Vec<&str> = ext.iter().map(|e| e["urn"].as_str().unwrap()).collect();
    assert_eq!(urns, [ENTERPRISE, ACME, OTHER, TEAM]);
    assert_eq!(ext[0]["builtIn"], true);
    assert_eq!(ext[0]["definition"]["name"], "EnterpriseUser");
    let manager = &ext[0]["definition"]["attributes"][5];
    assert_eq!(
        (&manager["name"], &manager["type"]),
        (&json!("manager"), &json!("complex"))
    );
    assert_eq!(ext[1]["builtIn"], false);
    assert_eq!(ext[1]["definition"]["name"], "Acme");
    let ssh = &ext[1]["definition"]["attributes"][1];
    assert_eq!(
        (&ssh["type"], &ssh["multiValued"]),
        (&json!("complex"), &json!(true))
    );
    assert_eq!(ssh["subAttributes"][0]["name"], "value");
    assert_eq!(
        (&ext[2]["definition"], &ext[3]["definition"]),
        (&Value::Null, &Value::Null)
    );

    let page = c.get(&format!("/admin/api/groups/{gid}")).await;
    assert_eq!(page["group"][TEAM]["costCenter"], "CC-2", "{page}");
    assert_eq!(page["extensions"][0]["urn"], TEAM);
    assert_eq!(
        page["extensions"][0]["definition"]["attributes"][0]["name"],
        "costCenter"
    );
    assert_eq!(page["extensions"].as_array().unwrap().len(), 1);

    let page = c
        .get(&format!(
            "/admin/api/users/{}",
            plain["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page["extensions"], json!([]));
    // Undeclared, the values stay and are shown as sent.
    let path = format!("/admin/api/schemas?urn={ACME}");
    assert_eq!(c.call("DELETE", &path, None).await.status, 200);
    let page = c.get(&format!("/admin/api/users/{uid}")).await;
    assert_eq!(
        page["extensions"][1],
        json!({"urn": ACME, "definition": null, "builtIn": false})
    );
}

#[tokio::test]
async fn console_declares_lists_and_removes_schemas() {
    let s = crate::common::Server::start().await;
    // Console credentials, CSRF token included, as for every console endpoint.
    assert_eq!(
        s.raw("GET", "/admin/api/schemas", &[], None).await.status,
        401
    );
    let c = crate::console::set_up(&s).await;
    let no_csrf = s
        .raw(
            "POST",
            "/admin/api/schemas",
            &[("cookie", &c.cookie), ("content-type", "application/json")],
            Some(&json!({"definition": acme_doc()}).to_string()),
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    assert_eq!(c.get("/admin/api/schemas").await, json!({"schemas": []}));

    let r = c
        .call(
            "POST",
            "/admin/api/schemas",
            Some(&json!({"definition": acme_doc()})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(
        (v["resourceType"].as_str(), v["replaced"].as_bool()),
        (Some("User"), Some(false))
    );
    assert_eq!(v["schema"]["attributes"][0]["uniqueness"], "server");
    assert_eq!(
        v["schema"]["attributes"][1]["subAttributes"][0]["caseExact"],
        true
    );
    // In force at once for SCIM: advertised, typed, filterable.
    assert_eq!(s.get(&format!("/scim/v2/Schemas/{ACME}")).await.status, 200);
    let extensions = s.get("/scim/v2/ResourceTypes/User").await.json()["schemaExtensions"].clone();
    assert!(
        extensions
            .as_array()
            .unwrap()
            .contains(&json!({"schema": ACME, "required": false})),
        "{extensions}"
    );
    let r = s
        .post(
            "/scim/v2/Users",
            &json!({"userName": "bad", ACME: {"badgeNumber": {"x": 1}}}),
        )
        .await;
    let detail = r.assert_error(400, Some("invalidValue"))["detail"].to_string();
    assert!(detail.contains("badgeNumber"), "{detail}");
    let u = s
        .create_user(&json!({"userName": "ana", ACME: {"badgeNumber": "42"}}))
        .await;
    assert_eq!(u["schemas"][1], ACME);
    let found = s
        .get(&format!(
            "/scim/v2/Users?{}",
            crate::common::filter_query(&format!("{ACME}:badgeNumber eq \"42\""))
        ))
        .await
        .json();
    assert_eq!(found["totalResults"], 1, "{found}");

    // Pasted text works too, and changes the declaration.
    let body = json!({"definition": acme_doc().to_string(), "resourceType": "Group",
                      "required": true});
    let r = c.call("POST", "/admin/api/schemas", Some(&body)).await;
    assert_eq!(r.json()["replaced"], true);
    let list = c.get("/admin/api/schemas").await;
    assert_eq!(list["schemas"][0]["urn"], ACME);
    assert_eq!(list["schemas"][0]["resourceType"], "Group");
    assert_eq!(list["schemas"][0]["required"], true);
    assert_eq!(
        list["schemas"][0]["definition"]["attributes"][0]["name"],
        "badgeNumber"
    );

    for (body, part) in [
        (
            json!({"definition": {"id": ACME, "attributes": [{"name": "n", "type": "int"}]}}),
            "attribute \"n\"",
        ),
        (
            json!({"definition": acme_doc(), "resourceType": "Device"}),
            "User or Group",
        ),
        (
            json!({"definition": acme_doc(), "required": "yes"}),
            "true or false",
        ),
        (json!({"definition": 5}), "\"definition\""),
    ] {
        let r = c.call("POST", "/admin/api/schemas", Some(&body)).await;
        let e = r.assert_error(400, Some("invalidValue"));
        assert!(e["detail"].as_str().unwrap().contains(part), "{body}: {e}");
    }
    let r = c
        .call(
            "POST",
            "/admin/api/schemas",
            Some(&json!({"definition": "{"})),
        )
        .await;
    r.assert_error(400, Some("invalidSyntax"));

    let path = format!("/admin/api/schemas?urn={}", ACME.to_uppercase());
    assert_eq!(c.call("DELETE", &path, None).await.status, 200);
    assert_eq!(c.call("DELETE", &path, None).await.status, 404);
    assert_eq!(c.get("/admin/api/schemas").await, json!({"schemas": []}));
    let log = c.get("/admin/api/audit?action=schema.declare").await;
    assert_eq!(log["entries"][0]["actor"], "root");
    assert_eq!(log["entries"][0]["resourceName"], ACME);
}

#[tokio::test]
async fn console_lists_undeclared_extensions_and_drafts_a_declaration() {
    let s = crate::common::Server::start().await;
    let c = crate::console::set_up(&s).await;
    users_with_extension_data(&s.db());
    let seen = c.get("/admin/api/schemas/seen?resourceType=User").await;
    assert_eq!(seen["seen"][0]["urn"], ACME, "{seen}");
    assert_eq!(seen["seen"][0]["resources"], 2);
    let badge = &seen["seen"][0]["attributes"][0];
    assert_eq!(badge["name"], "badge");
    // Newest first.
    assert_eq!(badge["samples"], json!(["x7", "42"]));
    let groups = c.get("/admin/api/schemas/seen?resourceType=Group").await;
    assert_eq!(groups["seen"], json!([]));

    let draft = c
        .get(&format!(
            "/admin/api/schemas/draft?resourceType=User&urn={ACME}"
        ))
        .await;
    let def = &draft["definition"];
    let types: Vec<(&str, &str, bool)> = def["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["type"].as_str().unwrap(),
                a["multiValued"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("badge", "string", false),
            ("hired", "dateTime", false),
            ("keys", "string", true),
            ("level", "integer", false)
        ]
    );
    let r = c
        .call("GET", "/admin/api/schemas/draft?urn=urn:nothing:here", None)
        .await;
    assert_eq!(r.status, 404);

    // Declared as drafted, it is no longer "seen"; the stored values are untouched.
    let r = c
        .call(
            "POST",
            "/admin/api/schemas",
            Some(&json!({"definition": def})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = c.get("/admin/api/schemas/seen").await;
    assert_eq!(seen["seen"], json!([]));
    let path = format!("/admin/api/schemas?urn={ACME}");
    assert_eq!(c.call("DELETE", &path, None).await.status, 200);
    let seen = c.get("/admin/api/schemas/seen").await;
    assert_eq!(seen["seen"][0]["resources"], 2);
}

/// The schema commands work beside `scimd serve` on the same file, as `scimd token` does.
#[test]
fn schema_cli_works_beside_a_running_server() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    let (child, addr, lines) = crate::common::spawn_server(db, &[]);
    let _server = crate::common::KillOnDrop(child);
    let log = crate::common::log_channel(lines);
    let token = cli_token(db, "idp");
    let schema_status = || {
        let head = format!("GET /scim/v2/Schemas/{ACME} HTTP/1.1\r\nAuthorization: Bearer {token}");
        let answer = http_once(&addr, &head, "", std::time::Duration::from_secs(5)).unwrap();
        answer
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(schema_status(), "404");
    let file = dir.path().join("acme.json");
    std::fs::write(&file, acme_doc().to_string()).unwrap();
    let out = scimd(&["schema", "add", file.to_str().unwrap(), "--db", db]);
    assert!(out.status.success(), "{out:?}");
    let list = stdout(&scimd(&["schema", "list", "--db", db]));
    assert!(list.contains(ACME), "{list}");
    // The server's periodic look puts it in force without a restart.
    wait_for(&log, "declared schemas changed");
    assert_eq!(schema_status(), "200");
    let out = scimd(&["schema", "remove", ACME, "--db", db]);
    assert!(out.status.success(), "{out:?}");
    wait_for(&log, "declared schemas changed");
    assert_eq!(schema_status(), "404");
}

#[test]
fn serve_refuses_to_start_on_a_declaration_it_cannot_read() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    new_db(db);
    // As a newer scimd, or a hand edit, might leave it.
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "INSERT INTO scim_schemas (urn, urn_fold, resource_type, required, definition, created,
                                   updated)
         VALUES ('urn:acme:2.0:User', 'urn:acme:2.0:user', 'User', 0,
         '{\"id\": \"urn:acme:2.0:User\", \"attributes\": [{\"name\": \"x\", \"type\": \"int\"}]}',
         'now', 'now')",
        [],
    )
    .unwrap();
    drop(conn);
    let (child, lines) = crate::common::spawn_scimd(db, &[]);
    let mut child = crate::common::KillOnDrop(child);
    let mut status = None;
    for _ in 0..200 {
        status = child.0.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        status.is_some_and(|s| !s.success()),
        "still serving: {status:?}"
    );
    let log: Vec<String> = lines.map_while(std::result::Result::ok).collect();
    assert!(
        log.iter().any(|l| l.contains("urn:acme:2.0:User")),
        "{log:?}"
    );
    // The command line can still take it away.
    let out = scimd(&["schema", "remove", "urn:acme:2.0:User", "--db", db]);
    assert!(out.status.success(), "{out:?}");
}
