// The interface's text, zh-CN first, English available (issue 16). `t(key, vars)` gives the text
// of a key in the current language (`{name}` in the text is replaced by `vars.name`); elements
// with `data-i18n="key"` get their text (`data-i18n-vars`: the vars as JSON),
// `data-i18n-placeholder` / `data-i18n-title` their placeholder / tooltip, whenever the language
// changes. The choice is the device's setting (`device.json`, through the `lang` / `set_lang`
// commands), so it survives restarts and the Rust side words its errors in the same language.
// Views that build text in code call `t()` (dates `dateText`, numbers `num`, case states and
// actions `stateLabel` / `actionLabel`) and re-render on the bus's `lang` event. The words of
// the web map's shared modules (time slider, identify, history, compare: `sk_*` keys) are their
// own table (sync-server/http/web/src/labels.js), registered here, so `t` words them too.
import { invoke, emit } from './core.js';
import { TEXT as SHARED_TEXT } from '../../../sync-server/http/web/src/labels.js';

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
  role_admin: ['管理员', 'administrator'],
  role_office: ['内业', 'office'],
  role_inspector: ['巡查员', 'inspector'],
  role_citizen: ['市民', 'citizen'],
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
  // Shared punctuation: Chinese full-width marks vs English ones.
  paren: ['（{x}）', ' ({x})'],
  colon: ['：', ': '],
  comma: ['，', ', '],
  list_sep: ['、', ', '],
  semi: ['；', '; '],
  // The dispatch board, built in code (board.js)
  photos: ['照片', 'Photos'],
  photos_none: ['没有照片', 'No photos'],
  photos_before: ['处置前', 'Before handling'],
  photos_after: ['处置后', 'After handling'],
  case_route: ['建议派往', 'Suggested for'],
  assignee_ph: ['li 或 department:排水队', 'li or department:NAME'],
  note_required: ['（{actions}时必填）', ' (required to {actions})'],
  no_actions: ['当前状态下您无可执行的操作', 'Nothing you can do in this state'],
  assignee_load: ['{who} 当前在办 {n} 件', '{who} has {n} open tasks'],
  assignee_overdue: ['，其中超期 {n} 件', ', {n} of them overdue'],
  // The shipped flow's (city-standard) states and actions in English: a fallback for servers
  // that predate `state_label_en` (the server's English label of any flow's state).
  flow_state_reported: ['信息收集（已上报）', 'Reported'],
  flow_state_accepted: ['已受理', 'Accepted'],
  flow_state_registered: ['已立案（待派遣）', 'Registered (to dispatch)'],
  flow_state_dispatched: ['已派遣（处置中）', 'Dispatched (being handled)'],
  flow_state_handled: ['已处置（待核查）', 'Handled (to verify)'],
  flow_state_verified: ['已核查（待结案）', 'Verified (to close)'],
  flow_state_suspended: ['挂账', 'Parked (long-term)'],
  flow_state_closed: ['已结案', 'Closed'],
  flow_state_dismissed: ['不予立案', 'Not registered'],
  flow_state_rated: ['已评价', 'Rated'],
  flow_action_accept: ['受理', 'Accept'],
  flow_action_register: ['立案', 'Register'],
  flow_action_dispatch: ['派遣', 'Dispatch'],
  flow_action_handle: ['处置', 'Handle'],
  flow_action_verify: ['核查', 'Verify'],
  flow_action_close: ['结案', 'Close'],
  flow_action_return: ['回退', 'Return'],
  flow_action_extend: ['延期', 'Extend'],
  flow_action_suspend: ['挂账', 'Park'],
  flow_action_urge: ['督办', 'Urge'],
  flow_action_rate: ['评价', 'Rate'],
  // The map (map.js)
  map_offline: ['离线：显示本地副本的要素（无底图）', "Offline: the local replica's features (no basemap)"],
  // The time slider under the map (time.js)
  time_range_failed: ['时间范围读取失败：{e}', 'Cannot read the time range: {e}'],
  // The desktop's own replica (replica.js)
  tab_replica: ['本地副本', 'Local replica'],
  rp_download: ['下载', 'Download'],
  rp_sync: ['同步', 'Sync'],
  rp_import: ['导入', 'Import'],
  rp_export: ['导出', 'Export'],
  rp_replica: ['副本', 'Replica'],
  rp_basemap: ['底图', 'Basemap'],
  rp_done: ['完成', 'Done'],
  rp_uploading: ['上传附件', 'Uploading attachments'],
  rp_pushing: ['发送修改', 'Sending edits'],
  rp_pulling: ['接收更新', 'Receiving updates'],
  rp_verifying: ['校验', 'Verifying'],
  rp_reading: ['读取文件', 'Reading the file'],
  rp_geocoding: ['批量地理编码', 'Geocoding'],
  rp_writing: ['写入', 'Writing'],
  rep_areas: ['离线区域', 'Offline areas'],
  rep_new_area: ['下载新区域', 'Download a new area'],
  rep_name: ['名称', 'Name'],
  rep_name_ph: ['默认：行政区名', "Default: the division's name"],
  rep_division: ['行政区', 'Division'],
  rep_div_ph: ['如：洪山区', 'A division’s name'],
  rep_search: ['搜索', 'Search'],
  rep_unselected: ['（未选择）', '(none chosen)'],
  rep_use_extent: ['改用当前地图范围', "Use the map's current extent instead"],
  rep_sync_h: ['同步', 'Sync'],
  rep_sync_btn: ['同步当前区域', 'Sync the open area'],
  rep_edit_map: ['在地图上编辑', 'Edit on the map'],
  rep_layer: ['图层', 'Layer'],
  imp_h: ['导入到图层', 'Import into a layer'],
  imp_path: ['文件路径（.geojson .gpkg .zip .csv .xlsx）', 'File path (.geojson .gpkg .zip .csv .xlsx)'],
  imp_columns: ['列与地理编码', 'Columns and geocoding'],
  imp_address: ['地址列（CSV/XLSX，按地址批量地理编码）', 'Address column (CSV/XLSX, geocoded in a batch)'],
  imp_address_ph: ['如：地址', 'e.g. address'],
  imp_threshold: ['复核阈值（得分低于此值需复核）', 'Review threshold (rows scoring below it are reviewed)'],
  imp_lon: ['经度列', 'Longitude column'],
  imp_lon_ph: ['自动识别 lon/经度', 'found by name (lon)'],
  imp_lat: ['纬度列', 'Latitude column'],
  imp_lat_ph: ['自动识别 lat/纬度', 'found by name (lat)'],
  imp_wkt: ['WKT 列', 'WKT column'],
  imp_wkt_ph: ['自动识别 wkt', 'found by name (wkt)'],
  imp_src_layer: ['GeoPackage 图层 / XLSX 工作表', 'GeoPackage layer / XLSX sheet'],
  imp_read: ['读取并检查', 'Read and check'],
  exp_h: ['导出图层', 'Export a layer'],
  exp_path: ['保存为（.geojson .gpkg .zip（Shapefile）.csv）', 'Save as (.geojson .gpkg .zip (Shapefile) .csv)'],
  exp_go: ['导出', 'Export'],
  rep_server_offline: ['离线：无法读取服务器图层（{e}）', "Offline: cannot read the server's layers ({e})"],
  rep_empty: ['还没有离线区域：在下方选择行政区或地图范围下载。', 'No offline areas yet: download one for a division or the map’s extent below.'],
  rep_opened: ['已打开', 'open'],
  rep_pending: ['待同步 {n}', 'Pending {n}'],
  rep_attachments_n: ['附件 {n}', 'Attachments {n}'],
  rep_conflicts_n: ['冲突 {n}', 'Conflicts {n}'],
  rep_open: ['打开', 'Open'],
  rep_confirm_delete: ['“{name}”还有 {n} 处修改未同步，仍然删除？', '“{name}” has {n} edits not yet synced. Delete it anyway?'],
  rep_none_found: ['没有找到', 'Nothing found'],
  rep_no_map: ['地图尚未打开：先打开“地图”标签页', 'The map is not open yet: open the Map tab first'],
  rep_no_area: ['没有打开的离线区域', 'No offline area is open'],
  rep_syncing: ['同步中…', 'Syncing…'],
  rep_sent: ['已发送 {sent}（接受 {accepted}）', 'Sent {sent} ({accepted} accepted)'],
  rep_received: ['已接收 {n}', 'Received {n}'],
  rep_rejected: ['被拒绝 {n}：{why}', 'Rejected {n}: {why}'],
  imp_keep_state: ['导入', 'Import'],
  imp_review_state: ['待复核', 'To review'],
  imp_drop_state: ['不导入', 'Skip'],
  imp_summary: ['{file} → {layer}：共 {rows} 行，导入 {keep}，待复核 {review}，不导入 {dropped}', '{file} → {layer}: {rows} rows, {keep} to import, {review} to review, {dropped} skipped'],
  imp_ignored: ['未对应字段的列（不导入）：{cols}', 'Columns without a field (not imported): {cols}'],
  imp_col_location: ['位置', 'Location'],
  imp_col_address: ['地址', 'Address'],
  imp_col_standard: ['标准地址', 'Standard address'],
  imp_col_status: ['匹配', 'Match'],
  imp_col_score: ['得分 (< {t})', 'Score (< {t})'],
  imp_col_decision: ['处理', 'Decision'],
  imp_keep: ['保留', 'Keep'],
  imp_fix: ['修正地址', 'Fix the address'],
  imp_drop: ['不导入', 'Skip'],
  imp_commit: ['导入 {n} 个要素', 'Import {n} features'],
  imp_cancel: ['放弃', 'Discard'],
  imp_done: ['已导入 {n} 个要素，待同步。', 'Imported {n} features, to be synced.'],
  rep_features_n: ['{n} 个要素', '{n} features'],
  exp_done: ['已导出 {n} 个要素到 {path}', 'Exported {n} features to {path}'],
  rep_yes: ['是', 'Yes'],
  rep_no: ['否', 'No'],
  rep_edit_title: ['编辑 · {name}', 'Editing · {name}'],
  rep_no_open_area: ['（未打开区域）', '(no area open)'],
  rep_new: ['新建', 'New'],
  rep_snap: ['吸附（{px} 像素）', 'Snap ({px} px)'],
  rep_new_feature: ['新要素', 'New feature'],
  rep_status_pending: ['待同步', 'pending'],
  rep_status_synced: ['已同步', 'synced'],
  rep_place: ['点击地图放置', 'Click the map to place'],
  rep_redraw: ['重新绘制', 'Redraw'],
  rep_hint: ['拖动节点移动；Shift+点击添加节点；Alt+点击节点删除。', 'Drag a vertex to move it; Shift+click adds a vertex; Alt+click on a vertex removes it.'],
  rep_attachments: ['附件', 'Attachments'],
  rep_none: ['无', 'None'],
  rep_to_upload: ['待上传', 'to upload'],
  rep_files: ['添加文件（路径，多个用 ; 分隔）', 'Add files (paths, separated by ;)'],
  rep_save: ['保存', 'Save'],
  rep_delete_feature: ['删除要素', 'Delete feature'],
  rep_cancel: ['取消', 'Cancel'],
  rep_pick_hint: ['点击地图上的要素进行编辑，或点“新建”。当前图层 {n} 个要素。', 'Click a feature on the map to edit it, or “New”. {n} features in this layer.'],
  rep_mode_select: ['选择/编辑', 'Select/edit'],
  rep_mode_draw: ['绘制：在地图上点击', 'Draw: click on the map'],
  rep_mode_move: ['移动：在地图上点击新位置', 'Move: click the new position on the map'],
  rep_gone: ['要素已不在副本中', 'The feature is no longer in the replica'],
  rep_draw_first: ['请先在地图上绘制几何', 'Draw the geometry on the map first'],
  rep_saved: ['已保存', 'Saved'],
  rep_unchanged: ['没有修改', 'No changes'],
  rep_saved_line: ['{what}：{code} · 待同步 {n}', '{what}: {code} · {n} pending'],
  rep_confirm_delete_feature: ['删除要素 {code}？', 'Delete feature {code}?'],
  rep_snapped: ['已吸附到 {feature} 的{kind}（{px} 像素）', 'Snapped to {kind} of {feature} ({px} px)'],
  rep_snap_vertex: ['节点', 'a vertex'],
  rep_snap_edge: ['边', 'an edge'],
  rep_geom_info: ['{type} · {n} 个节点', '{type} · {n} vertices'],
  rep_no_geom: ['未设置几何', 'No geometry yet'],
};

