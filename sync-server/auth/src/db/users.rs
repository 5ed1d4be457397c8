//! Accounts: adding users, citizen self-registration and its approval (用户注册审核), roles,
//! disabling, passwords.

use super::{AuthStore, Conn, Limit, Note, UserRow, audit_row, find_user, get_user, ms, params, to_user};
use crate::audit::{AuditAction, Outcome};
use crate::error::{AuthError, Result};
use crate::password::{
    MAX_USERNAME_CHARS, hash_password, validate_label, validate_password, validate_username, verify_password,
};
use crate::types::{Actor, Registration, Role, User, UserStatus};

/// Longest display name and contact, in characters.
const MAX_DISPLAY_NAME: usize = 64;
const MAX_CONTACT: usize = 128;
const MAX_REASON: usize = 500;

impl AuthStore {
    /// Adds an active account (admins and the CLI). The password must follow the rules in
    /// [`crate::password`].
    pub fn add_user(&self, actor: &Actor, username: &str, role: Role, password: &str) -> Result<User> {
        self.require_admin(actor, AuditAction::UserAdd, "add users", Note::user(username))?;
        validate_username(username)?;
        validate_password(username, password)?;
        let hash = hash_password(password, self.config.password_cost)?;
        let now = self.now();
        self.write(|tx| {
            if let Some(existing) = find_user(tx, username)? {
                return Err(AuthError::UserExists(existing.username));
            }
            tx.execute(
                "INSERT INTO users (username, role, status, password_hash, created_at, updated_at) \
                 VALUES (?1, ?2, 'active', ?3, ?4, ?4)",
                params![username, role.as_str(), hash, ms(now)],
            )?;
            audit_row(
                tx,
                now,
                actor,
                &AuditAction::UserAdd,
                Outcome::Ok,
                Note::user(username).detail(format!("role {role}")),
            )?;
            to_user(tx, get_user(tx, username)?)
        })
    }

    /// A citizen registers themself. The account is `pending` (it cannot log in) until an admin
    /// approves it.
    ///
    /// The answer does not reveal which usernames exist: a name that is taken gets the same `Ok`
    /// after the same work (the password is hashed either way), no account is created, and the
    /// attempt is audited as `failed` ("username taken") for the administrators. Attempts are
    /// throttled per client address and per username ([`crate::throttle`]) before any hashing.
    pub fn register_citizen(&self, reg: &Registration, client: &crate::Client) -> Result<()> {
        let actor = Actor::anonymous().with_client(client.clone());
        let tried: String = reg.username.chars().take(MAX_USERNAME_CHARS).collect();
        let refuse = |e: AuthError| {
            self.audit_refusal(&actor, AuditAction::UserRegister, Note::user(&tried), &e);
            e
        };
        if !self.config.citizen_registration {
            return Err(refuse(AuthError::RegistrationClosed));
        }
        let now = self.now();
        self.throttle_client(Limit::RegisterAddress, client, now).map_err(refuse)?;
        validate_username(&reg.username)?;
        validate_password(&reg.username, &reg.password)?;
        if let Some(d) = &reg.display_name {
            validate_label("display name", d, MAX_DISPLAY_NAME)?;
        }
        if let Some(c) = &reg.contact {
            validate_label("contact", c, MAX_CONTACT)?;
        }
        self.throttle(Limit::RegisterAccount, &reg.username.to_ascii_lowercase(), now).map_err(refuse)?;
        // Hashed before looking the name up, so that a taken name costs the same time.
        let hash = hash_password(&reg.password, self.config.password_cost)?;
        self.write(|tx| {
            if find_user(tx, &reg.username)?.is_some() {
                let note = Note::user(&reg.username).detail("username taken; answered as received, nothing created");
                return self.audit(tx, now, &actor, &AuditAction::UserRegister, Outcome::Failed, note);
            }
            tx.execute(
                "INSERT INTO users (username, display_name, contact, role, status, password_hash, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'citizen', 'pending', ?4, ?5, ?5)",
                params![reg.username, reg.display_name, reg.contact, hash, ms(now)],
            )?;
            audit_row(tx, now, &actor, &AuditAction::UserRegister, Outcome::Ok, Note::user(&reg.username))?;
            Ok(())
        })
    }

