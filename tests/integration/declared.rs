//! A declared extension schema through SCIM (issue 13): every attribute type and
//! characteristic (RFC 7643 §7), discovery, and removal of the declaration keeping the data.

use serde_json::{Value, json};

use crate::common::*;

const HR: &str = "urn:ietf:params:scim:schemas:extension:hr:2.0:User";

/// One attribute of each type, and one of each characteristic.
fn hr_doc() -> Value {
    json!({"id": HR, "name": "HR", "description": "HR data", "attributes": [
        {"name": "nick", "type": "string"},
        {"name": "vip", "type": "boolean"},
        {"name": "level", "type": "integer"},
        {"name": "ratio", "type": "decimal"},
        {"name": "hired", "type": "dateTime"},
        {"name": "homepage", "type": "reference", "referenceTypes": ["external"]},
        {"name": "photo", "type": "binary"},
        {"name": "desk", "type": "complex", "subAttributes": [
            {"name": "building", "type": "string"},
            {"name": "floor", "type": "integer"}
        ]},
        {"name": "tags", "type": "string", "multiValued": true},
        {"name": "serial", "mutability": "readOnly"},
        {"name": "employeeId", "mutability": "immutable"},
        {"name": "pin", "mutability": "writeOnly"},
        {"name": "secret", "returned": "never"},
        {"name": "note", "returned": "request"},
        {"name": "shirt", "canonicalValues": ["S", "M", "L"]}
    ]})
}

fn valid() -> Value {
    json!({
        "nick": "Jay", "vip": true, "level": 3, "ratio": 0.5,
        "hired": "2024-01-02T03:04:05Z", "homepage": "https://example.com/jay",
        "photo": "aGVsbG8=", "desk": {"building": "B1", "floor": 2}, "tags": ["a", "b"],
        "serial": "S-1", "employeeId": "E-1", "pin": "1234", "secret": "s3cret",
        "note": "n", "shirt": "XL"
    })
}

/// How many users `filter` finds.
async fn found(s: &Server, filter: &str) -> usize {
    ids(&s.filter("Users", filter).await).len()
}

fn user(name: &str, hr: Value) -> Value {
    json!({"schemas": [USER_URN, HR], "userName": name, HR: hr})
}

