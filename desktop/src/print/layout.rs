//! The print sheet's geometry, without I/O: paper sizes, where the title, map frame, legend,
//! scale bar, north arrow, date and CRS note go, which extent and zoom the printed map shows, and
//! the scale bar's length (1, 2 or 5 × 10ⁿ metres).
//!
//! The result is a display list ([`Sheet`]: texts, rectangles, polygons, lines, circles and the
//! map's slot, in millimetres from the paper's top-left corner, y down) that both renderers draw
//! the same way: the window's canvas (preview and PNG) and the PDF writer. Text widths come from
//! a [`Measure`] the caller supplies (the PDF's font), so long titles and legend entries are fitted
//! here, once. The sheet's own words (legend heading, scale, CRS note, date line, the default
//! title) are in the job's [`SheetLang`], the language the app shows; the user's title and the
//! layers' titles are printed as they are.

use serde::{Deserialize, Serialize};

pub const MM_PER_INCH: f64 = 25.4;
/// CSS pixels per inch: the map's line widths and labels print at their on-screen physical size.
pub const CSS_DPI: f64 = 96.0;
/// The DPI the print accepts (300 DPI on A3 landscape is 4961 × 3508 px, under WebGL's usual
/// 8192 px limit).
pub const DPI_MIN: u32 = 72;
pub const DPI_MAX: u32 = 300;
/// CGCS2000's semi-major axis (the same as WGS 84's), metres.
const EARTH_RADIUS_M: f64 = 6_378_137.0;
/// MapLibre's world width at zoom 0, CSS pixels.
const WORLD_PX: f64 = 512.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Paper {
    A4,
    A3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    Portrait,
    Landscape,
}

impl Paper {
    /// Width × height in millimetres, portrait (ISO 216).
    pub fn portrait_mm(self) -> (f64, f64) {
        match self {
            Paper::A4 => (210.0, 297.0),
            Paper::A3 => (297.0, 420.0),
        }
    }

    pub fn size_mm(self, o: Orientation) -> (f64, f64) {
        let (w, h) = self.portrait_mm();
        match o {
            Orientation::Portrait => (w, h),
            Orientation::Landscape => (h, w),
        }
    }
}

/// The on-screen map the print starts from (MapLibre's view).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScreenView {
    /// The map's size in CSS pixels.
    pub width: f64,
    pub height: f64,
    pub zoom: f64,
    /// The centre's latitude, degrees.
    pub lat: f64,
    /// Degrees clockwise from north (MapLibre's bearing).
    #[serde(default)]
    pub bearing: f64,
}

/// An RGBA colour: red, green, blue 0–255 and alpha 0–1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rgba(pub u8, pub u8, pub u8, pub f64);

pub const BLACK: Rgba = Rgba(0x1d, 0x27, 0x33, 1.0);
pub const WHITE: Rgba = Rgba(255, 255, 255, 1.0);
const GREY: Rgba = Rgba(0x56, 0x67, 0x7a, 1.0);

/// How a legend entry's swatch is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwatchKind {
    Fill,
    Line,
    Circle,
    Raster,
}

/// A legend entry: a visible style layer's title and colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegendEntry {
    pub title: String,
    pub kind: SwatchKind,
    pub color: Rgba,
}

/// The language of the sheet's own words: `"zh-CN"` (also `"zh"`, the default) or `"en"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SheetLang {
    #[default]
    #[serde(rename = "zh-CN", alias = "zh")]
    Zh,
    #[serde(rename = "en")]
    En,
}

/// The sheet's own words in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Words {
    /// The title when the user gave none.
    pub untitled: &'static str,
    pub legend: &'static str,
    /// The legend when no layer is visible.
    pub no_layers: &'static str,
    /// Before the scale ratio (`比例尺 1:12,300`).
    pub scale: &'static str,
    pub crs: &'static str,
    pub crs_note: &'static str,
    /// Before the date (`数据时点 2026-12-07 10:00（北京时间）`).
    pub date: &'static str,
    /// After the date.
    pub date_zone: &'static str,
    /// The north arrow's letter.
    pub north: &'static str,
}

