//! Development aid: loads the real division data, runs testdata/cases.csv and prints accuracy per
//! category and the failures. `cargo run --release -p shikong-geocoder --example eval [-- CATEGORY]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use shikong_geocoder::{Gazetteer, GazetteerBuilder, Geocoder, Options, Status};

fn main() {
    let want: Option<String> = std::env::args().nth(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join(".cache/data");
    let t = Instant::now();
    let mut b = GazetteerBuilder::new("NBS", "2023");
    b.read_china_division(|f| File::open(data.join("china-division").join(f)).map(Some)).unwrap();
    b.read_points("adcodes.csv", File::open(data.join("cpca/adcodes.csv")).unwrap(), shikong_geodesy::gcj02_to_wgs84)
        .unwrap();
    b.read_aliases("aliases.csv", File::open(root.join("shared/geocoder/data/aliases.csv")).unwrap()).unwrap();
    let g: Gazetteer = b.build().unwrap();
    println!("gazetteer built in {:?} ({} divisions)", t.elapsed(), g.divisions().len());
    let t = Instant::now();
    let geo = Geocoder::new(g).unwrap();
    println!("indexes built in {:?}", t.elapsed());
    let cases =
        std::env::var("CASES").map(std::path::PathBuf::from).unwrap_or(root.join("shared/geocoder/testdata/cases.csv"));
    let mut rdr = csv::Reader::from_path(cases).unwrap();
    let mut stats: std::collections::BTreeMap<String, (usize, usize, usize, usize)> = Default::default();
    let opts = Options::default();
    let t = Instant::now();
    let mut n = 0;
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let (cat, input, expect, county, town) = (&rec[1], &rec[2], &rec[3], &rec[4], &rec[5]);
        let r = geo.geocode(input, &opts);
        n += 1;
        let e = stats.entry(cat.to_string()).or_default();
        e.0 += 1;
        let ok_c;
        let ok_t;
        match expect {
            "match" => {
                ok_c = r.status == Status::Match && r.codes.county.as_deref() == Some(county);
                ok_t = town.is_empty() || (r.status == Status::Match && r.codes.town.as_deref() == Some(town));
                if !town.is_empty() {
                    e.3 += 1;
                }
                if ok_c {
                    e.1 += 1;
                }
                if ok_t && !town.is_empty() {
                    e.2 += 1;
                }
            }
            "ambiguous" => {
                ok_c = r.status == Status::Ambiguous;
                ok_t = ok_c;
                if ok_c {
                    e.1 += 1;
                }
            }
            _ => {
                ok_c = r.status == Status::NoMatch;
                ok_t = ok_c;
                if ok_c {
                    e.1 += 1;
                }
            }
        }
        if (!ok_c || !ok_t) && want.as_deref().is_none_or(|w| w == cat) {
            println!(
                "FAIL {cat} {input} expect {expect} {county} {town} got {} {:?} {:?} {} {:.2} {:?}",
                r.status.as_str(),
                r.codes.county,
                r.codes.town,
                r.standard_address,
                r.score,
                r.reason
            );
        }
    }
    let el = t.elapsed();
    let repeat: usize = std::env::var("REPEAT").ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    if repeat > 0 {
        let inputs: Vec<String> = csv::Reader::from_path(root.join("shared/geocoder/testdata/cases.csv"))
            .unwrap()
            .records()
            .map(|r| r.unwrap()[2].to_string())
            .collect();
        let t = Instant::now();
        for _ in 0..repeat {
            for i in &inputs {
                std::hint::black_box(geo.geocode(i, &opts));
            }
        }
        let mut slow: Vec<(std::time::Duration, &String)> = inputs
            .iter()
            .map(|i| {
                let t = Instant::now();
                std::hint::black_box(geo.geocode(i, &opts));
                (t.elapsed(), i)
            })
            .collect();
        slow.sort();
        for (d, i) in slow.iter().rev().take(5) {
            println!("slow: {d:?} {i}");
        }
        let n = inputs.len() * repeat;
        println!("repeat: {n} queries in {:?} ({:.0}/s)", t.elapsed(), n as f64 / t.elapsed().as_secs_f64());
    }
    for (k, (n, c, t, tn)) in &stats {
        println!(
            "{k:24} n={n:4} county/status={:.3} town={:.3}",
            *c as f64 / *n as f64,
            if *tn > 0 { *t as f64 / *tn as f64 } else { f64::NAN }
        );
    }
    println!("{n} queries in {el:?} ({:.0}/s)", n as f64 / el.as_secs_f64());
}
