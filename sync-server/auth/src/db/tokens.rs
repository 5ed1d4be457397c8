//! Password login, bearer tokens (issue, verify, revoke) and the failed-login lockout.

use super::{
    AuthStore, Conn, Limit, Note, P, UserRow, audit_row, find_user, get_user, get_user_by_id, inactive_error, ms,
    params, principal,
};
use crate::audit::{AuditAction, Outcome};
use crate::error::{AuthError, Result};
use crate::password::{MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS, hash_password, verify_password};
use crate::secret::{hash_presented, new_secret};
use crate::types::{Actor, Client, Credentials, DeviceId, IssuedToken, TokenId, TokenInfo, TokenKind, UserId};
use jiff::{SignedDuration, Timestamp};

/// `last_used_at` is written at most this often per token: verification happens on every request
/// and need not turn each one into a disk write.
const LAST_USED_RESOLUTION: SignedDuration = SignedDuration::from_secs(60);

impl AuthStore {
    /// Checks a username and password and issues a session token (optionally bound to one of the
    /// user's devices). Every attempt is audited. Unknown usernames and wrong passwords get the same
    /// error and take as long; after too many failures the username is locked for a while
    /// ([`crate::LockoutPolicy`]), and too many attempts from one client address are refused
    /// before any password is hashed ([`crate::throttle`]).
    ///
    /// Slow on purpose (Argon2): async callers should run it on a blocking thread.
    pub fn login(&self, creds: &Credentials<'_>, client: &Client) -> Result<IssuedToken> {
        let anon = Actor::anonymous().with_client(client.clone());
        // Bounded, so that junk input cannot grow the tables or the hashing work.
        let tried: String = creds.username.chars().take(MAX_USERNAME_CHARS).collect();
        let key = tried.to_ascii_lowercase();
        let note = || Note { device: creds.device, ..Note::user(&tried) };
        let now = self.now();
        if let Err(e) = self.throttle_client(Limit::LoginAddress, client, now) {
            self.audit_refusal(&anon, AuditAction::LoginFailed, note(), &e);
            return Err(e);
        }

        let user = {
            let conn = self.conn()?;
            if let Some(until) = self.locked_until(&conn, &key, now)? {
                drop(conn);
                let e = AuthError::LockedOut { username: tried.clone(), until };
                self.write(|tx| {
                    let note = note().detail(e.to_string());
                    self.audit(tx, now, &anon, &AuditAction::LoginFailed, Outcome::Denied, note)
                })?;
                return Err(e);
            }
            find_user(&conn, creds.username)?
        };
        let plausible = !creds.username.is_empty()
            && creds.username.chars().count() <= MAX_USERNAME_CHARS
            && creds.password.chars().count() <= MAX_PASSWORD_CHARS;
        let (ok, why) = match (&user, plausible) {
            (Some(u), true) => (verify_password(creds.password, &u.password_hash)?, "wrong password"),
            _ => {
                // Same work as for a real account, so timing does not tell which usernames exist.
                let bounded: String = creds.password.chars().take(MAX_PASSWORD_CHARS).collect();
                verify_password(&bounded, self.dummy_hash()?)?;
                (false, if user.is_some() { "password too long" } else { "unknown user" })
            }
        };

        self.write_or_refuse(|tx| {
            let Some(user) = user.filter(|_| ok) else {
                tx.execute("INSERT INTO login_failures (username, at) VALUES (?1, ?2)", params![key, ms(now)])?;
                self.audit(tx, now, &anon, &AuditAction::LoginFailed, Outcome::Failed, note().detail(why))?;
                return Ok(Err(AuthError::InvalidCredentials));
            };
            if let Some(e) = inactive_error(&user) {
                self.audit(tx, now, &anon, &AuditAction::LoginFailed, Outcome::Denied, note().detail(e.to_string()))?;
                return Ok(Err(e));
            }
            if let Some(Err(e)) = creds.device.map(|d| check_device(tx, d, &user)) {
                self.audit(tx, now, &anon, &AuditAction::LoginFailed, Outcome::Denied, note().detail(e.to_string()))?;
                return Ok(Err(e));
            }
            tx.execute("DELETE FROM login_failures WHERE username = ?1", params![key])?;
            let issued = issue(tx, now, &user, creds.device, TokenKind::Session, self.config.session_ttl)?;
            let me = Actor::user(issued.principal.clone()).with_client(client.clone());
            let note = Note::user(&user.username).target(format!("token {}", issued.id));
            audit_row(tx, now, &me, &AuditAction::Login, Outcome::Ok, note)?;
            Ok(Ok(issued))
        })
    }

