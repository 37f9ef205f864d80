//! Test harness: start and stop a real server, send requests, read JSON.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use scimd::config::Config;
use scimd::service::tokens;
use scimd::store::Store;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub struct Server {
    pub addr: SocketAddr,
    pub token: String,
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<scimd::error::Result<()>>>,
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts this is a SCIM error with `status` and, if given, `scimType`.
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        assert_eq!(body["schemas"], serde_json::json!([ERROR_URN]), "{body}");
        assert_eq!(body["status"], Value::String(status.to_string()), "{body}");
        match scim_type {
            Some(t) => assert_eq!(body["scimType"], t, "{body}"),
            None => assert!(body.get("scimType").is_none(), "{body}"),
        }
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
        body
    }
}

impl Server {
    pub async fn start() -> Server {
        Self::start_in(TempDir::new().unwrap(), |c| c).await
    }

    /// Starts a server on the database in `dir` (created if new), with a fresh token.
    pub async fn start_in(dir: TempDir, configure: impl FnOnce(Config) -> Config) -> Server {
        let db = db_path(&dir);
        let token = {
            let store = Store::open(&db).unwrap();
            tokens::create(&store, &format!("test-{}", uuid_like())).unwrap()
        };
        let config = configure(Config::new(db));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(scimd::run(config, listener, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            token,
            dir,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Tells the server to stop, without waiting for it.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Stops the server gracefully and hands back its directory, to restart on it.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let dir = TempDir::new().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn db(&self) -> PathBuf {
        db_path(&self.dir)
    }

    /// Sends a request with the server's token.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        let auth = format!("Bearer {}", self.token);
        self.raw(method, path, &[("authorization", &auth)], body)
            .await
    }

    /// Sends a request with exactly the given headers.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        self.send_on(stream, method, path, headers, body).await
    }

    /// `raw`, from the loopback source address `from` (any of 127.0.0.0/8): one of many
    /// clients, for limits kept per client address.
    pub async fn raw_from(
        &self,
        from: std::net::IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let stream = connect_from(from, self.addr).await.unwrap();
        self.send_on(stream, method, path, headers, body).await
    }

    async fn send_on(
        &self,
        stream: TcpStream,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.call("POST", path, Some(&body.to_string())).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.call("PUT", path, Some(&body.to_string())).await
    }
    /// PATCH with a PatchOp body holding `operations`.
    pub async fn patch(&self, path: &str, operations: &Value) -> Resp {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        });
        self.call("PATCH", path, Some(&body.to_string())).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, None).await
    }

    /// Creates a user and returns its representation, asserting 201.
    pub async fn create_user(&self, body: &Value) -> Value {
        let r = self.post("/scim/v2/Users", body).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// Creates a group and returns its representation, asserting 201.
    pub async fn create_group(&self, body: &Value) -> Value {
        let r = self.post("/scim/v2/Groups", body).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// `GET /Users?filter=…` (the filter is URL-encoded here) → the ListResponse.
    pub async fn filter(&self, endpoint: &str, filter: &str) -> Value {
        let r = self
            .get(&format!("/scim/v2/{endpoint}?{}", filter_query(filter)))
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The `n`th of many loopback client addresses: 127.1.0.1, 127.1.0.2, … (never 127.0.0.1,
/// which the test itself uses as the legitimate client).
pub fn loopback_client(n: u32) -> std::net::IpAddr {
    let n = n + 1;
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        127,
        1 + (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8,
    ))
}

/// A TCP connection to `to` from the local address `from` (Linux routes all of 127.0.0.0/8
/// to loopback, so each address is a distinct client to the server).
pub async fn connect_from(from: std::net::IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match from {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// `filter=<filter>`, URL-encoded for a query string.
pub fn filter_query(filter: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", filter)
        .finish()
}

pub fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("scimd.db")
}

fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

pub fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("resource has an id").to_string()
}

/// The ids of a ListResponse's resources, in order.
pub fn ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .expect("Resources array")
        .iter()
        .map(id_of)
        .collect()
}

/// Runs the `scimd` binary (no `SCIMD_DB` from the environment) and waits for it.
pub fn scimd(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(args)
        .env_remove("SCIMD_DB")
        .output()
        .expect("run scimd")
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Creates the database at `db` as `scimd serve` does on first start (the other commands
/// only manage an existing one); one already there is left as it is.
pub fn new_db(db: &str) {
    drop(Store::open(std::path::Path::new(db)).unwrap());
}

/// Creates a token with the command line, as an admin would (on a new database, after the
/// first start: `new_db`); returns it.
pub fn cli_token(db: &str, name: &str) -> String {
    new_db(db);
    let out = scimd(&["token", "create", "--name", name, "--db", db]);
    assert!(out.status.success(), "{out:?}");
    stdout(&out).lines().last().unwrap_or_default().to_string()
}

/// The log of a server started by `spawn_server`, from after its start-up line.
pub type LogLines = std::io::Lines<std::io::BufReader<std::process::ChildStderr>>;

/// Starts `scimd serve` on a free port with `extra` arguments, logging at info to a pipe;
/// returns the process and its whole log, start-up lines included.
pub fn spawn_scimd(db: &str, extra: &[&str]) -> (std::process::Child, LogLines) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
        .args(extra)
        .env("SCIMD_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines)
}

/// `spawn_scimd`, then waits for the start-up line; returns the process, its address and the
/// rest of its log.
pub fn spawn_server(db: &str, extra: &[&str]) -> (std::process::Child, String, LogLines) {
    let (child, mut lines) = spawn_scimd(db, extra);
    // The start-up line names the bound address.
    let addr = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        if let Some(rest) = line.split("listen=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    (child, addr, lines)
}

/// Sends one HTTP/1.1 request (`head` is the request line and any headers) on a fresh
/// connection and returns the raw response, waiting at most `wait` for each read.
pub fn http_once(addr: &str, head: &str, body: &str, wait: Duration) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(wait))?;
    write!(
        conn,
        "{head}\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)?;
    Ok(reply)
}

/// Forwards the server's log lines to a channel, so a test can wait for one with a deadline.
pub fn log_channel(lines: LogLines) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits up to 20 s for a log line containing `needle`; the lines before it are consumed.
pub fn wait_for(log: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        match log.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {needle:?}: {e}"),
        }
    }
}

/// A spawned server, killed however the test ends: one left running would keep the test
/// harness waiting on its output.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
