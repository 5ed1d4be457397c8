//! Style documents: MapLibre style JSON (style specification version 8) that office staff edit
//! and every map (web page, desktop, mobile) loads.
//!
//! A style is stored as a document, like a layer schema: it is the format MapLibre reads, so it
//! is kept verbatim (with a version number for optimistic concurrency) after a structural check
//! that catches what would make MapLibre refuse it: the version, the `sources` object, unique
//! layer ids, known layer types, and sources that exist. Source URLs may be relative (`/tiles/…`);
//! the server makes them absolute when it serves the document.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde_json::Value as Json;

use crate::TileService;
use crate::error::{Result, TileServerError};

/// A stored style.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleDoc {
    pub id: String,
    pub title: Option<String>,
    pub doc: Json,
    /// 1 for the first version, +1 per replacement.
    pub version: i64,
    pub updated_by: String,
    pub updated_at: Timestamp,
}

const LAYER_TYPES: [&str; 10] = [
    "background",
    "fill",
    "line",
    "symbol",
    "circle",
    "heatmap",
    "fill-extrusion",
    "raster",
    "hillshade",
    "color-relief",
];

/// Checks a MapLibre style document; errors name the offending member.
pub fn check_style(id: &str, doc: &Json) -> Result<()> {
    let bad = |m: String| TileServerError::Style { id: id.to_owned(), message: m };
    let obj = doc.as_object().ok_or_else(|| bad("a style is a JSON object".into()))?;
    if obj.get("version").and_then(Json::as_i64) != Some(8) {
        return Err(bad("`version` must be 8 (MapLibre style specification)".into()));
    }
    let sources =
        obj.get("sources").and_then(Json::as_object).ok_or_else(|| bad("`sources` must be an object".into()))?;
    for (name, s) in sources {
        let ty = s.get("type").and_then(Json::as_str);
        if !matches!(ty, Some("vector" | "raster" | "raster-dem" | "geojson" | "image" | "video")) {
            return Err(bad(format!(
                "source `{name}`: `type` must be vector, raster, raster-dem, geojson, image or video"
            )));
        }
    }
    let layers = obj.get("layers").and_then(Json::as_array).ok_or_else(|| bad("`layers` must be an array".into()))?;
    let mut seen = std::collections::HashSet::new();
    for (i, l) in layers.iter().enumerate() {
        let lid =
            l.get("id").and_then(Json::as_str).ok_or_else(|| bad(format!("layers[{i}]: `id` must be a string")))?;
        if !seen.insert(lid) {
            return Err(bad(format!("layers[{i}]: id `{lid}` is used twice")));
        }
        let ty = l.get("type").and_then(Json::as_str).unwrap_or("");
        if !LAYER_TYPES.contains(&ty) {
            return Err(bad(format!("layer `{lid}`: `type` must be one of {}", LAYER_TYPES.join(", "))));
        }
        if ty != "background" {
            let src = l.get("source").and_then(Json::as_str);
            match src {
                Some(s) if sources.contains_key(s) => {}
                Some(s) => return Err(bad(format!("layer `{lid}`: source `{s}` is not in `sources`"))),
                None => return Err(bad(format!("layer `{lid}`: `source` is missing"))),
            }
        }
    }
    Ok(())
}

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Option<String>, String, i64, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn to_doc(row: (String, Option<String>, String, i64, String, String)) -> Result<StyleDoc> {
    let (id, title, doc, version, updated_by, updated_at) = row;
    let doc = serde_json::from_str(&doc)
        .map_err(|e| TileServerError::Style { id: id.clone(), message: format!("stored document is not JSON: {e}") })?;
    let updated_at = updated_at.parse().unwrap_or(Timestamp::UNIX_EPOCH);
    Ok(StyleDoc { id, title, doc, version, updated_by, updated_at })
}

