//! README's pictures of the console (issue 15), taken in a real headless Chromium (skipped, as
//! `browser.rs` says, without one): the directory an admin looks at in the morning — 30
//! people and 5 teams pushed over SCIM by a token named `onelogin`, three suspended, two
//! deleted, a client knocking with an old token — shown on the Overview, Users, a person's
//! page and the Audit log's *Offboarding this week*, at desktop and phone sizes, in light and
//! dark mode (`--force-dark-mode`, as a dark system asks). Each is saved as
//! `target/screenshots/readme-{page}-{desktop|phone}-{light|dark}.png`; README's pictures
//! in `packaging/screenshots/` are copies of some of them. On a phone no page scrolls
//! sideways, and the dark pages really are dark.

use fantoccini::Client;
use serde_json::json;

use scimd::service::{admin, tokens};
use scimd::store::Store;

use crate::browser::{PASSWORD, browser_with, click, click_text, fill, fits, see, snap};
use crate::common::*;

const PEOPLE: [(&str, &str, &str, &str); 30] = [
    ("Aisha", "Bello", "Engineering", "Platform Engineer"),
    ("Ben", "Okafor", "Engineering", "Backend Engineer"),
    ("Carla", "Mendes", "Sales", "Account Executive"),
    ("Dmitri", "Volkov", "Finance", "Controller"),
    ("Elif", "Yilmaz", "Design", "Product Designer"),
    ("Farah", "Haddad", "Support", "Support Lead"),
    (
        "Gustavo",
        "Lima",
        "Engineering",
        "Site Reliability Engineer",
    ),
    ("Hana", "Sato", "Design", "Design Lead"),
    ("Ivan", "Petrov", "Sales", "Sales Engineer"),
    ("Jonas", "Berg", "Engineering", "Engineering Manager"),
    ("Kemi", "Adeyemi", "People", "People Partner"),
    ("Liam", "Walsh", "Support", "Support Engineer"),
    ("Maya", "Cohen", "Finance", "Accountant"),
    ("Nikhil", "Rao", "Engineering", "Frontend Engineer"),
    ("Olga", "Nowak", "Sales", "Sales Manager"),
    ("Pedro", "Alves", "Engineering", "Data Engineer"),
    ("Quinn", "Murphy", "Support", "Support Engineer"),
    ("Rosa", "Garcia", "People", "Recruiter"),
    ("Sven", "Larsen", "Engineering", "Security Engineer"),
    ("Tariq", "Aziz", "Finance", "Analyst"),
    ("Uma", "Iyer", "Design", "Researcher"),
    ("Victor", "Dubois", "Sales", "Account Executive"),
    ("Wen", "Zhao", "Engineering", "Backend Engineer"),
    ("Ximena", "Torres", "Support", "Support Engineer"),
    ("Yusuf", "Kaya", "Engineering", "QA Engineer"),
    ("Zoe", "Martin", "People", "Office Manager"),
    ("Ana", "Lima", "Sales", "Sales Development"),
    ("Bruno", "Costa", "Engineering", "Mobile Engineer"),
    ("Chloe", "Dupont", "Design", "Illustrator"),
    ("Daniel", "Kim", "Finance", "Head of Finance"),
];
const TEAMS: [&str; 5] = ["Engineering", "Sales", "Finance", "Design", "Support"];
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The directory, pushed over SCIM as OneLogin would; the id of the first suspended person.
async fn directory(s: &Server, onelogin: &str) -> String {
    let auth = format!("Bearer {onelogin}");
    let send = |method: &'static str, path: String, body: serde_json::Value| {
        let auth = auth.clone();
        async move {
            let body = body.to_string();
            let headers = [
                ("authorization", auth.as_str()),
                ("content-type", "application/scim+json"),
            ];
            let r = s.raw(method, &path, &headers, Some(&body)).await;
            assert!(
                r.status < 300,
                "{method} {path}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            r.json()
        }
    };
    let mut ids = Vec::new();
    for (given, family, department, title) in PEOPLE {
        let user = format!("{}.{}@acme.example", given, family).to_lowercase();
        let u = send(
            "POST",
            "/scim/v2/Users".into(),
            json!({
                "schemas": [USER_URN, ENTERPRISE],
                "userName": user,
                "name": {"givenName": given, "familyName": family},
                "displayName": format!("{given} {family}"),
                "emails": [{"value": user, "type": "work", "primary": true}],
                "title": title,
                "active": true,
                ENTERPRISE: {"department": department},
            }),
        )
        .await;
        ids.push((id_of(&u), department));
    }
    for team in TEAMS {
        let members: Vec<_> = ids
            .iter()
            .filter(|(_, d)| *d == team)
            .map(|(id, _)| json!({"value": id}))
            .collect();
        send(
            "POST",
            "/scim/v2/Groups".into(),
            json!({"schemas": [GROUP_URN], "displayName": team, "members": members}),
        )
        .await;
    }
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [{"op": "replace", "value": {"active": false}}]});
    for i in [3, 11, 20] {
        send("PATCH", format!("/scim/v2/Users/{}", ids[i].0), off.clone()).await;
    }
    for i in [8, 26] {
        let path = format!("/scim/v2/Users/{}", ids[i].0);
        let headers = [("authorization", auth.as_str())];
        assert_eq!(s.raw("DELETE", &path, &headers, None).await.status, 204);
    }
    // A client still sending a token that was replaced.
    let stale = [("authorization", "Bearer scimd_0123456789abcdef_stale")];
    for _ in 0..3 {
        let r = s
            .raw_from(loopback_client(9), "GET", "/scim/v2/Users", &stale, None)
            .await;
        assert_eq!(r.status, 401);
    }
    ids[3].0.clone()
}

