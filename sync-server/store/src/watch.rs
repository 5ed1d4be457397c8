//! Commit signals: how a process learns that another writer committed to its store.
//!
//! Several server processes share one PostgreSQL store, and `shikong import` writes to a data
//! folder a server is serving. Each process keeps caches derived from the store (map tiles, the
//! gazetteer's index) that a commit through *another* process makes stale; the watcher tells it
//! to catch up now instead of at the next request's freshness check.
//!
//! - **PostgreSQL**: every write transaction sends `NOTIFY shikong_commit, '<tx>'`
//!   ([`PG_CHANNEL`]), delivered by the database only when (and after) it commits; the watcher
//!   holds a dedicated connection that `LISTEN`s on that channel. A lost connection is reopened
//!   with backoff; the first wait after a reconnection reports a commit (some may have been
//!   missed meanwhile, and catching up is idempotent).
//! - **Any other backend** (SQLite): a poll of [`crate::FeatureStore::latest_tx`] per wait — one indexed
//!   read every half second, through a weak handle so the watcher never keeps a store open.
//!
//! A watcher is a blocking object for one thread: [`CommitWatch::wait`] returns within its
//! timeout, so the thread can look between waits whether its owner is still there.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;

use crate::error::{Result, StoreError};
use crate::{Store, TxId};

/// The PostgreSQL notification channel every write transaction notifies at commit.
pub const PG_CHANNEL: &str = "shikong_commit";

/// Longest pause between two attempts to reopen a lost listening connection.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Wakes when a writer — this process or another — committed to the store.
pub trait CommitWatch: Send {
    /// Waits at most `timeout` (a little more when reconnecting) for commits; `true` when there
    /// were (or may have been) commits since the previous call. An error says the signal is
    /// broken for now (the next calls retry, with backoff); the caller logs it and goes on.
    fn wait(&mut self, timeout: Duration) -> Result<bool>;
}

/// How a backend signals commits ([`crate::FeatureStore::commit_signal`]).
#[derive(Debug, Clone, Default)]
pub enum CommitSignal {
    /// No push signal: poll the newest transaction.
    #[default]
    Poll,
    /// PostgreSQL `LISTEN` on [`PG_CHANNEL`] at this database.
    Listen(Box<postgres::Config>, String),
}

/// A watcher for `store`, chosen by its backend's [`CommitSignal`]. It holds `store` weakly:
/// once every strong handle is gone its waits return `false` (after sleeping their timeout).
pub fn watch_commits(store: &Arc<dyn Store>) -> Box<dyn CommitWatch> {
    match store.commit_signal() {
        CommitSignal::Listen(config, shown) => Box::new(PgListen::new(*config, shown)),
        CommitSignal::Poll => {
            let seen = store.latest_tx().ok();
            Box::new(Poll { store: Arc::downgrade(store), seen })
        }
    }
}

/// The polling watcher: the newest transaction, compared with the one seen last.
struct Poll {
    store: Weak<dyn Store>,
    seen: Option<TxId>,
}

impl CommitWatch for Poll {
    fn wait(&mut self, timeout: Duration) -> Result<bool> {
        std::thread::sleep(timeout);
        let Some(store) = self.store.upgrade() else { return Ok(false) };
        let latest = store.latest_tx()?;
        let changed = self.seen != Some(latest);
        self.seen = Some(latest);
        Ok(changed)
    }
}

/// The listening watcher: one connection of its own, outside the store's pool.
struct PgListen {
    config: postgres::Config,
    shown: String,
    client: Option<postgres::Client>,
    /// When the next connection attempt may run, and the pause after a failed one.
    retry_at: Instant,
    backoff: Duration,
}

impl PgListen {
    fn new(config: postgres::Config, shown: String) -> Self {
        PgListen { config, shown, client: None, retry_at: Instant::now(), backoff: Duration::from_millis(250) }
    }

    /// Opens the listening connection (the caller checked the backoff).
    fn connect(&mut self) -> Result<postgres::Client> {
        let mut client = self
            .config
            .connect(postgres::NoTls)
            .map_err(|e| StoreError::Connect { config: self.shown.clone(), reason: e.to_string() })?;
        client
            .batch_execute(&format!("LISTEN {PG_CHANNEL}"))
            .map_err(|e| StoreError::Connect { config: self.shown.clone(), reason: e.to_string() })?;
        Ok(client)
    }

    fn lost(&mut self, reason: String) -> StoreError {
        self.client = None;
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        StoreError::Connect { config: self.shown.clone(), reason }
    }
}

