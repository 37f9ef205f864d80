//! Console administrators: the one-time setup code of a fresh install, passwords (argon2id,
//! hashed and verified off the async runtime), sessions with their CSRF tokens, and device
//! cookies (a browser that signed in). Session, device and setup secrets are random, shown
//! once and stored as SHA-256 digests. Sign-in and setup attempts are limited per client by
//! the caller (`http::limits`), which this module tells what it needs: whether setup is
//! possible, and `SignInFacts` about an account. Sign-in asks for the second factor of an
//! administrator who turned it on (`totp`); the team itself (list, invitations, one's own
//! password and sessions) is `administrators`.

use std::time::Duration;

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::audit::{Actor, ActorKind, Rejections};
use super::totp::{self, SignInCode};
use crate::error::{Error, Result};
use crate::scim::time;
use crate::store::audit as store_audit;
use crate::store::{Store, administrators, admins};

/// How long a console session lasts from sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a setup code stays valid.
pub const SETUP_CODE_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a device cookie lasts from its last successful sign-in.
pub const DEVICE_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// Devices remembered per administrator; the least recently used go first.
const MAX_DEVICES: usize = 10;
/// After `scimd admin set-password`, how long sign-ins as that user skip the per-username
/// limit (until the first successful one), so guessers cannot re-lock the account before
/// its owner signs in with the new password.
pub const RECOVERY_WINDOW: Duration = Duration::from_secs(15 * 60);
const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_BYTES: usize = 1024;

pub(super) fn random_token() -> Result<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

pub(super) fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn later(d: Duration) -> String {
    time::format(::time::OffsetDateTime::now_utc() + d)
}

fn earlier(d: Duration) -> String {
    time::format(::time::OffsetDateTime::now_utc() - d)
}

pub fn check_username(name: &str) -> Result<()> {
    if name.trim() != name || name.is_empty() || name.chars().count() > 64 {
        return Err(Error::InvalidValue(
            "a username is 1 to 64 characters, without spaces at either end".into(),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidValue(
            "a username cannot contain control characters".into(),
        ));
    }
    Ok(())
}

/// `check_username` for a name being taken (setup, an invitation): also refuses what
/// userName refuses, so an invisible or bidi character cannot make a new administrator look
/// like another one in the list and the audit log. Names taken before keep signing in.
pub fn check_new_username(name: &str) -> Result<()> {
    check_username(name)?;
    crate::scim::ident::check("username", name, None)
}

pub fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::InvalidValue(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters (and at most {MAX_PASSWORD_BYTES} bytes)"
        )));
    }
    Ok(())
}

/// An argon2id PHC string for `password` (OWASP's minimum parameters, the crate's default).
/// Takes tens of milliseconds: call it off the async runtime.
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

pub(super) fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str());
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&parsed))
    else {
        return false;
    };
    let expected: &[u8] = expected.as_ref();
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    with_memory(argon2.params().block_count(), |memory| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut out, memory)
            .is_ok()
    }) && bool::from(out.ct_eq(expected))
}

/// What checking a password for a missing account costs: as much as a real check, so timing
/// does not tell names apart.
fn check_no_account(password: &str) {
    let argon2 = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(argon2.params().block_count(), |memory| {
        let _ = argon2.hash_password_into_with_memory(
            password.as_bytes(),
            b"scimd: no such account",
            &mut out,
            memory,
        );
    });
}

thread_local! {
    /// argon2's working memory (19 MiB), kept by each hashing thread for its next check.
    /// Allocated and freed per check, glibc kept it anyway, fragmented, in more and more heaps.
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with `blocks` blocks of argon2 memory: the thread's own for the default cost, a
/// fresh allocation for a larger one (a hash scimd did not make).
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    if blocks > Params::DEFAULT_M_COST as usize {
        return f(&mut vec![Block::default(); blocks]);
    }
    MEMORY.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < blocks {
            *m = vec![Block::default(); blocks];
        }
        f(&mut m[..blocks])
    })
}

