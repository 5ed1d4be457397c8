//! The auth database: by default one SQLite file, `DIR/auth.sqlite`, beside (never inside) the
//! store; with a PostgreSQL store, the schema `shikong_auth` in that database (`pg.rs`), shared by
//! every server process on it. One set of queries serves both (`sql.rs`).
//!
//! SQLite: one connection behind a mutex: authentication is a few small statements per request,
//! far below what one SQLite connection does, and a single writer keeps every change and its
//! audit row in one transaction (`BEGIN IMMEDIATE`, so it never fails half-way on contention).
//! WAL mode with `synchronous = FULL`: a committed change (a revocation, an audit row) survives
//! power loss. PostgreSQL: a small pool; writers take a transaction-level advisory lock
//! ([`sql::AUTH_WRITER_LOCK`]) so the same holds across processes.
//!
//! Nothing read from the database is cached in the process: every token check and permission
//! check reads the rows as they are now, so a revocation, a password change or a rule change made
//! through any process applies to the next request on every process. Password hashing
//! (deliberately slow) always happens outside the lock.

mod audit;
pub(crate) mod copy;
mod devices;
mod groups;
pub(crate) mod harvest;
mod pg;
mod rules;
pub(crate) mod services;
pub(crate) mod sql;
mod tokens;
mod users;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

pub(crate) use sql::{Conn, P, Row, params};

use crate::audit::{AuditAction, Outcome};
use crate::clock::{Clock, SystemClock};
use crate::error::{AuthError, Result};
use crate::throttle::{AuditAdmission, AuditBudget, RateLimiter, Suppressed, address_key, bounded};
use crate::types::{
    Actor, AuditId, AuthConfig, Client, DeviceId, Principal, Role, TokenId, User, UserId, UserStatus, Who,
};

/// Auth schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 5;

/// `PRAGMA application_id` of an auth database ("SKAU"), so that a GeoPackage or another SQLite
/// file given by mistake is recognised and refused instead of being filled with tables.
pub const APPLICATION_ID: i32 = 0x534B_4155;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../../migrations/auth/0001_auth.sql")),
    (2, include_str!("../../../../migrations/auth/0002_audit_outbox.sql")),
    (3, include_str!("../../../../migrations/auth/0003_services.sql")),
    (4, include_str!("../../../../migrations/auth/0004_harvest.sql")),
    (SCHEMA_VERSION, include_str!("../../../../migrations/auth/0005_key_rate.sql")),
];

/// Users, groups, devices, tokens, permission rules and the audit log, in `auth.sqlite` or in
/// the PostgreSQL database of the store ([`AuthStore::open_postgres`]).
///
/// Every method that changes something takes the [`Actor`] it is checked against and attributed
/// to, and writes its audit row in the same transaction.
#[derive(Debug)]
pub struct AuthStore {
    path: Option<PathBuf>,
    backend: Backend,
    clock: Arc<dyn Clock>,
    config: AuthConfig,
    /// A hash to verify against when the username does not exist, so that answering takes as long
    /// as for a wrong password.
    dummy_hash: OnceLock<String>,
    /// Attempts per client address and per account (in memory, bounded; [`crate::throttle`]).
    throttles: Mutex<Throttles>,
    /// Audit rows of refused anonymous attempts per client address.
    audit_budget: Mutex<AuditBudget>,
}

/// Where the accounts live.
#[derive(Debug)]
enum Backend {
    Sqlite(Mutex<Conn>),
    Postgres(pg::PgPool),
}

/// A connection in use: SQLite's one connection (locked), or one taken from the PostgreSQL pool
/// (given back when dropped).
pub(crate) enum Held<'a> {
    Sqlite(MutexGuard<'a, Conn>),
    Pooled(&'a pg::PgPool, Option<Conn>),
}

impl std::ops::Deref for Held<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match self {
            Held::Sqlite(c) => c,
            Held::Pooled(_, Some(c)) => c,
            // Taken only by `drop`.
            Held::Pooled(_, None) => unreachable!("a pooled connection is present until dropped"),
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Held::Pooled(pool, c) = self
            && let Some(c) = c.take()
        {
            pool.put(c);
        }
    }
}

