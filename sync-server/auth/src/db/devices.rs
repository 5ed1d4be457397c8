//! Devices bound to users, their long-lived tokens, and one-time enrolment codes (the QR code a
//! field app scans to get a device-bound token without typing a password on the phone).

use super::tokens::{issue, positive_ttl, revoke_where};
use super::{
    AuthStore, Conn, Limit, Note, P, Row, UserRow, audit_row, get_user, get_user_by_id, inactive_error, ms, params,
};
use crate::audit::{AuditAction, Outcome};
use crate::error::{AuthError, Result};
use crate::password::validate_label;
use crate::secret::{hash_presented, new_secret};
use crate::types::{Actor, Client, Device, DeviceId, Enrolled, Enrolment, IssuedToken, NewDevice, TokenKind, UserId};
use jiff::SignedDuration;

const MAX_DEVICE_NAME: usize = 64;
const MAX_PLATFORM: usize = 32;
const MAX_HARDWARE_ID: usize = 128;

const DEVICE_COLS: &str =
    "d.id, d.user_id, u.username, d.name, d.platform, d.hardware_id, d.created_at, d.last_seen_at, d.revoked_at";

fn device_row(r: &Row) -> Result<Device> {
    Ok(Device {
        id: r.parsed(0)?,
        user_id: UserId(r.i64(1)?),
        username: r.text(2)?,
        name: r.text(3)?,
        platform: r.text(4)?,
        hardware_id: r.opt_text(5)?,
        created_at: r.ts(6)?,
        last_seen_at: r.opt_ts(7)?,
        revoked_at: r.opt_ts(8)?,
    })
}

fn get_device(conn: &Conn, id: DeviceId) -> Result<Device> {
    let sql = format!("SELECT {DEVICE_COLS} FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?1");
    conn.query_opt(&sql, params![id.to_string()])?
        .as_ref()
        .map(device_row)
        .transpose()?
        .ok_or_else(|| AuthError::NoSuchDevice(id.to_string()))
}

fn validate_device(d: &NewDevice) -> Result<()> {
    validate_label("device name", &d.name, MAX_DEVICE_NAME)?;
    validate_label("platform", &d.platform, MAX_PLATFORM)?;
    if let Some(h) = &d.hardware_id {
        validate_label("hardware id", h, MAX_HARDWARE_ID)?;
    }
    Ok(())
}

fn insert_device(conn: &Conn, now: jiff::Timestamp, user: &UserRow, d: &NewDevice) -> Result<Device> {
    let id = DeviceId(uuid::Uuid::new_v4());
    conn.execute(
        "INSERT INTO devices (id, user_id, name, platform, hardware_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id.to_string(), user.id.0, d.name, d.platform, d.hardware_id, ms(now)],
    )?;
    get_device(conn, id)
}

impl AuthStore {
    /// Registers a device for a user (admins, and the user themself).
    pub fn register_device(&self, actor: &Actor, username: &str, device: &NewDevice) -> Result<Device> {
        let user = get_user(&*self.conn()?, username)?;
        actor
            .require_admin_or_self(user.id, &user.username, "register devices for this user")
            .inspect_err(|e| self.audit_refusal(actor, AuditAction::DeviceRegister, Note::user(&user.username), e))?;
        validate_device(device)?;
        let now = self.now();
        self.write(|tx| {
            let d = insert_device(tx, now, &user, device)?;
            let note = Note { device: Some(d.id), ..Note::user(&user.username) }
                .target(d.id)
                .detail(format!("{} ({})", d.name, d.platform));
            audit_row(tx, now, actor, &AuditAction::DeviceRegister, Outcome::Ok, note)?;
            Ok(d)
        })
    }

    /// One device (admins, and its owner).
    pub fn device(&self, actor: &Actor, id: DeviceId) -> Result<Device> {
        let d = get_device(&*self.conn()?, id)?;
        actor.require_admin_or_self(d.user_id, &d.username, "see this device")?;
        Ok(d)
    }

    /// Devices of one user (admins, and the user themself) or of everyone (`None`: admins), oldest
    /// first.
    pub fn devices(&self, actor: &Actor, username: Option<&str>) -> Result<Vec<Device>> {
        let conn = self.conn()?;
        let user = match username {
            Some(name) => {
                let u = get_user(&conn, name)?;
                actor.require_admin_or_self(u.id, &u.username, "list this user's devices")?;
                Some(u.id.0)
            }
            None => {
                actor.require_admin("list all devices")?;
                None
            }
        };
        let sql = format!(
            "SELECT {DEVICE_COLS} FROM devices d JOIN users u ON u.id = d.user_id \
             WHERE CAST(?1 AS BIGINT) IS NULL OR d.user_id = ?1 ORDER BY d.created_at, d.id"
        );
        conn.query(&sql, params![user])?.iter().map(device_row).collect()
    }

