//! Authentication and authorization errors.
//!
//! Each variant says exactly what is wrong, and [`AuthError::kind`] sorts it into the class the
//! server answers with (400/401/403/404/409/429/500) without this crate knowing HTTP.
//! [`AuthError::code`] is a stable machine code clients branch on (and translate into Chinese).

use jiff::Timestamp;

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// How an error should be answered. One class per HTTP status the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed (400).
    BadRequest,
    /// No valid credentials: log in again (401).
    Unauthorized,
    /// Known caller, not allowed (403).
    Forbidden,
    /// The named user, group, device or token does not exist (404).
    NotFound,
    /// The request conflicts with the current state (409).
    Conflict,
    /// Too many failed logins or attempts; try later (429).
    TooManyRequests,
    /// The accounts' database (PostgreSQL) cannot be reached right now — down, failing over,
    /// a standby not promoted yet: try again shortly (503).
    Unavailable,
    /// A server-side problem; say nothing internal to the client (500).
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("invalid username `{username}`: {reason}")]
    InvalidUsername { username: String, reason: String },
    #[error("invalid password: {reason}")]
    InvalidPassword { reason: String },
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidName { what: &'static str, value: String, reason: String },
    #[error("unknown role `{0}` (expected admin, office, inspector or citizen)")]
    UnknownRole(String),
    #[error("{0}")]
    InvalidArgument(String),

    /// Unknown username or wrong password: deliberately the same error, so that login does not
    /// reveal which usernames exist.
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("unknown or malformed token; log in again")]
    TokenUnknown,
    #[error("token expired at {expired_at}; log in again")]
    TokenExpired { expired_at: Timestamp },
    #[error("token was revoked at {revoked_at} ({reason}); log in again")]
    TokenRevoked { revoked_at: Timestamp, reason: String },
    #[error("user `{username}` is disabled")]
    UserDisabled { username: String },
    #[error("unknown enrolment code; ask for a new QR code")]
    EnrolmentUnknown,
    #[error("enrolment code expired at {expired_at}; ask for a new QR code")]
    EnrolmentExpired { expired_at: Timestamp },
    #[error("enrolment code was already used at {used_at}; ask for a new QR code")]
    EnrolmentUsed { used_at: Timestamp },
    #[error("{0}")]
    LoginRequired(String),

    #[error("registration of `{username}` is awaiting approval by an administrator")]
    AwaitingApproval { username: String },
    #[error("registration of `{username}` was rejected: {reason}")]
    RegistrationRejected { username: String, reason: String },
    #[error("{0}")]
    Forbidden(String),

    #[error("no user named `{0}`")]
    NoSuchUser(String),
    #[error("no group named `{0}`")]
    NoSuchGroup(String),
    #[error("no device {0}")]
    NoSuchDevice(String),
    #[error("no token {0}")]
    NoSuchToken(i64),
    #[error("no registered service `{0}`")]
    NoSuchService(String),
    #[error("no API key `{0}`")]
    NoSuchApiKey(String),
    #[error("no harvest source `{0}`")]
    NoSuchHarvest(String),
    #[error("no permission rule for {subject} on layer `{layer}`")]
    NoSuchRule { layer: String, subject: String },

    #[error("a user named `{0}` already exists")]
    UserExists(String),
    #[error("a group named `{0}` already exists")]
    GroupExists(String),
    #[error("user `{username}` is {status}; cannot {action}")]
    InvalidState { username: String, status: String, action: &'static str },
    #[error("device {device} is revoked")]
    DeviceRevoked { device: String },
    #[error("`{0}` is the last active admin; add or enable another admin first")]
    LastAdmin(String),

    #[error("too many failed logins for `{username}`; try again after {until}")]
    LockedOut { username: String, until: Timestamp },
    /// Too many attempts of one kind from one client address or for one account
    /// ([`crate::throttle`]); nothing was checked.
    #[error("too many {what}; try again after {until}")]
    Throttled { what: &'static str, until: Timestamp },
    #[error("self-registration is turned off on this server; ask an administrator for an account")]
    RegistrationClosed,
    /// A long-lived token is minted only with the password, never from a token alone.
    #[error("{0}: send your password with the request (re-authentication)")]
    ReauthenticationRequired(&'static str),

    #[error("{path}: not a shikong auth database ({reason})")]
    NotAnAuthDb { path: String, reason: String },
    #[error(
        "{path} was written by a newer shikong (auth schema version {found}; this build understands up to {supported}). Upgrade shikong to open it."
    )]
    TooNew { path: String, found: i64, supported: i64 },
    #[error("auth database is inconsistent: {0}")]
    Corrupt(String),
    /// A copy of the accounts (`shikong store copy`) goes into an empty account store only.
    #[error(
        "{location}: the accounts can only be copied into an empty account store, and this one holds {holds}; nothing was changed"
    )]
    DestinationNotEmpty { location: String, holds: String },
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    /// No connection to the accounts' PostgreSQL database could be made.
    #[error("{url}: cannot connect to the accounts database: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl AuthError {
    /// Until when a refused attempt should not be repeated (lockouts and throttles).
    pub fn retry_at(&self) -> Option<Timestamp> {
        match self {
            AuthError::LockedOut { until, .. } | AuthError::Throttled { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// The response class for this error.
    pub fn kind(&self) -> ErrorKind {
        use AuthError::*;
        match self {
            InvalidUsername { .. }
            | InvalidPassword { .. }
            | InvalidName { .. }
            | UnknownRole(_)
            | InvalidArgument(_) => ErrorKind::BadRequest,
            InvalidCredentials
            | TokenUnknown
            | TokenExpired { .. }
            | TokenRevoked { .. }
            | UserDisabled { .. }
            | EnrolmentUnknown
            | EnrolmentExpired { .. }
            | EnrolmentUsed { .. }
            | LoginRequired(_) => ErrorKind::Unauthorized,
            WrongPassword
            | AwaitingApproval { .. }
            | RegistrationRejected { .. }
            | Forbidden(_)
            | RegistrationClosed
            | ReauthenticationRequired(_) => ErrorKind::Forbidden,
            NoSuchUser(_)
            | NoSuchGroup(_)
            | NoSuchDevice(_)
            | NoSuchToken(_)
            | NoSuchRule { .. }
            | NoSuchService(_)
            | NoSuchApiKey(_)
            | NoSuchHarvest(_) => ErrorKind::NotFound,
            UserExists(_)
            | GroupExists(_)
            | InvalidState { .. }
            | DeviceRevoked { .. }
            | LastAdmin(_)
            | DestinationNotEmpty { .. } => ErrorKind::Conflict,
            LockedOut { .. } | Throttled { .. } => ErrorKind::TooManyRequests,
            Unreachable { .. } => ErrorKind::Unavailable,
            Postgres(e) if pg_unavailable(e) => ErrorKind::Unavailable,
            NotAnAuthDb { .. }
            | TooNew { .. }
            | Corrupt(_)
            | Hash(_)
            | Random(_)
            | Sqlite(_)
            | Postgres(_)
            | Io { .. } => ErrorKind::Internal,
        }
    }

    /// A stable snake_case code for clients (the message is for people and may change).
    pub fn code(&self) -> &'static str {
        use AuthError::*;
        match self {
            InvalidUsername { .. } => "invalid_username",
            InvalidPassword { .. } => "invalid_password",
            InvalidName { .. } => "invalid_name",
            UnknownRole(_) => "unknown_role",
            InvalidArgument(_) => "invalid_argument",
            InvalidCredentials => "invalid_credentials",
            WrongPassword => "wrong_password",
            TokenUnknown => "token_unknown",
            TokenExpired { .. } => "token_expired",
            TokenRevoked { .. } => "token_revoked",
            UserDisabled { .. } => "user_disabled",
            EnrolmentUnknown => "enrolment_unknown",
            EnrolmentExpired { .. } => "enrolment_expired",
            EnrolmentUsed { .. } => "enrolment_used",
            LoginRequired(_) => "login_required",
            AwaitingApproval { .. } => "awaiting_approval",
            RegistrationRejected { .. } => "registration_rejected",
            Forbidden(_) => "forbidden",
            NoSuchUser(_) => "no_such_user",
            NoSuchGroup(_) => "no_such_group",
            NoSuchDevice(_) => "no_such_device",
            NoSuchToken(_) => "no_such_token",
            NoSuchRule { .. } => "no_such_rule",
            NoSuchService(_) => "no_such_service",
            NoSuchApiKey(_) => "no_such_api_key",
            NoSuchHarvest(_) => "no_such_harvest",
            UserExists(_) => "user_exists",
            GroupExists(_) => "group_exists",
            InvalidState { .. } => "invalid_state",
            DeviceRevoked { .. } => "device_revoked",
            LastAdmin(_) => "last_admin",
            DestinationNotEmpty { .. } => "destination_not_empty",
            LockedOut { .. } => "locked_out",
            Throttled { .. } => "throttled",
            RegistrationClosed => "registration_closed",
            ReauthenticationRequired(_) => "reauthentication_required",
            NotAnAuthDb { .. }
            | TooNew { .. }
            | Corrupt(_)
            | Hash(_)
            | Random(_)
            | Sqlite(_)
            | Postgres(_)
            | Io { .. } => "internal",
            Unreachable { .. } => "unavailable",
        }
    }
}

/// A PostgreSQL error with the server's message (the driver's own `Display` says only "db error").
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Whether the database cannot serve the call right now rather than anything about the call: the
/// connection closed or broken (an I/O error on its socket: the server was stopped), a connection
/// exception (`08…`), a shutdown or start-up (`57P01`–`57P03`), or a read-only standby
/// (`25006`). The store's test, plus the socket errors.
pub(crate) fn pg_unavailable(e: &postgres::Error) -> bool {
    e.is_closed()
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        || e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "25006")
        })
}
