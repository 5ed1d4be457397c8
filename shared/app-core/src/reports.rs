//! Citizens' reports (我要上报): queued on the device (`reports.json`, photos in
//! `report-photos/`) so a report made without signal is never lost, sent once the server can be
//! reached, and followed afterwards (我的上报: the handling status the office sets).

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use shikong_protocol::api::{FeatureType, NewFeature, ReportFeature};
use shikong_sync_client::ReportLayer;

use crate::collect::EvidencePhoto;
use crate::settings::write_atomic;
use crate::{AppError, Device};

/// A citizen's report as the device keeps it until the server has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedReport {
    pub local_id: String,
    pub layer: String,
    pub category: String,
    pub description: String,
    pub address: String,
    pub lon: f64,
    pub lat: f64,
    pub photo: Option<String>,
    pub photo_mime: Option<String>,
    pub created: String,
    /// The server's id once submitted.
    pub server_id: Option<String>,
}

/// What a citizen fills in (the location and photo come separately).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportForm {
    pub layer: String,
    /// The code of the layer's category field.
    pub category: String,
    pub description: String,
    pub address: String,
}

/// One of the citizen's reports as the server tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportStatus {
    /// The handling status's label (处理中), empty until the office takes it up.
    pub status: String,
    pub description: String,
    pub created_at: String,
    /// Versions of the report on the server (each handling step adds one).
    pub versions: String,
    /// The case the report opened: its public steps (none until a case is linked).
    pub case: Option<shikong_protocol::api::cases::CaseProgress>,
}

impl ReportStatus {
    /// From one report of the server's `/reports/mine` answer.
    pub fn from_feature(f: &ReportFeature) -> ReportStatus {
        let p = &f.properties;
        let description = match p.fields.get("描述") {
            None | Some(Json::Null) => String::new(),
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        ReportStatus {
            status: p.status.as_ref().and_then(|s| s.label.clone()).unwrap_or_default(),
            description,
            created_at: p.created_at.clone(),
            versions: p.versions.to_string(),
            case: p.case.clone(),
        }
    }
}

impl Device {
    fn reports_path(&self) -> PathBuf {
        self.dir.join("reports.json")
    }

    fn report_photo_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("report-photos").join(sha256)
    }

    pub fn queued_reports(&self) -> Result<Vec<QueuedReport>, AppError> {
        let path = self.reports_path();
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| AppError::Corrupt { path, reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(AppError::Io { path, source: e }),
        }
    }

    fn save_reports(&self, list: &[QueuedReport]) -> Result<(), AppError> {
        let path = self.reports_path();
        let b = serde_json::to_vec_pretty(list)
            .map_err(|e| AppError::Corrupt { path: path.clone(), reason: e.to_string() })?;
        write_atomic(&path, &b)?;
        self.refresh_reports();
        Ok(())
    }

    /// Queues a report (kept on the device until the server has it).
    pub fn queue_report(
        &self,
        layer: &str,
        category: &str,
        description: &str,
        address: &str,
        at: (f64, f64),
        photo: Option<&EvidencePhoto>,
    ) -> Result<QueuedReport, AppError> {
        if category.trim().is_empty() {
            return Err(AppError::input("category", "请选择问题类别 / pick a category"));
        }
        if description.chars().count() > 500 {
            return Err(AppError::input("description", "最多 500 字 / at most 500 characters"));
        }
        let mut list = self.queued_reports()?;
        let photo_sha = match photo {
            Some(p) => {
                let dir = self.dir.join("report-photos");
                std::fs::create_dir_all(&dir).map_err(AppError::io(&dir))?;
                write_atomic(&self.report_photo_path(&p.sha256), &p.photo.bytes)?;
                Some(p.sha256.clone())
            }
            None => None,
        };
        let r = QueuedReport {
            local_id: uuid::Uuid::new_v4().to_string(),
            layer: layer.to_owned(),
            category: category.to_owned(),
            description: description.to_owned(),
            address: address.to_owned(),
            lon: at.0,
            lat: at.1,
            photo: photo_sha,
            photo_mime: photo.map(|p| p.photo.mime.clone()),
            created: shikong_model::time::beijing(Timestamp::now()),
            server_id: None,
        };
        list.push(r.clone());
        self.save_reports(&list)?;
        Ok(r)
    }