/// Bounds argon2 work to `HASHING` at a time, so sign-in attempts cannot occupy every core
/// (each takes ~20 MiB and ~20 ms), plus one more kept for clients the caller knows are good
/// (they hold a device cookie): a flood of guesses from many addresses queues for the shared
/// lane, never in front of the owner.
///
/// Each lane runs its hashes on its own few long-lived threads, as many as it has permits.
/// glibc gives every thread that allocates argon2's 19 MiB its own arena and keeps the memory
/// there; on the runtime's ever-changing blocking threads that grew without bound (hundreds of
/// MB after 50 failed sign-ins). On a fixed set of threads, each reusing one buffer
/// (`with_memory`), it is one buffer per thread.
pub struct Hashing {
    shared: Lane,
    known_good: Lane,
}

/// Password hashes computed at once for everyone, at most.
const HASHING: usize = 2;

impl Default for Hashing {
    fn default() -> Self {
        Hashing {
            shared: Lane::new("shared", HASHING),
            known_good: Lane::new("known", 1),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Permits to hash, and the threads that do it.
struct Lane {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// Jobs for the lane's threads; they end when this is dropped.
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Lane {
    fn new(name: &str, threads: usize) -> Self {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("scimd-hash-{name}-{i}"))
                .spawn(move || {
                    loop {
                        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(job) = next else { return };
                        // A panicking job must not take the thread with it.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = spawned {
                // Fewer threads only means less at once; with none, hashing fails cleanly
                // (the jobs' sender finds no receiver).
                tracing::warn!(error = %e, "could not start a password hashing thread");
            }
        }
        Lane {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(threads)),
            jobs,
        }
    }
}

/// Runs argon2 work under the `Hashing` bound, in the known-good lane or the shared one. The
/// permit goes with the work: a client that hangs up ends its wait for a permit, never the
/// hash it started, so hanging up cannot run more hashes at once than there are permits.
pub(super) async fn hashing<T: Send + 'static>(
    limit: &Hashing,
    known_good: bool,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let lane = if known_good {
        &limit.known_good
    } else {
        &limit.shared
    };
    let permit = lane
        .permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| Error::internal(format!("hashing limit closed: {e}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _permit = permit;
        // Its caller went away while the job was queued: nobody wants the answer.
        if !tx.is_closed() {
            let _ = tx.send(f());
        }
    });
    lane.jobs
        .send(job)
        .map_err(|_| Error::internal("no password hashing thread is running"))?;
    rx.await
        .map_err(|_| Error::internal("password hashing failed"))
}

/// `scimd admin set-password`: creates the administrator or sets its password, ending its
/// sessions, forgetting its devices, turning its second factor off and cancelling the
/// invitations it made (the way back after a leak: nothing the old password or a stolen
/// session got stays). Blocking; for the command line.
pub fn set_password(store: &Store, username: &str, password: &str) -> Result<()> {
    check_username(username)?;
    check_password(password)?;
    let hash = hash_password(password)?;
    let actor = Actor::cli();
    store.write_sync(|tx| {
        admins::set_password(tx, username, &hash, &time::now())?;
        let stored = admins::find(tx, username)?
            .ok_or_else(|| Error::internal("administrator vanished"))?
            .username;
        let cancelled = administrators::drop_invites_by(tx, &stored)?;
        let mut e = actor.entry("admin.set_password", "success", 200);
        e.resource_type = Some("Admin");
        e.resource_name = Some(username.to_string());
        if cancelled > 0 {
            e.detail = Some(serde_json::json!({"invitationsCancelled": cancelled}));
        }
        store_audit::insert(tx, &e)?;
        Ok(())
    })
}

/// A fresh one-time setup code while no administrator exists (`None` once one does). Any
/// earlier code stops working.
pub fn new_setup_code(store: &Store) -> Result<Option<String>> {
    let code = random_token()?;
    let stored = store.write_sync(|tx| {
        if admins::count(tx)? > 0 {
            return Ok(false);
        }
        admins::put_setup_code(tx, &hex(&digest(&code)), &later(SETUP_CODE_LIFETIME))?;
        Ok(true)
    })?;
    Ok(stored.then_some(code))
}

/// Whether the console still needs its first administrator.
pub async fn needs_setup(store: &Store) -> Result<bool> {
    store.read(|conn| Ok(admins::count(conn)? == 0)).await
}

/// A signed-in session: `secret` goes in the session cookie, `device` in the device cookie,
/// `csrf` to the console.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub csrf: String,
    pub username: String,
    pub device: String,
}

/// Opens a session, and remembers the browser as a device of the administrator: the device
/// secret it `presented`, if that is one of the administrator's current devices, else a new
/// one.
pub(super) fn open_session(
    tx: &rusqlite::Connection,
    admin_seq: i64,
    username: &str,
    presented: Option<&str>,
    actor: &Actor,
) -> Result<NewSession> {
    let secret = random_token()?;
    let csrf = random_token()?;
    let (now, stale) = (time::now(), earlier(DEVICE_LIFETIME));
    let device = match presented {
        Some(d) if admins::is_device(tx, &digest(d), admin_seq, &stale)? => {
            admins::touch_device(tx, &digest(d), &now)?;
            d.to_string()
        }
        _ => {
            let d = random_token()?;
            admins::add_device(tx, &digest(&d), admin_seq, &now, &stale, MAX_DEVICES)?;
            d
        }
    };
    admins::create_session(
        tx,
        &digest(&secret),
        admin_seq,
        &csrf,
        &now,
        &later(SESSION_LIFETIME),
    )?;
    // Where it comes from, for its owner's list of sessions (the audit's clipping).
    let from = actor.entry("", "success", 200);
    administrators::describe_session(tx, &digest(&secret), &from.client, &from.user_agent, &now)?;
    administrators::note_sign_in(tx, admin_seq, &now)?;
    Ok(NewSession {
        secret,
        csrf,
        username: username.to_string(),
        device,
    })
}

pub(super) fn admin_entry(
    actor: &Actor,
    action: &str,
    outcome: &'static str,
    status: u16,
    who: &str,
) -> store_audit::NewEntry {
    let mut e = actor.entry(action, outcome, status);
    e.resource_type = Some("Admin");
    e.resource_name = Some(who.to_string());
    e
}

/// First-run setup: with a current setup code, creates the first administrator and signs
/// them in. Refused once any administrator exists.
pub async fn setup(
    store: &Store,
    limit: &Hashing,
    code: &str,
    username: &str,
    password: &str,
    actor: &Actor,
) -> Result<NewSession> {
    check_new_username(username)?;
    check_password(password)?;
    // Cheap checks first: a wrong code or a finished setup costs no password hashing.
    let d = hex(&digest(code));
    let open = store
        .read(move |conn| {
            Ok(admins::count(conn)? == 0 && admins::setup_code_is_current(conn, &d, &time::now())?)
        })
        .await?;
    if !open {
        return Err(Error::Forbidden(
            "this setup link is not valid (it works once, for an hour, while no administrator \
             exists; a restart makes a new one): see scimd's log"
                .into(),
        ));
    }
    let pw = password.to_string();
    let hash = hashing(limit, false, move || hash_password(&pw)).await??;
    let (code, username, actor) = (code.to_string(), username.to_string(), actor.clone());
    store
        .write(move |tx| {
            if admins::count(tx)? > 0 {
                return Err(Error::Forbidden("setup is done: sign in instead".into()));
            }
            if !admins::take_setup_code(tx, &hex(&digest(&code)), &time::now())? {
                return Err(Error::Forbidden(
                    "this setup link is not valid (it expires after an hour, and a restart \
                     makes a new one): see scimd's log"
                        .into(),
                ));
            }
            admins::set_password(tx, &username, &hash, &time::now())?;
            let admin = admins::find(tx, &username)?
                .ok_or_else(|| Error::internal("administrator vanished"))?;
            let mut named = actor.clone();
            named.kind = ActorKind::Admin;
            named.name = username.clone();
            store_audit::insert(
                tx,
                &admin_entry(&named, "admin.setup", "success", 200, &username),
            )?;
            open_session(tx, admin.seq, &username, None, &named)
        })
        .await
}

fn wrong_credentials() -> Error {
    Error::Unauthorized("wrong username or password".into())
}

/// What sign-in limits need to know about the account an attempt names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInFacts {
    /// A fingerprint of the account's current password. It changes whenever the password
    /// does, also when another process (`scimd admin set-password`) changed it.
    pub password: u64,
    /// The device cookie sent is one of the account's devices: the key of its own count.
    pub device: Option<u64>,
    /// The password was set by `set-password` less than `RECOVERY_WINDOW` ago and nobody has
    /// signed in with it yet.
    pub recovering: bool,
}

