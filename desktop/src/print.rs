//! Printing the map (打印): a layout sheet with title, map, legend, scale bar, north arrow, date
//! and CRS note, written as PDF (here, with `krilla`) or PNG (composed by the window on a canvas,
//! written here). The sheet's own words follow the app's language (the job's `lang`, which the
//! window sends); titles are printed as the user and the layers give them.
//!
//! The sheet's geometry is [`layout`] (pure); both renderers draw its display list, so the preview,
//! the PNG and the PDF agree. In the PDF the map is an embedded image and everything else is real
//! text (a system CJK font, subset, with a ToUnicode map so the text can be searched and copied)
//! and vector shapes. The window renders the map at the print resolution (an offscreen MapLibre
//! map of the frame's pixel size) and sends its PNG as the raw body of the command, after a
//! length-prefixed JSON header (`u32` little-endian length, then the JSON).

pub mod layout;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Size, Transform};
use krilla::image::Image;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule, LineCap, LineJoin, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use serde::{Deserialize, Serialize};
use skrifa::MetadataProvider as _;
use tauri::Manager as _;
use tauri::ipc::{InvokeBody, Request};

use layout::{Anchor, Item, Job, Measure, Rgba, Sheet};

/// Fonts tried first, by family name: common Simplified Chinese faces on Linux, Windows, macOS.
const CJK_FAMILIES: &[&str] = &[
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "SimHei",
    "Droid Sans Fallback",
    "Noto Serif CJK SC",
    "AR PL UMing CN",
    "SimSun",
];

/// What went wrong, worded for the user (zh-CN, then English).
#[derive(Debug, Clone, PartialEq)]
pub enum PrintError {
    /// No font with Chinese characters among the system's.
    NoCjkFont {
        faces: usize,
    },
    Layout(layout::LayoutError),
    /// The output path the user typed.
    Path(String),
    /// The command's body (the window sent something malformed).
    Body(String),
    Image(String),
    Pdf(String),
    Write {
        path: PathBuf,
        reason: String,
    },
}

impl std::fmt::Display for PrintError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrintError::NoCjkFont { faces } => write!(
                f,
                "找不到中文字体：系统的 {faces} 个字体中没有含中文字形的（请安装 Noto Sans CJK、思源黑体或文泉驿微米黑，\
                 Debian: fonts-noto-cjk 或 fonts-wqy-microhei）/ no CJK font among the system's {faces} fonts \
                 (tried {})",
                CJK_FAMILIES.join(", ")
            ),
            PrintError::Layout(e) => write!(f, "{e}"),
            PrintError::Path(s) => write!(f, "输出文件 / output file: {s}"),
            PrintError::Body(s) => write!(f, "打印请求无效 / bad print request: {s}"),
            PrintError::Image(s) => write!(f, "地图图像无效 / bad map image: {s}"),
            PrintError::Pdf(s) => write!(f, "生成 PDF 失败 / cannot write the PDF: {s}"),
            PrintError::Write { path, reason } => {
                write!(f, "写入文件失败 / cannot write the file {}: {reason}", path.display())
            }
        }
    }
}

impl From<layout::LayoutError> for PrintError {
    fn from(e: layout::LayoutError) -> Self {
        PrintError::Layout(e)
    }
}

/// The CJK font the PDF uses (and the layout measures with).
#[derive(Debug, Clone)]
pub struct CjkFont {
    pub family: String,
    pub path: Option<PathBuf>,
    data: Arc<Vec<u8>>,
    index: u32,
}

impl CjkFont {
    fn font_ref(&self) -> Option<skrifa::FontRef<'_>> {
        skrifa::FontRef::from_index(&self.data, self.index).ok()
    }

    fn covers_chinese(data: &[u8], index: u32) -> bool {
        skrifa::FontRef::from_index(data, index)
            .map(|f| {
                let cmap = f.charmap();
                "中文地图比例尺".chars().all(|c| cmap.map(c).is_some())
            })
            .unwrap_or(false)
    }
}

impl Measure for CjkFont {
    fn width(&self, text: &str, size: f64) -> f64 {
        let Some(f) = self.font_ref() else { return layout::Approx.width(text, size) };
        let cmap = f.charmap();
        let metrics = f.glyph_metrics(skrifa::instance::Size::new(1.0), skrifa::instance::LocationRef::default());
        text.chars()
            .map(|c| {
                let g = cmap.map(c).unwrap_or_default();
                f64::from(metrics.advance_width(g).unwrap_or(0.5))
            })
            .sum::<f64>()
            * size
    }
}

