//! Behaviour on a small gazetteer of real divisions and invented records.

use jiff::Timestamp;
use shikong_geocoder::{
    AddressPoint, Alias, GazetteerBuilder, Geocoder, Level, MatchLevel, Options, Poi, PointSource, Precision, Reason,
    Record, Road, Status, UnitBasis,
};
use shikong_model::ValidTime;

const DIVISIONS: &[(Level, &str, &str)] = &[
    (Level::Province, "42", "湖北省"),
    (Level::City, "4201", "武汉市"),
    (Level::County, "420111", "洪山区"),
    (Level::Town, "420111001", "珞南街道"),
    (Level::Town, "420111002", "关山街道"),
    (Level::Village, "420111002046", "华中科技大学社区居民委员会"),
    (Level::County, "420106", "武昌区"),
    (Level::Town, "420106013", "珞珈山街道"),
    (Level::Town, "420106001", "积玉桥街道"),
    (Level::City, "4228", "恩施土家族苗族自治州"),
    (Level::County, "422802", "利川市"),
    (Level::Town, "422802100", "谋道镇"),
    (Level::Province, "11", "北京市"),
    (Level::City, "1101", "市辖区"),
    (Level::County, "110105", "朝阳区"),
    (Level::Town, "110105001", "建外街道"),
    (Level::Province, "22", "吉林省"),
    (Level::City, "2201", "长春市"),
    (Level::County, "220104", "朝阳区"),
    (Level::Town, "220104001", "前进街道"),
    (Level::Province, "44", "广东省"),
    (Level::City, "4419", "东莞市"),
    (Level::County, "441900", "东莞市"),
    (Level::Town, "441900003", "东城街道"),
];

fn builder() -> GazetteerBuilder {
    let mut b = GazetteerBuilder::new("NBS", "2023");
    for (level, code, name) in DIVISIONS {
        b.add_division(*level, code, name, "test", 0).unwrap();
    }
    b.set_point("420111", 114.343, 30.499).unwrap();
    b.set_point("420106", 114.316, 30.554).unwrap();
    b.set_point("110105", 116.443, 39.921).unwrap();
    b.set_point("220104", 125.288, 43.833).unwrap();
    b.set_point("441900", 113.751, 23.020).unwrap();
    b.set_point("422802", 108.936, 30.291).unwrap();
    b.add_alias(Alias { alias: "华科".into(), name: "华中科技大学".into(), code: Some("420111002046".into()) });
    b
}

