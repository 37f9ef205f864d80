//! userName and group displayName: unique under Unicode folding (NFKC, full case folding,
//! trimmed), free of invisible and reordering characters, stored as sent; and a database from
//! before that rule keeps every name and has `scimd check` report the collisions.

use serde_json::{Value, json};

use crate::common::*;

/// Pairs of names that are one identifier: the second must collide with the first.
const SAME: &[(&str, &str)] = &[
    ("straße", "STRASSE"),
    ("ΣΑΣ", "σασ"),
    ("ΟΔΟΣ", "οδος"),
    ("ﬁle", "file"),
    ("Jos\u{e9}", "Jose\u{301}"),
    ("bob", " bob"),
    ("carol ", "CAROL"),
    ("dave", "\u{a0}dave\u{3000}"),
    ("ＡＢＣ", "abc"),
    ("Ǆemal", "ǆemal"),
];

/// Names refused outright: invisible or reordering characters that made look-alike users.
const FORBIDDEN: &[&str] = &[
    "nul\u{0}",
    "line\nbreak",
    "crlf\r\n",
    "tab\tbed",
    "zw\u{200b}sp",
    "zw\u{200c}nj",
    "zw\u{200d}j",
    "lrm\u{200e}",
    "rlm\u{200f}",
    "\u{202e}rlo",
    "pdf\u{202c}",
    "\u{2066}lri\u{2069}",
    "\u{feff}bom",
    "soft\u{ad}hyphen",
    "line\u{2028}sep",
    "para\u{2029}sep",
    "del\u{7f}",
];

fn user(name: &str) -> Value {
    json!({"schemas": [USER_URN], "userName": name})
}

fn group(name: &str) -> Value {
    json!({"schemas": [GROUP_URN], "displayName": name})
}

#[tokio::test]
async fn user_names_equal_under_unicode_folding_collide() {
    let s = Server::start().await;
    for (first, second) in SAME {
        let created = s.create_user(&user(first)).await;
        assert_eq!(created["userName"], *first, "stored and returned as sent");
        let r = s.post("/scim/v2/Users", &user(second)).await;
        let body = r.assert_error(409, Some("uniqueness"));
        assert!(body["detail"].as_str().unwrap().contains(second), "{body}");
        // The filter an IdP sends before creating finds the user that blocks it.
        let found = s
            .filter("Users", &format!("userName eq {}", json!(second)))
            .await;
        assert_eq!(ids(&found), [id_of(&created)], "{first:?} / {second:?}");
    }
    let all = s.get("/scim/v2/Users").await.json();
    assert_eq!(all["totalResults"], SAME.len());
}

#[tokio::test]
async fn group_names_equal_under_unicode_folding_collide() {
    let s = Server::start().await;
    for (first, second) in SAME {
        let created = s.create_group(&group(first)).await;
        assert_eq!(created["displayName"], *first);
        s.post("/scim/v2/Groups", &group(second))
            .await
            .assert_error(409, Some("uniqueness"));
        let found = s
            .filter("Groups", &format!("displayName eq {}", json!(second)))
            .await;
        assert_eq!(ids(&found), [id_of(&created)], "{first:?} / {second:?}");
    }
    let all = s.get("/scim/v2/Groups").await.json();
    assert_eq!(all["totalResults"], SAME.len());
}

#[tokio::test]
async fn identifiers_with_invisible_or_reordering_characters_are_refused() {
    let s = Server::start().await;
    for name in FORBIDDEN {
        let body = s
            .post("/scim/v2/Users", &user(name))
            .await
            .assert_error(400, Some("invalidValue"));
        assert!(body["detail"].as_str().unwrap().contains("U+"), "{body}");
        s.post("/scim/v2/Groups", &group(name))
            .await
            .assert_error(400, Some("invalidValue"));
    }
    for blank in [" ", "\u{a0}\u{3000}"] {
        s.post("/scim/v2/Users", &user(blank))
            .await
            .assert_error(400, Some("invalidValue"));
        s.post("/scim/v2/Groups", &group(blank))
            .await
            .assert_error(400, Some("invalidValue"));
    }
    assert_eq!(s.get("/scim/v2/Users").await.json()["totalResults"], 0);
    assert_eq!(s.get("/scim/v2/Groups").await.json()["totalResults"], 0);
    // Other attributes keep any text.
    let u = s
        .create_user(&json!({"userName": "ok", "displayName": "a\u{200d}b", "title": "x\ny"}))
        .await;
    assert_eq!(u["displayName"], "a\u{200d}b");
}

