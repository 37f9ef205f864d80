//! Sorting (RFC 7644 §3.4.2.3), cursor paging (RFC 9865) and POST /.search (§3.4.3).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::*;

async fn people(s: &Server) -> Vec<String> {
    let mut ids = Vec::new();
    for (user, family, email, title) in [
        (
            "carla",
            Some("Ödegaard"),
            Some(("c@x.org", false)),
            Some("b"),
        ),
        ("Alice", Some("smith"), Some(("a@x.org", true)), None),
        ("bob", None, None, Some("a")),
        ("dave", Some("Brown"), Some(("d@x.org", true)), Some("b")),
    ] {
        let mut body = json!({"userName": user});
        if let Some(f) = family {
            body["name"] = json!({"familyName": f});
        }
        if let Some((e, primary)) = email {
            body["emails"] = json!([{"value": "zz@x.org"}, {"value": e, "primary": primary}]);
        }
        if let Some(t) = title {
            body["title"] = json!(t);
        }
        ids.push(id_of(&s.create_user(&body).await));
    }
    ids
}

fn names(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn sort_by_attributes_case_insensitively_with_missing_values_last_then_first() {
    let s = Server::start().await;
    people(&s).await;
    let get = |q: &'static str| {
        let s = &s;
        async move { names(&s.get(&format!("/scim/v2/Users?{q}")).await.json()) }
    };
    assert_eq!(
        get("sortBy=userName").await,
        ["Alice", "bob", "carla", "dave"]
    );
    assert_eq!(
        get("sortBy=userName&sortOrder=descending").await,
        ["dave", "carla", "bob", "Alice"]
    );
    assert_eq!(
        get("sortBy=name.familyName").await,
        ["dave", "Alice", "carla", "bob"]
    );
    // RFC 7644 §3.4.2.3: resources without a value come last when ascending, first when
    // descending.
    assert_eq!(
        get("sortBy=name.familyName&sortOrder=descending").await,
        ["bob", "carla", "Alice", "dave"]
    );
    // Ties keep creation order; sortOrder alone changes nothing.
    assert_eq!(get("sortBy=title").await, ["bob", "carla", "dave", "Alice"]);
    assert_eq!(
        get("sortBy=title&sortOrder=descending").await,
        ["Alice", "carla", "dave", "bob"]
    );
    assert_eq!(
        get("sortOrder=descending").await,
        ["carla", "Alice", "bob", "dave"]
    );
    // Multi-valued: the primary value, else the first.
    assert_eq!(
        get("sortBy=emails").await,
        ["Alice", "dave", "carla", "bob"]
    );
    assert_eq!(
        get("sortBy=emails&sortOrder=descending").await,
        ["bob", "carla", "dave", "Alice"]
    );
    assert_eq!(
        get("sortBy=meta.created&count=2&startIndex=2").await,
        ["Alice", "bob"]
    );
    for bad in [
        "sortBy=nosuch",
        "sortBy=password",
        "sortBy=groups",
        "sortBy=userName&sortOrder=up",
    ] {
        s.get(&format!("/scim/v2/Users?{bad}"))
            .await
            .assert_error(400, Some("invalidValue"));
    }
}