fn geocoder() -> Geocoder {
    Geocoder::new(builder().build().unwrap()).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn road(id: &str, name: &str, admin: &str, line: &[[f64; 2]]) -> Record {
    Record::Road(Road {
        id: id.into(),
        name: name.into(),
        aliases: vec![],
        admin_code: admin.into(),
        line: line.to_vec(),
        valid: ValidTime::ALWAYS,
    })
}

fn address(id: &str, road: &str, number: &str, admin: &str, p: [f64; 2], valid: ValidTime) -> Record {
    Record::Address(AddressPoint {
        id: id.into(),
        admin_code: admin.into(),
        road: road.into(),
        number: number.into(),
        detail: String::new(),
        point: p,
        valid,
    })
}

fn poi(id: &str, name: &str, aliases: &[&str], admin: &str, p: [f64; 2]) -> Record {
    Record::Poi(Poi {
        id: id.into(),
        name: name.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        admin_code: admin.into(),
        point: p,
        address: String::new(),
        valid: ValidTime::ALWAYS,
    })
}

/// (input, status, county code, town code, standard address)
fn check(g: &Geocoder, input: &str, status: Status, county: Option<&str>, town: Option<&str>, standard: &str) {
    let r = g.geocode(input, &Options::default());
    assert_eq!(
        (r.status, r.codes.county.as_deref(), r.codes.town.as_deref(), r.standard_address.as_str()),
        (status, county, town, standard),
        "geocode({input:?}) = {r:#?}"
    );
}

#[test]
fn standard_and_incomplete_addresses() {
    let g = geocoder();
    let m = Status::Match;
    check(&g, "湖北省武汉市洪山区珞南街道", m, Some("420111"), Some("420111001"), "湖北省武汉市洪山区珞南街道");
    check(&g, "武汉市洪山区珞南街道", m, Some("420111"), Some("420111001"), "湖北省武汉市洪山区珞南街道");
    check(&g, "洪山区珞南街道", m, Some("420111"), Some("420111001"), "湖北省武汉市洪山区珞南街道");
    check(&g, "武汉洪山", m, Some("420111"), None, "湖北省武汉市洪山区");
    check(&g, "湖北武汉洪山珞南", m, Some("420111"), Some("420111001"), "湖北省武汉市洪山区珞南街道");
    check(&g, "北京市朝阳区建外街道", m, Some("110105"), Some("110105001"), "北京市朝阳区建外街道");
    check(&g, "广东省东莞市东城街道", m, Some("441900"), Some("441900003"), "广东省东莞市东城街道");
    check(&g, "恩施州利川市谋道镇", m, Some("422802"), Some("422802100"), "湖北省恩施土家族苗族自治州利川市谋道镇");
}

#[test]
fn every_level_carries_its_official_code() {
    let g = geocoder();
    let r = g.geocode("华科", &Options::default());
    assert_eq!(r.status, Status::Match);
    assert_eq!(r.level, Some(MatchLevel::Village));
    let c = &r.codes;
    assert_eq!(
        (c.province.as_deref(), c.city.as_deref(), c.county.as_deref(), c.town.as_deref(), c.village.as_deref()),
        (Some("420000"), Some("420100"), Some("420111"), Some("420111002"), Some("420111002046"))
    );
    assert_eq!(r.standard_address, "湖北省武汉市洪山区关山街道华中科技大学社区");
    let p = r.point.unwrap();
    assert_eq!((p.lon, p.lat, p.source), (114.343, 30.499, PointSource::Centre(Level::County)));
}

#[test]
fn fault_tolerance() {
    let g = geocoder();
    let m = Status::Match;
    // homophone, similar shape, traditional characters, a dropped and a swapped character
    check(&g, "湖北省武汉市红山区珞南街道", m, Some("420111"), Some("420111001"), "湖北省武汉市洪山区珞南街道");
    check(&g, "湖北省武汉市洪山区洛南街道", m, Some("420111"), Some("420111001"), "湖北省武汉市洪山区珞南街道");
    check(&g, "湖北省武漢市洪山區珞南街道", m, Some("420111"), Some("420111001"), "湖北省武汉市洪山区珞南街道");
    check(&g, "湖北省武汉市洪山区关街道", m, Some("420111"), Some("420111002"), "湖北省武汉市洪山区关山街道");
    check(&g, "湖北省武汉市洪山区南珞街道", m, Some("420111"), Some("420111001"), "湖北省武汉市洪山区珞南街道");
    check(&g, "湖北省武汉市洪山区珞南街道办事处", m, Some("420111"), Some("420111001"), "湖北省武汉市洪山区珞南街道");
}

#[test]
fn ties_are_reported_not_guessed() {
    let g = geocoder();
    let r = g.geocode("朝阳区", &Options::default());
    assert_eq!(r.status, Status::Ambiguous);
    assert_eq!(r.reason, Some(Reason::Tie { count: 2 }));
    let mut codes: Vec<_> = r.candidates.iter().map(|c| c.codes.county.clone().unwrap()).collect();
    codes.sort();
    assert_eq!(codes, ["110105", "220104"]);
    // A lower level settles it.
    check(&g, "朝阳区前进街道", Status::Match, Some("220104"), Some("220104001"), "吉林省长春市朝阳区前进街道");
}

#[test]
fn refusals_say_why() {
    let g = geocoder();
    let reason = |s: &str| g.geocode(s, &Options::default()).reason;
    assert_eq!(reason(""), Some(Reason::Empty));
    assert_eq!(reason("  ，。"), Some(Reason::Empty));
    assert_eq!(reason("asdfgh"), Some(Reason::NoComponent));
    assert_eq!(reason("今天天气怎么样"), Some(Reason::NoComponent));
    assert_eq!(reason("日本东京都新宿区歌舞伎町"), Some(Reason::OutsideArea { place: "日本".into() }));
    assert!(matches!(reason("火星市奥林匹斯区"), Some(Reason::OutsideArea { .. })), "{:?}", reason("火星市奥林匹斯区"));
    let r = g.geocode("日本东京都新宿区", &Options::default());
    assert_eq!((r.status, r.point), (Status::NoMatch, None));
}

#[test]
fn roads_house_numbers_and_pois() {
    let mut g = geocoder();
    g.upsert(road("r1", "珞喻路", "420111001", &[[114.35, 30.50], [114.36, 30.51], [114.37, 30.52]])).unwrap();
    g.upsert(address("a1", "珞喻路", "1037", "420111001", [114.41, 30.51], ValidTime::ALWAYS)).unwrap();
    g.upsert(poi("p1", "华中科技大学", &[], "420111002", [114.42, 30.51])).unwrap();
    g.upsert(poi("p2", "蔡林记", &["热干面"], "420106013", [114.36, 30.54])).unwrap();
    let o = Options::default();

    let r = g.geocode("武汉市洪山区珞喻路1037号", &o);
    assert_eq!((r.status, r.level), (Status::Match, Some(MatchLevel::HouseNumber)), "{r:#?}");
    assert_eq!(r.standard_address, "湖北省武汉市洪山区珞南街道珞喻路1037号");
    assert_eq!(r.point.map(|p| (p.lon, p.lat, p.source)), Some((114.41, 30.51, PointSource::Address)));
    assert_eq!(r.components.road.as_deref(), Some("珞喻路"));

    let r = g.geocode("珞喻路", &o);
    assert_eq!((r.level, r.codes.town.as_deref()), (Some(MatchLevel::Road), Some("420111001")));

    // An alias resolves to the POI when the POI exists.
    let r = g.geocode("华科", &o);
    assert_eq!((r.level, r.point.map(|p| p.source)), (Some(MatchLevel::Poi), Some(PointSource::Poi)));
    assert_eq!(r.standard_address, "湖北省武汉市洪山区关山街道华中科技大学");

    // A POI known by its signature dish.
    let r = g.geocode("热干面", &o);
    assert_eq!((r.level, r.components.poi.as_deref()), (Some(MatchLevel::Poi), Some("蔡林记")));

    // Precision: area stops at the divisions.
    let area = Options { precision: Precision::Area, ..Options::default() };
    let r = g.geocode("武汉市洪山区珞喻路1037号", &area);
    assert_eq!((r.level, r.standard_address.as_str()), (Some(MatchLevel::Town), "湖北省武汉市洪山区珞南街道"));
}

#[test]
fn a_shop_known_by_its_dish_near_a_landmark() {
    let mut g = geocoder();
    g.add_alias(Alias { alias: "武大".into(), name: "武汉大学".into(), code: Some("420106013".into()) }).unwrap();
    g.upsert(poi("p1", "蔡林记", &["热干面"], "420106013", [114.36, 30.54])).unwrap();
    g.upsert(poi("p2", "老通城", &["热干面"], "420111001", [114.60, 30.40])).unwrap();
    let r = g.geocode("武大附近的热干面店", &Options::default());
    assert_eq!((r.status, r.components.poi.as_deref()), (Status::Match, Some("蔡林记")), "{r:#?}");
    assert_eq!(r.codes.town.as_deref(), Some("420106013"));
    // Without a landmark the dish names two shops in two districts.
    assert_eq!(g.geocode("热干面", &Options::default()).status, Status::Ambiguous);
}

#[test]
fn two_roads_of_one_name_in_two_districts_tie() {
    let mut g = geocoder();
    g.upsert(road("r1", "新华路", "420111", &[[114.35, 30.50], [114.36, 30.51]])).unwrap();
    g.upsert(road("r2", "新华路", "420106", &[[114.31, 30.55], [114.32, 30.56]])).unwrap();
    let r = g.geocode("新华路", &Options::default());
    assert_eq!(r.status, Status::Ambiguous);
    assert_eq!(r.candidates.len(), 2);
    let r = g.geocode("武昌区新华路", &Options::default());
    assert_eq!((r.status, r.codes.county.as_deref()), (Status::Match, Some("420106")));
}

#[test]
fn versions_are_searchable_at_once_and_as_of() {
    let mut g = geocoder();
    let old = ValidTime::new(Some(ts("2020-01-01T00:00:00Z")), Some(ts("2024-01-01T00:00:00Z"))).unwrap();
    let new = ValidTime::new(Some(ts("2024-01-01T00:00:00Z")), None).unwrap();
    g.upsert(address("a1", "团结路", "8", "420111001", [114.30, 30.50], old)).unwrap();
    g.upsert(address("a1", "光谷大道", "8", "420111001", [114.31, 30.51], new)).unwrap();
    let now = g.geocode("洪山区光谷大道8号", &Options::default());
    assert_eq!(now.level, Some(MatchLevel::HouseNumber));
    let gone = g.geocode("洪山区团结路8号", &Options::default());
    assert_ne!(gone.level, Some(MatchLevel::HouseNumber), "the old address is not current");
    let as_of = Options { as_of: Some(ts("2022-06-01T00:00:00Z")), ..Options::default() };
    let then = g.geocode("洪山区团结路8号", &as_of);
    assert_eq!((then.level, then.point.map(|p| p.lon)), (Some(MatchLevel::HouseNumber), Some(114.30)));
    // Replacing the same version, then removing the record.
    g.upsert(address("a1", "光谷大道", "8", "420111001", [114.32, 30.51], new)).unwrap();
    assert_eq!(g.records().count(), 2);
    assert_eq!(g.remove("a1"), 2);
    assert_eq!(g.geocode("洪山区光谷大道8号", &Options::default()).level, Some(MatchLevel::County));
}

#[test]
fn records_are_validated() {
    let mut g = geocoder();
    let e = g.upsert(road("r", "珞喻路", "420111", &[[114.0, 30.0]])).unwrap_err().to_string();
    assert!(e.contains("road \"r\"") && e.contains("2 vertices"), "{e}");
    let e = g.upsert(poi("p", "某店", &[], "999999", [114.0, 30.0])).unwrap_err().to_string();
    assert!(e.contains("999999"), "{e}");
    let e = g.upsert(poi("p", "某店", &[], "420111", [f64::NAN, 30.0])).unwrap_err().to_string();
    assert!(e.contains("longitude/latitude"), "{e}");
}

#[test]
fn reverse_gives_every_level_nearest_road_and_address() {
    let mut g = geocoder();
    g.upsert(road("r1", "珞喻路", "420111001", &[[114.35, 30.50], [114.37, 30.50]])).unwrap();
    g.upsert(address("a1", "珞喻路", "1037", "420111001", [114.3600, 30.5005], ValidTime::ALWAYS)).unwrap();
    let r = g.reverse(114.3601, 30.5004);
    let levels: Vec<_> = r.units.iter().map(|u| (u.level, u.code.as_str(), u.basis)).collect();
    assert_eq!(
        levels,
        [
            (Level::Province, "420000", UnitBasis::Parent),
            (Level::City, "420100", UnitBasis::Parent),
            (Level::County, "420111", UnitBasis::Nearest),
            (Level::Town, "420111001", UnitBasis::Record),
        ]
    );
    let road = r.nearest_road.unwrap();
    assert_eq!(road.name, "珞喻路");
    assert!((road.distance_m - 44.5).abs() < 1.0, "{}", road.distance_m);
    let a = r.nearest_address.unwrap();
    assert_eq!(a.standard_address, "湖北省武汉市洪山区珞南街道珞喻路1037号");
    assert!(a.distance_m < 20.0, "{}", a.distance_m);
}

#[test]
fn reverse_uses_boundaries_when_loaded() {
    let mut b = builder();
    // A square around 武昌区's centre, and 洪山区's centre closer to the query point.
    b.add_boundary("420106", vec![vec![[114.30, 30.53], [114.40, 30.53], [114.40, 30.60], [114.30, 30.60]]]).unwrap();
    let g = Geocoder::new(b.build().unwrap()).unwrap();
    let r = g.reverse(114.34, 30.531);
    let county = r.units.iter().find(|u| u.level == Level::County).unwrap();
    assert_eq!((county.code.as_str(), county.basis), ("420106", UnitBasis::Polygon));
}

#[test]
fn suggestions_by_prefix_and_pinyin_initials() {
    let mut g = geocoder();
    g.upsert(road("r1", "珞喻路", "420111001", &[[114.35, 30.50], [114.37, 30.50]])).unwrap();
    let names = |p: &str| g.suggest(p, 5).into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(names("hs"), ["洪山区"]);
    assert_eq!(names("hongshan"), ["洪山区"]);
    assert_eq!(names("洪"), ["洪山区"]);
    assert_eq!(names("lyl"), ["珞喻路"]);
    assert_eq!(names("cy").len(), 2, "both 朝阳区 (cháo)");
    assert!(names("").is_empty());
    let within = g.suggest_within("cy", 1, Some("22"));
    assert_eq!(within[0].standard_address, "吉林省长春市朝阳区");
}

#[test]
fn snapshots_round_trip_and_subsets_refuse_other_areas() {
    let mut g = geocoder();
    g.upsert(poi("p1", "华中科技大学", &[], "420111002", [114.42, 30.51])).unwrap();
    let bytes = g.to_snapshot().unwrap();
    let back = Geocoder::from_snapshot(&bytes).unwrap();
    let o = Options::default();
    for q in ["华科", "武汉洪山", "朝阳区前进街道", "红山区"] {
        assert_eq!(back.geocode(q, &o), g.geocode(q, &o), "{q}");
    }
    assert!(Geocoder::from_snapshot(b"nope").unwrap_err().to_string().contains("magic"));
    let mut bad = bytes.clone();
    bad[4] = 9;
    assert!(Geocoder::from_snapshot(&bad).unwrap_err().to_string().contains("unsupported version 9"));
    assert!(Geocoder::from_snapshot(&bytes[..bytes.len() / 2]).is_err());

    let device = g.subset(&["420111"]).unwrap();
    assert_eq!(device.gazetteer().meta().area.as_deref(), Some(&["420111".to_string()][..]));
    let r = device.geocode("洪山区珞南街道", &o);
    assert_eq!(r.codes.town.as_deref(), Some("420111001"));
    let r = device.geocode("北京市朝阳区", &o);
    assert_eq!((r.status, r.reason), (Status::NoMatch, Some(Reason::OutsideArea { place: "北京市朝阳区".into() })));
    assert_eq!(device.geocode("华科", &o).level, Some(MatchLevel::Poi), "records inside the area travel with it");
}

static SHARED: std::sync::LazyLock<Geocoder> = std::sync::LazyLock::new(geocoder);

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Any text gets an answer whose parts agree with its status; nothing panics.
    #[test]
    fn any_text_gets_a_consistent_answer(s in "[湖北省武汉市洪山区珞南街道朝阳前进华科路号0-9a-z的了 ，。]{0,16}") {
        let r = SHARED.geocode(&s, &Options::default());
        proptest::prop_assert!((0.0..=1.0).contains(&r.score), "{r:?}");
        match r.status {
            Status::NoMatch => proptest::prop_assert!(r.reason.is_some() && r.codes.province.is_none() && r.point.is_none()),
            Status::Ambiguous => proptest::prop_assert!(r.candidates.len() >= 2),
            Status::Match => proptest::prop_assert!(r.codes.province.is_some() && !r.standard_address.is_empty()),
        }
    }

    #[test]
    fn normalising_twice_changes_nothing(s in "\\PC{0,20}") {
        let once = shikong_geocoder::normalize(&s);
        proptest::prop_assert_eq!(shikong_geocoder::normalize(&once), once);
    }
}

