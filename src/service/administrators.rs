//! Console administrators as a team: the list, removal (never of the last one), one's own
//! password and sessions, and one-time invitations. An invitation is a link like setup's: a
//! random code in the fragment, only its digest stored, single use, for `INVITE_LIFETIME`;
//! whoever opens it chooses a username and password under the same rules as setup. Every
//! change is audited in the same transaction.

use std::time::Duration;

use serde::Serialize;

use super::admin::{
    self, Hashing, NewSession, admin_entry, digest, hashing, later, open_session, random_token,
    verify_password,
};
use super::audit::{Actor, ActorKind};
use crate::error::{Error, Result};
use crate::scim::time;
use crate::store::audit as store_audit;
use crate::store::{Store, administrators, admins};

/// How long an invitation link works.
pub const INVITE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A session's last-seen time is written at most this often.
const SEEN_EVERY: Duration = Duration::from_secs(60);

/// An administrator as the console lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub username: String,
    pub created: String,
    pub last_sign_in: Option<String>,
    pub totp: bool,
}

/// A pending invitation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    pub created_by: String,
    pub created: String,
    pub expires: String,
}

fn listed(conn: &rusqlite::Connection) -> Result<Vec<Listed>> {
    Ok(administrators::list(conn)?
        .into_iter()
        .map(|a| Listed {
            username: a.username,
            created: a.created,
            last_sign_in: a.last_sign_in,
            totp: a.totp,
        })
        .collect())
}

/// The administrators, and the invitations not yet used.
pub async fn list(store: &Store) -> Result<(Vec<Listed>, Vec<Invite>)> {
    store
        .read(|conn| {
            let admins = listed(conn)?;
            let invites = administrators::invites(conn, &time::now())?
                .into_iter()
                .map(|i| Invite {
                    created_by: i.created_by,
                    created: i.created,
                    expires: i.expires,
                })
                .collect();
            Ok((admins, invites))
        })
        .await
}

/// Removes the administrator named `username` and ends its sessions; never the last one. The
/// transaction's body, for `remove` (the console) and `remove_sync` (the command line).
fn remove_in(tx: &rusqlite::Connection, username: &str, actor: &Actor) -> Result<String> {
    let a = admins::find(tx, username)?
        .ok_or_else(|| Error::NotFound(format!("no administrator named \"{username}\"")))?;
    if admins::count(tx)? <= 1 {
        return Err(Error::Forbidden(format!(
            "\"{}\" is the only administrator: invite another before removing it",
            a.username
        )));
    }
    administrators::remove(tx, a.seq)?;
    // What a removed administrator handed out goes too: it may have left on bad terms.
    administrators::drop_invites_by(tx, &a.username)?;
    store_audit::insert(
        tx,
        &admin_entry(actor, "admin.remove", "success", 200, &a.username),
    )?;
    Ok(a.username)
}

/// Removes an administrator from the console, the one asking having just confirmed its
/// password.
pub async fn remove(
    store: &Store,
    proof: Reauthenticated,
    username: &str,
    actor: &Actor,
) -> Result<String> {
    let (name, actor) = (username.to_string(), actor.clone());
    store
        .write(move |tx| {
            proof.still_holds(tx)?;
            remove_in(tx, &name, &actor)
        })
        .await
}

/// `scimd admin remove`: blocking.
pub fn remove_sync(store: &Store, username: &str) -> Result<String> {
    store.write_sync(|tx| remove_in(tx, username, &Actor::cli()))
}

/// `scimd admin list`: blocking.
pub fn list_sync(store: &Store) -> Result<Vec<Listed>> {
    store.read_sync(listed)
}

/// Proof that a signed-in administrator just typed its current password (step-up before an
/// action that gives lasting control: a stolen session cookie alone must not). The write
/// that acts on it checks that the password is still the one verified.
pub struct Reauthenticated {
    admin_seq: i64,
    hash: String,
}

impl Reauthenticated {
    pub(super) fn admin_seq(&self) -> i64 {
        self.admin_seq
    }

    /// Inside the acting transaction: fails when the password changed since it was verified
    /// (`set-password` after a leak), or the account is gone.
    pub(super) fn still_holds(&self, tx: &rusqlite::Connection) -> Result<()> {
        match administrators::password_hash(tx, self.admin_seq)? {
            Some(h) if h == self.hash => Ok(()),
            _ => Err(Error::Forbidden(
                "your password was changed meanwhile: sign in again".into(),
            )),
        }
    }
}

