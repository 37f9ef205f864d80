//! The full filter grammar over HTTP (RFC 7644 §3.4.2.2): operators, sub-attributes, URN
//! paths, value filters, typed comparisons and `not`, on Users and Groups. The differential
//! property test in `store::differential` checks the same engine against the evaluator on
//! random data; these pin behaviour an IdP or an admin relies on.

use serde_json::json;

use crate::common::*;

async fn seed(s: &Server) -> (String, String, String) {
    let ana = s
        .create_user(&json!({
            "userName": "ana@example.org", "displayName": "Ana Silva", "title": "Engineer",
            "name": {"givenName": "Ana", "familyName": "Silva"},
            "emails": [{"value": "ana@example.org", "type": "work", "primary": true},
                       {"value": "ana@home.example", "type": "home"}],
            "active": true,
            ENTERPRISE_URN: {"department": "Finance", "manager": {"value": "boss"}}
        }))
        .await;
    let bo = s
        .create_user(&json!({
            "userName": "bo@example.com", "displayName": "Bo Ek", "title": "Accountant",
            "name": {"givenName": "Bo", "familyName": "Ek"},
            "emails": [{"value": "bo@example.com", "type": "home"}],
            "active": false,
            ENTERPRISE_URN: {"department": "Finance"}
        }))
        .await;
    let cy = s
        .create_user(&json!({"userName": "Cy.Émile@example.org", "externalId": "x-3"}))
        .await;
    (id_of(&ana), id_of(&bo), id_of(&cy))
}

async fn found(s: &Server, endpoint: &str, f: &str) -> Vec<String> {
    let mut got = ids(&s.filter(endpoint, f).await);
    got.sort();
    got
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn every_operator_on_users() {
    let s = Server::start().await;
    let (ana, bo, cy) = seed(&s).await;
    let cases: Vec<(&str, Vec<&String>)> = vec![
        ("userName co \"EXAMPLE.ORG\"", vec![&ana, &cy]),
        ("userName sw \"cy.\"", vec![&cy]),
        ("userName ew \".com\"", vec![&bo]),
        ("userName eq \"CY.ÉMILE@EXAMPLE.ORG\"", vec![&cy]),
        ("userName ne \"bo@example.com\"", vec![&ana, &cy]),
        ("userName gt \"b\"", vec![&bo, &cy]),
        ("userName le \"bo@example.com\"", vec![&ana, &bo]),
        ("title pr", vec![&ana, &bo]),
        ("not (title pr)", vec![&cy]),
        ("name.familyName eq \"silva\"", vec![&ana]),
        ("displayName co \"ek\"", vec![&bo]),
        ("active eq false", vec![&bo]),
        ("active ne true", vec![&bo]),
        ("emails co \"home\"", vec![&ana]),
        ("emails.type eq \"work\"", vec![&ana]),
        ("emails[type eq \"home\" and value ew \".com\"]", vec![&bo]),
        ("emails[type eq \"work\" and value co \"home\"]", vec![]),
        ("emails[primary eq true]", vec![&ana]),
        ("externalId eq \"x-3\"", vec![&cy]),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"finance\"",
            vec![&ana, &bo],
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"boss\"",
            vec![&ana],
        ),
        ("meta.resourceType eq \"User\"", vec![&ana, &bo, &cy]),
        (
            "title eq \"Engineer\" or (active eq false and not (title co \"x\"))",
            vec![&ana, &bo],
        ),
    ];
    for (f, expected) in cases {
        let expected = sorted(expected.into_iter().cloned().collect());
        assert_eq!(found(&s, "Users", f).await, expected, "{f}");
    }
}

#[tokio::test]
async fn date_times_compare_as_instants() {
    let s = Server::start().await;
    let (ana, _, _) = seed(&s).await;
    let u = s.get(&format!("/scim/v2/Users/{ana}")).await.json();
    let created = u["meta"]["created"].as_str().unwrap().to_string();
    let f = format!("meta.created eq \"{created}\" and id eq \"{ana}\"");
    assert_eq!(found(&s, "Users", &f).await, vec![ana.clone()]);
    // The same instant written with an offset.
    let t = time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
    let shifted = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let f = format!("meta.created ge \"{shifted}\" and id eq \"{ana}\"");
    assert_eq!(found(&s, "Users", &f).await, vec![ana.clone()]);
    assert_eq!(
        s.filter("Users", "meta.lastModified gt \"2999-01-01T00:00:00Z\"")
            .await["totalResults"],
        0
    );
}

#[tokio::test]
async fn group_filters_cover_members_and_nesting() {
    let s = Server::start().await;
    let (ana, bo, _) = seed(&s).await;
    let fin = id_of(
        &s.create_group(
            &json!({"displayName": "Finance", "members": [{"value": ana}, {"value": bo}]}),
        )
        .await,
    );
    let all = id_of(
        &s.create_group(&json!({"displayName": "All Staff", "members": [{"value": fin}]}))
            .await,
    );
    let empty = id_of(&s.create_group(&json!({"displayName": "Empty"})).await);
    let cases: Vec<(String, Vec<&String>)> = vec![
        ("members pr".into(), vec![&fin, &all]),
        ("not (members pr)".into(), vec![&empty]),
        ("members.type eq \"Group\"".into(), vec![&all]),
        (
            format!("members[type eq \"User\" and value eq \"{bo}\"]"),
            vec![&fin],
        ),
        ("members.type eq \"Group\"".into(), vec![&all]),
        ("displayName sw \"all\"".into(), vec![&all]),
        (format!("members.value ne \"{ana}\""), vec![&all, &empty]),
    ];
    for (f, expected) in cases {
        let expected = sorted(expected.into_iter().cloned().collect());
        assert_eq!(found(&s, "Groups", &f).await, expected, "{f}");
    }
    // A user's groups, direct or through nesting.
    let in_all: Vec<String> = found(&s, "Users", &format!("groups.value eq \"{all}\"")).await;
    assert_eq!(in_all, sorted(vec![ana.clone(), bo.clone()]));
    assert_eq!(found(&s, "Users", "not (groups pr)").await.len(), 1);
}

#[tokio::test]
async fn filter_errors_say_where_and_why() {
    let s = Server::start().await;
    let q = filter_query;
    let body = s
        .get(&format!("/scim/v2/Users?{}", q("userName eq \"a\" and")))
        .await
        .assert_error(400, Some("invalidFilter"));
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("position"), "{detail}");
    let body = s
        .get(&format!("/scim/v2/Users?{}", q("active eq \"yes\"")))
        .await
        .assert_error(400, Some("invalidFilter"));
    assert!(
        body["detail"].as_str().unwrap().contains("active"),
        "{body}"
    );
    let long = format!("userName eq \"{}\"", "x".repeat(5000));
    s.get(&format!("/scim/v2/Users?{}", q(&long)))
        .await
        .assert_error(400, Some("invalidFilter"));
    let deep = format!("{}userName pr{}", "(".repeat(40), ")".repeat(40));
    s.get(&format!("/scim/v2/Users?{}", q(&deep)))
        .await
        .assert_error(400, Some("invalidFilter"));
}
