// The desktop's own replica (本地副本, issue 16): offline areas (download a division or the map's
// extent, list, open, delete), sync with a progress bar, import into a layer (with the review of
// rows geocoded below the threshold) and export; and, on the map, the edit panel: the layer's
// form from its schema, geometry editing (place/move a point, drag line/polygon vertices, add and
// remove vertices) with snapping to the replica's vertices and edges within SNAP_PX pixels, and
// attachments picked as files. Everything goes through the replica (commands in
// desktop/src/replica.rs, logic in the app core), so it works offline and is sent at the next sync.
import maplibregl from 'maplibre-gl';
import { invoke, $, esc, state, on, emit, registerView, openView } from './core.js';

const SNAP_PX = 10;
const SRC = 'rep-feat';
const EDIT = 'rep-edit-geom';
const VERTS = 'rep-verts';

const rep = {
  areas: [],
  open: null, // the open area's id
  forms: [], // LayerForm[] of the open area
  layer: null, // the layer edited on the map
  editing: false, // the edit panel is active on the map
  feature: null, // FeatureForm being edited (null: none or new)
  isNew: false,
  geometry: null, // GeoJSON geometry being edited
  mode: 'select', // select | draw | move
  drag: null, // index of the vertex dragged
  staged: null, // StagedSummary of the import under review
};

// ---------------------------------------------------------------------------------------------
// Progress (events from the commands)

function showProgress(p) {
  const box = $('rep-progress');
  if (!box) return;
  box.hidden = false;
  const names = {
    download: '下载', sync: '同步', import: '导入', export: '导出',
    replica: '副本', basemap: '底图', done: '完成', uploading: '上传附件', pushing: '发送修改', pulling: '接收更新',
    verifying: '校验', reading: '读取文件', geocoding: '批量地理编码', writing: '写入',
  };
  const pct = p.total > 0 ? Math.round((100 * p.done) / p.total) : p.step === 'done' ? 100 : null;
  const bar = $('rep-bar');
  if (pct === null) bar.removeAttribute('value');
  else bar.value = pct;
  $('rep-progress-text').textContent =
    `${names[p.task] || p.task} · ${names[p.step] || p.step}${p.total > 0 ? ` ${p.done}/${p.total}` : p.done ? ` ${p.done}` : ''}`;
  box.dataset.task = p.task;
  box.dataset.step = p.step;
  box.dataset.pct = pct === null ? '' : String(pct);
}

if (window.__TAURI__ && window.__TAURI__.event) window.__TAURI__.event.listen('replica-progress', (e) => showProgress(e.payload));

function finishProgress(task, text) {
  showProgress({ task, step: 'done', done: 1, total: 1 });
  $('rep-progress-text').textContent += text ? ` · ${text}` : '';
}

const fail = (id) => (e) => {
  const el = $(id);
  if (el) el.textContent = String(e);
};
const clear = (id) => {
  const el = $(id);
  if (el) el.textContent = '';
};

// ---------------------------------------------------------------------------------------------
// The view: areas, download, sync, import, export

function frame() {
  const root = $('view-replica');
  if (root.dataset.built) return;
  root.dataset.built = '1';
  root.innerHTML = `
  <div class="rep">
    <section class="rep-col">
      <h2>离线区域</h2>
      <div id="rep-list" data-testid="rep-list"></div>
      <h3>下载新区域</h3>
      <form id="rep-dl" class="rep-form">
        <label>名称 <input id="rep-name" placeholder="默认：行政区名"></label>
        <label>行政区 <span class="rep-row"><input id="rep-div-q" placeholder="如：洪山区"><button type="button" id="rep-div-search">搜索</button></span></label>
        <select id="rep-div" data-testid="rep-div"><option value="">（未选择）</option></select>
        <label class="rep-check"><input type="checkbox" id="rep-extent"> 改用当前地图范围</label>
        <fieldset id="rep-layers" data-testid="rep-layers"><legend>图层</legend></fieldset>
        <button type="submit" id="rep-download" data-testid="rep-download">下载</button>
      </form>
    </section>
    <section class="rep-col rep-wide">
      <div id="rep-progress" data-testid="rep-progress" hidden><progress id="rep-bar" max="100"></progress> <span id="rep-progress-text"></span></div>
      <p class="error" id="rep-error" role="alert" data-testid="rep-error"></p>
      <h3>同步</h3>
      <p><button type="button" id="rep-sync" data-testid="rep-sync">同步当前区域</button>
         <button type="button" id="rep-edit-map" data-testid="rep-edit-map">在地图上编辑</button></p>
      <p id="rep-sync-result" data-testid="rep-sync-result"></p>
      <h3>导入到图层</h3>
      <form id="imp-form" class="rep-form" data-testid="imp-form">
        <label>图层 <select id="imp-layer" class="rep-layer-pick"></select></label>
        <label>文件路径（.geojson .gpkg .zip .csv .xlsx） <input id="imp-path" data-testid="imp-path" placeholder="/home/…/data.csv"></label>
        <details><summary>列与地理编码</summary>
          <label>地址列（CSV/XLSX，按地址批量地理编码） <input id="imp-address" data-testid="imp-address" placeholder="如：地址"></label>
          <label>复核阈值（得分低于此值需复核） <input id="imp-threshold" type="number" step="0.05" min="0" max="1" value="0.8"></label>
          <label>经度列 <input id="imp-lon" placeholder="自动识别 lon/经度"></label>
          <label>纬度列 <input id="imp-lat" placeholder="自动识别 lat/纬度"></label>
          <label>WKT 列 <input id="imp-wkt" placeholder="自动识别 wkt"></label>
          <label>GeoPackage 图层 <input id="imp-src-layer"></label>
        </details>
        <button type="submit" id="imp-read" data-testid="imp-read">读取并检查</button>
      </form>
      <div id="imp-staged" data-testid="imp-staged"></div>
      <h3>导出图层</h3>
      <form id="exp-form" class="rep-form">
        <label>图层 <select id="exp-layer" class="rep-layer-pick"></select></label>
        <label>保存为（.geojson .gpkg .zip（Shapefile）.csv） <input id="exp-path" data-testid="exp-path" placeholder="/home/…/out.gpkg"></label>
        <button type="submit" id="exp-go" data-testid="exp-go">导出</button>
      </form>
      <p id="exp-result" data-testid="exp-result"></p>
    </section>
  </div>`;
  $('rep-div-search').addEventListener('click', searchDivisions);
  $('rep-div-q').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      searchDivisions();
    }
  });
  $('rep-dl').addEventListener('submit', (ev) => {
    ev.preventDefault();
    download();
  });
  $('rep-sync').addEventListener('click', () => sync());
  $('rep-edit-map').addEventListener('click', () => startEditing());
  $('imp-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    stageImport();
  });
  $('exp-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    exportLayer();
  });
}

