//! Server marks: how a device notices that the server went back in time.
//!
//! A server restored from a backup (`shikong restore`) has lost every transaction committed after
//! that backup, including pushes it acknowledged. Devices still hold those changes in their
//! documents, but believe them delivered, and their pull cursors point past the restored store's
//! end (or, once new transactions reuse the numbers, at unrelated ones). A **mark** names one
//! transaction by its number *and* its commit instant (`TX.MICROSECONDS`): the newest one the
//! device has heard of (in a pull cursor, in a push answer). The server checks a device's mark
//! on every pull and push: when it no longer holds that exact transaction, it has diverged from
//! what the device knows, and the device starts over ([`wire::RESTART_CURSOR`]) and sends its own
//! changes again (automerge drops what the server already has).
//!
//! Why the instant: after a restore new transactions reuse the lost numbers, so a number alone
//! would match again; a reused number with the lost instant cannot (a new transaction commits
//! after the restore, so after every lost one).

use std::fmt;
use std::str::FromStr;

use shikong_protocol as wire;
use shikong_store::{FeatureStore, TxId};

use crate::sync::Result;

/// One server transaction, by number and commit instant (microseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub tx: i64,
    pub us: i64,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.tx, self.us)
    }
}

impl FromStr for Mark {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || format!("invalid server mark `{s}`");
        let (tx, us) = s.split_once('.').ok_or_else(bad)?;
        Ok(Mark { tx: tx.parse().map_err(|_| bad())?, us: us.parse().map_err(|_| bad())? })
    }
}

/// Transaction `tx` as a mark (`None` when the store has no such transaction).
pub fn at(store: &dyn FeatureStore, tx: i64) -> Result<Option<Mark>> {
    if tx <= 0 {
        return Ok(None);
    }
    Ok(store
        .transactions(Some(TxId(tx - 1)), 1)?
        .first()
        .filter(|t| t.tx.0 == tx)
        .map(|t| Mark { tx, us: t.time.as_microsecond() }))
}

/// The store's newest transaction as a mark (`None` for a store without transactions).
pub fn current(store: &dyn FeatureStore) -> Result<Option<Mark>> {
    at(store, store.latest_tx()?.0)
}

/// Whether the store still holds the transaction `mark` names, as it was.
pub fn holds(store: &dyn FeatureStore, mark: &Mark) -> Result<bool> {
    Ok(mark.tx <= 0 || at(store, mark.tx)?.is_some_and(|m| m == *mark))
}

/// A device's `seen` mark (push body, pull parameter); a malformed one is refused (`invalid`).
pub fn parse_seen(seen: &str) -> Result<Mark> {
    seen.parse().map_err(|e: String| crate::sync::SyncFailure::Refused {
        code: wire::SyncErrorCode::Invalid,
        message: format!("seen: {e}"),
    })
}