impl SheetLang {
    pub fn words(self) -> Words {
        match self {
            SheetLang::Zh => Words {
                untitled: "时空专题图",
                legend: "图例",
                no_layers: "（无可见图层）",
                scale: "比例尺",
                crs: "坐标系 CGCS2000（EPSG:4490）",
                crs_note: "Web 墨卡托显示，比例尺为图幅中心处",
                date: "数据时点",
                date_zone: "（北京时间）",
                north: "N",
            },
            SheetLang::En => Words {
                untitled: "Shikong thematic map",
                legend: "Legend",
                no_layers: "(no visible layers)",
                scale: "Scale",
                crs: "CRS CGCS2000 (EPSG:4490)",
                crs_note: "Web Mercator display; scale true at the centre",
                date: "Data as of",
                date_zone: " (Beijing time)",
                north: "N",
            },
        }
    }

    /// The legend's last line when entries were left out.
    pub fn more(self, n: usize) -> String {
        match self {
            SheetLang::Zh => format!("…等 {n} 项"),
            SheetLang::En => format!("… and {n} more"),
        }
    }
}

/// What the user asked for (the print view's fields and the map's state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub title: String,
    pub paper: Paper,
    pub orientation: Orientation,
    pub dpi: u32,
    /// The map's instant as shown (Beijing time, `2026-12-07 10:00`).
    pub date: String,
    pub screen: ScreenView,
    #[serde(default)]
    pub legend: Vec<LegendEntry>,
    /// The language of the sheet's own words (the app's).
    #[serde(default)]
    pub lang: SheetLang,
}

/// A rectangle in millimetres (y down).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.w
    }
    pub fn bottom(&self) -> f64 {
        self.y + self.h
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// One thing on the sheet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Item {
    /// One line of text; `(x, y)` is on the baseline; `size` is the font size in mm; `role` says
    /// what it is (`title`, `legend`, `scale`, `crs`, `date`, …).
    Text {
        text: String,
        x: f64,
        y: f64,
        size: f64,
        anchor: Anchor,
        color: Rgba,
        role: String,
    },
    Rect {
        rect: Rect,
        fill: Option<Rgba>,
        stroke: Option<Rgba>,
        width: f64,
    },
    Polygon {
        points: Vec<(f64, f64)>,
        fill: Option<Rgba>,
        stroke: Option<Rgba>,
        width: f64,
    },
    Line {
        points: Vec<(f64, f64)>,
        stroke: Rgba,
        width: f64,
    },
    Circle {
        cx: f64,
        cy: f64,
        r: f64,
        fill: Option<Rgba>,
        stroke: Option<Rgba>,
        width: f64,
    },
}

/// How to render the printed map: an offscreen MapLibre map of `css_width × css_height` CSS px
/// at `pixel_ratio`, centred where the screen is, at `zoom`; it shows what the screen shows in
/// `crop` (screen CSS px: the largest centred rectangle of the frame's shape).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapRender {
    pub css_width: f64,
    pub css_height: f64,
    pub pixel_ratio: f64,
    pub width_px: u32,
    pub height_px: u32,
    pub zoom: f64,
    pub bearing: f64,
    pub crop: Rect,
}

/// The scale bar: `ground_m` metres drawn `length_mm` long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleBar {
    pub ground_m: f64,
    pub length_mm: f64,
    /// `1:12,300`.
    pub ratio_text: String,
    /// Ground metres per paper millimetre at the frame's centre.
    pub metres_per_mm: f64,
}

/// The laid-out sheet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sheet {
    pub width_mm: f64,
    pub height_mm: f64,
    pub dpi: u32,
    /// The page at `dpi`, pixels.
    pub width_px: u32,
    pub height_px: u32,
    /// The map's frame (the image goes here, drawn before `items`).
    pub frame: Rect,
    pub map: MapRender,
    pub scale: ScaleBar,
    /// Legend entries that did not fit (said on the sheet as `…等 N 项`).
    pub legend_omitted: usize,
    pub items: Vec<Item>,
}