    /// Proves that the user behind `actor`'s token is present: their password, checked like a
    /// login (throttled per client address, counted in the username's lockout, audited when
    /// wrong). What a stolen or short-lived token alone must not do (mint a long-lived device
    /// token) asks for this.
    pub(crate) fn reauthenticate(&self, actor: &Actor, password: &str, action: AuditAction) -> Result<()> {
        let p = actor.principal().ok_or_else(|| AuthError::LoginRequired("log in first".into()))?;
        let key = p.username.to_ascii_lowercase();
        let note = || Note::user(&p.username).detail("re-authentication");
        let now = self.now();
        let refuse = |e: AuthError| {
            self.audit_refusal(actor, action.clone(), note(), &e);
            e
        };
        self.throttle_client(Limit::LoginAddress, &actor.client, now).map_err(refuse)?;
        let user = {
            let conn = self.conn()?;
            if let Some(until) = self.locked_until(&conn, &key, now)? {
                drop(conn);
                return Err(refuse(AuthError::LockedOut { username: p.username.clone(), until }));
            }
            get_user_by_id(&conn, p.user_id)?
        };
        let bounded: String = password.chars().take(MAX_PASSWORD_CHARS).collect();
        if verify_password(&bounded, &user.password_hash)? && bounded.len() == password.len() {
            return Ok(());
        }
        self.write(|tx| {
            tx.execute("INSERT INTO login_failures (username, at) VALUES (?1, ?2)", params![key, ms(now)])?;
            Ok(())
        })?;
        Err(refuse(AuthError::WrongPassword))
    }

    /// Until when `key` (a lowercased username) is locked out, pruning failures too old to matter.
    fn locked_until(&self, conn: &Conn, key: &str, now: Timestamp) -> Result<Option<Timestamp>> {
        let policy = &self.config.lockout;
        conn.execute("DELETE FROM login_failures WHERE at < ?1", params![ms(policy.horizon(now))])?;
        let rows = conn.query("SELECT at FROM login_failures WHERE username = ?1", params![key])?;
        let failures = rows.iter().map(|r| r.ts(0)).collect::<Result<Vec<_>>>()?;
        Ok(policy.locked_until(&failures, now))
    }

    fn dummy_hash(&self) -> Result<&str> {
        if let Some(h) = self.dummy_hash.get() {
            return Ok(h);
        }
        let h = hash_password("not anyone's password", self.config.password_cost)?;
        Ok(self.dummy_hash.get_or_init(|| h))
    }