/// `SignInFacts` about the account named `username` (`None` when there is none), given the
/// device cookie the client sent. A name no account can have is refused here, before it is
/// counted, hashed or recorded.
pub async fn sign_in_facts(
    store: &Store,
    username: &str,
    device: Option<String>,
) -> Result<Option<SignInFacts>> {
    check_username(username).map_err(|_| wrong_credentials())?;
    let name = username.to_string();
    store
        .read(move |conn| {
            let Some(admin) = admins::find(conn, &name)? else {
                return Ok(None);
            };
            let stale = earlier(DEVICE_LIFETIME);
            let device = match device {
                Some(d) if admins::is_device(conn, &digest(&d), admin.seq, &stale)? => {
                    Some(fingerprint(&d))
                }
                _ => None,
            };
            let recovering = admin.updated > earlier(RECOVERY_WINDOW)
                && admins::device_count(conn, admin.seq)? == 0;
            Ok(Some(SignInFacts {
                password: fingerprint(&admin.password_hash),
                device,
                recovering,
            }))
        })
        .await
}

fn fingerprint(text: &str) -> u64 {
    let d = digest(text);
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// One console sign-in as the client sent it, and whether the client is known-good for
/// that username (it holds a current device cookie of it; see `Hashing`).
pub struct SignInAttempt<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// The second factor, for an administrator who turned it on: a TOTP code or a recovery
    /// code.
    pub code: Option<&'a str>,
    /// The device secret the client sent, kept when current, else replaced by a new one.
    pub device: Option<String>,
    pub known_good: bool,
}

