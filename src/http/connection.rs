//! "Check connection" on the Connect page: a real request from this server to the SCIM base
//! URL an identity provider is told to use, through whatever proxy, TLS or tunnel stands in
//! front of it, reporting the step that fails (DNS, connect, TLS, the answer), and warnings
//! about a URL a cloud identity provider cannot use (loopback, a private address, plain http
//! on a public name).
//!
//! The request is `GET <base>/ServiceProviderConfig` without a token: scimd answers 401 with
//! a SCIM error, which proves the URL reaches scimd's SCIM endpoint (not a proxy's page or
//! another server) without handing a secret to whatever answers. The target is our own
//! configured URL, never one a request names, so the webhook client's SSRF rules are not
//! needed; its pooled client is not either (one request, each step timed on its own).
//!
//! The request carries a mark (`x-scimd-check`: a random value this process issued for this
//! check, good once and for a minute). The server that recognises it answers the usual 401 and
//! echoes it, which tells this scimd from another one behind the URL, and leaves it out of the
//! audit log, the failed-authentication limit and the Overview's failures: an admin's click is
//! not a client failing. A value it did not issue is an ordinary unauthenticated request.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::App;
use super::router::SCIM_PREFIX;

/// The header that carries a check's mark, and echoes it in the answer.
pub const MARK_HEADER: &str = "x-scimd-check";
/// How long an issued mark is good (the check takes at most four steps of `STEP`).
const MARK_LIFETIME: Duration = Duration::from_secs(60);
/// Marks outstanding at once: checks are an admin's clicks; more are refused, not queued.
const MARKS: usize = 16;

/// The marks this process issued for checks in progress.
#[derive(Default)]
pub struct Marks(Mutex<Vec<(String, Instant)>>);

impl Marks {
    /// A new mark, or `None` when `MARKS` checks are in progress.
    fn issue(&self) -> Option<String> {
        let mut buf = [0u8; 16];
        getrandom::fill(&mut buf).ok()?;
        let mark: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        let mut marks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        marks.retain(|(_, at)| at.elapsed() < MARK_LIFETIME);
        if marks.len() >= MARKS {
            return None;
        }
        marks.push((mark.clone(), Instant::now()));
        Some(mark)
    }

    /// Whether `presented` is a mark this process issued and has not seen since (it is used
    /// up). Compared in constant time, like every secret.
    pub fn take(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let mut marks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        marks.retain(|(_, at)| at.elapsed() < MARK_LIFETIME);
        let found = marks
            .iter()
            .position(|(m, _)| bool::from(m.as_bytes().ct_eq(presented)));
        found.map(|i| marks.swap_remove(i)).is_some()
    }
}

/// Each step (resolving, connecting, the TLS handshake, the answer) gets this long.
const STEP: Duration = Duration::from_secs(5);
/// How much of an unexpected answer is quoted.
const QUOTED: usize = 200;
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The base URL the Connect page shows (what an identity provider is told), and the origin
/// the check requests: the public URL when set; else the listen address, since the name the
/// browser used may be a tunnel that only the browser's machine has.
pub fn target(app: &App, shown_origin: &str) -> (String, String) {
    let base = format!("{shown_origin}{SCIM_PREFIX}");
    if let Some(url) = &app.config.public_url {
        return (base, format!("{url}{SCIM_PREFIX}"));
    }
    let mut addr = app.local_addr;
    // Listening everywhere: this machine reaches itself on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    let scheme = if app.tls.is_some() { "https" } else { "http" };
    (base, format!("{scheme}://{addr}{SCIM_PREFIX}"))
}

/// Why a cloud identity provider (OneLogin's) cannot use `base`, if it cannot.
pub fn warnings(base: &str) -> Vec<String> {
    let Ok(uri) = base.parse::<Uri>() else {
        return vec![format!("{base} is not a valid URL")];
    };
    let host = uri.host().unwrap_or_default();
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let mut out = Vec::new();
    let loopback = literal.is_some_and(|ip| ip.to_canonical().is_loopback())
        || host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost");
    if loopback {
        out.push(format!(
            "{host} is a loopback address: only this machine reaches it, OneLogin's cloud \
             cannot. Start scimd with --public-url set to the https address it can reach \
             (a reverse proxy or a tunnel)."
        ));
    } else if literal.is_some_and(private) {
        out.push(format!(
            "{host} is a private address: OneLogin's cloud cannot reach it. Set --public-url \
             to the https address it can reach (a reverse proxy or a tunnel)."
        ));
    } else if uri.scheme_str() == Some("http") && literal.is_none() && public_name(host) {
        out.push(format!(
            "{base} is plain http on a public name: OneLogin requires https. Put scimd behind \
             an HTTPS reverse proxy (or use --tls-cert) and set --public-url to the https URL."
        ));
    }
    out
}

