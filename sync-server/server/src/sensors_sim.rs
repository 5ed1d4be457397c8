//! The sensor simulator's pure part (`shikong sensors simulate`, issue 18): where the stations
//! stand, what they are called and measure, and the readings they produce. No I/O and no clock
//! (the time of each reading comes in), so the station layout and the signals are tested fast
//! and are the same for the demo, the test and the benchmark.
//!
//! Stations stand in 洪山区 (Wuhan), spread over lon 114.33–114.45, lat 30.47–30.56 by a Halton
//! sequence (even cover, no clumps, the same place for the same number every run). Their kind
//! rotates over water level, manhole cover tilt, street-lamp current and PM2.5; names are stable
//! (`洪山区水位站 001`), which is what makes creating them idempotent. A signal is a baseline with
//! a Beijing-time daily cycle, a bounded random walk and noise; now and then a spike that breaches
//! the kind's usual alert threshold for a few readings, and now and then a station falls silent
//! for one to five minutes (what silence alerts are for).

use jiff::Timestamp;

/// The area stations are spread over (CGCS2000 lon/lat).
pub const LON: (f64, f64) = (114.33, 114.45);
pub const LAT: (f64, f64) = (30.47, 30.56);

/// Probability per reading that a spike starts, and that the station falls silent.
const SPIKE_CHANCE: f64 = 0.002;
const SILENCE_CHANCE: f64 = 0.0005;

/// What a station measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    WaterLevel,
    CoverTilt,
    LampCurrent,
    Pm25,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::WaterLevel, Kind::CoverTilt, Kind::LampCurrent, Kind::Pm25];

    /// The station's word in its name (`洪山区水位站 001`).
    pub fn station_word(self) -> &'static str {
        match self {
            Kind::WaterLevel => "水位站",
            Kind::CoverTilt => "井盖监测点",
            Kind::LampCurrent => "路灯监测点",
            Kind::Pm25 => "空气质量站",
        }
    }

    /// A stable key (Thing `properties.kind`).
    pub fn key(self) -> &'static str {
        match self {
            Kind::WaterLevel => "water_level",
            Kind::CoverTilt => "cover_tilt",
            Kind::LampCurrent => "lamp_current",
            Kind::Pm25 => "pm25",
        }
    }

    /// The ObservedProperty's name and definition.
    pub fn property(self) -> (&'static str, &'static str) {
        match self {
            Kind::WaterLevel => ("水位", "urn:shikong:property:water_level"),
            Kind::CoverTilt => ("井盖倾角", "urn:shikong:property:cover_tilt"),
            Kind::LampCurrent => ("路灯电流", "urn:shikong:property:lamp_current"),
            Kind::Pm25 => ("PM2.5 浓度", "urn:shikong:property:pm25"),
        }
    }

    /// The Sensor's name (marked as simulated).
    pub fn sensor(self) -> &'static str {
        match self {
            Kind::WaterLevel => "水位计（模拟）",
            Kind::CoverTilt => "井盖倾角传感器（模拟）",
            Kind::LampCurrent => "路灯电流互感器（模拟）",
            Kind::Pm25 => "PM2.5 颗粒物传感器（模拟）",
        }
    }

    /// The unit: name and UCUM symbol.
    pub fn unit(self) -> (&'static str, &'static str) {
        match self {
            Kind::WaterLevel => ("米", "m"),
            Kind::CoverTilt => ("度", "deg"),
            Kind::LampCurrent => ("安培", "A"),
            Kind::Pm25 => ("微克每立方米", "ug/m3"),
        }
    }

    /// The usual alert threshold a spike breaches (above it is an alarm): a lake's 警戒水位, a
    /// cover lifted by more than 5°, a lamp's over-current, PM2.5 above 中度污染's lower bound.
    pub fn threshold(self) -> f64 {
        match self {
            Kind::WaterLevel => 20.5,
            Kind::CoverTilt => 5.0,
            Kind::LampCurrent => 1.0,
            Kind::Pm25 => 115.0,
        }
    }
}

/// One simulated station: a Thing with one Location and one Datastream.
#[derive(Clone, Debug, PartialEq)]
pub struct Station {
    /// 0-based; the name shows `index + 1`.
    pub index: u32,
    pub kind: Kind,
    pub name: String,
    pub lon: f64,
    pub lat: f64,
}

