//! The catalog (目录服务): one record for every layer, tile set, style, process and registered
//! outside service, served as OGC API – Records Part 1 (`records.rs`, `/collections/catalog…`)
//! and CSW 2.0.2 (`csw.rs`, `/csw`), both over the same entries and the same search
//! (`search.rs`), so the two protocols always give the same hits.
//!
//! Why entries are checked at request time: a layer's extent, time range, feature count, schema
//! and last change must be current, including after writes by other processes (`shikong import`,
//! a second server on the same PostgreSQL database), which no in-process commit hook sees. The
//! layers' entries are cached tagged with the store's newest transaction (`latest_tx`, one index
//! lookup per answer) and rebuilt when it moved; a rebuild recounts only the layers whose newest
//! transaction (`layer_last_tx`) changed. The caller's read right is applied to every answer, not
//! cached (rules change without a store transaction): a layer it may not read has no record.
//!
//! Outside services join through [`CatalogSource`]: whoever registers them (`POST /services`)
//! adds a source to [`Catalog::add_source`]; its entries are listed, searched and served like
//! the platform's own.

pub(crate) mod csw;
mod csw_harvest;
pub(crate) mod harvested_source;
pub(crate) mod iso_import;
pub(crate) mod records;
pub(crate) mod search;
pub(crate) mod services_source;
pub(crate) mod xml;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use jiff::Timestamp;
use shikong_model::Bbox;
use shikong_protocol::api;
use shikong_store::{Layer, TxId};

use super::access::{Action, Caller};
use super::problem::ApiResult;
use super::{AppState, processes};

/// The collection id of the catalog; no layer may take it (`/collections/catalog` is routed here).
pub const CATALOG_ID: &str = "catalog";

/// Layers whose feature count the cache keeps at most (beyond it, it starts again empty).
const MAX_CACHED_COUNTS: usize = 4096;

/// What kind of resource a record describes (the record's `type`, CSW's `dc:type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A layer (its features).
    Dataset,
    /// Map tiles of a layer or a raster set.
    Tileset,
    /// A map style.
    Style,
    /// An analysis process (OGC API – Processes).
    Process,
    /// A registered outside service.
    Service,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Dataset, Kind::Tileset, Kind::Style, Kind::Process, Kind::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dataset => "dataset",
            Kind::Tileset => "tileset",
            Kind::Style => "style",
            Kind::Process => "process",
            Kind::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// One catalogued resource, as the catalog's sources describe it (converted to a Records record
/// or a CSW/ISO document at the edge).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unique in the catalog: `layer:NAME`, `tiles:NAME`, `style:ID`, `process:ID`, `service:ID`.
    pub id: String,
    pub kind: Kind,
    pub title: String,
    pub description: String,
    pub keywords: Vec<String>,
    /// Concept ids of the `shikong:geometry` theme scheme (a layer's geometry type).
    pub themes: Vec<String>,
    /// CGCS2000 lon/lat (CRS84 order).
    pub bbox: Option<Bbox>,
    /// The time covered: a layer's creation and newest write.
    pub time: Option<(Timestamp, Timestamp)>,
    pub created: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    /// A layer's live features now.
    pub count: Option<u64>,
    /// A layer's fields: name, title, type.
    pub fields: Vec<api::records::RecordField>,
    /// `(scheme, value)` identifiers (`externalIds`).
    pub external_ids: Vec<(String, String)>,
    /// Where the resource is used: `(href, rel, media type, title)`.
    pub links: Vec<api::Link>,
    /// The text searched, prepared at the first search (`search.rs`).
    pub text: search::TextCell,
}

/// A provider of catalog entries besides the platform's own (registered outside services).
/// Called for every catalog answer, on a blocking thread, with the caller: it returns the entries
/// this caller may see, with links built on `base` (the server's public URL).
pub trait CatalogSource: Send + Sync + std::fmt::Debug {
    fn entries(&self, state: &AppState, caller: &Caller, base: &str) -> ApiResult<Vec<Arc<Entry>>>;
}

/// A layer's cached count: (created, newest write, count), valid while both transactions are
/// the layer's.
type CachedCount = (TxId, Option<TxId>, u64);

/// The catalog's shared state: extra sources and the feature-count cache.
#[derive(Debug, Default)]
pub struct Catalog {
    sources: RwLock<Vec<Arc<dyn CatalogSource>>>,
    counts: Mutex<HashMap<String, CachedCount>>,
    /// Records imported as ISO 19139 (`iso_import.rs`), read from their file once.
    imported: Mutex<Option<Vec<Arc<Entry>>>>,
    /// One import at a time rewrites the file.
    import_lock: Mutex<()>,
    /// Every layer's entries, for one base URL, as of the store's newest transaction then.
    layers: Mutex<Option<LayerCache>>,
    /// The processes' entries for one base URL.
    processes: Mutex<Option<(String, Vec<Arc<Entry>>)>>,
}

/// The layers' entries (before the caller's read rights are applied) as of transaction `tx`.
#[derive(Debug)]
struct LayerCache {
    tx: TxId,
    base: String,
    layers: Arc<Vec<LayerEntries>>,
}

