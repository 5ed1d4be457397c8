//! Reading an uploaded table (CSV in UTF-8 or GBK, or the first sheet of an XLSX) within the
//! limits of `shikong_formats::limits`, because anyone with an account can upload one. The
//! hardened reader — zip entries checked and inflated into nothing before calamine opens the
//! workbook, the shared-string count read first, the sheet read cell by cell and never as a dense
//! range, rows, columns, cells and bytes counted as they come — is `shikong_formats::table` (the
//! desktop's import reads XLSX through it too); here its errors become the gazetteer's, which
//! the server answers as 400 or 413 naming file, sheet, row and column.

use shikong_formats::table::Cell;
use shikong_formats::{FormatError, Limits, Location, column_letters};

use crate::error::{GazetteerError, Result};
use crate::tables::Table;

/// Reads CSV (UTF-8 or GBK) or XLSX bytes within `limits` (see [`Limits::table`]).
pub fn read_table_with(bytes: &[u8], name: &str, limits: &Limits) -> Result<Table> {
    let t = shikong_formats::table::read_table(bytes, name, limits).map_err(table_error)?;
    let rows = t.rows.into_iter().map(|r| r.into_iter().map(Cell::into_text).collect()).collect();
    Ok(Table { headers: t.headers, rows })
}

/// A table the reader refused: over a limit ([`GazetteerError::TooLarge`]) or unreadable
/// ([`GazetteerError::Table`]); a sheet's cell is named by its row and column letters.
fn table_error(e: FormatError) -> GazetteerError {
    let row = e.location.and_then(Location::row);
    let field = e.field.or(match e.location {
        Some(Location::Cell { column, .. }) => Some(column_letters(column)),
        _ => None,
    });
    match e.limit {
        Some(exceeded) => GazetteerError::TooLarge { file: e.file, sheet: e.sheet, row, field, exceeded },
        None => {
            let message = match e.sheet {
                Some(s) => format!("sheet `{s}`: {}", e.message),
                None => e.message,
            };
            GazetteerError::Table { file: e.file, row, field, message }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use shikong_formats::limits::Limit;
    use shikong_formats::limits::hostile::{Entry, xlsx};

    use super::*;

    fn read(bytes: &[u8]) -> Result<Table> {
        read_table_with(bytes, "upload.xlsx", &Limits::table())
    }

    const INLINE: &str = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>地址</t></is></c><c r="B1" t="inlineStr"><is><t>名称</t></is></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>武汉市洪山区</t></is></c></row>"#;

    #[test]
    fn a_small_workbook_reads_as_text() {
        let t = read(&xlsx(Some("A1:B3"), INLINE, None, vec![])).unwrap();
        assert_eq!(t.headers, ["地址", "名称"]);
        assert_eq!(t.rows, [vec!["", ""], vec!["武汉市洪山区", ""]]);
        let e = read(&xlsx(None, "", None, vec![])).unwrap_err();
        assert!(e.is_bad_input() && e.exceeded().is_none());
        assert_eq!(e.to_string(), "upload.xlsx: sheet `Sheet1`: the sheet is empty");
    }

    /// The formats' errors keep the gazetteer's shape: sheet, row and column (`XFD`) as fields
    /// the server's problem+json carries, the limit typed (the reader's own tests are in
    /// `shikong_formats::xlsx`).
    #[test]
    fn limits_are_refused_as_too_large_naming_sheet_row_and_column() {
        let cell = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>地址</t></is></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#;
        let e = read(&xlsx(Some("A1:XFD1048576"), cell, None, vec![])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "upload.xlsx, sheet `Sheet1`: its <dimension ref=\"A1:XFD1048576\"> declares 1048575 rows; the limit is 1000000 (table-rows)"
        );
        assert!(e.exceeded().expect("typed").declared);
        let t = Instant::now();
        let e = read(&xlsx(None, cell, None, vec![])).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
        assert_eq!(
            e.to_string(),
            "upload.xlsx, sheet `Sheet1`, row 1048576, column `XFD`: the table has more than 1000000 rows; the limit is 1000000 (table-rows)"
        );
        let GazetteerError::TooLarge { sheet, row, field, .. } = &e else { panic!("{e:?}") };
        assert_eq!((sheet.as_deref(), *row, field.as_deref()), (Some("Sheet1"), Some(1_048_576), Some("XFD")));
        let bomb = xlsx(None, INLINE, Some(Entry::bomb("xl/sharedStrings.xml", b' ', 1024).declaring(100)), vec![]);
        let e = read(&bomb).unwrap_err();
        assert_eq!(e.exceeded().map(|x| x.limit), Some(Limit::DecompressedBytes), "{e}");
        let small = Limits { table_columns: 3, field_bytes: 10, ..Limits::table() };
        let csv = |s: &str| read_table_with(s.as_bytes(), "upload.csv", &small);
        assert_eq!(
            csv("a,b\n1,2,3,4\n").unwrap_err().to_string(),
            "upload.csv, row 2, column `#4`: the row has 4 columns; the limit is 3 (table-columns)"
        );
        assert_eq!(
            csv("a,地址\n1,武汉市洪山区\n").unwrap_err().to_string(),
            "upload.csv, row 2, column `地址`: the field has 18 bytes; the limit is 10 (field-bytes)"
        );
    }
}