#[test]
fn a_scope_hides_records_of_other_layers_everywhere() {
    use shikong_geocoder::Scope;
    use std::collections::BTreeSet;
    let mut g = geocoder();
    let p = [114.410, 30.510];
    g.upsert(poi("poi/1", "蔡林记", &["热干面"], "420111", p)).unwrap();
    g.upsert(address("addr/1", "珞喻路", "1037", "420111", [114.411, 30.511], ValidTime::ALWAYS)).unwrap();
    g.upsert(road("road/1", "珞喻路", "420111", &[[114.40, 30.51], [114.42, 30.51]])).unwrap();
    // A second 蔡林记 in a layer the caller reads, farther away: the hidden one must not hide it.
    g.upsert(poi("shop/1", "蔡林记", &[], "420106", [114.316, 30.554])).unwrap();
    let only = |layers: &[&str]| Options {
        scope: Scope::Layers(layers.iter().map(|l| l.to_string()).collect::<BTreeSet<_>>()),
        ..Options::default()
    };
    let (all, roads) = (Options::default(), only(&["road"]));

    // Forward: the POI and the house number answer only when their layers are in scope.
    assert_eq!(g.geocode("热干面", &all).level, Some(MatchLevel::Poi));
    assert_ne!(g.geocode("热干面", &roads).level, Some(MatchLevel::Poi));
    assert_eq!(g.geocode("武汉市洪山区珞喻路1037号", &all).level, Some(MatchLevel::HouseNumber));
    let r = g.geocode("武汉市洪山区珞喻路1037号", &roads);
    assert_eq!(r.level, Some(MatchLevel::Road), "{r:#?}");
    let shop = g.geocode("蔡林记", &only(&["shop"]));
    assert_eq!((shop.status, shop.codes.county.as_deref()), (Status::Match, Some("420106")), "{shop:#?}");
    // Records of no layer are hidden from any scope but `All`.
    g.upsert(poi("plain", "无层名店", &[], "420111", p)).unwrap();
    assert_eq!(g.geocode("无层名店", &all).level, Some(MatchLevel::Poi));
    assert_ne!(g.geocode("无层名店", &only(&["poi", "plain"])).level, Some(MatchLevel::Poi));

    // Reverse: the nearest address and road come from visible layers only.
    let r = g.reverse_with(p[0], p[1], &roads);
    assert!(r.nearest_address.is_none(), "{r:#?}");
    assert_eq!(r.nearest_road.map(|n| n.id), Some("road/1".to_owned()));
    assert!(g.reverse_with(p[0], p[1], &all).nearest_address.is_some());

    // Suggestions: hidden records are skipped before the limit is counted.
    let names = |scope: &Scope| -> Vec<String> {
        g.suggest_scoped("蔡林", 1, None, scope).into_iter().map(|s| s.name).collect()
    };
    assert_eq!(names(&only(&["shop"]).scope), ["蔡林记"]);
    assert!(names(&roads.scope).is_empty());

    // A device subset carries the visible layers' records only.
    let sub = g.subset_scoped(&["420111", "420106"], &only(&["road", "shop"]).scope).unwrap();
    let mut layers: Vec<_> = sub.records().filter_map(Record::layer).map(str::to_owned).collect();
    layers.sort();
    assert_eq!(layers, ["road", "shop"]);
}
