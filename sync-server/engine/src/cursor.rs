//! The pull cursor a device stores and sends back: per layer, the position of the last entity
//! sent, plus the server mark (`|~TX.US`, see [`crate::timeline`]) and the restart flag (`|!`).
//! Opaque to devices except for the mark segment (`shikong_protocol::cursor_mark`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use shikong_store::{ChangeCursor, TxId};

/// Where a replica's pull stands: per layer, the position of the last entity sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncCursor {
    /// The transaction the replica was cut at (layers without their own position start there).
    pub base: i64,
    pub layers: BTreeMap<String, ChangeCursor>,
    /// A pull starting over after the server went back in time (`|!`,
    /// [`shikong_protocol::RESTART_CURSOR`]): until its last page, entities are sent even when
    /// the replica's own push wrote them.
    pub restart: bool,
    /// The newest server transaction the device heard of when the page was sent (`|~TX.US`).
    pub mark: Option<crate::timeline::Mark>,
}

impl SyncCursor {
    /// Where `layer` stands (layers without a position of their own start at the base).
    pub fn of(&self, layer: &str) -> ChangeCursor {
        self.layers.get(layer).copied().unwrap_or_else(|| ChangeCursor::after_tx(TxId(self.base)))
    }
}

impl fmt::Display for SyncCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.base)?;
        for (l, c) in &self.layers {
            write!(f, "|{l}={c}")?;
        }
        if self.restart {
            write!(f, "|!")?;
        }
        if let Some(m) = &self.mark {
            write!(f, "|~{m}")?;
        }
        Ok(())
    }
}

impl FromStr for SyncCursor {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let mut parts = s.split('|');
        let base = parts.next().unwrap_or("").parse::<i64>().map_err(|_| format!("invalid cursor `{s}`"))?;
        let mut layers = BTreeMap::new();
        let (mut restart, mut mark) = (false, None);
        for p in parts {
            if p == "!" {
                restart = true;
                continue;
            }
            if let Some(m) = p.strip_prefix('~') {
                mark = Some(m.parse()?);
                continue;
            }
            let (l, c) = p.split_once('=').ok_or_else(|| format!("invalid cursor `{s}`"))?;
            layers.insert(l.to_owned(), c.parse::<ChangeCursor>()?);
        }
        Ok(SyncCursor { base, layers, restart, mark })
    }
}
