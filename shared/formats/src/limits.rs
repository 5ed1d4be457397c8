//! Limits on what an uploaded or imported file may make a reader allocate, shared by the server
//! (batch geocoding uploads, OGC write bodies) and the CLI (`shikong import`, `shikong geocode
//! --batch`), so both refuse the same files with the same words.
//!
//! A small file can describe an enormous one: a zip entry of a few kilobytes inflates to
//! gigabytes, an XLSX cell at `XFD1048576` makes a dense reader allocate rows × columns, a CSV
//! without a closing quote is one field as long as the file, a GeoJSON coordinate array grows
//! until memory runs out. So every reader checks two things: what the file **declares** (zip
//! central directory sizes, a sheet's `<dimension>`, a shared-string count), refused before
//! anything is extracted, and what it **actually produces** ([`Bounded`] counts bytes as they are
//! read and stops at the budget), because declarations can lie. A refusal is an [`Exceeded`]
//! naming the limit, the value and the maximum; readers wrap it with the file and row/field.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Seek};

use shikong_model::Geometry;

/// Entries one zip archive (zipped Shapefile, XLSX) may hold.
pub const MAX_ZIP_ENTRIES: u64 = 10_000;
/// Bytes all entries of an uploaded XLSX may inflate to (its XML, shared strings, media).
pub const MAX_XLSX_BYTES: u64 = 256 << 20;
/// Bytes the parts of one Shapefile (`.shp`, `.shx`, `.dbf`, …) may take, zipped or not. The
/// format's own offsets stop at 4 GiB per file.
pub const MAX_SHAPEFILE_BYTES: u64 = 4 << 30;
/// Bytes of a `.prj` or `.cpg` (a line of text).
pub const MAX_SIDECAR_BYTES: u64 = 1 << 20;
/// Bytes of one CSV field or table cell (a WKT polygon of ~500,000 vertices fits).
pub const MAX_FIELD_BYTES: u64 = 16 << 20;
/// Bytes of one CSV row as read (quoted newlines included).
pub const MAX_ROW_BYTES: u64 = 32 << 20;
/// Data rows of one table to geocode (one batch job).
pub const MAX_TABLE_ROWS: u64 = 1_000_000;
/// Columns of one table to geocode.
pub const MAX_TABLE_COLUMNS: u64 = 1_000;
/// Cells (rows × columns of the used area) of one table to geocode.
pub const MAX_TABLE_CELLS: u64 = 10_000_000;
/// Vertices of one geometry (GeoJSON feature, CSV WKT cell, Shapefile shape, OGC body).
pub const MAX_GEOMETRY_VERTICES: u64 = 1_000_000;
/// Vertices of all geometries of one request body.
pub const MAX_BODY_VERTICES: u64 = 1_000_000;
/// Bytes of one GeoJSON feature in an imported file.
pub const MAX_FEATURE_BYTES: u64 = 256 << 20;
/// JSON values (numbers, strings, arrays, objects …) one feature or request body may hold as a
/// tree: 1,000,000 3-D vertices are 4,000,000 values.
pub const MAX_JSON_VALUES: u64 = 5_000_000;

/// Which limit a file went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    ZipEntries,
    DecompressedBytes,
    FieldBytes,
    RowBytes,
    TableRows,
    TableColumns,
    TableCells,
    GeometryVertices,
    BodyVertices,
    FeatureBytes,
    JsonValues,
    UploadBytes,
}

