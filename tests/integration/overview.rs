//! The console's Overview (`GET /admin/api/overview`): counts of users, suspended users and
//! groups; the week's joiners, suspensions, reactivations and deletions pushed over SCIM;
//! per token its requests, failures and refusals (a rotated-out or revoked secret that still
//! arrives counts against its token); failed authentications without a token of ours per
//! client address, bounded in addresses; the silent-token warning and its setting; counts
//! that survive a restart.

use std::net::IpAddr;

use futures_util::StreamExt;
use serde_json::{Value, json};

use scimd::store::Store;

use crate::common::*;
use crate::console::{Console, set_up};

async fn overview(c: &Console<'_>) -> Value {
    c.get("/admin/api/overview").await
}

/// The Overview's row of the token `name`.
fn token<'a>(o: &'a Value, name: &str) -> &'a Value {
    o["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no token {name} in {}", o["tokens"]))
}

/// `GET /scim/v2/Users` with `authorization` (none: no header) from `from`; the status.
async fn scim_from(s: &Server, from: IpAddr, authorization: Option<&str>) -> u16 {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    s.raw_from(from, "GET", "/scim/v2/Users", &headers, None)
        .await
        .status
}

fn ids_of(people: &Value) -> Vec<&str> {
    people["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_week_s_offboardings_pushed_over_scim_are_on_the_overview() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    // A webhook endpoint nobody listens at: its changes wait.
    let hook = json!({"name": "hr", "url": "http://127.0.0.1:1/hook", "allowHttp": true});
    let r = c.call("POST", "/admin/api/webhooks", Some(&hook)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut ids = Vec::new();
    for name in ["ana", "ben", "cy"] {
        let u = s
            .create_user(&json!({"userName": format!("{name}@acme.example"),
                                  "name": {"givenName": name, "familyName": "Doe"}}))
            .await;
        ids.push(id_of(&u));
    }
    s.create_group(&json!({"displayName": "staff"})).await;
    let active = |on: bool| json!([{"op": "replace", "value": {"active": on}}]);
    // Ana is suspended; Ben suspended and reinstated; Cy deleted.
    for (id, on) in [(&ids[0], false), (&ids[1], false), (&ids[1], true)] {
        let r = s.patch(&format!("/scim/v2/Users/{id}"), &active(on)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(
        s.delete(&format!("/scim/v2/Users/{}", ids[2])).await.status,
        204
    );

    let o = overview(&c).await;
    assert_eq!(
        o["counts"],
        json!({"users": 2, "active": 1, "suspended": 1, "groups": 1, "tokens": 1})
    );
    let week = &o["week"];
    assert_eq!(week["joined"]["count"], 3);
    assert_eq!(ids_of(&week["joined"]).len(), 3);
    assert_eq!(week["suspended"]["count"], 2);
    assert_eq!(
        ids_of(&week["suspended"]),
        [ids[1].as_str(), ids[0].as_str()]
    );
    assert_eq!(ids_of(&week["reactivated"]), [ids[1].as_str()]);
    assert_eq!(ids_of(&week["deleted"]), [ids[2].as_str()]);
    let gone = &week["deleted"]["people"][0];
    assert_eq!(gone["userName"], "cy@acme.example");
    assert_eq!(gone["name"], "cy Doe");
    assert!(gone["by"].as_str().unwrap().starts_with("test-"), "{gone}");

    // 30 days, today last, holding today's changes: 3 created, the group, 3 state changes
    // and the deletion.
    let days = o["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["changes"], 8, "{days:?}");
    assert!(days[..29].iter().all(|d| d["changes"] == 0), "{days:?}");
    assert!(
        o["now"]
            .as_str()
            .unwrap()
            .starts_with(days[29]["date"].as_str().unwrap())
    );

    // The harness's token: every request counted, none failed, its last one shown.
    let t = o["tokens"].as_array().unwrap();
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["live"], true);
    assert_eq!(
        (t[0]["requests"].as_u64(), t[0]["failures"].as_u64()),
        (Some(8), Some(0))
    );
    assert_eq!(t[0]["lastRequest"], "DELETE /scim/v2/Users/{id} → 204");
    assert_eq!(t[0]["lastClient"], "127.0.0.1");
    assert!(t[0]["silentHours"].is_null());
    let hooks = o["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["name"], "hr");
    assert!(hooks[0]["pending"].as_u64().unwrap() >= 1, "{}", hooks[0]);
    assert!(hooks[0]["oldestPendingAt"].is_string(), "{}", hooks[0]);

    // A session is required.
    assert_eq!(
        s.raw("GET", "/admin/api/overview", &[], None).await.status,
        401
    );
}

#[tokio::test]
async fn old_and_revoked_secrets_count_against_their_token_and_unknown_ones_per_address() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let me: IpAddr = "127.0.0.1".parse().unwrap();
    let create = |name: &'static str| {
        let c = &c;
        async move {
            let r = c
                .call("POST", "/admin/api/tokens", Some(&json!({"name": name})))
                .await;
            assert_eq!(r.status, 200);
            format!("Bearer {}", r.json()["token"].as_str().unwrap())
        }
    };
    // OneLogin's token is rotated, the old secret stopping at once, but OneLogin keeps
    // sending it.
    let old = create("onelogin").await;
    assert_eq!(scim_from(&s, me, Some(&old)).await, 200);
    let r = c
        .call(
            "POST",
            "/admin/api/tokens/onelogin/regenerate",
            Some(&json!({"overlap": "none"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let new = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    for _ in 0..3 {
        assert_eq!(scim_from(&s, me, Some(&old)).await, 401);
    }
    assert_eq!(scim_from(&s, me, Some(&new)).await, 200);
    // A token revoked altogether whose client still calls.
    let gone = create("old-idp").await;
    assert_eq!(
        c.call("DELETE", "/admin/api/tokens/old-idp", None)
            .await
            .status,
        200
    );
    for _ in 0..2 {
        assert_eq!(scim_from(&s, me, Some(&gone)).await, 401);
    }
    // Unknown tokens, a missing header and a malformed one, from three addresses.
    let (a, b, d) = (loopback_client(1), loopback_client(2), loopback_client(3));
    for _ in 0..3 {
        assert_eq!(
            scim_from(&s, a, Some("Bearer scimd_0123456789abcdef_nope")).await,
            401
        );
    }
    assert_eq!(scim_from(&s, b, Some("Basic YWRtaW46YWRtaW4=")).await, 401);
    assert_eq!(scim_from(&s, d, None).await, 401);

    let o = overview(&c).await;
    let one = token(&o, "onelogin");
    assert_eq!(one["live"], true);
    assert_eq!(
        (&one["requests"], &one["failures"], &one["refused"]),
        (&json!(5), &json!(3), &json!(3)),
        "{one}"
    );
    let revoked = token(&o, "old-idp");
    assert_eq!(revoked["live"], false);
    assert_eq!(
        (&revoked["refused"], &revoked["requests"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(
        o["clientFailures"],
        json!([
            {"client": a.to_string(), "failures": 3},
            {"client": b.to_string(), "failures": 1},
            {"client": d.to_string(), "failures": 1},
        ])
    );
    assert_eq!(o["clientFailuresTotal"], 5);
}

/// 1,200 addresses sending unknown tokens: every failure is counted, but at most 1,000
/// addresses are kept per hour, the rest as one "other".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_many_addresses_are_bounded_and_all_counted() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let statuses: Vec<u16> = futures_util::stream::iter(0..1200)
        .map(|i| scim_from(&s, loopback_client(10 + i), Some("Bearer nope")))
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let o = overview(&c).await;
    assert_eq!(o["clientFailuresTotal"], 1200);
    assert_eq!(o["clientFailures"].as_array().unwrap().len(), 20);
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    let per_hour: Vec<(i64, i64, i64)> = conn
        .prepare(
            "SELECT COUNT(*), SUM(failures), SUM(CASE WHEN client = 'other' THEN failures END)
             FROM client_failures GROUP BY hour",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        per_hour.iter().all(|(rows, _, _)| *rows <= 1001),
        "{per_hour:?}"
    );
    assert_eq!(per_hour.iter().map(|(_, n, _)| n).sum::<i64>(), 1200);
    // Unless the test straddled an hour, 200 addresses found the hour full.
    if let [(_, _, other)] = per_hour[..] {
        assert_eq!(other, 200, "{per_hour:?}");
        let listed = o["clientFailures"].as_array().unwrap();
        assert_eq!(listed[0], json!({"client": "other", "failures": 200}));
    }
}

#[tokio::test]
async fn a_write_token_silent_longer_than_expected_is_warned_about() {
    let s = Server::start().await;
    let c = set_up(&s).await;
    let r = c
        .call("POST", "/admin/api/tokens", Some(&json!({"name": "idp"})))
        .await;
    assert_eq!(r.status, 200);
    let path = "/admin/api/tokens/idp/expectation";
    for bad in [
        json!({"everyHours": "abc"}),
        json!({"everyHours": 0}),
        json!({}),
        json!({"everyHours": 8761}),
        json!({"everyHours": 2.5}),
    ] {
        let r = c.call("PUT", path, Some(&bad)).await;
        assert_eq!(r.status, 400, "{bad}: {}", String::from_utf8_lossy(&r.body));
    }
    let r = c.call("PUT", path, Some(&json!({"everyHours": 2}))).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let nobody = c
        .call(
            "PUT",
            "/admin/api/tokens/nobody/expectation",
            Some(&json!({"everyHours": 2})),
        )
        .await;
    assert_eq!(nobody.status, 404);
    // Just created: not silent yet.
    let o = overview(&c).await;
    assert_eq!(token(&o, "idp")["expectEveryHours"], 2);
    assert!(token(&o, "idp")["silentHours"].is_null());
    // Created three hours ago and never heard from.
    let earlier =
        scimd::scim::time::format(time::OffsetDateTime::now_utc() - time::Duration::hours(3));
    Store::open(&s.db())
        .unwrap()
        .write_sync(|tx| {
            tx.execute(
                "UPDATE tokens SET created = ?1 WHERE name = 'idp'",
                [&earlier],
            )?;
            Ok(())
        })
        .unwrap();
    let o = overview(&c).await;
    assert_eq!(token(&o, "idp")["silentHours"], 3);
    // The Tokens API shows the setting too; null clears it, and the warning with it.
    let listed = c.get("/admin/api/tokens").await;
    let row = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "idp")
        .unwrap()
        .clone();
    assert_eq!(row["expectEveryHours"], 2);
    let r = c
        .call("PUT", path, Some(&json!({"everyHours": null})))
        .await;
    assert_eq!(r.status, 200);
    let o = overview(&c).await;
    assert!(token(&o, "idp")["silentHours"].is_null());
    assert!(token(&o, "idp")["expectEveryHours"].is_null());
    // The change is on record.
    let log = c.get("/admin/api/audit?action=token.expect").await;
    assert_eq!(log["entries"].as_array().map(Vec::len), Some(2), "{log}");
}

/// What was counted but not yet flushed is written at shutdown.
#[tokio::test]
async fn counts_are_written_at_shutdown() {
    let s = Server::start().await;
    let me: IpAddr = "127.0.0.1".parse().unwrap();
    let bearer = format!("Bearer {}", s.token);
    assert_eq!(scim_from(&s, me, Some(&bearer)).await, 200);
    assert_eq!(scim_from(&s, loopback_client(5), None).await, 401);
    let dir = s.stop().await;
    let conn = rusqlite::Connection::open(dir.path().join("scimd.db")).unwrap();
    let requests: i64 = conn
        .query_row("SELECT SUM(requests) FROM token_activity", [], |r| r.get(0))
        .unwrap();
    let failures: i64 = conn
        .query_row("SELECT SUM(failures) FROM client_failures", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!((requests, failures), (1, 1));
}