    /// Approves a pending (or previously rejected) registration: the account becomes active.
    pub fn approve_user(&self, actor: &Actor, username: &str) -> Result<User> {
        self.require_admin(actor, AuditAction::UserApprove, "approve registrations", Note::user(username))?;
        self.change_status(
            actor,
            username,
            AuditAction::UserApprove,
            "approve",
            &[UserStatus::Pending, UserStatus::Rejected],
            UserStatus::Active,
            None,
        )
    }

    /// Rejects a pending registration, with a reason the citizen is shown when trying to log in.
    pub fn reject_user(&self, actor: &Actor, username: &str, reason: &str) -> Result<User> {
        self.require_admin(actor, AuditAction::UserReject, "reject registrations", Note::user(username))?;
        validate_label("reason", reason, MAX_REASON)?;
        self.change_status(
            actor,
            username,
            AuditAction::UserReject,
            "reject",
            &[UserStatus::Pending],
            UserStatus::Rejected,
            Some(reason),
        )
    }

    /// Disables an active account and revokes all its tokens.
    pub fn disable_user(&self, actor: &Actor, username: &str, reason: Option<&str>) -> Result<User> {
        self.require_admin(actor, AuditAction::UserDisable, "disable users", Note::user(username))?;
        if let Some(r) = reason {
            validate_label("reason", r, MAX_REASON)?;
        }
        self.change_status(
            actor,
            username,
            AuditAction::UserDisable,
            "disable",
            &[UserStatus::Active],
            UserStatus::Disabled,
            reason,
        )
    }

