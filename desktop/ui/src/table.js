// The attribute table (属性表, issue 16): a layer's features page by page (keyset cursors; sorting by
// a column is the server's `sortby`), following the time slider (`state.asOf`); a CQL2 query
// builder whose text is built and checked in Rust (`table_cql`) and shown as sent; a selection
// shared with the map (`state.selection` + `selection` event: selected rows are highlighted on the
// map, shift-click or shift-drag on the map selects the table layer's features there); export of
// the query's result or the selection to GeoJSON, CSV or GeoPackage with progress. A 行政区 choice
// (a district of the `district` layer) is sent as the server's `intersects=district/CODE`: a
// district's polygon as CQL2 text would exceed the filter's size bound.
import { invoke, $, esc, state, on, emit, registerView, openView } from './core.js';
import { t, addText, applyI18n } from './i18n.js';

addText({
  tb_layer: ['图层', 'Layer'],
  tb_code: ['编码', 'Code'],
  tb_version: ['版本', 'Version'],
  tb_tx: ['记录时间', 'Recorded'],
  tb_size: ['每页', 'Per page'],
  tb_prev: ['上一页', 'Previous'],
  tb_next: ['下一页', 'Next'],
  tb_page: ['第 {k} 页', 'Page {k}'],
  tb_total: ['共 {n} 条', '{n} in all'],
  tb_rows: ['本页 {n} 条', '{n} on this page'],
  tb_now: ['当前数据', 'Current data'],
  tb_asof: ['{t} 时的数据', 'As of {t}'],
  tb_ms: ['{ms} 毫秒', '{ms} ms'],
  tb_selected: ['已选 {n} 个', '{n} selected'],
  tb_clear_sel: ['清除选择', 'Clear selection'],
  tb_show_map: ['在地图上查看', 'Show on the map'],
  tb_sort_hint: ['点击列标题排序', 'Click a column to sort'],
  tb_empty: ['没有符合条件的要素', 'No features match'],
  qb_title: ['查询条件 (CQL2)', 'Query (CQL2)'],
  qb_combine: ['条件组合', 'Combine'],
  qb_and: ['全部满足 (AND)', 'All (AND)'],
  qb_or: ['任一满足 (OR)', 'Any (OR)'],
  qb_add: ['＋ 条件', '＋ Condition'],
  qb_area: ['空间范围', 'Area'],
  qb_draw: ['在地图上框选', 'Draw on the map'],
  qb_area_none: ['未限定', 'None'],
  qb_area_set: ['矩形 {w}×{h} 度', 'Rectangle {w}×{h}°'],
  qb_clear: ['清除', 'Clear'],
  qb_division: ['行政区', 'Division'],
  qb_div_any: ['（不限）', '(any)'],
  qb_time: ['时间条件', 'Time'],
  qb_from: ['起 (YYYY-MM-DD)', 'From (YYYY-MM-DD)'],
  qb_to: ['止 (YYYY-MM-DD)', 'To (YYYY-MM-DD)'],
  qb_run: ['查询', 'Run'],
  qb_reset: ['清空条件', 'Reset'],
  qb_sent: ['发送的 CQL2：', 'CQL2 sent:'],
  qb_none: ['（无条件）', '(no filter)'],
  qb_draw_hint: ['在地图上按住鼠标拖出矩形', 'Drag a rectangle on the map'],
  qb_value: ['值', 'value'],
  ex_title: ['导出', 'Export'],
  ex_scope_query: ['全部查询结果', 'The whole query result'],
  ex_scope_sel: ['选中的要素', 'The selection'],
  ex_lonlat: ['CSV 含经纬度列', 'CSV with lon/lat columns'],
  ex_path: ['保存到', 'Save to'],
  ex_run: ['导出', 'Export'],
  ex_done: ['已导出 {n} 个要素到 {path}（{kb} KB）', '{n} features written to {path} ({kb} KB)'],
  ex_progress: ['已写入 {n} 个要素…', '{n} features written…'],
  ex_no_sel: ['没有选中的要素', 'Nothing is selected'],
});

