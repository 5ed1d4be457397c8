//! A feature's history on the wire (`GET /collections/{layer}/items/{id}/history`, and
//! `shikong history` on the command line): every stored version with its transaction (who, when,
//! from which device) and field-level changes, and the device edits that built them from the
//! entity's sync log. The app's history view reads it; the store keeps it, devices only hold
//! their own pending edits.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The history of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureHistory {
    /// Device edits of the entity's sync log, oldest first (empty when never edited through sync).
    pub edits: Vec<DeviceEdit>,
    pub layer: String,
    /// The entity id (UUID).
    pub entity_id: Option<String>,
    /// The entity code of its last state.
    pub code: Option<String>,
    /// Stored versions, oldest first.
    pub versions: Vec<HistoryVersion>,
}

/// One edit a device made (an automerge change of the entity's document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEdit {
    /// The change hash.
    pub change: String,
    pub user: Option<String>,
    pub device: Option<String>,
    /// Device clock at the edit (Beijing time).
    pub device_time: Option<String>,
    /// `create`, `set`, `geometry`, `code`, `valid`, `delete`, `restore`, `resolve`, `undo`.
    pub op: String,
    /// Attributes written, by field name (or `geometry`, `code`, `valid_from`, `valid_to`, `deleted`).
    pub attributes: Vec<String>,
    /// The edit raced a deletion that won (kept here and flagged).
    pub lost_to_delete: bool,
}

/// What a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionOp {
    Insert,
    Update,
    Delete,
}

impl VersionOp {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionOp::Insert => "insert",
            VersionOp::Update => "update",
            VersionOp::Delete => "delete",
        }
    }
}

/// One stored version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryVersion {
    pub version: i64,
    pub op: VersionOp,
    pub tx: TxInfo,
    /// The device clock of the edit behind this version, when it came from a device.
    pub device_time: Option<String>,
    pub changes: Vec<FieldChange>,
}

/// The store transaction that wrote a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxInfo {
    pub tx: i64,
    /// Beijing time.
    pub time: String,
    pub author: String,
    pub device: Option<String>,
    pub device_time: Option<String>,
    /// `api create`, `import …`, `sync` ….
    pub source: Option<String>,
}

/// One attribute's change: old and new value (`null`: absent), as GeoJSON for `geometry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Field name, or `geometry`, `code`, `valid_from`, `valid_to`.
    pub attribute: String,
    pub old: Json,
    pub new: Json,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;
    use serde_json::json;

    #[test]
    fn history() {
        golden(
            FeatureHistory {
                edits: vec![DeviceEdit {
                    change: "9f86d081".into(),
                    user: Some("zhang".into()),
                    device: Some("0192f3c4-0000-7000-8000-000000000009".into()),
                    device_time: Some("2025-06-01T09:59:00+08:00".into()),
                    op: "set".into(),
                    attributes: vec!["状态".into()],
                    lost_to_delete: false,
                }],
                layer: "manhole".into(),
                entity_id: Some("0192f3c4-0000-7000-8000-000000000001".into()),
                code: Some("HS-JG-0001".into()),
                versions: vec![
                    HistoryVersion {
                        version: 1,
                        op: VersionOp::Insert,
                        tx: TxInfo {
                            tx: 3,
                            time: "2025-06-01T08:00:00+08:00".into(),
                            author: "admin".into(),
                            device: None,
                            device_time: None,
                            source: Some("import manhole.geojson".into()),
                        },
                        device_time: None,
                        changes: vec![FieldChange { attribute: "状态".into(), old: Json::Null, new: json!("1") }],
                    },
                    HistoryVersion {
                        version: 2,
                        op: VersionOp::Update,
                        tx: TxInfo {
                            tx: 9,
                            time: "2025-06-01T10:00:00+08:00".into(),
                            author: "zhang".into(),
                            device: Some("0192f3c4-0000-7000-8000-000000000009".into()),
                            device_time: Some("2025-06-01T09:59:00+08:00".into()),
                            source: Some("sync".into()),
                        },
                        device_time: Some("2025-06-01T09:59:00+08:00".into()),
                        changes: vec![FieldChange { attribute: "状态".into(), old: json!("1"), new: json!("2") }],
                    },
                ],
            },
            r#"{"edits":[{"change":"9f86d081","user":"zhang","device":"0192f3c4-0000-7000-8000-000000000009",
                    "device_time":"2025-06-01T09:59:00+08:00","op":"set","attributes":["状态"],"lost_to_delete":false}],
                "layer":"manhole","entity_id":"0192f3c4-0000-7000-8000-000000000001","code":"HS-JG-0001",
                "versions":[
                  {"version":1,"op":"insert","tx":{"tx":3,"time":"2025-06-01T08:00:00+08:00","author":"admin","device":null,
                     "device_time":null,"source":"import manhole.geojson"},"device_time":null,
                   "changes":[{"attribute":"状态","old":null,"new":"1"}]},
                  {"version":2,"op":"update","tx":{"tx":9,"time":"2025-06-01T10:00:00+08:00","author":"zhang",
                     "device":"0192f3c4-0000-7000-8000-000000000009","device_time":"2025-06-01T09:59:00+08:00","source":"sync"},
                   "device_time":"2025-06-01T09:59:00+08:00","changes":[{"attribute":"状态","old":"1","new":"2"}]}]}"#,
        );
        golden(VersionOp::Delete, r#""delete""#);
    }
}