async function show() {
  frame();
  clear('rep-error');
  await Promise.all([loadAreas(), loadServerLayers()]);
}

async function loadServerLayers() {
  const box = $('rep-layers');
  if (box.dataset.loaded) return;
  try {
    const layers = await invoke('replica_server_layers');
    box.dataset.loaded = '1';
    box.innerHTML = '<legend>图层</legend>' +
      layers.map(([n, t]) => `<label class="rep-check"><input type="checkbox" value="${esc(n)}" ${n === 'manhole' ? 'checked' : ''}> ${esc(t)} <small>${esc(n)}</small></label>`).join('');
  } catch (e) {
    box.innerHTML = `<legend>图层</legend><span class="rep-muted">离线：无法读取服务器图层（${esc(e)}）</span>`;
  }
}

async function loadAreas() {
  try {
    rep.areas = await invoke('replica_areas');
  } catch (e) {
    fail('rep-error')(e);
    return;
  }
  const open = rep.areas.find((a) => a.open);
  if (open && open.id !== rep.open) await setOpen(open.id, false);
  if (!open) rep.open = null;
  renderAreas();
}

function renderAreas() {
  const list = $('rep-list');
  if (!list) return;
  if (!rep.areas.length) {
    list.innerHTML = '<p class="rep-muted" data-testid="rep-empty">还没有离线区域：在下方选择行政区或地图范围下载。</p>';
    return;
  }
  list.innerHTML = rep.areas
    .map((a) => `
    <div class="rep-area${a.open ? ' open' : ''}" data-testid="rep-area" data-id="${esc(a.id)}">
      <div class="rep-area-head"><b>${esc(a.name)}</b>${a.open ? ' <span class="rep-tag">已打开</span>' : ''}</div>
      <div class="rep-muted">${a.layers.map(([, t, n]) => `${esc(t)} ${n}`).join(' · ')} · ${(a.bytes / 1048576).toFixed(1)} MB</div>
      <div>待同步 <b data-testid="rep-pending">${a.pending}</b>${a.photos ? ` · 附件 ${a.photos}` : ''}${a.conflicts ? ` · <span class="overdue-text">冲突 ${a.conflicts}</span>` : ''}</div>
      <div class="rep-actions">
        <button type="button" class="rep-open" ${a.open ? 'disabled' : ''}>打开</button>
        <button type="button" class="rep-del">删除</button>
      </div>
    </div>`)
    .join('');
  for (const el of list.querySelectorAll('.rep-area')) {
    el.querySelector('.rep-open').addEventListener('click', () => setOpen(el.dataset.id, true));
    el.querySelector('.rep-del').addEventListener('click', () => removeArea(el.dataset.id));
  }
}

async function setOpen(id, persist) {
  try {
    if (persist) await invoke('replica_open', { id });
    rep.open = id;
    rep.forms = await invoke('replica_forms', { id });
  } catch (e) {
    fail('rep-error')(e);
    return;
  }
  const options = rep.forms.map((f) => `<option value="${esc(f.layer)}">${esc(f.title)}</option>`).join('');
  for (const s of document.querySelectorAll('.rep-layer-pick')) s.innerHTML = options;
  if (!rep.layer || !rep.forms.some((f) => f.layer === rep.layer)) rep.layer = rep.forms[0] ? rep.forms[0].layer : null;
  if (persist) {
    rep.areas.forEach((a) => (a.open = a.id === id));
    renderAreas();
  }
  renderPanel();
  await refreshFeatures();
}

