//! Where the device is: the [`LocationSource`] trait and the sources that need no hardware — a
//! GNSS receiver's recorded NMEA 0183 log or a GPX track replayed fix by fix, and manual placement
//! (the inspector taps where they stand). Android/iOS builds plug in the platform's fused location
//! provider behind the same trait.

use std::io::BufRead as _;
use std::path::Path;
use std::sync::Mutex;

use jiff::Timestamp;

use crate::AppError;

/// A position fix. Coordinates are CGCS2000 longitude/latitude: GNSS receivers give WGS84, which
/// differs from CGCS2000 by centimetres — below any handheld receiver's accuracy, so no datum
/// shift is applied (a GCJ-02 position from a commercial SDK must be converted before it gets here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub lon: f64,
    pub lat: f64,
    /// Horizontal accuracy (metres), when the source knows it (HDOP × 5 m for NMEA).
    pub accuracy_m: Option<f64>,
    /// Course over ground or compass heading, degrees clockwise from north.
    pub heading: Option<f64>,
    pub time: Timestamp,
}

/// Where the device is.
pub trait LocationSource: Send + Sync + std::fmt::Debug {
    /// The current fix, or `None` while there is none (no satellites, not placed yet).
    fn fix(&self) -> Option<Fix>;
    /// Places the device by hand (the user taps the map); sources that track real positions may
    /// ignore it.
    fn place(&self, _lon: f64, _lat: f64) {}
    /// A label for settings ("NMEA: day1.nmea").
    fn describe(&self) -> String;
}

/// A position set by hand: the inspector taps where they stand.
#[derive(Debug, Default)]
pub struct ManualLocation {
    at: Mutex<Option<Fix>>,
}

impl ManualLocation {
    pub fn at(lon: f64, lat: f64) -> ManualLocation {
        let m = ManualLocation::default();
        m.place(lon, lat);
        m
    }
}

impl LocationSource for ManualLocation {
    fn fix(&self) -> Option<Fix> {
        *self.at.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn place(&self, lon: f64, lat: f64) {
        *self.at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Fix { lon, lat, accuracy_m: None, heading: None, time: Timestamp::now() });
    }

    fn describe(&self) -> String {
        "手动定位 / manual".into()
    }
}

/// A recorded track replayed fix by fix (each call to [`LocationSource::fix`] advances one step,
/// then the last fix holds): NMEA 0183 (`$GPGGA`/`$GNGGA` with `$GPRMC`/`$GNRMC` course) or GPX.
#[derive(Debug)]
pub struct TrackReplay {
    name: String,
    fixes: Vec<Fix>,
    next: Mutex<usize>,
}

impl TrackReplay {
    pub fn open(path: &Path) -> Result<TrackReplay, AppError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AppError::Track { path: path.to_owned(), reason: e.to_string() })?;
        let is_gpx = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gpx"));
        let fixes = if is_gpx { parse_gpx(&text) } else { parse_nmea(&text) };
        if fixes.is_empty() {
            return Err(AppError::Track { path: path.to_owned(), reason: "no position fixes found".into() });
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(TrackReplay { name: format!("{}: {name}", if is_gpx { "GPX" } else { "NMEA" }), fixes, next: Mutex::new(0) })
    }
}

