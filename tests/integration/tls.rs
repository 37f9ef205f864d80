//! Built-in HTTPS: served with the given pair, reloaded on SIGHUP, a bad reload keeps the
//! previous pair, and a mismatched pair stops the start.
//!
//! The fixtures are self-signed P-256 certificates for localhost and 127.0.0.1, valid for a
//! century, made with:
//! `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
//!  -keyout a.key -out a.crt -subj "/CN=scimd test a"
//!  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE"
//!  -addext "keyUsage=digitalSignature" -addext "extendedKeyUsage=serverAuth"` (webpki refuses a
//! CA certificate as a server's own).

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::common::{KillOnDrop, cli_token, log_channel, scimd, spawn_server, wait_for};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// Sends one request over TLS, trusting only the certificate in `trusted`; the raw response,
/// or the TLS error text.
fn https(addr: &str, trusted: &str, head: &str, body: &str) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(trusted).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "{head}\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    tls.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    Ok(reply)
}

fn install(dir: &Path, pair: &str) {
    std::fs::copy(fixture(&format!("{pair}.crt")), dir.join("cert.pem")).unwrap();
    std::fs::copy(fixture(&format!("{pair}.key")), dir.join("key.pem")).unwrap();
}

#[test]
fn https_serves_and_reloads_on_sighup() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("tls.db");
    let db = db.to_str().unwrap();
    let token = cli_token(db, "idp");
    install(dir.path(), "a");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let (child, addr, lines) = spawn_server(
        db,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    // Killed however the test ends: a server left running would keep the test harness waiting.
    let child = KillOnDrop(child);
    let log = log_channel(lines);
    let a = fixture("a.crt");
    let b = fixture("b.crt");

    let reply = https(&addr, &a, "GET /healthz HTTP/1.1", "").unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // Locations say https without --public-url or a proxy header.
    let head = format!("POST /scim/v2/Users HTTP/1.1\r\nAuthorization: Bearer {token}");
    let reply = https(&addr, &a, &head, r#"{"userName":"tls.user"}"#).unwrap();
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    assert!(
        reply.contains(&format!("location: https://{addr}/scim/v2/Users/")),
        "{reply}"
    );
    // The health check speaks TLS with the server's certificate file, and only accepts that
    // certificate.
    let health = |cert: &str| scimd(&["health", "--listen", &addr, "--tls-cert", cert]);
    let ok = health(cert.to_str().unwrap());
    assert!(ok.status.success(), "{ok:?}");
    assert!(!health(&b).status.success());
    assert!(!scimd(&["health", "--listen", &addr]).status.success());
    // A client that does not trust the served certificate refuses it.
    assert!(https(&addr, &b, "GET /healthz HTTP/1.1", "").is_err());
    // Plain HTTP gets no HTTP answer from the TLS port.
    let mut plain = std::net::TcpStream::connect(&addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    assert!(!raw.starts_with(b"HTTP/1.1 200"));

    // A renewed pair is served after SIGHUP, without a restart.
    install(dir.path(), "b");
    hangup(&child.0);
    wait_for(&log, "TLS certificate reloaded");
    let reply = https(&addr, &b, "GET /healthz HTTP/1.1", "").unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(https(&addr, &a, "GET /healthz HTTP/1.1", "").is_err());

    // A broken pair on reload is logged, and the previous one stays in service.
    std::fs::write(&key, "not a key").unwrap();
    hangup(&child.0);
    wait_for(&log, "TLS reload failed");
    let reply = https(&addr, &b, "GET /healthz HTTP/1.1", "").unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // A client stuck before its handshake does not hold up a stop: SIGTERM ends the server
    // well before the 10 s handshake deadline would have closed that connection.
    let _silent = std::net::TcpStream::connect(&addr).unwrap();
    // Connections are accepted in order: once this answer arrives, the silent one is in.
    let reply = https(&addr, &b, "GET /healthz HTTP/1.1", "").unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let mut child = child;
    let sent = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "an idle TLS connection held up the stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    wait_for(&log, "stopped");
}

fn hangup(child: &std::process::Child) {
    let sent = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[test]
fn a_mismatched_or_missing_pair_stops_the_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("tls.db");
    let db = db.to_str().unwrap();
    let serve = |cert: &str, key: &str| {
        let args = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ];
        let out = scimd(&args);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = serve(&fixture("a.crt"), &fixture("b.key"));
    assert!(err.contains("do not fit together"), "{err}");
    let err = serve(&fixture("a.crt"), &fixture("missing.key"));
    assert!(err.contains("TLS key"), "{err}");
    // --tls-cert alone is a usage error.
    let out = scimd(&["serve", "--db", db, "--tls-cert", &fixture("a.crt")]);
    assert!(!out.status.success());
}