impl Limit {
    /// A stable name (problem+json `limit` member, messages).
    pub fn name(self) -> &'static str {
        match self {
            Limit::ZipEntries => "zip-entries",
            Limit::DecompressedBytes => "decompressed-bytes",
            Limit::FieldBytes => "field-bytes",
            Limit::RowBytes => "row-bytes",
            Limit::TableRows => "table-rows",
            Limit::TableColumns => "table-columns",
            Limit::TableCells => "table-cells",
            Limit::GeometryVertices => "geometry-vertices",
            Limit::BodyVertices => "body-vertices",
            Limit::FeatureBytes => "feature-bytes",
            Limit::JsonValues => "json-values",
            Limit::UploadBytes => "upload-bytes",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Limit::ZipEntries => "entries",
            Limit::DecompressedBytes
            | Limit::FieldBytes
            | Limit::RowBytes
            | Limit::FeatureBytes
            | Limit::UploadBytes => "bytes",
            Limit::TableRows => "rows",
            Limit::TableColumns => "columns",
            Limit::TableCells => "cells",
            Limit::GeometryVertices | Limit::BodyVertices => "vertices",
            Limit::JsonValues => "JSON values",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A file over a limit: what (`zip entry `xl/sharedStrings.xml``), how much, the maximum, and
/// whether the value is what the file declares or what reading it produced. When a reader
/// stopped at the limit (`stopped`), the value is only known to be more than `max`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Exceeded {
    pub limit: Limit,
    pub what: String,
    pub value: u64,
    pub max: u64,
    pub declared: bool,
    pub stopped: bool,
}

impl Exceeded {
    /// A declared size over the limit (nothing was extracted).
    pub fn declared(limit: Limit, what: impl Into<String>, value: u64, max: u64) -> Self {
        Exceeded { limit, what: what.into(), value, max, declared: true, stopped: false }
    }

    /// A size found in what was read (counted whole).
    pub fn actual(limit: Limit, what: impl Into<String>, value: u64, max: u64) -> Self {
        Exceeded { limit, what: what.into(), value, max, declared: false, stopped: false }
    }

    /// Reading stopped at the limit: more than `max` (`value` is what was counted by then).
    pub fn stopped(limit: Limit, what: impl Into<String>, value: u64, max: u64) -> Self {
        Exceeded { limit, what: what.into(), value: value.max(max + 1), max, declared: false, stopped: true }
    }

    /// The limit as an I/O error, for readers that stop a parser (see [`exceeded_in`]).
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.limit.unit();
        let how = if self.declared { "declares" } else { "has" };
        if self.stopped {
            write!(f, "{} has more than {} {unit}", self.what, self.max)?;
        } else {
            write!(f, "{} {how} {} {unit}", self.what, self.value)?;
        }
        write!(f, "; the limit is {} ({})", self.max, self.limit)
    }
}

/// The [`Exceeded`] inside an I/O error from a [`Bounded`] reader (or [`Exceeded::into_io`]).
pub fn exceeded_in(e: &io::Error) -> Option<&Exceeded> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Exceeded>())
}

/// The limits a reader enforces; [`Limits::default`] holds the constants of this module. Tests
/// and special callers lower them (a zip bomb is then found with megabytes, not gigabytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub zip_entries: u64,
    /// Bytes a zipped input may inflate to, all entries together.
    pub zip_bytes: u64,
    pub sidecar_bytes: u64,
    pub field_bytes: u64,
    pub row_bytes: u64,
    pub table_rows: u64,
    pub table_columns: u64,
    pub table_cells: u64,
    pub geometry_vertices: u64,
    pub feature_bytes: u64,
    pub json_values: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            zip_entries: MAX_ZIP_ENTRIES,
            zip_bytes: MAX_SHAPEFILE_BYTES,
            sidecar_bytes: MAX_SIDECAR_BYTES,
            field_bytes: MAX_FIELD_BYTES,
            row_bytes: MAX_ROW_BYTES,
            table_rows: MAX_TABLE_ROWS,
            table_columns: MAX_TABLE_COLUMNS,
            table_cells: MAX_TABLE_CELLS,
            geometry_vertices: MAX_GEOMETRY_VERTICES,
            feature_bytes: MAX_FEATURE_BYTES,
            json_values: MAX_JSON_VALUES,
        }
    }
}

impl Limits {
    /// The limits for an uploaded XLSX or CSV table (inflating to at most [`MAX_XLSX_BYTES`]).
    pub fn table() -> Self {
        Limits { zip_bytes: MAX_XLSX_BYTES, ..Limits::default() }
    }
}

/// A reader that fails with [`Exceeded`] once more than `max` bytes come out of it, so a parser
/// reading through it stops at the budget whatever the input declared.
#[derive(Debug)]
pub struct Bounded<R> {
    inner: R,
    read: u64,
    max: u64,
    limit: Limit,
    what: String,
}