impl Station {
    /// Station number `index` (0-based): its kind, stable name and place.
    pub fn new(index: u32) -> Station {
        let kind = Kind::ALL[index as usize % Kind::ALL.len()];
        // Halton bases 2 and 3, skipping the first point (the corner).
        let (u, v) = (halton(index + 1, 2), halton(index + 1, 3));
        Station {
            index,
            kind,
            name: format!("洪山区{} {:03}", kind.station_word(), index + 1),
            lon: round6(LON.0 + u * (LON.1 - LON.0)),
            lat: round6(LAT.0 + v * (LAT.1 - LAT.0)),
        }
    }

    /// The Datastream's name (`洪山区水位站 001 水位`), stable like the station's.
    pub fn datastream_name(&self) -> String {
        format!("{} {}", self.name, self.kind.property().0)
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The `i`-th element of the van der Corput sequence in `base` (in [0, 1)).
fn halton(mut i: u32, base: u32) -> f64 {
    let (mut f, mut r) = (1.0, 0.0);
    while i > 0 {
        f /= f64::from(base);
        r += f * f64::from(i % base);
        i /= base;
    }
    r
}

/// Hours since Beijing midnight (0 ≤ h < 24).
fn beijing_hour(t: Timestamp) -> f64 {
    let s = (t.as_second() + 8 * 3600).rem_euclid(86_400);
    s as f64 / 3600.0
}

/// A station's signal: call [`Signal::next`] once per reading.
#[derive(Debug)]
pub struct Signal {
    kind: Kind,
    rng: fastrand::Rng,
    /// The random walk's offset from the baseline (bounded).
    walk: f64,
    /// Readings left in the current spike, and its height.
    spike_left: u32,
    spike: f64,
    silent_until: Option<Timestamp>,
}

impl Signal {
    /// The same station and seed give the same readings at the same times.
    pub fn new(station: &Station, seed: u64) -> Signal {
        Signal {
            kind: station.kind,
            rng: fastrand::Rng::with_seed(seed ^ (u64::from(station.index) << 20) ^ 0x5eed),
            walk: 0.0,
            spike_left: 0,
            spike: 0.0,
            silent_until: None,
        }
    }

    /// Whether the station is silent at `at` (a silence started by an earlier reading).
    pub fn silent(&self, at: Timestamp) -> bool {
        self.silent_until.is_some_and(|u| at < u)
    }

    /// The reading at `at`, or `None` while the station is silent.
    pub fn next(&mut self, at: Timestamp) -> Option<f64> {
        if self.silent(at) {
            return None;
        }
        self.silent_until = None;
        if self.rng.f64() < SILENCE_CHANCE {
            let secs = 60 + self.rng.i64(0..=240);
            self.silent_until = at.checked_add(jiff::SignedDuration::from_secs(secs)).ok();
            return None;
        }
        if self.spike_left == 0 && self.rng.f64() < SPIKE_CHANCE {
            self.spike_left = self.rng.u32(1..=5);
            // How far above the threshold the spike goes (10–80 %), as an absolute value.
            let over = self.kind.threshold() * (1.1 + 0.7 * self.rng.f64());
            self.spike = over;
        }
        let h = beijing_hour(at);
        let noise = self.gauss();
        let (value, walk_step, walk_max) = match self.kind {
            // A lake gauge: ~19.8 m, a slight daily swing, slow drift.
            Kind::WaterLevel => (19.8 + 0.05 * (std::f64::consts::TAU * h / 24.0).sin() + 0.01 * noise, 0.004, 0.4),
            // A cover at rest: a fraction of a degree, vibration from traffic by day.
            Kind::CoverTilt => {
                let traffic = if (7.0..22.0).contains(&h) { 0.15 } else { 0.05 };
                (0.3 + traffic * noise.abs(), 0.01, 0.5)
            }
            // A lamp: on from 18:30 to 06:00 Beijing time (~0.45 A), off by day (standby current).
            Kind::LampCurrent => {
                let on = !(6.0..18.5).contains(&h);
                if on { (0.45 + 0.01 * noise, 0.001, 0.03) } else { (0.01 + 0.002 * noise.abs(), 0.0, 0.0) }
            }
            // PM2.5: higher in the rush hours (08:00, 19:00) and at night, random weather drift.
            Kind::Pm25 => {
                let rush = 12.0 * (-(h - 8.0).powi(2) / 4.0).exp() + 15.0 * (-(h - 19.0).powi(2) / 6.0).exp();
                (45.0 + rush + 3.0 * noise, 0.8, 30.0)
            }
        };
        self.walk = (self.walk + walk_step * self.gauss()).clamp(-walk_max, walk_max);
        let mut v = value + self.walk;
        if self.spike_left > 0 {
            self.spike_left -= 1;
            v = self.spike + 0.02 * self.spike * noise.abs();
        }
        // Physical floors: no negative tilt, current or concentration.
        if self.kind != Kind::WaterLevel {
            v = v.max(0.0);
        }
        Some((v * 1000.0).round() / 1000.0)
    }

    /// A standard normal variate (Box–Muller).
    fn gauss(&mut self) -> f64 {
        let u1 = self.rng.f64().max(f64::MIN_POSITIVE);
        let u2 = self.rng.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// How often each station publishes for a total rate of `rate` readings per second over
/// `stations` stations (seconds between two readings of one station).
pub fn station_period(stations: u32, rate: f64) -> f64 {
    f64::from(stations) / rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn stations_have_stable_names_kinds_and_places_inside_hongshan() {
        let a: Vec<Station> = (0..200).map(Station::new).collect();
        assert_eq!(a[0].name, "洪山区水位站 001");
        assert_eq!(a[1].name, "洪山区井盖监测点 002");
        assert_eq!(a[2].name, "洪山区路灯监测点 003");
        assert_eq!(a[3].name, "洪山区空气质量站 004");
        assert_eq!(a[3].datastream_name(), "洪山区空气质量站 004 PM2.5 浓度");
        assert_eq!(Station::new(999).name, "洪山区空气质量站 1000");
        assert_eq!(a, (0..200).map(Station::new).collect::<Vec<_>>());
        let names: std::collections::HashSet<&str> = a.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), a.len());
        for s in &a {
            assert!((LON.0..=LON.1).contains(&s.lon) && (LAT.0..=LAT.1).contains(&s.lat), "{s:?}");
        }
        // Spread: every quarter of the box holds some of the first 40 stations.
        for (qx, qy) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let n = a[..40]
                .iter()
                .filter(|s| {
                    let x = usize::from(s.lon >= (LON.0 + LON.1) / 2.0);
                    let y = usize::from(s.lat >= (LAT.0 + LAT.1) / 2.0);
                    (x, y) == (qx, qy)
                })
                .count();
            assert!(n >= 5, "quarter {qx},{qy}: {n}");
        }
    }

    #[test]
    fn signals_are_deterministic_plausible_spike_and_fall_silent() {
        let start = at("2026-07-01T00:00:00Z");
        for kind_index in 0..4u32 {
            let st = Station::new(kind_index);
            let (mut a, mut b) = (Signal::new(&st, 7), Signal::new(&st, 7));
            let (mut values, mut silent, mut above) = (Vec::new(), 0, 0);
            for i in 0..20_000i64 {
                let t = start.checked_add(jiff::SignedDuration::from_secs(i * 5)).unwrap();
                let (x, y) = (a.next(t), b.next(t));
                assert_eq!(x, y);
                match x {
                    None => silent += 1,
                    Some(v) => {
                        assert!(v.is_finite());
                        if v > st.kind.threshold() {
                            above += 1;
                        }
                        values.push(v);
                    }
                }
            }
            // Mostly below the threshold, but spikes breach it now and then; some silence.
            assert!(above > 10 && above < 1_000, "{:?}: {above} above", st.kind);
            assert!(silent > 0, "{:?} never silent", st.kind);
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            let (lo, hi) = match st.kind {
                Kind::WaterLevel => (19.3, 20.3),
                Kind::CoverTilt => (0.0, 1.5),
                Kind::LampCurrent => (0.0, 0.5),
                Kind::Pm25 => (15.0, 100.0),
            };
            assert!((lo..=hi).contains(&median), "{:?}: median {median}", st.kind);
            if st.kind != Kind::WaterLevel {
                assert!(sorted[0] >= 0.0);
            }
        }
    }

    #[test]
    fn lamps_draw_current_at_night_only() {
        let st = Station::new(2);
        assert_eq!(st.kind, Kind::LampCurrent);
        let mut s = Signal::new(&st, 1);
        // 22:00 and 12:00 Beijing time.
        let night: Vec<f64> =
            (0..50).filter_map(|i| s.next(at("2026-07-01T14:00:00Z") + jiff::SignedDuration::from_secs(i))).collect();
        let day: Vec<f64> =
            (0..50).filter_map(|i| s.next(at("2026-07-01T04:00:00Z") + jiff::SignedDuration::from_secs(i))).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(mean(&night) > 0.3, "{night:?}");
        assert!(mean(&day) < 0.1, "{day:?}");
    }

    #[test]
    fn period_spreads_the_total_rate_over_the_stations() {
        assert_eq!(station_period(8, 2.0), 4.0);
        assert_eq!(station_period(1000, 20_000.0), 0.05);
    }
}