/// Text widths, in mm, of `text` at font size `size` mm.
pub trait Measure {
    fn width(&self, text: &str, size: f64) -> f64;
}

/// An estimate without a font: CJK characters a full em, others 0.55 em.
#[derive(Debug, Clone, Copy, Default)]
pub struct Approx;

impl Measure for Approx {
    fn width(&self, text: &str, size: f64) -> f64 {
        text.chars().map(|c| if (c as u32) >= 0x2E80 { 1.0 } else { 0.55 }).sum::<f64>() * size
    }
}

/// Why a job cannot be laid out.
#[derive(Debug, Clone, PartialEq)]
pub enum LayoutError {
    Dpi(u32),
    Screen(String),
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::Dpi(d) => write!(f, "分辨率 {d} DPI 超出范围（{DPI_MIN}–{DPI_MAX}）/ DPI {d} out of range"),
            LayoutError::Screen(s) => write!(f, "地图视图无效 / invalid map view: {s}"),
        }
    }
}

pub fn mm_to_px(mm: f64, dpi: u32) -> u32 {
    (mm / MM_PER_INCH * f64::from(dpi)).round().max(1.0) as u32
}

/// Ground metres per CSS pixel of a MapLibre map at `zoom` and latitude `lat` (Web Mercator on
/// the CGCS2000 ellipsoid's radius; true at that latitude).
pub fn metres_per_css_px(zoom: f64, lat: f64) -> f64 {
    2.0 * std::f64::consts::PI * EARTH_RADIUS_M * lat.to_radians().cos() / (WORLD_PX * zoom.exp2())
}

/// The longest 1, 2 or 5 × 10ⁿ not above `max` (> 0).
pub fn nice_length(max: f64) -> f64 {
    let p = 10f64.powf(max.log10().floor());
    [5.0, 2.0, 1.0].into_iter().map(|f| f * p).find(|&l| l <= max * (1.0 + 1e-9)).unwrap_or(p)
}

/// `12345.6` → `12,300` (three significant figures: the scale holds at the centre only).
pub fn ratio_text(denominator: f64) -> String {
    let d = denominator.max(1.0);
    let p = 10f64.powf(d.log10().floor() - 2.0).max(1.0);
    let n = ((d / p).round() * p) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("1:{out}")
}

