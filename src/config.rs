//! Server configuration, validated once at start and passed down (no globals).

use std::net::{SocketAddr, ToSocketAddrs};
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

/// What `--listen` (`SCIMD_LISTEN`) names: an address and port (`127.0.0.1:8080`,
/// `0.0.0.0:8080`, `[::]:8080`) or a host name and port (`localhost:8080`), resolved once, when
/// the command line is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// As given, for messages.
    pub given: String,
    /// What it resolved to, IPv4 first (what `127.0.0.1` links and most clients try first),
    /// never empty.
    pub addrs: Vec<SocketAddr>,
}

impl Listen {
    /// Parses and resolves `text`; the error names the problem and the fix.
    pub fn parse(text: &str) -> std::result::Result<Listen, String> {
        let given = text.trim().to_string();
        if let Ok(addr) = given.parse::<SocketAddr>() {
            return Ok(Listen {
                given,
                addrs: vec![addr],
            });
        }
        let example = "e.g. 127.0.0.1:8080 (this machine only), 0.0.0.0:8080 (every \
                       interface) or localhost:8080";
        let Some((host, port)) = given.rsplit_once(':').filter(|(h, _)| !h.contains(':')) else {
            return Err(format!(
                "\"{given}\" needs a port after the address or name, {example}"
            ));
        };
        let Ok(port) = port.parse::<u16>() else {
            return Err(format!(
                "\"{given}\": the port must be a number from 0 to 65535, {example}"
            ));
        };
        if host.is_empty() {
            return Err(format!("\"{given}\" names no address, {example}"));
        }
        let mut addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve \"{host}\" ({e}): use an address, {example}"))?
            .collect();
        addrs.sort_by_key(SocketAddr::is_ipv6);
        addrs.dedup();
        if addrs.is_empty() {
            return Err(format!(
                "\"{host}\" resolves to no address: use an address, {example}"
            ));
        }
        Ok(Listen { given, addrs })
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.given)
    }
}

/// The origins a browser can open the console of a scimd listening on `listen` at, the one to
/// try first first: the public URL when there is one; then the listen address, except an
/// unspecified one (`0.0.0.0`, `[::]`), which no browser can open: for that, this machine's
/// address on its network (the one its default route leaves from, when it has one) and
/// loopback (a browser on this machine, or an SSH tunnel). The console accepts sign-in from
/// each of them (`admin_api::origin_allowed`); a host name is never among them, since without
/// `--public-url` the console refuses names other than `localhost` (DNS rebinding).
pub fn console_origins(public_url: Option<&str>, listen: SocketAddr, tls: bool) -> Vec<String> {
    let scheme = if tls { "https" } else { "http" };
    let at = |ip: std::net::IpAddr| format!("{scheme}://{}", SocketAddr::new(ip, listen.port()));
    let mut origins: Vec<String> = public_url.map(str::to_string).into_iter().collect();
    if listen.ip().is_unspecified() {
        origins.extend(network_address(listen.is_ipv6()).map(at));
        origins.push(at(match listen {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        }));
    } else {
        origins.push(at(listen.ip()));
    }
    origins.dedup();
    origins
}

/// This machine's address on its network: the source address the system picks for a
/// datagram to a documentation address (RFC 5737, RFC 3849). Connecting a UDP socket sends
/// nothing; without a route there, there is no such address. An IPv6 listener (`[::]`) also
/// accepts IPv4 on most systems, so an IPv4 address stands in when IPv6 has no route.
fn network_address(v6: bool) -> Option<std::net::IpAddr> {
    let probe = |bind: &str, to: &str| {
        let socket = std::net::UdpSocket::bind(bind).ok()?;
        socket.connect(to).ok()?;
        let ip = socket.local_addr().ok()?.ip();
        (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
    };
    let v4 = || probe("0.0.0.0:0", "192.0.2.1:9");
    if v6 {
        probe("[::]:0", "[2001:db8::1]:9").or_else(v4)
    } else {
        v4()
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

    #[test]
    fn console_origins_never_name_an_unspecified_address() {
        let lan = console_origins(None, "0.0.0.0:8080".parse().unwrap(), false);
        assert_eq!(lan.last().unwrap(), "http://127.0.0.1:8080", "{lan:?}");
        assert!(lan.iter().all(|o| !o.contains("0.0.0.0")), "{lan:?}");
        let v6 = console_origins(None, "[::]:8443".parse().unwrap(), true);
        assert_eq!(v6.last().unwrap(), "https://[::1]:8443", "{v6:?}");
        assert!(v6.iter().all(|o| !o.contains("[::]")), "{v6:?}");
        let public = console_origins(
            Some("https://scim.example.com"),
            "127.0.0.1:8080".parse().unwrap(),
            false,
        );
        assert_eq!(
            public,
            ["https://scim.example.com", "http://127.0.0.1:8080"]
        );
        let one = console_origins(None, "192.0.2.7:8080".parse().unwrap(), false);
        assert_eq!(one, ["http://192.0.2.7:8080"]);
    }

    #[test]
    fn listen_takes_addresses_and_names() {
        let one = Listen::parse("0.0.0.0:8080").unwrap();
        assert_eq!(one.addrs, vec!["0.0.0.0:8080".parse().unwrap()]);
        let v6 = Listen::parse("[::1]:9").unwrap();
        assert_eq!(v6.addrs, vec!["[::1]:9".parse().unwrap()]);
        let named = Listen::parse("localhost:8080").unwrap();
        assert!(
            named
                .addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080)
        );
        assert!(named.addrs[0].is_ipv4(), "IPv4 first: {:?}", named.addrs);
        for (bad, says) in [
            ("localhost", "needs a port"),
            ("8080", "needs a port"),
            ("localhost:http", "must be a number"),
            (":8080", "names no address"),
            ("no-such-host.invalid:8080", "cannot resolve"),
        ] {
            let e = Listen::parse(bad).unwrap_err();
            assert!(
                e.contains(says) && e.contains("127.0.0.1:8080"),
                "{bad}: {e}"
            );
        }
    }
}
