//! Layer statistics for the desktop app's 统计 view: `GET /collections/{c}/stats` (counts and sums
//! grouped by fields, periods or divisions, as of an instant) and the layers to choose from
//! (`GET /collections`, with their geometry types: division layers are the polygon ones).

use shikong_protocol::api::stats::LayerStats;
use shikong_protocol::api::{Collection, Collections};
use shikong_protocol::url::encode_component;

use crate::{Result, SyncClient, SyncError};

/// What to count (every member optional; empty `group_by`: one group of all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsQuery {
    /// Up to two terms: a field, `FIELD:year|month|week|day`, `division`.
    pub group_by: Vec<String>,
    /// Integer or real fields to sum.
    pub sums: Vec<String>,
    /// The polygon layer of the `division` term.
    pub divisions: Option<String>,
    /// A CQL2 text filter.
    pub filter: Option<String>,
    /// The instant to read the layer at (RFC 3339; `None`: now).
    pub as_of: Option<String>,
    /// Each division group with its shape (for a choropleth).
    pub geometry: bool,
}

impl StatsQuery {
    fn to_query(&self) -> String {
        let mut parts = Vec::new();
        let list = |v: &[String]| v.iter().map(|s| encode_component(s)).collect::<Vec<_>>().join(",");
        if !self.group_by.is_empty() {
            parts.push(format!("group-by={}", list(&self.group_by)));
        }
        if !self.sums.is_empty() {
            parts.push(format!("sum={}", list(&self.sums)));
        }
        for (k, v) in [("divisions", &self.divisions), ("filter", &self.filter), ("as-of", &self.as_of)] {
            if let Some(v) = v.as_ref().filter(|v| !v.trim().is_empty()) {
                parts.push(format!("{k}={}", encode_component(v)));
            }
        }
        if self.geometry {
            parts.push("geometry=true".to_owned());
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }
}

impl SyncClient {
    /// `GET /collections/{layer}/stats` with `query`.
    pub fn layer_stats(&self, layer: &str, query: &StatsQuery) -> Result<LayerStats> {
        let route = format!("/collections/{}/stats", encode_component(layer));
        let r = Self::check(self.send(&|| self.http.get(self.url(&format!("{route}{}", query.to_query()))))?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{route}: {e}")))
    }

    /// The layers this user may read, with their geometry types (the gazetteer left out).
    pub fn readable_layers(&self) -> Result<Vec<Collection>> {
        let r = Self::check(self.send(&|| self.http.get(self.url("/collections?f=json")))?)?;
        let list: Collections = Self::json(r).map_err(|e| SyncError::Protocol(format!("/collections: {e}")))?;
        // The catalog (`itemType` record, OGC API – Records) is listed too but is not a layer.
        Ok(list.collections.into_iter().filter(|c| c.id != "gazetteer" && c.item_type == "feature").collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(StatsQuery::default().to_query(), "");
        let q = StatsQuery {
            group_by: vec!["division".into(), "安装日期:month".into()],
            sums: vec!["埋深".into()],
            divisions: Some("street_area".into()),
            filter: Some("状态 = '2'".into()),
            as_of: Some("2026-12-07T10:00:00+08:00".into()),
            geometry: true,
        };
        assert_eq!(
            q.to_query(),
            "?group-by=division,%E5%AE%89%E8%A3%85%E6%97%A5%E6%9C%9F%3Amonth&sum=%E5%9F%8B%E6%B7%B1\
             &divisions=street_area&filter=%E7%8A%B6%E6%80%81%20%3D%20%272%27\
             &as-of=2026-12-07T10%3A00%3A00%2B08%3A00&geometry=true"
        );
    }
}
