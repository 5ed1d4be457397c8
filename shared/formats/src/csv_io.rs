//! CSV: geometry from a WKT column or from longitude/latitude columns; everything else is text
//! for the importer to type. Files written by Excel on Chinese Windows are GBK, so a file that is
//! not UTF-8 is decoded as GB18030 unless told otherwise. Exports carry a UTF-8 BOM so that Excel
//! opens them with Chinese intact.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use shikong_model::{Coord, Crs, Geometry, wkt};

use crate::columns::{Axis, GeometryColumns, check_lon_lat, geometry_columns};
use crate::error::{FormatError, Location, Result};
use crate::limits::{Exceeded, Limit, Limits, RowMeter, check_vertices};
use crate::{DecodingReader, Progress, RawValue, Record, Source, SourceOptions};

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

    fn geom_columns(&self, headers: &[String]) -> Result<GeometryColumns> {
        let o = &self.opts;
        geometry_columns(headers, o.wkt_column.as_deref(), o.lon_column.as_deref(), o.lat_column.as_deref())
            .map_err(|m| FormatError::file(&self.name, m))
    }

    fn read_from<R: Read>(&mut self, input: R, on_record: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let limits = self.opts.limits.clone();
        let name = self.name.clone();
        // Rows are counted as they are read: a field without its closing quote stops at the row
        // limit instead of growing with the file.
        let meter = RowMeter::new(limits.row_bytes);
        let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(meter.wrap(input, "the row"));
        let fail = |e: csv::Error, line: u64| -> FormatError {
            match e.kind() {
                csv::ErrorKind::Io(io) => FormatError::io(&name, Some(Location::Line(line)), io),
                _ => FormatError::at(
                    &name,
                    Location::Line(e.position().map_or(line, csv::Position::line)),
                    e.to_string(),
                ),
            }
        };
        let headers: Vec<String> = match rdr.headers() {
            Ok(h) => h.iter().map(|h| h.trim_start_matches('\u{feff}').to_owned()).collect(),
            Err(e) => {
                let mut err = fail(e, 1);
                err.message = format!("header row: {}", err.message);
                return Err(err);
            }
        };
        meter.reset();
        if headers.iter().any(String::is_empty) {
            return Err(FormatError::at(&self.name, Location::Line(1), "a column has an empty name"));
        }
        check_fields(&self.name, Location::Line(1), headers.iter().map(String::as_str), &headers, &limits)?;
        let geom = self.geom_columns(&headers)?;
        let mut record = csv::StringRecord::new();
        loop {
            let next_line = rdr.position().line();
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => meter.reset(),
                Err(e) => return Err(fail(e, next_line)),
            }
            let line = record.position().map_or(0, csv::Position::line);
            let at = Location::Line(line);
            check_fields(&self.name, at, record.iter(), &headers, &limits)?;
            let number = |i: usize| -> Result<f64> {
                let cell = record.get(i).unwrap_or("").trim();
                cell.parse::<f64>().map_err(|_| {
                    FormatError::at(&self.name, at, format!("`{cell}` is not a number")).field(&headers[i])
                })
            };
            let geometry = match geom {
                GeometryColumns::None => None,
                GeometryColumns::Wkt(i) => {
                    let cell = record.get(i).unwrap_or("").trim();
                    if cell.is_empty() {
                        None
                    } else {
                        let g = wkt::parse(cell)
                            .map_err(|e| FormatError::at(&self.name, at, e.to_string()).field(&headers[i]))?;
                        check_vertices(&g, limits.geometry_vertices, "the geometry")
                            .map_err(|x| FormatError::exceeded(&self.name, Some(at), x).field(&headers[i]))?;
                        Some(g)
                    }
                }
                GeometryColumns::LonLat { lon: x, lat: y } => {
                    let empty =
                        record.get(x).unwrap_or("").trim().is_empty() && record.get(y).unwrap_or("").trim().is_empty();
                    if empty {
                        None
                    } else {
                        let (lon, lat) = (number(x)?, number(y)?);
                        check_lon_lat(self.crs, lon, lat).map_err(|(axis, m)| {
                            let i = if axis == Axis::Lon { x } else { y };
                            FormatError::at(&self.name, at, m).field(&headers[i])
                        })?;
                        Some(Geometry::Point(Coord::xy(lon, lat)))
                    }
                }
            };
            let properties = headers
                .iter()
                .enumerate()
                .filter(|(i, _)| !geom.holds(*i))
                .map(|(i, h)| (h.clone(), RawValue::Text(record.get(i).unwrap_or("").to_owned())))
                .collect();
            on_record(Record { location: at, geometry, properties })?;
            self.progress.set(record.position().map_or(0, csv::Position::byte));
        }
        self.progress.set(self.progress.total);
        Ok(())
    }
}

/// Refuses a row with a field over the field limit, naming the column.
fn check_fields<'a>(
    file: &str,
    at: Location,
    cells: impl Iterator<Item = &'a str>,
    headers: &[String],
    limits: &Limits,
) -> Result<()> {
    for (i, cell) in cells.enumerate() {
        if cell.len() as u64 > limits.field_bytes {
            let column = headers.get(i).cloned().unwrap_or_else(|| format!("#{}", i + 1));
            let x = Exceeded::actual(Limit::FieldBytes, "the field", cell.len() as u64, limits.field_bytes);
            return Err(FormatError::exceeded(file, Some(at), x).field(column));
        }
    }
    Ok(())
}

