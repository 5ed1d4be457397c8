//! What the views show, kept in memory: the offline areas with their counts, the open area's
//! layers, conflicts, photos and field tasks, the queued citizen reports. The effects that change them refresh
//! this picture before they return, so a view renders [`AppState`] without opening a file — and a
//! screen drawn while a long action runs never waits for it.

use shikong_protocol as wire;
use shikong_replica::{AttachmentInfo, QueuedTaskAction, Replica, ReplicaLayer};

use crate::areas::ReplicaSummary;
use crate::reports::QueuedReport;
use crate::settings::Settings;
use crate::tasks::TaskItem;
use crate::{AppError, Device};

/// The views' picture of the device (see [`Device::state`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppState {
    pub settings: Settings,
    /// The offline areas on this device, by file name.
    pub areas: Vec<ReplicaSummary>,
    /// The area the map shows, with what its screens list.
    pub active: Option<ActiveArea>,
    /// Citizens' reports kept on the device (sent ones carry their server id).
    pub reports: Vec<QueuedReport>,
    /// Where positions come from ("NMEA: day1.nmea").
    pub location_label: String,
    /// What takes photos.
    pub camera_label: String,
}

/// The open offline area's details.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveArea {
    pub summary: ReplicaSummary,
    pub layers: Vec<ReplicaLayer>,
    pub conflicts: Vec<wire::Conflict>,
    pub attachments: Vec<AttachmentInfo>,
    /// The user's field tasks carried by the area, overdue first then by deadline.
    pub tasks: Vec<TaskItem>,
    /// The task actions recorded on this device, oldest first, with the server's answers.
    pub task_actions: Vec<QueuedTaskAction>,
}

/// The part of [`AppState`] read from files (the rest is in [`Device`] already).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cached {
    pub areas: Vec<ReplicaSummary>,
    pub active: Option<ActiveArea>,
    pub reports: Vec<QueuedReport>,
}

/// A refresh that fails leaves the previous picture and is logged: the action that triggered it
/// has succeeded, and its outcome is what the user is told.
fn logged<T>(what: &str, r: Result<T, AppError>) -> Option<T> {
    r.map_err(|e| tracing::warn!("refreshing {what}: {e}")).ok()
}

impl Device {
    fn write_cache(&self, f: impl FnOnce(&mut Cached)) {
        f(&mut self.cache.write().unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// Re-reads everything: the areas, the open area, the report queue.
    pub(crate) fn refresh_all(&self) {
        self.refresh_areas();
        if let Some(reports) = logged("reports", self.queued_reports()) {
            self.write_cache(|c| c.reports = reports);
        }
    }

    /// Re-reads the list of areas and the open area.
    pub(crate) fn refresh_areas(&self) {
        if let Some(areas) = logged("offline areas", self.replicas()) {
            self.write_cache(|c| c.areas = areas);
        }
        self.refresh_active();
    }

    /// Re-reads the open area's details (none when no area is open).
    pub(crate) fn refresh_active(&self) {
        let active = match self.settings.active.as_deref() {
            None => None,
            Some(id) => match logged("the open area", self.active_details(id)) {
                Some(a) => Some(a),
                None => return,
            },
        };
        self.write_cache(|c| {
            if let Some(a) = &active {
                put_summary(&mut c.areas, a.summary.clone());
            }
            c.active = active;
        });
    }

    /// After an edit or a sync of `replica`: its summary, and its details when it is open.
    pub(crate) fn refresh_replica(&self, replica: &Replica) {
        let Some(id) = replica.path().file_stem().map(|s| s.to_string_lossy().into_owned()) else { return };
        if self.settings.active.as_deref() == Some(id.as_str()) {
            if let Some(a) = logged("the open area", self.details_of(&id, replica)) {
                self.write_cache(|c| {
                    put_summary(&mut c.areas, a.summary.clone());
                    c.active = Some(a);
                });
            }
        } else if let Some(s) = logged("an offline area", self.summarize(&id, replica)) {
            self.write_cache(|c| put_summary(&mut c.areas, s));
        }
    }

    /// After the report queue changed.
    pub(crate) fn refresh_reports(&self) {
        if let Some(reports) = logged("reports", self.queued_reports()) {
            self.write_cache(|c| c.reports = reports);
        }
    }

    fn active_details(&self, id: &str) -> Result<ActiveArea, AppError> {
        let r = self.open_replica(id)?;
        self.details_of(id, &r)
    }

    fn details_of(&self, id: &str, r: &Replica) -> Result<ActiveArea, AppError> {
        let conflicts = r.conflicts()?;
        let attachments = r.attachments()?;
        let mut summary = self.summarize(id, r)?;
        summary.conflicts = conflicts.len();
        let (tasks, task_actions) = self.tasks_of(r)?;
        Ok(ActiveArea { summary, layers: r.layers().to_vec(), conflicts, attachments, tasks, task_actions })
    }
}

/// Replaces the summary of the same area in `list`, or adds it (kept in file-name order).
fn put_summary(list: &mut Vec<ReplicaSummary>, s: ReplicaSummary) {
    match list.iter_mut().find(|x| x.id == s.id) {
        Some(x) => *x = s,
        None => {
            list.push(s);
            list.sort_by(|a, b| a.path.cmp(&b.path));
        }
    }
}
