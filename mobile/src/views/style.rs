//! The app's stylesheet: phone-first layout (header, map, panel, tabs), form fields, message
//! line, cards. One constant the root puts in a `<style>` element; no external CSS to load.

pub(super) const CSS: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "PingFang SC", sans-serif; font-size: 16px; color: #1f2329; background: #f5f6f7; }
.app { display: flex; flex-direction: column; height: 100vh; max-width: 900px; margin: 0 auto; background: #fff; }
header { display: flex; align-items: center; justify-content: space-between; padding: 8px 12px; background: #1d4ed8; color: #fff; }
header h1 { font-size: 18px; margin: 0; }
.net { font-size: 13px; padding: 2px 8px; border-radius: 10px; background: rgba(255,255,255,.2); }
#map { width: 100%; flex: none; }
.panel { flex: 1; overflow-y: auto; padding: 10px 12px; }
nav.tabs { display: flex; border-top: 1px solid #e5e6eb; }
nav.tabs button { flex: 1; padding: 12px 4px; border: 0; background: #fff; font-size: 14px; }
nav.tabs button.on { color: #1d4ed8; font-weight: 600; border-top: 3px solid #1d4ed8; }
button, select, input, textarea { font: inherit; }
button.primary { background: #1d4ed8; color: #fff; border: 0; border-radius: 6px; padding: 10px 16px; }
button.act { border: 1px solid #c9cdd4; background: #fff; border-radius: 6px; padding: 8px 10px; margin: 2px; }
label.field { display: block; margin: 8px 0; }
label.field span { display: block; font-size: 14px; color: #4e5969; margin-bottom: 2px; }
label.field input, label.field select, label.field textarea { width: 100%; padding: 8px; border: 1px solid #c9cdd4; border-radius: 6px; }
.err { color: #cb2634; font-size: 13px; }
.msg { padding: 8px 10px; margin: 6px 0; border-radius: 6px; }
.msg.ok { background: #e8ffea; color: #00692e; }
.msg.bad { background: #ffece8; color: #cb2634; }
.card { border: 1px solid #e5e6eb; border-radius: 8px; padding: 10px; margin: 8px 0; overflow-wrap: anywhere; }
.muted { color: #86909c; font-size: 13px; }
.overdue { background: #cb2634; color: #fff; border-radius: 4px; padding: 0 6px; font-size: 13px; }
.card.tap, .tap { cursor: pointer; }
.today { background: #f08c00; color: #fff; border-radius: 4px; padding: 0 6px; font-size: 13px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; }
.dot-overdue { background: #cb2634; }
.dot-today { background: #f08c00; }
.dot-later { background: #1971c2; }
.card.bad { border-color: #f53f3f; }
.steps { margin: 6px 0; padding-left: 18px; font-size: 14px; }
.stars button { font-size: 22px; border: 0; background: none; color: #c9cdd4; padding: 0 2px; }
.stars button.on { color: #f7ba1e; }
.row { display: flex; gap: 6px; flex-wrap: wrap; align-items: center; }
.suggest { border: 1px solid #e5e6eb; border-radius: 6px; margin-top: 4px; }
.suggest div { padding: 8px; border-bottom: 1px solid #f2f3f5; cursor: pointer; }
.qr svg { width: 200px; height: 200px; }
progress { width: 100%; }
"#;