/// A layer with its dataset and vector tile set entries.
type LayerEntries = (Layer, Arc<Entry>, Arc<Entry>);

impl Catalog {
    /// Adds a source of entries (the service registry calls this once at start).
    pub fn add_source(&self, source: Arc<dyn CatalogSource>) {
        self.sources.write().unwrap_or_else(std::sync::PoisonError::into_inner).push(source);
    }

    /// Every layer with its dataset and tile set entries. Rebuilt only when the store's newest
    /// transaction is not the one they were built at (one index lookup; every commit — data,
    /// layer definitions, by this process or another — moves it), so they are always current.
    fn layer_entries(&self, state: &AppState, base: &str) -> ApiResult<Arc<Vec<LayerEntries>>> {
        let store = state.store();
        // Read before building: entries built meanwhile are at least this new.
        let latest = store.latest_tx()?;
        if let Some(c) = self.layers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
            && c.tx == latest
            && c.base == base
        {
            return Ok(c.layers.clone());
        }
        let mut built = Vec::new();
        for l in store.layers()? {
            let last_tx = store.layer_last_tx(l.name())?;
            let first = store.tx_time(l.created_tx)?;
            let last = match last_tx {
                Some(tx) => store.tx_time(tx)?,
                None => None,
            };
            let schema_changed = store.tx_time(l.schema_tx)?;
            let updated = [last, schema_changed, first].into_iter().flatten().max();
            let count = self.count(state, &l, last_tx)?;
            let (dataset, tiles) = layer_entries(base, &l, first, updated, count);
            built.push((l, Arc::new(dataset), Arc::new(tiles)));
        }
        let built = Arc::new(built);
        *self.layers.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(LayerCache { tx: latest, base: base.to_owned(), layers: built.clone() });
        Ok(built)
    }

    fn process_entries(&self, base: &str) -> Vec<Arc<Entry>> {
        let mut g = self.processes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match g.as_ref() {
            Some((b, e)) if b == base => e.clone(),
            _ => {
                let e: Vec<Arc<Entry>> = process_entries(base).into_iter().map(Arc::new).collect();
                *g = Some((base.to_owned(), e.clone()));
                e
            }
        }
    }

    /// The feature count of `l`, from the cache while the layer has not changed since.
    fn count(&self, state: &AppState, l: &Layer, last: Option<TxId>) -> ApiResult<u64> {
        let key = (l.created_tx, last);
        {
            let counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((c, t, n)) = counts.get(l.name())
                && (*c, *t) == key
            {
                return Ok(*n);
            }
        }
        let n = state.store().count(l.name())?;
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.len() >= MAX_CACHED_COUNTS {
            counts.clear();
        }
        counts.insert(l.name().to_owned(), (key.0, key.1, n));
        Ok(n)
    }
}

pub fn routes() -> Router<AppState> {
    records::routes().merge(csw::routes())
}

fn link(href: String, rel: &str, ty: &str, title: &str) -> api::Link {
    api::Link::new(href, rel, ty, title)
}

/// Every entry `caller` may see now, in no particular order (a search orders what it finds).
/// Ids are unique by construction: each source has its own prefix, and imports refuse the
/// platform's prefixes. Blocking (store reads).
pub(crate) fn entries(state: &AppState, caller: &Caller, base: &str) -> ApiResult<Vec<Arc<Entry>>> {
    let mut out = Vec::new();
    for (l, dataset, tiles) in state.catalog.layer_entries(state, base)?.iter() {
        // Re-checked at every answer: rules change without a store transaction.
        if l.name() == CATALOG_ID || caller.allowed(state, l, Action::Read).is_err() {
            continue;
        }
        out.push(dataset.clone());
        out.push(tiles.clone());
    }
    for r in state.tiles.raster_sets()? {
        let name = &r.name;
        out.push(Arc::new(Entry {
            text: Default::default(),
            id: format!("tiles:{name}"),
            kind: Kind::Tileset,
            title: r.title().to_owned(),
            description: format!("{}（栅格瓦片，{}，{} 期）", r.title(), r.kind(), r.slices.len()),
            keywords: vec![name.clone(), r.kind().to_owned(), "栅格瓦片".into(), "raster".into(), "WMTS".into()],
            themes: vec!["raster".into()],
            bbox: Some(r.bounds()),
            time: None,
            created: None,
            updated: None,
            count: None,
            fields: Vec::new(),
            external_ids: vec![("shikong:tileset".into(), name.clone())],
            links: vec![
                link(format!("{base}/tiles/{name}.json"), "tilejson", "application/json", "TileJSON"),
                link(format!("{base}/wmts?service=WMTS&request=GetCapabilities"), "service", "application/xml", "WMTS"),
            ],
        }));
    }
    let stored = state.tiles.styles()?;
    for s in &stored {
        out.push(Arc::new(style_entry(base, &s.id, s.title.as_deref().unwrap_or(&s.id), Some(s.updated_at))));
    }
    if !stored.iter().any(|s| s.id == "default") {
        out.push(Arc::new(style_entry(base, "default", "时空 全部图层", None)));
    }
    out.extend(state.catalog.process_entries(base));
    let sources = state.catalog.sources.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    for s in sources {
        out.extend(s.entries(state, caller, base)?);
    }
    out.extend(iso_import::stored(state)?);
    Ok(out)
}