const view = $('view-table');
view.innerHTML = `
<div class="tb-bar">
  <label><span data-i18n="tb_layer"></span> <select id="tb-layer" data-testid="tb-layer"></select></label>
  <label><span data-i18n="tb_size"></span> <select id="tb-size" data-testid="tb-size">
    <option>25</option><option selected>50</option><option>100</option><option>500</option></select></label>
  <button type="button" id="tb-prev" data-testid="tb-prev" data-i18n="tb_prev"></button>
  <span id="tb-pageinfo" data-testid="tb-pageinfo"></span>
  <button type="button" id="tb-next" data-testid="tb-next" data-i18n="tb_next"></button>
  <span id="tb-asof" data-testid="tb-asof"></span>
  <span id="tb-sel" data-testid="tb-sel"></span>
  <button type="button" id="tb-clear-sel" data-i18n="tb_clear_sel"></button>
  <button type="button" id="tb-show-map" data-i18n="tb_show_map"></button>
  <span id="tb-ms" class="tb-muted" data-testid="tb-ms"></span>
</div>
<p class="error" id="tb-error" role="alert" data-testid="tb-error"></p>
<div class="tb-body">
  <aside class="tb-side">
    <h3 data-i18n="qb_title"></h3>
    <label><span data-i18n="qb_combine"></span> <select id="qb-combine" data-testid="qb-combine">
      <option value="AND" data-i18n="qb_and"></option><option value="OR" data-i18n="qb_or"></option></select></label>
    <div id="qb-rows" data-testid="qb-rows"></div>
    <button type="button" id="qb-add" data-testid="qb-add" data-i18n="qb_add"></button>
    <fieldset><legend data-i18n="qb_area"></legend>
      <span id="qb-area" data-testid="qb-area"></span>
      <button type="button" id="qb-draw" data-testid="qb-draw" data-i18n="qb_draw"></button>
      <button type="button" id="qb-area-clear" data-i18n="qb_clear"></button>
      <label id="qb-division-box" hidden><span data-i18n="qb_division"></span> <select id="qb-division" data-testid="qb-division"></select></label>
    </fieldset>
    <fieldset><legend data-i18n="qb_time"></legend>
      <select id="qb-time-field" data-testid="qb-time-field"></select>
      <input id="qb-time-from" data-testid="qb-time-from" data-i18n-placeholder="qb_from">
      <input id="qb-time-to" data-testid="qb-time-to" data-i18n-placeholder="qb_to">
    </fieldset>
    <div class="tb-actions">
      <button type="button" id="qb-run" data-testid="qb-run" data-i18n="qb_run"></button>
      <button type="button" id="qb-reset" data-i18n="qb_reset"></button>
    </div>
    <div class="tb-muted" data-i18n="qb_sent"></div>
    <pre id="qb-cql" data-testid="qb-cql"></pre>
    <p class="error" id="qb-error" role="alert" data-testid="qb-error"></p>
    <h3 data-i18n="ex_title"></h3>
    <label><input type="radio" name="ex-scope" value="query" checked data-testid="ex-scope-query"> <span data-i18n="ex_scope_query"></span></label>
    <label><input type="radio" name="ex-scope" value="selection" data-testid="ex-scope-sel"> <span data-i18n="ex_scope_sel"></span></label>
    <select id="ex-format" data-testid="ex-format"><option value="geojson">GeoJSON</option><option value="csv">CSV (Excel)</option><option value="gpkg">GeoPackage</option></select>
    <label><input type="checkbox" id="ex-lonlat" checked> <span data-i18n="ex_lonlat"></span></label>
    <label><span data-i18n="ex_path"></span> <input id="ex-path" data-testid="ex-path"></label>
    <button type="button" id="ex-run" data-testid="ex-run" data-i18n="ex_run"></button>
    <progress id="ex-progress" max="1" value="0" hidden></progress>
    <p id="ex-status" data-testid="ex-status"></p>
  </aside>
  <div class="tb-grid"><table id="tb-table" data-testid="tb-table"><thead></thead><tbody></tbody></table></div>
</div>
<div id="tb-box" hidden></div>`;

// ---------------------------------------------------------------------------------------------
// State of the view

const tb = {
  layers: [],
  layer: null,
  fields: [],
  filter: null,
  sort: null, // {field, desc}
  cursors: [null], // the cursor of each page shown so far (page k = cursors[k-1])
  page: null,
  loading: null,
  geoms: new Map(), // id → geometry of selected features (for the map's highlight)
  area: null, // the drawn rectangle's ring
  division: null, // the code of the district the query is limited to (`intersects=district/CODE`)
  divisions: null, // [{code, name}] of the `district` layer, once read
  drawing: false,
  pathEdited: false,
};

const SYSTEM = new Set(['entity_id', 'code', 'geometry', 'valid_from', 'valid_to', 'version']);
const rowFields = () => tb.fields.filter((f) => !SYSTEM.has(f.name));
/** The table's columns: code, the layer's fields, then the version and when it was recorded. */
function columns() {
  return [
    { name: 'code', title: t('tb_code'), sortable: true },
    ...rowFields().filter((f) => f.kind !== 'geometry').map((f) => ({ name: f.name, title: f.title, sortable: true })),
    { name: 'version', title: t('tb_version'), sortable: false },
    { name: 'tx_time', title: t('tb_tx'), sortable: false },
  ];
}

