//! The desktop app in English and back (issue 16: zh-CN first, English available): the real
//! `shikong-desktop` window under Xvfb, driven through WebDriver, against the real `shikong
//! serve` with the demo data.
//!
//! `switching_language_relabels_the_board_map_replica_and_print_sheet`: signed in as office
//! staff with a case opened over the API, the user opens the case page and types a note, then
//! switches to English (no reload): the header's user line, the board (column, card deadline; a
//! 12345-hotline case's column in the English its flow definition gives, which the server sends as
//! `state_label_en`), the case page (labels, actions, headings, an action taken in English), the
//! map's status line, the time slider, identify and history timeline and the 对比 view (the web
//! map's shared modules, worded by the app's `t`), the 本地副本 view (its
//! frame, the empty list, an error built in code, a downloaded area's card and progress line) and
//! the map's edit panel are in English, with no CJK character in their chrome — the text nodes of
//! those views outside the elements holding data (case numbers, descriptions, area and layer
//! names, field titles) — and the typed note and field value kept. A PDF printed in English has
//! the English sheet words (`pdftotext`). Back in Chinese, the same elements say their Chinese
//! words again (the slider, the compare view and the print view's "saved" line too) and the print
//! preview's sheet follows. Screenshots:
//! `target/screenshots/desktop/i18n-*.png`.

use crate::common::desktop::{open_case, pick_division, shots, signed_in, until};
use crate::common::webdriver::Session;
use crate::common::{run_tool, tool};
use serde_json::{Value as Json, json};

/// Where the case is: 珞喻路, 洪山区 (inside the demo's assets).
const AT: (f64, f64) = (114.3437, 30.5043);

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| matches!(c as u32, 0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF))
}

/// The script behind [`texts`]: the `textContent` of each element matching `arguments[0]`.
const TEXTS_JS: &str = "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent.trim())";

/// The `textContent` of every element matching `css` (hidden views too).
fn texts(app: &Session, css: &str) -> Vec<String> {
    let v = app.execute(TEXTS_JS, json!([css]));
    v.as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect()
}

/// The `textContent` of the one element `css`.
fn text(app: &Session, css: &str) -> String {
    let all = texts(app, css);
    assert_eq!(all.len(), 1, "one `{css}`: {all:?}");
    all.into_iter().next().unwrap()
}

/// Waits until `text(css)` satisfies `ok`.
#[track_caller]
fn wait(app: &Session, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    until(30, &format!("{what} (`{css}`)"), || {
        let v = app.try_execute(TEXTS_JS, json!([css])).ok()?;
        v.as_array()?.first()?.as_str().map(str::to_owned).filter(|t| ok(t))
    })
}

/// The chrome of `root`: its text nodes (and placeholders) outside the elements matching `data`,
/// which hold data values. Each one with a CJK character is returned.
fn cjk_chrome(app: &Session, root: &str, data: &str) -> Vec<String> {
    let v = app.execute(
        "const root = document.querySelector(arguments[0]);
         if (!root) return ['no ' + arguments[0]];
         const cjk = /[\\u2E80-\\u9FFF\\uF900-\\uFAFF\\uFE30-\\uFE4F\\uFF00-\\uFFEF]/;
         const out = [];
         const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
         while (w.nextNode()) {
           const n = w.currentNode;
           if (arguments[1] && n.parentElement.closest(arguments[1])) continue;
           if (cjk.test(n.nodeValue)) out.push(n.nodeValue.trim());
         }
         for (const el of root.querySelectorAll('[placeholder]')) {
           if (cjk.test(el.placeholder)) out.push('placeholder of #' + el.id + ': ' + el.placeholder);
         }
         return out;",
        json!([root, data]),
    );
    v.as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect()
}

#[track_caller]
fn no_cjk_chrome(app: &Session, root: &str, data: &str) {
    let found = cjk_chrome(app, root, data);
    assert!(found.is_empty(), "Chinese left in the chrome of `{root}` (data: `{data}`): {found:?}");
}

/// Switches the language as the user does (the header's select) and waits for the page to say so.
fn switch(app: &Session, lang: &str) {
    app.click(&format!("#lang option[value={lang}]"));
    let want = if lang == "en" { "en" } else { "zh-CN" };
    until(15, &format!("the page in {want}"), || {
        (app.execute("return document.documentElement.lang", json!([])) == json!(want)).then_some(())
    });
}