impl<R: Read> Bounded<R> {
    pub fn new(inner: R, limit: Limit, what: impl Into<String>, max: u64) -> Self {
        Bounded { inner, read: 0, max, limit, what: what.into() }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.read
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.max.saturating_sub(self.read);
        if left == 0 {
            // At the budget: one more byte means over it.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(Exceeded::stopped(self.limit, self.what.clone(), self.max + 1, self.max).into_io()),
            };
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let k = self.inner.read(&mut buf[..n])?;
        self.read += k as u64;
        Ok(k)
    }
}

/// A reader that fails with [`Exceeded`] when more than `max` bytes are read between two calls
/// of [`RowMeter::reset`] — a CSV row as long as the file stops at the row limit. The meter is
/// shared by reference (`Rc`) between the reader a parser owns and the loop that resets it.
#[derive(Debug)]
pub struct RowMeter {
    since_reset: Cell<u64>,
    max: u64,
}

impl RowMeter {
    pub fn new(max: u64) -> std::rc::Rc<Self> {
        std::rc::Rc::new(RowMeter { since_reset: Cell::new(0), max })
    }

    /// A row was returned: the next one starts counting from zero.
    pub fn reset(&self) {
        self.since_reset.set(0);
    }

    /// `inner`, counted by this meter.
    pub fn wrap<R: Read>(self: &std::rc::Rc<Self>, inner: R, what: impl Into<String>) -> MeteredRows<R> {
        MeteredRows { inner, meter: self.clone(), what: what.into() }
    }
}

/// See [`RowMeter::wrap`].
#[derive(Debug)]
pub struct MeteredRows<R> {
    inner: R,
    meter: std::rc::Rc<RowMeter>,
    what: String,
}

impl<R: Read> Read for MeteredRows<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let used = self.meter.since_reset.get();
        if used > self.meter.max {
            return Err(Exceeded::stopped(Limit::RowBytes, self.what.clone(), used, self.meter.max).into_io());
        }
        let k = self.inner.read(buf)?;
        self.meter.since_reset.set(used + k as u64);
        Ok(k)
    }
}

/// The number of vertices of a geometry.
pub fn vertices(g: &Geometry) -> u64 {
    let mut n = 0u64;
    g.for_each_coord(|_| n += 1);
    n
}

/// Refuses a geometry with more than `max` vertices; `what` names it (`geometry`).
pub fn check_vertices(g: &Geometry, max: u64, what: &str) -> Result<u64, Exceeded> {
    let n = vertices(g);
    if n > max {
        return Err(Exceeded::actual(Limit::GeometryVertices, what, n, max));
    }
    Ok(n)
}

/// What [`check_zip`] found: the start (up to 64 KiB) of each entry `keep_head` asked for.
#[derive(Debug, Default)]
pub struct ZipCheck {
    pub entries: u64,
    pub inflated: u64,
    pub heads: Vec<(String, Vec<u8>)>,
}