function cell(v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.length ? `${v.length} 个附件` : '';
  if (v === true) return '是';
  if (v === false) return '否';
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// Layers, fields, pages

async function loadLayers() {
  tb.layers = await invoke('table_layers');
  const sel = $('tb-layer');
  sel.innerHTML = tb.layers.map((l) => `<option value="${esc(l.name)}">${esc(l.title || l.name)}</option>`).join('');
  const keep = tb.layer && tb.layers.some((l) => l.name === tb.layer) ? tb.layer : (tb.layers.find((l) => l.name === 'manhole') || tb.layers[0] || {}).name;
  if (keep) await selectLayer(keep);
}

async function selectLayer(name) {
  $('tb-layer').value = name;
  if (tb.layer !== name) {
    tb.layer = name;
    tb.sort = null;
    tb.filter = null;
    tb.area = null;
    tb.division = null;
    $('qb-division').value = '';
    $('qb-rows').innerHTML = '';
    $('qb-cql').textContent = t('qb_none');
    setSelection([], []);
  }
  tb.fields = await invoke('table_fields', { layer: name });
  renderTimeFields();
  renderArea();
  if (!tb.pathEdited) await defaultPath();
  await reload();
}

/** Shows page 1 again (the filter, the sort, the instant or the page size changed). */
function reload() {
  tb.cursors = [null];
  return loadPage();
}

async function loadPage() {
  const k = tb.cursors.length;
  const args = {
    layer: tb.layer,
    filter: tb.filter,
    sortby: tb.sort ? `${tb.sort.desc ? '-' : '+'}${tb.sort.field}` : null,
    asOf: state.asOf,
    limit: Number($('tb-size').value),
    cursor: tb.cursors[k - 1],
    bbox: null,
    intersects: intersects(),
  };
  $('tb-error').textContent = '';
  const req = invoke('table_page', args);
  tb.loading = req;
  try {
    const page = await req;
    if (tb.loading !== req) return; // a newer request replaced this one
    tb.page = page;
    render();
  } catch (e) {
    if (tb.loading !== req) return;
    tb.page = null;
    render();
    $('tb-error').textContent = String(e);
    $('qb-error').textContent = String(e);
  } finally {
    if (tb.loading === req) tb.loading = null;
  }
}

function render() {
  const cols = columns();
  const head = cols
    .map((c) => {
      const on = tb.sort && tb.sort.field === c.name;
      const arrow = on ? (tb.sort.desc ? ' ▼' : ' ▲') : '';
      return `<th data-field="${esc(c.name)}" class="${c.sortable ? 'sortable' : ''}${on ? ' sorted' : ''}" title="${c.sortable ? esc(t('tb_sort_hint')) : ''}">${esc(c.title)}${arrow}</th>`;
    })
    .join('');
  view.querySelector('thead').innerHTML = `<tr><th class="tb-check"></th>${head}</tr>`;
  const feats = tb.page ? tb.page.features : [];
  const sel = state.selection.layer === tb.layer ? state.selection.ids : new Set();
  view.querySelector('tbody').innerHTML = feats.length
    ? feats
        .map((f) => {
          const p = f.properties;
          const tds = cols.map((c) => `<td>${esc(cell(p[c.name]))}</td>`).join('');
          const on = sel.has(f.id);
          return `<tr data-id="${esc(f.id)}" class="${on ? 'selected' : ''}"><td class="tb-check"><input type="checkbox" ${on ? 'checked' : ''} tabindex="-1"></td>${tds}</tr>`;
        })
        .join('')
    : `<tr><td colspan="${cols.length + 1}" class="empty">${esc(t('tb_empty'))}</td></tr>`;
  const k = tb.cursors.length;
  const n = feats.length;
  const size = Number($('tb-size').value);
  let total = tb.page && tb.page.matched != null ? tb.page.matched : null;
  if (total == null && tb.page && !tb.page.next) total = (k - 1) * size + n;
  $('tb-pageinfo').textContent = [t('tb_page', { k }), t('tb_rows', { n }), total != null ? t('tb_total', { n: total }) : ''].filter(Boolean).join(' · ');
  $('tb-prev').disabled = k <= 1;
  $('tb-next').disabled = !(tb.page && tb.page.next);
  $('tb-asof').textContent = state.asOf ? t('tb_asof', { t: state.asOf.slice(0, 19).replace('T', ' ') }) : t('tb_now');
  $('tb-asof').classList.toggle('past', !!state.asOf);
  $('tb-ms').textContent = tb.page ? t('tb_ms', { ms: tb.page.ms.toFixed(1) }) : '';
  renderSelectionCount();
}

view.querySelector('thead').addEventListener('click', (ev) => {
  const th = ev.target.closest('th.sortable');
  if (!th) return;
  const f = th.dataset.field;
  const before = tb.sort;
  // ascending → descending → the default (id) order
  if (!tb.sort || tb.sort.field !== f) tb.sort = { field: f, desc: false };
  else if (!tb.sort.desc) tb.sort = { field: f, desc: true };
  else tb.sort = null;
  reload().then(async () => {
    // A sort the server refuses (a query too large to sort: it says so, with its bound) keeps
    // its message and the rows in the previous order.
    if (tb.page || !tb.sort) return;
    const why = $('tb-error').textContent;
    tb.sort = before;
    await reload();
    $('tb-error').textContent = why;
  });
});

$('tb-next').addEventListener('click', () => {
  if (!tb.page || !tb.page.next) return;
  tb.cursors.push(tb.page.next);
  loadPage();
});
$('tb-prev').addEventListener('click', () => {
  if (tb.cursors.length <= 1) return;
  tb.cursors.pop();
  loadPage();
});
$('tb-size').addEventListener('change', reload);
$('tb-layer').addEventListener('change', () => selectLayer($('tb-layer').value));

// ---------------------------------------------------------------------------------------------
// Query builder

function fieldOptions(filter) {
  return tb.fields.filter(filter).map((f) => `<option value="${esc(f.name)}">${esc(f.title === f.name ? f.name : `${f.title} (${f.name})`)}</option>`).join('');
}

function addRow(init = {}) {
  const row = document.createElement('div');
  row.className = 'qb-row';
  row.innerHTML = `<select class="qb-field">${fieldOptions((f) => f.kind !== 'geometry')}</select>
    <select class="qb-op"></select><span class="qb-values"></span><button type="button" class="qb-del" title="删除">✕</button>`;
  $('qb-rows').appendChild(row);
  const fieldSel = row.querySelector('.qb-field');
  const opSel = row.querySelector('.qb-op');
  const setOps = () => {
    const f = tb.fields.find((x) => x.name === fieldSel.value);
    opSel.innerHTML = (f ? f.ops : []).map((o) => `<option value="${esc(o)}">${esc(o)}</option>`).join('');
  };
  const setValues = () => {
    const f = tb.fields.find((x) => x.name === fieldSel.value) || { codes: [] };
    const op = opSel.value;
    const n = op === 'BETWEEN' ? 2 : op === 'IS NULL' || op === 'IS NOT NULL' ? 0 : 1;
    const list = f.codes.length ? `list="qb-codes-${esc(f.name)}"` : '';
    const ph = op === 'IN' ? 'a, b, c' : f.kind === 'date' ? 'YYYY-MM-DD' : t('qb_value');
    row.querySelector('.qb-values').innerHTML =
      Array.from({ length: n }, () => `<input class="qb-value" ${list} placeholder="${esc(ph)}">`).join(' ') +
      (f.codes.length ? `<datalist id="qb-codes-${esc(f.name)}">${f.codes.map((c) => `<option value="${esc(c)}">`).join('')}</datalist>` : '');
  };
  fieldSel.addEventListener('change', () => {
    setOps();
    setValues();
  });
  opSel.addEventListener('change', setValues);
  row.querySelector('.qb-del').addEventListener('click', () => row.remove());
  if (init.field) fieldSel.value = init.field;
  setOps();
  if (init.op) opSel.value = init.op;
  setValues();
  (init.values || []).forEach((v, i) => {
    const inp = row.querySelectorAll('.qb-value')[i];
    if (inp) inp.value = v;
  });
  return row;
}

function renderTimeFields() {
  $('qb-time-field').innerHTML = `<option value="">—</option>${fieldOptions((f) => f.kind === 'date' || f.kind === 'date-time')}`;
}

function renderArea() {
  const a = tb.area;
  if (!a) $('qb-area').textContent = t('qb_area_none');
  else {
    const xs = a.map((p) => p[0]);
    const ys = a.map((p) => p[1]);
    $('qb-area').textContent = t('qb_area_set', { w: (Math.max(...xs) - Math.min(...xs)).toFixed(4), h: (Math.max(...ys) - Math.min(...ys)).toFixed(4) });
  }
  drawArea();
}

const DIVISIONS = 'district';
/** The query's `intersects` parameter (the chosen district), or null. */
function intersects() {
  return tb.division ? `${DIVISIONS}/${tb.division}` : null;
}

/** What the query sends, as the view shows it: the CQL2 text, then the division. */
function sentText() {
  const parts = [tb.filter, intersects() && `intersects=${intersects()}`].filter(Boolean);
  return parts.length ? parts.join(' AND ') : t('qb_none');
}

/** The districts (names and codes) of the `district` layer, when the caller can read it. */
async function loadDivisions() {
  const box = $('qb-division-box');
  if (!tb.layers.some((l) => l.name === DIVISIONS)) {
    box.hidden = true;
    return;
  }
  const out = [];
  let cursor = null;
  do {
    const page = await invoke('table_page', { layer: DIVISIONS, filter: null, sortby: 'code', asOf: null, limit: 500, cursor, bbox: null, intersects: null });
    for (const f of page.features) out.push({ code: String(f.properties.code || f.id), name: String(f.properties['名称'] || f.properties.code || f.id) });
    cursor = page.next;
  } while (cursor && out.length < 5000);
  tb.divisions = out;
  $('qb-division').innerHTML = `<option value="">${esc(t('qb_div_any'))}</option>${out.map((d) => `<option value="${esc(d.code)}">${esc(`${d.name} (${d.code})`)}</option>`).join('')}`;
  $('qb-division').value = tb.division || '';
  box.hidden = false;
}

/** The builder's content as `QuerySpec` (app-core). */
function spec() {
  const conditions = [...$('qb-rows').querySelectorAll('.qb-row')].map((row) => {
    const name = row.querySelector('.qb-field').value;
    const f = tb.fields.find((x) => x.name === name) || { kind: 'text' };
    return { field: name, kind: f.kind, op: row.querySelector('.qb-op').value, values: [...row.querySelectorAll('.qb-value')].map((i) => i.value) };
  });
  const tf = $('qb-time-field').value;
  const from = $('qb-time-from').value.trim();
  const to = $('qb-time-to').value.trim();
  const tfield = tb.fields.find((x) => x.name === tf);
  return {
    combine: $('qb-combine').value,
    conditions,
    area: tb.area,
    time: tfield && (from || to) ? { field: tf, kind: tfield.kind, from: from || null, to: to || null } : null,
  };
}

async function runQuery() {
  $('qb-error').textContent = '';
  try {
    tb.filter = await invoke('table_cql', { spec: spec() });
  } catch (e) {
    $('qb-error').textContent = String(e);
    return;
  }
  tb.division = $('qb-division').value || null;
  $('qb-cql').textContent = sentText();
  await reload();
}

$('qb-add').addEventListener('click', () => addRow());
$('qb-run').addEventListener('click', runQuery);
$('qb-reset').addEventListener('click', () => {
  $('qb-rows').innerHTML = '';
  $('qb-time-from').value = '';
  $('qb-time-to').value = '';
  $('qb-division').value = '';
  tb.area = null;
  renderArea();
  runQuery();
});
$('qb-area-clear').addEventListener('click', () => {
  tb.area = null;
  renderArea();
});
$('qb-draw').addEventListener('click', async () => {
  tb.drawing = true;
  await openView('map');
  const s = $('map-status');
  if (s) s.textContent = t('qb_draw_hint');
});

// ---------------------------------------------------------------------------------------------
// Selection shared with the map

function renderSelectionCount() {
  const n = state.selection.layer === tb.layer ? state.selection.ids.size : 0;
  $('tb-sel').textContent = t('tb_selected', { n });
}

/** Replaces the selection with `ids` of the table's layer (`features`: their geometries). */
function setSelection(ids, features) {
  tb.geoms = new Map();
  for (const f of features || []) if (f.geometry) tb.geoms.set(f.id, f.geometry);
  state.selection = { layer: tb.layer, ids: new Set(ids) };
  emit('selection', state.selection);
}

function toggle(id, feature) {
  const ids = state.selection.layer === tb.layer ? new Set(state.selection.ids) : new Set();
  if (ids.has(id)) {
    ids.delete(id);
    tb.geoms.delete(id);
  } else {
    ids.add(id);
    if (feature && feature.geometry) tb.geoms.set(id, feature.geometry);
  }
  state.selection = { layer: tb.layer, ids };
  emit('selection', state.selection);
}

view.querySelector('tbody').addEventListener('click', (ev) => {
  const tr = ev.target.closest('tr[data-id]');
  if (!tr) return;
  const f = tb.page && tb.page.features.find((x) => x.id === tr.dataset.id);
  toggle(tr.dataset.id, f);
});
$('tb-clear-sel').addEventListener('click', () => setSelection([], []));
$('tb-show-map').addEventListener('click', async () => {
  await openView('map');
  const b = selectionBounds();
  if (state.map && b) state.map.fitBounds(b, { padding: 60, maxZoom: 17, duration: 0 });
});

on('selection', (s) => {
  for (const tr of view.querySelectorAll('tbody tr[data-id]')) {
    const on = s.layer === tb.layer && s.ids.has(tr.dataset.id);
    tr.classList.toggle('selected', on);
    const box = tr.querySelector('input[type=checkbox]');
    if (box) box.checked = on;
  }
  renderSelectionCount();
  // Selected elsewhere (not from this table's rows): fetch the geometries to highlight.
  const missing = s.layer === tb.layer ? [...s.ids].filter((id) => !tb.geoms.has(id)) : [];
  if (missing.length && missing.length <= 200) fetchGeometries(missing);
  drawSelection();
});

async function fetchGeometries(ids) {
  const filter = `"entity_id" IN (${ids.map((i) => `'${i.replace(/'/g, "''")}'`).join(', ')})`;
  try {
    const page = await invoke('table_page', { layer: tb.layer, filter, sortby: null, asOf: state.asOf, limit: ids.length, cursor: null, bbox: null, intersects: null });
    for (const f of page.features) if (f.geometry) tb.geoms.set(f.id, f.geometry);
    drawSelection();
  } catch (e) {
    $('tb-error').textContent = String(e);
  }
}

