//! Layer statistics (`GET /collections/{c}/stats`): counts and sums of a layer's features grouped
//! by fields, by periods of a date field, or by the administrative division (a polygon layer) each
//! feature lies in, as the layer was at an instant (`as-of`). The desktop app's 统计 view draws
//! its charts, its choropleth and its XLSX/CSV exports from this one answer.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// What a field of the layer can do in statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsFieldUse {
    /// Group by its values (code lists, text, integers, booleans).
    Class,
    /// Group by periods of it (`FIELD:year|month|week|day`).
    Period,
    /// Sum it (integers, reals); integers may also be grouped by.
    Number,
}

/// A field of the layer that statistics can use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsField {
    pub name: String,
    /// The field's label (its name when it has none).
    pub title: String,
    pub uses: Vec<StatsFieldUse>,
    /// Whether the field has a code list (代码表): the natural class to group by.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub coded: bool,
}

/// One group: the features sharing a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsGroup {
    /// One value per `group_by` term, as text: a field's value, a period (`2024`, `2024-03`,
    /// `2024-W09`, `2024-03-05`), a division's code; `null` for features without one.
    pub key: Vec<Option<String>>,
    /// What to show per term: a code's label, a division's name; the key otherwise.
    pub label: Vec<Option<String>>,
    pub count: u64,
    /// One per summed field (`sums`): the total over the group's features that have a value.
    pub sums: Vec<f64>,
    /// The division's shape (GeoJSON, CGCS2000 lon/lat) when asked for (`geometry=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<Json>,
}

/// The answer of `GET /collections/{c}/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    pub layer: String,
    /// The layer's title (its name when it has none).
    pub title: String,
    /// The grouping terms as asked (`状态`, `安装日期:month`, `division`); empty: one group of all.
    pub group_by: Vec<String>,
    /// The summed fields.
    pub sums: Vec<String>,
    /// The polygon layer the `division` term joined against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divisions: Option<String>,
    /// The instant the layer was read at (RFC 3339, Beijing time); absent: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// Features counted (all groups).
    pub count: u64,
    /// The sums over all groups, one per summed field.
    pub totals: Vec<f64>,
    /// Groups by key (ascending; features without a value last).
    pub groups: Vec<StatsGroup>,
    /// The layer's fields statistics can use.
    pub fields: Vec<StatsField>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::golden;

    #[test]
    fn layer_stats_json() {
        golden(
            LayerStats {
                layer: "manhole".into(),
                title: "井盖".into(),
                group_by: vec!["状态".into()],
                sums: vec!["埋深".into()],
                divisions: None,
                as_of: Some("2026-12-07T10:00:00+08:00".into()),
                count: 3,
                totals: vec![4.5],
                groups: vec![StatsGroup {
                    key: vec![Some("1".into())],
                    label: vec![Some("完好".into())],
                    count: 3,
                    sums: vec![4.5],
                    geometry: None,
                }],
                fields: vec![StatsField {
                    name: "埋深".into(),
                    title: "埋深（米）".into(),
                    uses: vec![StatsFieldUse::Number],
                    coded: false,
                }],
            },
            r#"{"layer":"manhole","title":"井盖","group_by":["状态"],"sums":["埋深"],
                "as_of":"2026-12-07T10:00:00+08:00","count":3,"totals":[4.5],
                "groups":[{"key":["1"],"label":["完好"],"count":3,"sums":[4.5]}],
                "fields":[{"name":"埋深","title":"埋深（米）","uses":["number"]}]}"#,
        );
    }
}