/// Invisible characters outside the control and format categories (variation selectors,
/// the combining grapheme joiner, Hangul fillers, …), private-use and unassigned code points:
/// each made a second `bob` that looked like the first.
#[tokio::test]
async fn look_alikes_by_default_ignorable_private_use_or_unassigned_characters_are_refused() {
    let s = Server::start().await;
    let bob = s.create_user(&user("bob")).await;
    s.create_group(&group("bob")).await;
    for c in [
        "\u{fe0f}",
        "\u{e0100}",
        "\u{34f}",
        "\u{3164}",
        "\u{115f}",
        "\u{ffa0}",
        "\u{180b}",
        "\u{17b4}",
        "\u{50000}",
        "\u{e000}",
    ] {
        for name in [format!("bob{c}"), format!("{c}bob"), format!("b{c}ob")] {
            let body = s
                .post("/scim/v2/Users", &user(&name))
                .await
                .assert_error(400, Some("invalidValue"));
            assert!(body["detail"].as_str().unwrap().contains("U+"), "{body}");
            s.post("/scim/v2/Groups", &group(&name))
                .await
                .assert_error(400, Some("invalidValue"));
        }
    }
    s.patch(
        &format!("/scim/v2/Users/{}", id_of(&bob)),
        &json!([{"op": "replace", "path": "userName", "value": "bob\u{fe0f}"}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    assert_eq!(s.get("/scim/v2/Users").await.json()["totalResults"], 1);
    assert_eq!(s.get("/scim/v2/Groups").await.json()["totalResults"], 1);
    // Visible text from the same scripts is fine.
    for name in ["❤", "한국어", "ᠮᠣᠩᠭᠣᠯ", "ខ្មែរ"] {
        s.create_user(&user(name)).await;
    }
}

#[tokio::test]
async fn renames_by_put_and_patch_are_checked_with_the_key() {
    let s = Server::start().await;
    s.create_user(&user("straße")).await;
    let bob = s.create_user(&user("bob")).await;
    let path = format!("/scim/v2/Users/{}", id_of(&bob));
    s.put(&path, &user("STRASSE"))
        .await
        .assert_error(409, Some("uniqueness"));
    s.patch(
        &path,
        &json!([{"op": "replace", "path": "userName", "value": " Strasse "}]),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    s.patch(
        &path,
        &json!([{"op": "replace", "value": {"userName": "bob\u{200b}"}}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    // A user may take another spelling of its own name; it is kept as sent.
    let r = s.put(&path, &user(" BOB ")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["userName"], " BOB ");
    assert_eq!(s.get(&path).await.json()["userName"], " BOB ");

    let ops = s.create_group(&group("Opérations")).await;
    let eng = s.create_group(&group("Eng")).await;
    let eng_path = format!("/scim/v2/Groups/{}", id_of(&eng));
    s.put(&eng_path, &group("OPE\u{301}RATIONS"))
        .await
        .assert_error(409, Some("uniqueness"));
    s.patch(
        &eng_path,
        &json!([{"op": "replace", "path": "displayName", "value": "opérations "}]),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    s.patch(
        &eng_path,
        &json!([{"op": "replace", "path": "displayName", "value": "Eng\u{202e}"}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let r = s
        .patch(
            &format!("/scim/v2/Groups/{}", id_of(&ops)),
            &json!([{"op": "replace", "path": "displayName", "value": "OPÉRATIONS"}]),
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    let found = s.filter("Groups", "displayName eq \"operations\"").await;
    assert_eq!(found["totalResults"], 0, "é is not e");
    let found = s.filter("Groups", "displayName eq \"opérations\"").await;
    assert_eq!(found["Resources"][0]["displayName"], "OPÉRATIONS");
}

/// Builds a database as scimd wrote it before the Unicode key (schema version 2, whose key was
/// a plain lowercase), holding names that were distinct then and collide now.
fn old_database(db: &std::path::Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(include_str!("../../schema.sql"))
        .unwrap();
    conn.execute_batch(include_str!("../../src/store/migrations/002_console.sql"))
        .unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    let now = "2026-01-01T00:00:00.000Z";
    for (id, name) in [
        ("u-1", "straße"),
        ("u-2", "STRASSE"),
        ("u-3", "ana"),
        ("u-4", "legacy\u{200b}"),
        ("u-5", "legacy\u{fe0f}"),
    ] {
        conn.execute(
            "INSERT INTO users (id, user_name, user_name_fold, active, version, created,
                                last_modified, data)
             VALUES (?1, ?2, ?3, 1, 1, ?4, ?4, ?5)",
            rusqlite::params![
                id,
                name,
                name.to_lowercase(),
                now,
                json!({"userName": name}).to_string()
            ],
        )
        .unwrap();
    }
    for (id, name) in [("g-1", "ΣΑΣ"), ("g-2", "σασ")] {
        conn.execute(
            "INSERT INTO groups (id, display_name, display_name_fold, version, created,
                                 last_modified, data)
             VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5)",
            rusqlite::params![
                id,
                name,
                name.to_lowercase(),
                now,
                json!({"displayName": name}).to_string()
            ],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO group_members (group_seq, member_user_seq) VALUES (1, 2)",
        [],
    )
    .unwrap();
}

#[tokio::test]
async fn an_old_database_keeps_names_that_now_collide_and_check_reports_them() {
    let dir = tempfile::TempDir::new().unwrap();
    old_database(&dir.path().join("scimd.db"));
    let s = Server::start_in(dir, |c| c).await;
    // Both kept, unchanged, with their memberships; a lookup finds both rather than
    // silently picking one.
    for (id, name) in [("u-1", "straße"), ("u-2", "STRASSE")] {
        let r = s.get(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["userName"], name);
    }
    let found = s.filter("Users", "userName eq \"Strasse\"").await;
    assert_eq!(ids(&found), ["u-1", "u-2"]);
    let g = s.get("/scim/v2/Groups/g-1").await.json();
    assert_eq!(g["members"][0]["value"], "u-2");
    // Either may still be updated under its own name, but no write adds a collision.
    let r = s
        .put(
            "/scim/v2/Users/u-2",
            &json!({"userName": "STRASSE", "title": "x"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    s.post("/scim/v2/Users", &user("Straße"))
        .await
        .assert_error(409, Some("uniqueness"));
    s.put("/scim/v2/Users/u-3", &user("strasse"))
        .await
        .assert_error(409, Some("uniqueness"));
    // A name stored before characters were refused can be kept (the user deactivated, say),
    // not taken anew.
    let r = s
        .patch(
            "/scim/v2/Users/u-4",
            &json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["userName"], "legacy\u{200b}");
    s.patch(
        "/scim/v2/Users/u-4",
        &json!([{"op": "replace", "path": "userName", "value": "legacy\u{200b}2"}]),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    let r = s
        .put(
            "/scim/v2/Users/u-5",
            &json!({"userName": "legacy\u{fe0f}", "active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    s.put("/scim/v2/Users/u-5", &user("legacy\u{fe0e}"))
        .await
        .assert_error(400, Some("invalidValue"));

    let db = s.db();
    let dir = s.stop().await;
    let out = scimd(&["check", "--db", db.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    for part in [
        "\"straße\" (id u-1)",
        "\"STRASSE\" (id u-2)",
        "\"ΣΑΣ\" (id g-1)",
        "\"σασ\" (id g-2)",
    ] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
    assert!(
        !text.contains("\"ana\"") && !text.contains("legacy"),
        "{text}"
    );
    assert_eq!(text.matches("problem:").count(), 2, "{text}");

    // Renaming one of them resolves it.
    let s = Server::start_in(dir, |c| c).await;
    let r = s.put("/scim/v2/Users/u-1", &user("strasse-1")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let _dir = s.stop().await;
    let text = stdout(&scimd(&["check", "--db", db.to_str().unwrap()]));
    assert!(!text.contains("STRASSE"), "{text}");
    assert_eq!(text.matches("problem:").count(), 1, "{text}");
}

/// A stored key that is not what this scimd computes for the value (written by an older
/// scimd, or before a Unicode data update) breaks uniqueness and `eq` lookups for that row:
/// `check` names the rows, and `check --repair-keys` (scimd stopped) recomputes the keys.
#[tokio::test]
async fn check_reports_stale_keys_and_repair_keys_recomputes_them() {
    let s = Server::start().await;
    let strasse = id_of(&s.create_user(&user("Straße")).await);
    let bob = id_of(&s.create_user(&user("bob")).await);
    let omega = id_of(&s.create_group(&group("ΩΜΈΓΑ")).await);
    let fiona = id_of(
        &s.create_user(&json!({"userName": "fiona",
                               "emails": [{"value": "ﬁona@Example.com", "type": "Work"}]}))
            .await,
    );
    let db = s.db();
    let db_arg = db.to_str().unwrap();
    let refused = scimd(&["check", "--repair-keys", "--db", db_arg]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("stop scimd"), "{err}");
    let dir = s.stop().await;

    // As an older scimd (plain lowercase) or older Unicode data would have left them.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE users SET user_name_fold = 'straße' WHERE id = ?1",
        [&strasse],
    )
    .unwrap();
    conn.execute(
        "UPDATE groups SET display_name_fold = 'ωμέγα ' WHERE id = ?1",
        [&omega],
    )
    .unwrap();
    conn.execute(
        "UPDATE user_emails SET value_fold = 'ﬁona@example.com'
         WHERE user_seq = (SELECT seq FROM users WHERE id = ?1)",
        [&fiona],
    )
    .unwrap();
    drop(conn);
    let out = scimd(&["check", "--db", db_arg]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert_eq!(text.matches("problem:").count(), 3, "{text}");
    for part in [
        strasse.as_str(),
        omega.as_str(),
        fiona.as_str(),
        "--repair-keys",
    ] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
    assert!(!text.contains(&bob), "{text}");

    let out = scimd(&["check", "--repair-keys", "--db", db_arg]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for part in ["1 userName", "1 displayName", "1 users"] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
    assert!(text.ends_with("ok\n"), "{text}");

    // The repaired keys hold again.
    let s = Server::start_in(dir, |c| c).await;
    s.post("/scim/v2/Users", &user("STRASSE"))
        .await
        .assert_error(409, Some("uniqueness"));
    let found = s.filter("Groups", "displayName eq \"ωμέγα\"").await;
    assert_eq!(ids(&found), [omega]);
    let found = s
        .filter("Users", "emails[value eq \"FIONA@example.com\"]")
        .await;
    assert_eq!(ids(&found), [fiona]);
}

/// Names that share a key and stale keys are findings about the data, not damage: `backup` and
/// `restore` still take such a database, and `check` still reports them in the copy.
#[tokio::test]
async fn a_database_with_colliding_names_or_stale_keys_is_backed_up_and_restored() {
    let dir = tempfile::TempDir::new().unwrap();
    old_database(&dir.path().join("scimd.db"));
    let s = Server::start_in(dir, |c| c).await;
    let db = s.db();
    let dir = s.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE users SET user_name_fold = 'ANA' WHERE id = 'u-3'",
        [],
    )
    .unwrap();
    drop(conn);
    let copy = dir.path().join("copy.db");
    let (db_arg, copy_arg) = (db.to_str().unwrap(), copy.to_str().unwrap());
    let out = scimd(&["backup", copy_arg, "--db", db_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = scimd(&["restore", copy_arg, "--db", db_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&scimd(&["check", "--db", db_arg]));
    for part in ["\"straße\" (id u-1)", "\"ΣΑΣ\" (id g-1)", "(ids u-3)"] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
}