    /// Revokes a device and every token bound to it (admins, and its owner). Returns how many
    /// tokens were live.
    pub fn revoke_device(&self, actor: &Actor, id: DeviceId) -> Result<usize> {
        let d = get_device(&*self.conn()?, id)?;
        let note = || Note { device: Some(id), ..Note::user(&d.username) }.target(id);
        actor
            .require_admin_or_self(d.user_id, &d.username, "revoke this device")
            .inspect_err(|e| self.audit_refusal(actor, AuditAction::DeviceRevoke, note(), e))?;
        let now = self.now();
        self.write(|tx| {
            tx.execute(
                "UPDATE devices SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                params![ms(now), id.to_string()],
            )?;
            let n = revoke_where(tx, now, "device_id = ?1", P::Text(&id.to_string()), "device revoked")?;
            let detail = format!("{}; {n} tokens revoked", d.name);
            audit_row(tx, now, actor, &AuditAction::DeviceRevoke, Outcome::Ok, note().detail(detail))?;
            Ok(n)
        })
    }

    /// Issues a long-lived token bound to a device (admins, and its owner). A user (as opposed to
    /// the CLI's local operator) must give their `password` again: a device token outlives the
    /// session that asks for it by months, so a token alone (stolen, or a short session) must
    /// not be able to mint one ([`AuthError::ReauthenticationRequired`]).
    pub fn issue_device_token(&self, actor: &Actor, id: DeviceId, password: Option<&str>) -> Result<IssuedToken> {
        let d = get_device(&*self.conn()?, id)?;
        let note = || Note { device: Some(id), ..Note::user(&d.username) };
        actor
            .require_admin_or_self(d.user_id, &d.username, "issue tokens for this device")
            .inspect_err(|e| self.audit_refusal(actor, AuditAction::TokenIssue, note(), e))?;
        if actor.principal().is_some() {
            let Some(password) = password else {
                let e = AuthError::ReauthenticationRequired("a device token lasts for months");
                self.audit_refusal(actor, AuditAction::TokenIssue, note(), &e);
                return Err(e);
            };
            self.reauthenticate(actor, password, AuditAction::TokenIssue)?;
        }
        self.mint_device_token(actor, &d)
    }

    /// Registers a device for `username` (the caller themself, or anyone for an admin) and issues
    /// its token, checking the caller's `password` once, before anything is recorded
    /// (`POST /devices`).
    pub fn register_own_device(
        &self,
        actor: &Actor,
        username: &str,
        device: &NewDevice,
        password: &str,
    ) -> Result<(Device, IssuedToken)> {
        validate_device(device)?;
        self.reauthenticate(actor, password, AuditAction::DeviceRegister)?;
        let d = self.register_device(actor, username, device)?;
        let token = self.mint_device_token(actor, &d)?;
        Ok((d, token))
    }

    fn mint_device_token(&self, actor: &Actor, d: &Device) -> Result<IssuedToken> {
        let id = d.id;
        let note = || Note { device: Some(id), ..Note::user(&d.username) };
        if d.revoked_at.is_some() {
            return Err(AuthError::DeviceRevoked { device: id.to_string() });
        }
        let now = self.now();
        self.write(|tx| {
            let user = get_user_by_id(tx, d.user_id)?;
            if let Some(e) = inactive_error(&user) {
                return Err(e);
            }
            let issued = issue(tx, now, &user, Some(id), TokenKind::Device, self.config.device_ttl)?;
            let note = note()
                .target(format!("token {}", issued.id))
                .detail(format!("device token until {}", issued.expires_at));
            audit_row(tx, now, actor, &AuditAction::TokenIssue, Outcome::Ok, note)?;
            Ok(issued)
        })
    }