fn private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
        }
    }
}

/// A name the internet might resolve: dotted, and not a local-only suffix.
fn public_name(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host.contains('.')
        && ![".local", ".lan", ".internal", ".home.arpa", ".localdomain"]
            .iter()
            .any(|s| host.ends_with(s))
}

/// What the check came to, as the console shows it.
#[derive(Debug)]
struct Outcome {
    /// The step that failed (`dns`, `connect`, `tls`, `status`), if one did.
    failed: Option<&'static str>,
    status: Option<u16>,
    message: String,
}

/// Runs the check against `target` (a SCIM base URL) and describes it for the console, with
/// the warnings about `base` (the URL an identity provider is told).
pub async fn check(marks: &Marks, base: &str, target: &str) -> Value {
    let outcome = match marks.issue() {
        Some(mark) => run(target, &mark).await,
        None => failed(
            "busy",
            format!("{MARKS} checks are already running: try again in a minute"),
        ),
    };
    json!({
        "ok": outcome.failed.is_none(),
        "baseUrl": base,
        "checkedUrl": format!("{target}/ServiceProviderConfig"),
        "failed": outcome.failed,
        "status": outcome.status,
        "message": outcome.message,
        "warnings": warnings(base),
    })
}

fn failed(step: &'static str, message: String) -> Outcome {
    Outcome {
        failed: Some(step),
        status: None,
        message,
    }
}

async fn run(target: &str, mark: &str) -> Outcome {
    let url = format!("{target}/ServiceProviderConfig");
    let uri: Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return failed("url", format!("{url} is not a valid URL: {e}")),
    };
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return failed("url", format!("{url} is not an http(s) URL")),
    };
    let Some(host) = uri.host().map(str::to_string) else {
        return failed("url", format!("{url} names no host"));
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();

    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(STEP, tokio::net::lookup_host((bare.as_str(), port))).await {
            Err(_) => return failed("dns", format!("DNS: no answer for {host} within {STEP:?}")),
            Ok(Err(e)) => return failed("dns", format!("DNS: cannot resolve {host}: {e}")),
            Ok(Ok(found)) => found.collect(),
        };
    let mut tcp = None;
    let mut errors = Vec::new();
    for addr in &addrs {
        match tokio::time::timeout(STEP, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => errors.push(format!("{addr}: {e}")),
            Err(_) => errors.push(format!("{addr}: no answer within {STEP:?}")),
        }
    }
    let Some(tcp) = tcp else {
        return failed(
            "connect",
            format!("cannot connect to {host}:{port} ({})", errors.join("; ")),
        );
    };
    let authority = uri
        .authority()
        .map_or_else(|| host.clone(), |a| a.to_string());
    let request = match Request::get(uri.clone())
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/scim+json")
        .header(MARK_HEADER, mark)
        .header(
            header::USER_AGENT,
            concat!("scimd/", env!("CARGO_PKG_VERSION"), " connection-check"),
        )
        .body(Empty::<Bytes>::new())
    {
        Ok(r) => r,
        Err(e) => return failed("url", format!("{url}: {e}")),
    };
    if !https {
        return exchange(tcp, request, &url, mark).await;
    }
    let config = match tls_config() {
        Ok(c) => c,
        Err(e) => return failed("tls", format!("TLS: {e}")),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = match rustls_pki_types::ServerName::try_from(bare.clone()) {
        Ok(n) => n,
        Err(e) => return failed("tls", format!("TLS: {host} is no server name: {e}")),
    };
    match tokio::time::timeout(STEP, connector.connect(name, tcp)).await {
        Err(_) => failed(
            "tls",
            format!("TLS: no handshake with {host} within {STEP:?}"),
        ),
        Ok(Err(e)) => failed("tls", format!("TLS handshake with {host} failed: {e}")),
        Ok(Ok(stream)) => exchange(stream, request, &url, mark).await,
    }
}

/// The system's certificate authorities: what an identity provider's cloud trusts too.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

async fn exchange<S>(stream: S, request: Request<Empty<Bytes>>, url: &str, mark: &str) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let answer = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let ours = resp
            .headers()
            .get(MARK_HEADER)
            .is_some_and(|v| v.as_bytes() == mark.as_bytes());
        let mut body = resp.into_body();
        let mut kept = Vec::new();
        // Enough to see a SCIM error; a huge answer is not read.
        while kept.len() < 4096 {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        kept.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => break,
            }
        }
        Ok::<_, String>((status, kept, ours))
    };
    let (status, body, ours) = match tokio::time::timeout(STEP, answer).await {
        Err(_) => return failed("status", format!("{url} sent no answer within {STEP:?}")),
        Ok(Err(e)) => return failed("status", format!("{url}: the exchange failed: {e}")),
        Ok(Ok(a)) => a,
    };
    let mut outcome = judge(status, &body, url);
    if outcome.failed.is_none() && !ours {
        outcome.message.push_str(
            " It did not carry this check's mark, though: another scimd may be answering at \
             this URL.",
        );
    }
    outcome
}