Object.assign(TEXT, SHARED_TEXT);

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

/** `n` with the language's digit grouping (`1,234.5`); `digits`: fixed decimals. */
export function num(n, digits) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return String(n ?? '');
  const opts = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
  return n.toLocaleString(current === 'en' ? 'en-US' : 'zh-CN', opts);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A server time (`2026-12-07T10:00:00+08:00`, Beijing time as the server wrote it) for the
 * language: `2026-12-07 10:00` in Chinese, `Dec 7, 2026 10:00` in English; `—` when none. */
export function dateText(s) {
  if (!s) return '—';
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}:\d{2}))?/.exec(String(s));
  if (!m) return String(s);
  if (current !== 'en') return m[4] ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}` : `${m[1]}-${m[2]}-${m[3]}`;
  const day = `${MONTHS[Number(m[2]) - 1]} ${Number(m[3])}, ${m[1]}`;
  return m[4] ? `${day} ${m[4]}` : day;
}

/** A case state's label: the server's Chinese `state_label` / English `state_label_en` (any
 * flow's, from its definition); from an older server without the English one, the shipped flow's
 * (`flow_state_ID`), else the id. */
export function stateLabel(id, serverLabel, serverLabelEn) {
  const key = `flow_state_${id}`;
  if (current === 'en') return serverLabelEn || (TEXT[key] ? t(key) : id);
  return serverLabel || (TEXT[key] ? t(key) : id);
}

/** An action's label: `label` / `labelEn` as the server gives them, else the shipped flow's. */
export function actionLabel(id, label, labelEn) {
  const key = `flow_action_${id}`;
  if (current === 'en') return labelEn || (TEXT[key] ? t(key) : label || id);
  return label || (TEXT[key] ? t(key) : id);
}

/** Adds texts (`{key: [zh, en]}`) for a view's own keys. */
export function addText(entries) {
  Object.assign(TEXT, entries);
}

/** Puts the current language's text into every `data-i18n*` element under `root`. */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    let vars;
    try {
      vars = el.dataset.i18nVars ? JSON.parse(el.dataset.i18nVars) : undefined;
    } catch {
      vars = undefined;
    }
    el.textContent = t(el.dataset.i18n, vars);
  }
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