async function removeArea(id) {
  const a = rep.areas.find((x) => x.id === id);
  let force = false;
  if (a && (a.pending > 0 || a.photos > 0)) {
    force = window.confirm(`“${a.name}”还有 ${a.pending} 处修改未同步，仍然删除？`);
    if (!force) return;
  }
  try {
    await invoke('replica_delete', { id, force });
    if (rep.open === id) rep.open = null;
    await loadAreas();
  } catch (e) {
    fail('rep-error')(e);
  }
}

async function searchDivisions() {
  const q = $('rep-div-q').value.trim();
  if (!q) return;
  try {
    const list = await invoke('replica_divisions', { q });
    $('rep-div').innerHTML = list.length
      ? list.map((d, i) => `<option value="${i}">${esc(d.name)}（${esc(d.code)}）</option>`).join('')
      : '<option value="">没有找到</option>';
    $('rep-div').dataset.list = JSON.stringify(list);
  } catch (e) {
    fail('rep-error')(e);
  }
}

function mapExtent() {
  if (!state.map) return null;
  const b = state.map.getBounds();
  return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
}

async function download() {
  clear('rep-error');
  const layers = [...document.querySelectorAll('#rep-layers input:checked')].map((i) => i.value);
  const list = JSON.parse($('rep-div').dataset.list || '[]');
  const picked = $('rep-div').value === '' ? null : list[Number($('rep-div').value)];
  const useExtent = $('rep-extent').checked;
  const extent = useExtent ? mapExtent() : null;
  if (useExtent && !extent) return fail('rep-error')('地图尚未打开：先打开“地图”标签页');
  $('rep-download').disabled = true;
  try {
    const area = await invoke('replica_download', {
      name: $('rep-name').value,
      layers,
      division: useExtent ? null : picked,
      extent,
    });
    finishProgress('download', `${area.name}：${area.layers.map(([, t, n]) => `${t} ${n}`).join('，')}`);
    await loadAreas();
    if (!rep.open) await setOpen(area.id, true);
  } catch (e) {
    fail('rep-error')(e);
  } finally {
    $('rep-download').disabled = false;
  }
}

