//! Tables people upload or import (CSV in UTF-8 or GBK, a sheet of an XLSX) read whole within
//! the [`Limits`], because anyone with an account can upload one: the server's batch geocoding
//! reads them through [`read_table`], the XLSX [`Source`](crate::Source) through
//! [`crate::xlsx::read_sheet`].
//!
//! A table is headers and rows of typed [`Cell`]s (a CSV's are all text; an XLSX keeps numbers,
//! booleans and dates as the sheet types them). Rows, columns, cells and field bytes are counted
//! as they come and the first over a limit is refused as an [`Exceeded`] inside the
//! [`FormatError`], naming file, sheet, row and column. A CSV is parsed while it is decoded (GBK
//! streams), each row counted as read.

use std::io::Read;

use jiff::civil;

use crate::DecodingReader;
use crate::error::{FormatError, Location, Result};
use crate::limits::{Exceeded, Limit, Limits, RowMeter, exceeded_in};

/// One cell as the file holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Cell {
    #[default]
    Empty,
    Text(String),
    Number(f64),
    Integer(i64),
    Bool(bool),
    Date(civil::Date),
    /// A date and time of day as the sheet shows it (no zone: sheets carry none).
    DateTime(civil::DateTime),
    /// An error value the sheet computed (`#DIV/0!`, `#N/A` …).
    Error(String),
}

impl Cell {
    /// The cell as text: numbers as Rust (and calamine) print them, dates ISO 8601
    /// (`2024-03-01`, `2024-03-01T08:30:00`), errors as the sheet shows them.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) | Cell::Error(s) => s.clone(),
            Cell::Number(f) => f.to_string(),
            Cell::Integer(i) => i.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Date(d) => d.to_string(),
            Cell::DateTime(t) => t.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        }
    }

    /// [`Cell::to_text`], without copying text.
    pub fn into_text(self) -> String {
        match self {
            Cell::Text(s) | Cell::Error(s) => s,
            other => other.to_text(),
        }
    }

    /// Empty, or text of white space only.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }
}

/// A table: the header row and the data rows below it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// The sheet it was read from (XLSX); `None` for CSV.
    pub sheet: Option<String>,
    pub headers: Vec<String>,
    /// Data rows; an XLSX's are as wide as its used area, a CSV's as its lines.
    pub rows: Vec<Vec<Cell>>,
    /// The header's row in the file, from 1 (a sheet's used area may start lower).
    pub header_row: u64,
    /// The first column's index in the sheet (0 = `A`).
    pub first_column: u32,
}

impl Table {
    /// The row number (in the file, from 1) of data row `i` (from 0).
    pub fn row_number(&self, i: usize) -> u64 {
        self.header_row + 1 + i as u64
    }

    /// Where cell (`i`, `j`) of the data is: a sheet's cell, or a CSV's line.
    pub fn location(&self, i: usize, j: usize) -> Location {
        match self.sheet {
            Some(_) => Location::Cell { row: self.row_number(i), column: self.first_column + j as u32 },
            None => Location::Line(self.row_number(i)),
        }
    }
}

/// Reads CSV (UTF-8, with or without a BOM, or GBK) or XLSX bytes (its first sheet) within
/// `limits` (see [`Limits::table`]).
pub fn read_table(bytes: &[u8], name: &str, limits: &Limits) -> Result<Table> {
    if bytes.starts_with(b"PK\x03\x04") {
        return crate::xlsx::read_sheet(bytes, name, None, limits);
    }
    let input: Box<dyn Read + '_> = match std::str::from_utf8(bytes) {
        Ok(_) => Box::new(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)),
        Err(_) => Box::new(DecodingReader::new(bytes, encoding_rs::GB18030)),
    };
    read_csv(input, name, limits)
}

/// A limit error at `location` of `sheet`, naming the field (a CSV's column) when given.
pub(crate) fn too_large(
    file: &str,
    sheet: Option<&str>,
    location: Option<Location>,
    field: Option<String>,
    x: Exceeded,
) -> FormatError {
    let mut e = FormatError::exceeded(file, location, x);
    e.sheet = sheet.map(str::to_owned);
    e.field = field;
    e
}

/// Counts a table's rows, columns and cells as they come, refusing the first over a limit.
pub(crate) struct Extent<'a> {
    pub limits: &'a Limits,
    pub file: &'a str,
    pub sheet: Option<&'a str>,
    pub cells: u64,
}

