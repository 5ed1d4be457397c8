//! The definitions shipped in the crate (`data/*.json`), compiled in so a fresh server has them
//! without files. They are loaded through the same validation as an admin's own documents, and a
//! test loads each one, so a broken shipped document fails the build's tests, not a server.

use crate::classification::Classification;
use crate::error::{ClassError, FlowError};
use crate::flow::FlowDef;

/// The standard digital city-management flow (`city-standard`): 信息收集 → 受理 → 立案 → 派遣 →
/// 处置 → 核查 → 结案, with 回退, 延期, 挂账, 督办 and the citizen's 评价.
pub const STANDARD_FLOW_JSON: &str = include_str!("../data/city-standard.flow.json");

/// The 12345 hotline flow (`hotline-12345`): 受理 → 派单 → 办理 → 回复 → 办结 → 回访 → 评价.
pub const HOTLINE_FLOW_JSON: &str = include_str!("../data/hotline-12345.flow.json");

/// Sensor alerts (`sensor-alert`, issue 18): 告警 → 确认 → 派遣 → 处置, closed by the platform when the
/// readings recover (`recover`, role `system`: held by the server only) or by the office (结案).
pub const SENSOR_ALERT_FLOW_JSON: &str = include_str!("../data/sensor-alert.flow.json");

/// 部件/事件 classes after GB/T 30428.2-2013 (see the document's `notes` for provenance).
pub const CLASSIFICATION_JSON: &str = include_str!("../data/gbt30428-2.classes.json");

pub fn standard_flow() -> Result<FlowDef, FlowError> {
    FlowDef::from_json(STANDARD_FLOW_JSON)
}

pub fn hotline_flow() -> Result<FlowDef, FlowError> {
    FlowDef::from_json(HOTLINE_FLOW_JSON)
}

pub fn sensor_alert_flow() -> Result<FlowDef, FlowError> {
    FlowDef::from_json(SENSOR_ALERT_FLOW_JSON)
}

pub fn classification() -> Result<Classification, ClassError> {
    Classification::from_json(CLASSIFICATION_JSON)
}