    /// Who a bearer token stands for, or why it is not accepted ([`AuthError::TokenUnknown`],
    /// [`AuthError::TokenExpired`], [`AuthError::TokenRevoked`], [`AuthError::UserDisabled`] and the
    /// other inactive-account errors). Role and groups are read now, so changes apply at once.
    pub fn verify(&self, token: &str) -> Result<crate::Principal> {
        let hash = hash_presented(token).ok_or(AuthError::TokenUnknown)?;
        let now = self.now();
        let conn = self.conn()?;
        let row = conn
            .query_opt(
                "SELECT t.id, t.user_id, t.device_id, t.expires_at, t.revoked_at, t.revoked_reason, t.last_used_at, \
                 d.revoked_at FROM tokens t LEFT JOIN devices d ON d.id = t.device_id WHERE t.hash = ?1",
                params![&hash[..]],
            )?
            .map(|r| -> Result<_> {
                Ok((
                    TokenId(r.i64(0)?),
                    UserId(r.i64(1)?),
                    r.opt_device(2)?,
                    r.ts(3)?,
                    r.opt_ts(4)?,
                    r.opt_text(5)?,
                    r.opt_ts(6)?,
                    r.opt_ts(7)?,
                ))
            })
            .transpose()?;
        let Some((id, user_id, device, expires_at, revoked_at, revoked_reason, last_used, device_revoked)) = row else {
            return Err(AuthError::TokenUnknown);
        };
        let user = get_user_by_id(&conn, user_id)?;
        if let Some(e) = inactive_error(&user) {
            return Err(e);
        }
        if let Some(at) = revoked_at {
            return Err(AuthError::TokenRevoked {
                revoked_at: at,
                reason: revoked_reason.unwrap_or_else(|| "no reason given".into()),
            });
        }
        if let Some(at) = device_revoked {
            return Err(AuthError::TokenRevoked { revoked_at: at, reason: "device revoked".into() });
        }
        if now >= expires_at {
            return Err(AuthError::TokenExpired { expired_at: expires_at });
        }
        if last_used.is_none_or(|t| now.duration_since(t) >= LAST_USED_RESOLUTION || now < t) {
            conn.execute("UPDATE tokens SET last_used_at = ?1 WHERE id = ?2", params![ms(now), id.0])?;
            if let Some(d) = device {
                conn.execute("UPDATE devices SET last_seen_at = ?1 WHERE id = ?2", params![ms(now), d.to_string()])?;
            }
        }
        principal(&conn, &user, device, id)
    }

    /// Issues a session token for `username` without a password (admins and the CLI: scripts,
    /// service accounts). `ttl` defaults to the session lifetime.
    pub fn issue_token(&self, actor: &Actor, username: &str, ttl: Option<SignedDuration>) -> Result<IssuedToken> {
        self.require_admin(actor, AuditAction::TokenIssue, "issue tokens for users", Note::user(username))?;
        let ttl = positive_ttl(ttl.unwrap_or(self.config.session_ttl))?;
        let now = self.now();
        self.write(|tx| {
            let user = get_user(tx, username)?;
            if let Some(e) = inactive_error(&user) {
                return Err(e);
            }
            let issued = issue(tx, now, &user, None, TokenKind::Session, ttl)?;
            let note = Note::user(&user.username)
                .target(format!("token {}", issued.id))
                .detail(format!("session token until {}", issued.expires_at));
            audit_row(tx, now, actor, &AuditAction::TokenIssue, Outcome::Ok, note)?;
            Ok(issued)
        })
    }

    /// Revokes one token (admins, and the token's owner).
    pub fn revoke_token(&self, actor: &Actor, token: TokenId) -> Result<()> {
        let now = self.now();
        let owner = {
            let conn = self.conn()?;
            let uid = conn.query_opt("SELECT user_id FROM tokens WHERE id = ?1", params![token.0])?;
            let uid = uid.ok_or(AuthError::NoSuchToken(token.0))?.i64(0)?;
            get_user_by_id(&conn, UserId(uid))?
        };
        let note = || Note::user(&owner.username).target(format!("token {token}"));
        actor
            .require_admin_or_self(owner.id, &owner.username, "revoke this token")
            .inspect_err(|e| self.audit_refusal(actor, AuditAction::TokenRevoke, note(), e))?;
        self.write(|tx| {
            let n = revoke_where(tx, now, "id = ?1", P::Int(token.0), "revoked")?;
            let detail = if n == 0 { "already revoked" } else { "revoked" };
            audit_row(tx, now, actor, &AuditAction::TokenRevoke, Outcome::Ok, note().detail(detail))?;
            Ok(())
        })
    }

    /// Revokes the token the actor is using (log out).
    pub fn logout(&self, actor: &Actor) -> Result<()> {
        let p = actor.principal().ok_or_else(|| AuthError::LoginRequired("not logged in".into()))?;
        self.revoke_token(actor, p.token)
    }