impl LocationSource for TrackReplay {
    fn fix(&self) -> Option<Fix> {
        let mut i = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let f = self.fixes.get(*i).or(self.fixes.last()).copied();
        if *i + 1 < self.fixes.len() {
            *i += 1;
        }
        f
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// `ddmm.mmmm` + hemisphere → signed degrees.
fn nmea_degrees(v: &str, hemi: &str) -> Option<f64> {
    let dot = v.find('.')?;
    if dot < 3 {
        return None;
    }
    let deg: f64 = v.get(..dot - 2)?.parse().ok()?;
    let min: f64 = v.get(dot - 2..)?.parse().ok()?;
    let d = deg + min / 60.0;
    match hemi {
        "S" | "W" => Some(-d),
        "N" | "E" => Some(d),
        _ => None,
    }
}

/// Checks the `*hh` checksum of an NMEA sentence; sentences without one are accepted.
fn nmea_checksum_ok(line: &str) -> bool {
    let Some(body) = line.strip_prefix('$') else { return false };
    match body.split_once('*') {
        None => true,
        Some((data, sum)) => {
            let x = data.bytes().fold(0u8, |a, b| a ^ b);
            u8::from_str_radix(sum.trim(), 16).is_ok_and(|s| s == x)
        }
    }
}

/// Fixes from NMEA 0183 text: GGA gives position and HDOP (fix quality > 0 only); the RMC that
/// follows gives the course.
pub fn parse_nmea(text: &str) -> Vec<Fix> {
    let mut out: Vec<Fix> = Vec::new();
    for line in std::io::Cursor::new(text).lines().map_while(Result::ok) {
        let line = line.trim();
        if !nmea_checksum_ok(line) {
            continue;
        }
        let data = line.split('*').next().unwrap_or_default();
        let f: Vec<&str> = data.split(',').collect();
        let kind = f.first().map(|s| s.get(3..).unwrap_or_default()).unwrap_or_default();
        match kind {
            "GGA" if f.len() > 8 => {
                let quality: u32 = f[6].parse().unwrap_or(0);
                if quality == 0 {
                    continue;
                }
                if let (Some(lat), Some(lon)) = (nmea_degrees(f[2], f[3]), nmea_degrees(f[4], f[5])) {
                    let hdop: Option<f64> = f[8].parse().ok();
                    out.push(Fix {
                        lon,
                        lat,
                        accuracy_m: hdop.map(|h| h * 5.0),
                        heading: None,
                        time: Timestamp::now(),
                    });
                }
            }
            "RMC" if f.len() > 8 => {
                if let (Some(last), Ok(course)) = (out.last_mut(), f[8].parse::<f64>()) {
                    last.heading = Some(course.rem_euclid(360.0));
                }
            }
            _ => {}
        }
    }
    out
}

/// Fixes from a GPX file's `<trkpt lat=… lon=…>` / `<wpt>` elements.
pub fn parse_gpx(text: &str) -> Vec<Fix> {
    let attr = |tag: &str, name: &str| -> Option<f64> {
        let key = format!("{name}=");
        let at = tag.find(&key)? + key.len();
        let rest = tag.get(at..)?;
        let q = rest.chars().next()?;
        let end = rest.get(1..)?.find(q)?;
        rest.get(1..1 + end)?.parse().ok()
    };
    text.split('<')
        .filter(|t| t.starts_with("trkpt") || t.starts_with("wpt") || t.starts_with("rtept"))
        .filter_map(|t| {
            let tag = t.split('>').next()?;
            Some(Fix {
                lon: attr(tag, "lon")?,
                lat: attr(tag, "lat")?,
                accuracy_m: None,
                heading: None,
                time: Timestamp::now(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmea_gga_and_rmc() {
        let text = "$GPGGA,092750.000,3030.0000,N,11424.0000,E,1,8,1.03,61.7,M,55.2,M,,*6F\n\
                    $GPRMC,092750.000,A,3030.0000,N,11424.0000,E,0.02,31.66,280511,,,A*5A\n\
                    $GPGGA,092751.000,3030.0000,N,11424.0000,E,0,0,,,M,,M,,*79\n";
        let f = parse_nmea(text);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!((f[0].lat - 30.5).abs() < 1e-9 && (f[0].lon - 114.4).abs() < 1e-9);
        assert_eq!(f[0].heading, Some(31.66));
        assert!((f[0].accuracy_m.unwrap_or_default() - 5.15).abs() < 1e-9);
    }

    #[test]
    fn nmea_bad_checksum_is_skipped() {
        assert!(parse_nmea("$GPGGA,092750.000,3030.0000,N,11424.0000,E,1,8,1.03,61.7,M,55.2,M,,*00\n").is_empty());
    }

    #[test]
    fn gpx_points() {
        let f = parse_gpx(
            r#"<gpx><trk><trkseg><trkpt lat="30.51" lon='114.41'><ele>20</ele></trkpt></trkseg></trk></gpx>"#,
        );
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].lon, f[0].lat), (114.41, 30.51));
    }

    #[test]
    fn manual_placement() {
        let m = ManualLocation::default();
        assert!(m.fix().is_none());
        m.place(114.3, 30.5);
        assert_eq!(m.fix().map(|f| (f.lon, f.lat)), Some((114.3, 30.5)));
    }
}