/// A zip archive that cannot be read at all (not a zip, a corrupt entry).
#[derive(Debug, thiserror::Error)]
pub enum ZipCheckError {
    #[error(transparent)]
    Exceeded(#[from] Exceeded),
    #[error("{0}")]
    Unreadable(String),
}

/// Checks a whole zip archive before a library that extracts it on its own (calamine) sees it:
/// the entry count and the declared uncompressed sizes first (nothing inflated), then every entry
/// inflated through a [`Bounded`] reader into nothing, all entries together within
/// `limits.zip_bytes`. Memory stays small whatever the archive holds; the time is that of
/// inflating at most the budget.
pub fn check_zip<R: Read + Seek>(
    reader: R,
    limits: &Limits,
    keep_head: &dyn Fn(&str) -> bool,
) -> Result<ZipCheck, ZipCheckError> {
    const HEAD: usize = 64 * 1024;
    let mut zip =
        zip::ZipArchive::new(reader).map_err(|e| ZipCheckError::Unreadable(format!("not a readable zip: {e}")))?;
    let entries = zip.len() as u64;
    if entries > limits.zip_entries {
        return Err(Exceeded::declared(Limit::ZipEntries, "the zip", entries, limits.zip_entries).into());
    }
    let mut declared = 0u64;
    for i in 0..zip.len() {
        let e = zip.by_index_raw(i).map_err(|e| ZipCheckError::Unreadable(e.to_string()))?;
        let size = e.size();
        if size > limits.zip_bytes {
            let what = format!("zip entry `{}` (uncompressed size)", zip_entry_name(e.name_raw()));
            return Err(Exceeded::declared(Limit::DecompressedBytes, what, size, limits.zip_bytes).into());
        }
        declared = declared.saturating_add(size);
    }
    if declared > limits.zip_bytes {
        let what = "the zip's entries together (uncompressed sizes)";
        return Err(Exceeded::declared(Limit::DecompressedBytes, what, declared, limits.zip_bytes).into());
    }
    let mut check = ZipCheck { entries, ..ZipCheck::default() };
    for i in 0..zip.len() {
        // The entry's raw (compressed) bytes are inflated here, through the byte counter, rather
        // than by the zip reader, which stops at the declared size: an entry whose stream holds
        // more than its header says is refused, not silently cut (readers disagree on that).
        let raw = zip.by_index_raw(i).map_err(|e| ZipCheckError::Unreadable(e.to_string()))?;
        let name = zip_entry_name(raw.name_raw());
        let (declared, method) = (raw.size(), raw.compression());
        let left = limits.zip_bytes - check.inflated;
        let what = format!("zip entry `{name}` (inflated, with the entries before it)");
        let inflated: Box<dyn Read + '_> = match method {
            zip::CompressionMethod::Stored => Box::new(raw),
            zip::CompressionMethod::Deflated => Box::new(flate2::read::DeflateDecoder::new(raw)),
            other => {
                return Err(ZipCheckError::Unreadable(format!(
                    "zip entry `{name}` is compressed with {other:?}; only stored and deflated entries are read"
                )));
            }
        };
        let mut r = Bounded::new(inflated, Limit::DecompressedBytes, what, left);
        let mut head = Vec::new();
        if keep_head(&name) {
            (&mut r).take(HEAD as u64).read_to_end(&mut head).map_err(|e| zip_read_error(e, &name, limits))?;
        }
        io::copy(&mut r, &mut io::sink()).map_err(|e| zip_read_error(e, &name, limits))?;
        if r.count() != declared {
            return Err(ZipCheckError::Unreadable(format!(
                "zip entry `{name}` inflates to {} bytes but its header declares {declared}: a damaged or altered archive",
                r.count()
            )));
        }
        check.inflated += r.count();
        if keep_head(&name) {
            check.heads.push((name, head));
        }
    }
    Ok(check)
}

/// A zip entry's name as text. Names are UTF-8 in practice (or flagged CP437 by old Windows
/// tools); undecodable bytes are replaced rather than refused, since the name is only matched
/// against known extensions and shown in messages, never used as a path.
pub(crate) fn zip_entry_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn zip_read_error(e: io::Error, entry: &str, limits: &Limits) -> ZipCheckError {
    match exceeded_in(&e) {
        Some(_) => {
            // The budget is of all entries together: say so.
            let what = format!("zip entry `{entry}` (inflated, with the entries before it)");
            ZipCheckError::Exceeded(Exceeded::stopped(Limit::DecompressedBytes, what, 0, limits.zip_bytes))
        }
        None => ZipCheckError::Unreadable(format!("{entry}: {e}")),
    }
}

/// Hostile files built in memory, for the tests of every crate that reads uploads (feature
/// `testkit`): zips whose entries declare what they like, and deflate streams that inflate to
/// gigabytes from kilobytes without ever being held whole.
#[cfg(any(test, feature = "testkit"))]
#[allow(clippy::expect_used)] // test fixtures: a failure is a failed test
pub mod hostile {
    use std::io::Write as _;

    /// An entry's data as stored in the zip.
    #[derive(Debug, Clone)]
    pub enum Data {
        /// Stored as is (method 0).
        Stored(Vec<u8>),
        /// Deflated (method 8): `chunk` compressed once and repeated `times` (a zip bomb: a
        /// 1 MiB chunk of one byte compresses to about 1 KiB). The CRC is of nothing: a reader
        /// that reaches the end reports a CRC error, one that stops at its budget never gets there.
        Bomb { chunk: Vec<u8>, times: u64 },
        /// Deflated normally.
        Deflated(Vec<u8>),
    }