/// A distance for the scale bar's labels, in the unit `km` says (`0.5`, `250`, `2`).
fn distance(m: f64, km: bool) -> String {
    let v = if km { m / 1000.0 } else { m };
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Cuts `text` (by characters) to fit `max` mm, with an ellipsis.
pub fn fit(text: &str, size: f64, max: f64, m: &dyn Measure) -> String {
    if m.width(text, size) <= max {
        return text.to_owned();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let t: String = chars.iter().collect::<String>() + "…";
        if m.width(&t, size) <= max {
            return t;
        }
    }
    "…".to_owned()
}

fn text(t: impl Into<String>, x: f64, y: f64, size: f64, anchor: Anchor, color: Rgba, role: &str) -> Item {
    Item::Text { text: t.into(), x, y, size, anchor, color, role: role.to_owned() }
}

/// The map's render and scale for a frame of `frame_w × frame_h` mm at `dpi`.
pub fn map_render(screen: &ScreenView, frame_w: f64, frame_h: f64, dpi: u32) -> Result<(MapRender, f64), LayoutError> {
    let s = screen;
    if !(s.width > 0.0 && s.height > 0.0 && s.width.is_finite() && s.height.is_finite()) {
        return Err(LayoutError::Screen(format!("size {} × {} px", s.width, s.height)));
    }
    if !s.zoom.is_finite() || !(-85.1..=85.1).contains(&s.lat) || !s.bearing.is_finite() {
        return Err(LayoutError::Screen(format!("zoom {}, latitude {}", s.zoom, s.lat)));
    }
    let aspect = frame_w / frame_h;
    let (cw, ch) =
        if s.width / s.height > aspect { (s.height * aspect, s.height) } else { (s.width, s.width / aspect) };
    let crop = Rect { x: (s.width - cw) / 2.0, y: (s.height - ch) / 2.0, w: cw, h: ch };
    let css_width = frame_w / MM_PER_INCH * CSS_DPI;
    let css_height = frame_h / MM_PER_INCH * CSS_DPI;
    let zoom = s.zoom + (css_width / cw).log2();
    let metres_per_mm = metres_per_css_px(zoom, s.lat) * CSS_DPI / MM_PER_INCH;
    let render = MapRender {
        css_width,
        css_height,
        pixel_ratio: f64::from(dpi) / CSS_DPI,
        width_px: mm_to_px(frame_w, dpi),
        height_px: mm_to_px(frame_h, dpi),
        zoom,
        bearing: s.bearing,
        crop,
    };
    Ok((render, metres_per_mm))
}

/// Lays the sheet out.
pub fn compose(job: &Job, m: &dyn Measure) -> Result<Sheet, LayoutError> {
    if !(DPI_MIN..=DPI_MAX).contains(&job.dpi) {
        return Err(LayoutError::Dpi(job.dpi));
    }
    let (pw, ph) = job.paper.size_mm(job.orientation);
    // Everything scales with the paper: A3 is √2 × A4.
    let k = pw.min(ph) / 210.0;
    let margin = 10.0 * k;
    let footer_h = 36.0 * k;
    let gap = 4.0 * k;
    let frame = Rect { x: margin, y: margin + 14.0 * k, w: pw - 2.0 * margin, h: 0.0 };
    let frame = Rect { h: ph - margin - footer_h - gap - frame.y, ..frame };
    let (map, metres_per_mm) = map_render(&job.screen, frame.w, frame.h, job.dpi)?;
    let mut items = Vec::new();
    let words = job.lang.words();

    // Title: centred, shrunk to the width (down to half size), then cut.
    let max_w = pw - 2.0 * margin;
    let mut size = 7.0 * k;
    let title = if job.title.trim().is_empty() { words.untitled } else { job.title.trim() };
    while m.width(title, size) > max_w && size > 3.5 * k {
        size *= 0.95;
    }
    let title = fit(title, size, max_w, m);
    items.push(text(title, pw / 2.0, margin + 9.0 * k, size, Anchor::Middle, BLACK, "title"));
    items.push(Item::Rect { rect: frame, fill: None, stroke: Some(BLACK), width: 0.3 * k });

    // North arrow: top right inside the frame, on a white disc, turned with the map.
    let (cx, cy) = (frame.right() - 11.0 * k, frame.y + 12.0 * k);
    items.push(Item::Circle {
        cx,
        cy,
        r: 8.5 * k,
        fill: Some(Rgba(255, 255, 255, 0.85)),
        stroke: Some(GREY),
        width: 0.2 * k,
    });
    let turn = (-map.bearing).to_radians();
    let rot = |x: f64, y: f64| (cx + x * turn.cos() - y * turn.sin(), cy + x * turn.sin() + y * turn.cos());
    let (tip, notch) = (rot(0.0, -3.0 * k), rot(0.0, 4.0 * k));
    items.push(Item::Polygon {
        points: vec![tip, rot(-3.0 * k, 6.5 * k), notch],
        fill: Some(BLACK),
        stroke: Some(BLACK),
        width: 0.2 * k,
    });
    items.push(Item::Polygon {
        points: vec![tip, rot(3.0 * k, 6.5 * k), notch],
        fill: Some(WHITE),
        stroke: Some(BLACK),
        width: 0.2 * k,
    });
    let (nx, ny) = rot(0.0, -5.2 * k);
    items.push(text(words.north, nx, ny + 1.2 * k, 3.4 * k, Anchor::Middle, BLACK, "north"));

    // The footer: legend on the left, scale and notes on the right.
    let fy = frame.bottom() + gap;
    let info_w = 78.0 * k;
    let ix = pw - margin - info_w;
    let legend_w = ix - 6.0 * k - margin;
    items.push(text(words.legend, margin, fy + 4.0 * k, 4.0 * k, Anchor::Start, BLACK, "legend-heading"));
    let (row_h, col_w) = (5.2 * k, 52.0 * k);
    let rows = ((footer_h - 7.0 * k) / row_h).floor().max(1.0) as usize;
    let cols = ((legend_w / col_w).floor() as usize).max(1);
    let slots = rows * cols;
    let shown = if job.legend.len() > slots { slots - 1 } else { job.legend.len() };
    let legend_omitted = job.legend.len() - shown;
    let slot = |i: usize| (margin + (i / rows) as f64 * col_w, fy + 7.0 * k + (i % rows) as f64 * row_h);
    let text_size = 3.2 * k;
    for (i, e) in job.legend.iter().take(shown).enumerate() {
        let (x, y) = slot(i);
        let sw = Rect { x, y, w: 7.0 * k, h: 3.6 * k };
        let mid = sw.y + sw.h / 2.0;
        let opaque = Rgba(e.color.0, e.color.1, e.color.2, 1.0);
        items.push(match e.kind {
            SwatchKind::Fill => Item::Rect { rect: sw, fill: Some(e.color), stroke: Some(opaque), width: 0.3 * k },
            SwatchKind::Raster => {
                Item::Rect { rect: sw, fill: Some(Rgba(0xc8, 0xd0, 0xb8, 1.0)), stroke: Some(GREY), width: 0.2 * k }
            }
            SwatchKind::Line => {
                Item::Line { points: vec![(sw.x, mid), (sw.right(), mid)], stroke: opaque, width: 0.8 * k }
            }
            SwatchKind::Circle => Item::Circle {
                cx: sw.x + sw.w / 2.0,
                cy: mid,
                r: 1.5 * k,
                fill: Some(opaque),
                stroke: Some(WHITE),
                width: 0.3 * k,
            },
        });
        let label = fit(&e.title, text_size, col_w - sw.w - 4.0 * k, m);
        items.push(text(label, sw.right() + 2.0 * k, mid + 1.1 * k, text_size, Anchor::Start, BLACK, "legend"));
    }
    if legend_omitted > 0 {
        let (x, y) = slot(shown);
        let more = fit(&job.lang.more(legend_omitted), text_size, col_w, m);
        items.push(text(more, x, y + 2.9 * k, text_size, Anchor::Start, GREY, "legend"));
    }
    if job.legend.is_empty() {
        items.push(text(words.no_layers, margin, fy + 10.0 * k, text_size, Anchor::Start, GREY, "legend"));
    }

    // Scale bar: the longest 1/2/5 × 10ⁿ m within 60 mm (× k), in halves, quarters or fifths.
    let ground_m = nice_length(60.0 * k * metres_per_mm);
    let length_mm = ground_m / metres_per_mm;
    let lead = (ground_m / 10f64.powf(ground_m.log10().floor())).round() as u32;
    let parts = match lead {
        1 => 2,
        2 => 4,
        _ => 5,
    };
    let km = ground_m >= 1000.0;
    let (bx, by, bh) = (ix, fy + 6.5 * k, 1.8 * k);
    let seg = length_mm / f64::from(parts);
    for p in 0..parts {
        let fill = if p % 2 == 0 { BLACK } else { WHITE };
        let rect = Rect { x: bx + f64::from(p) * seg, y: by, w: seg, h: bh };
        items.push(Item::Rect { rect, fill: Some(fill), stroke: Some(BLACK), width: 0.2 * k });
    }
    let label_size = 2.8 * k;
    items.push(text("0", bx, by - 1.0 * k, label_size, Anchor::Middle, BLACK, "scale-label"));
    if parts % 2 == 0 {
        let half = distance(ground_m / 2.0, km);
        items.push(text(half, bx + length_mm / 2.0, by - 1.0 * k, label_size, Anchor::Middle, BLACK, "scale-label"));
    }
    let unit = if km { "km" } else { "m" };
    let end = format!("{} {unit}", distance(ground_m, km));
    items.push(text(end, bx + length_mm, by - 1.0 * k, label_size, Anchor::Middle, BLACK, "scale-label"));

    let ratio = ratio_text(metres_per_mm * 1000.0);
    let note = 3.2 * k;
    items.push(text(format!("{} {ratio}", words.scale), ix, fy + 14.5 * k, note, Anchor::Start, BLACK, "scale"));
    items.push(text(fit(words.crs, note, info_w, m), ix, fy + 19.5 * k, note, Anchor::Start, BLACK, "crs"));
    let detail = fit(words.crs_note, 2.6 * k, info_w, m);
    items.push(text(detail, ix, fy + 24.0 * k, 2.6 * k, Anchor::Start, GREY, "crs-note"));
    let date = fit(&format!("{} {}{}", words.date, job.date, words.date_zone), note, info_w, m);
    items.push(text(date, ix, fy + 29.5 * k, note, Anchor::Start, BLACK, "date"));

    Ok(Sheet {
        width_mm: pw,
        height_mm: ph,
        dpi: job.dpi,
        width_px: mm_to_px(pw, job.dpi),
        height_px: mm_to_px(ph, job.dpi),
        frame,
        map,
        scale: ScaleBar { ground_m, length_mm, ratio_text: ratio, metres_per_mm },
        legend_omitted,
        items,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::float_cmp)]
    use super::*;

    fn job(paper: Paper, orientation: Orientation, legend: usize) -> Job {
        Job {
            title: "洪山区井盖专题图".into(),
            paper,
            orientation,
            dpi: 150,
            date: "2026-12-07 10:00".into(),
            screen: ScreenView { width: 1280.0, height: 760.0, zoom: 14.0, lat: 30.5, bearing: 0.0 },
            legend: (0..legend)
                .map(|i| LegendEntry {
                    title: format!("图层{i}"),
                    kind: SwatchKind::Fill,
                    color: Rgba(228, 87, 46, 0.35),
                })
                .collect(),
            lang: SheetLang::Zh,
        }
    }

    fn texts<'a>(s: &'a Sheet, role: &str) -> Vec<&'a str> {
        s.items
            .iter()
            .filter_map(|i| match i {
                Item::Text { text, role: r, .. } if r == role => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn paper_sizes_and_pixels() {
        assert_eq!(Paper::A4.size_mm(Orientation::Portrait), (210.0, 297.0));
        assert_eq!(Paper::A3.size_mm(Orientation::Landscape), (420.0, 297.0));
        let s = compose(&job(Paper::A4, Orientation::Portrait, 2), &Approx).unwrap();
        assert_eq!((s.width_px, s.height_px), (1240, 1754), "A4 at 150 DPI");
        let mut j = job(Paper::A3, Orientation::Landscape, 2);
        j.dpi = 300;
        let s = compose(&j, &Approx).unwrap();
        assert_eq!((s.width_px, s.height_px), (4961, 3508), "A3 landscape at 300 DPI");
        assert!(s.map.width_px < 8192 && s.map.height_px < 8192);
    }

    #[test]
    fn nice_lengths_are_1_2_5_times_a_power_of_ten() {
        for (max, want) in [(0.7, 0.5), (1.0, 1.0), (1.9, 1.0), (2.0, 2.0), (4.99, 2.0), (5.0, 5.0), (9.9, 5.0)] {
            assert_eq!(nice_length(max), want, "{max}");
        }
        assert_eq!(nice_length(1234.0), 1000.0);
        assert_eq!(nice_length(2600.0), 2000.0);
        assert_eq!(nice_length(73_000.0), 50_000.0);
        assert_eq!(nice_length(0.031), 0.02);
    }

    #[test]
    fn ratio_has_three_significant_figures_and_groups_thousands() {
        assert_eq!(ratio_text(12_345.6), "1:12,300");
        assert_eq!(ratio_text(999.4), "1:999");
        assert_eq!(ratio_text(1_004_999.0), "1:1,000,000");
        assert_eq!(ratio_text(25.0), "1:25");
    }

    #[test]
    fn scale_bar_matches_the_map_resolution() {
        let s = compose(&job(Paper::A4, Orientation::Portrait, 1), &Approx).unwrap();
        // The frame is 190 mm wide = 718 CSS px showing the screen's 1280 px crop (narrower
        // frame: height-limited crop), so the print zooms out from 14.
        let f = s.frame;
        assert!((f.w - 190.0).abs() < 1e-9 && f.h > 200.0, "{f:?}");
        let crop = s.map.crop;
        assert!((crop.w / crop.h - f.w / f.h).abs() < 1e-9 && crop.h == 760.0 && crop.x > 0.0);
        assert!((s.map.zoom - (14.0 + (s.map.css_width / crop.w).log2())).abs() < 1e-12);
        // Independent check: metres across the frame = metres across the crop on screen.
        let screen_m = crop.w * metres_per_css_px(14.0, 30.5);
        assert!((s.scale.metres_per_mm * f.w - screen_m).abs() / screen_m < 1e-9);
        // The bar is a nice length within 60 mm and drawn to scale.
        let ground_m = s.scale.ground_m;
        assert!(s.scale.length_mm <= 60.0 + 1e-9 && s.scale.length_mm > 24.0, "{:?}", s.scale);
        assert!((s.scale.length_mm * s.scale.metres_per_mm - ground_m).abs() < 1e-6);
        assert_eq!(nice_length(ground_m), ground_m);
        assert_eq!(texts(&s, "scale"), [format!("比例尺 {}", s.scale.ratio_text).as_str()]);
        let labels = texts(&s, "scale-label");
        assert_eq!(labels.first(), Some(&"0"));
        assert!(labels.last().unwrap().ends_with(" m") || labels.last().unwrap().ends_with(" km"), "{labels:?}");
    }

    #[test]
    fn sheet_says_title_date_crs_and_legend() {
        let s = compose(&job(Paper::A4, Orientation::Landscape, 3), &Approx).unwrap();
        assert_eq!(texts(&s, "title"), ["洪山区井盖专题图"]);
        assert_eq!(texts(&s, "date"), ["数据时点 2026-12-07 10:00（北京时间）"]);
        assert_eq!(texts(&s, "crs"), ["坐标系 CGCS2000（EPSG:4490）"]);
        assert_eq!(texts(&s, "legend"), ["图层0", "图层1", "图层2"]);
        assert_eq!(texts(&s, "north"), ["N"]);
        // Everything is on the paper, nothing overlaps the frame but the arrow inside it.
        for i in &s.items {
            if let Item::Text { x, y, .. } = i {
                assert!(*x >= 0.0 && *x <= s.width_mm && *y > 0.0 && *y <= s.height_mm, "{i:?}");
            }
        }
        assert!(s.frame.bottom() < s.height_mm - 36.0);
    }

    /// A character of the CJK blocks or full-width punctuation.
    fn cjk(c: char) -> bool {
        matches!(c as u32, 0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF)
    }

    #[test]
    fn english_sheets_say_their_own_words_in_english() {
        let mut j = job(Paper::A4, Orientation::Landscape, 3);
        j.lang = SheetLang::En;
        j.title = " ".into();
        let s = compose(&j, &Approx).unwrap();
        assert_eq!(texts(&s, "title"), ["Shikong thematic map"], "the default title");
        assert_eq!(texts(&s, "legend-heading"), ["Legend"]);
        assert_eq!(texts(&s, "date"), ["Data as of 2026-12-07 10:00 (Beijing time)"]);
        assert_eq!(texts(&s, "crs"), ["CRS CGCS2000 (EPSG:4490)"]);
        assert_eq!(texts(&s, "crs-note"), ["Web Mercator display; scale true at the centre"]);
        assert_eq!(texts(&s, "scale"), [format!("Scale {}", s.scale.ratio_text).as_str()]);
        assert_eq!(texts(&s, "north"), ["N"]);
        // The layers' titles are data: printed as they are.
        assert_eq!(texts(&s, "legend"), ["图层0", "图层1", "图层2"]);
        // Nothing else on the sheet is Chinese.
        for i in &s.items {
            if let Item::Text { text, role, .. } = i {
                assert!(role == "legend" || !text.chars().any(cjk), "{role}: {text}");
            }
        }
        // Long legends and empty ones, in English.
        let mut long = job(Paper::A4, Orientation::Portrait, 40);
        long.lang = SheetLang::En;
        let s = compose(&long, &Approx).unwrap();
        assert_eq!(*texts(&s, "legend").last().unwrap(), format!("… and {} more", s.legend_omitted));
        long.legend.clear();
        assert_eq!(texts(&compose(&long, &Approx).unwrap(), "legend"), ["(no visible layers)"]);
        // The same job in Chinese keeps the Chinese sheet (the default when the window sends none).
        let zh = compose(&job(Paper::A4, Orientation::Landscape, 3), &Approx).unwrap();
        assert_eq!(texts(&zh, "legend-heading"), ["图例"]);
        for (json, want) in [(r#""en""#, SheetLang::En), (r#""zh-CN""#, SheetLang::Zh), (r#""zh""#, SheetLang::Zh)] {
            assert_eq!(serde_json::from_str::<SheetLang>(json).unwrap(), want, "{json}");
        }
        let mut v = serde_json::to_value(job(Paper::A4, Orientation::Portrait, 1)).unwrap();
        v.as_object_mut().unwrap().remove("lang");
        assert_eq!(serde_json::from_value::<Job>(v).unwrap().lang, SheetLang::Zh);
        assert!(serde_json::from_str::<SheetLang>(r#""fr""#).is_err());
    }

    #[test]
    fn long_legends_say_how_many_are_left_out() {
        let s = compose(&job(Paper::A4, Orientation::Portrait, 40), &Approx).unwrap();
        let shown = texts(&s, "legend");
        assert_eq!(s.legend_omitted + shown.len() - 1, 40);
        assert_eq!(*shown.last().unwrap(), format!("…等 {} 项", s.legend_omitted));
        // A3 holds more.
        let a3 = compose(&job(Paper::A3, Orientation::Landscape, 40), &Approx).unwrap();
        assert!(a3.legend_omitted < s.legend_omitted);
    }

    #[test]
    fn long_text_is_shrunk_then_cut_by_characters() {
        let mut j = job(Paper::A4, Orientation::Portrait, 1);
        j.title = "很长的标题".repeat(20);
        let s = compose(&j, &Approx).unwrap();
        let Some(Item::Text { text, size, .. }) =
            s.items.iter().find(|i| matches!(i, Item::Text { role, .. } if role == "title"))
        else {
            panic!("no title")
        };
        assert!(text.ends_with('…') && text.starts_with("很长的标题"), "{text}");
        assert!(Approx.width(text, *size) <= 190.0 && *size < 7.0);
        assert_eq!(fit("abc", 3.0, 100.0, &Approx), "abc");
    }

    #[test]
    fn bearing_turns_the_north_arrow() {
        let mut j = job(Paper::A4, Orientation::Portrait, 1);
        let tip = |s: &Sheet| match s.items.iter().find(|i| matches!(i, Item::Polygon { .. })) {
            Some(Item::Polygon { points, .. }) => points[0],
            _ => panic!("no arrow"),
        };
        let up = tip(&compose(&j, &Approx).unwrap());
        j.screen.bearing = 90.0; // the map's top faces east: north is to the left
        let left = tip(&compose(&j, &Approx).unwrap());
        assert!(left.0 < up.0 - 2.0 && (left.1 - up.1).abs() > 2.0, "{up:?} → {left:?}");
    }

    #[test]
    fn refuses_bad_jobs() {
        let mut j = job(Paper::A4, Orientation::Portrait, 1);
        j.dpi = 600;
        assert_eq!(compose(&j, &Approx), Err(LayoutError::Dpi(600)));
        j.dpi = 150;
        j.screen.width = 0.0;
        assert!(matches!(compose(&j, &Approx), Err(LayoutError::Screen(_))));
    }
}