    /// Enables a disabled account (its old tokens stay revoked).
    pub fn enable_user(&self, actor: &Actor, username: &str) -> Result<User> {
        self.require_admin(actor, AuditAction::UserEnable, "enable users", Note::user(username))?;
        self.change_status(
            actor,
            username,
            AuditAction::UserEnable,
            "enable",
            &[UserStatus::Disabled],
            UserStatus::Active,
            None,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn change_status(
        &self,
        actor: &Actor,
        username: &str,
        action: AuditAction,
        verb: &'static str,
        from: &[UserStatus],
        to: UserStatus,
        reason: Option<&str>,
    ) -> Result<User> {
        let now = self.now();
        self.write(|tx| {
            let user = get_user(tx, username)?;
            if !from.contains(&user.status) {
                return Err(AuthError::InvalidState {
                    username: user.username,
                    status: user.status.to_string(),
                    action: verb,
                });
            }
            if to == UserStatus::Disabled && user.role == Role::Admin {
                ensure_other_admin(tx, &user)?;
            }
            tx.execute(
                "UPDATE users SET status = ?1, status_reason = ?2, updated_at = ?3 WHERE id = ?4",
                params![to.as_str(), reason, ms(now), user.id.0],
            )?;
            let mut detail = format!("{} → {}", user.status, to);
            if to == UserStatus::Disabled {
                let n =
                    super::tokens::revoke_where(tx, now, "user_id = ?1", super::P::Int(user.id.0), "user disabled")?;
                detail.push_str(&format!("; {n} tokens revoked"));
            }
            if let Some(r) = reason {
                detail.push_str(&format!(": {r}"));
            }
            audit_row(tx, now, actor, &action, Outcome::Ok, Note::user(&user.username).detail(detail))?;
            to_user(tx, get_user(tx, username)?)
        })
    }

    /// Changes a user's role; effective on their next request.
    pub fn set_role(&self, actor: &Actor, username: &str, role: Role) -> Result<User> {
        self.require_admin(actor, AuditAction::UserRole, "change roles", Note::user(username))?;
        let now = self.now();
        self.write(|tx| {
            let user = get_user(tx, username)?;
            if user.role == Role::Admin && role != Role::Admin && user.status == UserStatus::Active {
                ensure_other_admin(tx, &user)?;
            }
            tx.execute(
                "UPDATE users SET role = ?1, updated_at = ?2 WHERE id = ?3",
                params![role.as_str(), ms(now), user.id.0],
            )?;
            let note = Note::user(&user.username).detail(format!("role {} → {role}", user.role));
            audit_row(tx, now, actor, &AuditAction::UserRole, Outcome::Ok, note)?;
            to_user(tx, get_user(tx, username)?)
        })
    }

    /// Sets a new password for someone (admins and the CLI) and revokes all their tokens.
    pub fn reset_password(&self, actor: &Actor, username: &str, new_password: &str) -> Result<()> {
        self.require_admin(actor, AuditAction::UserPassword, "reset passwords", Note::user(username))?;
        let canonical = get_user(&*self.conn()?, username)?.username;
        validate_password(&canonical, new_password)?;
        let hash = hash_password(new_password, self.config.password_cost)?;
        let now = self.now();
        self.write(|tx| {
            let user = get_user(tx, username)?;
            set_hash(tx, &user, &hash, now)?;
            let n = super::tokens::revoke_where(tx, now, "user_id = ?1", super::P::Int(user.id.0), "password reset")?;
            let note = Note::user(&user.username).detail(format!("password reset; {n} tokens revoked"));
            audit_row(tx, now, actor, &AuditAction::UserPassword, Outcome::Ok, note)?;
            Ok(())
        })
    }

    /// A user changes their own password, proving the current one. Their other tokens are revoked;
    /// the one in use stays valid.
    pub fn change_password(&self, actor: &Actor, current: &str, new_password: &str) -> Result<()> {
        let Some(me) = actor.principal().cloned() else {
            return Err(AuthError::LoginRequired("log in to change your password".into()));
        };
        let user = super::get_user_by_id(&*self.conn()?, me.user_id)?;
        if !verify_password(current, &user.password_hash)? {
            let e = AuthError::WrongPassword;
            self.audit_refusal(actor, AuditAction::UserPassword, Note::user(&user.username), &e);
            return Err(e);
        }
        validate_password(&user.username, new_password)?;
        let hash = hash_password(new_password, self.config.password_cost)?;
        let now = self.now();
        self.write(|tx| {
            set_hash(tx, &user, &hash, now)?;
            let n = tx.execute(
                "UPDATE tokens SET revoked_at = ?1, revoked_reason = 'password changed' \
                 WHERE user_id = ?2 AND id <> ?3 AND revoked_at IS NULL",
                params![ms(now), user.id.0, me.token.0],
            )?;
            let note = Note::user(&user.username).detail(format!("password changed; {n} other tokens revoked"));
            audit_row(tx, now, actor, &AuditAction::UserPassword, Outcome::Ok, note)?;
            Ok(())
        })
    }

    /// All accounts (or those with `status`), by username. Admins only.
    pub fn list_users(&self, actor: &Actor, status: Option<UserStatus>) -> Result<Vec<User>> {
        actor.require_admin("list users")?;
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {} FROM users WHERE CAST(?1 AS TEXT) IS NULL OR status = ?1 ORDER BY username",
            super::USER_COLS
        );
        let rows = conn.query(&sql, params![status.map(UserStatus::as_str)])?;
        rows.iter().map(|r| to_user(&conn, super::user_row(r)?)).collect()
    }

    /// One account. Admins, and users asking about themselves.
    pub fn user(&self, actor: &Actor, username: &str) -> Result<User> {
        let conn = self.conn()?;
        let row = find_user(&conn, username)?;
        if !actor.is_admin() {
            // Non-admins learn nothing about other usernames, not even whether they exist.
            let me = actor.principal().ok_or_else(|| AuthError::LoginRequired("log in to look up users".into()))?;
            if row.as_ref().is_none_or(|r| r.id != me.user_id) {
                return Err(AuthError::Forbidden("only admins may look up users other than yourself".into()));
            }
        }
        to_user(&conn, row.ok_or_else(|| AuthError::NoSuchUser(username.into()))?)
    }

    /// Whether any user exists (the server can tell a fresh install to create an admin).
    pub fn has_users(&self) -> Result<bool> {
        Ok(self.conn()?.query_opt("SELECT 1 FROM users LIMIT 1", &[])?.is_some())
    }
}

fn set_hash(conn: &Conn, user: &UserRow, hash: &str, now: jiff::Timestamp) -> Result<()> {
    conn.execute(
        "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE id = ?3",
        params![hash, ms(now), user.id.0],
    )?;
    Ok(())
}

/// Refuses to take away the last active admin (nobody could manage the server afterwards).
fn ensure_other_admin(conn: &Conn, user: &UserRow) -> Result<()> {
    let others = conn
        .query_one(
            "SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active' AND id <> ?1",
            params![user.id.0],
        )?
        .i64(0)?;
    if others == 0 { Err(AuthError::LastAdmin(user.username.clone())) } else { Ok(()) }
}