    /// Revokes every token of a user (admins, and the user themself); returns how many were live.
    pub fn revoke_user_tokens(&self, actor: &Actor, username: &str) -> Result<usize> {
        let now = self.now();
        let user = get_user(&*self.conn()?, username)?;
        actor
            .require_admin_or_self(user.id, &user.username, "revoke these tokens")
            .inspect_err(|e| self.audit_refusal(actor, AuditAction::TokenRevoke, Note::user(&user.username), e))?;
        self.write(|tx| {
            let n = revoke_where(tx, now, "user_id = ?1", P::Int(user.id.0), "all tokens of the user revoked")?;
            let note = Note::user(&user.username).target("all tokens").detail(format!("{n} tokens revoked"));
            audit_row(tx, now, actor, &AuditAction::TokenRevoke, Outcome::Ok, note)?;
            Ok(n)
        })
    }

    /// A user's tokens, newest first (admins, and the user themself). Secrets are never shown again.
    pub fn tokens(&self, actor: &Actor, username: &str) -> Result<Vec<TokenInfo>> {
        let conn = self.conn()?;
        let user = get_user(&conn, username)?;
        actor.require_admin_or_self(user.id, &user.username, "list these tokens")?;
        let rows = conn.query(
            "SELECT id, device_id, kind, created_at, expires_at, last_used_at, revoked_at, revoked_reason \
             FROM tokens WHERE user_id = ?1 ORDER BY id DESC",
            params![user.id.0],
        )?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: TokenId(r.i64(0)?),
                    user_id: user.id,
                    username: user.username.clone(),
                    device: r.opt_device(1)?,
                    kind: if r.text(2)? == "device" { TokenKind::Device } else { TokenKind::Session },
                    created_at: r.ts(3)?,
                    expires_at: r.ts(4)?,
                    last_used_at: r.opt_ts(5)?,
                    revoked_at: r.opt_ts(6)?,
                    revoked_reason: r.opt_text(7)?,
                })
            })
            .collect()
    }
}

pub(crate) fn positive_ttl(ttl: SignedDuration) -> Result<SignedDuration> {
    if ttl.is_positive() {
        Ok(ttl)
    } else {
        Err(AuthError::InvalidArgument(format!("a lifetime must be positive, not {ttl:#}")))
    }
}

/// Inserts a new token for `user` and returns it with its principal.
pub(crate) fn issue(
    conn: &Conn,
    now: Timestamp,
    user: &UserRow,
    device: Option<DeviceId>,
    kind: TokenKind,
    ttl: SignedDuration,
) -> Result<IssuedToken> {
    let (secret, hash) = new_secret()?;
    let expires_at = now
        .checked_add(ttl)
        .map_err(|e| AuthError::InvalidArgument(format!("token lifetime {ttl:#} is too long: {e}")))?;
    let id = conn
        .query_one(
            "INSERT INTO tokens (hash, user_id, device_id, kind, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            params![&hash[..], user.id.0, device.map(|d| d.to_string()), kind.as_str(), ms(now), ms(expires_at)],
        )?
        .i64(0)?;
    let id = TokenId(id);
    Ok(IssuedToken { secret, id, kind, expires_at, principal: principal(conn, user, device, id)? })
}

/// Revokes the live tokens matching `condition` (with one parameter `?1` = `value`).
pub(crate) fn revoke_where(conn: &Conn, now: Timestamp, condition: &str, value: P<'_>, reason: &str) -> Result<usize> {
    let sql =
        format!("UPDATE tokens SET revoked_at = ?2, revoked_reason = ?3 WHERE revoked_at IS NULL AND ({condition})");
    conn.execute(&sql, &[value, P::Int(ms(now)), P::Text(reason)])
}

/// A login may bind its token to a device only if it is the user's own and not revoked.
fn check_device(conn: &Conn, device: DeviceId, user: &UserRow) -> Result<()> {
    let row = conn
        .query_opt("SELECT user_id, revoked_at FROM devices WHERE id = ?1", params![device.to_string()])?
        .map(|r| -> Result<(i64, Option<i64>)> { Ok((r.i64(0)?, r.opt_i64(1)?)) })
        .transpose()?;
    match row {
        None => Err(AuthError::NoSuchDevice(device.to_string())),
        Some((owner, _)) if owner != user.id.0 => {
            Err(AuthError::Forbidden(format!("device {device} is not registered to `{}`", user.username)))
        }
        Some((_, Some(_))) => Err(AuthError::DeviceRevoked { device: device.to_string() }),
        Some(_) => Ok(()),
    }
}
