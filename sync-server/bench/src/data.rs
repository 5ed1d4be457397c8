//! Deterministic benchmark data: point features with Chinese attributes spread over Wuhan.

use std::io::{BufWriter, Write};
use std::path::Path;

use shikong_model::Bbox;

/// The area the points are spread over (Wuhan, CGCS2000 lon/lat).
pub const AREA: Bbox = Bbox { min_x: 114.0, min_y: 30.3, max_x: 114.6, max_y: 30.8 };

/// A tiny deterministic generator (no dependency, same data every run).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn write_geojson(path: &Path, n: u64) -> anyhow::Result<()> {
    let materials = ["铸铁", "球墨铸铁", "复合材料", "混凝土", "钢"];
    let roads = ["珞喻路", "关山大道", "光谷大道", "雄楚大道", "民族大道", "鲁磨路"];
    let mut rng = Lcg(42);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    write!(w, "{{\"type\":\"FeatureCollection\",\"name\":\"manhole\",\"features\":[")?;
    for i in 0..n {
        let x = AREA.min_x + rng.next() * AREA.width();
        let y = AREA.min_y + rng.next() * AREA.height();
        let depth = (rng.next() * 500.0).round() / 100.0;
        let year = 2000 + (i % 25);
        let month = 1 + (i % 12);
        write!(
            w,
            "{}\n{{\"type\":\"Feature\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{x:.7},{y:.7}]}},\"properties\":{{\"code\":\"JG-{i:08}\",\"name\":\"{}{}号井盖\",\"depth\":{depth},\"material\":\"{}\",\"installed\":\"{year}-{month:02}-01\",\"good\":{}}}}}",
            if i == 0 { "" } else { "," },
            roads[(i % 6) as usize],
            i % 1000,
            materials[(i % 5) as usize],
            i % 7 != 0,
        )?;
    }
    writeln!(w, "\n]}}")?;
    w.flush()?;
    Ok(())
}

/// `count` boxes each expected to hold about `per_box` of `n` uniformly spread features.
pub fn boxes(n: u64, per_box: f64, count: usize, seed: u64) -> Vec<Bbox> {
    let frac = (per_box / n as f64).sqrt();
    let (w, h) = (AREA.width() * frac, AREA.height() * frac);
    let mut rng = Lcg(seed);
    (0..count)
        .map(|_| {
            let x = AREA.min_x + rng.next() * (AREA.width() - w);
            let y = AREA.min_y + rng.next() * (AREA.height() - h);
            Bbox { min_x: x, min_y: y, max_x: x + w, max_y: y + h }
        })
        .collect()
}
