//! The `scimd` command: parse the command line, then serve or manage tokens.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use scimd::config::{
    Config, DEFAULT_EVENT_RETENTION_DAYS, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, Listen,
};
use scimd::service::tokens;
use scimd::store::Store;

/// A self-hosted SCIM 2.0 server: identity providers such as OneLogin, Okta or Entra ID push
/// users and groups to it, and it keeps them in one SQLite file.
///
/// Run `scimd` (or `scimd serve`) to start the server, and `scimd token create --name NAME` to
/// make the bearer token your identity provider will use.
#[derive(Parser)]
#[command(name = "scimd", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve SCIM 2.0 at <listen>/scim/v2 (the default command).
    Serve(ServeArgs),
    /// Create, list and revoke the bearer tokens SCIM clients authenticate with.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the administrators of the web console.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Declare, list and remove extension schemas (RFC 7643 §7 documents). A running scimd
    /// picks changes up within seconds; stored values are never changed or removed.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Add, list, test, rotate, resume and remove webhook endpoints: signed POSTs of every
    /// change (Standard Webhooks). A running scimd picks changes up within seconds.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Write a consistent copy of the database to FILE, also while scimd is serving it.
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
    /// Replace the database with the backup FILE, after checking it (scimd must be stopped).
    /// The replaced database is kept as <db>.before-restore (numbered if that exists).
    Restore {
        /// The backup to restore.
        file: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
    /// Check the database: SQLite's integrity check, references, the schema version, and the
    /// uniqueness keys of userName and group displayName.
    Check {
        /// First recompute the uniqueness keys (and folded email rows) that are not what this
        /// scimd computes (left by an older scimd or older Unicode data). scimd must be stopped.
        #[arg(long)]
        repair_keys: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Ask a running scimd on this machine whether it is healthy (GET /healthz); exit status
    /// 0 if so. For container health checks, where there is no curl. Reads SCIMD_LISTEN and
    /// SCIMD_TLS_CERT like `serve`.
    Health {
        /// The address scimd listens on (an unspecified address such as 0.0.0.0 means this
        /// machine).
        #[arg(long, env = "SCIMD_LISTEN", default_value = "127.0.0.1:8080", value_parser = Listen::parse)]
        listen: Listen,
        /// With built-in TLS: the server's certificate file. The check speaks HTTPS and
        /// accepts only that certificate.
        #[arg(long, env = "SCIMD_TLS_CERT")]
        tls_cert: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator, or set a new password for one (ending its sessions). The
    /// password is asked for at a terminal (not shown as typed), or read from standard input
    /// (one line) when piped in; never from the command line.
    SetPassword {
        /// The administrator's username.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Print a fresh one-time link to create the first administrator (only while there is
    /// none; valid for an hour; earlier links stop working), one line for each address a
    /// browser can open it at, the first to try first. Reads SCIMD_LISTEN, SCIMD_PUBLIC_URL
    /// and SCIMD_TLS_CERT like `serve`.
    SetupLink {
        /// The address scimd listens on (as `serve --listen`).
        #[arg(long, env = "SCIMD_LISTEN", default_value = "127.0.0.1:8080", value_parser = Listen::parse)]
        listen: Listen,
        /// The console's origin as the browser reaches it, e.g. https://scim.example.com
        /// (as `serve --public-url`).
        #[arg(long, env = "SCIMD_PUBLIC_URL")]
        public_url: Option<String>,
        /// With built-in TLS: the server's certificate file (only whether there is one
        /// matters: the links are https).
        #[arg(long, env = "SCIMD_TLS_CERT")]
        tls_cert: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the administrators: name, created, last sign-in, two-factor sign-in on or off.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove an administrator and end its sessions (never the last one).
    Remove {
        /// The administrator's username.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Declare the extension schema in FILE (an RFC 7643 §7 schema document, at most 64 KiB),
    /// or change the declaration with its id.
    Add {
        /// The schema document (JSON).
        file: PathBuf,
        /// The resource type it extends: User or Group. Default: Group if the schema's id
        /// ends in ":Group", else User.
        #[arg(long)]
        resource_type: Option<String>,
        /// Resources of that type must carry the extension (`schemaExtensions[].required`).
        #[arg(long)]
        required: bool,
        /// Attributes to index for frequent lookups, comma-separated (`badgeNumber`,
        /// `sshKeys.value`); attributes with uniqueness server/global are always indexed.
        /// `--index ""` indexes none; without it, a changed declaration keeps its list.
        #[arg(long)]
        index: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List declared extension schemas: id, resource type, required, attributes, indexes.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove the declaration of URN. Values stored under it stay in the users' and groups'
    /// documents, undeclared (kept and returned as sent).
    Remove {
        /// The schema's id.
        urn: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Register an endpoint; it receives the changes committed from now on. Prints its
    /// signing secret (whsec_…) once, alone on the last line.
    Add {
        /// A name for the endpoint: letters, digits, '-', '_', '.'.
        #[arg(long)]
        name: String,
        /// Where to POST: https://… (http://… only with --allow-http).
        #[arg(long)]
        url: String,
        /// Only these event types, comma-separated (default: all), e.g.
        /// user.deactivated,user.deleted.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// standard: the event JSON; chat: {"text": "…"} for Slack, Mattermost and the like.
        #[arg(long, default_value = "standard", value_parser = ["standard", "chat"])]
        format: String,
        /// Allow plain http (a receiver on the LAN); deliveries are still signed.
        #[arg(long)]
        allow_http: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// List endpoints: URL, format, events, state, and how far behind each one is.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove an endpoint (with its secrets and delivery log).
    Remove {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Send a test event to an endpoint now and print what came of it.
    Test {
        name: String,
        /// PEM certificate authorities to trust besides the system's (as `serve`).
        #[arg(long, env = "SCIMD_WEBHOOK_CA_FILE")]
        webhook_ca_file: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Give an endpoint a new signing secret (printed once, alone on the last line); the old
    /// one keeps signing beside it during the overlap.
    Rotate {
        name: String,
        /// How long the old secret keeps signing: none, 1h or 24h.
        #[arg(long, default_value = "24h", value_parser = ["none", "1h", "24h"])]
        overlap: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Resume a paused endpoint: it gets everything it missed (within event retention).
    Resume {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Args)]
struct DbArg {
    /// The SQLite database file. `serve` creates it if there is none; the other commands
    /// need it to exist.
    #[arg(long, env = "SCIMD_DB", default_value = "./scimd.db")]
    db: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// Address and port to listen on. Use 0.0.0.0:8080 to accept connections from the LAN; a
    /// name (localhost:8080) is resolved and its first address this machine has is used.
    #[arg(long, env = "SCIMD_LISTEN", default_value = "127.0.0.1:8080", value_parser = Listen::parse)]
    listen: Listen,
    #[command(flatten)]
    db: DbArg,
    /// Externally visible origin, e.g. https://scim.example.com, used in `meta.location` and
    /// `Location` headers. Without it, the origin comes from each request's Host header.
    #[arg(long, env = "SCIMD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Log filter: error, warn, info, debug or trace (tracing-subscriber EnvFilter syntax).
    #[arg(long, env = "SCIMD_LOG", default_value = "info")]
    log: String,
    /// Log line format: text (for people) or json (one JSON object per line, for collectors).
    #[arg(long, env = "SCIMD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "SCIMD_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Connections served at once. At the cap, an address holding more than its fair share
    /// closes one to make room; else a new one is answered 503 and closed (with TLS, closed).
    #[arg(long, env = "SCIMD_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Trust X-Forwarded-For, -Proto and -Host: only behind a reverse proxy that sets them.
    #[arg(long, env = "SCIMD_TRUST_PROXY")]
    trust_proxy: bool,
    /// Serve Prometheus metrics at /metrics to requests bearing this token (prefer the
    /// environment variable: command lines are visible to other users).
    #[arg(long, env = "SCIMD_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Commit concurrent writes together (one fsync for many): on, or off to give each write
    /// its own transaction. Durability is the same either way.
    #[arg(long, env = "SCIMD_GROUP_COMMIT", default_value = "on", value_parser = ["on", "off"])]
    group_commit: String,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key). Send SIGHUP to reload
    /// the certificate and key after a renewal.
    #[arg(long, env = "SCIMD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "SCIMD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Days change events are kept for the feed (/api/v1/events) and webhooks; also at most
    /// 1,000,000 events and 256 MiB, oldest first. A consumer further behind gets 410.
    #[arg(long, env = "SCIMD_EVENT_RETENTION", value_name = "DAYS",
          default_value_t = DEFAULT_EVENT_RETENTION_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    event_retention: u32,
    /// PEM certificate authorities webhook deliveries trust besides the system's (an
    /// internal CA of LAN receivers).
    #[arg(long, env = "SCIMD_WEBHOOK_CA_FILE")]
    webhook_ca_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once (alone on the last line). Only a digest is stored:
    /// copy it now.
    Create {
        /// A name to recognise the token by, e.g. "onelogin".
        #[arg(long)]
        name: String,
        /// What the token may do: `write` is what an identity provider needs; `read` may look
        /// up users and groups and follow the change feed, never change anything.
        #[arg(long, default_value = "write", value_parser = ["read", "write"])]
        scope: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List tokens: name, scope, created, last used (never the secret).
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke the live token called NAME; clients using it get 401 at once.
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Token(cmd)) => token(cmd),
        Some(Command::Admin(cmd)) => admin(cmd),
        Some(Command::Schema(cmd)) => schema(cmd),
        Some(Command::Webhook(cmd)) => webhook(cmd),
        Some(Command::Backup { file, db }) => backup(&db.db, &file),
        Some(Command::Restore { file, db }) => restore(&file, &db.db),
        Some(Command::Check { db, repair_keys }) => check(&db.db, repair_keys),
        Some(Command::Health { listen, tls_cert }) => health(&listen, tls_cert.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scimd: {e}");
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

fn serve(args: ServeArgs) -> CliResult {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .map_err(|e| format!("invalid --log value \"{}\": {e}", args.log))?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    let mut config = Config::new(args.db.db).with_public_url(args.public_url.as_deref())?;
    config.max_body_bytes = args.max_body_bytes;
    config.max_connections = args.max_connections.max(1);
    config.trust_proxy = args.trust_proxy;
    config.metrics_token = args.metrics_token.filter(|t| !t.is_empty());
    config.group_commit = args.group_commit == "on";
    config.event_retention.max_age_days = args.event_retention;
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(scimd::config::TlsFiles { cert, key }),
        _ => None,
    };
    config.webhooks.ca_file = args.webhook_ca_file;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = bind(&args.listen).await?;
        scimd::run(config, listener, shutdown_signal()).await?;
        Ok(())
    })
}

/// A listener on the first of `listen`'s addresses that this machine has (`localhost` is
/// often both 127.0.0.1 and ::1, and either serves a browser; IPv6 may be off). Any other
/// failure, such as a port in use, stops there. The error says what to do.
async fn bind(listen: &Listen) -> Result<tokio::net::TcpListener, String> {
    let mut last = None;
    for addr in &listen.addrs {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                last = Some((*addr, e));
            }
            Err(e) => {
                last = Some((*addr, e));
                break;
            }
        }
    }
    let Some((addr, e)) = last else {
        return Err(format!("--listen {listen} names no address"));
    };
    let fix = match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "another program (perhaps another scimd) listens on port {}: stop it, or choose \
             another port with --listen",
            addr.port()
        ),
        std::io::ErrorKind::PermissionDenied => "ports below 1024 need root or \
             CAP_NET_BIND_SERVICE: use a port such as 8080 (and a reverse proxy for 443)"
            .into(),
        std::io::ErrorKind::AddrNotAvailable => "that address is not one of this machine's: \
             use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
            .into(),
        _ => "check --listen (SCIMD_LISTEN)".into(),
    };
    Err(format!(
        "cannot listen on {addr} (--listen {listen}): {e}; {fix}"
    ))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop). The handlers are installed
/// here, before the server starts: installed when the future is first polled, a SIGTERM that
/// came right after the start-up line (a quick `systemctl stop`) met the default action and
/// killed the process instead of stopping it cleanly.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt()).ok();
    let term = signal(SignalKind::terminate()).ok();
    async move {
        // A handler that could not be installed never resolves; the other still stops us.
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(int) => {},
            () = wait(term) => {},
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The existing database at `db`, for a command that manages one (only `serve` creates a
/// database): its real path, named on stderr so it is plain which file a command used.
fn existing_db(db: &std::path::Path) -> Result<PathBuf, String> {
    match std::fs::canonicalize(db) {
        Ok(real) if real.is_file() => {
            eprintln!("scimd: database {}", real.display());
            Ok(real)
        }
        Ok(real) => Err(format!("{} is not a database file", real.display())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot reach {}: {e}", db.display()))
        }
        Err(_) => {
            let here = std::env::current_dir()
                .map(|d| format!(" (the current directory is {})", d.display()))
                .unwrap_or_default();
            Err(format!(
                "no database at {}{here}: pass the one `scimd serve` uses with --db PATH or \
                 SCIMD_DB=PATH (only `scimd serve` creates a database)",
                db.display()
            ))
        }
    }
}

/// `existing_db`, opened.
fn open_db(db: &std::path::Path) -> Result<Store, Box<dyn std::error::Error>> {
    Ok(Store::open_for_command(&existing_db(db)?)?)
}

fn backup(db: &std::path::Path, file: &std::path::Path) -> CliResult {
    let db = &existing_db(db)?;
    let h = scimd::store::maintenance::backup(db, file)?;
    println!(
        "Backed up {} to {} ({} users, {} groups; check ok).",
        db.display(),
        file.display(),
        h.users,
        h.groups
    );
    Ok(())
}

fn restore(file: &std::path::Path, db: &std::path::Path) -> CliResult {
    let done = scimd::store::maintenance::restore(file, db)?;
    let kept = match (&done.kept, &done.damaged) {
        (Some(aside), Some(why)) => format!(
            "The previous database could not be read ({why}); it is kept as it was, as {} \
             (with its -wal and -shm, if it had them, beside it under that name).",
            aside.display()
        ),
        (Some(aside), None) => format!("The previous database is kept as {}.", aside.display()),
        (None, _) => "There was no database there before.".into(),
    };
    println!(
        "Restored {} from {} ({} users, {} groups). {kept}",
        done.db.display(),
        file.display(),
        done.health.users,
        done.health.groups,
    );
    Ok(())
}

fn check(db: &std::path::Path, repair_keys: bool) -> CliResult {
    let db = &existing_db(db)?;
    if repair_keys {
        let done = scimd::store::keys::repair_keys(db)?;
        println!(
            "Recomputed the uniqueness keys of {} userName and {} displayName values, and the \
             email rows of {} users.",
            done.users, done.groups, done.emails
        );
    }
    let mut h = scimd::store::maintenance::check(db)?;
    if h.problems.is_empty() {
        // Names that share a key, stale keys: for the operator, though backup and restore
        // take a database that has them.
        match scimd::store::keys::report(db) {
            Ok(lines) => h.problems.extend(lines),
            Err(e) => h.problems.push(format!("cannot compare names: {e}")),
        }
        // Webhook endpoints that lost events to retention: likewise not a reason to refuse
        // a backup.
        match scimd::store::webhooks::gap_report(db) {
            Ok(lines) => h.problems.extend(lines),
            Err(e) => h
                .problems
                .push(format!("cannot read the webhook endpoints: {e}")),
        }
    }
    println!(
        "{}: schema version {}, {} users, {} groups",
        db.display(),
        h.schema_version,
        h.users,
        h.groups
    );
    if h.problems.is_empty() {
        println!("ok");
        Ok(())
    } else {
        for p in &h.problems {
            println!("problem: {p}");
        }
        Err(format!("{} problem(s) found", h.problems.len()).into())
    }
}

fn health(listen: &Listen, tls_cert: Option<&std::path::Path>) -> CliResult {
    use std::io::{Read, Write};
    use std::time::Duration;
    let timeout = Duration::from_secs(5);
    // The first of the listen addresses that answers (`localhost` may be ::1 or 127.0.0.1).
    let mut reached = Err(format!("cannot reach scimd at {listen}"));
    for mut addr in listen.addrs.iter().copied() {
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(conn) => {
                reached = Ok((addr, conn));
                break;
            }
            Err(e) => reached = Err(format!("cannot reach scimd at {addr}: {e}")),
        }
    }
    let (addr, conn) = reached?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    let mut stream: Box<dyn ReadWrite> = match tls_cert {
        None => Box::new(conn),
        Some(cert) => {
            let config = scimd::http::tls::pinned_client(cert)?;
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            let client = rustls::ClientConnection::new(std::sync::Arc::new(config), name)?;
            Box::new(rustls::StreamOwned::new(client, conn))
        }
    };
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut reply)
        .map_err(|e| format!("no answer from scimd at {addr}: {e}"))?;
    let reply = String::from_utf8_lossy(&reply);
    let status = reply.lines().next().unwrap_or_default();
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    if status.starts_with("HTTP/1.1 200") {
        println!("ok {body}");
        Ok(())
    } else {
        Err(format!("unhealthy: {status} {body}").into())
    }
}

/// A plain or TLS connection, for `health`.
trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

fn admin(cmd: AdminCommand) -> CliResult {
    match cmd {
        AdminCommand::SetPassword { username, db } => {
            let store = open_db(&db.db)?;
            let password = if std::io::stdin().is_terminal() {
                // Typed at a terminal: not echoed, so asked twice.
                let first = rpassword::prompt_password(format!("Password for {username}: "))?;
                let again = rpassword::prompt_password("The same password again: ")?;
                if first != again {
                    return Err("the two passwords differ: nothing was changed".into());
                }
                first
            } else {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            };
            scimd::service::admin::set_password(&store, &username, &password)?;
            println!("Password set for administrator \"{username}\".");
        }
        AdminCommand::SetupLink {
            listen,
            public_url,
            tls_cert,
            db,
        } => {
            // As `serve` checks and normalises it, before a code is made.
            let public_url = Config::new(db.db.clone())
                .with_public_url(public_url.as_deref())?
                .public_url;
            let store = open_db(&db.db)?;
            match scimd::service::admin::new_setup_code(&store)? {
                Some(code) => {
                    let origins = scimd::config::console_origins(
                        public_url.as_deref(),
                        listen.addrs[0],
                        tls_cert.is_some(),
                    );
                    for origin in origins {
                        println!("{}", scimd::http::setup_link(&origin, &code));
                    }
                }
                None => {
                    return Err("an administrator exists already: sign in, or use \
                                `scimd admin set-password`"
                        .into());
                }
            }
        }
        AdminCommand::List { db } => admin_list(&db.db)?,
        AdminCommand::Remove { username, db } => admin_remove(&db.db, &username)?,
    }
    Ok(())
}

/// `scimd admin list`.
fn admin_list(db: &std::path::Path) -> CliResult {
    let store = open_db(db)?;
    let all = scimd::service::administrators::list_sync(&store)?;
    if all.is_empty() {
        println!("No administrators yet: open the setup link from scimd's log.");
        return Ok(());
    }
    println!(
        "{:<24} {:<26} {:<26} 2FA",
        "USERNAME", "CREATED", "LAST SIGN-IN"
    );
    for a in all {
        let last = a.last_sign_in.as_deref().unwrap_or("never");
        let totp = if a.totp { "on" } else { "off" };
        println!("{:<24} {:<26} {:<26} {totp}", a.username, a.created, last);
    }
    Ok(())
}

/// `scimd admin remove`.
fn admin_remove(db: &std::path::Path, username: &str) -> CliResult {
    let store = open_db(db)?;
    let removed = scimd::service::administrators::remove_sync(&store, username)?;
    println!("Removed administrator \"{removed}\"; its sessions have ended.");
    Ok(())
}

fn token(cmd: TokenCommand) -> CliResult {
    match cmd {
        TokenCommand::Create { name, scope, db } => {
            let scope: tokens::Scope = scope.parse()?;
            let store = open_db(&db.db)?;
            let actor = scimd::service::audit::Actor::cli();
            let secret = tokens::create_as(&store, &name, scope, &actor)?;
            println!(
                "Created {} token \"{name}\". Copy it now: it is not shown again.",
                scope.as_str()
            );
            println!("{secret}");
        }
        TokenCommand::List { db } => {
            let store = open_db(&db.db)?;
            let all = tokens::list(&store)?;
            if all.is_empty() {
                println!("No tokens yet. Create one with: scimd token create --name NAME");
            } else {
                println!(
                    "{:<24} {:<6} {:<26} {:<26} STATUS",
                    "NAME", "SCOPE", "CREATED", "LAST USED"
                );
                for t in all {
                    let status = match &t.revoked {
                        Some(at) => format!("revoked {at}"),
                        None => "live".into(),
                    };
                    let last = t.last_used.as_deref().unwrap_or("never");
                    println!(
                        "{:<24} {:<6} {:<26} {:<26} {status}",
                        t.name,
                        t.scope.as_str(),
                        t.created,
                        last
                    );
                }
            }
        }
        TokenCommand::Revoke { name, db } => {
            let store = open_db(&db.db)?;
            tokens::revoke(&store, &name)?;
            println!("Revoked token \"{name}\".");
        }
    }
    Ok(())
}

fn webhook(cmd: WebhookCommand) -> CliResult {
    use scimd::service::audit::Actor;
    use scimd::webhooks;
    match cmd {
        WebhookCommand::Add {
            name,
            url,
            events,
            format,
            allow_http,
            db,
        } => {
            let store = open_db(&db.db)?;
            let types: Vec<String> = events
                .iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            let add = webhooks::Add {
                name: &name,
                url: &url,
                types: &types,
                format: &format,
                allow_http,
            };
            let (endpoint, secret) = webhooks::add(&store, &add, &Actor::cli())?;
            println!(
                "Added webhook \"{}\" -> {} ({} format, {}). Its signing secret follows; \
                 copy it now: it is not shown again.",
                endpoint.name,
                endpoint.url,
                endpoint.format,
                events_label(&endpoint.types)
            );
            println!("{secret}");
        }
        WebhookCommand::List { db } => {
            let store = open_db(&db.db)?;
            let all = webhooks::list(&store)?;
            if all.is_empty() {
                println!("No webhooks. Add one with: scimd webhook add --name NAME --url URL");
            }
            for s in all {
                let e = &s.endpoint;
                let lag = if s.pending >= webhooks::LAG_CAP {
                    format!("{}+", webhooks::LAG_CAP)
                } else {
                    s.pending.to_string()
                };
                println!(
                    "{} {} ({} format, {})",
                    e.name,
                    e.url,
                    e.format,
                    events_label(&e.types)
                );
                println!(
                    "  state {}, delivered up to event {}, {lag} waiting{}",
                    e.state,
                    e.cursor,
                    s.oldest_pending_at
                        .as_deref()
                        .map(|at| format!(" (oldest from {at})"))
                        .unwrap_or_default()
                );
                if let Some((first, last)) = s.pruned {
                    let reason = webhooks::gap_reason(first, last);
                    if e.last_error.as_deref() != Some(reason.as_str()) {
                        println!("  {reason}");
                    }
                }
                if let Some(at) = &e.last_attempt_at {
                    let what = match (&e.last_error, e.last_status) {
                        (Some(err), _) => err.clone(),
                        (None, Some(status)) => format!("HTTP {status}"),
                        (None, None) => "?".into(),
                    };
                    println!("  last attempt {at}: {what}");
                }
                if e.state != "healthy" && e.head_attempts > 0 {
                    println!(
                        "  {} failed attempts{}",
                        e.head_attempts,
                        e.next_attempt_at
                            .as_deref()
                            .map(|t| format!(", next at {t}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        WebhookCommand::Remove { name, db } => {
            let store = open_db(&db.db)?;
            webhooks::remove(&store, &name, &Actor::cli())?;
            println!("Removed webhook \"{name}\".");
        }
        WebhookCommand::Test {
            name,
            webhook_ca_file,
            db,
        } => {
            let store = open_db(&db.db)?;
            let client =
                webhooks::Client::new(webhook_ca_file.as_deref(), webhooks::Timeouts::default())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let sent = runtime.block_on(webhooks::test(&store, &client, &name, &Actor::cli()))?;
            let took = sent.duration.as_millis();
            match &sent.error {
                None => println!(
                    "Delivered: HTTP {} in {took} ms.",
                    sent.status.unwrap_or_default()
                ),
                Some(e) => return Err(format!("not delivered ({took} ms): {e}").into()),
            }
        }
        WebhookCommand::Rotate { name, overlap, db } => {
            let store = open_db(&db.db)?;
            let keep = match overlap.as_str() {
                "1h" => std::time::Duration::from_secs(3600),
                "24h" => std::time::Duration::from_secs(24 * 3600),
                _ => std::time::Duration::ZERO,
            };
            let secret = webhooks::rotate(&store, &name, keep, &Actor::cli())?;
            println!(
                "New signing secret for \"{name}\" (the old one keeps signing for {overlap}). \
                 Copy it now: it is not shown again."
            );
            println!("{secret}");
        }
        WebhookCommand::Resume { name, db } => {
            let store = open_db(&db.db)?;
            match webhooks::resume(&store, &name, &Actor::cli())? {
                None => println!("Resumed webhook \"{name}\": it gets what it missed, in order."),
                Some((first, last)) => println!(
                    "Resumed webhook \"{name}\". Events {first}–{last} were pruned by retention \
                     before it got them and are skipped for good: resync the receiver from SCIM. \
                     It gets the events kept from {} on, in order.",
                    last + 1
                ),
            }
        }
    }
    Ok(())
}

/// "all events" or the list of types.
fn events_label(types: &[String]) -> String {
    if types.is_empty() {
        "all events".into()
    } else {
        types.join(",")
    }
}

fn schema(cmd: SchemaCommand) -> CliResult {
    use scimd::service::audit::Actor;
    use scimd::service::schemas;
    match cmd {
        SchemaCommand::Add {
            file,
            resource_type,
            required,
            index,
            db,
        } => {
            let resource = resource_type
                .as_deref()
                .map(schemas::resource_named)
                .transpose()?;
            let index: Option<Vec<String>> = index.map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect()
            });
            let text = read_bounded(&file, scimd::scim::declare::MAX_DOCUMENT)?;
            let store = open_db(&db.db)?;
            let (d, replaced) = schemas::declare_text_indexed(
                &store,
                &text,
                resource,
                required,
                index.as_deref(),
                &Actor::cli(),
            )?;
            println!(
                "{} {} for {} ({} attributes{}).",
                if replaced { "Changed" } else { "Declared" },
                d.schema.id,
                d.resource.name(),
                d.schema.attributes.len(),
                if d.required { ", required" } else { "" }
            );
        }
        SchemaCommand::List { db } => {
            let store = open_db(&db.db)?;
            let all = schemas::list(&store)?;
            if all.is_empty() {
                println!("No declared schemas. Declare one with: scimd schema add FILE.json");
            }
            for s in all {
                let required = if s.required { ", required" } else { "" };
                println!("{} ({}{required})", s.urn, s.resource_type);
                if let Some(problem) = &s.problem {
                    println!("  problem: {problem}");
                }
                let attributes = s.definition["attributes"].as_array().cloned();
                for a in attributes.unwrap_or_default() {
                    println!(
                        "  {} {}{}",
                        a["name"].as_str().unwrap_or("?"),
                        a["type"].as_str().unwrap_or("?"),
                        if a["multiValued"] == true { "[]" } else { "" }
                    );
                }
                for i in &s.indexes {
                    println!(
                        "  index {}{} ({})",
                        i.path,
                        if i.unique { ", unique" } else { "" },
                        i.state
                    );
                }
            }
        }
        SchemaCommand::Remove { urn, db } => {
            let store = open_db(&db.db)?;
            schemas::remove(&store, &urn, &Actor::cli())?;
            println!("Removed the declaration of {urn}; values stored under it are kept.");
        }
    }
    Ok(())
}

/// The text of `file`, refused when longer than `max` bytes (read no further than that).
fn read_bounded(file: &std::path::Path, max: usize) -> Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(max as u64 + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if text.len() > max {
        return Err(format!("{} is larger than {max} bytes", file.display()));
    }
    Ok(text)
}
