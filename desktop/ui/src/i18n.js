// The interface's text, zh-CN first, English available (issue 16). `t(key, vars)` gives the text
// of a key in the current language (`{name}` in the text is replaced by `vars.name`); elements
// with `data-i18n="key"` get their text, `data-i18n-placeholder` / `data-i18n-title` their
// placeholder / tooltip, whenever the language changes. The choice is the device's setting
// (`device.json`, through the `lang` / `set_lang` commands), so it survives restarts and the
// Rust side words its errors in the same language. Views that build text in code call `t()`
// and re-render on the bus's `lang` event.
import { invoke, emit } from './core.js';

const TEXT = {
  // The shell (index.html, app.js)
  app: ['时空桌面', 'Shikong Desktop'],
  login_title: ['时空桌面 · 登录', 'Shikong Desktop · Sign in'],
  server: ['服务器地址', 'Server URL'],
  username: ['用户名', 'Username'],
  password: ['密码', 'Password'],
  login: ['登录', 'Sign in'],
  logout: ['退出登录', 'Sign out'],
  refresh: ['刷新', 'Refresh'],
  session_kept: ['会话保存在：{where}', 'Session kept in: {where}'],
  lang_label: ['语言', 'Language'],
  tab_board: ['调度台', 'Dispatch'],
  tab_map: ['地图', 'Map'],
  tab_table: ['属性表', 'Attributes'],
  tab_compare: ['对比', 'Compare'],
  tab_conflicts: ['冲突', 'Conflicts'],
  tab_print: ['打印', 'Print'],
  tab_stats: ['统计', 'Statistics'],
  // The dispatch board (board.js)
  board_empty: ['没有待办案件', 'No open cases'],
  board_more: ['案件较多，仅显示前 500 件', 'Many cases: the first 500 are shown'],
  overdue: ['已超期', 'Overdue'],
  overdue_paren: ['（已超期）', ' (overdue)'],
  deadline: ['期限', 'Deadline'],
  no_deadline: ['无时限', 'No deadline'],
  case_title: ['案件 {no}', 'Case {no}'],
  case_state: ['状态', 'State'],
  case_assignee: ['处置人', 'Assignee'],
  case_class: ['类别', 'Class'],
  case_description: ['描述', 'Description'],
  case_source: ['来源', 'Source'],
  case_location: ['位置', 'Location'],
  dispatch_to: ['派遣给（用户名，或 department:部门）', 'Dispatch to (user name, or department:NAME)'],
  note: ['备注', 'Note'],
  transitions: ['流转记录', 'Transitions'],
  col_time: ['时间', 'Time'],
  col_action: ['动作', 'Action'],
  col_actor: ['人员', 'By'],
  col_state: ['状态', 'State'],
  col_assignee: ['处置人', 'Assignee'],
  col_note: ['备注', 'Note'],
  // The map (map.js)
  map_loading: ['地图加载中…', 'Loading the map…'],
  map_shown: ['已显示 {n} 个要素', '{n} features shown'],
  map_error: ['地图错误：{e}', 'Map error: {e}'],
  style_failed: ['样式加载失败 ({status})：{e}', 'Cannot load the style ({status}): {e}'],
  // Map tools (maptools.js)
  mt_search_ph: ['搜索地名地址（/）', 'Search an address (/)'],
  mt_layers: ['图层', 'Layers'],
  mt_measure_line: ['测距', 'Distance'],
  mt_measure_area: ['测面', 'Area'],
  mt_bookmarks: ['书签', 'Bookmarks'],
  mt_style: ['样式', 'Style'],
  mt_basemap: ['底图', 'Basemap'],
  mt_basemap_none: ['无底图', 'No basemap'],
  mt_offline: ['离线', 'offline'],
  mt_gcj: ['GCJ-02 已纠偏', 'GCJ-02, shifted into place'],
  mt_overlays: ['专题图层', 'Layers'],
  mt_cases: ['案件', 'Cases'],
  mt_no_layers: ['没有图层', 'No layers'],
  mt_measure_hint: ['单击地图加点，双击或回车结束，Esc 取消', 'Click to add points; double-click or Enter to finish; Esc cancels'],
  mt_length: ['长度', 'Length'],
  mt_area: ['面积', 'Area'],
  mt_perimeter: ['周长', 'Perimeter'],
  mt_segments: ['{n} 段', '{n} segments'],
  mt_geodesic: ['CGCS2000 椭球面测地线', 'geodesic on the CGCS2000 ellipsoid'],
  mt_clear: ['清除', 'Clear'],
  mt_coords_lonlat: ['CGCS2000 经度 {lon}° 纬度 {lat}°', 'CGCS2000 lon {lon}° lat {lat}°'],
  mt_coords_gk: ['3°带 {zone}（EPSG:{epsg}，中央经线 {cm}°E） X(北) {x} m  Y(东) {y} m', '3° zone {zone} (EPSG:{epsg}, CM {cm}°E) X (north) {x} m  Y (east) {y} m'],
  mt_coords_no_gk: ['不在 CGCS2000 3°带范围内', 'outside the CGCS2000 3° zones'],
  mt_located: ['已定位：{addr}（匹配度 {score}）', 'Located: {addr} (score {score})'],
  mt_not_found: ['未找到：{q}', 'Not found: {q}'],
  mt_ambiguous: ['有多个可能的地点，已定位到第一个：{addr}', 'Several places match; showing the first: {addr}'],
  mt_no_point: ['找到了 {addr}，但没有坐标', 'Found {addr}, but it has no point'],
  mt_bookmark_name: ['书签名称', 'Bookmark name'],
  mt_bookmark_save: ['保存当前视图', 'Save this view'],
  mt_bookmarks_empty: ['还没有书签', 'No bookmarks yet'],
  mt_delete: ['删除', 'Delete'],
  // Shortcuts (keys.js)
  keys_title: ['快捷键', 'Keyboard shortcuts'],
  keys_tabs: ['切换到第 1–6 个标签页', 'Open tab 1–6'],
  keys_search: ['搜索地名地址', 'Search an address'],
  keys_measure: ['测距', 'Measure a distance'],
  keys_area: ['测面', 'Measure an area'],
  keys_layers: ['图层面板', 'Layers panel'],
  keys_bookmarks: ['书签面板', 'Bookmarks panel'],
  keys_cancel: ['取消当前工具、关闭面板', 'Cancel the tool, close panels'],
  keys_print: ['打印', 'Print'],
  keys_help: ['显示/隐藏本帮助', 'Show or hide this help'],
  keys_lang: ['切换中文/English', 'Switch 中文/English'],
  close: ['关闭', 'Close'],
};

