//! What a delivery's body is: the event as the feed serves it (`standard`), or one sentence
//! for a chat incoming-webhook URL (`chat`: Slack, Mattermost and the like take
//! `{"text": …}` as is).

use serde_json::Value;

/// The chat message of an event body (or payload): `{"text": "…"}`.
pub fn chat(event: &str) -> String {
    let text = serde_json::from_str::<Value>(event)
        .map(|v| sentence(&v))
        .unwrap_or_else(|_| "scimd: an event that could not be read".into());
    serde_json::json!({ "text": escape(&text) }).to_string()
}

/// Names come from the identity provider (often self-service), so nothing in them may ping
/// or link. Slack reads `<…>` as links and mentions (`<!channel>`): the characters it asks
/// to escape are escaped. Mattermost, Discord and Rocket.Chat read `@channel`, `@here`,
/// `@all`, `@everyone` and `@name` where `@` starts a word, and Markdown `[text](url)` /
/// `![](url)`: a zero-width space after such an `@` and between `]` and `(` breaks both
/// while the name reads the same (backslash escapes would show in Slack, which has no
/// Markdown links). An `@` inside a word, as in an email address, is left alone.
fn escape(text: &str) -> String {
    const ZWSP: char = '\u{200B}';
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev: Option<char> = None;
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => {
                out.push('@');
                if !prev.is_some_and(|p| p.is_alphanumeric() || "._-+".contains(p)) {
                    out.push(ZWSP);
                }
            }
            '(' if prev == Some(']') => {
                out.push(ZWSP);
                out.push('(');
            }
            c => out.push(c),
        }
        prev = Some(c);
    }
    out
}

/// Members named in a membership message before "and N more".
const NAMED_MEMBERS: usize = 5;

