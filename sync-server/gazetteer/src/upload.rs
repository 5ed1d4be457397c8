//! Reading an uploaded table (CSV in UTF-8 or GBK, or the first sheet of an XLSX) within the
//! limits of `shikong_formats::limits`, because anyone with an account can upload one.
//!
//! An XLSX is a zip: its entries are checked by declared size and then inflated through a
//! counting reader into nothing before calamine opens it (`check_zip`), so a zip bomb is refused
//! after at most the budget of inflation and no allocation. The shared-string count calamine
//! reserves memory for is read from the XML first. The sheet is read cell by cell
//! (`worksheet_cells_reader`), never as calamine's dense `Range`: a lone cell at `XFD1048576`
//! would make that allocate rows × columns. Its declared `<dimension>` is refused when over the
//! table limits, and so is every cell beyond them while reading (declarations can lie). A CSV is
//! parsed while it is decoded (GBK streams), each row counted as read.

use std::io::{Cursor, Read};

use calamine::Reader as _;
use shikong_formats::DecodingReader;
use shikong_formats::limits::{Exceeded, Limit, Limits, RowMeter, ZipCheckError, check_zip, exceeded_in};

use crate::error::{GazetteerError, Result};
use crate::tables::Table;

/// Reads CSV (UTF-8 or GBK) or XLSX bytes within `limits` (see [`Limits::table`]).
pub fn read_table_with(bytes: &[u8], name: &str, limits: &Limits) -> Result<Table> {
    if bytes.starts_with(b"PK\x03\x04") {
        return read_xlsx(bytes, name, limits);
    }
    let input: Box<dyn Read + '_> = match std::str::from_utf8(bytes) {
        Ok(_) => Box::new(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)),
        Err(_) => Box::new(DecodingReader::new(bytes, encoding_rs::GB18030)),
    };
    read_csv(input, name, limits)
}

fn too_large(file: &str, sheet: Option<&str>, row: Option<u64>, field: Option<String>, x: Exceeded) -> GazetteerError {
    GazetteerError::TooLarge {
        file: file.to_owned(),
        sheet: sheet.map(str::to_owned),
        row,
        field,
        exceeded: Box::new(x),
    }
}

/// Counts a table's rows, columns and cells as they come, refusing the first over a limit.
struct Extent<'a> {
    limits: &'a Limits,
    file: &'a str,
    sheet: Option<&'a str>,
    cells: u64,
}

impl Extent<'_> {
    /// A row of `columns` cells at sheet row `row` (1-based), the `data_rows`-th data row.
    /// `cell`: the column of the cell that made the row count (a sheet's), for the message.
    fn check(
        &mut self,
        row: u64,
        data_rows: u64,
        columns: u64,
        cell: Option<String>,
        column_name: impl Fn(u64) -> String,
    ) -> Result<()> {
        let l = self.limits;
        if data_rows > l.table_rows {
            let x = Exceeded::stopped(Limit::TableRows, "the table", data_rows, l.table_rows);
            return Err(too_large(self.file, self.sheet, Some(row), cell, x));
        }
        if columns > l.table_columns {
            let x = Exceeded::actual(Limit::TableColumns, "the row", columns, l.table_columns);
            return Err(too_large(self.file, self.sheet, Some(row), Some(column_name(columns - 1)), x));
        }
        Ok(())
    }

    fn cells(&mut self, row: u64, n: u64) -> Result<()> {
        self.cells += n;
        if self.cells > self.limits.table_cells {
            let x = Exceeded::stopped(Limit::TableCells, "the table", self.cells, self.limits.table_cells);
            return Err(too_large(self.file, self.sheet, Some(row), None, x));
        }
        Ok(())
    }
}