impl Source for CsvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn crs(&self) -> Crs {
        self.crs
    }

    fn progress(&self) -> Progress {
        self.progress.clone()
    }

    fn read(&mut self, on_record: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let mut file = File::open(&self.path).map_err(|e| FormatError::file(&self.name, e.to_string()))?;
        let requested = match self.opts.encoding.as_deref() {
            None => None,
            Some(label) => Some(
                encoding_rs::Encoding::for_label(label.trim().as_bytes())
                    .ok_or_else(|| FormatError::file(&self.name, format!("unknown text encoding `{label}`")))?,
            ),
        };
        if let Some(enc) = requested.filter(|e| *e != encoding_rs::UTF_8) {
            let input = DecodingReader::new(BufReader::with_capacity(1 << 20, file), enc);
            return self.read_from(input, on_record);
        }
        // Sniff: stream UTF-8 files; decode anything else as GB18030, streaming too.
        let mut head = vec![0u8; 64 * 1024];
        let n = read_up_to(&mut file, &mut head).map_err(|e| FormatError::file(&self.name, e.to_string()))?;
        head.truncate(n);
        let valid = match std::str::from_utf8(&head) {
            Ok(_) => true,
            // A multi-byte character cut at the end of the sniffed block is fine.
            Err(e) => e.error_len().is_none(),
        };
        let whole = std::io::Cursor::new(head).chain(BufReader::with_capacity(1 << 20, file));
        if valid || requested.is_some() {
            return self.read_from(whole, on_record);
        }
        self.read_from(DecodingReader::new(whole, encoding_rs::GB18030), on_record)
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
        let e = read_all("名称,x,y\n甲,38512345.6,3378901.2\n".as_bytes(), SourceOptions::default()).unwrap_err();
        assert!(e.to_string().contains("row 2, field `x`: `38512345.6` is not a longitude (-180 to 180)"), "{e}");
        let gk = SourceOptions { crs: Some(Crs::Epsg(4526)), ..SourceOptions::default() };
        let r = read_all("名称,x,y\n甲,38512345.6,3378901.2\n".as_bytes(), gk).unwrap();
        assert_eq!(r[0].geometry, Some(Geometry::Point(Coord::xy(38_512_345.6, 3_378_901.2))), "metres in their CRS");
        let opts = SourceOptions { wkt_column: Some("shape".into()), ..SourceOptions::default() };
        assert!(read_all(b"a,b\n1,2\n", opts).unwrap_err().to_string().contains("no WKT column named `shape`"));
    }

    #[test]
    fn a_100_mb_field_stops_at_the_row_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.csv");
        {
            use std::io::Write as _;
            let mut f = std::io::BufWriter::new(File::create(&p).unwrap());
            f.write_all(b"name,note\nok,fine\nbad,\"").unwrap();
            let block = vec![b'x'; 1 << 20];
            for _ in 0..100 {
                f.write_all(&block).unwrap();
            }
        }
        let started = std::time::Instant::now();
        let mut s = CsvSource::open(&p, &SourceOptions::default()).unwrap();
        let mut seen = 0;
        let e = s
            .read(&mut |_| {
                seen += 1;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(seen, 1, "the good row is read, the huge one refused");
        let x = e.limit.as_ref().expect("a typed limit");
        assert_eq!((x.limit, x.max), (Limit::RowBytes, crate::limits::MAX_ROW_BYTES));
        assert_eq!(e.location, Some(Location::Line(3)));
        assert!(
            e.to_string().contains(", row 3: the row has more than 33554432 bytes; the limit is 33554432 (row-bytes)"),
            "{e}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }

    #[test]
    fn fields_rows_and_wkt_vertices_have_limits() {
        let limits = Limits { field_bytes: 100, row_bytes: 10_000, geometry_vertices: 3, ..Limits::default() };
        let opts = SourceOptions { limits, ..SourceOptions::default() };
        let long = "长".repeat(40); // 120 bytes
        let e = read_all(format!("名称,备注\n甲,{long}\n").as_bytes(), opts.clone()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("备注"));
        assert!(
            e.to_string().ends_with(", row 2, field `备注`: the field has 120 bytes; the limit is 100 (field-bytes)"),
            "{e}"
        );
        let e = read_all(b"id,wkt\n1,\"LINESTRING (0 0,1 1,2 2,3 3)\"\n", opts.clone()).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("row 2, field `wkt`: the geometry has 4 vertices; the limit is 3 (geometry-vertices)"),
            "{e}"
        );
        let text = format!("名称\n{}\n", "长".repeat(60));
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        let e = read_all(&gbk, opts).unwrap_err();
        assert!(e.is_too_large() && e.field.as_deref() == Some("名称"), "GBK files are measured too: {e}");
    }

    #[test]
    fn writer_puts_a_bom_and_wkt_last() {
        let mut w = CsvWriter::new(Vec::new(), &["名称".to_string()]).unwrap();
        w.write(&["井盖".to_string()], Some(&Geometry::Point(Coord::xy(1.0, 2.0)))).unwrap();
        let s = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(s, "\u{feff}名称,wkt\n井盖,POINT (1 2)\n");
    }
}