/// Looks for a CJK font: the named families first, then any face that has Chinese glyphs.
pub fn find_cjk_font() -> Result<CjkFont, PrintError> {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    let faces: Vec<&fontdb::FaceInfo> = db.faces().collect();
    let named = CJK_FAMILIES
        .iter()
        .find_map(|want| faces.iter().find(|f| f.families.iter().any(|(n, _)| n.eq_ignore_ascii_case(want))));
    let load = |f: &fontdb::FaceInfo| -> Option<CjkFont> {
        // Checked in place (memory-mapped); only the chosen face's file is copied.
        if !db.with_face_data(f.id, CjkFont::covers_chinese)? {
            return None;
        }
        let (data, index) = db.with_face_data(f.id, |d, i| (d.to_vec(), i))?;
        let path = match &f.source {
            fontdb::Source::File(p) | fontdb::Source::SharedFile(p, _) => Some(p.clone()),
            fontdb::Source::Binary(_) => None,
        };
        let family = f.families.first().map_or_else(|| f.post_script_name.clone(), |(n, _)| n.clone());
        Some(CjkFont { family, path, data: Arc::new(data), index })
    };
    named
        .and_then(|f| load(f))
        .or_else(|| faces.iter().filter(|f| f.style == fontdb::Style::Normal).find_map(|f| load(f)))
        .ok_or(PrintError::NoCjkFont { faces: faces.len() })
}

/// The font, looked for once per run.
fn cjk_font() -> Result<&'static CjkFont, PrintError> {
    static FONT: OnceLock<Result<CjkFont, PrintError>> = OnceLock::new();
    FONT.get_or_init(find_cjk_font).as_ref().map_err(Clone::clone)
}

/// The file to write: `path` with the format's extension (a `.pdf`/`.png` one is replaced, any
/// other kept and the extension added). The path must be absolute (the window has no folder of
/// its own).
pub fn target(path: &str, ext: &str) -> Result<PathBuf, PrintError> {
    let p = path.trim();
    if p.is_empty() {
        return Err(PrintError::Path("请填写输出文件 / no output file given".into()));
    }
    let mut p = PathBuf::from(p);
    if !p.is_absolute() {
        return Err(PrintError::Path(format!("`{}` 不是绝对路径 / is not an absolute path", p.display())));
    }
    if p.file_name().is_none() {
        return Err(PrintError::Path(format!("`{}` 没有文件名 / names no file", p.display())));
    }
    let known = p
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["pdf", "png"].contains(&e.to_ascii_lowercase().as_str()));
    if known {
        p.set_extension(ext);
    } else {
        let mut name = p.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{ext}"));
        p.set_file_name(name);
    }
    Ok(p)
}

/// Writes `bytes` to `path` through a temporary file in the same folder (a reader never sees a
/// half-written print).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PrintError> {
    let fail = |e: std::io::Error| PrintError::Write { path: path.to_owned(), reason: e.to_string() };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(PrintError::Write {
            path: path.to_owned(),
            reason: "文件夹不存在 / the folder does not exist".into(),
        });
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".part");
    let tmp = dir.join(tmp_name);
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

/// Splits a command body into its JSON header and the bytes after it.
pub fn split_body(body: &[u8]) -> Result<(&[u8], &[u8]), PrintError> {
    let len = body.get(..4).ok_or_else(|| PrintError::Body("shorter than its length prefix".into()))?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let rest = &body[4..];
    if rest.len() < len {
        return Err(PrintError::Body(format!("header of {len} bytes, {} sent", rest.len())));
    }
    Ok(rest.split_at(len))
}

/// A PNG's width and height (its IHDR chunk).
pub fn png_size(png: &[u8]) -> Result<(u32, u32), PrintError> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || !png.starts_with(SIGNATURE) || &png[12..16] != b"IHDR" {
        return Err(PrintError::Image("not a PNG".into()));
    }
    let be = |i: usize| u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
    Ok((be(16), be(20)))
}

fn norm(v: f64) -> NormalizedF32 {
    NormalizedF32::new(v.clamp(0.0, 1.0) as f32).unwrap_or(NormalizedF32::ONE)
}

fn fill(c: Rgba) -> Fill {
    Fill { paint: rgb::Color::new(c.0, c.1, c.2).into(), opacity: norm(c.3), rule: FillRule::NonZero }
}

