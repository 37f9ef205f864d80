//! Declared extension schemas: `scimd schema add|list|remove` and the console's Schemas API.

use serde_json::{Value, json};

use crate::common::{new_db, scimd, stdout};

const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

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
    let seen = server.declared_if_changed().unwrap().expect("noticed");
    assert_eq!(seen[0].schema.id, ACME);
    assert!(server.declared_if_changed().unwrap().is_none());

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
    assert!(server.declared_if_changed().unwrap().is_some());

    let out = scimd(&["schema", "remove", &ACME.to_uppercase(), "--db", db]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("are kept"));
    assert_eq!(server.declared_if_changed().unwrap(), Some(vec![]));
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
