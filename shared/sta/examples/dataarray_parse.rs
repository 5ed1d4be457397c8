//! Parses a generated dataArray body of N observations (default 250,000) and prints the time
//! and rate: `cargo run --release -p shikong-sta --example dataarray_parse -- 250000`.

use std::time::Instant;

use shikong_sta::dataarray::{DataArrayLimits, stream_data_array};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(250_000);
    let mut body = String::with_capacity(n * 48);
    body.push_str(
        r#"[{"Datastream":{"@iot.id":1},"components":["phenomenonTime","result","FeatureOfInterest/id"],"dataArray":["#,
    );
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        let (h, m, s) = ((i / 3600) % 24, (i / 60) % 60, i % 60);
        body.push_str(&format!(r#"["2026-06-01T{h:02}:{m:02}:{s:02}+08:00",{}.5,7]"#, i % 100));
    }
    body.push_str("]}]");
    let t = Instant::now();
    let mut ok = 0usize;
    let read = stream_data_array(body.as_bytes(), DataArrayLimits { max_rows: n, max_groups: 1 }, |_, _, r| {
        ok += usize::from(r.is_ok());
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "dataArray: {} observations ({} valid), {:.1} MiB body, parsed in {:.3} s ({:.0} observations/s)",
        read.unwrap_or(0),
        ok,
        body.len() as f64 / (1024.0 * 1024.0),
        secs,
        n as f64 / secs
    );
}
