//! CSV: geometry from a WKT column or from longitude/latitude columns; everything else is text
//! for the importer to type. Files written by Excel on Chinese Windows are GBK, so a file that is
//! not UTF-8 is decoded as GB18030 unless told otherwise. Exports carry a UTF-8 BOM so that Excel
//! opens them with Chinese intact.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use shikong_model::{Coord, Crs, FieldType, Geometry, GeometryKind, wkt};

use crate::error::{FormatError, Location, Result};
use crate::{Progress, RawValue, Record, Source, SourceOptions, decode_text};

const WKT_NAMES: &[&str] = &["wkt", "geometry", "geom", "the_geom", "几何", "wkt_geom"];
const LON_NAMES: &[&str] = &["lon", "lng", "long", "longitude", "x", "经度"];
const LAT_NAMES: &[&str] = &["lat", "latitude", "y", "纬度"];

enum GeomColumns {
    None,
    Wkt(usize),
    LonLat(usize, usize),
}

pub(crate) struct CsvSource {
    path: std::path::PathBuf,
    name: String,
    opts: SourceOptions,
    crs: Crs,
    progress: Progress,
}

impl CsvSource {
    pub(crate) fn open(path: &Path, opts: &SourceOptions) -> Result<Self> {
        let name = path.display().to_string();
        let size = std::fs::metadata(path).map_err(|e| FormatError::file(&name, e.to_string()))?.len();
        Ok(CsvSource {
            path: path.to_owned(),
            name,
            opts: opts.clone(),
            crs: opts.crs.unwrap_or(Crs::CGCS2000),
            progress: Progress::new(size),
        })
    }

    fn find(&self, headers: &[String], explicit: Option<&String>, names: &[&str], what: &str) -> Result<Option<usize>> {
        if let Some(want) = explicit {
            return headers.iter().position(|h| h == want).map(Some).ok_or_else(|| {
                FormatError::file(
                    &self.name,
                    format!("no {what} column named `{want}` (columns: {})", headers.join(", ")),
                )
            });
        }
        Ok(headers.iter().position(|h| names.contains(&h.trim().to_lowercase().as_str())))
    }

    fn geom_columns(&self, headers: &[String]) -> Result<GeomColumns> {
        if let Some(i) = self.find(headers, self.opts.wkt_column.as_ref(), WKT_NAMES, "WKT")? {
            return Ok(GeomColumns::Wkt(i));
        }
        let lon = self.find(headers, self.opts.lon_column.as_ref(), LON_NAMES, "longitude")?;
        let lat = self.find(headers, self.opts.lat_column.as_ref(), LAT_NAMES, "latitude")?;
        match (lon, lat) {
            (Some(a), Some(b)) => Ok(GeomColumns::LonLat(a, b)),
            (None, None) => Ok(GeomColumns::None),
            _ => Err(FormatError::file(&self.name, "found a longitude or a latitude column but not both")),
        }
    }

    fn read_from<R: Read>(&mut self, input: R, on_record: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(input);
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| FormatError::file(&self.name, format!("header row: {e}")))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_owned())
            .collect();
        if headers.iter().any(String::is_empty) {
            return Err(FormatError::at(&self.name, Location::Line(1), "a column has an empty name"));
        }
        let geom = self.geom_columns(&headers)?;
        let mut record = csv::StringRecord::new();
        loop {
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, csv::Position::line);
                    return Err(FormatError::at(&self.name, Location::Line(line), e.to_string()));
                }
            }
            let line = record.position().map_or(0, csv::Position::line);
            let at = Location::Line(line);
            let number = |i: usize| -> Result<f64> {
                let cell = record.get(i).unwrap_or("").trim();
                cell.parse::<f64>().map_err(|_| {
                    FormatError::at(&self.name, at, format!("`{cell}` is not a number")).field(&headers[i])
                })
            };
            let (geometry, skip) = match geom {
                GeomColumns::None => (None, [usize::MAX; 2]),
                GeomColumns::Wkt(i) => {
                    let cell = record.get(i).unwrap_or("").trim();
                    let g = if cell.is_empty() {
                        None
                    } else {
                        Some(
                            wkt::parse(cell)
                                .map_err(|e| FormatError::at(&self.name, at, e.to_string()).field(&headers[i]))?,
                        )
                    };
                    (g, [i, usize::MAX])
                }
                GeomColumns::LonLat(x, y) => {
                    let empty =
                        record.get(x).unwrap_or("").trim().is_empty() && record.get(y).unwrap_or("").trim().is_empty();
                    let g = if empty { None } else { Some(Geometry::Point(Coord::xy(number(x)?, number(y)?))) };
                    (g, [x, y])
                }
            };
            let properties = headers
                .iter()
                .enumerate()
                .filter(|(i, _)| !skip.contains(i))
                .map(|(i, h)| (h.clone(), RawValue::Text(record.get(i).unwrap_or("").to_owned())))
                .collect();
            on_record(Record { location: at, geometry, properties })?;
            self.progress.set(record.position().map_or(0, csv::Position::byte));
        }
        self.progress.set(self.progress.total);
        Ok(())
    }
}