let current = 'zh';

/** The current language: `zh` or `en`. */
export const lang = () => current;

/** The text of `key` in the current language, `{name}` replaced by `vars.name`; an unknown key
 * shows itself (visible in tests, never blank). */
export function t(key, vars) {
  const pair = TEXT[key];
  let s = pair ? pair[current === 'en' ? 1 : 0] : key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

/** Adds texts (`{key: [zh, en]}`) for a view's own keys. */
export function addText(entries) {
  Object.assign(TEXT, entries);
}

/** Puts the current language's text into every `data-i18n*` element under `root`. */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  document.documentElement.lang = current === 'en' ? 'en' : 'zh-CN';
  document.title = t('app');
  const sel = document.getElementById('lang');
  if (sel) sel.value = current;
}

/** Switches the language (saved in the device's settings) and tells every view (`lang`). */
export async function setLang(l) {
  await invoke('set_lang', { lang: l });
  current = l === 'en' ? 'en' : 'zh';
  applyI18n();
  emit('lang', current);
}

/** Reads the saved language at start. */
export async function initLang() {
  try {
    current = (await invoke('lang')) === 'en' ? 'en' : 'zh';
  } catch {
    current = 'zh';
  }
  applyI18n();
  emit('lang', current);
}

const sel = document.getElementById('lang');
if (sel) sel.addEventListener('change', () => setLang(sel.value));
initLang();
