//! Reading one sheet of an XLSX workbook within the [`Limits`], because an XLSX is a zip that
//! can describe far more than it holds.
//!
//! Its entries are checked by declared size and then inflated through a counting reader into
//! nothing before calamine opens it (`check_zip`), so a zip bomb is refused after at most the
//! budget of inflation and no allocation. The shared-string count calamine reserves memory for is
//! read from the XML first. The sheet is read cell by cell (`worksheet_cells_reader`), never as
//! calamine's dense `Range`: a lone cell at `XFD1048576` would make that allocate rows × columns.
//! Its declared `<dimension>` is refused when over the table limits, and so is every cell beyond
//! them while reading (declarations can lie). The used area is then laid out densely (within the
//! cell limit) as a [`Table`]: its first row is the header, cells keep their types.

use std::io::Cursor;

use calamine::Reader as _;
use jiff::civil;

use crate::error::{FormatError, Location, Result, column_letters};
use crate::limits::{Exceeded, Limit, Limits, ZipCheckError, check_zip};
use crate::table::{Cell, Extent, Table, too_large};

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

/// A cell as calamine read it, typed: numbers stay numbers, dates become civil dates (a date
/// with no time of day a `Date`), durations their number of days.
fn cell(v: calamine::Data) -> Cell {
    use calamine::Data as D;
    match v {
        D::Empty => Cell::Empty,
        D::String(s) | D::DateTimeIso(s) | D::DurationIso(s) => Cell::Text(s),
        D::Float(f) => Cell::Number(f),
        D::Int(i) => Cell::Integer(i),
        D::Bool(b) => Cell::Bool(b),
        D::Error(e) => Cell::Error(e.to_string()),
        D::DateTime(t) if t.is_datetime() => {
            let (y, mo, d, h, mi, s, ms) = t.to_ymd_hms_milli();
            let at = civil::Date::new(y as i16, mo as i8, d as i8)
                .and_then(|day| Ok((day, civil::Time::new(h as i8, mi as i8, s as i8, i32::from(ms) * 1_000_000)?)));
            match at {
                Ok((day, time)) if time == civil::Time::midnight() => Cell::Date(day),
                Ok((day, time)) => Cell::DateTime(day.to_datetime(time)),
                // Excel's 1900-02-29, which never was: the serial number, as the sheet stores it.
                Err(_) => Cell::Number(t.as_f64()),
            }
        }
        D::DateTime(t) => Cell::Number(t.as_f64()),
    }
}

