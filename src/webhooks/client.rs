//! The HTTP client webhooks are delivered with: hyper-util's pooled client over hyper-rustls
//! (ring, HTTP/1.1), chosen over reqwest because it reuses the hyper, rustls and ring already
//! built here, never follows redirects, reads no proxy from the environment, and takes our
//! resolver, where every address is checked after DNS on every new connection (rebinding
//! cannot get past it). IP-literal URLs skip the resolver, so `send` checks those itself.
//!
//! Link-local and cloud metadata addresses, unspecified, multicast, broadcast and reserved
//! ones are refused, in IPv4-mapped, 6to4 and NAT64 forms too. Loopback and private ranges
//! stay allowed: an administrator registers endpoints, and LAN receivers are the main use.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as Pooled;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::{Error, Result};

/// How much of a response body is read and kept for the attempts log.
pub const RESPONSE_KEPT: usize = 2048;

/// Why an address may never be a webhook's destination; `None` if it may.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            let s = v6.segments();
            // 6to4 (2002::/16) and NAT64 (64:ff9b::/96) carry an IPv4 address that a gateway
            // may route to.
            if s[0] == 0x2002 {
                let [a, b] = s[1].to_be_bytes();
                let [c, d] = s[2].to_be_bytes();
                return refused_v4(Ipv4Addr::new(a, b, c, d));
            }
            let last32 = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                Ipv4Addr::new(a, b, c, d)
            };
            // IPv4-compatible (::/96, but for :: and ::1 below) and SIIT (::ffff:0:0/96)
            // forms carry one too, for a stack or translator that maps them.
            let compatible = s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1);
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                || compatible
                || s[..6] == [0, 0, 0, 0, 0xffff, 0]
            {
                return refused_v4(last32(s[6], s[7]));
            }
            // Local-use NAT64 (64:ff9b:1::/48, RFC 8215): where the IPv4 address sits
            // depends on the operator's prefix length, so the whole prefix is refused.
            if s[..3] == [0x64, 0xff9b, 1] {
                return Some("a local-use NAT64 address");
            }
            // Teredo (2001::/32): the server's IPv4 address, then the client's inverted.
            if s[..2] == [0x2001, 0] {
                return refused_v4(last32(s[2], s[3])).or(refused_v4(last32(!s[6], !s[7])));
            }
            if v6.is_unspecified() {
                Some("the unspecified address")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("a cloud metadata address")
            } else {
                None
            }
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        Some("the unspecified address")
    } else if a == 169 && b == 254 {
        Some("a link-local (cloud metadata) address")
    } else if ip == Ipv4Addr::new(100, 100, 100, 200) || ip == Ipv4Addr::new(168, 63, 129, 16) {
        // Alibaba Cloud's metadata service and Azure's WireServer, outside 169.254/16.
        Some("a cloud metadata address")
    } else if ip.is_broadcast() {
        Some("the broadcast address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if a >= 240 {
        Some("a reserved address")
    } else {
        None
    }
}

/// The error for a refused destination.
fn refusal(ip: IpAddr, why: &str) -> String {
    format!("refused address {ip}: {why}")
}

/// Resolves with the system resolver, then drops refused addresses; none left is an error.
#[derive(Clone, Default)]
pub struct SafeResolver;

type Resolving =
    Pin<Box<dyn Future<Output = std::io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower_service::Service<Name> for SafeResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut why = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match refused(a.ip()) {
                    Some(w) => {
                        why = Some(refusal(a.ip(), w));
                        false
                    }
                    None => true,
                })
                .collect();
            match (allowed.is_empty(), why) {
                (true, Some(why)) => Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host}: {why}"),
                )),
                _ => Ok(allowed.into_iter()),
            }
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connector whose every connection (TCP, then the TLS handshake) must be made within
/// `limit`. The response timeout bounds only a request that waits for its connection: when
/// a pooled connection wins that race, the pool finishes the started connect in the
/// background, where nothing else bounds a receiver that stalls the handshake.
#[derive(Clone)]
struct Bounded<C> {
    inner: C,
    limit: Duration,
}

impl<C> tower_service::Service<Uri> for Bounded<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (connecting, limit) = (self.inner.call(uri), self.limit);
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(done) => done.map_err(Into::into),
                Err(_) => Err(format!("no connection (TCP and TLS) within {limit:?}").into()),
            }
        })
    }
}