fn read_csv(input: impl Read, name: &str, limits: &Limits) -> Result<Table> {
    let meter = RowMeter::new(limits.row_bytes);
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(meter.wrap(input, "the row"));
    let fail = |e: csv::Error, row: u64| {
        let limit = match e.kind() {
            csv::ErrorKind::Io(io) => exceeded_in(io).cloned(),
            _ => None,
        };
        match limit {
            Some(x) => too_large(name, None, Some(row), None, x),
            None => GazetteerError::table(name, Some(row), e),
        }
    };
    let headers: Vec<String> = rdr.headers().map_err(|e| fail(e, 1))?.iter().map(str::to_owned).collect();
    meter.reset();
    let mut extent = Extent { limits, file: name, sheet: None, cells: 0 };
    let column = |headers: &[String], i: u64| headers.get(i as usize).cloned().unwrap_or_else(|| format!("#{}", i + 1));
    let check_fields = |record: &csv::StringRecord, row: u64, headers: &[String]| -> Result<()> {
        for (i, f) in record.iter().enumerate() {
            if f.len() as u64 > limits.field_bytes {
                let x = Exceeded::actual(Limit::FieldBytes, "the field", f.len() as u64, limits.field_bytes);
                return Err(too_large(name, None, Some(row), Some(column(headers, i as u64)), x));
            }
        }
        Ok(())
    };
    extent.check(1, 0, headers.len() as u64, None, |i| column(&headers, i))?;
    extent.cells(1, headers.len() as u64)?;
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let row = rows.len() as u64 + 2;
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => meter.reset(),
            Err(e) => return Err(fail(e, row)),
        }
        extent.check(row, row - 1, record.len() as u64, None, |i| column(&headers, i))?;
        extent.cells(row, record.len() as u64)?;
        check_fields(&record, row, &headers)?;
        rows.push(record.iter().map(str::to_owned).collect());
    }
    Ok(Table { headers, rows })
}

/// `A`, `B`, … `XFD` for a 0-based column.
fn column_letters(mut c: u64) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// The `uniqueCount` of the `<sst>` element at the start of a shared-strings part: `Err` when
/// the element is not in `head` (calamine would reserve whatever it says, unseen).
fn sst_unique_count(head: &[u8]) -> std::result::Result<Option<u64>, ()> {
    let mut rest = head;
    while let Some(i) = rest.iter().position(|&b| b == b'<') {
        rest = &rest[i + 1..];
        if rest.first().is_some_and(|b| *b == b'?' || *b == b'!') {
            continue;
        }
        let end = rest.iter().position(|&b| b == b'>').ok_or(())?;
        let tag = &rest[..end];
        let name_end = tag.iter().position(|b| b.is_ascii_whitespace() || *b == b'/').unwrap_or(tag.len());
        let name = &tag[..name_end];
        let local = name.rsplit(|b| *b == b':').next().unwrap_or(name);
        if local != b"sst" {
            continue;
        }
        let Some(at) = tag.windows(11).position(|w| w == b"uniqueCount") else { return Ok(None) };
        let after = &tag[at + 11..];
        let after = after.trim_ascii_start().strip_prefix(b"=").ok_or(())?.trim_ascii_start();
        let digits = after.get(1..).ok_or(())?;
        let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        let text = std::str::from_utf8(&digits[..n]).map_err(|_| ())?;
        return Ok(Some(text.parse::<u64>().unwrap_or(u64::MAX)));
    }
    Err(())
}

