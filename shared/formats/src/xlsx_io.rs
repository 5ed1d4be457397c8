//! XLSX as a [`Source`]: one sheet read like a CSV — the first row is the header, the geometry
//! is a WKT column or longitude/latitude columns found by [`crate::columns`], every other column
//! a property — but with the sheet's types kept (numbers, booleans, dates), so the importer does
//! not have to guess them back from text. The workbook is read whole at open, within the table
//! [`crate::Limits`] and the XLSX inflation budget ([`crate::xlsx`]); empty rows are skipped
//! (people leave them), and every error names the file, the sheet, the row and the column.

use std::path::Path;

use jiff::tz::{Offset, TimeZone};
use shikong_model::{Coord, Crs, Geometry, Value, wkt};

use crate::columns::{Axis, GeometryColumns, check_lon_lat, geometry_columns};
use crate::error::{FormatError, Location, Result};
use crate::limits::{Exceeded, Limit, MAX_XLSX_BYTES, check_vertices};
use crate::table::{Cell, Table};
use crate::{Progress, RawValue, Record, Source, SourceOptions};

pub(crate) struct XlsxSource {
    name: String,
    sheet: String,
    table: Table,
    /// The sheet column of each of the table's columns (columns without a header are dropped).
    columns: Vec<u32>,
    geometry: GeometryColumns,
    crs: Crs,
    vertices: u64,
    progress: Progress,
}

