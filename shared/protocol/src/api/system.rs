//! The server's own resources for administrators (issue 20, 系统资源): `GET /admin/system` (disk
//! of the data folder, the process's memory, request rates, the thresholds and their open
//! alerts) and `PUT /admin/system/thresholds`; a threshold crossed or recovered is told to
//! administrators on the live channel ([`SystemAlertEvent`]).

use serde::{Deserialize, Serialize};

/// What a threshold watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemMetric {
    /// Free space of the data folder's file system, percent of its size (alert below).
    DiskFree,
    /// The server process's resident memory, MiB (alert above).
    Memory,
    /// Requests per second this process answered over the last minute (alert above).
    Requests,
}

/// Alert thresholds set by an administrator; a missing member watches nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemThresholds {
    /// Alert when the data folder's free space falls below this percent (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_free_min_percent: Option<f64>,
    /// Alert when the process's resident memory exceeds this many MiB (1–16,777,216).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max_mb: Option<u64>,
    /// Alert when requests per second (last minute) exceed this (0–1,000,000, exclusive of 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_max_per_second: Option<f64>,
}

/// The data folder's file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    pub total_bytes: u64,
    /// What an unprivileged process may still write.
    pub free_bytes: u64,
    pub free_percent: f64,
}

/// The server process's memory and the machine's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryUsage {
    /// Resident set size of this process (`None` where the system does not tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_available_bytes: Option<u64>,
}

/// Requests this process answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRates {
    /// Since the process started.
    pub total: u64,
    /// Of them answered with a 5xx status.
    pub server_errors: u64,
    /// Per second over the last minute (`None` until two samples are a second apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_per_second: Option<f64>,
}

/// A threshold crossed now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemAlert {
    pub metric: SystemMetric,
    pub value: f64,
    pub threshold: f64,
    /// Since when (RFC 3339).
    pub since: String,
    /// What it means, in Chinese.
    pub message: String,
}

/// `GET /admin/system`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemStatus {
    /// When it was measured (RFC 3339).
    pub checked_at: String,
    pub uptime_seconds: u64,
    /// `None` where the data folder's file system cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskUsage>,
    pub memory: MemoryUsage,
    pub requests: RequestRates,
    pub thresholds: SystemThresholds,
    /// Thresholds crossed now.
    pub alerts: Vec<SystemAlert>,
}

/// `open` when a threshold is crossed, `closed` when the value is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemAlertState {
    Open,
    Closed,
}

/// Live channel message for administrators: a system threshold crossed or recovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemAlertEvent {
    pub metric: SystemMetric,
    pub state: SystemAlertState,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    pub time: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::golden;

    #[test]
    fn shapes() {
        golden(
            SystemThresholds {
                disk_free_min_percent: Some(10.0),
                memory_max_mb: Some(2048),
                requests_max_per_second: None,
            },
            r#"{"disk_free_min_percent":10.0,"memory_max_mb":2048}"#,
        );
        assert!(serde_json::from_str::<SystemThresholds>(r#"{"disk":1}"#).is_err());
        golden(
            SystemAlertEvent {
                metric: SystemMetric::DiskFree,
                state: SystemAlertState::Open,
                value: 4.5,
                threshold: 10.0,
                message: "数据目录剩余空间 4.5% 低于 10%".into(),
                time: "2026-12-07T08:00:00Z".into(),
            },
            r#"{"metric":"disk_free","state":"open","value":4.5,"threshold":10.0,"message":"数据目录剩余空间 4.5% 低于 10%","time":"2026-12-07T08:00:00Z"}"#,
        );
    }
}