fn stroke(c: Rgba, width: f64) -> Stroke {
    Stroke {
        paint: rgb::Color::new(c.0, c.1, c.2).into(),
        width: width as f32,
        opacity: norm(c.3),
        line_cap: LineCap::Butt,
        line_join: LineJoin::Miter,
        ..Stroke::default()
    }
}

fn shape(s: &mut Surface<'_>, path: Option<krilla::geom::Path>, f: Option<Rgba>, st: Option<Rgba>, width: f64) {
    let Some(path) = path else { return };
    if f.is_none() && st.is_none() {
        return;
    }
    s.set_fill(f.map(fill));
    s.set_stroke(st.map(|c| stroke(c, width)));
    s.draw_path(&path);
}

fn polyline(points: &[(f64, f64)], close: bool) -> Option<krilla::geom::Path> {
    let mut pb = PathBuilder::new();
    let (first, rest) = points.split_first()?;
    pb.move_to(first.0 as f32, first.1 as f32);
    for p in rest {
        pb.line_to(p.0 as f32, p.1 as f32);
    }
    if close {
        pb.close();
    }
    pb.finish()
}

fn circle(cx: f64, cy: f64, r: f64) -> Option<krilla::geom::Path> {
    // Four cubic quarter arcs.
    const K: f64 = 0.552_284_749_8;
    let (cx, cy, r, k) = (cx as f32, cy as f32, r as f32, (K * r) as f32);
    let mut pb = PathBuilder::new();
    pb.move_to(cx + r, cy);
    pb.cubic_to(cx + r, cy + k, cx + k, cy + r, cx, cy + r);
    pb.cubic_to(cx - k, cy + r, cx - r, cy + k, cx - r, cy);
    pb.cubic_to(cx - r, cy - k, cx - k, cy - r, cx, cy - r);
    pb.cubic_to(cx + k, cy - r, cx + r, cy - k, cx + r, cy);
    pb.close();
    pb.finish()
}

/// The sheet as a one-page PDF: `map_png` in the frame, the rest as text and vector shapes.
pub fn pdf(sheet: &Sheet, map_png: &[u8], font: &CjkFont) -> Result<Vec<u8>, PrintError> {
    png_size(map_png)?;
    let image = Image::from_png(map_png.to_vec().into(), true).map_err(PrintError::Image)?;
    let kfont = Font::new(font.data.clone().into(), font.index)
        .ok_or_else(|| PrintError::Pdf(format!("font {} cannot be read", font.family)))?;
    let pt = 72.0 / layout::MM_PER_INCH;
    let size = PageSettings::from_wh((sheet.width_mm * pt) as f32, (sheet.height_mm * pt) as f32)
        .ok_or_else(|| PrintError::Pdf("empty page".into()))?;
    let mut doc = Document::new();
    {
        let mut page = doc.start_page_with(size);
        let mut s = page.surface();
        // From here on, user space is millimetres from the top left.
        s.push_transform(&Transform::from_scale(pt as f32, pt as f32));
        let f = sheet.frame;
        s.push_transform(&Transform::from_translate(f.x as f32, f.y as f32));
        let frame_size = Size::from_wh(f.w as f32, f.h as f32).ok_or_else(|| PrintError::Pdf("empty frame".into()))?;
        s.draw_image(image, frame_size);
        s.pop();
        for item in &sheet.items {
            match item {
                Item::Text { text, x, y, size, anchor, color, .. } => {
                    let w = font.width(text, *size);
                    let x = match anchor {
                        Anchor::Start => *x,
                        Anchor::Middle => x - w / 2.0,
                        Anchor::End => x - w,
                    };
                    s.set_stroke(None);
                    s.set_fill(Some(fill(*color)));
                    s.draw_text(
                        Point::from_xy(x as f32, *y as f32),
                        kfont.clone(),
                        *size as f32,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Item::Rect { rect, fill: fl, stroke: st, width } => {
                    let r = krilla::geom::Rect::from_xywh(rect.x as f32, rect.y as f32, rect.w as f32, rect.h as f32);
                    let path = r.and_then(|r| {
                        let mut pb = PathBuilder::new();
                        pb.push_rect(r);
                        pb.finish()
                    });
                    shape(&mut s, path, *fl, *st, *width);
                }
                Item::Polygon { points, fill: fl, stroke: st, width } => {
                    shape(&mut s, polyline(points, true), *fl, *st, *width);
                }
                Item::Line { points, stroke: st, width } => {
                    shape(&mut s, polyline(points, false), None, Some(*st), *width)
                }
                Item::Circle { cx, cy, r, fill: fl, stroke: st, width } => {
                    shape(&mut s, circle(*cx, *cy, *r), *fl, *st, *width);
                }
            }
        }
        s.pop();
        s.finish();
        page.finish();
    }
    doc.finish().map_err(|e| PrintError::Pdf(format!("{e:?}")))
}

// ---------------------------------------------------------------------------------------------
// Commands

/// What the print view needs before the first layout.
#[derive(Debug, Clone, Serialize)]
pub struct PrintSetup {
    /// Where prints go by default (the user's documents folder, else home).
    pub folder: String,
    /// The PDF's font family (the canvas draws with it too), if one was found.
    pub font: Option<String>,
    pub font_path: Option<String>,
    /// Why there is none.
    pub font_error: Option<String>,
    pub dpi_min: u32,
    pub dpi_max: u32,
}

/// A written print.
#[derive(Debug, Clone, Serialize)]
pub struct Saved {
    pub path: String,
    pub bytes: u64,
    pub width_px: u32,
    pub height_px: u32,
}

async fn off_main<T: Send + 'static>(f: impl FnOnce() -> Result<T, PrintError> + Send + 'static) -> Result<T, String> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| format!("内部错误 / internal error: {e}"))?
        .map_err(|e| e.to_string())
}