/// What a sign-in came to.
#[derive(Debug)]
pub enum SignedIn {
    Session(NewSession),
    /// The password was right and the administrator has a second factor: send it too. The
    /// attempt stays counted, like a failure, until the sign-in with the code succeeds.
    NeedsCode,
}

/// What the write of a sign-in found.
enum Outcome {
    Session(NewSession),
    NeedsCode,
    WrongCode,
    /// TOTP codes are blocked for this browser: seconds left.
    CodesBlocked(u64),
    /// The password verified is no longer the account's.
    PasswordChanged,
}

/// Signs in, or fails with the same error whether the name or the password was wrong.
/// A failure is queued in `rejections` (cut, folded per client and username), not written
/// with a write of its own: a wrong name or password in the anonymous budget; what only a
/// client holding the password gets to (a wrong or blocked second factor, or the question for
/// one from a browser that is not the account's device) in a budget of its own, so that the
/// sign of a known password is not crowded out by anonymous floods.
pub async fn login(
    store: &Store,
    limit: &Hashing,
    rejections: &Rejections,
    attempt: SignInAttempt<'_>,
    actor: &Actor,
) -> Result<SignedIn> {
    let SignInAttempt {
        username,
        password,
        code,
        device,
        known_good,
    } = attempt;
    check_username(username).map_err(|_| wrong_credentials())?;
    let name = username.to_string();
    let admin = store.read(move |conn| admins::find(conn, &name)).await?;
    let pw = password.to_string();
    // A missing account costs a verification too, so timing does not tell names apart.
    let hash = admin.as_ref().map(|a| a.password_hash.clone());
    let ok = hashing(limit, known_good, move || match hash {
        Some(h) => verify_password(&pw, &h),
        None => {
            check_no_account(&pw);
            false
        }
    })
    .await?;
    let mut named = actor.clone();
    named.kind = ActorKind::Admin;
    named.name = username.to_string();
    let Some(admin) = admin.filter(|_| ok) else {
        let e = wrong_credentials();
        let entry = admin_entry(&named, "admin.login", "failure", 401, username);
        rejections.push_sign_in(entry, &e);
        return Err(e);
    };
    let username = admin.username.clone();
    named.name = username.clone();
    let code = code.map(str::to_string);
    let who = named.clone();
    let outcome = store
        .write(move |tx| {
            // The password was checked against a copy read before the wait for a hashing
            // slot, which a flood can stretch: if it was changed meanwhile (`set-password`
            // after a leak), or the account was removed and another took its seq, that check
            // no longer stands.
            let current = administrators::password_hash(tx, admin.seq)?;
            if current.as_deref() != Some(admin.password_hash.as_str()) {
                return Ok(Outcome::PasswordChanged);
            }
            let t = administrators::totp(tx, admin.seq)?;
            if t.enabled {
                let Some(code) = code else {
                    return Ok(Outcome::NeedsCode);
                };
                // A browser that signed in as this administrator before passes a block of its
                // codes, so a guesser cannot turn the block against the owner.
                let remembered = known_good
                    && match &device {
                        Some(d) => {
                            admins::is_device(tx, &digest(d), admin.seq, &earlier(DEVICE_LIFETIME))?
                        }
                        None => false,
                    };
                match totp::sign_in_code(tx, admin.seq, &t, &code, remembered, &who)? {
                    SignInCode::Accepted => {}
                    SignInCode::Wrong => return Ok(Outcome::WrongCode),
                    SignInCode::Blocked(left) => return Ok(Outcome::CodesBlocked(left)),
                }
            }
            store_audit::insert(
                tx,
                &admin_entry(&who, "admin.login", "success", 200, &admin.username),
            )?;
            open_session(tx, admin.seq, &admin.username, device.as_deref(), &who)
                .map(Outcome::Session)
        })
        .await?;
    let (status, e, note) = match outcome {
        Outcome::Session(s) => return Ok(SignedIn::Session(s)),
        // The owner's own browsers go unrecorded: every sign-in of theirs asks first.
        Outcome::NeedsCode if known_good => return Ok(SignedIn::NeedsCode),
        Outcome::NeedsCode => {
            let entry = admin_entry(&named, "admin.login", "failure", 200, &username);
            let note = "the password was right; a two-factor code was asked for";
            rejections.push_second_factor(entry, note.into());
            return Ok(SignedIn::NeedsCode);
        }
        Outcome::PasswordChanged => {
            let e = wrong_credentials();
            let entry = admin_entry(&named, "admin.login", "failure", 401, &username);
            rejections.push_sign_in(entry, &e);
            return Err(e);
        }
        Outcome::WrongCode => (
            401,
            Error::Unauthorized(
                "wrong code: enter the current code from your authenticator app, or one of \
                 your recovery codes"
                    .into(),
            ),
            None,
        ),
        Outcome::CodesBlocked(left) => (
            429,
            Error::TooManyRequests(left),
            Some(
                "two-factor codes are blocked after too many wrong ones: refused unchecked \
                 (recovery codes and the account's own browsers still work)",
            ),
        ),
    };
    let entry = admin_entry(&named, "admin.login", "failure", status, &username);
    rejections.push_second_factor(entry, note.map_or_else(|| e.detail(), str::to_string));
    Err(e)
}