impl Source for CsvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn crs(&self) -> Crs {
        self.crs
    }

    fn declared_fields(&self) -> Option<Vec<(String, FieldType)>> {
        None
    }

    fn declared_kind(&self) -> Option<GeometryKind> {
        None
    }

    fn progress(&self) -> Progress {
        self.progress.clone()
    }

    fn read(&mut self, on_record: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let mut file = File::open(&self.path).map_err(|e| FormatError::file(&self.name, e.to_string()))?;
        let utf8_requested = self
            .opts
            .encoding
            .as_deref()
            .is_none_or(|e| e.eq_ignore_ascii_case("utf-8") || e.eq_ignore_ascii_case("utf8"));
        if utf8_requested {
            // Sniff: stream UTF-8 files; decode anything else in memory.
            let mut head = vec![0u8; 64 * 1024];
            let n = read_up_to(&mut file, &mut head).map_err(|e| FormatError::file(&self.name, e.to_string()))?;
            head.truncate(n);
            let valid = match std::str::from_utf8(&head) {
                Ok(_) => true,
                // A multi-byte character cut at the end of the sniffed block is fine.
                Err(e) => e.error_len().is_none(),
            };
            if valid || self.opts.encoding.is_some() {
                let rest = BufReader::with_capacity(1 << 20, file);
                return self.read_from(std::io::Cursor::new(head).chain(rest), on_record);
            }
            let mut all = head;
            file.read_to_end(&mut all).map_err(|e| FormatError::file(&self.name, e.to_string()))?;
            let text = decode_text(&all, None).map_err(|e| FormatError::file(&self.name, e))?;
            return self.read_from(text.as_bytes(), on_record);
        }
        let mut all = Vec::new();
        file.read_to_end(&mut all).map_err(|e| FormatError::file(&self.name, e.to_string()))?;
        let text = decode_text(&all, self.opts.encoding.as_deref()).map_err(|e| FormatError::file(&self.name, e))?;
        self.read_from(text.as_bytes(), on_record)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Writes CSV with a UTF-8 BOM and a `wkt` geometry column last.
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(mut out: W, columns: &[String]) -> std::io::Result<Self> {
        out.write_all(b"\xEF\xBB\xBF")?;
        let mut out = csv::Writer::from_writer(out);
        let mut header: Vec<&str> = columns.iter().map(String::as_str).collect();
        header.push("wkt");
        out.write_record(&header).map_err(std::io::Error::other)?;
        Ok(CsvWriter { out })
    }

    /// One row: the cells in column order, then the geometry.
    pub fn write(&mut self, cells: &[String], geometry: Option<&Geometry>) -> std::io::Result<()> {
        let wkt = geometry.map(wkt::to_wkt).unwrap_or_default();
        self.out.write_record(cells.iter().map(String::as_str).chain([wkt.as_str()])).map_err(std::io::Error::other)
    }

    pub fn finish(self) -> std::io::Result<W> {
        self.out.into_inner().map_err(|e| std::io::Error::other(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], opts: SourceOptions) -> Result<Vec<Record>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, bytes).unwrap();
        let mut s = CsvSource::open(&p, &opts)?;
        let mut out = vec![];
        s.read(&mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn lon_lat_and_wkt_columns() {
        let r =
            read_all("\u{feff}名称,经度,纬度\n井盖,114.3,30.5\n空,,\n".as_bytes(), SourceOptions::default()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].geometry, Some(Geometry::Point(Coord::xy(114.3, 30.5))));
        assert_eq!(r[0].properties, vec![("名称".to_string(), RawValue::Text("井盖".into()))]);
        assert_eq!(r[1].geometry, None);
        let r = read_all(b"id,wkt\n1,\"LINESTRING (1 2,3 4)\"\n", SourceOptions::default()).unwrap();
        assert!(matches!(r[0].geometry, Some(Geometry::LineString(_))));
    }

    #[test]
    fn gbk_files_are_decoded() {
        let (gbk, _, _) = encoding_rs::GBK.encode("名称,lon,lat\n洪山区,114.3,30.5\n");
        let r = read_all(&gbk, SourceOptions::default()).unwrap();
        assert_eq!(r[0].properties[0], ("名称".to_string(), RawValue::Text("洪山区".into())));
    }

    #[test]
    fn errors_name_row_and_field() {
        let e = read_all(b"name,lon,lat\na,114,30\nb,abc,30\n", SourceOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), format!("{}, row 3, field `lon`: `abc` is not a number", e.file));
        let e = read_all(b"name,wkt\na,POINT (1 2)\nb,POINT (1\n", SourceOptions::default()).unwrap_err();
        assert!(e.to_string().contains("row 3, field `wkt`"), "{e}");
        let e = read_all(b"a,b\n1,2,3\n", SourceOptions::default()).unwrap_err();
        assert!(e.to_string().contains("row 2"), "{e}");
        let opts = SourceOptions { wkt_column: Some("shape".into()), ..SourceOptions::default() };
        assert!(read_all(b"a,b\n1,2\n", opts).unwrap_err().to_string().contains("no WKT column named `shape`"));
    }

    #[test]
    fn writer_puts_a_bom_and_wkt_last() {
        let mut w = CsvWriter::new(Vec::new(), &["名称".to_string()]).unwrap();
        w.write(&["井盖".to_string()], Some(&Geometry::Point(Coord::xy(1.0, 2.0)))).unwrap();
        let s = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(s, "\u{feff}名称,wkt\n井盖,POINT (1 2)\n");
    }
}
