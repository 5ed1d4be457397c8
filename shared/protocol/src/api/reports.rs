//! Citizens' reports (群众上报): the layers citizens may report into with their forms
//! (`GET /reports/layers`) and a citizen's own reports with the office's handling status
//! (`GET /reports/mine`, a GeoJSON FeatureCollection). Citizens cannot read report layers through
//! OGC API – Features, so these two routes are all the app knows of them; a report is created
//! with a [`NewFeature`](super::NewFeature).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use shikong_model::FieldDef;

use super::features::{FeatureCollectionType, FeatureType};

/// A layer citizens report into, with the fields of its form (code lists with labels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportLayer {
    pub name: String,
    /// The display name (title, or name).
    pub title: String,
    /// The live (not retired) fields.
    pub fields: Vec<FieldDef>,
}

/// `GET /reports/layers` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportLayers {
    pub layers: Vec<ReportLayer>,
}

/// `GET /reports/mine` answer: the caller's reports, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MyReports {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    #[serde(rename = "numberReturned")]
    pub number_returned: u64,
    /// When the answer was made (Beijing time).
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    pub features: Vec<ReportFeature>,
}

/// One report: its last live state (a deleted report keeps its last state and says `deleted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportFeature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// The entity id (UUID).
    pub id: String,
    /// A GeoJSON geometry (CGCS2000 lon/lat), or `null`.
    pub geometry: Option<Json>,
    pub properties: ReportProperties,
}

/// What a citizen sees of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportProperties {
    pub layer: String,
    pub layer_title: Option<String>,
    /// The entity code.
    pub code: String,
    /// The handling status, when the layer has a status field.
    pub status: Option<ReportStatus>,
    /// Beijing time of the first and the last version.
    pub created_at: String,
    pub updated_at: String,
    /// Number of stored versions (1: nobody handled it yet).
    pub versions: u64,
    pub deleted: bool,
    /// Every field of the layer by name (`null` when unset).
    pub fields: Map<String, Json>,
    /// The case the report opened: its public progress (absent when no case is linked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<super::cases::CaseProgress>,
}

/// A report's handling status: the status field's code and its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportStatus {
    /// The status field's name (办理状态).
    pub field: String,
    /// `null` until the office sets it.
    pub code: Option<String>,
    /// The code's label (处理中).
    pub label: Option<String>,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;
    use serde_json::json;
    use shikong_model::{CodeItem, FieldType};

    #[test]
    fn report_layers() {
        let mut f = FieldDef::new("类别", FieldType::Code);
        f.id = "f1".into();
        f.required = true;
        f.codes = vec![CodeItem { code: "1".into(), label: "井盖".into() }];
        golden(
            ReportLayers {
                layers: vec![ReportLayer {
                    name: "citizen_report".into(), title: "群众上报".into(), fields: vec![f]
                }],
            },
            r#"{"layers":[{"name":"citizen_report","title":"群众上报",
                "fields":[{"id":"f1","name":"类别","type":"code","required":true,"codes":[{"code":"1","label":"井盖"}]}]}]}"#,
        );
    }

    #[test]
    fn my_reports() {
        let Json::Object(fields) = json!({"类别": "1", "描述": "井盖破损", "照片": ["ab12"], "办理状态": "2"})
        else {
            unreachable!()
        };
        golden(
            MyReports {
                kind: FeatureCollectionType::FeatureCollection,
                number_returned: 1,
                time_stamp: "2025-06-02T09:00:00+08:00".into(),
                features: vec![ReportFeature {
                    kind: FeatureType::Feature,
                    id: "0192f3c4-0000-7000-8000-000000000001".into(),
                    geometry: Some(json!({"type": "Point", "coordinates": [114.36, 30.51]})),
                    properties: ReportProperties {
                        layer: "citizen_report".into(),
                        layer_title: Some("群众上报".into()),
                        code: "R-1".into(),
                        status: Some(ReportStatus {
                            field: "办理状态".into(),
                            code: Some("2".into()),
                            label: Some("处理中".into()),
                        }),
                        created_at: "2025-06-01T10:00:00+08:00".into(),
                        updated_at: "2025-06-01T11:00:00+08:00".into(),
                        versions: 2,
                        deleted: false,
                        fields,
                        case: None,
                    },
                }],
            },
            r#"{"type":"FeatureCollection","numberReturned":1,"timeStamp":"2025-06-02T09:00:00+08:00",
                "features":[{"type":"Feature","id":"0192f3c4-0000-7000-8000-000000000001",
                "geometry":{"type":"Point","coordinates":[114.36,30.51]},
                "properties":{"layer":"citizen_report","layer_title":"群众上报","code":"R-1",
                    "status":{"field":"办理状态","code":"2","label":"处理中"},
                    "created_at":"2025-06-01T10:00:00+08:00","updated_at":"2025-06-01T11:00:00+08:00","versions":2,"deleted":false,
                    "fields":{"类别":"1","描述":"井盖破损","照片":["ab12"],"办理状态":"2"}}}]}"#,
        );
    }
}