/// An open write transaction, rolled back when dropped before [`Self::commit`].
struct WriteTx<'a> {
    conn: &'a Conn,
    done: bool,
}

impl WriteTx<'_> {
    fn commit(mut self) -> Result<()> {
        self.conn.batch("COMMIT")?;
        self.done = true;
        Ok(())
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.batch("ROLLBACK");
        }
    }
}

/// One limiter per kind of anonymous work ([`Limit`]).
#[derive(Debug, Default)]
struct Throttles {
    login_address: RateLimiter,
    register_address: RateLimiter,
    register_account: RateLimiter,
    enrol_address: RateLimiter,
    enrol_account: RateLimiter,
}

/// What is throttled, and by which key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    /// Password checks per client address (logins, re-authentication).
    LoginAddress,
    RegisterAddress,
    /// Per requested username (lowercased).
    RegisterAccount,
    EnrolAddress,
    /// Per account the enrolment code enrols a device for.
    EnrolAccount,
}

impl Drop for AuthStore {
    /// Writes out the counts of refused anonymous attempts not yet in the audit log.
    fn drop(&mut self) {
        let now = self.now();
        let due = self.audit_budget.get_mut().unwrap_or_else(PoisonError::into_inner).due(now, true);
        if !due.is_empty() {
            let flush = || {
                let _ = self.write(|tx| due.iter().try_for_each(|(key, s)| audit_summary(tx, now, key, s)));
            };
            match self.backend {
                // The `postgres` client must not block a tokio runtime thread, which this may be.
                Backend::Postgres(_) => std::thread::scope(|s| {
                    s.spawn(flush);
                }),
                Backend::Sqlite(_) => flush(),
            }
        }
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
}

impl AuthStore {
    /// The file name inside the data directory.
    pub const FILE_NAME: &'static str = "auth.sqlite";

    /// Opens `dir/auth.sqlite`, creating it when missing (the directory must exist).
    pub fn open_in(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(AuthError::Io {
                path: display(dir),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
            });
        }
        Self::open(dir.join(Self::FILE_NAME))
    }