    /// One entry: name, data, and the uncompressed size its headers declare (`None`: the truth).
    #[derive(Debug, Clone)]
    pub struct Entry {
        pub name: String,
        pub data: Data,
        pub declared: Option<u32>,
    }

    impl Entry {
        pub fn stored(name: &str, bytes: impl Into<Vec<u8>>) -> Self {
            Entry { name: name.to_owned(), data: Data::Stored(bytes.into()), declared: None }
        }

        pub fn deflated(name: &str, bytes: impl Into<Vec<u8>>) -> Self {
            Entry { name: name.to_owned(), data: Data::Deflated(bytes.into()), declared: None }
        }

        pub fn bomb(name: &str, byte: u8, mib: u64) -> Self {
            Entry { name: name.to_owned(), data: Data::Bomb { chunk: vec![byte; 1 << 20], times: mib }, declared: None }
        }

        /// Declares `size` bytes uncompressed in the headers, whatever the data is.
        pub fn declaring(mut self, size: u32) -> Self {
            self.declared = Some(size);
            self
        }
    }

    fn deflate(bytes: &[u8], finish: bool) -> Vec<u8> {
        let mut c = flate2::Compress::new(flate2::Compression::best(), false);
        let mut out = Vec::with_capacity(bytes.len() / 2 + 64);
        let flush = if finish { flate2::FlushCompress::Finish } else { flate2::FlushCompress::Full };
        loop {
            out.reserve(64 * 1024);
            let before = c.total_in() as usize;
            let status = c.compress_vec(&bytes[before..], &mut out, flush).expect("deflate");
            if (c.total_in() as usize) == bytes.len()
                && (status == flate2::Status::StreamEnd || (!finish && out.capacity() > out.len()))
            {
                break;
            }
        }
        out
    }

    /// A zip archive of `entries` (no data descriptors, no zip64, no extra fields).
    pub fn zip(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for e in entries {
            let (method, data, size, crc): (u16, Vec<u8>, u64, u32) = match &e.data {
                Data::Stored(b) => (0, b.clone(), b.len() as u64, crc(b)),
                Data::Deflated(b) => (8, deflate(b, true), b.len() as u64, crc(b)),
                Data::Bomb { chunk, times } => {
                    // Chunks flushed to a byte boundary with an empty window reference nothing
                    // before them, so the same bytes can repeat; an empty final block ends it.
                    let one = deflate(chunk, false);
                    let mut d = Vec::with_capacity(one.len() * *times as usize + 2);
                    for _ in 0..*times {
                        d.extend_from_slice(&one);
                    }
                    d.extend_from_slice(&[0x03, 0x00]);
                    (8, d, chunk.len() as u64 * times, 0)
                }
            };
            let declared = e.declared.unwrap_or(u32::try_from(size).unwrap_or(u32::MAX));
            let offset = out.len() as u32;
            let name = e.name.as_bytes();
            let header = |sig: u32, central: bool| {
                let mut h = Vec::new();
                h.extend_from_slice(&sig.to_le_bytes());
                if central {
                    h.extend_from_slice(&20u16.to_le_bytes()); // made by
                }
                h.extend_from_slice(&20u16.to_le_bytes()); // version needed
                h.extend_from_slice(&0u16.to_le_bytes()); // flags
                h.extend_from_slice(&method.to_le_bytes());
                h.extend_from_slice(&0u32.to_le_bytes()); // time, date
                h.extend_from_slice(&crc.to_le_bytes());
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&declared.to_le_bytes());
                h.extend_from_slice(&(name.len() as u16).to_le_bytes());
                h.extend_from_slice(&0u16.to_le_bytes()); // extra
                if central {
                    h.extend_from_slice(&[0u8; 6]); // comment len, disk, internal attrs
                    h.extend_from_slice(&0u32.to_le_bytes()); // external attrs
                    h.extend_from_slice(&offset.to_le_bytes());
                }
                h.extend_from_slice(name);
                h
            };
            out.write_all(&header(0x0403_4b50, false)).expect("write");
            out.write_all(&data).expect("write");
            central.extend(header(0x0201_4b50, true));
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0u8; 4]); // disk numbers
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn crc(b: &[u8]) -> u32 {
        let mut c = flate2::Crc::new();
        c.update(b);
        c.sum()
    }

    /// An XLSX workbook of one sheet `Sheet1` whose `sheetData` is `sheet_data` (rows and cells
    /// as XML), with `dimension` as its declared `<dimension ref>` (none when `None`), and
    /// `shared_strings` as `xl/sharedStrings.xml` when given. Extra entries are appended.
    pub fn xlsx(
        dimension: Option<&str>,
        sheet_data: &str,
        shared_strings: Option<Entry>,
        extra: Vec<Entry>,
    ) -> Vec<u8> {
        let dim = dimension.map(|d| format!("<dimension ref=\"{d}\"/>")).unwrap_or_default();
        let mut entries = vec![
            Entry::deflated(
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
            ),
            Entry::deflated(
                "_rels/.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            Entry::deflated(
                "xl/workbook.xml",
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            ),
            Entry::deflated(
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
            ),
            Entry::deflated(
                "xl/worksheets/sheet1.xml",
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{dim}<sheetData>{sheet_data}</sheetData></worksheet>"#
                ),
            ),
        ];
        entries.extend(shared_strings);
        entries.extend(extra);
        zip(&entries)
    }
}