/// Whether an unauthenticated `ServiceProviderConfig` answer is scimd's: a 401 SCIM error (or
/// a 200 discovery document, should something in front add credentials).
fn judge(status: StatusCode, body: &[u8], url: &str) -> Outcome {
    let doc: Option<Value> = serde_json::from_slice(body).ok();
    let schemas = doc
        .as_ref()
        .and_then(|d| d.get("schemas"))
        .map(Value::to_string)
        .unwrap_or_default();
    let code = status.as_u16();
    if code == 401 && schemas.contains(ERROR_URN) {
        return Outcome {
            failed: None,
            status: Some(code),
            message: format!(
                "{url} answered 401 with a SCIM error: scimd is there and asks for the bearer \
                 token, as OneLogin's Enable expects."
            ),
        };
    }
    // The address the check comes from failed to authenticate too often lately (checks
    // clicked in a row, or a client with a wrong token behind the same proxy): still scimd.
    if code == 429 && schemas.contains(ERROR_URN) {
        return Outcome {
            failed: None,
            status: Some(code),
            message: format!(
                "{url} answered 429 with a SCIM error: scimd is there, and has seen too many \
                 failed authentications from this server's address in the last minute."
            ),
        };
    }
    if code == 200 && schemas.contains("ServiceProviderConfig") {
        return Outcome {
            failed: None,
            status: Some(code),
            message: format!("{url} answered 200 with scimd's ServiceProviderConfig."),
        };
    }
    let start: String = String::from_utf8_lossy(body).chars().take(QUOTED).collect();
    let why = if status.is_redirection() {
        "a redirect (identity providers do not follow them: give the final URL)"
    } else if code == 401 || code == 200 {
        "not a SCIM answer: something other than scimd answers there"
    } else if code == 404 {
        "not found: the proxy or tunnel does not pass /scim/v2 on to scimd"
    } else if status.is_server_error() {
        "a server error: the proxy or tunnel cannot reach scimd"
    } else {
        "not what scimd answers"
    };
    Outcome {
        failed: Some("status"),
        status: Some(code),
        message: format!("{url} answered HTTP {code}, {why}. It began: {start:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_a_cloud_cannot_use_are_named() {
        for base in [
            "http://127.0.0.1:8080/scim/v2",
            "http://localhost:8080/scim/v2",
            "http://[::1]:8080/scim/v2",
        ] {
            let w = warnings(base);
            assert!(w.len() == 1 && w[0].contains("loopback"), "{base}: {w:?}");
        }
        assert!(warnings("http://192.168.1.5:8080/scim/v2")[0].contains("private"));
        assert!(warnings("http://scim.example.com/scim/v2")[0].contains("https"));
        assert!(warnings("https://scim.example.com/scim/v2").is_empty());
        assert!(warnings("http://scimd.lan:8080/scim/v2").is_empty());
        assert!(warnings("https://203.0.113.7/scim/v2").is_empty());
    }

    #[test]
    fn only_scimds_answer_passes() {
        let error =
            br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401"}"#;
        assert!(judge(StatusCode::UNAUTHORIZED, error, "u").failed.is_none());
        assert!(
            judge(StatusCode::TOO_MANY_REQUESTS, error, "u")
                .failed
                .is_none()
        );
        let other = judge(StatusCode::UNAUTHORIZED, b"<html>login</html>", "u");
        assert_eq!(other.failed, Some("status"));
        let missing = judge(StatusCode::NOT_FOUND, b"nope", "u");
        assert!(missing.message.contains("404"), "{}", missing.message);
        assert!(
            missing.message.contains("does not pass"),
            "{}",
            missing.message
        );
    }
}