    /// Opens the auth database at `path`, creating it when missing. New files are readable by
    /// their owner only (they hold password hashes).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| AuthError::Io { path: display(path), source };
        let fresh = match std::fs::metadata(path) {
            Ok(m) => m.len() == 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_private(path).map_err(io)?;
                true
            }
            Err(e) => return Err(io(e)),
        };
        let not_auth = |reason: String| AuthError::NotAnAuthDb { path: display(path), reason };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| not_auth(e.to_string()))?;
        configure(&conn).map_err(|e| not_auth(e.to_string()))?;
        // Any read fails here on a file that is not SQLite at all.
        let app: i32 =
            conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(|e| not_auth(e.to_string()))?;
        if fresh {
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        } else if app != APPLICATION_ID {
            let what = if app == 0x4750_4B47 {
                "it is a GeoPackage".to_string()
            } else {
                format!("application_id is {app:#x}")
            };
            return Err(not_auth(what));
        }
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| not_auth(e.to_string()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(not_auth(format!("cannot switch to WAL mode (journal_mode is {mode})")));
        }
        migrate(&conn, &display(path))?;
        Ok(Self::new(Some(path.to_owned()), Backend::Sqlite(Mutex::new(Conn::Sqlite(conn)))))
    }

    /// Opens the accounts in the PostgreSQL database at `url` (`postgres://…`, the server's
    /// store), creating the schema `shikong_auth` when missing. Every process opening the same
    /// database shares users, tokens, rules and the audit log. Never call it (or the store's
    /// methods) on a tokio runtime thread: the `postgres` client runs its own runtime.
    pub fn open_postgres(url: &str) -> Result<Self> {
        Ok(Self::new(None, Backend::Postgres(pg::PgPool::open(url)?)))
    }

    /// A private in-memory database (tests, and servers run without a data directory).
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        configure(&conn)?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        migrate(&conn, ":memory:")?;
        Ok(Self::new(None, Backend::Sqlite(Mutex::new(Conn::Sqlite(conn)))))
    }

    fn new(path: Option<PathBuf>, backend: Backend) -> Self {
        AuthStore {
            path,
            backend,
            clock: Arc::new(SystemClock),
            config: AuthConfig::default(),
            dummy_hash: OnceLock::new(),
            throttles: Mutex::default(),
            audit_budget: Mutex::default(),
        }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_config(mut self, config: AuthConfig) -> Self {
        self.config = config;
        self
    }

    /// The file, or `None` for an in-memory or a PostgreSQL database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Where the accounts live, for messages: the file, `:memory:`, or the PostgreSQL URL with
    /// its password hidden (`… (schema shikong_auth)`).
    pub fn location(&self) -> String {
        match (&self.backend, &self.path) {
            (Backend::Postgres(p), _) => format!("{} (schema {})", p.shown, pg::SCHEMA),
            (Backend::Sqlite(_), Some(path)) => display(path),
            (Backend::Sqlite(_), None) => ":memory:".into(),
        }
    }

    /// Whether the accounts are in a PostgreSQL database (shared by every process on it).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A connection (SQLite: the one, locked; PostgreSQL: one from the pool).
    pub(crate) fn conn(&self) -> Result<Held<'_>> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(Held::Sqlite(c.lock().unwrap_or_else(PoisonError::into_inner))),
            Backend::Postgres(pool) => Ok(Held::Pooled(pool, Some(pool.get()?))),
        }
    }

    /// Runs `f` in a write transaction ([`Conn::begin_write`]), committed when it returns `Ok`.
    fn write<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        self.write_or_refuse(|tx| f(tx).map(Ok))
    }

    /// Writes the counts of refused anonymous attempts that are due ([`AuditBudget::due`]) with
    /// whatever else is being written.
    fn write_due_counts(&self, conn: &Conn) -> Result<()> {
        let now = self.now();
        let due = self.audit_budget.lock().unwrap_or_else(PoisonError::into_inner).due(now, false);
        due.iter().try_for_each(|(key, s)| audit_summary(conn, now, key, s))
    }

    /// Like [`Self::write`] for operations that may be refused but must leave a trace (an audit
    /// row, a failed-login count): `f` returns `Ok(Err(refusal))` to commit and then report the
    /// refusal; a plain `Err` (a database error) rolls back as usual.
    fn write_or_refuse<T>(&self, f: impl FnOnce(&Conn) -> Result<Result<T>>) -> Result<T> {
        let conn = self.conn()?;
        conn.begin_write()?;
        let tx = WriteTx { conn: &conn, done: false };
        let out = f(&conn)?;
        self.write_due_counts(&conn)?;
        tx.commit()?;
        out
    }

    /// Takes one attempt of `limit` for `key` (an account, or an [`address_key`]); refuses with
    /// [`AuthError::Throttled`] beyond the configured rate.
    pub(crate) fn throttle(&self, limit: Limit, key: &str, now: Timestamp) -> Result<()> {
        let p = &self.config.throttle;
        let mut t = self.throttles.lock().unwrap_or_else(PoisonError::into_inner);
        let (policy, limiter, what) = match limit {
            Limit::LoginAddress => (&p.login_per_address, &mut t.login_address, "password attempts from this address"),
            Limit::RegisterAddress => {
                (&p.register_per_address, &mut t.register_address, "registrations from this address")
            }
            Limit::RegisterAccount => {
                (&p.register_per_account, &mut t.register_account, "registrations for this username")
            }
            Limit::EnrolAddress => (&p.enrol_per_address, &mut t.enrol_address, "enrolments from this address"),
            Limit::EnrolAccount => (&p.enrol_per_account, &mut t.enrol_account, "device enrolments for this account"),
        };
        limiter.check(policy, key, now).map_err(|until| AuthError::Throttled { what, until })
    }

    /// [`Self::throttle`] by the client's address (callers without one, the CLI, are not throttled).
    pub(crate) fn throttle_client(&self, limit: Limit, client: &Client, now: Timestamp) -> Result<()> {
        match &client.address {
            Some(a) => self.throttle(limit, &address_key(a), now),
            None => Ok(()),
        }
    }

    /// Writes an audit row like [`audit_row`], except that refused anonymous attempts beyond the
    /// per-address budget are counted instead, and written later as one summary row
    /// ([`crate::throttle::AuditBudget`]). Never removes a row.
    pub(crate) fn audit(
        &self,
        conn: &Conn,
        now: Timestamp,
        actor: &Actor,
        action: &AuditAction,
        outcome: Outcome,
        note: Note<'_>,
    ) -> Result<()> {
        if let (Who::Anonymous, Some(address), false) = (&actor.who, &actor.client.address, outcome == Outcome::Ok) {
            let admission = self.audit_budget.lock().unwrap_or_else(PoisonError::into_inner).admit(
                &self.config.throttle.audit_per_address,
                address,
                action.as_str(),
                now,
            );
            match admission {
                AuditAdmission::Count => return Ok(()),
                AuditAdmission::Write(Some((key, s))) => audit_summary(conn, now, &key, &s)?,
                AuditAdmission::Write(None) => {}
            }
        }
        audit_row(conn, now, actor, action, outcome, note)?;
        Ok(())
    }

    /// Checks that `actor` is an admin (or local operator); a refusal is audited as `denied`.
    fn require_admin(&self, actor: &Actor, action: AuditAction, what: &str, note: Note<'_>) -> Result<()> {
        actor.require_admin(what).inspect_err(|e| self.audit_refusal(actor, action, note, e))
    }

    /// Records a refused operation in its own transaction. If even that fails, the refusal is still
    /// what the caller reports: the database error will show again on the next write.
    fn audit_refusal(&self, actor: &Actor, action: AuditAction, note: Note<'_>, e: &AuthError) {
        let outcome = match e.kind() {
            crate::ErrorKind::Forbidden | crate::ErrorKind::Unauthorized | crate::ErrorKind::TooManyRequests => {
                Outcome::Denied
            }
            _ => Outcome::Failed,
        };
        let now = self.now();
        let note = Note { detail: Some(e.to_string()), ..note };
        let _ = self.write(|tx| self.audit(tx, now, actor, &action, outcome, note));
    }
}