const SEL = 'tbl-selection';
const AREA = 'tbl-area';

function selectionData() {
  const ids = state.selection.layer === tb.layer ? state.selection.ids : new Set();
  return {
    type: 'FeatureCollection',
    features: [...ids].filter((id) => tb.geoms.has(id)).map((id) => ({ type: 'Feature', id: undefined, geometry: tb.geoms.get(id), properties: { id } })),
  };
}

function areaData() {
  const ring = tb.area ? [...tb.area, tb.area[0]] : null;
  return { type: 'FeatureCollection', features: ring ? [{ type: 'Feature', geometry: { type: 'Polygon', coordinates: [ring] }, properties: {} }] : [] };
}

/** The highlight and area layers, on top (added again if a style change dropped them). */
function ensureLayers(map) {
  if (!map.getSource(SEL)) {
    map.addSource(SEL, { type: 'geojson', data: selectionData() });
    map.addLayer({ id: `${SEL}-fill`, type: 'fill', source: SEL, filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#00c2ff', 'fill-opacity': 0.35 } });
    map.addLayer({ id: `${SEL}-line`, type: 'line', source: SEL, filter: ['!=', ['geometry-type'], 'Point'], paint: { 'line-color': '#00c2ff', 'line-width': 4 } });
    map.addLayer({ id: `${SEL}-point`, type: 'circle', source: SEL, filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-radius': 8, 'circle-color': 'rgba(0,194,255,0.35)', 'circle-stroke-color': '#00c2ff', 'circle-stroke-width': 3 } });
  }
  if (!map.getSource(AREA)) {
    map.addSource(AREA, { type: 'geojson', data: areaData() });
    map.addLayer({ id: `${AREA}-fill`, type: 'fill', source: AREA, paint: { 'fill-color': '#f3a712', 'fill-opacity': 0.12 } });
    map.addLayer({ id: `${AREA}-line`, type: 'line', source: AREA, paint: { 'line-color': '#f3a712', 'line-width': 2, 'line-dasharray': [2, 2] } });
  }
}

/** Puts `data()` into the source `id` (false while a style is still loading: the `styledata`
 * and `idle` handlers draw again). `isStyleLoaded()` is false whenever tiles load, so not used. */
function put(id, data) {
  const m = state.map;
  if (!m) return false;
  try {
    ensureLayers(m);
    m.getSource(id).setData(data());
    return true;
  } catch {
    return false;
  }
}

function drawSelection() {
  return put(SEL, selectionData);
}

function drawArea() {
  return put(AREA, areaData);
}

function selectionBounds() {
  const pts = [];
  const walk = (c) => (typeof c[0] === 'number' ? pts.push(c) : c.forEach(walk));
  for (const f of selectionData().features) walk(f.geometry.coordinates);
  if (!pts.length) return null;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return [
    [Math.min(...xs), Math.min(...ys)],
    [Math.max(...xs), Math.max(...ys)],
  ];
}

/** Selects the table layer's features (matching the query) within `bbox` on the map. */
async function selectInBox(bbox) {
  if (!tb.layer) return;
  try {
    const page = await invoke('table_page', { layer: tb.layer, filter: tb.filter, sortby: null, asOf: state.asOf, limit: 1000, cursor: null, bbox, intersects: intersects() });
    setSelection(page.features.map((f) => f.id), page.features);
    $('tb-error').textContent = page.next ? '框选范围内要素超过 1000 个，仅选中前 1000 个 / more than 1000 in the box: the first 1000 are selected' : '';
  } catch (e) {
    $('tb-error').textContent = String(e);
  }
}

/** Shift-click or shift-drag on the map selects; while drawing the query's area, a drag draws it. */
function attachMap(map) {
  map.boxZoom.disable();
  const container = map.getCanvasContainer();
  const box = $('tb-box');
  let start = null;
  let swallowClick = false;
  const local = (ev) => {
    const r = map.getCanvas().getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  };
  const move = (ev) => {
    if (!start) return;
    const p = local(ev);
    const r = map.getCanvas().getBoundingClientRect();
    Object.assign(box.style, {
      left: `${r.left + Math.min(p[0], start[0])}px`,
      top: `${r.top + Math.min(p[1], start[1])}px`,
      width: `${Math.abs(p[0] - start[0])}px`,
      height: `${Math.abs(p[1] - start[1])}px`,
    });
    box.hidden = false;
  };
  const up = (ev) => {
    window.removeEventListener('mousemove', move, true);
    window.removeEventListener('mouseup', up, true);
    if (!start) return;
    const p = local(ev);
    const s = start;
    start = null;
    box.hidden = true;
    swallowClick = true;
    setTimeout(() => (swallowClick = false), 50);
    const small = Math.abs(p[0] - s[0]) < 4 && Math.abs(p[1] - s[1]) < 4;
    const pad = small ? 6 : 0;
    const a = map.unproject([Math.min(p[0], s[0]) - pad, Math.max(p[1], s[1]) + pad]);
    const b = map.unproject([Math.max(p[0], s[0]) + pad, Math.min(p[1], s[1]) - pad]);
    const bbox = [a.lng, a.lat, b.lng, b.lat];
    if (tb.drawing) {
      tb.drawing = false;
      if (small) return;
      tb.area = [
        [bbox[0], bbox[1]],
        [bbox[2], bbox[1]],
        [bbox[2], bbox[3]],
        [bbox[0], bbox[3]],
      ];
      renderArea();
      openView('table');
      return;
    }
    selectInBox(bbox);
  };
  container.addEventListener(
    'mousedown',
    (ev) => {
      if (ev.button !== 0 || !(ev.shiftKey || tb.drawing) || state.tool) return;
      ev.stopPropagation();
      ev.preventDefault();
      start = local(ev);
      window.addEventListener('mousemove', move, true);
      window.addEventListener('mouseup', up, true);
    },
    true,
  );
  container.addEventListener(
    'click',
    (ev) => {
      if (!swallowClick && !ev.shiftKey) return;
      ev.stopPropagation();
      ev.preventDefault();
    },
    true,
  );
  // A style change (basemap, as-of) drops added layers: draw them again once it is in.
  const redraw = () => {
    if (!map.getSource(SEL) || !map.getSource(AREA)) {
      drawSelection();
      drawArea();
    }
  };
  map.on('styledata', redraw);
  map.on('idle', redraw);
  drawSelection();
  drawArea();
}

on('map-ready', (m) => attachMap(m));
if (state.map) attachMap(state.map);

// ---------------------------------------------------------------------------------------------
// Export

function exportFormat() {
  return $('ex-format').value;
}

async function defaultPath() {
  if (!tb.layer) return;
  $('ex-path').value = await invoke('table_export_path', { layer: tb.layer, format: exportFormat() });
}

$('ex-format').addEventListener('change', () => {
  if (tb.pathEdited) {
    const p = $('ex-path').value.replace(/\.(geojson|csv|gpkg)$/i, '');
    $('ex-path').value = `${p}.${exportFormat()}`;
  } else defaultPath();
});
$('ex-path').addEventListener('input', () => (tb.pathEdited = true));

function showProgress(p) {
  const bar = $('ex-progress');
  bar.hidden = false;
  bar.max = p.total || Math.max(p.written, 1);
  bar.value = p.written;
  $('ex-status').textContent = t('ex_progress', { n: p.written });
}
if (window.__TAURI__ && window.__TAURI__.event) window.__TAURI__.event.listen('table-export-progress', (e) => showProgress(e.payload));

async function runExport() {
  const scope = view.querySelector('input[name=ex-scope]:checked').value;
  const ids = scope === 'selection' ? (state.selection.layer === tb.layer ? [...state.selection.ids] : []) : null;
  $('ex-status').textContent = '';
  if (ids && !ids.length) {
    $('ex-status').textContent = t('ex_no_sel');
    return null;
  }
  const layer = tb.layers.find((l) => l.name === tb.layer) || {};
  const request = {
    layer: tb.layer,
    geometry_type: layer.geometry_type || null,
    filter: tb.filter,
    intersects: intersects(),
    as_of: state.asOf,
    ids,
    format: exportFormat(),
    lon_lat: $('ex-lonlat').checked,
    fields: tb.fields,
  };
  $('ex-run').disabled = true;
  try {
    const r = await invoke('table_export', { request, path: $('ex-path').value });
    $('ex-progress').hidden = true;
    $('ex-status').textContent = t('ex_done', { n: r.features, path: r.path, kb: (r.bytes / 1024).toFixed(1) });
    return r;
  } catch (e) {
    $('ex-progress').hidden = true;
    $('ex-status').textContent = String(e);
    throw e;
  } finally {
    $('ex-run').disabled = false;
  }
}
$('ex-run').addEventListener('click', () => runExport().catch(() => {}));

// ---------------------------------------------------------------------------------------------
// Wiring

let shown = false;
async function show() {
  applyI18n(view);
  if (!shown) {
    shown = true;
    $('qb-cql').textContent = t('qb_none');
    try {
      await loadLayers();
      await loadDivisions();
    } catch (e) {
      shown = false;
      $('tb-error').textContent = String(e);
    }
  } else if (state.map) {
    drawSelection();
  }
}

registerView('table', { show });

on('asof', () => {
  if (tb.layer) reload();
});
on('lang', () => {
  applyI18n(view);
  if (tb.page) render();
  renderArea();
});
on('signed-out', () => {
  shown = false;
  tb.layer = null;
  tb.page = null;
  tb.filter = null;
  tb.division = null;
  tb.divisions = null;
  state.selection = { layer: null, ids: new Set() };
});

// What the end-to-end test reads and drives. Added after app.js has set `window.shikongDesktop`.
function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    table: {
      /** The page on screen: `{features, next, matched, ms, request}`. */
      page: () => tb.page,
      /** The ids of the rows in their order on screen. */
      rowIds: () => [...view.querySelectorAll('tbody tr[data-id]')].map((tr) => tr.dataset.id),
      /** The text of a column of the rows on screen. */
      column: (name) => {
        const i = columns().findIndex((c) => c.name === name);
        return [...view.querySelectorAll('tbody tr[data-id]')].map((tr) => tr.children[i + 1].textContent);
      },
      filter: () => tb.filter,
      /** The query text line as shown (CQL2, then `intersects=…`). */
      sent: () => $('qb-cql').textContent,
      /** The districts offered (`[{code, name}]`; null until read) and the query's `intersects`. */
      divisions: () => tb.divisions,
      intersects,
      sort: () => tb.sort,
      busy: () => !!tb.loading,
      addRow,
      spec,
      selection: () => [...state.selection.ids],
      /** Sets the query's area as the drag on the map does (a rectangle `[w, s, e, n]`). */
      setArea: (b) => {
        tb.area = b ? [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]] : null;
        renderArea();
      },
      /** Drags on the map from `[lon, lat]` to `[lon, lat]` with Shift held, as a user selects. */
      shiftDrag: (from, to) => {
        const m = state.map;
        const r = m.getCanvas().getBoundingClientRect();
        const at = (ll) => {
          const p = m.project(ll);
          return { clientX: r.left + p.x, clientY: r.top + p.y };
        };
        m.getCanvas().dispatchEvent(new MouseEvent('mousedown', { bubbles: true, cancelable: true, button: 0, shiftKey: true, ...at(from) }));
        window.dispatchEvent(new MouseEvent('mousemove', { bubbles: true, shiftKey: true, ...at(to) }));
        window.dispatchEvent(new MouseEvent('mouseup', { bubbles: true, button: 0, shiftKey: true, ...at(to) }));
      },
      /** The features highlighted on the map (their ids). */
      highlighted: () => (state.map && state.map.getSource(SEL) ? selectionData().features.map((f) => f.properties.id) : null),
      runExport,
    },
  });
}
setTimeout(hooks, 0);