impl XlsxSource {
    /// Reads the sheet `opts.layer` names (default: the first) of the workbook at `path`.
    pub(crate) fn open(path: &Path, opts: &SourceOptions) -> Result<Self> {
        let name = path.display().to_string();
        let budget = opts.limits.zip_bytes.min(MAX_XLSX_BYTES);
        let size = std::fs::metadata(path).map_err(|e| FormatError::file(&name, e.to_string()))?.len();
        if size > budget {
            let x = Exceeded::actual(Limit::UploadBytes, "the workbook", size, budget);
            return Err(FormatError::exceeded(&name, None, x));
        }
        let bytes = std::fs::read(path).map_err(|e| FormatError::file(&name, e.to_string()))?;
        let limits = crate::Limits { zip_bytes: budget, ..opts.limits.clone() };
        let wanted = opts.layer.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let mut table = crate::xlsx::read_sheet(&bytes, &name, wanted, &limits)?;
        let sheet = table.sheet.clone().unwrap_or_default();
        // Columns without a header: dropped when empty, else the user has to name them.
        let mut columns = Vec::with_capacity(table.headers.len());
        for (j, h) in table.headers.iter().enumerate() {
            let column = table.first_column + j as u32;
            if !h.trim().is_empty() {
                columns.push(column);
            } else if table.rows.iter().any(|r| r.get(j).is_some_and(|c| !c.is_blank())) {
                let at = Location::Cell { row: table.header_row, column };
                return Err(FormatError::at(&name, at, "a column with values has no header").in_sheet(sheet));
            }
        }
        if columns.len() < table.headers.len() {
            let keep: Vec<bool> = table.headers.iter().map(|h| !h.trim().is_empty()).collect();
            let keep_of = |v: Vec<Cell>| v.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c).collect();
            table.headers.retain(|h| !h.trim().is_empty());
            for r in &mut table.rows {
                *r = keep_of(std::mem::take(r));
            }
        }
        let o = opts;
        let geometry =
            geometry_columns(&table.headers, o.wkt_column.as_deref(), o.lon_column.as_deref(), o.lat_column.as_deref())
                .map_err(|m| FormatError::file(&name, m).in_sheet(sheet.as_str()))?;
        Ok(XlsxSource {
            name,
            sheet,
            progress: Progress::new(table.rows.len() as u64),
            table,
            columns,
            geometry,
            crs: opts.crs.unwrap_or(Crs::CGCS2000),
            vertices: opts.limits.geometry_vertices,
        })
    }

    /// An error at cell (`i`, `j`) of the data, in the column's name.
    fn error(&self, i: usize, j: usize, message: impl Into<String>) -> FormatError {
        let at = Location::Cell { row: self.table.row_number(i), column: self.columns[j] };
        FormatError::at(&self.name, at, message).field(&self.table.headers[j]).in_sheet(self.sheet.as_str())
    }

    fn number(&self, i: usize, j: usize) -> Result<f64> {
        match &self.table.rows[i][j] {
            Cell::Number(f) => Ok(*f),
            Cell::Integer(n) => Ok(*n as f64),
            Cell::Text(s) => s.trim().parse::<f64>().map_err(|_| self.error(i, j, format!("`{s}` is not a number"))),
            other => Err(self.error(i, j, format!("`{}` is not a number", other.to_text()))),
        }
    }

    fn geometry(&self, i: usize) -> Result<Option<Geometry>> {
        let row = &self.table.rows[i];
        match self.geometry {
            GeometryColumns::None => Ok(None),
            GeometryColumns::Wkt(j) => match &row[j] {
                c if c.is_blank() => Ok(None),
                Cell::Text(s) => {
                    let g = wkt::parse(s.trim()).map_err(|e| self.error(i, j, e.to_string()))?;
                    check_vertices(&g, self.vertices, "the geometry").map_err(|x| {
                        let mut e = self.error(i, j, x.to_string());
                        e.limit = Some(Box::new(x));
                        e
                    })?;
                    Ok(Some(g))
                }
                other => Err(self.error(i, j, format!("`{}` is not WKT", other.to_text()))),
            },
            GeometryColumns::LonLat { lon, lat } => {
                if row[lon].is_blank() && row[lat].is_blank() {
                    return Ok(None);
                }
                let (x, y) = (self.number(i, lon)?, self.number(i, lat)?);
                check_lon_lat(self.crs, x, y)
                    .map_err(|(axis, m)| self.error(i, if axis == Axis::Lon { lon } else { lat }, m))?;
                Ok(Some(Geometry::Point(Coord::xy(x, y))))
            }
        }
    }

    /// A cell as a property value: text stays text (typed by the importer), the sheet's numbers,
    /// booleans and dates are typed values; an integral number is an integer (Excel stores
    /// every number as a double). A date and time of day is read in Beijing time, the zone the
    /// platform shows times in.
    fn value(&self, i: usize, j: usize) -> Result<RawValue> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        Ok(match &self.table.rows[i][j] {
            Cell::Empty => RawValue::Typed(Value::Null),
            Cell::Text(s) => RawValue::Text(s.clone()),
            Cell::Number(f) if f.fract() == 0.0 && f.abs() < EXACT => RawValue::Typed(Value::Integer(*f as i64)),
            Cell::Number(f) => RawValue::Typed(Value::Real(*f)),
            Cell::Integer(n) => RawValue::Typed(Value::Integer(*n)),
            Cell::Bool(b) => RawValue::Typed(Value::Bool(*b)),
            Cell::Date(d) => RawValue::Typed(Value::Date(*d)),
            Cell::DateTime(t) => {
                let beijing = TimeZone::fixed(Offset::constant(8));
                let ts = beijing.to_timestamp(*t).map_err(|e| self.error(i, j, e.to_string()))?;
                RawValue::Typed(Value::DateTime(ts))
            }
            Cell::Error(e) => return Err(self.error(i, j, format!("the cell holds the spreadsheet error `{e}`"))),
        })
    }
}

