//! The 统计 view's commands: the layers to count, the statistics of one (`GET /collections/{c}/stats`
//! as of the time slider's instant), and the exports the user asks for — the table as XLSX
//! (`rust_xlsxwriter`) or CSV (UTF-8 with a BOM, so Excel on Chinese Windows reads it), and the
//! chart as PNG (drawn by the window from its SVG, written here).
//!
//! Exports take the answer the window shows (not a new request), so a file always holds the
//! numbers on screen. Paths are absolute; a file is written to a temporary name in the same folder
//! and renamed, so nobody reads half an export.

use std::path::{Path, PathBuf};

use serde::Serialize;
use shikong_app_core::AppError;
use shikong_protocol::api::stats::LayerStats;
use shikong_sync_client::StatsQuery;
use tauri::{Manager as _, State};

use crate::commands::{Doing, Shell, blocking};
use crate::connectivity::on_server;

/// A layer the view offers.
#[derive(Debug, Clone, Serialize)]
pub struct StatsLayer {
    pub name: String,
    pub title: String,
    /// The GeoJSON geometry type (`Polygon`, `Point`, …): polygon layers can be divisions.
    pub geometry_type: String,
}

/// A written export.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub path: String,
    pub bytes: u64,
    /// Data rows written (groups, without the header and the total).
    pub rows: usize,
}

/// The layers the user may read.
#[tauri::command]
pub async fn stats_layers(shell: State<'_, Shell>) -> Result<Vec<StatsLayer>, String> {
    let list = on_server(&shell, Doing::Read, |d| Ok(d.server_client()?.readable_layers()?)).await?;
    Ok(list.into_iter().map(|c| StatsLayer { name: c.id, title: c.title, geometry_type: c.geometry_type }).collect())
}

/// The statistics of `layer`.
#[tauri::command]
#[allow(clippy::too_many_arguments)] // one argument per control of the view
pub async fn stats_query(
    shell: State<'_, Shell>,
    layer: String,
    group_by: Vec<String>,
    sums: Vec<String>,
    divisions: Option<String>,
    filter: Option<String>,
    as_of: Option<String>,
    geometry: bool,
) -> Result<LayerStats, String> {
    let q = StatsQuery { group_by, sums, divisions, filter, as_of, geometry };
    on_server(&shell, Doing::Read, move |d| Ok(d.server_client()?.layer_stats(&layer, &q)?)).await
}

/// Where exports go by default: `统计` in the user's documents folder (else home).
#[tauri::command]
pub fn stats_folder(app: tauri::AppHandle) -> String {
    let paths = app.path();
    paths
        .document_dir()
        .ok()
        .filter(|d| d.is_dir())
        .or_else(|| paths.home_dir().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Writes `stats` as a table: `format` is `xlsx` or `csv`.
#[tauri::command]
pub async fn stats_export(
    shell: State<'_, Shell>,
    stats: LayerStats,
    format: String,
    path: String,
) -> Result<Exported, String> {
    blocking(&shell, Doing::Save, move |_| {
        let path = target(&path, &format)?;
        let t = table(&stats);
        let bytes = match format.as_str() {
            "xlsx" => xlsx(&t, &stats).map_err(|e| input("format", format!("XLSX: {e}")))?,
            "csv" => csv(&t),
            other => return Err(input("format", format!("`{other}` 不是 xlsx 或 csv / is not xlsx or csv"))),
        };
        write_file(&path, &bytes)?;
        Ok(Exported { path: path.display().to_string(), bytes: bytes.len() as u64, rows: t.rows.len() })
    })
    .await
    .map(|r| r.1)
}

/// Writes the chart's PNG (drawn by the window).
#[tauri::command]
pub async fn stats_png(shell: State<'_, Shell>, png: Vec<u8>, path: String) -> Result<Exported, String> {
    blocking(&shell, Doing::Save, move |_| {
        let path = target(&path, "png")?;
        if png.len() < 24 || !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(input("png", "不是 PNG 图像 / not a PNG image".into()));
        }
        write_file(&path, &png)?;
        Ok(Exported { path: path.display().to_string(), bytes: png.len() as u64, rows: 0 })
    })
    .await
    .map(|r| r.1)
}

fn input(field: &str, message: String) -> AppError {
    AppError::Input { field: field.into(), message }
}

/// The file to write: `path` (absolute) with the format's extension.
fn target(path: &str, ext: &str) -> Result<PathBuf, AppError> {
    let p = path.trim();
    if p.is_empty() {
        return Err(input("path", "请填写输出文件 / no output file given".into()));
    }
    let mut p = PathBuf::from(p);
    if !p.is_absolute() {
        return Err(input("path", format!("`{}` 不是绝对路径 / is not an absolute path", p.display())));
    }
    if p.file_name().is_none() {
        return Err(input("path", format!("`{}` 没有文件名 / names no file", p.display())));
    }
    if !p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)) {
        let mut name = p.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{ext}"));
        p.set_file_name(name);
    }
    Ok(p)
}