/// Checks the signed-in administrator's current password, in the hashing lanes like a
/// sign-in (the caller counts it as one).
pub async fn reauthenticate(
    store: &Store,
    limit: &Hashing,
    admin_seq: i64,
    password: &str,
) -> Result<Reauthenticated> {
    let wrong = || Error::Forbidden("the password is wrong".into());
    let hash = store
        .read(move |conn| administrators::password_hash(conn, admin_seq))
        .await?
        .ok_or_else(wrong)?;
    let (pw, h) = (password.to_string(), hash.clone());
    if !hashing(limit, false, move || verify_password(&pw, &h)).await? {
        return Err(wrong());
    }
    Ok(Reauthenticated { admin_seq, hash })
}

/// What a password change ended besides the old password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChanged {
    pub sessions_ended: usize,
    pub invitations_cancelled: usize,
    pub devices_forgotten: usize,
}

/// A signed-in administrator changing its own password: the current one is required. Its
/// other sessions end, the invitations it made are cancelled and its devices forgotten: after
/// a leak, whoever held the old password or a stolen session keeps nothing that lasts.
pub async fn change_password(
    store: &Store,
    limit: &Hashing,
    admin_seq: i64,
    session_secret: &str,
    current: &str,
    new: &str,
    actor: &Actor,
) -> Result<PasswordChanged> {
    admin::check_password(new)?;
    let hash = store
        .read(move |conn| administrators::password_hash(conn, admin_seq))
        .await?
        .ok_or_else(|| Error::NotFound("no such administrator".into()))?;
    let (cur, pw) = (current.to_string(), new.to_string());
    let verified = hash.clone();
    let new_hash = hashing(limit, false, move || {
        verify_password(&cur, &hash).then(|| admin::hash_password(&pw))
    })
    .await?
    .ok_or_else(|| Error::Forbidden("the current password is wrong".into()))??;
    let (keep, actor) = (digest(session_secret), actor.clone());
    store
        .write(move |tx| {
            // Both were checked before the wait for a hashing slot: a password set meanwhile
            // (`scimd admin set-password`, the way back after a leak) is not overwritten, and
            // a session ended meanwhile changes nothing.
            if administrators::password_hash(tx, admin_seq)?.as_deref() != Some(&verified) {
                return Err(Error::Forbidden(
                    "your password was changed meanwhile: sign in again".into(),
                ));
            }
            let session = admins::find_session(tx, &keep, &time::now())?;
            if session.is_none_or(|s| s.admin_seq != admin_seq) {
                return Err(Error::Unauthorized("sign in to the console first".into()));
            }
            administrators::replace_password(tx, admin_seq, &new_hash, &time::now())?;
            let ended = PasswordChanged {
                sessions_ended: administrators::end_other_sessions(tx, admin_seq, &keep)?,
                invitations_cancelled: administrators::drop_invites_by(tx, &actor.name)?,
                devices_forgotten: admins::forget_devices(tx, admin_seq)?,
            };
            let mut e = admin_entry(&actor, "admin.change_password", "success", 200, &actor.name);
            e.detail = Some(serde_json::json!(ended));
            store_audit::insert(tx, &e)?;
            Ok(ended)
        })
        .await
}

/// One of an administrator's sessions as its owner sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    pub created: String,
    pub expires: String,
    pub last_seen: Option<String>,
    pub client: String,
    pub user_agent: String,
    /// The session asking.
    pub current: bool,
}

pub async fn sessions(store: &Store, admin_seq: i64, session_secret: &str) -> Result<Vec<Session>> {
    let mine = digest(session_secret).to_vec();
    store
        .read(move |conn| {
            Ok(administrators::sessions(conn, admin_seq, &time::now())?
                .into_iter()
                .map(|s| Session {
                    current: s.digest == mine,
                    id: s.id,
                    created: s.created,
                    expires: s.expires,
                    last_seen: s.last_seen,
                    client: s.client,
                    user_agent: s.user_agent,
                })
                .collect())
        })
        .await
}

/// Ends one of the administrator's own sessions.
pub async fn end_session(store: &Store, admin_seq: i64, id: &str, actor: &Actor) -> Result<()> {
    let (id, actor) = (id.to_string(), actor.clone());
    store
        .write(move |tx| {
            if !administrators::end_session(tx, admin_seq, &id)? {
                return Err(Error::NotFound(
                    "no such session (it may have ended)".into(),
                ));
            }
            let mut e = admin_entry(&actor, "admin.end_session", "success", 200, &actor.name);
            e.detail = Some(serde_json::json!({"session": id}));
            store_audit::insert(tx, &e)?;
            Ok(())
        })
        .await
}