impl Source for XlsxSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn sheet(&self) -> Option<&str> {
        Some(&self.sheet)
    }

    fn crs(&self) -> Crs {
        self.crs
    }

    fn progress(&self) -> Progress {
        self.progress.clone()
    }

    fn read(&mut self, on_record: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        for i in 0..self.table.rows.len() {
            self.progress.set(i as u64);
            if self.table.rows[i].iter().all(Cell::is_blank) {
                continue;
            }
            let geometry = self.geometry(i)?;
            let mut properties = Vec::with_capacity(self.table.headers.len());
            for (j, h) in self.table.headers.iter().enumerate() {
                if !self.geometry.holds(j) {
                    properties.push((h.clone(), self.value(i, j)?));
                }
            }
            on_record(Record { location: Location::Line(self.table.row_number(i)), geometry, properties })?;
        }
        self.progress.set(self.progress.total);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::hostile::xlsx;

    fn inline(r: u32, c: &str, s: &str) -> String {
        format!(r#"<c r="{c}{r}" t="inlineStr"><is><t>{s}</t></is></c>"#)
    }

    fn num(r: u32, c: &str, v: &str) -> String {
        format!(r#"<c r="{c}{r}"><v>{v}</v></c>"#)
    }

    fn read(data: &str, opts: SourceOptions) -> Result<(Option<String>, Vec<Record>)> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("点.xlsx");
        std::fs::write(&p, xlsx(None, data, None, vec![])).unwrap();
        let mut s = crate::open(&p, &opts)?;
        let mut out = vec![];
        s.read(&mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok((s.sheet().map(str::to_owned), out))
    }

    /// A `<row>` of `cells`.
    fn row(r: u32, cells: &[String]) -> String {
        format!("<row r=\"{r}\">{}</row>", cells.concat())
    }

    /// Reading `data` fails with a message ending in `tail`.
    fn fails_with(data: &str, opts: SourceOptions, tail: &str) {
        let e = read(data, opts).unwrap_err().to_string();
        assert!(e.ends_with(tail), "{e}");
    }

    #[test]
    fn a_sheet_reads_like_a_csv_with_typed_cells() {
        let header =
            row(2, &[inline(2, "B", "名称"), inline(2, "C", "经度"), inline(2, "D", "纬度"), inline(2, "F", "数量")]);
        let a = row(3, &[inline(3, "B", "井盖"), num(3, "C", "114.3"), inline(3, "D", "30.5"), num(3, "F", "3")]);
        let b = row(5, &[inline(5, "B", "无坐标"), num(5, "F", "2.5")]);
        let (sheet, r) = read(&format!("{header}{a}<row r=\"4\"></row>{b}"), SourceOptions::default()).unwrap();
        assert_eq!(sheet.as_deref(), Some("Sheet1"));
        assert_eq!(r.len(), 2, "the empty row is skipped");
        assert_eq!((r[0].location, r[1].location), (Location::Line(3), Location::Line(5)));
        assert_eq!(r[0].geometry, Some(Geometry::Point(Coord::xy(114.3, 30.5))));
        assert_eq!(
            r[0].properties,
            [
                ("名称".to_owned(), RawValue::Text("井盖".into())),
                ("数量".to_owned(), RawValue::Typed(Value::Integer(3)))
            ]
        );
        assert_eq!(r[1].geometry, None);
        assert_eq!(r[1].properties[1].1, RawValue::Typed(Value::Real(2.5)));
    }

    #[test]
    fn bad_cells_are_named_by_sheet_row_and_column() {
        let header = row(1, &[inline(1, "A", "名称"), inline(1, "B", "x"), inline(1, "C", "y")]);
        let bad = row(2, &[inline(2, "A", "甲"), inline(2, "B", "东经"), num(2, "C", "30")]);
        fails_with(
            &format!("{header}{bad}"),
            SourceOptions::default(),
            "点.xlsx, sheet `Sheet1`, row 2, column B, field `x`: `东经` is not a number",
        );
        let gk = row(2, &[inline(2, "A", "甲"), num(2, "B", "38512345.6"), num(2, "C", "3378901.2")]);
        let e = read(&format!("{header}{gk}"), SourceOptions::default()).unwrap_err();
        assert!(e.to_string().contains("row 2, column B, field `x`: `38512345.6` is not a longitude"), "{e}");
        // The same metres with their CRS given (as `shikong import --crs` does): read as they are.
        let opts = SourceOptions { crs: Some(Crs::Epsg(4526)), ..SourceOptions::default() };
        let (_, r) = read(&format!("{header}{gk}"), opts).unwrap();
        assert_eq!(r[0].geometry, Some(Geometry::Point(Coord::xy(38_512_345.6, 3_378_901.2))));
        let err = row(2, &[r#"<c r="A2" t="e"><v>#N/A</v></c>"#.to_owned(), num(2, "B", "114"), num(2, "C", "30")]);
        fails_with(
            &format!("{header}{err}"),
            SourceOptions::default(),
            "row 2, column A, field `名称`: the cell holds the spreadsheet error `#N/A`",
        );
        let nameless =
            format!("{}{}", row(1, &[inline(1, "A", "名称"), inline(1, "C", "y")]), row(2, &[num(2, "B", "1")]));
        fails_with(
            &nameless,
            SourceOptions::default(),
            "sheet `Sheet1`, row 1, column B: a column with values has no header",
        );
        let opts =
            SourceOptions {
                lon_column: Some("东".into()), lat_column: Some("北".into()), ..SourceOptions::default()
            };
        fails_with(&header, opts, "sheet `Sheet1`: no longitude column named `东` (columns: 名称, x, y)");
    }
}
