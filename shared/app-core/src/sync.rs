//! Sync of an offline area with the server (push, pull, gazetteer, verification — the sync
//! client's), refused while offline, and the automatic sync the app runs every few seconds: when
//! the server can be reached, automatic sync is on and the open area holds unsent work.

use shikong_sync_client::{Progress, SyncReport};

use crate::{AppError, Device};

/// What one automatic-sync check found and did.
#[derive(Debug)]
pub struct AutoSync {
    /// Whether the server could be reached.
    pub online: bool,
    /// The sync that ran, when one was due (a failed one is tried again at the next check).
    pub synced: Option<Result<SyncReport, AppError>>,
}

impl Device {
    /// One sync of a replica (push, pull, gazetteer), if the server can be reached.
    pub fn sync(&self, id: &str, progress: &mut dyn FnMut(Progress)) -> Result<SyncReport, AppError> {
        if !self.online() {
            return Err(AppError::Offline);
        }
        let mut r = self.open_replica(id)?;
        let report = self.client()?.sync(&mut r, progress);
        // Even a sync cut short has stored what it pulled and what the server confirmed.
        self.refresh_replica(&r);
        Ok(report?)
    }

    /// The automatic sync's check: online? then, when automatic sync is on and the open area
    /// has unsent edits or photos, one sync.
    pub fn auto_sync(&self) -> AutoSync {
        let online = self.online();
        let due = match &self.settings.active {
            Some(id) if self.settings.auto_sync && online => {
                self.summary(id).map(|s| s.pending > 0 || s.unconfirmed_photos > 0).unwrap_or(false)
            }
            _ => false,
        };
        let synced = match (due, &self.settings.active) {
            (true, Some(id)) => Some(self.sync(id, &mut |_| {})),
            _ => None,
        };
        AutoSync { online, synced }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn offline_nothing_is_attempted() {
        let (dir, mut d) = testkit::device();
        testkit::replica(dir.path(), "洪山区", 1);
        assert!(d.set_active("洪山区").is_ok());
        d.settings.session = Some(testkit::session("http://127.0.0.1:9"));
        assert!(matches!(d.sync("洪山区", &mut |_| {}), Err(AppError::Offline)));
        assert!(matches!(d.auto_sync(), AutoSync { online: false, synced: None }));
    }
}
