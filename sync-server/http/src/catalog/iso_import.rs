//! ISO 19139 import: `POST /collections/catalog/items` with a `gmd:MD_Metadata` body (office
//! staff and administrators) adds or replaces a record described from outside — a dataset held
//! by another department, say. The document is read into an [`Entry`] with exactly the parts the
//! export (`xml::iso_record`) writes, so export → import → export gives the same document.
//!
//! Imported records are kept as their documents in `DATA/catalog/imported.json` (written
//! atomically), read once per process and after every import. Their ids may not take the
//! platform's own prefixes (`layer:`, `tiles:`, `style:`, `process:`, `service:`): those records
//! are built from the live store and cannot be overwritten. Validation names what is wrong:
//! a missing identifier or title, a bounding box outside the globe or inverted, a date that is not
//! one, more than [`MAX_IMPORTED`] records.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shikong_auth::Role;
use shikong_model::Bbox;

use super::csw::{MAX_XML_BYTES, Node, Tree};
use super::{Entry, Kind};
use crate::access::Caller;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, blocking};

/// Most records the catalog keeps imported.
pub const MAX_IMPORTED: usize = 10_000;

const PLATFORM_PREFIXES: [&str; 6] = ["layer:", "tiles:", "style:", "process:", "service:", "harvest:"];

fn file(state: &AppState) -> std::path::PathBuf {
    state.config.data_dir.join("catalog").join("imported.json")
}

/// The imported documents, by id.
fn load_docs(state: &AppState) -> ApiResult<BTreeMap<String, String>> {
    let path = file(state);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(format!("{}: not the catalog's imported records: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(ApiError::internal(format!("{}: {e}", path.display()))),
    }
}

/// The imported records as entries (cached until the next import). Blocking (file reads).
pub(crate) fn stored(state: &AppState) -> ApiResult<Vec<Arc<Entry>>> {
    let mut cache = state.catalog.imported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(e) = cache.as_ref() {
        return Ok(e.clone());
    }
    let mut out = Vec::new();
    for (id, doc) in load_docs(state)? {
        match Tree::parse(doc.as_bytes()).map_err(|e| e.text).and_then(|n| entry_of(&n).map_err(|e| e.detail)) {
            Ok(e) => out.push(Arc::new(e)),
            Err(why) => tracing::warn!(record = %id, error = %why, "an imported catalog record no longer reads"),
        }
    }
    *cache = Some(out.clone());
    Ok(out)
}

fn find<'a>(n: &'a Node, path: &[&str]) -> Option<&'a Node> {
    let mut at = n;
    for p in path {
        at = at.children.iter().find(|c| c.name == *p)?;
    }
    Some(at)
}

fn all<'a>(n: &'a Node, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
    n.children.iter().filter(move |c| c.name == name)
}

/// The text of the element at `path` below `n` (its `gco:*`/`gmd:URL` child's text).
fn text_at(n: &Node, path: &[&str]) -> Option<String> {
    let e = find(n, path)?;
    let t = e.children.first().map_or(e.text.as_str(), |c| c.text.as_str());
    Some(t.trim().to_owned())
}

fn bad(member: &str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-metadata", detail.into()).with("element", member)
}

fn instant(member: &str, s: &str) -> ApiResult<jiff::Timestamp> {
    shikong_model::parse_instant(s).map_err(|e| bad(member, format!("`{s}` is not a date-time: {e}")))
}