/// Notes that the session was used, at most once per `SEEN_EVERY` (a write per console
/// request would cost more than the list is worth).
pub async fn seen(store: &Store, session_secret: &str) -> Result<()> {
    let d = digest(session_secret);
    let recent = time::format(::time::OffsetDateTime::now_utc() - SEEN_EVERY);
    let last = store
        .read(move |conn| administrators::last_seen(conn, &d))
        .await?;
    if last.is_some_and(|t| t > recent) {
        return Ok(());
    }
    store
        .write(move |tx| administrators::touch_session(tx, &d, &time::now()))
        .await
}

/// A new invitation, the administrator making it having just confirmed its password: its
/// code (for the link, shown once) and when it expires.
pub async fn invite(
    store: &Store,
    proof: Reauthenticated,
    actor: &Actor,
) -> Result<(String, String)> {
    let code = random_token()?;
    let (d, expires, actor) = (digest(&code), later(INVITE_LIFETIME), actor.clone());
    let exp = expires.clone();
    store
        .write(move |tx| {
            proof.still_holds(tx)?;
            administrators::put_invite(tx, &d, &actor.name, &time::now(), &exp)?;
            let mut e = actor.entry("admin.invite", "success", 200);
            e.resource_type = Some("Admin");
            e.detail = Some(serde_json::json!({"expires": exp}));
            store_audit::insert(tx, &e)?;
            Ok(())
        })
        .await?;
    Ok((code, expires))
}

/// Cancels every pending invitation (a link sent to the wrong person); how many there were.
pub async fn cancel_invites(store: &Store, actor: &Actor) -> Result<usize> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let n = administrators::drop_invites(tx, &time::now())?;
            let mut e = actor.entry("admin.invite_cancel", "success", 200);
            e.resource_type = Some("Admin");
            e.detail = Some(serde_json::json!({"cancelled": n}));
            store_audit::insert(tx, &e)?;
            Ok(n)
        })
        .await
}

fn invalid_invite() -> Error {
    Error::Forbidden(
        "this invitation is not valid: it works once, for 24 hours; ask an administrator for a \
         new one"
            .into(),
    )
}

/// Whether the invitation with this code can still be used (for the page that opens it).
pub async fn invite_is_current(store: &Store, code: &str) -> Result<bool> {
    let d = digest(code);
    store
        .read(move |conn| Ok(administrators::invite(conn, &d, &time::now())?.is_some()))
        .await
}

/// Accepts an invitation: creates the administrator with the chosen name and password (the
/// rules of setup) and signs it in. The invitation is used up. Fails with `Error::Forbidden`
/// exactly when the code is not that of a current invitation (the caller counts those).
pub async fn accept_invite(
    store: &Store,
    limit: &Hashing,
    code: &str,
    username: &str,
    password: &str,
    actor: &Actor,
) -> Result<NewSession> {
    admin::check_new_username(username)?;
    admin::check_password(password)?;
    // Cheap check first: a wrong code costs no password hashing.
    if !invite_is_current(store, code).await? {
        return Err(invalid_invite());
    }
    let pw = password.to_string();
    let hash = hashing(limit, false, move || admin::hash_password(&pw)).await??;
    let (d, username) = (digest(code), username.to_string());
    let mut named = actor.clone();
    named.kind = ActorKind::Admin;
    named.name = username.clone();
    store
        .write(move |tx| {
            let invite =
                administrators::take_invite(tx, &d, &time::now())?.ok_or_else(invalid_invite)?;
            if admins::find(tx, &username)?.is_some() {
                // The error rolls the transaction back: the invitation still works.
                return Err(Error::Uniqueness(format!(
                    "an administrator named \"{username}\" exists: choose another username"
                )));
            }
            admins::set_password(tx, &username, &hash, &time::now())?;
            let a = admins::find(tx, &username)?
                .ok_or_else(|| Error::internal("administrator vanished"))?;
            let mut e = admin_entry(&named, "admin.invite_accept", "success", 200, &username);
            e.detail = Some(serde_json::json!({"invitedBy": invite.created_by}));
            store_audit::insert(tx, &e)?;
            open_session(tx, a.seq, &username, None, &named)
        })
        .await
}
