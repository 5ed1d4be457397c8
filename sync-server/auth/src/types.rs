//! The nouns of authentication: users and their roles, groups, devices, tokens, the principal a
//! verified token stands for, and the actor every change is attributed to in the audit log.

use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};

use crate::error::AuthError;
use crate::lockout::LockoutPolicy;
use crate::password::PasswordCost;

/// A user's database id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// A device id: a UUID, because it also names the device on store transactions and in replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub uuid::Uuid);

/// A token's database id (not its secret): what admins see and revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub i64);

/// An audit entry id; ids grow with time, so they double as paging cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditId(pub i64);

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}
display_inner!(UserId, DeviceId, TokenId, AuditId);

impl FromStr for DeviceId {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        uuid::Uuid::parse_str(s.trim())
            .map(DeviceId)
            .map_err(|e| AuthError::InvalidArgument(format!("invalid device id `{s}`: {e}")))
    }
}

/// What a user is, which sets their default permissions (see [`crate::permission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Manages users, permissions and layers; always allowed everything.
    Admin,
    /// Office staff (内业): read and edit every layer.
    Office,
    /// Field inspectors (外业): read and edit every layer.
    Inspector,
    /// Citizens (市民): read public layers, report into citizen-report layers.
    Citizen,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Office, Role::Inspector, Role::Citizen];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Office => "office",
            Role::Inspector => "inspector",
            Role::Citizen => "citizen",
        }
    }

    /// The Chinese name shown in the apps.
    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Admin => "管理员",
            Role::Office => "内业人员",
            Role::Inspector => "外业巡查员",
            Role::Citizen => "市民",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        let t = s.trim();
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| AuthError::UnknownRole(s.into()))
    }
}

/// Where an account stands. Only `Active` accounts can log in or use tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Active,
    /// A citizen's self-registration waiting for an admin (用户注册审核).
    Pending,
    /// A registration an admin turned down (the reason is kept).
    Rejected,
    /// Disabled by an admin; all its tokens were revoked.
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Pending => "pending",
            UserStatus::Rejected => "rejected",
            UserStatus::Disabled => "disabled",
        }
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UserStatus {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(UserStatus::Active),
            "pending" => Ok(UserStatus::Pending),
            "rejected" => Ok(UserStatus::Rejected),
            "disabled" => Ok(UserStatus::Disabled),
            _ => Err(AuthError::InvalidArgument(format!(
                "unknown user status `{s}` (expected active, pending, rejected or disabled)"
            ))),
        }
    }
}

/// An account as admins see it (never the password hash).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: Option<String>,
    /// How to reach a self-registered citizen (phone, e-mail), as they typed it.
    pub contact: Option<String>,
    pub role: Role,
    pub status: UserStatus,
    /// Why a registration was rejected or an account disabled.
    pub status_reason: Option<String>,
    pub groups: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A citizen's self-registration.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    pub contact: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub description: Option<String>,
    /// Usernames, sorted.
    pub members: Vec<String>,
    pub created_at: Timestamp,
}

/// A device to register for a user.
#[derive(Debug, Clone, Default)]
pub struct NewDevice {
    /// What the user calls it: `张三的手机`.
    pub name: String,
    /// `android`, `ios`, `windows`… (free text, 1–32 characters).
    pub platform: String,
    /// A hardware identifier the app reports, if any (not trusted for anything; shown to admins).
    pub hardware_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: DeviceId,
    pub user_id: UserId,
    pub username: String,
    pub name: String,
    pub platform: String,
    pub hardware_id: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Who a verified bearer token stands for. Role, status and groups are read afresh on every
/// verification, so an admin's change applies to the next request.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub user_id: UserId,
    pub username: String,
    pub role: Role,
    /// Group names, sorted.
    pub groups: Vec<String>,
    /// The device the token is bound to, if any.
    pub device: Option<DeviceId>,
    /// The token this principal was verified from (to log out, i.e. revoke it).
    pub token: TokenId,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A secret shown to its owner once (a bearer token or an enrolment code): 32 random bytes as
/// base64url without padding (43 characters). Only its SHA-256 is stored. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    /// The secret text, to hand to the client exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// From a password login; short-lived (default 12 h).
    Session,
    /// Bound to an enrolled device; long-lived (default 90 days).
    Device,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Device => "device",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A freshly issued bearer token: the secret (shown once) and whom it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedToken {
    pub secret: Secret,
    pub id: TokenId,
    pub kind: TokenKind,
    pub expires_at: Timestamp,
    pub principal: Principal,
}

/// A token as admins and its owner see it (no secret).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub id: TokenId,
    pub user_id: UserId,
    pub username: String,
    pub device: Option<DeviceId>,
    pub kind: TokenKind,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: Option<String>,
}

/// A one-time device enrolment code for a user (shown as a QR code with the server URL).
#[derive(Debug, Clone, PartialEq)]
pub struct Enrolment {
    pub secret: Secret,
    pub username: String,
    pub expires_at: Timestamp,
}

/// The result of redeeming an enrolment code: the new device and its device-bound token.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrolled {
    pub device: Device,
    pub token: IssuedToken,
}

