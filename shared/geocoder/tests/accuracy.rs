//! Accuracy on the labelled test set (testdata/cases.csv, generated from the real NBS 2023 division
//! lists by testdata/gen_cases.py) against the whole-country gazetteer. Each category must stay at
//! or above the figure measured when the engine was tuned, less a small margin (see the table).
//! Needs the reference data: run scripts/fetch-data.sh first; the test fails without it.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use shikong_geocoder::{GazetteerBuilder, Geocoder, Options, Status};

/// Per category: (county-level or status accuracy, township accuracy) floors. Measured figures are
/// in testdata/README.md; the floors sit about one point below them.
const FLOORS: &[(&str, f64, f64)] = &[
    ("full", 0.99, 0.99),
    ("missing_province", 0.99, 0.98),
    ("missing_province_city", 0.99, 0.98),
    ("no_suffix", 0.99, 0.98),
    ("homophone", 0.99, 0.98),
    ("variant", 0.99, 0.97),
    ("typo", 0.98, 0.95),
    ("alias", 0.99, 0.98),
    ("ambiguous", 0.98, 0.0),
    ("out_of_area", 0.98, 0.0),
    ("nonsense", 0.99, 0.0),
];
/// The goals on the perturbed categories together.
const GOAL_COUNTY: f64 = 0.95;
const GOAL_TOWN: f64 = 0.85;
const PERTURBED: &[&str] =
    &["missing_province", "missing_province_city", "no_suffix", "homophone", "variant", "typo", "alias"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn open(p: &Path) -> File {
    File::open(p).unwrap_or_else(|e| {
        panic!(
            "cannot open {}: {e}. The reference data is fetched by scripts/fetch-data.sh; run it first.",
            p.display()
        )
    })
}

fn geocoder() -> Geocoder {
    let data = root().join(".cache/data");
    let mut b = GazetteerBuilder::new("NBS", "2023");
    b.read_china_division(|f| Ok(Some(open(&data.join("china-division").join(f))))).unwrap();
    b.read_points("adcodes.csv", open(&data.join("cpca/adcodes.csv")), shikong_geodesy::gcj02_to_wgs84).unwrap();
    b.read_aliases("aliases.csv", open(&root().join("shared/geocoder/data/aliases.csv"))).unwrap();
    Geocoder::new(b.build().unwrap()).unwrap()
}

#[derive(Default)]
struct Tally {
    n: usize,
    county_ok: usize,
    towns: usize,
    town_ok: usize,
}

#[test]
fn accuracy_per_category_on_the_labelled_set() {
    let geo = geocoder();
    let path = root().join("shared/geocoder/testdata/cases.csv");
    let mut rdr = csv::Reader::from_reader(open(&path));
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let opts = Options::default();
    let mut failures = Vec::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let (cat, input, expect, county, town) = (&rec[1], &rec[2], &rec[3], &rec[4], &rec[5]);
        let r = geo.geocode(input, &opts);
        let t = tally.entry(cat.to_string()).or_default();
        t.n += 1;
        let ok = match expect {
            "match" => {
                if !town.is_empty() {
                    t.towns += 1;
                    if r.status == Status::Match && r.codes.town.as_deref() == Some(town) {
                        t.town_ok += 1;
                    }
                }
                r.status == Status::Match && r.codes.county.as_deref() == Some(county)
            }
            "ambiguous" => r.status == Status::Ambiguous,
            "nomatch" => r.status == Status::NoMatch,
            other => panic!("{}: unknown expectation {other:?}", path.display()),
        };
        if ok {
            t.county_ok += 1;
        } else {
            failures.push(format!("{cat}: {input} → {} {:?}", r.status.as_str(), r.codes.county));
        }
    }
    assert!(tally.values().map(|t| t.n).sum::<usize>() >= 2000, "the test set must hold at least 2,000 cases");
    let mut report = String::new();
    let mut below = Vec::new();
    for (cat, floor_c, floor_t) in FLOORS {
        let t = tally.get(*cat).unwrap_or_else(|| panic!("category {cat} missing from {}", path.display()));
        let c = t.county_ok as f64 / t.n as f64;
        let tw = if t.towns > 0 { t.town_ok as f64 / t.towns as f64 } else { 1.0 };
        report.push_str(&format!("{cat:24} n={:4} county={c:.3} town={tw:.3}\n", t.n));
        if c < *floor_c || tw < *floor_t {
            below.push(format!("{cat}: county {c:.3} (floor {floor_c}), town {tw:.3} (floor {floor_t})"));
        }
    }
    let (mut n, mut c, mut tn, mut tw) = (0, 0, 0, 0);
    for cat in PERTURBED {
        let t = &tally[*cat];
        n += t.n;
        c += t.county_ok;
        tn += t.towns;
        tw += t.town_ok;
    }
    let (county, town) = (c as f64 / n as f64, tw as f64 / tn as f64);
    report.push_str(&format!("perturbed set: county={county:.3} town={town:.3}\n"));
    assert!(
        below.is_empty() && county >= GOAL_COUNTY && town >= GOAL_TOWN,
        "accuracy regressed:\n{}\n{report}\nfailures:\n{}",
        below.join("\n"),
        failures.join("\n")
    );
}

#[test]
fn snapshot_of_the_whole_country_round_trips() {
    let geo = geocoder();
    let bytes = geo.to_snapshot().unwrap();
    let back = Geocoder::from_snapshot(&bytes).unwrap();
    let o = Options::default();
    for q in ["湖北省武汉市洪山区珞南街道", "华科", "武汉洪山", "朝阳区", "hs", "今天天气怎么样"]
    {
        assert_eq!(back.geocode(q, &o), geo.geocode(q, &o), "{q}");
    }
    assert_eq!(back.suggest("hs", 10), geo.suggest("hs", 10));
    assert!(geo.suggest("hs", 50).iter().any(|s| s.name == "洪山区"));
    let hubei = back.subset(&["420111"]).unwrap();
    assert!(hubei.to_snapshot().unwrap().len() < bytes.len() / 20, "a district's subset is small");
}