/// The session a cookie secret belongs to, if it is current.
pub async fn session(store: &Store, secret: &str) -> Result<Option<admins::SessionRow>> {
    let d = digest(secret);
    store
        .read(move |conn| admins::find_session(conn, &d, &time::now()))
        .await
}

pub async fn logout(store: &Store, secret: &str, actor: &Actor) -> Result<()> {
    let d = digest(secret);
    let actor = actor.clone();
    store
        .write(move |tx| {
            admins::delete_session(tx, &d)?;
            store_audit::insert(
                tx,
                &admin_entry(&actor, "admin.logout", "success", 200, &actor.name),
            )?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_to_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        // The parameters come from the stored hash, not the defaults.
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, Some(16)).unwrap(),
        )
        .hash_password(b"correct horse battery")
        .unwrap()
        .to_string();
        assert!(verify_password("correct horse battery", &cheap));
        assert!(!verify_password("correct horse batterY", &cheap));
        assert!(!verify_password(
            "correct horse battery",
            &cheap.replace("m=64", "m=65")
        ));
    }

    /// Review finding 1: callers that hang up (dropped request futures) used to free their
    /// permit while their hash kept running, so connect/send/close ran any number at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_that_hang_up_cannot_run_more_hashes_at_once_than_the_limit() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let limit = Arc::new(Hashing::default());
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        for _ in 0..6 {
            let callers: Vec<_> = (0..8)
                .map(|_| {
                    let (limit, running, peak) = (limit.clone(), running.clone(), peak.clone());
                    tokio::spawn(async move {
                        hashing(&limit, false, move || {
                            peak.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                            std::thread::sleep(Duration::from_millis(40));
                            running.fetch_sub(1, SeqCst);
                        })
                        .await
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(5)).await;
            for c in callers {
                c.abort();
            }
        }
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if running.load(SeqCst) == 0 && limit.shared.permits.available_permits() == HASHING {
                break;
            }
        }
        assert!(peak.load(SeqCst) >= 1, "some hashes ran");
        assert!(
            peak.load(SeqCst) <= HASHING,
            "{} hashes ran at once",
            peak.load(SeqCst)
        );
        assert_eq!(limit.shared.permits.available_permits(), HASHING);
    }

    /// Takes every permit of the shared hashing lane, until the returned senders are dropped.
    async fn hold_shared_lane(limit: &std::sync::Arc<Hashing>) -> Vec<std::sync::mpsc::Sender<()>> {
        let mut release = Vec::new();
        for _ in 0..HASHING {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let limit = limit.clone();
            tokio::spawn(async move {
                hashing(&limit, false, move || {
                    let _ = rx.recv();
                })
                .await
            });
            release.push(tx);
        }
        wait_until(|| limit.shared.permits.available_permits() == 0).await;
        release
    }

    /// Waits until one more call waits for a permit of the shared lane: `hashing` clones the
    /// lane's semaphore to wait on it, besides the lane's own and the held permits' clones.
    async fn one_queued_for_the_shared_lane(limit: &Hashing) {
        wait_until(|| std::sync::Arc::strong_count(&limit.shared.permits) == 1 + HASHING + 1).await;
    }

    async fn wait_until(done: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the condition never held");
    }

    fn browser() -> Actor {
        Actor {
            kind: ActorKind::Anonymous,
            name: String::new(),
            client: "192.0.2.1".into(),
            user_agent: "unit-test".into(),
        }
    }

    fn sessions_of(store: &Store) -> i64 {
        store
            .read_sync(|c| Ok(c.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))?))
            .unwrap()
    }

    const OLD: &str = "the old password";
    const NEW: &str = "the new password";

    /// Review 15, F2: a sign-in with the old password, queued for a hashing slot while
    /// `scimd admin set-password` recovered the account (which also turns the second factor
    /// off), opened a session when its turn came.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sign_in_queued_across_a_password_change_opens_no_session() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        set_password(&store, "root", OLD).unwrap();
        store
            .write_sync(|tx| {
                let seq = admins::find(tx, "root")?.unwrap().seq;
                administrators::start_totp(tx, seq, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")?;
                administrators::enable_totp(tx, seq, 1, &[])
            })
            .unwrap();
        let limit = std::sync::Arc::new(Hashing::default());
        let release = hold_shared_lane(&limit).await;
        let signing_in = {
            let (store, limit) = (store.clone(), limit.clone());
            tokio::spawn(async move {
                let attempt = SignInAttempt {
                    username: "root",
                    password: OLD,
                    code: None,
                    device: None,
                    known_good: false,
                };
                login(&store, &limit, &Rejections::default(), attempt, &browser()).await
            })
        };
        one_queued_for_the_shared_lane(&limit).await;
        let cli = store.clone();
        tokio::task::spawn_blocking(move || set_password(&cli, "root", NEW))
            .await
            .unwrap()
            .unwrap();
        drop(release);
        let r = signing_in.await.unwrap();
        assert!(matches!(r, Err(Error::Unauthorized(_))), "{r:?}");
        assert_eq!(sessions_of(&store), 0);
    }

    /// Review 15, F2: a console password change, queued for a hashing slot, overwrote the
    /// password `set-password` set meanwhile, and went ahead for a session ended meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_password_change_queued_across_a_recovery_or_a_sign_out_changes_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        let limit = std::sync::Arc::new(Hashing::default());
        let rejections = Rejections::default();
        set_password(&store, "root", OLD).unwrap();
        let password_is = |pw: &str| {
            let hash = store
                .read_sync(|c| Ok(admins::find(c, "root")?.unwrap().password_hash))
                .unwrap();
            verify_password(pw, &hash)
        };
        for ending in ["set-password", "sign-out"] {
            let attempt = SignInAttempt {
                username: "root",
                password: OLD,
                code: None,
                device: None,
                known_good: false,
            };
            let SignedIn::Session(session) =
                login(&store, &limit, &rejections, attempt, &browser())
                    .await
                    .unwrap()
            else {
                panic!("no second factor here");
            };
            let seq = store
                .read_sync(|c| Ok(admins::find(c, "root")?.unwrap().seq))
                .unwrap();
            let release = hold_shared_lane(&limit).await;
            let changing = {
                let (store, limit, secret) = (store.clone(), limit.clone(), session.secret.clone());
                tokio::spawn(async move {
                    super::super::administrators::change_password(
                        &store,
                        &limit,
                        seq,
                        &secret,
                        OLD,
                        "the thief's password",
                        &browser(),
                    )
                    .await
                })
            };
            one_queued_for_the_shared_lane(&limit).await;
            let other = store.clone();
            match ending {
                // A recovery to a new password, then back, so the next round signs in alike.
                "set-password" => tokio::task::spawn_blocking(move || {
                    set_password(&other, "root", NEW)?;
                    set_password(&other, "root", OLD)
                })
                .await
                .unwrap()
                .unwrap(),
                _ => logout(&store, &session.secret, &browser()).await.unwrap(),
            }
            drop(release);
            let r = changing.await.unwrap();
            match ending {
                "set-password" => assert!(matches!(r, Err(Error::Forbidden(_))), "{r:?}"),
                _ => assert!(matches!(r, Err(Error::Unauthorized(_))), "{r:?}"),
            }
            assert!(password_is(OLD), "{ending}: the password stays");
        }
    }

    #[test]
    fn rules_for_names_and_passwords() {
        assert!(check_username("ana").is_ok());
        assert!(check_username(" ana").is_err() && check_username("").is_err());
        // A new name cannot hide a bidi override or a zero-width space; an old one signs in.
        for name in ["ro\u{202e}ot", "ro\u{200b}ot", "\u{feff}root"] {
            assert!(check_new_username(name).is_err(), "{name:?}");
            assert!(check_username(name).is_ok(), "{name:?}");
        }
        assert!(check_new_username("Émile Zoë").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password("twelve chars").is_ok());
    }
}