/// A password login attempt.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// Bind the session token to this device (it must belong to the user and not be revoked).
    pub device: Option<DeviceId>,
}

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Client {
    /// The client's address as the server sees it (`203.0.113.5:51234`).
    pub address: Option<String>,
    /// The server's request id, to find the request in the logs.
    pub request_id: Option<String>,
}

impl Client {
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
}

/// Who performs an operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Who {
    /// A user holding a verified token.
    User(Principal),
    /// An operator at the server machine (the `shikong` CLI): trusted like an admin, because
    /// whoever can run the CLI can read the files anyway. The name says which command.
    Local(String),
    /// Nobody logged in.
    Anonymous,
}

/// The actor an operation is checked against and attributed to in the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub who: Who,
    pub client: Client,
}

impl Actor {
    pub fn user(principal: Principal) -> Self {
        Actor { who: Who::User(principal), client: Client::default() }
    }

    /// The CLI or another local tool; `name` is recorded (`cli`, `shikong user add`).
    pub fn local(name: impl Into<String>) -> Self {
        Actor { who: Who::Local(name.into()), client: Client::default() }
    }

    pub fn anonymous() -> Self {
        Actor { who: Who::Anonymous, client: Client::default() }
    }

    pub fn with_client(mut self, client: Client) -> Self {
        self.client = client;
        self
    }

    pub fn principal(&self) -> Option<&Principal> {
        match &self.who {
            Who::User(p) => Some(p),
            _ => None,
        }
    }

    /// Admins and local operators.
    pub fn is_admin(&self) -> bool {
        match &self.who {
            Who::User(p) => p.is_admin(),
            Who::Local(_) => true,
            Who::Anonymous => false,
        }
    }

    /// `Ok` for admins and local operators; otherwise a 401 (anonymous) or 403 naming `what`.
    pub fn require_admin(&self, what: &str) -> crate::Result<()> {
        match &self.who {
            Who::Anonymous => Err(AuthError::LoginRequired(format!("log in as an admin to {what}"))),
            Who::User(p) if !p.is_admin() => {
                Err(AuthError::Forbidden(format!("only admins may {what} (you are `{}`, role {})", p.username, p.role)))
            }
            _ => Ok(()),
        }
    }

    /// `Ok` for admins, local operators and the user `user_id` themself.
    pub(crate) fn require_admin_or_self(&self, user_id: UserId, username: &str, what: &str) -> crate::Result<()> {
        match &self.who {
            Who::User(p) if p.user_id == user_id => Ok(()),
            Who::User(p) if !p.is_admin() => Err(AuthError::Forbidden(format!(
                "only admins and `{username}` may {what} (you are `{}`, role {})",
                p.username, p.role
            ))),
            _ => self.require_admin(what),
        }
    }
}

/// Lifetimes and policies. `Default` is the production setting.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// Lifetime of a token from a password login (default 12 h: one working day).
    pub session_ttl: SignedDuration,
    /// Lifetime of a device-bound token (default 90 days: field devices sync offline for weeks).
    pub device_ttl: SignedDuration,
    /// Lifetime of an enrolment code (default 24 h).
    pub enrolment_ttl: SignedDuration,
    pub lockout: LockoutPolicy,
    /// Argon2id cost for new password hashes (existing hashes keep the cost they were made with).
    pub password_cost: PasswordCost,
    /// Whether citizens may register themselves (then wait for approval). `shikong serve
    /// --no-registration` turns it off: `POST /auth/register` then answers 403
    /// `registration_closed`.
    pub citizen_registration: bool,
    /// Rates of logins, registrations, enrolments and anonymous audit rows per client address and
    /// per account ([`crate::throttle`]).
    pub throttle: crate::throttle::ThrottlePolicy,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl: SignedDuration::from_hours(12),
            device_ttl: SignedDuration::from_hours(90 * 24),
            enrolment_ttl: SignedDuration::from_hours(24),
            lockout: LockoutPolicy::default(),
            password_cost: PasswordCost::DEFAULT,
            citizen_registration: true,
            throttle: crate::throttle::ThrottlePolicy::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        for r in Role::ALL {
            assert_eq!(r.to_string().parse::<Role>().unwrap(), r);
        }
        assert_eq!(" Office ".parse::<Role>().unwrap(), Role::Office);
        let e = "boss".parse::<Role>().unwrap_err().to_string();
        assert_eq!(e, "unknown role `boss` (expected admin, office, inspector or citizen)");
    }

    #[test]
    fn statuses_parse_and_print() {
        for s in [UserStatus::Active, UserStatus::Pending, UserStatus::Rejected, UserStatus::Disabled] {
            assert_eq!(s.to_string().parse::<UserStatus>().unwrap(), s);
        }
        assert!("gone".parse::<UserStatus>().is_err());
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let s = Secret("abc".into());
        assert_eq!(format!("{s:?}"), "Secret(…)");
        assert_eq!(s.expose(), "abc");
    }

    #[test]
    fn device_ids_parse() {
        let id: DeviceId = "67e55044-10b1-426f-9247-bb680e5fe0c8".parse().unwrap();
        assert_eq!(id.to_string(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert!("phone".parse::<DeviceId>().is_err());
    }
}
