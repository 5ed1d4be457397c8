//! The accounts in a PostgreSQL database (the server's `--store postgres://…`), so that every
//! server process on that database shares users, tokens, rules and the audit log.
//!
//! Tables live in their own schema, `shikong_auth` (apart from the store's `sk_*` tables in
//! `public`; connections set `search_path` to it, so the queries are the SQLite ones). The DDL is
//! `migrations/auth/postgres/`, numbered like the SQLite migrations (the same logical schema
//! version in `shikong_auth.auth_meta`), applied under a session advisory lock so two processes
//! starting together do not both migrate.
//!
//! Connections come from a small pool (at most [`MAX_CONNECTIONS`] open; a caller waiting
//! longer than [`WAIT`] opens one beyond, so a thread already holding one never waits for
//! itself). A broken connection (the server restarted, a failover) is dropped, not reused: the
//! next call connects again.

use std::cell::RefCell;
use std::str::FromStr;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::sql::{Conn, PgClient};
use crate::error::{AuthError, Result};

/// Connections one process opens at most (`SHIKONG_PG_AUTH_CONNECTIONS` overrides).
const MAX_CONNECTIONS: usize = 8;
/// How long a caller waits for a free connection before opening one beyond the cap.
const WAIT: Duration = Duration::from_secs(5);

/// The schema the auth tables live in.
pub const SCHEMA: &str = "shikong_auth";

/// Held while migrating. ("SKAUTH_M")
const MIGRATION_LOCK: i64 = 0x534B_4155_5448_5F4D;

const MIGRATIONS: &[(i64, &str)] = &[
    (2, include_str!("../../../../migrations/auth/postgres/0002_auth.sql")),
    (3, include_str!("../../../../migrations/auth/postgres/0003_services.sql")),
    (4, include_str!("../../../../migrations/auth/postgres/0004_harvest.sql")),
    (super::SCHEMA_VERSION, include_str!("../../../../migrations/auth/postgres/0005_key_rate.sql")),
];

pub(crate) struct PgPool {
    config: postgres::Config,
    /// The URL with its password hidden (for messages).
    pub shown: String,
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool").field("url", &self.shown).finish()
    }
}

/// `url` with any password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (auth, host) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{host}"),
        None => url.to_owned(),
    }
}

impl PgPool {
    /// Connects to `url`, creating or upgrading the auth tables, and keeps that connection.
    pub fn open(url: &str) -> Result<Self> {
        let shown = redact(url);
        let config = postgres::Config::from_str(url)
            .map_err(|e| AuthError::NotAnAuthDb { path: shown.clone(), reason: e.to_string() })?;
        let first = connect(&config, &shown)?;
        migrate(&first, &shown)?;
        let max = std::env::var("SHIKONG_PG_AUTH_CONNECTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MAX_CONNECTIONS)
            .max(1);
        Ok(PgPool {
            config,
            shown,
            max,
            state: Mutex::new(PoolState { idle: vec![first], open: 1 }),
            freed: Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, or a new one.
    pub fn get(&self) -> Result<Conn> {
        let deadline = Instant::now() + WAIT;
        let mut s = self.lock();
        loop {
            if let Some(c) = s.idle.pop() {
                if c.is_broken() {
                    s.open -= 1;
                    continue;
                }
                return Ok(c);
            }
            let now = Instant::now();
            if s.open < self.max || now >= deadline {
                s.open += 1;
                drop(s);
                return connect(&self.config, &self.shown).inspect_err(|_| self.lock().open -= 1);
            }
            s = self.freed.wait_timeout(s, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Gives a connection back. A broken one is closed, and so are the idle ones: the server
    /// went away (restarted, failed over), so they are most likely broken too, and each would
    /// otherwise fail one more call before being found out.
    pub fn put(&self, c: Conn) {
        let mut s = self.lock();
        let mut closed = Vec::new();
        if c.is_broken() {
            closed = std::mem::take(&mut s.idle);
            s.open -= 1 + closed.len();
            closed.push(c);
        } else if s.idle.len() >= self.max {
            s.open -= 1;
            closed.push(c);
        } else {
            s.idle.push(c);
        }
        drop(s);
        self.freed.notify_all();
        drop(closed);
    }
}

impl Drop for PgPool {
    /// Closes the idle connections on a thread of its own: closing talks to the server through
    /// the `postgres` client's runtime, which panics on a tokio runtime thread (the last handle
    /// of a server's state may be dropped on one).
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.state.get_mut().unwrap_or_else(PoisonError::into_inner).idle);
        if !idle.is_empty() {
            std::thread::scope(|s| {
                s.spawn(move || drop(idle));
            });
        }
    }
}

fn connect(config: &postgres::Config, shown: &str) -> Result<Conn> {
    let mut client = config
        .connect(postgres::NoTls)
        .map_err(|e| AuthError::Unreachable { url: shown.to_owned(), reason: e.to_string() })?;
    client.batch_execute(&format!("SET search_path TO {SCHEMA}"))?;
    Ok(Conn::Postgres(Box::new(RefCell::new(PgClient::new(client)))))
}

fn migrate(conn: &Conn, shown: &str) -> Result<()> {
    conn.batch(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    let migrated = migrate_locked(conn, shown);
    let unlocked = conn.batch(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
    migrated.and(unlocked)
}

fn migrate_locked(conn: &Conn, shown: &str) -> Result<()> {
    let has_meta = conn.query_one(&format!("SELECT to_regclass('{SCHEMA}.auth_meta') IS NOT NULL"), &[])?.bool(0)?;
    let current = if has_meta {
        conn.query_opt("SELECT value FROM auth_meta WHERE key = 'schema_version'", &[])?
            .map(|r| r.text(0))
            .transpose()?
            .map_or(0, |v| v.parse().unwrap_or(i64::MAX))
    } else {
        0
    };
    let supported = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > supported {
        return Err(AuthError::TooNew { path: shown.into(), found: current, supported });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        conn.batch("BEGIN")?;
        let applied = conn.batch(sql).and_then(|()| {
            conn.execute(
                "INSERT INTO auth_meta (key, value) VALUES ('schema_version', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                super::sql::params![version.to_string()],
            )
        });
        match applied {
            Ok(_) => conn.batch("COMMIT")?,
            Err(e) => {
                let _ = conn.batch("ROLLBACK");
                return Err(AuthError::Corrupt(format!("{shown}: auth migration {version} failed: {e}")));
            }
        }
    }
    Ok(())
}