/// Reads a `gmd:MD_Metadata` into an entry, checking what the catalog relies on.
pub(super) fn entry_of(md: &Node) -> ApiResult<Entry> {
    if md.name != "MD_Metadata" {
        return Err(bad("MD_Metadata", format!("the root is `{}`, not gmd:MD_Metadata", md.name)));
    }
    let id =
        text_at(md, &["fileIdentifier"]).filter(|s| !s.is_empty()).ok_or_else(|| bad("fileIdentifier", "missing"))?;
    if id.chars().count() > 200 || id.chars().any(char::is_control) {
        return Err(bad("fileIdentifier", "at most 200 characters, no control characters"));
    }
    let kind = text_at(md, &["hierarchyLevelName"])
        .and_then(|k| Kind::parse(&k))
        .or_else(|| {
            let scope = find(md, &["hierarchyLevel", "MD_ScopeCode"])?.attr("codeListValue")?.to_owned();
            Some(if scope == "service" { Kind::Service } else { Kind::Dataset })
        })
        .unwrap_or(Kind::Dataset);
    let ident = find(md, &["identificationInfo"])
        .and_then(|i| i.children.first())
        .ok_or_else(|| bad("identificationInfo", "missing"))?;
    let citation = find(ident, &["citation", "CI_Citation"]).ok_or_else(|| bad("citation", "missing"))?;
    let title = text_at(citation, &["title"]).filter(|s| !s.is_empty()).ok_or_else(|| bad("title", "missing"))?;
    let (mut created, mut updated) = (None, None);
    for d in all(citation, "date") {
        let Some(cd) = find(d, &["CI_Date"]) else { continue };
        let when = text_at(cd, &["date"]).ok_or_else(|| bad("CI_Date", "no date"))?;
        let when = instant("CI_Date", &when)?;
        match find(cd, &["dateType", "CI_DateTypeCode"]).and_then(|c| c.attr("codeListValue")) {
            Some("creation") => created = Some(when),
            Some("revision") => updated = Some(when),
            _ => {}
        }
    }
    let description = text_at(ident, &["abstract"]).unwrap_or_default();
    let mut keywords = Vec::new();
    for dk in all(ident, "descriptiveKeywords") {
        if let Some(k) = find(dk, &["MD_Keywords"]) {
            keywords.extend(all(k, "keyword").filter_map(|k| text_at(k, &[])).filter(|k| !k.is_empty()));
        }
    }
    let (mut bbox, mut time) = (None, None);
    if let Some(ex) = find(ident, &["extent", "EX_Extent"]) {
        if let Some(g) = find(ex, &["geographicElement", "EX_GeographicBoundingBox"]) {
            let num = |name: &str| -> ApiResult<f64> {
                let t = text_at(g, &[name]).ok_or_else(|| bad(name, "missing"))?;
                t.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad(name, format!("`{t}` is not a number")))
            };
            let b = Bbox {
                min_x: num("westBoundLongitude")?,
                max_x: num("eastBoundLongitude")?,
                min_y: num("southBoundLatitude")?,
                max_y: num("northBoundLatitude")?,
            };
            if b.min_x < -180.0
                || b.max_x > 180.0
                || b.min_y < -90.0
                || b.max_y > 90.0
                || b.min_x > b.max_x
                || b.min_y > b.max_y
            {
                return Err(bad(
                    "EX_GeographicBoundingBox",
                    "bounds outside −180…180, −90…90 or west > east / south > north",
                ));
            }
            bbox = Some(b);
        }
        if let Some(p) = find(ex, &["temporalElement", "EX_TemporalExtent", "extent", "TimePeriod"]) {
            let a = instant("beginPosition", &text_at(p, &["beginPosition"]).unwrap_or_default())?;
            let b = instant("endPosition", &text_at(p, &["endPosition"]).unwrap_or_default())?;
            if b < a {
                return Err(bad("TimePeriod", "ends before it begins"));
            }
            time = Some((a, b));
        }
    }
    let mut links = Vec::new();
    if let Some(t) = find(md, &["distributionInfo", "MD_Distribution", "transferOptions", "MD_DigitalTransferOptions"])
    {
        for o in all(t, "onLine") {
            let Some(r) = find(o, &["CI_OnlineResource"]) else { continue };
            let href = text_at(r, &["linkage"]).filter(|h| !h.is_empty()).ok_or_else(|| bad("linkage", "missing"))?;
            links.push(shikong_protocol::api::Link {
                href,
                rel: text_at(r, &["name"]).unwrap_or_default(),
                media_type: text_at(r, &["protocol"]).unwrap_or_default(),
                title: text_at(r, &["description"]).unwrap_or_default(),
            });
        }
    }
    Ok(Entry {
        text: Default::default(),
        id,
        kind,
        title,
        description,
        keywords,
        themes: Vec::new(),
        bbox,
        time,
        created,
        updated,
        count: None,
        fields: Vec::new(),
        external_ids: Vec::new(),
        links,
    })
}

/// `POST /collections/catalog/items` (ISO 19139 body): 201 for a new record, 200 for a replaced
/// one; the answer is the record as Records serves it.
pub(crate) async fn import(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require_role(
        &[Role::Admin, Role::Office],
        "importing catalog records is for office staff and administrators",
    )?;
    if body.len() > MAX_XML_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("{} bytes; at most {MAX_XML_BYTES}", body.len()),
        )
        .with("max", MAX_XML_BYTES));
    }
    let text = std::str::from_utf8(&body).map_err(|e| ApiError::bad_body(format!("not UTF-8 XML: {e}")))?.to_owned();
    let root = Tree::parse(text.as_bytes()).map_err(|e| ApiError::bad_body(e.text))?;
    let entry = entry_of(&root)?;
    if PLATFORM_PREFIXES.iter().any(|p| entry.id.starts_with(p)) {
        return Err(ApiError::conflict(format!(
            "`{}` names one of the platform's own records ({}…), built from the live store; import it under another identifier",
            entry.id,
            PLATFORM_PREFIXES.join("…, ")
        ))
        .with("element", "fileIdentifier"));
    }
    let base = state.base_url(&headers);
    let st = state.clone();
    let e2 = entry.clone();
    let replaced = blocking(move || {
        let _guard = st.catalog.import_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut docs = load_docs(&st)?;
        if !docs.contains_key(&e2.id) && docs.len() >= MAX_IMPORTED {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "too-many",
                format!("the catalog keeps at most {MAX_IMPORTED} imported records"),
            )
            .with("max", MAX_IMPORTED));
        }
        let replaced = docs.insert(e2.id.clone(), text).is_some();
        let path = file(&st);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(ApiError::internal)?;
        }
        let bytes = serde_json::to_vec(&docs).map_err(ApiError::internal)?;
        crate::calendar::write_atomic(&path, &bytes).map_err(ApiError::internal)?;
        *st.catalog.imported.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(replaced)
    })
    .await?;
    let record = super::records::record(&base, &entry);
    let status = if replaced { StatusCode::OK } else { StatusCode::CREATED };
    let body = serde_json::to_vec(&record).map_err(ApiError::internal)?;
    let mut resp = (status, [(header::CONTENT_TYPE, "application/geo+json")], body).into_response();
    let location = format!("{base}/collections/catalog/items/{}", shikong_protocol::url::encode_component(&entry.id));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}
