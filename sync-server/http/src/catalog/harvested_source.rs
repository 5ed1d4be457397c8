//! Records harvested from other catalogues (`harvest/`, issue 20) as catalog entries, so a
//! search of the catalog (Records and CSW alike) finds them next to the platform's own. Their ids
//! are `harvest:{source}:{remote id}`; their links point at the remote catalogue's own public
//! addresses (catalogue metadata is public, unlike a registered service's address).
//!
//! Cost: the catalog asks every source for all its entries per answer. Converting 100k stored
//! rows per request would dominate, so the entries are cached, tagged with the harvest generation
//! (`auth_meta`, moved by every write to harvested records in any process; one indexed read per
//! answer), and rebuilt by reading the table in keyset pages when it moved. The cache holds one
//! `Entry` per record (≈ 0.5–1 KB each, with its search text once searched) behind an `Arc`;
//! an answer copies the pointers.

use std::sync::{Arc, Mutex, PoisonError};

use shikong_model::Bbox;

use super::{CatalogSource, Entry, Kind, link};
use crate::AppState;
use crate::access::Caller;
use crate::problem::ApiResult;

/// Rows read from the table per query while rebuilding.
const READ_PAGE: usize = 5000;

/// Cached entries: (harvest generation, base URL, entries).
type Cached = (String, String, Arc<Vec<Arc<Entry>>>);

/// The harvested records as a [`CatalogSource`]; added to every server's catalog in
/// `AppState::new`.
#[derive(Debug, Default)]
pub struct HarvestedSource {
    cache: Mutex<Option<Cached>>,
}

fn entry(r: &shikong_auth::HarvestedRecord) -> Entry {
    let keywords: Vec<String> = serde_json::from_str(&r.keywords).unwrap_or_default();
    let bbox = r
        .bbox
        .as_deref()
        .and_then(|b| serde_json::from_str::<[f64; 4]>(b).ok())
        .and_then(|b| Bbox::new(b[0], b[1], b[2], b[3]).ok());
    let raw: serde_json::Value = serde_json::from_str(&r.raw).unwrap_or_default();
    let links = raw["links"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .filter_map(|l| Some(link(l["href"].as_str()?.to_owned(), l["rel"].as_str()?, "text/html", "remote")))
                .collect()
        })
        .unwrap_or_default();
    let updated = r.modified.as_deref().and_then(|m| {
        m.parse::<jiff::Timestamp>().ok().or_else(|| {
            m.parse::<jiff::civil::Date>()
                .ok()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp())
        })
    });
    Entry {
        text: Default::default(),
        id: format!("harvest:{}:{}", r.source_id, r.remote_id),
        kind: Kind::parse(&r.kind).unwrap_or(Kind::Dataset),
        title: r.title.clone(),
        description: r.abstract_text.clone(),
        keywords,
        themes: Vec::new(),
        bbox,
        time: None,
        created: None,
        updated,
        count: None,
        fields: Vec::new(),
        external_ids: vec![(format!("harvest:{}", r.source_id), r.remote_id.clone())],
        links,
    }
}

impl CatalogSource for HarvestedSource {
    fn entries(&self, state: &AppState, _caller: &Caller, base: &str) -> ApiResult<Vec<Arc<Entry>>> {
        let generation = state.auth.harvest_generation()?;
        if generation.is_empty() {
            return Ok(Vec::new());
        }
        if let Some((g, b, e)) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
            && *g == generation
            && b == base
        {
            return Ok(e.as_ref().clone());
        }
        let mut built = Vec::new();
        let mut after: Option<(String, String)> = None;
        loop {
            let page = state.auth.harvested_page(after.as_ref().map(|(s, r)| (s.as_str(), r.as_str())), READ_PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some((last.source_id.clone(), last.remote_id.clone()));
            built.extend(page.iter().map(|r| Arc::new(entry(r))));
            if page.len() < READ_PAGE {
                break;
            }
        }
        let built = Arc::new(built);
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = Some((generation, base.to_owned(), built.clone()));
        Ok(built.as_ref().clone())
    }
}