/// The processes' entries (fixed for a build; links on `base`).
fn process_entries(base: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for id in processes::catalog::PROCESSES {
        let Some(d) = processes::catalog::describe(id, base) else { continue };
        let s = d.summary;
        out.push(Entry {
            text: Default::default(),
            id: format!("process:{id}"),
            kind: Kind::Process,
            title: s.title,
            description: s.description,
            keywords: [vec![id.to_owned(), "分析".into(), "process".into()], s.keywords].concat(),
            themes: Vec::new(),
            bbox: None,
            time: None,
            created: None,
            updated: None,
            count: None,
            fields: Vec::new(),
            external_ids: vec![("shikong:process".into(), id.to_owned())],
            links: vec![
                link(format!("{base}/processes/{id}"), "process", "application/json", "process description"),
                link(
                    format!("{base}/processes/{id}/execution"),
                    "http://www.opengis.net/def/rel/ogc/1.0/execute",
                    "application/json",
                    "execute",
                ),
            ],
        });
    }
    out
}

/// The dataset and vector tile set entries of a layer.
fn layer_entries(
    base: &str,
    l: &Layer,
    first: Option<Timestamp>,
    updated: Option<Timestamp>,
    count: u64,
) -> (Entry, Entry) {
    let name = l.name();
    let title = l.display_name().to_owned();
    let geometry = l.def.geometry_kind.geojson_name().to_owned();
    let fields: Vec<api::records::RecordField> = l
        .schema()
        .active()
        .map(|f| api::records::RecordField {
            name: f.name.clone(),
            title: f.title.clone(),
            ty: format!("{:?}", f.ty).to_lowercase(),
        })
        .collect();
    let mut keywords = vec![name.to_owned(), "图层".into(), "dataset".into()];
    keywords.extend(l.schema().active().filter_map(|f| f.title.clone()));
    let time = first.zip(updated);
    let dataset = Entry {
        text: Default::default(),
        id: format!("layer:{name}"),
        kind: Kind::Dataset,
        title: title.clone(),
        description: l.def.description.clone().unwrap_or_default(),
        keywords,
        themes: vec![geometry.to_lowercase()],
        bbox: l.extent,
        time,
        created: first,
        updated,
        count: Some(count),
        fields,
        external_ids: vec![("shikong:layer".into(), name.to_owned())],
        links: vec![
            link(format!("{base}/collections/{name}"), "collection", "application/json", "the collection"),
            link(format!("{base}/collections/{name}/items"), "items", "application/geo+json", "features"),
            link(
                format!("{base}/collections/{name}/queryables"),
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "application/schema+json",
                "queryables",
            ),
            link(format!("{base}/tiles/{name}.json"), "tiles", "application/json", "vector tiles (TileJSON)"),
            link(format!("{base}/map?layers={name}"), "preview", "text/html", "map"),
        ],
    };
    let tiles = Entry {
        text: Default::default(),
        id: format!("tiles:{name}"),
        kind: Kind::Tileset,
        title: format!("{title} 矢量瓦片"),
        description: format!("图层「{title}」的矢量瓦片（MVT）"),
        keywords: vec![name.to_owned(), "矢量瓦片".into(), "MVT".into(), "tiles".into()],
        themes: vec![geometry.to_lowercase()],
        bbox: l.extent,
        time,
        created: first,
        updated,
        count: None,
        fields: Vec::new(),
        external_ids: vec![("shikong:tileset".into(), name.to_owned())],
        links: vec![
            link(format!("{base}/tiles/{name}.json"), "tilejson", "application/json", "TileJSON"),
            link(
                format!("{base}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt"),
                "item",
                "application/vnd.mapbox-vector-tile",
                "tiles",
            ),
            link(
                format!("{base}/collections/{name}/tiles"),
                "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                "application/json",
                "OGC API – Tiles",
            ),
        ],
    };
    (dataset, tiles)
}

fn style_entry(base: &str, id: &str, title: &str, updated: Option<Timestamp>) -> Entry {
    Entry {
        text: Default::default(),
        id: format!("style:{id}"),
        kind: Kind::Style,
        title: title.to_owned(),
        description: format!("地图样式「{title}」（MapLibre）"),
        keywords: vec![id.to_owned(), "样式".into(), "style".into()],
        themes: Vec::new(),
        bbox: None,
        time: None,
        created: None,
        updated,
        count: None,
        fields: Vec::new(),
        external_ids: vec![("shikong:style".into(), id.to_owned())],
        links: vec![
            link(format!("{base}/styles/{id}"), "stylesheet", "application/vnd.mapbox.style+json", "style"),
            link(format!("{base}/map?style={id}"), "preview", "text/html", "map"),
        ],
    }
}