/// Timeouts of one delivery.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To open the TCP connection; twice this to finish the TLS handshake too.
    pub connect: Duration,
    /// From sending to a complete (bounded) answer: a 2xx within it acknowledges.
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(10),
        }
    }
}

/// What one POST came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The answer's status, if one came.
    pub status: Option<u16>,
    /// Why it failed, if it did (a non-2xx status included).
    pub error: Option<String>,
    /// The start of the answer's body (lossy UTF-8).
    pub response: String,
    pub duration: Duration,
    /// A failed answer's `Retry-After`, in seconds (an HTTP date is not honoured).
    pub retry_after: Option<Duration>,
}

impl Sent {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// The webhook HTTP client; cheap to clone (connections are pooled per host).
#[derive(Clone)]
pub struct Client {
    inner: Pooled<Bounded<HttpsConnector<HttpConnector<SafeResolver>>>, Full<Bytes>>,
    timeouts: Timeouts,
}

impl Client {
    /// A client trusting the system's certificate authorities, plus those in `ca_file` (PEM).
    pub fn new(ca_file: Option<&Path>, timeouts: Timeouts) -> Result<Client> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(file) = ca_file {
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::InvalidValue(format!("cannot read CA file {}: {e}", file.display()))
                })?;
            if certs.is_empty() {
                return Err(Error::InvalidValue(format!(
                    "{} holds no PEM certificate",
                    file.display()
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    Error::InvalidValue(format!("bad CA certificate in {}: {e}", file.display()))
                })?;
            }
        }
        if roots.is_empty() {
            tracing::warn!(
                "no trusted certificate authorities (no system store, no --webhook-ca-file): \
                 https webhooks will fail"
            );
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(Error::internal)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(SafeResolver);
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeouts.connect));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let https = Bounded {
            inner: https,
            limit: timeouts.connect.saturating_mul(2),
        };
        let inner = Pooled::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(https);
        Ok(Client { inner, timeouts })
    }

    /// POSTs `body` to `url` with `headers`; never fails, the outcome says what happened.
    /// Redirects are failures (not followed); only 2xx within the response timeout succeeds.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> Sent {
        let start = Instant::now();
        let fail = |error: String, status: Option<u16>, response: String| Sent {
            status,
            error: Some(error),
            response,
            duration: start.elapsed(),
            retry_after: None,
        };
        let uri: Uri = match url.parse() {
            Ok(u) => u,
            Err(e) => return fail(format!("invalid URL: {e}"), None, String::new()),
        };
        if let Some(ip) = uri.host().and_then(literal_ip)
            && let Some(why) = refused(ip)
        {
            return fail(refusal(ip, why), None, String::new());
        }
        let mut req = Request::post(uri);
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let req = match req
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .header(
                header::USER_AGENT,
                concat!("scimd/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
        {
            Ok(r) => r,
            Err(e) => return fail(format!("invalid request: {e}"), None, String::new()),
        };
        let exchange = async {
            let resp = self.inner.request(req).await.map_err(|e| chain(&e))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let mut body = resp.into_body();
            let mut kept = Vec::new();
            // Read no more than we keep: a huge answer costs nothing.
            while kept.len() < RESPONSE_KEPT {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            kept.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => return Err(chain(&e)),
                    None => break,
                }
            }
            kept.truncate(RESPONSE_KEPT);
            let kept = String::from_utf8_lossy(&kept).into_owned();
            Ok::<_, String>((status, retry_after, kept))
        };
        match tokio::time::timeout(self.timeouts.response, exchange).await {
            Err(_) => fail(
                format!(
                    "timed out: no complete answer within {:?}",
                    self.timeouts.response
                ),
                None,
                String::new(),
            ),
            Ok(Err(e)) => fail(e, None, String::new()),
            Ok(Ok((status, _, response))) if status.is_success() => Sent {
                status: Some(status.as_u16()),
                error: None,
                response,
                duration: start.elapsed(),
                retry_after: None,
            },
            Ok(Ok((status, retry_after, response))) => Sent {
                retry_after,
                ..fail(describe(status), Some(status.as_u16()), response)
            },
        }
    }
}

fn describe(status: StatusCode) -> String {
    if status.is_redirection() {
        format!("HTTP {}: redirects are not followed", status.as_u16())
    } else {
        format!("HTTP {}", status.as_u16())
    }
}