    /// Sends queued reports (photo first, then the feature); returns how many were sent. Each is
    /// marked sent as soon as the server answers, so a crash never sends one twice... except in
    /// the window between the answer and the write, where the office sees a duplicate rather than
    /// the citizen losing a report.
    pub fn send_reports(&self) -> Result<usize, AppError> {
        if !self.online() {
            return Err(AppError::Offline);
        }
        let client = self.client()?;
        let user = self.session().map(|s| s.username.clone()).unwrap_or_default();
        let mut list = self.queued_reports()?;
        let mut sent = 0;
        for i in 0..list.len() {
            if list[i].server_id.is_some() {
                continue;
            }
            let r = list[i].clone();
            let mut properties = Map::new();
            let texts = [("类别", &r.category), ("描述", &r.description), ("地址", &r.address), ("上报人", &user)];
            for (k, v) in texts {
                properties.insert(k.to_owned(), Json::String(v.clone()));
            }
            if let Some(sha) = &r.photo {
                let path = self.report_photo_path(sha);
                let bytes = std::fs::read(&path).map_err(AppError::io(&path))?;
                let ev = json!({"capture_time": r.created, "lon": r.lon, "lat": r.lat});
                client.upload(sha, &bytes, r.photo_mime.as_deref().unwrap_or("image/jpeg"), &ev)?;
                properties.insert("照片".into(), json!([sha]));
            }
            let feature = NewFeature {
                kind: FeatureType::Feature,
                geometry: Some(json!({"type": "Point", "coordinates": [r.lon, r.lat]})),
                properties,
            };
            let id = client.submit_report(&r.layer, &feature)?;
            list[i].server_id = Some(id);
            self.save_reports(&list)?;
            sent += 1;
        }
        Ok(sent)
    }

    /// The citizen's "submit": queues the report, then sends the queue when the server can be
    /// reached (a failed send keeps it queued for the next attempt). Returns how many were sent.
    pub fn submit_report(
        &self,
        form: &ReportForm,
        at: Option<(f64, f64)>,
        photo: Option<&EvidencePhoto>,
    ) -> Result<usize, AppError> {
        let at = at.ok_or_else(|| AppError::input("location", "位置必填 / the location is required"))?;
        self.queue_report(&form.layer, &form.category, &form.description, &form.address, at, photo)?;
        Ok(if self.online() { self.send_reports().unwrap_or(0) } else { 0 })
    }

    /// The layers citizens report into, with their forms (from the server; citizens cannot
    /// replicate them).
    pub fn report_layers(&self) -> Result<Vec<ReportLayer>, AppError> {
        Ok(self.client()?.report_layers()?)
    }

    /// The citizen's reports with their handling status, from the server.
    pub fn my_reports(&self) -> Result<Vec<ReportFeature>, AppError> {
        Ok(self.client()?.my_reports()?)
    }

    /// 我的上报: sends what is queued (when online), then the reports' statuses.
    pub fn follow_reports(&self) -> Result<Vec<ReportStatus>, AppError> {
        if self.online() {
            let _ = self.send_reports();
        }
        Ok(self.my_reports()?.iter().map(ReportStatus::from_feature).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn reports_wait_on_the_device_while_offline() {
        let (dir, mut d) = testkit::device();
        d.settings.session = Some(testkit::session("http://127.0.0.1:9"));
        let e = d.queue_report("citizen_report", " ", "x", "", (114.3, 30.5), None).err();
        assert!(e.map(|e| e.to_string()).unwrap_or_default().starts_with("category:"));
        let form = ReportForm { layer: "citizen_report".into(), category: "1".into(), ..ReportForm::default() };
        assert!(
            matches!(d.submit_report(&form, None, None), Err(AppError::Input { field, .. }) if field == "location")
        );
        assert_eq!(d.submit_report(&form, Some((114.3, 30.5)), None).ok(), Some(0), "kept, not sent");
        assert!(matches!(d.send_reports(), Err(AppError::Offline)));
        assert_eq!(d.state().reports.len(), 1, "the views see the queue");
        let again = testkit::reopen(dir.path());
        let queued = again.state().reports;
        assert_eq!(
            queued.iter().map(|r| (r.category.as_str(), r.server_id.is_none())).collect::<Vec<_>>(),
            [("1", true)]
        );
    }

    #[test]
    fn a_report_status_reads_from_the_server_answer() {
        let f: Result<ReportFeature, _> = serde_json::from_value(json!({
            "type": "Feature", "id": "0192f3c4-0000-7000-8000-000000000001", "geometry": null,
            "properties": {"layer": "citizen_report", "layer_title": null, "code": "R-1",
                "status": {"field": "办理状态", "code": "2", "label": "处理中"},
                "created_at": "2026-01-01T10:00:00+08:00", "updated_at": "2026-01-01T11:00:00+08:00",
                "versions": 2, "deleted": false, "fields": {"描述": "井盖破损"},
                "case": {"case_no": "2026-000001", "state": "accepted", "state_label": "已受理",
                    "stage_deadline": null, "steps": [{"action": "accept", "label": "受理", "state": "accepted",
                    "state_label": "已受理", "at": "2026-01-01T11:00:00+08:00"}]}}}));
        let status = f.as_ref().map(ReportStatus::from_feature).ok();
        assert!(status.is_some(), "{f:?}");
        let Some(s) = status else { return };
        assert_eq!((s.status.as_str(), s.description.as_str(), s.versions.as_str()), ("处理中", "井盖破损", "2"));
        let steps: Vec<String> = s.case.iter().flat_map(|c| c.steps.iter().map(|x| x.label.clone())).collect();
        assert_eq!(steps, ["受理"]);
    }
}