    /// Creates a one-time enrolment code for a user's next device (admins, and the user
    /// themself). `ttl` defaults to [`crate::AuthConfig::enrolment_ttl`]. The secret is shown once
    /// (as a QR code with the server URL); only its hash is kept.
    pub fn create_enrolment(&self, actor: &Actor, username: &str, ttl: Option<SignedDuration>) -> Result<Enrolment> {
        let user = get_user(&*self.conn()?, username)?;
        actor
            .require_admin_or_self(user.id, &user.username, "create enrolment codes for this user")
            .inspect_err(|e| self.audit_refusal(actor, AuditAction::EnrolmentCreate, Note::user(&user.username), e))?;
        if let Some(e) = inactive_error(&user) {
            return Err(e);
        }
        let ttl = positive_ttl(ttl.unwrap_or(self.config.enrolment_ttl))?;
        let now = self.now();
        let expires_at = now
            .checked_add(ttl)
            .map_err(|e| AuthError::InvalidArgument(format!("enrolment lifetime {ttl:#} is too long: {e}")))?;
        let (secret, hash) = new_secret()?;
        let created_by = super::actor_name(actor);
        self.write(|tx| {
            let id = tx
                .query_one(
                    "INSERT INTO enrolments (hash, user_id, created_by, created_at, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    params![&hash[..], user.id.0, created_by, ms(now), ms(expires_at)],
                )?
                .i64(0)?;
            let note = Note::user(&user.username)
                .target(format!("enrolment {id}"))
                .detail(format!("valid until {expires_at}"));
            audit_row(tx, now, actor, &AuditAction::EnrolmentCreate, Outcome::Ok, note)?;
            Ok(Enrolment { secret, username: user.username.clone(), expires_at })
        })
    }

    /// Redeems an enrolment code once: registers `device` for the code's user and issues a
    /// device-bound token. A second redemption, an expired or an unknown code is refused (and
    /// audited).
    pub fn redeem_enrolment(&self, code: &str, device: &NewDevice, client: &Client) -> Result<Enrolled> {
        let anon = Actor::anonymous().with_client(client.clone());
        let refuse = |e: AuthError, user: Option<&str>| {
            self.audit_refusal(&anon, AuditAction::EnrolmentRedeem, Note { user, ..Note::default() }, &e);
            e
        };
        let now = self.now();
        self.throttle_client(Limit::EnrolAddress, client, now).map_err(|e| refuse(e, None))?;
        let Some(hash) = hash_presented(code) else {
            return Err(refuse(AuthError::EnrolmentUnknown, None));
        };
        validate_device(device)?;
        self.write_or_refuse(|tx| {
            let row = tx
                .query_opt(
                    "SELECT id, user_id, expires_at, used_at FROM enrolments WHERE hash = ?1",
                    params![&hash[..]],
                )?
                .map(|r| -> Result<(i64, i64, i64, Option<i64>)> {
                    Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?, r.opt_i64(3)?))
                })
                .transpose()?;
            let refusal = |e: AuthError, user: Option<&str>| -> Result<Result<Enrolled>> {
                let note = Note { user, ..Note::default() }.detail(e.to_string());
                self.audit(tx, now, &anon, &AuditAction::EnrolmentRedeem, Outcome::Denied, note)?;
                Ok(Err(e))
            };
            let Some((enrolment, user_id, expires_at, used_at)) = row else {
                return refusal(AuthError::EnrolmentUnknown, None);
            };
            let user = get_user_by_id(tx, UserId(user_id))?;
            let to_ts = |v: i64| {
                jiff::Timestamp::from_millisecond(v)
                    .map_err(|e| AuthError::Corrupt(format!("enrolment {enrolment}: bad instant {v}: {e}")))
            };
            if let Some(used) = used_at {
                return refusal(AuthError::EnrolmentUsed { used_at: to_ts(used)? }, Some(&user.username));
            }
            let expires_at = to_ts(expires_at)?;
            if now >= expires_at {
                return refusal(AuthError::EnrolmentExpired { expired_at: expires_at }, Some(&user.username));
            }
            if let Some(e) = inactive_error(&user) {
                return refusal(e, Some(&user.username));
            }
            // Per account last, so that refused codes do not use up the account's enrolments.
            if let Err(e) = self.throttle(Limit::EnrolAccount, &user.username.to_ascii_lowercase(), now) {
                return refusal(e, Some(&user.username));
            }
            let d = insert_device(tx, now, &user, device)?;
            tx.execute(
                "UPDATE enrolments SET used_at = ?1, device_id = ?2 WHERE id = ?3",
                params![ms(now), d.id.to_string(), enrolment],
            )?;
            let token = issue(tx, now, &user, Some(d.id), TokenKind::Device, self.config.device_ttl)?;
            let me = Actor::user(token.principal.clone()).with_client(client.clone());
            let note = Note::user(&user.username)
                .target(format!("enrolment {enrolment}"))
                .detail(format!("device {} ({}), token {}", d.name, d.platform, token.id));
            audit_row(tx, now, &me, &AuditAction::EnrolmentRedeem, Outcome::Ok, note)?;
            Ok(Ok(Enrolled { device: d, token }))
        })
    }
}