/// The host of a URL as an IP address, if it is one (`[::1]` included).
fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// An error with its causes, as one line: a TLS or DNS problem is named, not hidden behind
/// "client error (Connect)".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// Checks a URL an administrator registers: http(s) only (http only when allowed), a host,
/// no userinfo, and no refused IP literal. The normalised URL.
pub fn check_url(url: &str, allow_http: bool) -> Result<String> {
    let bad = |why: &str| Err(Error::InvalidValue(format!("webhook URL \"{url}\": {why}")));
    let uri: Uri = match url.trim().parse() {
        Ok(u) => u,
        Err(_) => return bad("not an absolute URL (it must start with https://)"),
    };
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if allow_http => {}
        Some("http") => return bad("plain http needs --allow-http (use https)"),
        _ => return bad("must start with https://"),
    }
    let Some(authority) = uri.authority() else {
        return bad("must name a host");
    };
    if authority.as_str().contains('@') {
        return bad("must not contain a user name or password");
    }
    let host = authority.host();
    if host.is_empty() {
        return bad("must name a host");
    }
    if let Some(ip) = literal_ip(host)
        && let Some(why) = refused(ip)
    {
        return bad(&refusal(ip, why));
    }
    if url.contains('#') {
        return bad("must not contain a fragment");
    }
    Ok(uri.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_receiver_that_never_finishes_the_tls_handshake_fails_within_the_bound() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let timeouts = Timeouts {
            connect: Duration::from_millis(200),
            response: Duration::from_secs(30),
        };
        let client = Client::new(None, timeouts).unwrap();
        let url = format!("https://{addr}/hook");
        let (sent, accepted) = tokio::join!(client.post(&url, &[], Bytes::new()), async {
            // Accepts the connection and never says a word.
            listener.accept().await.unwrap().0
        });
        assert!(sent.duration < Duration::from_secs(5), "{sent:?}");
        assert!(
            sent.error.as_deref().is_some_and(|e| e.contains("TLS")),
            "{sent:?}"
        );
        // The stalled connection is closed, not kept by the client.
        let mut accepted = accepted;
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), accepted.read_to_end(&mut buf));
        assert!(read.await.is_ok(), "the socket is still open");
    }

    #[test]
    fn refuses_ipv4_embedded_in_ipv6_and_other_metadata_addresses() {
        for bad in [
            "100.100.100.200",
            "168.63.129.16",
            "::a9fe:a9fe",
            "::169.254.169.254",
            "::0.0.0.2",
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:100.100.100.200",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:a9fe:a9:fe00::",
            "2001:0:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:5601:5601",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(refused(ip).is_some(), "{bad} must be refused");
        }
        for good in [
            "100.100.100.201",
            "168.63.129.17",
            "::1",
            "::10.0.0.1",
            "::ffff:0:8.8.8.8",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::a9fe:a9fe",
        ] {
            let ip: IpAddr = good.parse().unwrap();
            assert_eq!(refused(ip), None, "{good} must be allowed");
        }
    }

    #[test]
    fn classifies_addresses() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "2002:a9fe:a9fe::1",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(refused(ip).is_some(), "{bad} must be refused");
        }
        for good in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.10",
            "172.16.0.1",
            "100.64.0.1",
            "8.8.8.8",
            "::1",
            "fd00::1",
            "fd00:ec2::253",
            "fec0::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "2002:0a00:0001::1",
        ] {
            let ip: IpAddr = good.parse().unwrap();
            assert_eq!(refused(ip), None, "{good} must be allowed");
        }
    }

    #[test]
    fn checks_registered_urls() {
        assert_eq!(
            check_url("https://hooks.example.com/x?y=1", false).unwrap(),
            "https://hooks.example.com/x?y=1"
        );
        assert!(check_url("http://10.0.0.5:8080/hook", true).is_ok());
        for (url, allow_http, why) in [
            ("http://10.0.0.5/hook", false, "--allow-http"),
            ("ftp://h/x", true, "https://"),
            ("hooks.example.com/x", true, "https://"),
            ("https://user:pw@h/x", false, "user name"),
            ("https://169.254.169.254/latest", false, "refused address"),
            ("http://[fe80::1]/x", true, "refused address"),
            ("http://[::ffff:169.254.169.254]/x", true, "refused address"),
            ("https://h/x#frag", false, "fragment"),
        ] {
            let err = check_url(url, allow_http).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
