//! The desktop's attribute table and query builder over OGC API – Features (issue 16): one page
//! of a layer's features (`GET /collections/{layer}/items` with `filter`, `sortby`, `bbox`,
//! `intersects`, `as-of`, `limit`, `cursor`) and the layer's queryables. A refusal comes back as the server's
//! problem detail (`SyncError::Server`), which names the parameter and what is wrong — the
//! query builder shows it as it is.

use shikong_protocol::api::{FeaturePage, Queryables};
use shikong_protocol::url::encode_component;

use crate::{Result, SyncClient, SyncError};

/// One items request. Every member but `layer` is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemsQuery {
    pub layer: String,
    /// CQL2 text.
    pub filter: Option<String>,
    /// `-field,+field` (OGC API – Features Part 8).
    pub sortby: Option<String>,
    /// `[min lon, min lat, max lon, max lat]` (CRS84).
    pub bbox: Option<[f64; 4]>,
    /// Transaction time: the layer as recorded at this instant (RFC 3339).
    pub as_of: Option<String>,
    pub limit: Option<u32>,
    /// The `cursor` of the previous page's `next` link.
    pub cursor: Option<String>,
    /// `COLLECTION/FEATURE`: only features meeting that feature's geometry (a division, e.g.
    /// `district/420111`; the server's `intersects` extension).
    pub intersects: Option<String>,
}

impl ItemsQuery {
    /// The path and query of the request.
    pub fn path(&self) -> String {
        let mut q: Vec<String> = vec!["f=json".into()];
        if let Some(l) = self.limit {
            q.push(format!("limit={l}"));
        }
        if let Some(f) = self.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            q.push(format!("filter={}", encode_component(f)));
            q.push("filter-lang=cql2-text".into());
        }
        if let Some(s) = self.sortby.as_deref().filter(|s| !s.trim().is_empty()) {
            q.push(format!("sortby={}", encode_component(s)));
        }
        if let Some([a, b, c, d]) = self.bbox {
            q.push(format!("bbox={}", encode_component(&format!("{a},{b},{c},{d}"))));
        }
        if let Some(r) = self.intersects.as_deref().filter(|r| !r.trim().is_empty()) {
            q.push(format!("intersects={}", encode_component(r)));
        }
        if let Some(t) = &self.as_of {
            q.push(format!("as-of={}", encode_component(t)));
        }
        if let Some(c) = &self.cursor {
            q.push(format!("cursor={}", encode_component(c)));
        }
        format!("/collections/{}/items?{}", encode_component(&self.layer), q.join("&"))
    }
}

/// The `cursor` parameter of a `next` link.
pub fn cursor_of(next: &str) -> Option<String> {
    let query = next.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("cursor="))
        .and_then(|c| shikong_protocol::url::decode_form_value(c).ok())
}

impl SyncClient {
    /// One page of `q`; its `next` link's cursor continues it ([`cursor_of`]).
    pub fn items(&self, q: &ItemsQuery) -> Result<FeaturePage> {
        let path = q.path();
        let r = Self::check(self.send(&|| self.http.get(self.url(&path)))?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("/collections/{}/items: {e}", q.layer)))
    }

    /// The properties a filter on `layer` may name, with their types and code lists.
    pub fn queryables(&self, layer: &str) -> Result<Queryables> {
        let path = format!("/collections/{}/queryables?f=json", encode_component(layer));
        let r = Self::check(self.send(&|| self.http.get(self.url(&path)))?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{path}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_encoded() {
        let q = ItemsQuery { layer: "manhole".into(), limit: Some(50), ..ItemsQuery::default() };
        assert_eq!(q.path(), "/collections/manhole/items?f=json&limit=50");
        let q = ItemsQuery {
            layer: "井盖".into(),
            filter: Some("名称 LIKE '%路%'".into()),
            sortby: Some("-埋深,+id".into()),
            bbox: Some([114.3, 30.5, 114.4, 30.6]),
            as_of: Some("2026-12-06T20:00:00+08:00".into()),
            limit: None,
            cursor: Some("AQ_-".into()),
            intersects: Some("district/420111".into()),
        };
        let p = q.path();
        assert!(p.starts_with("/collections/%E4%BA%95%E7%9B%96/items?f=json&filter="), "{p}");
        assert!(p.contains("sortby=-%E5%9F%8B%E6%B7%B1%2C%2Bid"), "{p}");
        assert!(p.contains("as-of=2026-12-06T20%3A00%3A00%2B08%3A00"), "{p}");
        assert!(p.contains("&intersects=district%2F420111&"), "{p}");
        assert_eq!(cursor_of(&format!("http://h{p}")).as_deref(), Some("AQ_-"));
        assert_eq!(cursor_of("http://h/x?limit=1"), None);
    }
}