/// Creates an empty file only its owner can read and write (SQLite gives its -wal and -shm files
/// the same permissions).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).map(drop)
}

fn migrate(conn: &Connection, path: &str) -> Result<()> {
    let has_meta = conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'auth_meta'", [], |_| Ok(()))
        .optional()?
        .is_some();
    let current: i64 = if has_meta {
        conn.query_row("SELECT value FROM auth_meta WHERE key = 'schema_version'", [], |r| r.get::<_, String>(0))
            .optional()?
            .map(|v| v.parse().unwrap_or(i64::MAX))
            .unwrap_or(0)
    } else {
        0
    };
    let supported = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > supported {
        return Err(AuthError::TooNew { path: path.into(), found: current, supported });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        conn.execute_batch("BEGIN IMMEDIATE;")?;
        let applied = conn.execute_batch(sql).and_then(|()| {
            conn.execute(
                "INSERT INTO auth_meta (key, value) VALUES ('schema_version', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [version.to_string()],
            )
        });
        match applied {
            Ok(_) => conn.execute_batch("COMMIT;")?,
            Err(e) => {
                conn.execute_batch("ROLLBACK;")?;
                return Err(AuthError::Corrupt(format!("{path}: auth migration {version} failed: {e}")));
            }
        }
    }
    Ok(())
}

// ---- instants ----

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

// ---- users, shared by the modules ----

/// A user row including the password hash (never leaves the crate).
#[derive(Debug, Clone)]
pub(crate) struct UserRow {
    pub id: UserId,
    pub username: String,
    pub display_name: Option<String>,
    pub contact: Option<String>,
    pub role: Role,
    pub status: UserStatus,
    pub status_reason: Option<String>,
    pub password_hash: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const USER_COLS: &str =
    "id, username, display_name, contact, role, status, status_reason, password_hash, created_at, updated_at";

fn user_row(r: &Row) -> Result<UserRow> {
    Ok(UserRow {
        id: UserId(r.i64(0)?),
        username: r.text(1)?,
        display_name: r.opt_text(2)?,
        contact: r.opt_text(3)?,
        role: r.parsed(4)?,
        status: r.parsed(5)?,
        status_reason: r.opt_text(6)?,
        password_hash: r.text(7)?,
        created_at: r.ts(8)?,
        updated_at: r.ts(9)?,
    })
}

/// The user named `username` (ASCII case ignored), if any.
pub(crate) fn find_user(conn: &Conn, username: &str) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE username = ?1");
    conn.query_opt(&sql, params![username])?.as_ref().map(user_row).transpose()
}