async function sync() {
  clear('rep-error');
  clear('rep-edit-error');
  if (!rep.open) return fail('rep-error')('没有打开的离线区域');
  for (const b of [$('rep-sync'), $('rep-edit-sync')]) if (b) b.disabled = true;
  for (const id of ['rep-sync-result', 'rep-edit-status']) if ($(id)) $(id).textContent = '同步中…';
  try {
    const r = await invoke('replica_sync', { id: rep.open });
    const text = `已发送 ${r.sent}（接受 ${r.accepted}）· 已接收 ${r.received} · 冲突 ${r.conflicts}${r.attachments ? ` · 附件 ${r.attachments}` : ''}${r.rejected.length ? ` · 被拒绝 ${r.rejected.length}：${r.rejected.map((x) => x[2]).join('；')}` : ''} · 待同步 ${r.pending}`;
    for (const id of ['rep-sync-result', 'rep-edit-status']) if ($(id)) $(id).textContent = text;
    finishProgress('sync', '');
    await loadAreas();
    await refreshFeatures();
  } catch (e) {
    // Offline: the edits stay in the replica for the next sync.
    fail('rep-error')(e);
    fail('rep-edit-error')(e);
  } finally {
    for (const b of [$('rep-sync'), $('rep-edit-sync')]) if (b) b.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Import (with the review of weakly geocoded rows) and export

async function stageImport() {
  clear('rep-error');
  if (!rep.open) return fail('rep-error')('没有打开的离线区域');
  const val = (id) => $(id).value.trim() || null;
  const options = {
    address_column: val('imp-address'),
    threshold: Number($('imp-threshold').value) || null,
    lon_column: val('imp-lon'),
    lat_column: val('imp-lat'),
    wkt_column: val('imp-wkt'),
    source_layer: val('imp-src-layer'),
  };
  $('imp-read').disabled = true;
  $('imp-staged').innerHTML = '';
  try {
    rep.staged = await invoke('import_stage', { id: rep.open, layer: $('imp-layer').value, path: $('imp-path').value.trim(), options });
    renderStaged();
  } catch (e) {
    rep.staged = null;
    $('imp-staged').innerHTML = `<pre class="error" data-testid="imp-error">${esc(e)}</pre>`;
  } finally {
    $('imp-read').disabled = false;
  }
}

function renderStaged() {
  const s = rep.staged;
  const box = $('imp-staged');
  if (!s) {
    box.innerHTML = '';
    return;
  }
  const score = (x) => (x === null || x === undefined ? '—' : x.toFixed(2));
  const label = { keep: '导入', review: '待复核', drop: '不导入' };
  box.innerHTML = `
    <p data-testid="imp-summary">${esc(s.file)} → ${esc(s.layer)}：共 <b>${s.rows}</b> 行，导入 <b data-testid="imp-keep">${s.keep}</b>，待复核 <b data-testid="imp-review-count">${s.review}</b>，不导入 ${s.dropped}${s.ignored.length ? `<br><span class="rep-muted">未对应字段的列（不导入）：${s.ignored.map(esc).join('、')}</span>` : ''}</p>
    ${s.review_rows.length ? `
    <table class="imp-review" data-testid="imp-review">
      <thead><tr><th>位置</th><th>地址</th><th>标准地址</th><th>匹配</th><th>得分 (&lt; ${s.threshold})</th><th>处理</th><th></th></tr></thead>
      <tbody>${s.review_rows.map((r) => `
        <tr data-index="${r.index}" data-decision="${r.decision}" data-testid="imp-row">
          <td>${esc(r.location)}</td>
          <td><input class="imp-addr" value="${esc(r.address)}" size="24"></td>
          <td>${esc(r.standard)}</td>
          <td>${esc(r.status)}</td>
          <td>${score(r.score)}</td>
          <td class="imp-state">${label[r.decision]}</td>
          <td class="rep-actions"><button type="button" class="imp-keep" ${r.lon === null ? 'disabled' : ''}>保留</button><button type="button" class="imp-fix">修正地址</button><button type="button" class="imp-drop">不导入</button></td>
        </tr>`).join('')}</tbody>
    </table>` : ''}
    <p><button type="button" id="imp-commit" data-testid="imp-commit" ${s.review > 0 ? 'disabled' : ''}>导入 ${s.keep} 个要素</button>
       <button type="button" id="imp-cancel">放弃</button>
       <span id="imp-result" data-testid="imp-result"></span></p>
    <p class="error" id="imp-error" data-testid="imp-error"></p>`;
  for (const tr of box.querySelectorAll('tr[data-index]')) {
    const index = Number(tr.dataset.index);
    tr.querySelector('.imp-keep').addEventListener('click', () => decide(index, 'keep'));
    tr.querySelector('.imp-drop').addEventListener('click', () => decide(index, 'drop'));
    tr.querySelector('.imp-fix').addEventListener('click', () => fixRow(index, tr.querySelector('.imp-addr').value));
  }
  $('imp-commit').addEventListener('click', commitImport);
  $('imp-cancel').addEventListener('click', async () => {
    await invoke('import_cancel');
    rep.staged = null;
    renderStaged();
  });
}

async function decide(index, decision) {
  try {
    rep.staged = await invoke('import_decide', { index, decision });
    renderStaged();
  } catch (e) {
    fail('imp-error')(e);
  }
}

async function fixRow(index, address) {
  try {
    rep.staged = await invoke('import_fix', { index, address });
    renderStaged();
  } catch (e) {
    fail('imp-error')(e);
  }
}

async function commitImport() {
  $('imp-commit').disabled = true;
  try {
    const n = await invoke('import_commit');
    rep.staged = null;
    renderStaged();
    $('imp-staged').innerHTML = `<p data-testid="imp-done">已导入 ${n} 个要素，待同步。</p>`;
    finishProgress('import', `${n} 个要素`);
    await loadAreas();
    await refreshFeatures();
  } catch (e) {
    fail('imp-error')(e);
    $('imp-commit').disabled = false;
  }
}

async function exportLayer() {
  clear('exp-result');
  clear('rep-error');
  if (!rep.open) return fail('rep-error')('没有打开的离线区域');
  try {
    const path = $('exp-path').value.trim();
    const n = await invoke('export_layer', { id: rep.open, layer: $('exp-layer').value, path });
    $('exp-result').textContent = `已导出 ${n} 个要素到 ${path}`;
    finishProgress('export', `${n} 个要素`);
  } catch (e) {
    fail('rep-error')(e);
  }
}

// ---------------------------------------------------------------------------------------------
// The map: the open area's layer, and the edit panel

function emptyFc() {
  return { type: 'FeatureCollection', features: [] };
}

function ensureLayers(map) {
  if (map.getSource(SRC)) return;
  map.addSource(SRC, { type: 'geojson', data: emptyFc() });
  map.addSource(EDIT, { type: 'geojson', data: emptyFc() });
  map.addSource(VERTS, { type: 'geojson', data: emptyFc() });
  const pending = ['==', ['get', 'status'], 'pending'];
  map.addLayer({ id: 'rep-fill', type: 'fill', source: SRC, filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': ['case', pending, '#e67e22', '#16a085'], 'fill-opacity': 0.25 } });
  map.addLayer({ id: 'rep-line', type: 'line', source: SRC, filter: ['!=', ['geometry-type'], 'Point'], paint: { 'line-color': ['case', pending, '#e67e22', '#16a085'], 'line-width': 2 } });
  map.addLayer({ id: 'rep-point', type: 'circle', source: SRC, filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-radius': 5, 'circle-color': ['case', pending, '#e67e22', '#16a085'], 'circle-stroke-color': '#fff', 'circle-stroke-width': 1.5 } });
  map.addLayer({ id: 'rep-edit-fill', type: 'fill', source: EDIT, filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#2980b9', 'fill-opacity': 0.2 } });
  map.addLayer({ id: 'rep-edit-line', type: 'line', source: EDIT, paint: { 'line-color': '#2980b9', 'line-width': 2.5, 'line-dasharray': [2, 1] } });
  map.addLayer({ id: 'rep-verts', type: 'circle', source: VERTS, paint: { 'circle-radius': 6, 'circle-color': '#fff', 'circle-stroke-color': '#2980b9', 'circle-stroke-width': 2.5 } });
}

async function refreshFeatures() {
  const map = state.map;
  if (!map || !map.getSource(SRC)) return;
  if (!rep.open || !rep.layer) {
    map.getSource(SRC).setData(emptyFc());
    return;
  }
  try {
    const fc = await invoke('replica_features', { id: rep.open, layer: rep.layer });
    map.getSource(SRC).setData(fc);
    rep.fc = fc;
    rep.count = fc.features.length;
    if (rep.fitPending) {
      rep.fitPending = false;
      fitToLayer();
    }
  } catch (e) {
    fail('rep-edit-error')(e);
  }
}

/** The rings/lines of the geometry being edited as vertex lists (a ring without its closing vertex). */
function parts(g) {
  if (!g) return [];
  switch (g.type) {
    case 'Point': return [[g.coordinates]];
    case 'LineString': return [g.coordinates];
    case 'Polygon': return g.coordinates.map((r) => r.slice(0, -1));
    case 'MultiPoint': return g.coordinates.map((c) => [c]);
    case 'MultiLineString': return g.coordinates;
    case 'MultiPolygon': return g.coordinates.flatMap((p) => p.map((r) => r.slice(0, -1)));
    default: return [];
  }
}

/** The editable vertices: `[{part, i, coord}]`. */
function vertices() {
  return parts(rep.geometry).flatMap((p, part) => p.map((coord, i) => ({ part, i, coord })));
}

function setVertex(v, coord) {
  const g = rep.geometry;
  if (g.type === 'Point') g.coordinates = coord;
  else if (g.type === 'LineString') g.coordinates[v.i] = coord;
  else if (g.type === 'Polygon') {
    const ring = g.coordinates[v.part];
    ring[v.i] = coord;
    if (v.i === 0) ring[ring.length - 1] = coord;
  } else if (g.type === 'MultiPoint') g.coordinates[v.part] = coord;
  else if (g.type === 'MultiLineString') g.coordinates[v.part][v.i] = coord;
}

function drawEdit() {
  const map = state.map;
  if (!map || !map.getSource(EDIT)) return;
  const g = rep.geometry;
  map.getSource(EDIT).setData(g && g.type !== 'Point' ? { type: 'Feature', geometry: g, properties: {} } : emptyFc());
  map.getSource(VERTS).setData({
    type: 'FeatureCollection',
    features: vertices().map((v) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: v.coord }, properties: {} })),
  });
  const info = $('rep-geom-info');
  if (info) info.textContent = g ? `${g.type} · ${vertices().length} 个节点` : '未设置几何';
}

function currentForm() {
  return rep.forms.find((f) => f.layer === rep.layer);
}

function lngLatOf(ev) {
  const r = state.map.getCanvas().getBoundingClientRect();
  return state.map.unproject([ev.clientX - r.left, ev.clientY - r.top]);
}

/** The position snapped to the replica's vertices/edges within SNAP_PX pixels (when on). */
async function snapped(lngLat) {
  const point = [lngLat.lng, lngLat.lat];
  if (!$('rep-snap') || !$('rep-snap').checked || !rep.open) return { coord: point, snap: null };
  const map = state.map;
  const p = map.project(lngLat);
  const degPerPx = Math.abs(map.unproject([p.x + 1, p.y]).lng - lngLat.lng);
  try {
    const s = await invoke('replica_snap', {
      id: rep.open, lon: point[0], lat: point[1], degPerPx, tolerance: SNAP_PX,
      exclude: rep.feature && !rep.isNew ? rep.feature.id : null,
    });
    return s ? { coord: [s.lon, s.lat], snap: s } : { coord: point, snap: null };
  } catch {
    return { coord: point, snap: null };
  }
}

function snapNote(s) {
  const el = $('rep-snap-note');
  if (el) el.textContent = s ? `已吸附到 ${s.feature} 的${s.kind === 'vertex' ? '节点' : '边'}（${s.pixels.toFixed(1)} 像素）` : '';
}

async function onMapClick(ev) {
  const map = state.map;
  const lngLat = lngLatOf(ev);
  if (rep.mode === 'draw' || rep.mode === 'move') {
    const { coord, snap } = await snapped(lngLat);
    snapNote(snap);
    const form = currentForm();
    const kind = form ? form.geometry : 'Point';
    if (rep.mode === 'move' || kind === 'Point' || kind === 'MultiPoint' || kind === 'Geometry') {
      if (rep.geometry && rep.geometry.type !== 'Point' && rep.mode === 'move') return;
      rep.geometry = { type: 'Point', coordinates: coord };
      rep.mode = 'select';
    } else if (ev.altKey && rep.geometry) {
      return;
    } else if (kind.includes('LineString')) {
      rep.geometry = rep.geometry ? rep.geometry : { type: 'LineString', coordinates: [] };
      rep.geometry.coordinates.push(coord);
    } else {
      const ring = rep.geometry ? rep.geometry.coordinates[0].slice(0, -1) : [];
      ring.push(coord);
      rep.geometry = { type: 'Polygon', coordinates: [[...ring, ring[0]]] };
    }
    drawEdit();
    renderMode();
    return;
  }
  // Select: alt-click on a vertex removes it; shift-click adds one at the end (lines) or
  // before the closing vertex (polygons); a click on a feature opens it.
  const px = map.project(lngLat);
  const near = vertices().find((v) => {
    const q = map.project(v.coord);
    return Math.hypot(q.x - px.x, q.y - px.y) <= SNAP_PX;
  });
  if (ev.altKey && near && rep.geometry) return removeVertex(near);
  if (ev.shiftKey && rep.geometry && rep.geometry.type !== 'Point') {
    const { coord, snap } = await snapped(lngLat);
    snapNote(snap);
    if (rep.geometry.type === 'LineString') rep.geometry.coordinates.push(coord);
    else if (rep.geometry.type === 'Polygon') rep.geometry.coordinates[0].splice(-1, 0, coord);
    drawEdit();
    return;
  }
  const box = [[px.x - 5, px.y - 5], [px.x + 5, px.y + 5]];
  const hit = map.queryRenderedFeatures(box, { layers: ['rep-point', 'rep-line', 'rep-fill'] })[0];
  if (hit) await selectFeature(hit.properties.id);
}

function removeVertex(v) {
  const g = rep.geometry;
  if (g.type === 'LineString' && g.coordinates.length > 2) g.coordinates.splice(v.i, 1);
  else if (g.type === 'Polygon' && g.coordinates[v.part].length > 4) {
    const ring = g.coordinates[v.part].slice(0, -1);
    ring.splice(v.i, 1);
    g.coordinates[v.part] = [...ring, ring[0]];
  }
  drawEdit();
}

function attachMapHandlers(map) {
  ensureLayers(map);
  const container = map.getContainer();
  // While editing, the map's clicks are the editor's (identify and the map tools do not see them).
  container.addEventListener('click', (ev) => {
    if (!rep.editing || ev.target.closest('.maplibregl-ctrl, .maplibregl-popup, #rep-edit')) return;
    ev.stopPropagation();
    if (rep.swallowClick) return;
    onMapClick(ev);
  }, true);
  // Dragging a vertex of the geometry being edited.
  container.addEventListener('mousedown', (ev) => {
    if (!rep.editing || !rep.geometry || ev.button !== 0 || ev.target.closest('#rep-edit')) return;
    const r = map.getCanvas().getBoundingClientRect();
    const px = { x: ev.clientX - r.left, y: ev.clientY - r.top };
    const v = vertices().find((x) => {
      const q = map.project(x.coord);
      return Math.hypot(q.x - px.x, q.y - px.y) <= SNAP_PX;
    });
    if (!v) return;
    ev.stopPropagation();
    ev.preventDefault();
    rep.drag = v;
    map.dragPan.disable();
  }, true);
  window.addEventListener('mousemove', (ev) => {
    if (!rep.drag) return;
    const ll = lngLatOf(ev);
    setVertex(rep.drag, [ll.lng, ll.lat]);
    drawEdit();
  });
  window.addEventListener('mouseup', async (ev) => {
    if (!rep.drag) return;
    const v = rep.drag;
    rep.drag = null;
    map.dragPan.enable();
    const { coord, snap } = await snapped(lngLatOf(ev));
    snapNote(snap);
    setVertex(v, coord);
    drawEdit();
    // The click that ends a drag is not a click on the map.
    rep.swallowClick = true;
    setTimeout(() => (rep.swallowClick = false), 0);
  });
  map.on('styledata', () => {
    if (!map.getSource(SRC)) {
      ensureLayers(map);
      refreshFeatures();
      drawEdit();
    }
  });
  buildPanel(map);
  refreshFeatures();
}

function buildPanel(map) {
  if ($('rep-edit')) return;
  const panel = document.createElement('aside');
  panel.id = 'rep-edit';
  panel.dataset.testid = 'rep-edit';
  panel.hidden = true;
  map.getContainer().parentElement.appendChild(panel);
  renderPanel();
}

function renderPanel() {
  const panel = $('rep-edit');
  if (!panel) return;
  panel.hidden = !rep.editing;
  if (!rep.editing) return;
  const area = rep.areas.find((a) => a.id === rep.open);
  const form = currentForm();
  const f = rep.feature;
  const values = f ? f.values : {};
  const field = (x) => {
    const v = values[x.name] ?? '';
    const req = x.required ? ' <b class="rep-req">*</b>' : '';
    const attrs = `name="${esc(x.name)}" data-field="${esc(x.name)}"`;
    let input;
    if (x.type === 'code') {
      input = `<select ${attrs}><option value=""></option>${x.codes.map(([c, l]) => `<option value="${esc(c)}" ${c === v ? 'selected' : ''}>${esc(c)} ${esc(l)}</option>`).join('')}</select>`;
    } else if (x.type === 'bool') {
      input = `<select ${attrs}><option value=""></option><option value="true" ${v === 'true' ? 'selected' : ''}>是</option><option value="false" ${v === 'false' ? 'selected' : ''}>否</option></select>`;
    } else if (x.type === 'integer' || x.type === 'real') {
      const range = `${x.min !== null ? ` min="${x.min}"` : ''}${x.max !== null ? ` max="${x.max}"` : ''}`;
      input = `<input type="number" step="${x.type === 'integer' ? 1 : 'any'}"${range} ${attrs} value="${esc(v)}">`;
    } else if (x.type === 'date') {
      input = `<input type="date" ${attrs} value="${esc(v)}">`;
    } else {
      input = `<input ${attrs} value="${esc(v)}"${x.max_length ? ` maxlength="${x.max_length}"` : ''}>`;
    }
    const hint = x.type === 'integer' || x.type === 'real' ? (x.min !== null || x.max !== null ? `<small>${x.min ?? ''}–${x.max ?? ''}</small>` : '') : '';
    return `<label>${esc(x.title)}${req} ${hint}${input}</label>`;
  };
  const fields = form ? form.fields.filter((x) => x.type !== 'attachments') : [];
  const hasAttach = form && form.fields.some((x) => x.type === 'attachments');
  panel.innerHTML = `
    <h3>编辑 · ${esc(area ? area.name : '（未打开区域）')}</h3>
    <div class="rep-row"><button type="button" id="rep-edit-sync" data-testid="rep-edit-sync">同步</button> <span id="rep-edit-status" data-testid="rep-edit-status"></span></div>
    <div class="rep-row"><select id="rep-edit-layer" data-testid="rep-edit-layer">${rep.forms.map((x) => `<option value="${esc(x.layer)}" ${x.layer === rep.layer ? 'selected' : ''}>${esc(x.title)}</option>`).join('')}</select>
      <button type="button" id="rep-new" data-testid="rep-new">新建</button>
      <button type="button" id="rep-close">关闭</button></div>
    <div class="rep-row"><label class="rep-check"><input type="checkbox" id="rep-snap" checked> 吸附（${SNAP_PX} 像素）</label>
      <span id="rep-mode" data-testid="rep-mode"></span></div>
    ${f || rep.isNew ? `
    <p class="rep-muted" data-testid="rep-feature-code">${rep.isNew ? '新要素' : `${esc(f.code)} · ${f.status === 'pending' ? '待同步' : f.status === 'synced' ? '已同步' : esc(f.status)}`}</p>
    <div class="rep-row"><span id="rep-geom-info"></span>
      <button type="button" id="rep-move" data-testid="rep-move">${form && form.geometry.includes('Point') ? '点击地图放置' : '重新绘制'}</button></div>
    <p class="rep-muted">拖动节点移动；Shift+点击添加节点；Alt+点击节点删除。</p>
    <p class="rep-muted" id="rep-snap-note" data-testid="rep-snap-note"></p>
    <form id="rep-form" data-testid="rep-form">${fields.map(field).join('')}
      ${hasAttach ? `<div class="rep-attach"><b>附件</b>${f && f.attachments.length ? `<ul data-testid="rep-attachments">${f.attachments.map((a) => `<li>${esc(a.mime)} · ${(a.size / 1024).toFixed(1)} KB · ${esc(a.sha256.slice(0, 10))}${a.confirmed ? '' : ' · 待上传'}</li>`).join('')}</ul>` : '<p class="rep-muted">无</p>'}
      <label>添加文件（路径，多个用 ; 分隔） <input id="rep-files" data-testid="rep-files" placeholder="/home/…/photo.jpg"></label></div>` : ''}
      <div class="rep-actions"><button type="submit" id="rep-save" data-testid="rep-save">保存</button>
      ${f && !rep.isNew ? '<button type="button" id="rep-delete" data-testid="rep-delete">删除要素</button>' : ''}
      <button type="button" id="rep-cancel">取消</button></div>
    </form>` : `<p class="rep-muted">点击地图上的要素进行编辑，或点“新建”。当前图层 ${rep.count ?? 0} 个要素。</p>`}
    <p class="error" id="rep-edit-error" data-testid="rep-edit-error"></p>`;
  $('rep-edit-layer').addEventListener('change', async () => {
    rep.layer = $('rep-edit-layer').value;
    endFeature();
    await refreshFeatures();
  });
  $('rep-new').addEventListener('click', () => {
    rep.feature = null;
    rep.isNew = true;
    rep.geometry = null;
    rep.mode = 'draw';
    renderPanel();
  });
  $('rep-close').addEventListener('click', () => stopEditing());
  $('rep-edit-sync').addEventListener('click', () => sync());
  if ($('rep-move')) $('rep-move').addEventListener('click', () => {
    rep.mode = form && form.geometry.includes('Point') ? 'move' : 'draw';
    if (rep.mode === 'draw') rep.geometry = null;
    drawEdit();
    renderMode();
  });
  if ($('rep-form')) {
    $('rep-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      save();
    });
    $('rep-cancel').addEventListener('click', () => endFeature());
    if ($('rep-delete')) $('rep-delete').addEventListener('click', () => removeFeature());
  }
  renderMode();
  drawEdit();
}

function renderMode() {
  const el = $('rep-mode');
  if (!el) return;
  el.dataset.mode = rep.mode;
  el.textContent = { select: '选择/编辑', draw: '绘制：在地图上点击', move: '移动：在地图上点击新位置' }[rep.mode];
}

function endFeature() {
  rep.feature = null;
  rep.isNew = false;
  rep.geometry = null;
  rep.mode = 'select';
  renderPanel();
}

async function selectFeature(key) {
  clear('rep-edit-error');
  try {
    const f = await invoke('replica_feature', { id: rep.open, layer: rep.layer, key });
    if (!f) return fail('rep-edit-error')('要素已不在副本中');
    rep.feature = f;
    rep.isNew = false;
    rep.geometry = f.geometry ? JSON.parse(JSON.stringify(f.geometry)) : null;
    rep.mode = 'select';
    renderPanel();
  } catch (e) {
    fail('rep-edit-error')(e);
  }
}

async function save() {
  clear('rep-edit-error');
  const values = {};
  for (const el of document.querySelectorAll('#rep-form [data-field]')) values[el.dataset.field] = el.value;
  const files = $('rep-files') ? $('rep-files').value.split(';').map((s) => s.trim()).filter(Boolean) : [];
  const original = rep.feature && rep.feature.geometry ? JSON.stringify(rep.feature.geometry) : null;
  const geometry = rep.geometry && (rep.isNew || JSON.stringify(rep.geometry) !== original) ? rep.geometry : null;
  if (rep.isNew && !geometry) return fail('rep-edit-error')('请先在地图上绘制几何');
  try {
    const saved = await invoke('replica_save', {
      id: rep.open, layer: rep.layer, key: rep.isNew ? null : rep.feature.id, geometry, values, files,
    });
    await refreshFeatures();
    await selectFeature(saved.id);
    $('rep-edit-status').textContent = `${saved.changed ? '已保存' : '没有修改'}：${saved.code} · 待同步 ${saved.pending}`;
    loadAreas();
  } catch (e) {
    fail('rep-edit-error')(e);
  }
}

async function removeFeature() {
  if (!rep.feature || !window.confirm(`删除要素 ${rep.feature.code}？`)) return;
  try {
    await invoke('replica_delete_feature', { id: rep.open, layer: rep.layer, key: rep.feature.id });
    endFeature();
    await refreshFeatures();
    loadAreas();
  } catch (e) {
    fail('rep-edit-error')(e);
  }
}

/** Opens the map with the edit panel on the open area. */
async function startEditing() {
  if (!rep.open) return fail('rep-error')('没有打开的离线区域');
  await openView('map');
  if (!state.map) offlineMap();
  rep.editing = true;
  renderPanel();
  await refreshFeatures();
  fitToLayer();
}

/** Without the server (offline) the map has no style: edit over a plain background, the replica's
 * features drawn from the replica itself. */
function offlineMap() {
  const map = new maplibregl.Map({
    container: 'map',
    style: { version: 8, sources: {}, layers: [{ id: 'offline-bg', type: 'background', paint: { 'background-color': '#eef1f4' } }] },
    center: [114.35, 30.5],
    zoom: 12,
    attributionControl: false,
    preserveDrawingBuffer: true,
  });
  state.map = map;
  map.addControl(new maplibregl.NavigationControl(), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  const status = $('map-status');
  if (status) status.textContent = '离线：显示本地副本的要素（无底图）';
  rep.fitPending = true;
  map.on('load', () => emit('map-ready', map));
}

function fitToLayer() {
  const map = state.map;
  if (!map || !rep.fc) return;
  let b = null;
  for (const f of rep.fc.features) {
    for (const c of parts(f.geometry).flat()) {
      b = b ? [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])] : [c[0], c[1], c[0], c[1]];
    }
  }
  if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40, duration: 0, maxZoom: 17 });
}

function stopEditing() {
  rep.editing = false;
  endFeature();
  drawEdit();
}

// ---------------------------------------------------------------------------------------------

on('map-ready', (map) => attachMapHandlers(map));
on('signed-in', () => {
  frame();
  loadAreas();
});
on('signed-out', () => {
  rep.open = null;
  rep.areas = [];
  stopEditing();
});
registerView('replica', { show });

// What the end-to-end test uses: a click on the map at a position (as the user's click, through
// the editor's handler), the editor's state, and fitting the map to a feature.
setTimeout(() => {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    replica: {
      state: () => ({ open: rep.open, layer: rep.layer, editing: rep.editing, mode: rep.mode, feature: rep.feature, geometry: rep.geometry, count: rep.count }),
      clickAt: (lon, lat, opts = {}) => {
        const map = state.map;
        const p = map.project([lon, lat]);
        const r = map.getCanvas().getBoundingClientRect();
        map.getCanvas().dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true, clientX: r.left + p.x, clientY: r.top + p.y, ...opts }));
      },
      jumpTo: (lon, lat, zoom) => state.map.jumpTo({ center: [lon, lat], zoom }),
      select: (key) => selectFeature(key),
    },
  });
}, 0);