impl TileService {
    /// Every stored style, by id.
    pub fn styles(&self) -> Result<Vec<StyleDoc>> {
        let rows = self.registry()?.read(|c| {
            let mut st =
                c.prepare_cached("SELECT id, title, doc, version, updated_by, updated_at FROM styles ORDER BY id")?;
            let rows = st.query_map([], read)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter().map(to_doc).collect()
    }

    pub fn style(&self, id: &str) -> Result<Option<StyleDoc>> {
        let row = self.registry()?.read(|c| {
            Ok(c.query_row(
                "SELECT id, title, doc, version, updated_by, updated_at FROM styles WHERE id = ?1",
                [id],
                read,
            )
            .optional()?)
        })?;
        row.map(to_doc).transpose()
    }

    /// Creates or replaces a style after checking it. `if_version`: the version the editor
    /// started from (a conflict when someone saved in between); `None` replaces unconditionally.
    pub fn put_style(
        &self,
        id: &str,
        doc: &Json,
        author: &str,
        now: Timestamp,
        if_version: Option<i64>,
    ) -> Result<StyleDoc> {
        crate::raster::check_set_name(id).map_err(|_| TileServerError::Style {
            id: id.to_owned(),
            message: "style ids use ASCII letters, digits, `_` or `-`, starting with a letter".into(),
        })?;
        check_style(id, doc)?;
        let title = doc.get("name").and_then(Json::as_str).map(str::to_owned);
        let text = doc.to_string();
        self.registry()?.write(|c| {
            let tx = c.transaction()?;
            let current: Option<i64> =
                tx.query_row("SELECT version FROM styles WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            if let Some(expected) = if_version
                && current.unwrap_or(0) != expected
            {
                return Err(TileServerError::Style {
                    id: id.to_owned(),
                    message: format!(
                        "was changed by someone else (now version {}, you edited version {expected}); reload it and edit again",
                        current.unwrap_or(0)
                    ),
                });
            }
            let version = current.unwrap_or(0) + 1;
            tx.execute(
                "INSERT OR REPLACE INTO styles VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, title, text, version, author, now.to_string()],
            )?;
            tx.commit()?;
            Ok(())
        })?;
        self.style(id)?
            .ok_or_else(|| TileServerError::Style { id: id.to_owned(), message: "vanished after saving".into() })
    }

    /// Deletes a stored style; `false` when there was none.
    pub fn delete_style(&self, id: &str) -> Result<bool> {
        self.registry()?.write(|c| Ok(c.execute("DELETE FROM styles WHERE id = ?1", [id])? > 0))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(doc: Json, expected: Option<&str>) {
        let got = check_style("s", &doc).err().map(|e| e.to_string());
        assert_eq!(got.as_deref(), expected, "{doc}");
    }

    #[test]
    fn style_checks() {
        let src = json!({"m": {"type": "vector", "url": "/tiles/manhole.json"}});
        check(
            json!({"version": 8, "sources": src, "layers": [{"id": "a", "type": "circle", "source": "m", "source-layer": "manhole"}]}),
            None,
        );
        check(json!({"version": 8, "sources": {}, "layers": [{"id": "bg", "type": "background"}]}), None);
        check(json!([]), Some("style `s`: a style is a JSON object"));
        check(
            json!({"version": 7, "sources": {}, "layers": []}),
            Some("style `s`: `version` must be 8 (MapLibre style specification)"),
        );
        check(json!({"version": 8, "layers": []}), Some("style `s`: `sources` must be an object"));
        check(
            json!({"version": 8, "sources": {"x": {"type": "wms"}}, "layers": []}),
            Some("style `s`: source `x`: `type` must be vector, raster, raster-dem, geojson, image or video"),
        );
        check(
            json!({"version": 8, "sources": src, "layers": [{"id": "a", "type": "circle", "source": "m"}, {"id": "a", "type": "line", "source": "m"}]}),
            Some("style `s`: layers[1]: id `a` is used twice"),
        );
        check(
            json!({"version": 8, "sources": src, "layers": [{"id": "a", "type": "dots", "source": "m"}]}),
            Some(
                "style `s`: layer `a`: `type` must be one of background, fill, line, symbol, circle, heatmap, fill-extrusion, raster, hillshade, color-relief",
            ),
        );
        check(
            json!({"version": 8, "sources": src, "layers": [{"id": "a", "type": "fill", "source": "road"}]}),
            Some("style `s`: layer `a`: source `road` is not in `sources`"),
        );
        check(
            json!({"version": 8, "sources": src, "layers": [{"id": "a", "type": "fill"}]}),
            Some("style `s`: layer `a`: `source` is missing"),
        );
    }

    #[test]
    fn versions_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let svc = TileService::new(crate::TileConfig::new(dir.path()));
        let doc =
            json!({"version": 8, "name": "井盖专题图", "sources": {}, "layers": [{"id": "bg", "type": "background"}]});
        let t = Timestamp::from_second(1_750_000_000).unwrap();
        let a = svc.put_style("manhole", &doc, "wang", t, Some(0)).unwrap();
        assert_eq!((a.version, a.title.as_deref(), a.updated_by.as_str()), (1, Some("井盖专题图"), "wang"));
        let b = svc.put_style("manhole", &doc, "li", t, Some(1)).unwrap();
        assert_eq!(b.version, 2);
        let err = svc.put_style("manhole", &doc, "wang", t, Some(1)).unwrap_err().to_string();
        assert!(err.contains("now version 2, you edited version 1"), "{err}");
        assert!(svc.put_style("井盖", &doc, "wang", t, None).is_err());
        assert_eq!(svc.styles().unwrap().len(), 1);
        assert!(svc.delete_style("manhole").unwrap());
        assert!(svc.style("manhole").unwrap().is_none());
    }
}