pub(crate) fn get_user(conn: &Conn, username: &str) -> Result<UserRow> {
    find_user(conn, username)?.ok_or_else(|| AuthError::NoSuchUser(username.into()))
}

pub(crate) fn get_user_by_id(conn: &Conn, id: UserId) -> Result<UserRow> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?1");
    conn.query_opt(&sql, params![id.0])?
        .as_ref()
        .map(user_row)
        .transpose()?
        .ok_or_else(|| AuthError::Corrupt(format!("user id {id} is referenced but does not exist")))
}

pub(crate) fn groups_of(conn: &Conn, user: UserId) -> Result<Vec<String>> {
    let rows = conn.query(
        "SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ?1 ORDER BY g.name",
        params![user.0],
    )?;
    rows.iter().map(|r| r.text(0)).collect()
}

pub(crate) fn to_user(conn: &Conn, row: UserRow) -> Result<User> {
    let groups = groups_of(conn, row.id)?;
    Ok(User {
        id: row.id,
        username: row.username,
        display_name: row.display_name,
        contact: row.contact,
        role: row.role,
        status: row.status,
        status_reason: row.status_reason,
        groups,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(crate) fn principal(conn: &Conn, row: &UserRow, device: Option<DeviceId>, token: TokenId) -> Result<Principal> {
    Ok(Principal {
        user_id: row.id,
        username: row.username.clone(),
        role: row.role,
        groups: groups_of(conn, row.id)?,
        device,
        token,
    })
}

/// The error for an account that exists but may not log in or use tokens.
pub(crate) fn inactive_error(row: &UserRow) -> Option<AuthError> {
    let username = row.username.clone();
    match row.status {
        UserStatus::Active => None,
        UserStatus::Pending => Some(AuthError::AwaitingApproval { username }),
        UserStatus::Rejected => Some(AuthError::RegistrationRejected {
            username,
            reason: row.status_reason.clone().unwrap_or_else(|| "no reason given".into()),
        }),
        UserStatus::Disabled => Some(AuthError::UserDisabled { username }),
    }
}

// ---- audit rows ----

/// How an actor is named in `updated_by`/`created_by` columns.
pub(crate) fn actor_name(actor: &Actor) -> String {
    match &actor.who {
        Who::User(p) => p.username.clone(),
        Who::Local(name) => format!("local:{name}"),
        Who::Anonymous => "anonymous".into(),
    }
}

/// The parts of an audit row beyond actor, action and outcome.
#[derive(Debug, Default, Clone)]
pub(crate) struct Note<'a> {
    pub user: Option<&'a str>,
    pub target: Option<String>,
    pub layer: Option<&'a str>,
    pub entities: &'a [String],
    pub entity_count: Option<u64>,
    pub tx: Option<&'a str>,
    pub detail: Option<String>,
    /// The device, when it is not the actor's (a login naming a device, an enrolment).
    pub device: Option<DeviceId>,
}

impl<'a> Note<'a> {
    pub fn user(user: &'a str) -> Self {
        Note { user: Some(user), ..Note::default() }
    }

    pub fn target(mut self, target: impl ToString) -> Self {
        self.target = Some(target.to_string());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Longest text kept in an audit row's fields, in characters (longer text ends with `…`).
pub const MAX_AUDIT_NAME: usize = 128;
pub const MAX_AUDIT_CLIENT: usize = 64;
pub const MAX_AUDIT_REQUEST_ID: usize = 64;
pub const MAX_AUDIT_TARGET: usize = 256;
pub const MAX_AUDIT_DETAIL: usize = 1000;

/// One row per action saying how many refused anonymous attempts from `address` were counted
/// instead of recorded one by one.
fn audit_summary(conn: &Conn, now: Timestamp, address: &str, s: &Suppressed) -> Result<()> {
    let who = Actor::anonymous().with_client(Client::default().address(address));
    let (first, last) = (s.first.unwrap_or(now), s.last.unwrap_or(now));
    for (code, n) in &s.counts {
        let action: AuditAction = code.parse().unwrap_or(AuditAction::Other(code.clone()));
        let note = Note {
            entity_count: Some(*n),
            detail: Some(format!(
                "{n} more refused anonymous attempts from {address} between {first} and {last}, counted instead of \
                 recorded one by one (audit rate limit per address)"
            )),
            ..Note::default()
        }
        .target("audit summary");
        audit_row(conn, now, &who, &action, Outcome::Denied, note)?;
    }
    Ok(())
}

pub(crate) fn audit_row(
    conn: &Conn,
    at: Timestamp,
    actor: &Actor,
    action: &AuditAction,
    outcome: Outcome,
    note: Note<'_>,
) -> Result<AuditId> {
    let who = RowActor::of(actor);
    insert_audit_row(conn, at, &who, action.as_str(), outcome, note, None)?
        .ok_or_else(|| AuthError::Corrupt("an audit row without an outbox id was not written".into()))
}

/// Who an audit row names, as stored (`actor_kind`, `actor_id`, `actor`, the device, the client).
#[derive(Debug, Clone, Default)]
pub(crate) struct RowActor<'a> {
    pub kind: &'a str,
    pub id: Option<i64>,
    pub name: Option<&'a str>,
    pub device: Option<String>,
    pub client: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

impl<'a> RowActor<'a> {
    pub fn of(actor: &'a Actor) -> Self {
        let (kind, id, name, device) = match &actor.who {
            Who::User(p) => ("user", Some(p.user_id.0), Some(p.username.as_str()), p.device),
            Who::Local(name) => ("local", None, Some(name.as_str()), None),
            Who::Anonymous => ("anonymous", None, None, None),
        };
        RowActor {
            kind,
            id,
            name,
            device: device.map(|d| d.to_string()),
            client: actor.client.address.as_deref(),
            request_id: actor.client.request_id.as_deref(),
        }
    }
}

/// Inserts one audit row. With an `outbox_id` already recorded, writes nothing and answers
/// `None` (a record delivered twice from the store's outbox).
pub(crate) fn insert_audit_row(
    conn: &Conn,
    at: Timestamp,
    who: &RowActor<'_>,
    action: &str,
    outcome: Outcome,
    note: Note<'_>,
    outbox_id: Option<&str>,
) -> Result<Option<AuditId>> {
    let device = note.device.map(|d| d.to_string()).or_else(|| who.device.clone());
    // Anonymous callers choose much of this text: every field is bounded (by characters).
    let b = |s: Option<&str>, max: usize| s.map(|s| bounded(s, max).into_owned());
    let actor_name = b(who.name, MAX_AUDIT_NAME);
    let client = b(who.client, MAX_AUDIT_CLIENT);
    let request_id = b(who.request_id, MAX_AUDIT_REQUEST_ID);
    let user = b(note.user, MAX_AUDIT_NAME);
    let target = b(note.target.as_deref(), MAX_AUDIT_TARGET);
    let layer = b(note.layer, MAX_AUDIT_NAME);
    let tx_text = b(note.tx, MAX_AUDIT_NAME);
    let detail = b(note.detail.as_deref(), MAX_AUDIT_DETAIL);
    let entities = (!note.entities.is_empty()).then(|| {
        note.entities.iter().take(crate::audit::MAX_ENTITY_IDS).map(String::as_str).collect::<Vec<_>>().join("\n")
    });
    let count = note.entity_count.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let written = conn.query(
        "INSERT INTO audit (at, action, outcome, actor_kind, actor_id, actor, device, client, request_id, \
         \"user\", target, layer, entities, entity_count, tx, detail, outbox_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
         ON CONFLICT (outbox_id) WHERE outbox_id IS NOT NULL DO NOTHING RETURNING id",
        params![
            ms(at),
            bounded(action, MAX_AUDIT_NAME).into_owned(),
            outcome.as_str(),
            who.kind,
            who.id,
            actor_name,
            device,
            client,
            request_id,
            user,
            target,
            layer,
            entities,
            count,
            tx_text,
            detail,
            outbox_id,
        ],
    )?;
    written.first().map(|r| r.i64(0).map(AuditId)).transpose()
}