#[cfg(test)]
mod tests {
    use super::hostile::{Entry, zip};
    use super::*;

    #[test]
    fn bounded_reader_stops_at_the_budget() {
        let mut r = Bounded::new(&b"0123456789"[..], Limit::FieldBytes, "field", 10);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 10);
        let mut r = Bounded::new(&b"0123456789x"[..], Limit::FieldBytes, "field `a`", 10);
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        let x = exceeded_in(&e).expect("typed");
        assert_eq!(x.to_string(), "field `a` has more than 10 bytes; the limit is 10 (field-bytes)");
    }

    #[test]
    fn zips_are_checked_by_declared_and_by_inflated_size() {
        let limits = Limits { zip_bytes: 8 << 20, ..Limits::default() };
        let ok = zip(&[Entry::deflated("a.txt", vec![b'a'; 1000])]);
        let c = check_zip(io::Cursor::new(ok), &limits, &|n| n == "a.txt").unwrap();
        assert_eq!((c.entries, c.inflated, c.heads[0].1.len()), (1, 1000, 1000));

        // Honest about its size: refused before anything is inflated.
        let honest = zip(&[Entry::bomb("big.xml", b' ', 64)]);
        assert!(honest.len() < 200_000, "{} bytes", honest.len());
        let Err(ZipCheckError::Exceeded(x)) = check_zip(io::Cursor::new(&honest), &limits, &|_| false) else {
            panic!("accepted")
        };
        assert!(x.declared && x.value == 64 << 20, "{x}");
        assert_eq!(
            x.to_string(),
            "zip entry `big.xml` (uncompressed size) declares 67108864 bytes; the limit is 8388608 (decompressed-bytes)"
        );

        // Lying about it: never more than the budget is inflated. The zip reader (the same crate
        // and version calamine reads XLSX with) stops at the declared size or refuses the entry;
        // the byte counter is the second guard should a reader ever trust the stream instead.
        let liar = zip(&[Entry::bomb("big.xml", b' ', 64).declaring(100)]);
        let Err(ZipCheckError::Exceeded(x)) = check_zip(io::Cursor::new(&liar), &limits, &|_| false) else {
            panic!("accepted")
        };
        assert!(!x.declared && x.limit == Limit::DecompressedBytes, "{x}");
        assert!(x.to_string().contains("has more than 8388608 bytes"), "{x}");
        // A small lie (within the budget) is refused too: the header and the stream disagree.
        let small_liar = zip(&[Entry::deflated("a.txt", vec![b'a'; 1000]).declaring(10)]);
        let e = check_zip(io::Cursor::new(&small_liar), &limits, &|_| false).unwrap_err();
        assert!(e.to_string().contains("inflates to 1000 bytes but its header declares 10"), "{e}");

        let many: Vec<Entry> = (0..20).map(|i| Entry::stored(&format!("{i}"), vec![])).collect();
        let small = Limits { zip_entries: 10, ..limits };
        let Err(ZipCheckError::Exceeded(x)) = check_zip(io::Cursor::new(zip(&many)), &small, &|_| false) else {
            panic!("accepted")
        };
        assert_eq!(x.limit, Limit::ZipEntries);
    }
}