impl Extent<'_> {
    /// A row of `columns` cells at file row `row` (from 1), the `data_rows`-th data row.
    /// `cell`: the sheet column of the cell that made the row count; for a CSV (`None`) the
    /// column is named by `column_name`.
    pub fn check(
        &mut self,
        row: u64,
        data_rows: u64,
        columns: u64,
        cell: Option<u32>,
        column_name: impl Fn(u64) -> String,
    ) -> Result<()> {
        let l = self.limits;
        let at = |column: Option<u32>| match column {
            Some(column) => Location::Cell { row, column },
            None => Location::Line(row),
        };
        if data_rows > l.table_rows {
            let x = Exceeded::stopped(Limit::TableRows, "the table", data_rows, l.table_rows);
            return Err(too_large(self.file, self.sheet, Some(at(cell)), None, x));
        }
        if columns > l.table_columns {
            let x = Exceeded::actual(Limit::TableColumns, "the row", columns, l.table_columns);
            let field = cell.is_none().then(|| column_name(columns - 1));
            return Err(too_large(self.file, self.sheet, Some(at(cell)), field, x));
        }
        Ok(())
    }

    pub fn cells(&mut self, row: u64, n: u64) -> Result<()> {
        self.cells += n;
        if self.cells > self.limits.table_cells {
            let x = Exceeded::stopped(Limit::TableCells, "the table", self.cells, self.limits.table_cells);
            return Err(too_large(self.file, self.sheet, Some(Location::Line(row)), None, x));
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
            Some(x) => too_large(name, None, Some(Location::Line(row)), None, x),
            None => FormatError::at(name, Location::Line(row), e.to_string()),
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
                return Err(too_large(name, None, Some(Location::Line(row)), Some(column(headers, i as u64)), x));
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
        rows.push(record.iter().map(|c| Cell::Text(c.to_owned())).collect());
    }
    Ok(Table { sheet: None, headers, rows, header_row: 1, first_column: 0 })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn text(t: &Table) -> Vec<Vec<String>> {
        t.rows.iter().map(|r| r.iter().map(Cell::to_text).collect()).collect()
    }

    #[test]
    fn csv_in_utf8_with_bom_or_gbk() {
        let t =
            read_table("\u{feff}名称,地址\n井盖一,武汉市洪山区\n井盖二\n".as_bytes(), "upload.csv", &Limits::table())
                .unwrap();
        assert_eq!(t.headers, ["名称", "地址"]);
        assert_eq!(text(&t), [vec!["井盖一", "武汉市洪山区"], vec!["井盖二"]]);
        assert_eq!((t.row_number(1), t.location(1, 0)), (3, Location::Line(3)));
        let (gbk, _, _) = encoding_rs::GBK.encode("地址\n洪山区\n");
        let t = read_table(&gbk, "gbk.csv", &Limits::table()).unwrap();
        assert_eq!((t.headers.clone(), text(&t)), (vec!["地址".to_owned()], vec![vec!["洪山区".to_owned()]]));
    }

    #[test]
    fn csv_rows_fields_and_columns_are_bounded() {
        let small = Limits { table_rows: 2, table_columns: 3, field_bytes: 10, row_bytes: 100, ..Limits::table() };
        let csv = |s: &str| read_table(s.as_bytes(), "upload.csv", &small);
        assert_eq!(csv("a,b\n1,2\n3,4\n").unwrap().rows.len(), 2);
        let e = csv("a,b\n1,2\n3,4\n5,6\n").unwrap_err();
        assert_eq!(e.to_string(), "upload.csv, row 4: the table has more than 2 rows; the limit is 2 (table-rows)");
        let e = csv("a,b\n1,2,3,4\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "upload.csv, row 2, field `#4`: the row has 4 columns; the limit is 3 (table-columns)"
        );
        let e = csv("a,地址\n1,武汉市洪山区\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "upload.csv, row 2, field `地址`: the field has 18 bytes; the limit is 10 (field-bytes)"
        );
        let e = csv(&format!("a\n\"{}", "x".repeat(100_000))).unwrap_err();
        assert!(e.to_string().starts_with("upload.csv, row 2: the row has more than 100 bytes"), "{e}");
        let (gbk, _, _) = encoding_rs::GBK.encode("a,地址\n1,武汉市洪山区\n");
        let e = read_table(&gbk, "gbk.csv", &small).unwrap_err();
        assert_eq!(e.limit.map(|x| x.limit), Some(Limit::FieldBytes), "GBK is measured as decoded");
    }

    #[test]
    fn a_100_mb_csv_field_is_refused_at_the_row_limit() {
        let mut body = b"id,address\n1,\"".to_vec();
        body.resize(body.len() + (100 << 20), b'x');
        let t = Instant::now();
        let e = read_table(&body, "upload.csv", &Limits::table()).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
        assert_eq!(
            e.to_string(),
            "upload.csv, row 2: the row has more than 33554432 bytes; the limit is 33554432 (row-bytes)"
        );
    }

    #[test]
    fn cells_read_as_text_the_way_the_sheet_shows_them() {
        let d = civil::date(2024, 3, 1);
        assert_eq!(
            [
                Cell::Number(114.3),
                Cell::Number(3.0),
                Cell::Integer(-2),
                Cell::Bool(true),
                Cell::Date(d),
                Cell::DateTime(d.at(8, 30, 0, 0)),
                Cell::Error("#DIV/0!".into()),
                Cell::Empty
            ]
            .map(Cell::into_text),
            ["114.3", "3", "-2", "true", "2024-03-01", "2024-03-01T08:30:00", "#DIV/0!", ""].map(str::to_owned)
        );
        assert!(Cell::Text(" 　".into()).is_blank() && !Cell::Number(0.0).is_blank());
    }
}