#[tauri::command]
pub async fn print_setup(app: tauri::AppHandle) -> Result<PrintSetup, String> {
    let paths = app.path();
    let folder = paths
        .document_dir()
        .ok()
        .filter(|d| d.is_dir())
        .or_else(|| paths.home_dir().ok())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    off_main(move || {
        let font = cjk_font();
        Ok(PrintSetup {
            folder,
            font: font.as_ref().ok().map(|f| f.family.clone()),
            font_path: font.as_ref().ok().and_then(|f| f.path.as_ref()).map(|p| p.display().to_string()),
            font_error: font.err().map(|e| e.to_string()),
            dpi_min: layout::DPI_MIN,
            dpi_max: layout::DPI_MAX,
        })
    })
    .await
}

/// The sheet for `job`, measured with the PDF's font (an estimate without one).
#[tauri::command]
pub async fn print_layout(job: Job) -> Result<Sheet, String> {
    off_main(move || {
        Ok(match cjk_font() {
            Ok(f) => layout::compose(&job, f)?,
            Err(_) => layout::compose(&job, &layout::Approx)?,
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
struct PdfHeader {
    job: Job,
    path: String,
}

#[derive(Debug, Deserialize)]
struct PngHeader {
    path: String,
}

fn raw(request: &Request<'_>) -> Result<Vec<u8>, String> {
    match request.body() {
        InvokeBody::Raw(b) => Ok(b.clone()),
        InvokeBody::Json(_) => Err(PrintError::Body("expected bytes, got JSON".into()).to_string()),
    }
}

fn header<T: for<'de> Deserialize<'de>>(json: &[u8]) -> Result<T, PrintError> {
    serde_json::from_slice(json).map_err(|e| PrintError::Body(e.to_string()))
}

/// Writes the PDF: body = header `{job, path}` + the map's PNG at the print resolution.
#[tauri::command]
pub async fn print_pdf(request: Request<'_>) -> Result<Saved, String> {
    let body = raw(&request)?;
    off_main(move || {
        let (json, png) = split_body(&body)?;
        let h: PdfHeader = header(json)?;
        let path = target(&h.path, "pdf")?;
        let font = cjk_font()?;
        let sheet = layout::compose(&h.job, font)?;
        let bytes = pdf(&sheet, png, font)?;
        write_file(&path, &bytes)?;
        Ok(Saved {
            path: path.display().to_string(),
            bytes: bytes.len() as u64,
            width_px: sheet.width_px,
            height_px: sheet.height_px,
        })
    })
    .await
}

/// Writes the PNG the window composed: body = header `{path}` + the PNG.
#[tauri::command]
pub async fn print_png(request: Request<'_>) -> Result<Saved, String> {
    let body = raw(&request)?;
    off_main(move || {
        let (json, png) = split_body(&body)?;
        let h: PngHeader = header(json)?;
        let path = target(&h.path, "png")?;
        let (width_px, height_px) = png_size(png)?;
        write_file(&path, png)?;
        Ok(Saved { path: path.display().to_string(), bytes: png.len() as u64, width_px, height_px })
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn target_paths_get_the_format_extension() {
        assert_eq!(target("/tmp/图/专题图", "pdf").unwrap(), PathBuf::from("/tmp/图/专题图.pdf"));
        assert_eq!(target(" /tmp/a.PNG ", "pdf").unwrap(), PathBuf::from("/tmp/a.pdf"));
        assert_eq!(target("/tmp/a.pdf", "png").unwrap(), PathBuf::from("/tmp/a.png"));
        assert_eq!(target("/tmp/v1.2", "png").unwrap(), PathBuf::from("/tmp/v1.2.png"));
        assert!(matches!(target("", "pdf"), Err(PrintError::Path(_))));
        assert!(matches!(target("relative.pdf", "pdf"), Err(PrintError::Path(_))));
    }

    #[test]
    fn no_cjk_font_says_what_to_install() {
        let e = PrintError::NoCjkFont { faces: 3 }.to_string();
        assert!(
            e.starts_with("找不到中文字体") && e.contains("fonts-wqy-microhei") && e.contains("Noto Sans CJK SC"),
            "{e}"
        );
    }

    #[test]
    fn bodies_split_at_their_length_prefix() {
        let mut body = 3u32.to_le_bytes().to_vec();
        body.extend_from_slice(b"{}\nPNG");
        assert_eq!(split_body(&body).unwrap(), (&b"{}\n"[..], &b"PNG"[..]));
        assert!(split_body(&body[..5]).is_err());
        assert!(split_body(b"ab").is_err());
    }

    #[test]
    fn png_size_reads_the_header_and_refuses_others() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&1240u32.to_be_bytes());
        png.extend_from_slice(&1754u32.to_be_bytes());
        assert_eq!(png_size(&png).unwrap(), (1240, 1754));
        assert!(png_size(b"GIF89a................................").is_err());
    }

    /// A 2 × 2 red PNG.
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0xd, 0xa, 0x1a, 0xa, 0x0, 0x0, 0x0, 0xd, 0x49, 0x48, 0x44, 0x52, 0x0, 0x0, 0x0, 0x2,
        0x0, 0x0, 0x0, 0x2, 0x8, 0x2, 0x0, 0x0, 0x0, 0xfd, 0xd4, 0x9a, 0x73, 0x0, 0x0, 0x0, 0x10, 0x49, 0x44, 0x41,
        0x54, 0x78, 0x9c, 0x63, 0x38, 0x21, 0x27, 0x7, 0x44, 0xc, 0x10, 0xa, 0x0, 0x1f, 0x26, 0x4, 0x11, 0xa2, 0x8f,
        0x22, 0xaf, 0x0, 0x0, 0x0, 0x0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];

    #[test]
    fn pdf_embeds_the_map_and_a_subset_cjk_font_with_unicode_text() {
        // scripts/deps.sh desktop installs fonts-wqy-microhei: the test needs a CJK font.
        let font = find_cjk_font().unwrap_or_else(|e| panic!("{e}"));
        let job = Job {
            title: "洪山区井盖专题图".into(),
            paper: layout::Paper::A4,
            orientation: layout::Orientation::Landscape,
            dpi: 150,
            date: "2026-12-07 10:00".into(),
            screen: layout::ScreenView { width: 1200.0, height: 800.0, zoom: 15.0, lat: 30.5, bearing: 0.0 },
            legend: vec![layout::LegendEntry {
                title: "井盖".into(),
                kind: layout::SwatchKind::Circle,
                color: Rgba(46, 134, 171, 1.0),
            }],
            lang: layout::SheetLang::Zh,
        };
        let sheet = layout::compose(&job, &font).unwrap();
        let bytes = pdf(&sheet, PNG, &font).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("%PDF-"), "a PDF");
        for key in ["/ToUnicode", "/FontFile2", "/Subtype /Image"] {
            assert!(text.contains(key) || text.contains(&key.replace(' ', "")), "{key} in the PDF");
        }
        // Subset: far smaller than the font file.
        assert!(bytes.len() < font.data.len() / 4, "{} bytes of PDF, font {} bytes", bytes.len(), font.data.len());
        assert!(font.width("中文", 10.0) > font.width("ab", 10.0));
        assert!(matches!(pdf(&sheet, b"not a png", &font), Err(PrintError::Image(_))));
    }

    #[test]
    fn writes_replace_whole_files_and_name_missing_folders() {
        let dir = std::env::temp_dir().join(format!("shikong-print-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.png");
        write_file(&p, b"one").unwrap();
        write_file(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        let e = write_file(&dir.join("no/such/a.png"), b"x").unwrap_err();
        assert!(e.to_string().contains("no/such"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