/// Reads sheet `sheet` (default: the first) of XLSX `bytes` within `limits` (see
/// [`Limits::table`]): its used area, the first row as headers.
pub fn read_sheet(bytes: &[u8], name: &str, sheet: Option<&str>, limits: &Limits) -> Result<Table> {
    let unreadable = |e: &dyn std::fmt::Display| FormatError::file(name, format!("not a readable XLSX: {e}"));
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
    let names = wb.sheet_names();
    let sheet = match sheet {
        None => names.first().cloned().ok_or_else(|| FormatError::file(name, "no sheet"))?,
        Some(want) => names
            .iter()
            .find(|n| n.as_str() == want)
            .or_else(|| names.iter().find(|n| crate::columns::same(n, want)))
            .cloned()
            .ok_or_else(|| FormatError::file(name, format!("no sheet `{want}` (sheets: {})", names.join(", "))))?,
    };
    let which = if names.first() == Some(&sheet) { "first sheet".to_owned() } else { format!("sheet `{sheet}`") };
    let mut cells = wb.worksheet_cells_reader(&sheet).map_err(|e| FormatError::file(name, format!("{which}: {e}")))?;
    let l = limits;
    let d = cells.dimensions();
    let (rows, cols) =
        (u64::from(d.end.0.saturating_sub(d.start.0)) + 1, u64::from(d.end.1.saturating_sub(d.start.1)) + 1);
    let declared = |limit, value, max| {
        let what = format!(
            "its <dimension ref=\"{}{}:{}{}\">",
            column_letters(d.start.1),
            d.start.0 + 1,
            column_letters(d.end.1),
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
    let mut found: Vec<(u32, u32, Cell)> = Vec::new();
    let (mut r0, mut c0, mut r1, mut c1) = (u32::MAX, u32::MAX, 0u32, 0u32);
    let mut extent = Extent { limits, file: name, sheet: Some(&sheet), cells: 0 };
    loop {
        let next = match cells.next_cell() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(FormatError::file(name, format!("{which}: {e}"))),
        };
        let (r, c) = next.get_position();
        let value = cell(calamine::Data::from(next.get_value().clone()));
        if value == Cell::Empty {
            continue;
        }
        (r0, c0, r1, c1) = (r0.min(r), c0.min(c), r1.max(r), c1.max(c));
        let (height, width) = (u64::from(r1 - r0) + 1, u64::from(c1 - c0) + 1);
        let row = u64::from(r) + 1;
        extent.check(row, height - 1, width, Some(c), |_| column_letters(c))?;
        let at = Some(Location::Cell { row, column: c });
        if height * width > l.table_cells {
            let x = Exceeded::stopped(Limit::TableCells, "the used area of the sheet", height * width, l.table_cells);
            return Err(too_large(name, Some(&sheet), at, None, x));
        }
        extent.cells(row, 1)?;
        let bytes = match &value {
            Cell::Text(s) | Cell::Error(s) => s.len() as u64,
            _ => 0,
        };
        if bytes > l.field_bytes {
            let x = Exceeded::actual(Limit::FieldBytes, "the cell", bytes, l.field_bytes);
            return Err(too_large(name, Some(&sheet), at, None, x));
        }
        found.push((r, c, value));
    }
    drop(cells);
    if found.is_empty() {
        return Err(FormatError::file(name, "the sheet is empty").in_sheet(sheet));
    }
    // The used area, dense (within the cell limit, checked above), as calamine's range was.
    let width = (c1 - c0) as usize + 1;
    let mut grid = vec![Vec::new(); (r1 - r0) as usize + 1];
    for row in &mut grid {
        row.resize(width, Cell::Empty);
    }
    for (r, c, value) in found {
        grid[(r - r0) as usize][(c - c0) as usize] = value;
    }
    let mut rows = grid.into_iter();
    let headers = rows.next().unwrap_or_default().into_iter().map(Cell::into_text).collect();
    Ok(Table { sheet: Some(sheet), headers, rows: rows.collect(), header_row: u64::from(r0) + 1, first_column: c0 })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::limits::hostile::{Entry, xlsx};

    fn read(bytes: &[u8]) -> Result<Table> {
        crate::table::read_table(bytes, "upload.xlsx", &Limits::table())
    }

    fn text(t: &Table) -> Vec<Vec<String>> {
        t.rows.iter().map(|r| r.iter().map(Cell::to_text).collect()).collect()
    }

    fn fast(t: Instant) {
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    }

    const INLINE: &str = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>地址</t></is></c><c r="B1" t="inlineStr"><is><t>名称</t></is></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>武汉市洪山区</t></is></c></row>"#;

    #[test]
    fn a_small_workbook_reads_as_calamine_did() {
        let t = read(&xlsx(Some("A1:B3"), INLINE, None, vec![])).unwrap();
        assert_eq!(t.headers, ["地址", "名称"]);
        assert_eq!(text(&t), [vec!["", ""], vec!["武汉市洪山区", ""]]);
        assert_eq!(
            (t.sheet.as_deref(), t.row_number(1), t.location(1, 1)),
            (Some("Sheet1"), 3, Location::Cell { row: 3, column: 1 })
        );
        let shared = Entry::deflated(
            "xl/sharedStrings.xml",
            r#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="2" uniqueCount="2"><si><t>地址</t></si><si><t>洪山区</t></si></sst>"#,
        );
        let data = r#"<row r="2"><c r="B2" t="s"><v>0</v></c></row><row r="3"><c r="B3" t="s"><v>1</v></c></row>"#;
        let t = read(&xlsx(None, data, Some(shared), vec![])).unwrap();
        assert_eq!((t.headers.clone(), text(&t)), (vec!["地址".to_owned()], vec![vec!["洪山区".to_owned()]]));
        assert_eq!((t.header_row, t.first_column, t.location(0, 0)), (2, 1, Location::Cell { row: 3, column: 1 }));
    }

    #[test]
    fn cells_keep_their_types() {
        let data = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>经度</t></is></c><c r="B1" t="inlineStr"><is><t>数量</t></is></c><c r="C1" t="inlineStr"><is><t>有效</t></is></c><c r="D1" t="inlineStr"><is><t>错</t></is></c></row><row r="2"><c r="A2"><v>114.3437</v></c><c r="B2"><v>7</v></c><c r="C2" t="b"><v>1</v></c><c r="D2" t="e"><v>#DIV/0!</v></c></row>"#;
        let t = read(&xlsx(None, data, None, vec![])).unwrap();
        assert_eq!(
            t.rows[0],
            [Cell::Number(114.3437), Cell::Number(7.0), Cell::Bool(true), Cell::Error("#DIV/0!".into())]
        );
    }

    #[test]
    fn a_sheet_is_chosen_by_name() {
        let wb = xlsx(None, INLINE, None, vec![]);
        let e = read_sheet(&wb, "upload.xlsx", Some("第二页"), &Limits::table()).unwrap_err();
        assert_eq!(e.to_string(), "upload.xlsx: no sheet `第二页` (sheets: Sheet1)");
        let t = read_sheet(&wb, "upload.xlsx", Some(" sheet1 "), &Limits::table()).unwrap();
        assert_eq!(t.sheet.as_deref(), Some("Sheet1"));
    }

    #[test]
    fn unreadable_workbooks_name_the_file() {
        let e = read(b"PK\x03\x04 not really a zip").unwrap_err();
        assert!(e.to_string().starts_with("upload.xlsx: not a readable XLSX"), "{e}");
        let e = read(&xlsx(None, "", None, vec![])).unwrap_err();
        assert_eq!(e.to_string(), "upload.xlsx, sheet `Sheet1`: the sheet is empty");
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
        let x = e.limit.as_ref().expect("typed");
        assert!(x.declared);
        // The dimension lies (or is missing): the cell itself is refused, nothing dense is built.
        for dim in [Some("A1"), None] {
            let t = Instant::now();
            let e = read(&xlsx(dim, cell, None, vec![])).unwrap_err();
            fast(t);
            assert_eq!(
                e.to_string(),
                "upload.xlsx, sheet `Sheet1`, row 1048576, column XFD: the table has more than 1000000 rows; the limit is 1000000 (table-rows)"
            );
        }
        // Within the rows but far to the right.
        let wide = r#"<row r="1"><c r="A1"><v>1</v></c><c r="XFD1"><v>2</v></c></row>"#;
        let e = read(&xlsx(None, wide, None, vec![])).unwrap_err();
        assert_eq!(e.limit.as_ref().map(|x| x.limit), Some(Limit::TableColumns), "{e}");
        assert!(e.to_string().contains("row 1, column XFD: the row has 16384 columns; the limit is 1000"), "{e}");
        // Sparse within both, but rows × columns over the cell budget.
        let sparse = r#"<row r="1"><c r="A1"><v>1</v></c></row><row r="900000"><c r="ALL900000"><v>2</v></c></row>"#;
        let e = read(&xlsx(None, sparse, None, vec![])).unwrap_err();
        assert_eq!(e.limit.as_ref().map(|x| x.limit), Some(Limit::TableCells), "{e}");
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
        let x = e.limit.as_ref().expect("typed");
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
}