fn read_xlsx(bytes: &[u8], name: &str, limits: &Limits) -> Result<Table> {
    let unreadable = |e: &dyn std::fmt::Display| GazetteerError::table(name, None, format!("not a readable XLSX: {e}"));
    let is_sst = |entry: &str| entry.to_ascii_lowercase().ends_with("sharedstrings.xml");
    let check = check_zip(Cursor::new(bytes), limits, &is_sst).map_err(|e| match e {
        ZipCheckError::Exceeded(x) => too_large(name, None, None, None, x),
        ZipCheckError::Unreadable(m) => unreadable(&m),
    })?;
    for (entry, head) in &check.heads {
        match sst_unique_count(head) {
            Ok(Some(n)) if n > limits.table_cells => {
                let x =
                    Exceeded::declared(Limit::TableCells, format!("`{entry}` (uniqueCount)"), n, limits.table_cells);
                return Err(too_large(name, None, None, None, x));
            }
            Ok(_) => {}
            Err(()) if head.len() < 64 * 1024 => {} // no <sst>: calamine says what is wrong
            Err(()) => return Err(unreadable(&format!("`{entry}` has no <sst> element in its first 64 KiB"))),
        }
    }
    let mut wb = calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let sheet = wb.sheet_names().into_iter().next().ok_or_else(|| GazetteerError::table(name, None, "no sheet"))?;
    let mut cells = wb
        .worksheet_cells_reader(&sheet)
        .map_err(|e| GazetteerError::table(name, None, format!("first sheet: {e}")))?;
    let l = limits;
    let d = cells.dimensions();
    let (rows, cols) =
        (u64::from(d.end.0.saturating_sub(d.start.0)) + 1, u64::from(d.end.1.saturating_sub(d.start.1)) + 1);
    let declared = |limit, value, max| {
        let what = format!(
            "its <dimension ref=\"{}{}:{}{}\">",
            column_letters(d.start.1.into()),
            d.start.0 + 1,
            column_letters(d.end.1.into()),
            d.end.0 + 1
        );
        Err(too_large(name, Some(&sheet), None, None, Exceeded::declared(limit, what, value, max)))
    };
    if rows - 1 > l.table_rows {
        return declared(Limit::TableRows, rows - 1, l.table_rows);
    }
    if cols > l.table_columns {
        return declared(Limit::TableColumns, cols, l.table_columns);
    }
    if rows * cols > l.table_cells {
        return declared(Limit::TableCells, rows * cols, l.table_cells);
    }
    // Cells as they come (sparse); the used area's extent is checked at every cell.
    let mut found: Vec<(u32, u32, String)> = Vec::new();
    let (mut r0, mut c0, mut r1, mut c1) = (u32::MAX, u32::MAX, 0u32, 0u32);
    let mut extent = Extent { limits, file: name, sheet: Some(&sheet), cells: 0 };
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(GazetteerError::table(name, None, format!("first sheet: {e}"))),
        };
        let (r, c) = cell.get_position();
        let value = calamine::Data::from(cell.get_value().clone());
        if matches!(value, calamine::Data::Empty) {
            continue;
        }
        (r0, c0, r1, c1) = (r0.min(r), c0.min(c), r1.max(r), c1.max(c));
        let (height, width) = (u64::from(r1 - r0) + 1, u64::from(c1 - c0) + 1);
        let row = u64::from(r) + 1;
        extent.check(row, height - 1, width, Some(column_letters(c.into())), |_| column_letters(c.into()))?;
        if height * width > l.table_cells {
            let x = Exceeded::stopped(Limit::TableCells, "the used area of the sheet", height * width, l.table_cells);
            return Err(too_large(name, Some(&sheet), Some(row), Some(column_letters(c.into())), x));
        }
        extent.cells(row, 1)?;
        let text = value.to_string();
        if text.len() as u64 > l.field_bytes {
            let x = Exceeded::actual(Limit::FieldBytes, "the cell", text.len() as u64, l.field_bytes);
            return Err(too_large(name, Some(&sheet), Some(row), Some(column_letters(c.into())), x));
        }
        found.push((r, c, text));
    }
    drop(cells);
    if found.is_empty() {
        return Err(GazetteerError::table(name, None, "the sheet is empty"));
    }
    // The used area, dense (within the cell limit, checked above), as calamine's range was.
    let width = (c1 - c0) as usize + 1;
    let mut grid = vec![Vec::new(); (r1 - r0) as usize + 1];
    for row in &mut grid {
        row.resize(width, String::new());
    }
    for (r, c, text) in found {
        grid[(r - r0) as usize][(c - c0) as usize] = text;
    }
    let mut rows = grid.into_iter();
    let headers = rows.next().unwrap_or_default();
    Ok(Table { headers, rows: rows.collect() })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use shikong_formats::limits::hostile::{Entry, xlsx};

    use super::*;

    fn read(bytes: &[u8]) -> Result<Table> {
        read_table_with(bytes, "upload.xlsx", &Limits::table())
    }

    fn fast(t: Instant) {
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    }

    const INLINE: &str = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>地址</t></is></c><c r="B1" t="inlineStr"><is><t>名称</t></is></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>武汉市洪山区</t></is></c></row>"#;

    #[test]
    fn a_small_workbook_reads_as_calamine_did() {
        let t = read(&xlsx(Some("A1:B3"), INLINE, None, vec![])).unwrap();
        assert_eq!(t.headers, ["地址", "名称"]);
        assert_eq!(t.rows, [vec!["", ""], vec!["武汉市洪山区", ""]]);
        let shared = Entry::deflated(
            "xl/sharedStrings.xml",
            r#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="2" uniqueCount="2"><si><t>地址</t></si><si><t>洪山区</t></si></sst>"#,
        );
        let data = r#"<row r="2"><c r="B2" t="s"><v>0</v></c></row><row r="3"><c r="B3" t="s"><v>1</v></c></row>"#;
        let t = read(&xlsx(None, data, Some(shared), vec![])).unwrap();
        assert_eq!((t.headers, t.rows), (vec!["地址".to_owned()], vec![vec!["洪山区".to_owned()]]));
    }

    #[test]
    fn a_lone_cell_at_xfd1048576_is_refused_by_its_declared_dimension_and_by_its_position() {
        let cell = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>地址</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#;
        let t = Instant::now();
        let e = read(&xlsx(Some("A1:XFD1048576"), cell, None, vec![])).unwrap_err();
        fast(t);
        assert_eq!(
            e.to_string(),
            "upload.xlsx, sheet `Sheet1`: its <dimension ref=\"A1:XFD1048576\"> declares 1048575 rows; the limit is 1000000 (table-rows)"
        );
        let x = e.exceeded().expect("typed");
        assert!(x.declared);
        // The dimension lies (or is missing): the cell itself is refused, nothing dense is built.
        for dim in [Some("A1"), None] {
            let t = Instant::now();
            let e = read(&xlsx(dim, cell, None, vec![])).unwrap_err();
            fast(t);
            assert_eq!(
                e.to_string(),
                "upload.xlsx, sheet `Sheet1`, row 1048576, column `XFD`: the table has more than 1000000 rows; the limit is 1000000 (table-rows)"
            );
        }
        // Within the rows but far to the right.
        let wide = r#"<row r="1"><c r="A1"><v>1</v></c><c r="XFD1"><v>2</v></c></row>"#;
        let e = read(&xlsx(None, wide, None, vec![])).unwrap_err();
        assert_eq!(e.exceeded().map(|x| x.limit), Some(Limit::TableColumns), "{e}");
        assert!(e.to_string().contains("row 1, column `XFD`: the row has 16384 columns; the limit is 1000"), "{e}");
        // Sparse within both, but rows × columns over the cell budget.
        let sparse = r#"<row r="1"><c r="A1"><v>1</v></c></row><row r="900000"><c r="ALL900000"><v>2</v></c></row>"#;
        let e = read(&xlsx(None, sparse, None, vec![])).unwrap_err();
        assert_eq!(e.exceeded().map(|x| x.limit), Some(Limit::TableCells), "{e}");
    }

    #[test]
    fn zip_bombs_are_refused_by_declared_and_by_inflated_size() {
        // 1 GiB of spaces in the shared strings, about 1 MB zipped, honest headers.
        let bomb = || Entry::bomb("xl/sharedStrings.xml", b' ', 1024);
        let honest = xlsx(None, INLINE, Some(bomb()), vec![]);
        assert!(honest.len() < 4 << 20, "{} bytes", honest.len());
        let t = Instant::now();
        let e = read(&honest).unwrap_err();
        fast(t);
        assert_eq!(
            e.to_string(),
            "upload.xlsx: zip entry `xl/sharedStrings.xml` (uncompressed size) declares 1073741824 bytes; the limit is 268435456 (decompressed-bytes)"
        );
        // Headers that claim 100 bytes: inflation stops at the budget.
        let liar = xlsx(None, INLINE, Some(bomb().declaring(100)), vec![]);
        let t = Instant::now();
        let e = read(&liar).unwrap_err();
        fast(t);
        let x = e.exceeded().expect("typed");
        assert!(!x.declared && x.limit == Limit::DecompressedBytes, "{e}");
        assert!(e.to_string().contains("has more than 268435456 bytes"), "{e}");
        // A shared-string count calamine would reserve memory for.
        let sst = Entry::stored(
            "xl/sharedStrings.xml",
            r#"<?xml version="1.0"?><x:sst xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount = '99999999999'></x:sst>"#,
        );
        let e = read(&xlsx(None, INLINE, Some(sst), vec![])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "upload.xlsx: `xl/sharedStrings.xml` (uniqueCount) declares 99999999999 cells; the limit is 10000000 (table-cells)"
        );
    }

    #[test]
    fn csv_rows_fields_and_columns_are_bounded() {
        let small = Limits { table_rows: 2, table_columns: 3, field_bytes: 10, row_bytes: 100, ..Limits::table() };
        let csv = |s: &str| read_table_with(s.as_bytes(), "upload.csv", &small);
        assert_eq!(csv("a,b\n1,2\n3,4\n").unwrap().rows.len(), 2);
        let e = csv("a,b\n1,2\n3,4\n5,6\n").unwrap_err();
        assert_eq!(e.to_string(), "upload.csv, row 4: the table has more than 2 rows; the limit is 2 (table-rows)");
        let e = csv("a,b\n1,2,3,4\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "upload.csv, row 2, column `#4`: the row has 4 columns; the limit is 3 (table-columns)"
        );
        let e = csv("a,地址\n1,武汉市洪山区\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "upload.csv, row 2, column `地址`: the field has 18 bytes; the limit is 10 (field-bytes)"
        );
        let e = csv(&format!("a\n\"{}", "x".repeat(100_000))).unwrap_err();
        assert!(e.to_string().starts_with("upload.csv, row 2: the row has more than 100 bytes"), "{e}");
        let (gbk, _, _) = encoding_rs::GBK.encode("a,地址\n1,武汉市洪山区\n");
        let e = read_table_with(&gbk, "gbk.csv", &small).unwrap_err();
        assert_eq!(e.exceeded().map(|x| x.limit), Some(Limit::FieldBytes), "GBK is measured as decoded: {e}");
    }

    #[test]
    fn a_100_mb_csv_field_is_refused_at_the_row_limit() {
        let mut body = b"id,address\n1,\"".to_vec();
        body.resize(body.len() + (100 << 20), b'x');
        let t = Instant::now();
        let e = read_table_with(&body, "upload.csv", &Limits::table()).unwrap_err();
        fast(t);
        assert_eq!(
            e.to_string(),
            "upload.csv, row 2: the row has more than 33554432 bytes; the limit is 33554432 (row-bytes)"
        );
    }

    #[test]
    fn column_letters_are_excel_s() {
        assert_eq!(
            [0, 25, 26, 51, 52, 701, 702, 16383].map(column_letters),
            ["A", "Z", "AA", "AZ", "BA", "ZZ", "AAA", "XFD"].map(str::to_owned)
        );
    }
}