/// RFC 7644 §3.4.2.3 on each kind of column a sort reads (a stored column, a JSON value, an
/// extension attribute, a group's): missing values first when descending, across pages.
#[tokio::test]
async fn descending_sorts_put_resources_without_the_value_first() {
    let s = Server::start().await;
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    for (user, display, dept) in [
        ("u1", Some("Beth"), None),
        ("u2", None, Some("Sales")),
        ("u3", Some("Adam"), Some("Ops")),
        ("u4", None, None),
    ] {
        let mut body = json!({"userName": user});
        if let Some(d) = display {
            body["displayName"] = json!(d);
        }
        if let Some(d) = dept {
            body[ent] = json!({"department": d});
        }
        s.create_user(&body).await;
    }
    let users = |q: String| {
        let s = &s;
        async move { names(&s.get(&format!("/scim/v2/Users?{q}")).await.json()) }
    };
    let by_dept = format!("sortBy={ent}:department");
    for (q, want) in [
        ("sortBy=displayName".to_string(), ["u3", "u1", "u2", "u4"]),
        (
            "sortBy=displayName&sortOrder=descending".to_string(),
            ["u2", "u4", "u1", "u3"],
        ),
        (by_dept.clone(), ["u3", "u2", "u1", "u4"]),
        (
            format!("{by_dept}&sortOrder=descending"),
            ["u1", "u4", "u2", "u3"],
        ),
    ] {
        assert_eq!(users(q.clone()).await, want, "{q}");
    }
    // Paged, the missing values still lead: the first page holds them.
    assert_eq!(
        users("sortBy=displayName&sortOrder=descending&count=2".into()).await,
        ["u2", "u4"]
    );
    assert_eq!(
        users("sortBy=displayName&sortOrder=descending&count=2&startIndex=3".into()).await,
        ["u1", "u3"]
    );
    for (name, external) in [("G1", Some("b")), ("G2", None), ("G3", Some("a"))] {
        let mut body = json!({"displayName": name});
        if let Some(e) = external {
            body["externalId"] = json!(e);
        }
        s.create_group(&body).await;
    }
    let groups = |order: &'static str| {
        let s = &s;
        async move {
            let list = s
                .get(&format!(
                    "/scim/v2/Groups?sortBy=externalId&sortOrder={order}"
                ))
                .await
                .json();
            list["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["displayName"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(groups("ascending").await, ["G3", "G1", "G2"]);
    assert_eq!(groups("descending").await, ["G2", "G1", "G3"]);
}

#[tokio::test]
async fn cursor_paging_visits_everything_once() {
    let s = Server::start().await;
    let mut created = HashSet::new();
    for i in 0..23 {
        created.insert(id_of(
            &s.create_user(&json!({"userName": format!("c{i:02}")}))
                .await,
        ));
    }
    let mut seen = Vec::new();
    let mut next = Some(String::new());
    let mut pages = 0;
    while let Some(cursor) = next {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("count", "5")
            .append_pair("cursor", &cursor)
            .finish();
        let page = s.get(&format!("/scim/v2/Users?{q}")).await.json();
        assert_eq!(page["totalResults"], 23);
        assert!(page.get("startIndex").is_none());
        seen.extend(ids(&page));
        next = page["nextCursor"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created);

    // A filter narrows the traversal; a deletion mid-way does not repeat or skip others.
    let first = s
        .get("/scim/v2/Users?count=3&cursor=&filter=userName+sw+%22c1%22")
        .await
        .json();
    assert_eq!(first["totalResults"], 10);
    s.delete(&format!("/scim/v2/Users/{}", ids(&first)[0]))
        .await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = s
        .get(&format!(
            "/scim/v2/Users?count=3&filter=userName+sw+%22c1%22&cursor={cursor}"
        ))
        .await
        .json();
    assert_eq!(names(&second), ["c13", "c14", "c15"]);

    for bad in [
        "cursor=garbage",
        "cursor=&startIndex=2",
        "cursor=&sortBy=userName",
    ] {
        let r = s.get(&format!("/scim/v2/Users?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
    }
    s.get("/scim/v2/Users?cursor=garbage")
        .await
        .assert_error(400, Some("invalidCursor"));
}

#[tokio::test]
async fn search_endpoints_take_the_query_in_the_body() {
    let s = Server::start().await;
    people(&s).await;
    let g = s.create_group(&json!({"displayName": "Alpha"})).await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName co \"a\"",
        "sortBy": "userName",
        "sortOrder": "descending",
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 2
    });
    let r = s.post("/scim/v2/Users/.search", &body).await;
    assert_eq!(r.status, 200);
    let page = r.json();
    assert_eq!(page["totalResults"], 3);
    assert_eq!(names(&page), ["dave", "carla"]);
    assert_eq!(
        page["Resources"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["schemas", "id", "userName"]
    );
    let groups = s
        .post(
            "/scim/v2/Groups/.search",
            &json!({"filter": "displayName eq \"alpha\""}),
        )
        .await
        .json();
    assert_eq!(ids(&groups), vec![id_of(&g)]);

    // The root searches every resource type: users first, then groups.
    let all = s
        .post("/scim/v2/.search", &json!({"count": 3, "startIndex": 3}))
        .await
        .json();
    assert_eq!(all["totalResults"], 5);
    assert_eq!(all["Resources"].as_array().unwrap().len(), 3);
    assert_eq!(all["Resources"][2]["displayName"], "Alpha");
    // A filter that only applies to groups finds only groups.
    let only = s
        .post(
            "/scim/v2/.search",
            &json!({"filter": "displayName sw \"al\""}),
        )
        .await
        .json();
    assert_eq!(ids(&only), vec![id_of(&g)]);
    s.post("/scim/v2/.search", &json!({"filter": "nosuch pr"}))
        .await
        .assert_error(400, Some("invalidFilter"));
    s.post("/scim/v2/Users/.search", &json!({"count": "2"}))
        .await
        .assert_error(400, Some("invalidValue"));
    s.call("POST", "/scim/v2/Users/.search", Some("[1]"))
        .await
        .assert_error(400, Some("invalidSyntax"));
}

/// Sequential startIndex pages continue where the previous page ended; a write in between
/// puts paging back on plain offsets, as startIndex means.
#[tokio::test]
async fn start_index_pages_stay_exact_across_writes() {
    let s = Server::start().await;
    let mut all = Vec::new();
    for i in 0..9 {
        all.push(id_of(
            &s.create_user(&json!({"userName": format!("p{i}")})).await,
        ));
    }
    let page = |start: usize| {
        let s = &s;
        async move {
            let list = s
                .get(&format!("/scim/v2/Users?startIndex={start}&count=3"))
                .await
                .json();
            assert_eq!(list["startIndex"], start);
            (list["totalResults"].as_u64().unwrap(), ids(&list))
        }
    };
    assert_eq!(page(1).await, (9, all[0..3].to_vec()));
    assert_eq!(page(4).await, (9, all[3..6].to_vec()));
    // Delete one user before the next page: offsets shift by one, exactly as startIndex says.
    s.delete(&format!("/scim/v2/Users/{}", all[0])).await;
    assert_eq!(page(7).await, (8, all[7..9].to_vec()));
    // Out of sequence pages are plain offsets too.
    assert_eq!(page(2).await, (8, all[2..5].to_vec()));
    assert_eq!(page(5).await, (8, all[5..8].to_vec()));
}