/// Writes through a temporary file in the same folder.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let io = |e| AppError::Io { path: path.to_owned(), source: e };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(input("path", format!("文件夹不存在 / the folder does not exist: {}", dir.display())));
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".part");
    let tmp = dir.join(tmp_name);
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// A cell of the exported table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
}

/// The exported table: a header, one row per group, a total row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub total: Vec<Cell>,
}

/// The title of a grouping term, from the layer's fields (`安装日期:month` → `安装日期（月）`).
fn term_title(stats: &LayerStats, term: &str) -> String {
    if term == "division" {
        return "行政区划".into();
    }
    let (name, unit) = term.rsplit_once(':').map_or((term, None), |(n, u)| (n, Some(u)));
    let title = stats.fields.iter().find(|f| f.name == name).map_or(name, |f| f.title.as_str());
    match unit {
        Some("year") => format!("{title}（年）"),
        Some("month") => format!("{title}（月）"),
        Some("week") => format!("{title}（周）"),
        Some("day") => format!("{title}（日）"),
        _ => title.to_owned(),
    }
}

/// The rows of an export: per term its code (when it differs from what is shown) and its label,
/// then the count and the sums.
pub fn table(stats: &LayerStats) -> Table {
    let n = stats.group_by.len();
    // A term gets a code column when some label differs from its key (code lists, divisions).
    let coded: Vec<bool> = (0..n).map(|i| stats.groups.iter().any(|g| g.key.get(i) != g.label.get(i))).collect();
    let mut header = Vec::new();
    for (i, term) in stats.group_by.iter().enumerate() {
        let title = term_title(stats, term);
        if coded[i] {
            header.push(format!("{title}代码"));
        }
        header.push(title);
    }
    if n == 0 {
        header.push("图层".into());
    }
    header.push("数量".into());
    for s in &stats.sums {
        let title = stats.fields.iter().find(|f| &f.name == s).map_or(s.as_str(), |f| f.title.as_str());
        header.push(format!("{title}合计"));
    }
    let none = || Cell::Text("（无）".into());
    let rows = stats
        .groups
        .iter()
        .map(|g| {
            let mut row = Vec::new();
            for (i, &with_code) in coded.iter().enumerate() {
                let key = g.key.get(i).cloned().flatten();
                if with_code {
                    row.push(key.clone().map_or_else(none, Cell::Text));
                }
                row.push(g.label.get(i).cloned().flatten().or(key).map_or_else(none, Cell::Text));
            }
            if n == 0 {
                row.push(Cell::Text(stats.title.clone()));
            }
            row.push(Cell::Number(g.count as f64));
            row.extend(g.sums.iter().map(|s| Cell::Number(*s)));
            row
        })
        .collect();
    let lead = header.len() - 1 - stats.sums.len();
    let mut total = vec![Cell::Text(String::new()); lead];
    if let Some(first) = total.first_mut() {
        *first = Cell::Text("合计".into());
    }
    total.push(Cell::Number(stats.count as f64));
    total.extend(stats.totals.iter().map(|s| Cell::Number(*s)));
    Table { header, rows, total }
}

fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x}") }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// The table as CSV: UTF-8 with a BOM, CRLF line ends (what Excel expects).
pub fn csv(t: &Table) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let line = |cells: Vec<String>| cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\r\n";
    out.push_str(&line(t.header.clone()));
    for row in t.rows.iter().chain(std::iter::once(&t.total)) {
        out.push_str(&line(
            row.iter()
                .map(|c| match c {
                    Cell::Text(s) => s.clone(),
                    Cell::Number(x) => number_text(*x),
                })
                .collect(),
        ));
    }
    out.into_bytes()
}

/// The table as an XLSX workbook: one sheet `统计` (header in bold, numbers as numbers, the total
/// in bold), and a note of what was counted under it.
pub fn xlsx(t: &Table, stats: &LayerStats) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("统计")?;
    let bold = Format::new().set_bold();
    for (c, h) in t.header.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, h, &bold)?;
        sheet.set_column_width(c as u16, 16)?;
    }
    let mut r = 1u32;
    for row in &t.rows {
        for (c, cell) in row.iter().enumerate() {
            match cell {
                Cell::Text(s) => sheet.write_string(r, c as u16, s)?,
                Cell::Number(x) => sheet.write_number(r, c as u16, *x)?,
            };
        }
        r += 1;
    }
    for (c, cell) in t.total.iter().enumerate() {
        match cell {
            Cell::Text(s) => sheet.write_string_with_format(r, c as u16, s, &bold)?,
            Cell::Number(x) => sheet.write_number_with_format(r, c as u16, *x, &bold)?,
        };
    }
    let when = stats.as_of.as_deref().unwrap_or("当前");
    let note = format!("图层：{}（{}）；时点：{when}", stats.title, stats.layer);
    sheet.write_string(r + 2, 0, &note)?;
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_protocol::api::stats::{StatsField, StatsFieldUse, StatsGroup};

    fn sample() -> LayerStats {
        let g = |k: Option<&str>, l: Option<&str>, count, sum| StatsGroup {
            key: vec![k.map(str::to_owned)],
            label: vec![l.map(str::to_owned)],
            count,
            sums: vec![sum],
            geometry: None,
        };
        LayerStats {
            layer: "manhole".into(),
            title: "井盖".into(),
            group_by: vec!["状态".into()],
            sums: vec!["埋深".into()],
            divisions: None,
            as_of: None,
            count: 6,
            totals: vec![7.5],
            groups: vec![
                g(Some("1"), Some("完好"), 4, 5.0),
                g(Some("2"), Some("破损, \"旧\""), 1, 2.5),
                g(None, None, 1, 0.0),
            ],
            fields: vec![
                StatsField {
                    name: "状态".into(), title: "状态".into(), uses: vec![StatsFieldUse::Class], coded: true
                },
                StatsField {
                    name: "埋深".into(),
                    title: "埋深（米）".into(),
                    uses: vec![StatsFieldUse::Number],
                    coded: false,
                },
            ],
        }
    }

    #[test]
    fn csv_has_a_bom_codes_labels_counts_sums_and_a_total() {
        let text = String::from_utf8(csv(&table(&sample()))).unwrap();
        assert_eq!(
            text,
            "\u{feff}状态代码,状态,数量,埋深（米）合计\r\n1,完好,4,5\r\n2,\"破损, \"\"旧\"\"\",1,2.5\r\n（无）,（无）,1,0\r\n合计,,6,7.5\r\n"
        );
    }

    #[test]
    fn xlsx_is_a_workbook_with_the_sheet() {
        let s = sample();
        let bytes = xlsx(&table(&s), &s).unwrap();
        assert!(bytes.starts_with(b"PK\x03\x04"), "a zip container");
        assert!(bytes.windows(b"xl/worksheets/sheet1.xml".len()).any(|w| w == b"xl/worksheets/sheet1.xml"));
    }

    #[test]
    fn targets_get_their_extension_and_must_be_absolute() {
        let root = std::env::temp_dir();
        let p = target(root.join("统计").to_str().unwrap(), "xlsx").unwrap();
        assert_eq!(p.extension().unwrap(), "xlsx");
        let p = target(root.join("a.CSV").to_str().unwrap(), "csv").unwrap();
        assert_eq!(p.file_name().unwrap(), "a.CSV");
        assert!(target("relative.csv", "csv").is_err());
        assert!(target("  ", "csv").is_err());
    }
}