#[tokio::test]
async fn a_declared_schema_types_guards_and_publishes_its_attributes() {
    let s = Server::start().await;
    let c = crate::console::set_up(&s).await;
    let r = c
        .call(
            "POST",
            "/admin/api/schemas",
            Some(&json!({"definition": hr_doc()})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // Discovery: /Schemas carries every attribute with its characteristics, /ResourceTypes
    // lists the extension.
    let schema = s.get(&format!("/scim/v2/Schemas/{HR}")).await.json();
    let attr = |name: &str| {
        schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {schema}"))
    };
    for (name, kind) in [
        ("nick", "string"),
        ("vip", "boolean"),
        ("level", "integer"),
        ("ratio", "decimal"),
        ("hired", "dateTime"),
        ("homepage", "reference"),
        ("photo", "binary"),
        ("desk", "complex"),
    ] {
        assert_eq!(attr(name)["type"], kind, "{name}");
    }
    assert_eq!(attr("tags")["multiValued"], true);
    assert_eq!(attr("desk")["subAttributes"][1]["type"], "integer");
    assert_eq!(attr("homepage")["referenceTypes"], json!(["external"]));
    assert_eq!(attr("serial")["mutability"], "readOnly");
    assert_eq!(attr("employeeId")["mutability"], "immutable");
    assert_eq!(attr("pin")["mutability"], "writeOnly");
    assert_eq!(attr("secret")["returned"], "never");
    assert_eq!(attr("note")["returned"], "request");
    assert_eq!(attr("shirt")["canonicalValues"], json!(["S", "M", "L"]));
    let all = s.get("/scim/v2/Schemas").await.json();
    assert!(
        all["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == HR)
    );
    let rt = s.get("/scim/v2/ResourceTypes/User").await.json();
    assert!(
        rt["schemaExtensions"]
            .as_array()
            .unwrap()
            .contains(&json!({"schema": HR, "required": false})),
        "{rt}"
    );

    // A wrong type is 400 invalidValue naming the attribute, and stores nothing.
    for (name, bad) in [
        ("nick", json!(5)),
        ("vip", json!("perhaps")),
        ("level", json!("three")),
        ("level", json!(1.5)),
        ("ratio", json!("half")),
        ("hired", json!("yesterday")),
        ("homepage", json!(5)),
        ("photo", json!(5)),
        ("desk", json!("B1")),
        ("floor", json!({"floor": "two"})),
        ("tags", json!([1])),
    ] {
        let key = if name == "floor" { "desk" } else { name };
        let e = s
            .post("/scim/v2/Users", &user("bad", json!({ key: bad })))
            .await
            .assert_error(400, Some("invalidValue"));
        assert!(
            e["detail"].as_str().unwrap_or("").contains(name),
            "{name}: {e}"
        );
    }
    assert_eq!(s.filter("Users", "userName pr").await["totalResults"], 0);

    // Every type stored as declared; readOnly dropped; writeOnly never kept or returned;
    // returned "never" never returned, "request" only when named; canonicalValues are
    // advertised, not enforced ("XL" is kept).
    let created = s.create_user(&user("jay", valid())).await;
    let id = id_of(&created);
    let path = format!("/scim/v2/Users/{id}");
    let expected = json!({
        "nick": "Jay", "vip": true, "level": 3, "ratio": 0.5,
        "hired": "2024-01-02T03:04:05Z", "homepage": "https://example.com/jay",
        "photo": "aGVsbG8=", "desk": {"building": "B1", "floor": 2}, "tags": ["a", "b"],
        "employeeId": "E-1", "shirt": "XL"
    });
    assert_eq!(created[HR], expected);
    assert_eq!(s.get(&path).await.json()[HR], expected);
    let listed = s.filter("Users", "userName eq \"jay\"").await;
    assert_eq!(listed["Resources"][0][HR], expected);
    let named = s
        .get(&format!("{path}?attributes={HR}:note,{HR}:secret,{HR}:pin"))
        .await
        .json();
    assert_eq!(named[HR], json!({"note": "n"}));
    let whole = s.get(&format!("{path}?attributes={HR}")).await.json();
    assert_eq!(whole[HR], expected, "a block named whole still hides note");
    // A value never returned cannot be probed by a filter either.
    s.get(&format!(
        "/scim/v2/Users?filter={HR}:secret%20eq%20%22s3cret%22"
    ))
    .await
    .assert_error(400, Some("invalidFilter"));
    assert_eq!(found(&s, &format!("{HR}:level gt 2")).await, 1);
    assert_eq!(
        found(&s, &format!("{HR}:hired gt \"2024-01-01T00:00:00Z\"")).await,
        1
    );

    // immutable (RFC 7643 §7, RFC 7644 §3.5.1): settable once; the same value may be sent
    // again, a PUT without it keeps it, a different value or its removal is 400 mutability.
    let mut same = valid();
    same["nick"] = json!("Jay2");
    assert_eq!(s.put(&path, &user("jay", same)).await.status, 200);
    let mut without = valid();
    without.as_object_mut().unwrap().remove("employeeId");
    let r = s.put(&path, &user("jay", without)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[HR]["employeeId"], "E-1");
    let mut other = valid();
    other["employeeId"] = json!("E-2");
    s.put(&path, &user("jay", other))
        .await
        .assert_error(400, Some("mutability"));
    for op in [
        json!({"op": "replace", "path": format!("{HR}:employeeId"), "value": "E-2"}),
        json!({"op": "remove", "path": format!("{HR}:employeeId")}),
        json!({"op": "replace", "value": {format!("{HR}:employeeId"): "E-2"}}),
    ] {
        s.patch(&path, &json!([op]))
            .await
            .assert_error(400, Some("mutability"));
    }
    let r = s
        .patch(
            &path,
            &json!([{"op": "replace", "path": format!("{HR}:employeeId"), "value": "E-1"}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(s.get(&path).await.json()[HR]["employeeId"], "E-1");
    // A user without one gets it once, by PATCH too.
    let bare = id_of(&s.create_user(&user("kim", json!({"nick": "K"}))).await);
    let bare = format!("/scim/v2/Users/{bare}");
    let set = |v: &str| json!([{"op": "add", "path": format!("{HR}:employeeId"), "value": v}]);
    assert_eq!(s.patch(&bare, &set("E-9")).await.status, 200);
    s.patch(&bare, &set("E-10"))
        .await
        .assert_error(400, Some("mutability"));

    // Removing the declaration keeps the stored values: undeclared now, returned as stored
    // (including what the declaration hid).
    let del = format!("/admin/api/schemas?urn={HR}");
    assert_eq!(c.call("DELETE", &del, None).await.status, 200);
    assert_eq!(s.get(&format!("/scim/v2/Schemas/{HR}")).await.status, 404);
    let u = s.get(&path).await.json();
    assert_eq!(u[HR]["nick"], "Jay");
    assert_eq!(u[HR]["desk"], json!({"building": "B1", "floor": 2}));
    assert_eq!(u[HR]["secret"], "s3cret");
    assert!(u["schemas"].as_array().unwrap().contains(&json!(HR)), "{u}");
    assert_eq!(found(&s, &format!("{HR}:level eq 3")).await, 1);
}