/// The page's background is dark in dark mode and light otherwise.
async fn check_scheme(c: &Client, dark: bool) {
    let bg = c
        .execute(
            "const [r, g, b] = getComputedStyle(document.body).backgroundColor \
               .match(/[0-9]+/g).map(Number); return r + g + b;",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    assert_eq!(bg < 200, dark, "body background sum {bg}");
}

#[tokio::test]
async fn readme_pictures_of_the_console_in_light_and_dark_at_desktop_and_phone_sizes() {
    let s = Server::start().await;
    let onelogin = tokens::create(&Store::open(&s.db()).unwrap(), "onelogin").unwrap();
    let suspended = directory(&s, &onelogin).await;
    let origin = format!("http://{}", s.addr);
    let mut first = true;
    for (scheme, flags) in [("light", &[][..]), ("dark", &["--force-dark-mode"][..])] {
        let Some((_driver, c)) = browser_with(flags).await else {
            return;
        };
        if first {
            let code = admin::new_setup_code(&Store::open(&s.db()).unwrap())
                .unwrap()
                .unwrap();
            c.goto(&scimd::http::setup_link(&origin, &code))
                .await
                .unwrap();
            see(&c, "Create the first administrator").await;
        } else {
            c.goto(&format!("{origin}/login")).await.unwrap();
            see(&c, "Sign in").await;
        }
        fill(&c, "#username", "root").await;
        fill(&c, "#password", PASSWORD).await;
        click(&c, "button[type=submit]").await;
        see(&c, "People this week").await;
        first = false;

        let pages = [
            ("overview", "/overview".to_string(), "Suspended (3)"),
            (
                "users",
                "/users?state=suspended".to_string(),
                "dmitri.volkov",
            ),
            ("user", format!("/users/{suspended}"), "Controller"),
            (
                "audit",
                "/audit?quick=offboarding".to_string(),
                "ivan.petrov",
            ),
        ];
        for (size, (w, h)) in [("desktop", (1280, 900)), ("phone", (390, 844))] {
            c.set_window_size(w, h).await.unwrap();
            for (name, path, shows) in &pages {
                c.goto(&format!("{origin}{path}")).await.unwrap();
                see(&c, shows).await;
                check_scheme(&c, scheme == "dark").await;
                if size == "phone" {
                    assert!(fits(&c).await, "{path} is wider than a phone");
                }
                // The top of the page, as it opens (focus may have scrolled it).
                c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
                snap(&c, &format!("readme-{name}-{size}-{scheme}")).await;
            }
        }
        // The phone's menu, open.
        click(&c, "#menu").await;
        see(&c, "Audit log").await;
        snap(&c, &format!("readme-menu-phone-{scheme}")).await;
        click_text(&c, "Users").await;
        c.close().await.unwrap();
    }
}
