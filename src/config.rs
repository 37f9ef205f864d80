//! Server configuration, validated once at start and passed down (no globals).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// Default cap on request bodies (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite database file.
    pub db: PathBuf,
    /// Externally visible origin (`https://scim.example.com`), without a trailing slash. When
    /// unset, each request's `Host` decides the origin used in `meta.location` and `Location`.
    pub public_url: Option<String>,
    /// Requests with larger bodies get 413.
    pub max_body_bytes: usize,
    /// How long a client may take to send its body once the headers are in (then 408).
    pub body_read_timeout: Duration,
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection stays open (slowloris guard).
    pub header_read_timeout: Duration,
    /// How long a write to a client may make no progress (a client that does not read its
    /// answers) before its connection is closed.
    pub write_timeout: Duration,
    /// Connections served at once (see `http::limits::Connections` for who gets one when full).
    pub max_connections: usize,
    /// Honour `X-Forwarded-For`, `-Proto` and `-Host` (only behind a reverse proxy that sets
    /// them; otherwise any client could claim any address).
    pub trust_proxy: bool,
    /// The bearer token `/metrics` requires; without one, `/metrics` does not exist.
    pub metrics_token: Option<String>,
    /// Concurrent writes share one commit (one fsync); off, each write is its own.
    pub group_commit: bool,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// How long one database read may run, and how many scans run at once.
    pub budget: crate::store::Budget,
    /// How long and how much of the change events is kept.
    pub event_retention: EventRetention,
    /// How webhooks are delivered and retried (the extra CA file, timeouts, backoff).
    pub webhooks: crate::webhooks::Settings,
}

/// How long change events are kept (`--event-retention DAYS`), and the bounds that keep a
/// flood of changes from growing the file without end: whichever removes more applies,
/// oldest first.
///
/// Defaults: 30 days, at most 1,000,000 events and 256 MiB of the file. A consumer or
/// webhook endpoint that was down for a long weekend still finds everything it missed, and a
/// full import of 100,000 users (one event each, about 600 bytes on disk) takes a tenth of
/// either bound; a membership event is at most 1,000 members (about 100 KiB), so the size
/// bound holds 2,500 of the largest. An IdP stuck rewriting every user all day stops at the
/// bounds instead of at the disk's end, and then consumers behind get 410 and resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRetention {
    pub max_age_days: u32,
    pub max_rows: u64,
    pub max_bytes: u64,
}

/// Default `--event-retention`, in days.
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 30;

impl Default for EventRetention {
    fn default() -> Self {
        EventRetention {
            max_age_days: DEFAULT_EVENT_RETENTION_DAYS,
            max_rows: 1_000_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Where the TLS certificate chain and its private key live.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Default cap on concurrent connections: far above what identity providers open (Entra asks
/// for 25 requests/s), far below what would exhaust a small box.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

impl Config {
    pub fn new(db: PathBuf) -> Self {
        Config {
            db,
            public_url: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_read_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            trust_proxy: false,
            metrics_token: None,
            group_commit: true,
            tls: None,
            budget: crate::store::Budget::default(),
            event_retention: EventRetention::default(),
            webhooks: crate::webhooks::Settings::default(),
        }
    }

    /// Sets the public URL after checking it is an absolute http(s) URL.
    pub fn with_public_url(mut self, url: Option<&str>) -> Result<Self> {
        self.public_url = match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(u) => {
                let lower = u.to_ascii_lowercase();
                let rest = lower
                    .strip_prefix("https://")
                    .or_else(|| lower.strip_prefix("http://"));
                match rest {
                    Some(host) if !host.is_empty() && !host.starts_with('/') => {}
                    _ => {
                        return Err(Error::InvalidValue(format!(
                            "public URL \"{u}\" must start with http:// or https:// and name a host"
                        )));
                    }
                }
                if u.contains(['?', '#', ' ']) {
                    return Err(Error::InvalidValue(format!(
                        "public URL \"{u}\" must not contain a query, fragment or spaces"
                    )));
                }
                Some(normalise_origin(u.trim_end_matches('/')))
            }
        };
        Ok(self)
    }
}

/// `HTTPS://Scim.Example.com:443/x` → `https://scim.example.com/x`: browsers send the origin
/// that way (the console compares them), and cookies need the scheme to be read right.
fn normalise_origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    if let Some(host) = authority.strip_suffix(default_port) {
        authority = host.to_string();
    }
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_is_checked_and_trimmed() {
        let c = Config::new("x".into());
        let ok = c
            .clone()
            .with_public_url(Some("https://scim.example.com/"))
            .unwrap();
        assert_eq!(ok.public_url.as_deref(), Some("https://scim.example.com"));
        let loud = c
            .clone()
            .with_public_url(Some("HTTPS://Scim.Example.com:443/Base"))
            .unwrap();
        assert_eq!(
            loud.public_url.as_deref(),
            Some("https://scim.example.com/Base")
        );
        assert!(
            c.clone()
                .with_public_url(Some(""))
                .unwrap()
                .public_url
                .is_none()
        );
        for bad in [
            "scim.example.com",
            "ftp://x",
            "https://",
            "http:///x",
            "https://h/?a=1",
        ] {
            assert!(c.clone().with_public_url(Some(bad)).is_err(), "{bad}");
        }
    }
}