/// One sentence per event type: who or what, what happened, and who did it.
pub fn sentence(e: &Value) -> String {
    let kind = e["type"].as_str().unwrap_or("event");
    let r = &e["resource"];
    let actor = e["actor"]["name"].as_str().unwrap_or("someone");
    let user = || {
        let user_name = r["userName"].as_str().unwrap_or("?");
        match r["name"].as_str().filter(|n| !n.trim().is_empty()) {
            Some(name) => format!("{name} ({user_name})"),
            None => user_name.to_string(),
        }
    };
    let group = || format!("group {}", r["displayName"].as_str().unwrap_or("?"));
    let changed = || {
        let paths: Vec<&str> = e["changes"]
            .as_array()
            .map(|c| c.iter().filter_map(|c| c["path"].as_str()).collect())
            .unwrap_or_default();
        if paths.is_empty() {
            String::new()
        } else {
            format!(" ({})", paths.join(", "))
        }
    };
    match kind {
        "user.created" => format!("{} was created by {actor}", user()),
        "user.updated" => format!("{} was updated by {actor}{}", user(), changed()),
        "user.deactivated" => format!("{} was deactivated by {actor}", user()),
        "user.reactivated" => format!("{} was reactivated by {actor}", user()),
        "user.deleted" => format!("{} was deleted by {actor}", user()),
        "group.created" => format!("The {} was created by {actor}", group()),
        "group.updated" => format!("The {} was updated by {actor}{}", group(), changed()),
        "group.deleted" => format!("The {} was deleted by {actor}", group()),
        "group.members_added" | "group.members_removed" => {
            let members = e["members"].as_array().cloned().unwrap_or_default();
            let n = members.len();
            let verb = if kind == "group.members_added" {
                "added to"
            } else {
                "removed from"
            };
            let noun = if n == 1 { "member was" } else { "members were" };
            let names: Vec<&str> = members
                .iter()
                .take(NAMED_MEMBERS)
                .map(|m| m["name"].as_str().or(m["id"].as_str()).unwrap_or("?"))
                .collect();
            let more = n.saturating_sub(NAMED_MEMBERS);
            let list = match (names.is_empty(), more) {
                (true, _) => String::new(),
                (false, 0) => format!(": {}", names.join(", ")),
                (false, m) => format!(": {} and {m} more", names.join(", ")),
            };
            format!("{n} {noun} {verb} the {} by {actor}{list}", group())
        }
        "webhook.test" => format!("Test message from scimd, sent by {actor}"),
        other => format!("{other}: {} by {actor}", r["id"].as_str().unwrap_or("?")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(kind: &str) -> Value {
        json!({"type": kind, "time": "2026-12-05T10:00:00.000Z",
               "actor": {"kind": "token", "name": "onelogin"},
               "resource": {"type": "User", "id": "u1", "userName": "ana@acme.example",
                            "name": "Ana Lima"},
               "changes": [{"path": "active", "before": true, "after": false}]})
    }

    #[test]
    fn renders_one_sentence_per_event_type() {
        assert_eq!(
            chat(&user("user.deactivated").to_string()),
            r#"{"text":"Ana Lima (ana@acme.example) was deactivated by onelogin"}"#
        );
        for (kind, want) in [
            (
                "user.created",
                "Ana Lima (ana@acme.example) was created by onelogin",
            ),
            (
                "user.updated",
                "Ana Lima (ana@acme.example) was updated by onelogin (active)",
            ),
            (
                "user.reactivated",
                "Ana Lima (ana@acme.example) was reactivated by onelogin",
            ),
            (
                "user.deleted",
                "Ana Lima (ana@acme.example) was deleted by onelogin",
            ),
        ] {
            assert_eq!(sentence(&user(kind)), want);
        }
        let mut nameless = user("user.created");
        nameless["resource"]["name"] = Value::Null;
        assert_eq!(
            sentence(&nameless),
            "ana@acme.example was created by onelogin"
        );
        let group = |kind: &str, n: usize| {
            let members: Vec<Value> = (0..n)
                .map(|i| json!({"id": format!("u{i}"), "type": "User", "name": format!("m{i}")}))
                .collect();
            json!({"type": kind, "actor": {"kind": "admin", "name": "root"},
                   "resource": {"type": "Group", "id": "g1", "displayName": "Engineering"},
                   "changes": [], "members": members})
        };
        assert_eq!(
            sentence(&group("group.created", 0)),
            "The group Engineering was created by root"
        );
        assert_eq!(
            sentence(&group("group.deleted", 0)),
            "The group Engineering was deleted by root"
        );
        assert_eq!(
            sentence(&group("group.members_added", 1)),
            "1 member was added to the group Engineering by root: m0"
        );
        assert_eq!(
            sentence(&group("group.members_removed", 7)),
            "7 members were removed from the group Engineering by root: m0, m1, m2, m3, m4 and 2 more"
        );
    }

    #[test]
    fn names_cannot_mention_a_whole_channel() {
        let mut e = user("user.created");
        e["resource"]["name"] = json!("<!channel> & co");
        assert_eq!(
            chat(&e.to_string()),
            r#"{"text":"&lt;!channel&gt; &amp; co (ana@acme.example) was created by onelogin"}"#
        );
    }

    #[test]
    fn names_cannot_mention_everyone_or_carry_markdown_links() {
        let text = |name: &str| {
            let mut e = user("user.created");
            e["resource"]["name"] = json!(name);
            let v: Value = serde_json::from_str(&chat(&e.to_string())).unwrap();
            v["text"].as_str().unwrap().to_string()
        };
        assert_eq!(
            text("@channel @here (@everyone) @all"),
            "@\u{200B}channel @\u{200B}here (@\u{200B}everyone) @\u{200B}all \
             (ana@acme.example) was created by onelogin"
        );
        assert_eq!(
            text("[Reset your password](https://evil) ![](https://evil/p)"),
            "[Reset your password]\u{200B}(https://evil) ![]\u{200B}(https://evil/p) \
             (ana@acme.example) was created by onelogin"
        );
        // Ordinary names and the sentence's own parentheses are untouched.
        assert_eq!(
            text("Ana (Ops) Lima"),
            "Ana (Ops) Lima (ana@acme.example) was created by onelogin"
        );
    }
}
