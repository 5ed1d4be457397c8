//! Printing from the desktop app (issue 16): the real `shikong-desktop` window under Xvfb,
//! driven through WebDriver, against the real `shikong serve` with the demo data.
//!
//! `print_writes_a_pdf_with_real_text_and_a_png_at_the_paper_size`: signed in as office staff,
//! the user opens 打印 before the map was ever shown (the view makes the map itself), then the
//! map, then 打印 again; titles the sheet in Chinese and exports a PDF and a PNG
//! (A4 portrait, 150 DPI) to a folder with a Chinese name. `pdftotext` (poppler-utils) reads the
//! PDF's text back: the title, the date (the map's instant in Beijing time: now, then an as-of
//! instant set on the time slider), a legend entry, the scale and "CGCS2000"; `pdffonts` shows
//! the CJK font embedded as a subset with a ToUnicode map. The PNG is 1240 × 1754 px (A4 at 150
//! DPI) and shows the map (many colours, not a blank frame). Screenshot:
//! `target/screenshots/desktop/print.png`.

use crate::common::desktop::{shots, signed_in};
use crate::common::{run_tool, tool};
use serde_json::{Value as Json, json};

/// The sheet's texts with `role` (`title`, `date`, `scale`, `legend`, `crs`).
fn texts(sheet: &Json, role: &str) -> Vec<String> {
    sheet["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "text" && i["role"] == role)
        .map(|i| i["text"].as_str().unwrap().to_owned())
        .collect()
}

/// The PDF's text, with the line breaks and spacing pdftotext adds between runs removed.
fn pdf_text(pdf: &std::path::Path) -> String {
    let mut cmd = tool("pdftotext", "poppler-utils");
    cmd.args(["-enc", "UTF-8"]).arg(pdf).arg("-");
    run_tool(cmd)
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn print_writes_a_pdf_with_real_text_and_a_png_at_the_paper_size() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, _wang, _li) = crate::common::demo_with_office(dir.path());
    let out = dir.path().join("打印输出");
    std::fs::create_dir_all(&out).unwrap();
    let (_driver, app) = signed_in(dir.path(), &server.base, "wang", "办公室密码123");

    // 打印 before the map was ever shown: the view makes the map (its style and view) itself.
    app.click("#tab-print");
    app.find("[data-testid=print-preview][data-ready=true]", 120);
    let early = app.execute("return window.shikongDesktop.printSheet()", json!([]));
    assert!(!texts(&early, "legend").is_empty(), "{early}");
    assert!(app.text("[data-testid=print-error]").is_empty());

    // The map (what is printed is what it shows), then the print view's preview.
    app.click("#tab-map");
    app.wait_text("[data-testid=map-status]", 90, "map drawn", |t| t.starts_with("已显示"));
    app.execute("document.getElementById('print-preview').dataset.ready = ''", json!([]));
    app.click("#tab-print");
    app.find("[data-testid=print-preview][data-ready=true]", 120);
    let font = app.text("[data-testid=print-font]");
    assert!(font.starts_with("PDF 字体："), "a CJK font was found: {font}");

    let title = "洪山区井盖巡查专题图";
    app.type_into("[data-testid=print-title]", title);
    app.type_into("[data-testid=print-dpi]", "150");
    let stem = out.join("井盖专题图");
    app.type_into("[data-testid=print-path]", stem.to_str().unwrap());

    // PDF.
    let started = std::time::Instant::now();
    app.click("[data-testid=print-pdf]");
    let status = app.wait_text("[data-testid=print-status]", 180, "PDF saved", |t| t.contains(".pdf"));
    let err = app.text("[data-testid=print-error]");
    assert!(err.is_empty(), "{err}");
    let pdf_secs = started.elapsed().as_secs_f64();
    let pdf = stem.with_extension("pdf");
    assert!(status.contains(pdf.to_str().unwrap()), "{status}");
    let sheet = app.execute("return window.shikongDesktop.printSheet()", json!([]));
    assert_eq!(texts(&sheet, "title"), [title]);
    let (date, scale, legend) = (texts(&sheet, "date"), texts(&sheet, "scale"), texts(&sheet, "legend"));
    assert_eq!((date.len(), scale.len()), (1, 1), "{sheet}");
    assert!(!legend.is_empty() && !legend[0].starts_with('（'), "a legend entry from the map's layers: {legend:?}");

    // The date is now in Beijing time (the slider is at "now").
    let beijing = |t: jiff::Timestamp| {
        t.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8))).strftime("%Y-%m-%d %H:%M").to_string()
    };
    let now = jiff::Timestamp::now();
    let minute_ago = now - jiff::SignedDuration::from_secs(120);
    assert!(
        date[0].contains(&beijing(now)) || date[0].contains(&beijing(minute_ago)),
        "{} is not now in Beijing time ({})",
        date[0],
        beijing(now)
    );
    assert!(scale[0].starts_with("比例尺 1:"), "{}", scale[0]);

    let text = pdf_text(&pdf);
    let flat = squeeze(&text);
    for want in [title, &legend[0], &scale[0], "坐标系CGCS2000（EPSG:4490）"] {
        assert!(flat.contains(&squeeze(want)), "the PDF's text has `{want}`:\n{text}");
    }
    // The sheet recomputes "now" each time it is read, so the PDF (laid out when the button was
    // pressed) may carry the minute before the one read back: accept any minute of the print.
    let printed_in: Vec<String> = (0..=pdf_secs.ceil() as i64 / 60 + 2)
        .map(|m| format!("数据时点{}（北京时间）", squeeze(&beijing(now - jiff::SignedDuration::from_secs(60 * m)))))
        .collect();
    assert!(
        printed_in.iter().any(|d| flat.contains(d)),
        "the PDF's date is a minute of the print ({printed_in:?}):\n{text}"
    );
    assert!(text.contains("CGCS2000"), "{text}");
    let fonts = run_tool({
        let mut c = tool("pdffonts", "poppler-utils");
        c.arg(&pdf);
        c
    });
    assert!(
        fonts.lines().any(|l| l.contains("CID") && l.split_whitespace().filter(|w| *w == "yes").count() >= 3),
        "the CJK font embedded, subset, with a ToUnicode map:\n{fonts}"
    );
    let pdf_bytes = std::fs::read(&pdf).unwrap();
    assert!(pdf_bytes.len() > 20_000, "the map image is in the PDF: {} bytes", pdf_bytes.len());

    // PNG: the paper at the DPI, and a map on it.
    let started = std::time::Instant::now();
    app.click("[data-testid=print-png]");
    app.wait_text("[data-testid=print-status]", 180, "PNG saved", |t| t.contains(".png"));
    let png_secs = started.elapsed().as_secs_f64();
    let png = stem.with_extension("png");
    let img = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display())).to_rgba8();
    assert_eq!(img.dimensions(), (1240, 1754), "A4 portrait at 150 DPI");
    let frame = &sheet["frame"];
    let px = |mm: &Json| (mm.as_f64().unwrap() / 25.4 * 150.0) as u32;
    let (fx, fy) = (px(&frame["x"]), px(&frame["y"]));
    let (fw, fh) = (px(&frame["w"]), px(&frame["h"]));
    let mut colours = std::collections::HashSet::new();
    let mut not_white = 0u64;
    for y in (fy + 2..fy + fh - 2).step_by(3) {
        for x in (fx + 2..fx + fw - 2).step_by(3) {
            let p = img.get_pixel(x, y).0;
            colours.insert([p[0] >> 3, p[1] >> 3, p[2] >> 3]);
            not_white += u64::from(p[..3].iter().any(|&c| c < 235));
        }
    }
    let samples = u64::from((fw - 4) / 3) * u64::from((fh - 4) / 3);
    assert!(
        colours.len() > 20 && not_white * 2 > samples,
        "the map frame is drawn: {} colours, {not_white}/{samples} not white",
        colours.len()
    );
    // The sheet's text is drawn outside the frame (title band): dark pixels above the frame.
    let dark_title = (0..fy)
        .flat_map(|y| (0..img.width()).map(move |x| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 100)
        .count();
    assert!(dark_title > 500, "the title is drawn: {dark_title} dark pixels");
    app.screenshot(&shots().join("print.png"));
    println!(
        "print A4 150 DPI: PDF {} KB in {pdf_secs:.1} s, PNG {} KB in {png_secs:.1} s (click to saved, software GL)",
        pdf_bytes.len() / 1024,
        std::fs::metadata(&png).unwrap().len() / 1024
    );

    // The time slider's instant is the sheet's date (Beijing time).
    app.execute("window.shikongDesktop.setAsOf('2026-03-01T02:30:00Z')", json!([]));
    app.click("[data-testid=print-pdf]");
    app.wait_text("[data-testid=print-date]", 60, "the as-of date", |t| t.contains("2026-03-01 10:30"));
    app.wait_text("[data-testid=print-status]", 180, "PDF saved again", |t| t.contains(".pdf"));
    let again = pdf_text(&pdf);
    assert!(squeeze(&again).contains("数据时点2026-03-0110:30（北京时间）"), "{again}");

    // A path the app cannot write is refused with its reason, nothing else changes.
    app.type_into("[data-testid=print-path]", "相对路径/图");
    app.click("[data-testid=print-png]");
    let err = app.wait_text("[data-testid=print-error]", 60, "a refused path", |t| !t.is_empty());
    assert!(err.contains("绝对路径"), "{err}");
    app.quit();
}
