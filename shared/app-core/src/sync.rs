//! Sync of an offline area with the server (push, pull, gazetteer, verification — the sync
//! client's), refused while offline, and the automatic sync the app runs every few seconds: when
//! the server can be reached, automatic sync is on and the open area holds unsent work.

use shikong_sync_client::{Progress, SyncReport};

use crate::i18n::Lang;
use crate::{AppError, Device};

/// What the app shows after a sync in which the server stopped sending layers the user may no
/// longer read (a changed role or rule): which layers, and the server's reason. `None` when every
/// layer of the area still updates. What the device holds of those layers stays, no longer
/// updated, until the user's rights come back.
pub fn revoked_notice(report: &SyncReport, lang: Lang) -> Option<String> {
    if report.revoked.is_empty() {
        return None;
    }
    let each = |open: &str, close: &str| -> Vec<String> {
        report.revoked.iter().map(|r| format!("{}{open}{}{close}", r.layer, r.reason)).collect()
    };
    Some(match lang {
        Lang::Zh => format!("已无读取权限，以下图层不再更新：{}", each("（", "）").join("；")),
        Lang::En => format!("No longer allowed to read, so no longer updated: {}", each(" (", ")").join("; ")),
    })
}

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
    fn revoked_layers_are_worded_for_the_user() {
        let mut report = SyncReport::default();
        assert_eq!(revoked_notice(&report, Lang::Zh), None);
        report.revoked.push(shikong_protocol::RevokedLayer {
            layer: "manhole".into(),
            code: shikong_protocol::SyncErrorCode::Forbidden,
            reason: "role citizen may not read layer manhole (it is not public)".into(),
        });
        let zh = revoked_notice(&report, Lang::Zh).unwrap();
        assert!(zh.starts_with("已无读取权限") && zh.contains("manhole（role citizen"), "{zh}");
        let en = revoked_notice(&report, Lang::En).unwrap();
        assert!(en.ends_with("manhole (role citizen may not read layer manhole (it is not public))"), "{en}");
    }

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