impl CommitWatch for PgListen {
    fn wait(&mut self, timeout: Duration) -> Result<bool> {
        let Some(client) = self.client.as_mut() else {
            let now = Instant::now();
            if now < self.retry_at {
                std::thread::sleep(timeout.min(self.retry_at - now));
                return Ok(false);
            }
            return match self.connect() {
                Ok(client) => {
                    self.client = Some(client);
                    self.backoff = Duration::from_millis(250);
                    // Commits made while no connection listened were not heard.
                    Ok(true)
                }
                Err(e) => Err(self.lost(e.to_string())),
            };
        };
        match listen(client, timeout) {
            Ok(heard) => Ok(heard),
            Err(reason) => Err(self.lost(reason)),
        }
    }
}

/// Waits up to `timeout` for a notification on `client`, then takes every other one already
/// there (one wake covers them all); `Err` when the connection failed or closed.
fn listen(client: &mut postgres::Client, timeout: Duration) -> std::result::Result<bool, String> {
    let heard = {
        let mut notes = client.notifications();
        let first = notes.timeout_iter(timeout).next().map_err(|e| e.to_string())?;
        if first.is_some() {
            let mut more = notes.iter();
            while more.next().map_err(|e| e.to_string())?.is_some() {}
        }
        first.is_some()
    };
    if client.is_closed() {
        return Err("the listening connection closed".into());
    }
    Ok(heard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteStore, TxMeta};

    /// One transaction through `s` (a new layer).
    pub(crate) fn write(s: &dyn Store) {
        let mut tx = s.begin(TxMeta::by("other process")).unwrap();
        tx.create_layer(crate::conformance::manhole_layer()).unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn the_poll_sees_a_write_through_another_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.gpkg");
        let a: Arc<dyn Store> = Arc::new(SqliteStore::open_or_create(&path).unwrap());
        let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let mut watch = watch_commits(&b);
        assert!(!watch.wait(Duration::from_millis(50)).unwrap(), "nothing committed yet");
        write(a.as_ref());
        assert!(watch.wait(Duration::from_millis(50)).unwrap(), "the other handle's commit is seen");
        assert!(!watch.wait(Duration::from_millis(50)).unwrap(), "and reported once");
    }

    /// Several handles on one PostgreSQL database (as several processes hold them).
    mod postgres {
        use super::*;
        use crate::PgStore;

        #[test]
        fn a_commit_through_one_handle_wakes_another_handles_watcher() {
            let url = shikong_pgtest::Cluster::shared().fresh_db();
            let a: Arc<dyn Store> = Arc::new(PgStore::open(&url, true).unwrap());
            let b: Arc<dyn Store> = Arc::new(PgStore::open(&url, false).unwrap());
            let mut watch = watch_commits(&b);
            // The first wait connects (and, having heard nothing before, reports a commit).
            assert!(watch.wait(Duration::from_millis(50)).unwrap());
            assert!(!watch.wait(Duration::from_millis(50)).unwrap(), "nothing committed");
            let started = Instant::now();
            write(a.as_ref());
            let mut heard = false;
            while !heard && started.elapsed() < Duration::from_secs(2) {
                heard = watch.wait(Duration::from_millis(100)).unwrap();
            }
            assert!(heard, "the commit through the other handle woke the watcher within 2 s");
            eprintln!("commit to wake: {:?}", started.elapsed());
            assert!(!watch.wait(Duration::from_millis(50)).unwrap(), "one commit, one wake");
            // A read-only or empty transaction notifies nobody.
            drop(a.begin(TxMeta::by("nobody")).unwrap());
            assert_eq!(a.count("manhole").unwrap(), 0);
            assert!(!watch.wait(Duration::from_millis(200)).unwrap(), "no commit, no wake");
        }

        #[test]
        fn a_lost_listening_connection_is_reopened_and_reports_a_commit() {
            let url = shikong_pgtest::Cluster::shared().fresh_db();
            let a: Arc<dyn Store> = Arc::new(PgStore::open(&url, true).unwrap());
            let mut watch = watch_commits(&a);
            assert!(watch.wait(Duration::from_millis(50)).unwrap());
            let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
            let killed: i64 = admin
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = current_database() AND query LIKE 'LISTEN %'",
                    &[],
                )
                .unwrap()
                .get(0);
            assert_eq!(killed, 1, "the watcher's listening connection");
            // The loss shows as an error, then the watcher reconnects (backoff 250 ms) and says
            // commits may have been missed; after that it hears commits again.
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut errors = 0;
            loop {
                match watch.wait(Duration::from_millis(100)) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        errors += 1;
                        assert!(matches!(e, StoreError::Connect { .. }), "{e}");
                    }
                }
                assert!(Instant::now() < deadline, "the watcher did not reconnect");
            }
            assert!(errors >= 1, "the loss was reported");
            write(a.as_ref());
            let deadline = Instant::now() + Duration::from_secs(2);
            while !watch.wait(Duration::from_millis(100)).unwrap() {
                assert!(Instant::now() < deadline, "no wake after the reconnection");
            }
        }
    }
}
