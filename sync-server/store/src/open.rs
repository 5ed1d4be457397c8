//! Opening a store from a configuration, so that callers (the CLI, the server, tests, benches) hold
//! an `Arc<dyn Store>` and never name a backend type. A data directory or a `.gpkg` path opens the
//! embedded SQLite backend; a `postgres://` URL opens the PostgreSQL/PostGIS backend (the
//! database must exist; `init` makes the store's tables in it).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::Store;
use crate::clock::Clock;
use crate::error::{Result, StoreError};
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;

/// The file a data directory's store lives in.
pub const STORE_FILE: &str = "store.gpkg";

/// Where a store lives.
///
/// Parsed from text (`"DIR".parse()`): a `postgres://` or `postgresql://` URL names a PostgreSQL
/// store; a path ending in `.gpkg` names a SQLite store file; any other path is a data directory
/// whose store is `DIR/store.gpkg`. Shown (`Display`, `Debug`) with any password hidden.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreConfig {
    /// The embedded backend: one GeoPackage file.
    Sqlite { path: PathBuf },
    /// PostgreSQL with PostGIS, by connection URL.
    Postgres { url: String },
}

impl StoreConfig {
    /// The store of a data directory: `DIR/store.gpkg` (SQLite).
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        StoreConfig::Sqlite { path: dir.as_ref().join(STORE_FILE) }
    }

    /// A SQLite store file.
    pub fn sqlite_file(path: impl Into<PathBuf>) -> Self {
        StoreConfig::Sqlite { path: path.into() }
    }
}

impl FromStr for StoreConfig {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: String| StoreError::InvalidConfig { config: redact(s), reason };
        if s.trim().is_empty() {
            return Err(invalid("empty: give a data directory, a .gpkg file or a postgres:// URL".into()));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => Ok(StoreConfig::Postgres { url: s.to_owned() }),
                other => Err(invalid(format!(
                    "unknown scheme `{other}`: give a data directory, a .gpkg file or a postgres:// URL"
                ))),
            };
        }
        let path = PathBuf::from(s);
        Ok(if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gpkg")) {
            StoreConfig::sqlite_file(path)
        } else {
            StoreConfig::in_dir(path)
        })
    }
}

impl fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Sqlite { path } => write!(f, "{}", path.display()),
            StoreConfig::Postgres { url } => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            StoreConfig::Postgres { url } => f.debug_struct("Postgres").field("url", &redact(url)).finish(),
        }
    }
}

/// A URL with the password of its user info and any `password=` parameter replaced by `***`
/// (configurations are printed and logged).
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// How [`open_with`] opens a store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Create the store when it does not exist yet (`shikong init`); for SQLite also the
    /// directory that holds the file.
    pub create: bool,
    /// Where transaction times come from (default: the system clock). Tests pass a
    /// [`crate::FixedStepClock`] to make histories at chosen instants.
    pub clock: Option<Arc<dyn Clock>>,
}

/// Opens an existing store ([`StoreError::NotAStore`] when there is none).
pub fn open(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    open_with(config, &OpenOptions::default())
}

/// Opens a store, creating it when missing.
pub fn init(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    open_with(config, &OpenOptions { create: true, ..OpenOptions::default() })
}

/// Opens a store as `options` say.
pub fn open_with(config: &StoreConfig, options: &OpenOptions) -> Result<Arc<dyn Store>> {
    match config {
        StoreConfig::Sqlite { path } => {
            let store = if options.create {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
                }
                SqliteStore::open_or_create(path)?
            } else {
                SqliteStore::open(path)?
            };
            Ok(Arc::new(match &options.clock {
                Some(clock) => store.with_clock(Arc::clone(clock)),
                None => store,
            }))
        }
        StoreConfig::Postgres { url } => {
            let store = PgStore::open(url, options.create)?;
            Ok(Arc::new(match &options.clock {
                Some(clock) => store.with_clock(Arc::clone(clock)),
                None => store,
            }))
        }
    }
}

/// Opens an existing PostgreSQL store whose marked reads may be served by a streaming standby
/// of its database at `replica` (`shikong serve --store postgres://PRIMARY --read-replica
/// postgres://STANDBY`; see [`crate::read_route`] for which reads, [`PgStore::open_with_replica`]
/// for how). A SQLite store has no replicas: refused.
pub fn open_with_read_replica(config: &StoreConfig, replica: &str) -> Result<Arc<dyn Store>> {
    match config {
        StoreConfig::Postgres { url } => {
            if !matches!(replica.parse::<StoreConfig>()?, StoreConfig::Postgres { .. }) {
                return Err(StoreError::InvalidConfig {
                    config: redact(replica),
                    reason: "a read replica is a postgres:// URL (a streaming standby of the store's database)".into(),
                });
            }
            Ok(Arc::new(PgStore::open_with_replica(url, Some(replica), false)?))
        }
        StoreConfig::Sqlite { .. } => Err(StoreError::InvalidConfig {
            config: config.to_string(),
            reason: "a read replica needs a PostgreSQL store (--store postgres://…)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `input` parses to a configuration shown as `shown`, or fails with a message containing it.
    fn check(input: &str, shown: &str) {
        let got = match input.parse::<StoreConfig>() {
            Ok(c) => c.to_string(),
            Err(e) => e.to_string(),
        };
        assert!(got.contains(shown), "{input}: got `{got}`, expected `{shown}`");
        assert!(!got.contains("s3cret"), "{input}: a password leaked: {got}");
    }

    #[test]
    fn configurations_parse_from_text() {
        check("data", "data/store.gpkg");
        check("/srv/shikong/", "/srv/shikong/store.gpkg");
        check("/srv/city.gpkg", "/srv/city.gpkg");
        check("/srv/CITY.GPKG", "/srv/CITY.GPKG");
        check("postgres://db.local/shikong", "postgres://db.local/shikong");
        check("postgresql://app:s3cret@db.local:5432/shikong", "postgresql://app:***@db.local:5432/shikong");
        check("postgres://app@db/shikong?password=s3cret&sslmode=require", "?password=***&sslmode=require");
        check("", "invalid store configuration ``: empty");
        check("mysql://u:s3cret@h/db", "unknown scheme `mysql`");
        assert_eq!("data".parse::<StoreConfig>().unwrap(), StoreConfig::in_dir("data"));
        let pg: StoreConfig = "postgres://app:s3cret@db/shikong".parse().unwrap();
        assert!(!format!("{pg:?}").contains("s3cret"), "{pg:?}");
    }

    #[test]
    fn an_unreachable_database_names_itself_without_its_password() {
        // Port 1 on loopback: nothing listens there.
        let pg: StoreConfig = "postgres://app:s3cret@127.0.0.1:1/shikong?connect_timeout=2".parse().unwrap();
        let e = init(&pg).err().unwrap();
        assert!(matches!(e, StoreError::Connect { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with("postgres://app:***@127.0.0.1:1/shikong") && !msg.contains("s3cret"), "{msg}");
        assert!(msg.contains("cannot connect"), "{msg}");
    }

    #[test]
    fn init_creates_and_open_requires_an_existing_store() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::in_dir(dir.path().join("new"));
        let missing = open(&config).err().unwrap();
        assert!(matches!(missing, StoreError::NotAStore { .. }) && missing.to_string().contains("shikong init"));
        let store = init(&config).unwrap();
        assert!(store.layers().unwrap().is_empty());
        drop(store);
        assert!(dir.path().join("new").join(STORE_FILE).is_file());
        assert_eq!(open(&config).unwrap().latest_tx().unwrap(), crate::TxId(0));
    }
}