/// `Dec 7, 2026 10:00`.
fn english_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split(' ').collect();
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    parts.len() == 4
        && MONTHS.contains(&parts[0])
        && parts[1].strip_suffix(',').is_some_and(|d| d.parse::<u8>().is_ok())
        && parts[2].len() == 4
        && parts[3].len() == 5
        && parts[3].as_bytes()[2] == b':'
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn sheet_texts(sheet: &Json, role: &str) -> Vec<String> {
    sheet["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|i| i["type"] == "text" && i["role"] == role)
                .filter_map(|i| i["text"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn switching_language_relabels_the_board_map_replica_and_print_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    let out = dir.path().join("prints");
    std::fs::create_dir_all(&out).unwrap();
    let point = json!({"type": "Point", "coordinates": [AT.0, AT.1]});
    let case = open_case(&server.base, &wang, json!({"location": point, "description": "珞喻路井盖破损"}));
    let case_no = case["case_no"].as_str().unwrap().to_owned();
    // A case of the other shipped flow: its states are no client's table, only its definition's.
    open_case(&server.base, &wang, json!({"flow": "hotline-12345", "location": point, "description": "热线工单"}));
    let hotline_column = "section.column[data-state=received] h2 .col-label";
    // A manhole to identify.
    let page = server.get_json("/collections/manhole/items?limit=1", &wang);
    let manhole = &page["features"][0];
    let manhole_id = manhole["id"].as_str().unwrap().to_owned();
    let manhole_at = manhole["geometry"]["coordinates"].clone();
    let (_driver, app) = signed_in(dir.path(), &server.base, "wang", "办公室密码123");
    let shots = shots();

    // Chinese first: the board and the case page, a note typed and not yet sent.
    let card = format!("[data-testid=case-card][data-case-no='{case_no}']");
    app.find(&card, 30);
    assert_eq!(text(&app, "section.column[data-state=reported] h2 .col-label"), "信息收集（已上报）");
    assert_eq!(text(&app, hotline_column), "已受理（待派单）");
    let who = text(&app, "[data-testid=who]");
    assert!(who.starts_with("wang（内业） @ "), "{who}");
    app.click(&card);
    wait(&app, "[data-testid=case-no]", "case page", |t| t == format!("案件 {case_no}"));
    assert_eq!(texts(&app, "#case dt")[..3], ["状态", "期限", "处置人"]);
    app.type_into("[data-testid=note]", "请今日处置");

    // English, without a reload.
    switch(&app, "en");
    assert_eq!(text(&app, "#tab-board"), "Dispatch");
    assert_eq!(text(&app, "#tab-replica"), "Local replica");
    // The board: the column (the shipped flow's English state), the card's deadline.
    assert_eq!(text(&app, "section.column[data-state=reported] h2 .col-label"), "Reported");
    assert_eq!(text(&app, hotline_column), "Received (to dispatch)", "the server's English label of the flow's state");
    let who = text(&app, "[data-testid=who]");
    assert!(who.starts_with("wang (office) @ ") && !has_cjk(&who), "{who}");
    let due = text(&app, &format!("{card} .due"));
    assert!(
        due == "No deadline" || ["Deadline ", "Overdue "].iter().any(|p| due.strip_prefix(p).is_some_and(english_date)),
        "{due}"
    );
    no_cjk_chrome(&app, "#board", ".no, .desc");
    // The case page: heading, labels, state, actions, photo and transition headings, dates.
    assert_eq!(text(&app, "[data-testid=case-no]"), format!("Case {case_no}"));
    let dts = texts(&app, "#case dt");
    assert_eq!(dts[..7], ["State", "Deadline", "Assignee", "Class", "Description", "Source", "Location"], "{dts:?}");
    assert_eq!(text(&app, "[data-testid=case-state]"), "Reported");
    assert_eq!(text(&app, "button[data-action=accept]"), "Accept");
    assert_eq!(texts(&app, "#case h3"), ["Photos", "Transitions"]);
    assert_eq!(texts(&app, "[data-testid=transitions] th"), ["Time", "Action", "By", "State", "Assignee", "Note"]);
    assert_eq!(text(&app, "[data-testid=photos-none]"), "No photos");
    let deadline = text(&app, "[data-testid=case-deadline]");
    let deadline = deadline.trim_end_matches(" (overdue)");
    assert!(deadline == "—" || english_date(deadline), "an English date: {deadline}");
    // Data stay as they are: the description, and what the user typed.
    no_cjk_chrome(&app, "#case", "dd, td, option");
    assert_eq!(app.execute("return document.getElementById('note').value", json!([])), json!("请今日处置"));
    app.screenshot(&shots.join("i18n-case-en.png"));
    // An action in English: the page and the board follow the server's answer.
    app.click("button[data-action=accept]");
    wait(&app, "[data-testid=case-state]", "accepted", |t| t == "Accepted");
    app.find("[data-testid=case-state][data-state=accepted]", 30);
    wait(&app, "section.column[data-state=accepted] h2 .col-label", "the accepted column", |t| t == "Accepted");
    assert_eq!(text(&app, "button[data-action=register]"), "Register");
    let accepted_at = texts(&app, "[data-testid=transitions] tr:nth-child(2) td:first-child");
    assert!(accepted_at.len() == 1 && english_date(&accepted_at[0]), "an English date: {accepted_at:?}");
    no_cjk_chrome(&app, "#case", "dd, td, option");
    // The note went with the action; a new one is typed (kept through the switch back).
    app.type_into("[data-testid=note]", "明日复查");

    // The map's status line.
    app.click("#tab-map");
    let status = wait(&app, "[data-testid=map-status]", "map drawn", |t| t.ends_with(" features shown"));
    let n = status.trim_end_matches(" features shown").replace(',', "");
    assert!(n.parse::<u64>().is_ok() && !has_cjk(&status), "{status}");

    // The time slider under the map (the web map's module, worded by the app).
    app.find("input[type=range][data-testid=time-slider]", 30);
    assert_eq!(text(&app, "[data-testid=time-value]"), "Now");
    assert_eq!(
        texts(&app, "[data-testid=time-step] option"),
        ["Auto", "1 minute", "1 hour", "1 day", "7 days", "30 days"]
    );
    assert_eq!(texts(&app, "#timebar .sk-lbl"), ["Step", "Range", "Loop"]);
    let titles = app.execute(
        "return ['time-back', 'time-play', 'time-forward', 'time-now'].map((x) => document.querySelector(`[data-testid=${x}]`).title)",
        json!([]),
    );
    assert_eq!(titles, json!(["Step back", "Play", "Step forward", "Back to now"]));
    no_cjk_chrome(&app, "#timebar", "");
    // Identify at a manhole, and its history timeline.
    app.execute("window.shikongDesktop.state.map.jumpTo({center: arguments[0], zoom: 18})", json!([manhole_at]));
    until(60, "the manhole drawn", || {
        let fs = app.execute("return window.shikongDesktop.renderedFeatures()", json!([]));
        fs.as_array()
            .is_some_and(|a| a.iter().any(|f| f["layer"] == "manhole" && f["id"] == manhole_id.as_str()))
            .then_some(())
    });
    app.execute("window.shikongDesktop.identifyAt(arguments[0])", json!([manhole_at]));
    wait(&app, "[data-testid=identify-history]", "identify", |t| t == "History timeline ›");
    assert_eq!(text(&app, "[data-testid=identify-as-of]"), "Now");
    assert_eq!(text(&app, "[data-testid=identify] tr[data-field=version] th"), "Version");
    assert_eq!(text(&app, "[data-testid=identify] tr[data-field=tx_time] th"), "Transaction time");
    // The layer's own field names (名称, 埋深) and values are data.
    no_cjk_chrome(
        &app,
        "[data-testid=identify]",
        "td, b, tr:not([data-field=version]):not([data-field=tx_time]):not([data-field=valid_from]):not([data-field=valid_to]):not([data-field=code]) th",
    );
    app.click("[data-testid=identify-history]");
    app.find("[data-testid=history] li[data-version]", 30);
    assert!(text(&app, "[data-testid=history] header b").starts_with("History · manhole"));
    let entity = text(&app, "[data-testid=history-entity]");
    assert!(entity.ends_with(" version") || entity.ends_with(" versions"), "{entity}");
    let ops = texts(&app, "[data-testid=history] .sk-op");
    assert!(!ops.is_empty() && ops.iter().all(|o| ["Added", "Changed", "Deleted"].contains(&o.as_str())), "{ops:?}");
    no_cjk_chrome(&app, "[data-testid=history]", ".sk-who, .sk-fc, header b");
    app.screenshot(&shots.join("i18n-identify-en.png"));
    app.click("[data-testid=history] .sk-close");

    // 对比: the bar, the tags and the list of changes (the demo's features, added today).
    app.click("#tab-compare");
    let compared = wait(&app, "[data-testid=compare-status]", "compared", |t| {
        t.ends_with(" features changed") || t == "No changes between the two instants"
    });
    assert!(!has_cjk(&compared), "{compared}");
    assert_eq!(texts(&app, ".sk-compare-bar label > span"), ["Instant A", "Instant B", "Mode"]);
    assert_eq!(texts(&app, "[data-testid=compare-mode] option"), ["Side by side", "Swipe"]);
    assert_eq!(text(&app, "[data-testid=compare-run]"), "Compare");
    assert_eq!(text(&app, "[data-testid=compare-tag-b]"), "B Now");
    if compared.ends_with(" features changed") {
        assert_eq!(texts(&app, "li.sk-change .sk-kind")[0], "Added");
        let counts = texts(&app, "section[data-layer] .sk-counts");
        assert!(counts.iter().any(|c| c.contains(" added · ")), "{counts:?}");
    }
    no_cjk_chrome(&app, "#view-compare", "li.sk-change b, .sk-fc");
    app.screenshot(&shots.join("i18n-compare-en.png"));

    // 本地副本: the frame, the empty list, an error built in code.
    app.click("#tab-replica");
    app.find("#rep-layers input[value=manhole]", 60);
    assert_eq!(
        text(&app, "[data-testid=rep-empty]"),
        "No offline areas yet: download one for a division or the map’s extent below."
    );
    assert_eq!(texts(&app, "#view-replica h2"), ["Offline areas"]);
    assert_eq!(
        texts(&app, "#view-replica h3"),
        ["Download a new area", "Sync", "Import into a layer", "Export a layer"]
    );
    assert_eq!(text(&app, "#rep-sync"), "Sync the open area");
    assert_eq!(text(&app, "#imp-read"), "Read and check");
    assert_eq!(text(&app, "#rep-layers legend"), "Layers");
    app.click("#rep-sync");
    wait(&app, "[data-testid=rep-error]", "no area open", |t| t == "No offline area is open");
    no_cjk_chrome(&app, "#view-replica", "#rep-layers label, option");
    // A division's area downloaded: its card and the progress line.
    pick_division(&app, "洪山区", "420111");
    app.click("#rep-download");
    let area = wait(&app, "[data-testid=rep-area]", "the area downloaded", |t| t.contains("open"));
    assert!(area.contains("Pending 0"), "{area}");
    assert_eq!(texts(&app, "[data-testid=rep-area] button"), ["Open", "Delete"]);
    let progress = text(&app, "#rep-progress-text");
    assert!(progress.starts_with("Download · Done") && progress.contains(" · 洪山区: "), "{progress}");
    no_cjk_chrome(&app, "#view-replica", "#rep-layers label, option, .rep-area-head b, .rep-muted, #rep-progress-text");
    app.screenshot(&shots.join("i18n-replica-en.png"));

    // The edit panel on the map: a new feature's form, a value typed.
    app.click("#rep-edit-map");
    app.find("[data-testid=rep-edit]", 60);
    wait(&app, "[data-testid=rep-edit-title]", "the panel", |t| t == "Editing · 洪山区");
    app.click("#rep-new");
    app.find("#rep-form", 30);
    assert_eq!(text(&app, "[data-testid=rep-feature-code]"), "New feature");
    assert_eq!(text(&app, "[data-testid=rep-mode]"), "Draw: click on the map");
    assert_eq!(text(&app, "#rep-save"), "Save");
    assert_eq!(text(&app, "#rep-cancel"), "Cancel");
    assert_eq!(text(&app, "#rep-new"), "New");
    assert!(text(&app, "[data-testid=rep-hint]").starts_with("Drag a vertex"));
    app.type_into("#rep-form [data-field='名称']", "语言切换测试");
    // Field titles and code lists are the layer's schema (data); the rest of the form is chrome.
    no_cjk_chrome(&app, "#rep-edit", "h3, option, #rep-form label");
    app.screenshot(&shots.join("i18n-map-en.png"));

    // Print in English: the sheet's words in the PDF.
    app.click("#tab-print");
    app.find("[data-testid=print-preview][data-ready=true]", 120);
    let stem = out.join("english");
    app.type_into("[data-testid=print-path]", stem.to_str().unwrap());
    app.click("[data-testid=print-pdf]");
    let saved = app.wait_text("[data-testid=print-status]", 180, "PDF saved", |t| t.contains(".pdf"));
    assert!(saved.starts_with("Saved: "), "{saved}");
    let err = app.text("[data-testid=print-error]");
    assert!(err.is_empty(), "{err}");
    let sheet = app.execute("return window.shikongDesktop.printSheet()", json!([]));
    assert_eq!(sheet_texts(&sheet, "legend-heading"), ["Legend"]);
    assert_eq!(sheet_texts(&sheet, "title"), ["Shikong thematic map"]);
    let pdf = stem.with_extension("pdf");
    let mut cmd = tool("pdftotext", "poppler-utils");
    cmd.args(["-enc", "UTF-8"]).arg(&pdf).arg("-");
    let pdf_text = run_tool(cmd);
    let flat = squeeze(&pdf_text);
    for want in
        ["Shikong thematic map", "Legend", "Scale 1:", "CRS CGCS2000 (EPSG:4490)", "Data as of", "(Beijing time)"]
    {
        assert!(flat.contains(&squeeze(want)), "the English PDF has `{want}`:\n{pdf_text}");
    }
    for zh in ["图例", "比例尺", "坐标系", "数据时点", "北京时间", "时空专题图"] {
        assert!(!flat.contains(zh), "no `{zh}` in the English PDF:\n{pdf_text}");
    }
    app.screenshot(&shots.join("i18n-print-en.png"));

    // Back to Chinese, without a reload: the same elements say their Chinese words again.
    switch(&app, "zh");
    assert_eq!(text(&app, "#tab-board"), "调度台");
    assert_eq!(text(&app, "#tab-replica"), "本地副本");
    assert_eq!(text(&app, "section.column[data-state=accepted] h2 .col-label"), "已受理");
    assert_eq!(text(&app, hotline_column), "已受理（待派单）");
    assert!(text(&app, "[data-testid=who]").starts_with("wang（内业） @ "));
    assert_eq!(text(&app, "[data-testid=case-no]"), format!("案件 {case_no}"));
    assert_eq!(texts(&app, "#case dt")[..3], ["状态", "期限", "处置人"]);
    assert_eq!(text(&app, "[data-testid=case-state]"), "已受理");
    assert_eq!(text(&app, "button[data-action=register]"), "立案");
    assert_eq!(texts(&app, "#case h3"), ["照片", "流转记录"]);
    assert_eq!(app.execute("return document.getElementById('note').value", json!([])), json!("明日复查"));
    let first_at = texts(&app, "[data-testid=transitions] tr:nth-child(2) td:first-child");
    assert!(first_at[0].len() == 16 && first_at[0].as_bytes()[4] == b'-', "{first_at:?}");
    assert!(text(&app, "[data-testid=map-status]").starts_with("已显示"));
    // The slider and the compare view say their Chinese words again (instants and rows kept).
    assert_eq!(text(&app, "[data-testid=time-value]"), "现在");
    assert_eq!(texts(&app, "[data-testid=time-step] option")[..2], ["自动", "1 分钟"]);
    assert_eq!(texts(&app, "#timebar .sk-lbl"), ["步长", "范围", "循环"]);
    assert_eq!(text(&app, "[data-testid=compare-run]"), "对比");
    assert_eq!(text(&app, "[data-testid=compare-tag-b]"), "B 现在");
    let compared = text(&app, "[data-testid=compare-status]");
    assert!(compared.ends_with(" 个要素有变化") || compared == "两时刻之间没有变化", "{compared}");
    assert_eq!(texts(&app, "#view-replica h2"), ["离线区域"]);
    let area = text(&app, "[data-testid=rep-area]");
    assert!(area.contains("已打开") && area.contains("待同步 0"), "{area}");
    assert_eq!(texts(&app, "[data-testid=rep-area] button"), ["打开", "删除"]);
    let progress = text(&app, "#rep-progress-text");
    assert!(progress.starts_with("下载 · 完成") && progress.contains(" · 洪山区："), "{progress}");
    assert_eq!(text(&app, "[data-testid=rep-edit-title]"), "编辑 · 洪山区");
    assert_eq!(text(&app, "[data-testid=rep-mode]"), "绘制：在地图上点击");
    assert_eq!(text(&app, "#rep-save"), "保存");
    assert_eq!(
        app.execute("return document.querySelector(\"#rep-form [data-field='名称']\").value", json!([])),
        json!("语言切换测试"),
        "the typed value survives the switch"
    );
    // The print view re-lays its sheet out in Chinese.
    until(60, "the Chinese sheet", || {
        let sheet = app.execute("return window.shikongDesktop.printSheet()", json!([]));
        (sheet_texts(&sheet, "legend-heading") == ["图例"]).then_some(())
    });
    let sheet = app.execute("return window.shikongDesktop.printSheet()", json!([]));
    assert_eq!(sheet_texts(&sheet, "title"), ["时空专题图"], "the default title follows the language");
    assert!(sheet_texts(&sheet, "date")[0].starts_with("数据时点 "));
    let saved = text(&app, "[data-testid=print-status]");
    assert!(saved.starts_with("已保存：") && saved.contains(".pdf"), "the saved line in Chinese: {saved}");
    app.screenshot(&shots.join("i18n-print-zh.png"));
    app.quit();
}
