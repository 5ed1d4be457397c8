// The desktop's own replica (本地副本, issue 16): offline areas (download a division or the map's
// extent, list, open, delete), sync with a progress bar, import into a layer (with the review of
// rows geocoded below the threshold) and export; and, on the map, the edit panel: the layer's
// form from its schema, geometry editing (place/move a point, drag line/polygon vertices, add and
// remove vertices) with snapping to the replica's vertices and edges within SNAP_PX pixels, and
// attachments picked as files. Everything goes through the replica (commands in
// desktop/src/replica.rs, logic in the app core), so it works offline and is sent at the next sync.
import maplibregl from 'maplibre-gl';
import { invoke, $, esc, state, on, emit, registerView, openView } from './core.js';
import { t, lang, num, applyI18n } from './i18n.js';
import { setMapStatus } from './map.js';
import { finishProgress, say, fail, clear, relabelStatus } from './replica-status.js';

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
// The view: areas, download, sync, import, export

function frame() {
  const root = $('view-replica');
  if (root.dataset.built) return;
  root.dataset.built = '1';
  root.innerHTML = `
  <div class="rep">
    <section class="rep-col">
      <h2 data-i18n="rep_areas"></h2>
      <div id="rep-list" data-testid="rep-list"></div>
      <h3 data-i18n="rep_new_area"></h3>
      <form id="rep-dl" class="rep-form">
        <label><span data-i18n="rep_name"></span> <input id="rep-name" data-i18n-placeholder="rep_name_ph"></label>
        <label><span data-i18n="rep_division"></span> <span class="rep-row"><input id="rep-div-q" data-i18n-placeholder="rep_div_ph"><button type="button" id="rep-div-search" data-i18n="rep_search"></button></span></label>
        <select id="rep-div" data-testid="rep-div"><option value="" data-i18n="rep_unselected"></option></select>
        <label class="rep-check"><input type="checkbox" id="rep-extent"> <span data-i18n="rep_use_extent"></span></label>
        <fieldset id="rep-layers" data-testid="rep-layers"><legend data-i18n="mt_layers"></legend></fieldset>
        <button type="submit" id="rep-download" data-testid="rep-download" data-i18n="rp_download"></button>
      </form>
    </section>
    <section class="rep-col rep-wide">
      <div id="rep-progress" data-testid="rep-progress" hidden><progress id="rep-bar" max="100"></progress> <span id="rep-progress-text"></span></div>
      <p class="error" id="rep-error" role="alert" data-testid="rep-error"></p>
      <h3 data-i18n="rep_sync_h"></h3>
      <p><button type="button" id="rep-sync" data-testid="rep-sync" data-i18n="rep_sync_btn"></button>
         <button type="button" id="rep-edit-map" data-testid="rep-edit-map" data-i18n="rep_edit_map"></button></p>
      <p id="rep-sync-result" data-testid="rep-sync-result"></p>
      <h3 data-i18n="imp_h"></h3>
      <form id="imp-form" class="rep-form" data-testid="imp-form">
        <label><span data-i18n="rep_layer"></span> <select id="imp-layer" class="rep-layer-pick"></select></label>
        <label><span data-i18n="imp_path"></span> <input id="imp-path" data-testid="imp-path" placeholder="/home/…/data.csv"></label>
        <details><summary data-i18n="imp_columns"></summary>
          <label><span data-i18n="imp_address"></span> <input id="imp-address" data-testid="imp-address" data-i18n-placeholder="imp_address_ph"></label>
          <label><span data-i18n="imp_threshold"></span> <input id="imp-threshold" type="number" step="0.05" min="0" max="1" value="0.8"></label>
          <label><span data-i18n="imp_lon"></span> <input id="imp-lon" data-i18n-placeholder="imp_lon_ph"></label>
          <label><span data-i18n="imp_lat"></span> <input id="imp-lat" data-i18n-placeholder="imp_lat_ph"></label>
          <label><span data-i18n="imp_wkt"></span> <input id="imp-wkt" data-i18n-placeholder="imp_wkt_ph"></label>
          <label><span data-i18n="imp_src_layer"></span> <input id="imp-src-layer"></label>
        </details>
        <button type="submit" id="imp-read" data-testid="imp-read" data-i18n="imp_read"></button>
      </form>
      <div id="imp-staged" data-testid="imp-staged"></div>
      <h3 data-i18n="exp_h"></h3>
      <form id="exp-form" class="rep-form">
        <label><span data-i18n="rep_layer"></span> <select id="exp-layer" class="rep-layer-pick"></select></label>
        <label><span data-i18n="exp_path"></span> <input id="exp-path" data-testid="exp-path" placeholder="/home/…/out.gpkg"></label>
        <button type="submit" id="exp-go" data-testid="exp-go" data-i18n="exp_go"></button>
      </form>
      <p id="exp-result" data-testid="exp-result"></p>
    </section>
  </div>`;
  applyI18n(root);
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
    box.innerHTML = `<legend data-i18n="mt_layers">${esc(t('mt_layers'))}</legend>` +
      layers.map(([n, t]) => `<label class="rep-check"><input type="checkbox" value="${esc(n)}" ${n === 'manhole' ? 'checked' : ''}> ${esc(t)} <small>${esc(n)}</small></label>`).join('');
  } catch (e) {
    box.innerHTML = `<legend data-i18n="mt_layers">${esc(t('mt_layers'))}</legend><span class="rep-muted" data-i18n="rep_server_offline" data-i18n-vars="${esc(JSON.stringify({ e: String(e) }))}">${esc(t('rep_server_offline', { e: String(e) }))}</span>`;
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
    list.innerHTML = `<p class="rep-muted" data-testid="rep-empty">${esc(t('rep_empty'))}</p>`;
    return;
  }
  list.innerHTML = rep.areas
    .map((a) => `
    <div class="rep-area${a.open ? ' open' : ''}" data-testid="rep-area" data-id="${esc(a.id)}">
      <div class="rep-area-head"><b>${esc(a.name)}</b>${a.open ? ` <span class="rep-tag">${esc(t('rep_opened'))}</span>` : ''}</div>
      <div class="rep-muted">${a.layers.map(([, title, n]) => `${esc(title)} ${num(n)}`).join(' · ')} · ${num(a.bytes / 1048576, 1)} MB</div>
      <div class="rep-counts">${esc(t('rep_pending', { n: '\u0000' })).replace('\u0000', `<b data-testid="rep-pending">${a.pending}</b>`)}${a.photos ? ` · ${esc(t('rep_attachments_n', { n: num(a.photos) }))}` : ''}${a.conflicts ? ` · <span class="overdue-text">${esc(t('rep_conflicts_n', { n: num(a.conflicts) }))}</span>` : ''}</div>
      <div class="rep-actions">
        <button type="button" class="rep-open" ${a.open ? 'disabled' : ''}>${esc(t('rep_open'))}</button>
        <button type="button" class="rep-del">${esc(t('mt_delete'))}</button>
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
    force = window.confirm(t('rep_confirm_delete', { name: a.name, n: num(a.pending) }));
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
      ? list.map((d, i) => `<option value="${i}">${esc(d.name)}${esc(t('paren', { x: d.code }))}</option>`).join('')
      : `<option value="" data-i18n="rep_none_found">${esc(t('rep_none_found'))}</option>`;
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
  if (useExtent && !extent) return fail('rep-error')(t('rep_no_map'));
  $('rep-download').disabled = true;
  try {
    const area = await invoke('replica_download', {
      name: $('rep-name').value,
      layers,
      division: useExtent ? null : picked,
      extent,
    });
    finishProgress('download', () => `${area.name}${t('colon')}${area.layers.map(([, title, n]) => `${title} ${num(n)}`).join(t('comma'))}`);
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
  if (!rep.open) return fail('rep-error')(t('rep_no_area'));
  for (const b of [$('rep-sync'), $('rep-edit-sync')]) if (b) b.disabled = true;
  for (const id of ['rep-sync-result', 'rep-edit-status']) say(id, () => t('rep_syncing'));
  try {
    const r = await invoke('replica_sync', { id: rep.open });
    // `已发送 3（接受 3）· 已接收 0 · 冲突 0 · 待同步 0` (no space after a full-width bracket).
    const text = () =>
      t('rep_sent', { sent: num(r.sent), accepted: num(r.accepted) }) + (lang() === 'en' ? ' · ' : '· ') +
      [
        t('rep_received', { n: num(r.received) }),
        t('rep_conflicts_n', { n: num(r.conflicts) }),
        r.attachments ? t('rep_attachments_n', { n: num(r.attachments) }) : '',
        r.rejected.length ? t('rep_rejected', { n: num(r.rejected.length), why: r.rejected.map((x) => x[2]).join(t('semi')) }) : '',
        t('rep_pending', { n: num(r.pending) }),
      ].filter(Boolean).join(' · ');
    for (const id of ['rep-sync-result', 'rep-edit-status']) say(id, text);
    finishProgress('sync');
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
  if (!rep.open) return fail('rep-error')(t('rep_no_area'));
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
  const label = (d) => t(`imp_${d}_state`);
  // Numbers go in bold (with their test ids) after the text is escaped.
  const bold = (key, vars) => {
    const marks = {};
    for (const [k, v] of Object.entries(vars)) marks[k] = `\u0000${k}\u0000`;
    return esc(t(key, marks)).replace(/\u0000(\w+)\u0000/g, (m, k) => vars[k]);
  };
  const summary = bold('imp_summary', {
    file: esc(s.file),
    layer: esc(s.layer),
    rows: `<b>${num(s.rows)}</b>`,
    keep: `<b data-testid="imp-keep">${s.keep}</b>`,
    review: `<b data-testid="imp-review-count">${s.review}</b>`,
    dropped: num(s.dropped),
  });
  const cols = ['imp_col_location', 'imp_col_address', 'imp_col_standard', 'imp_col_status', 'imp_col_score', 'imp_col_decision'];
  box.innerHTML = `
    <p data-testid="imp-summary">${summary}${s.ignored.length ? `<br><span class="rep-muted">${esc(t('imp_ignored', { cols: s.ignored.join(t('list_sep')) }))}</span>` : ''}</p>
    ${s.review_rows.length ? `
    <table class="imp-review" data-testid="imp-review">
      <thead><tr>${cols.map((k) => `<th>${esc(t(k, { t: s.threshold }))}</th>`).join('')}<th></th></tr></thead>
      <tbody>${s.review_rows.map((r) => `
        <tr data-index="${r.index}" data-decision="${r.decision}" data-testid="imp-row">
          <td>${esc(r.location)}</td>
          <td><input class="imp-addr" value="${esc(r.address)}" size="24"></td>
          <td>${esc(r.standard)}</td>
          <td>${esc(r.status)}</td>
          <td>${score(r.score)}</td>
          <td class="imp-state">${esc(label(r.decision))}</td>
          <td class="rep-actions"><button type="button" class="imp-keep" ${r.lon === null ? 'disabled' : ''}>${esc(t('imp_keep'))}</button><button type="button" class="imp-fix">${esc(t('imp_fix'))}</button><button type="button" class="imp-drop">${esc(t('imp_drop'))}</button></td>
        </tr>`).join('')}</tbody>
    </table>` : ''}
    <p><button type="button" id="imp-commit" data-testid="imp-commit" ${s.review > 0 ? 'disabled' : ''}>${esc(t('imp_commit', { n: s.keep }))}</button>
       <button type="button" id="imp-cancel">${esc(t('imp_cancel'))}</button>
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
    $('imp-staged').innerHTML = `<p data-testid="imp-done" data-i18n="imp_done" data-i18n-vars='{"n":${Number(n)}}'>${esc(t('imp_done', { n }))}</p>`;
    finishProgress('import', () => t('rep_features_n', { n: num(n) }));
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
  if (!rep.open) return fail('rep-error')(t('rep_no_area'));
  try {
    const path = $('exp-path').value.trim();
    const n = await invoke('export_layer', { id: rep.open, layer: $('exp-layer').value, path });
    say('exp-result', () => t('exp_done', { n: num(n), path }));
    finishProgress('export', () => t('rep_features_n', { n: num(n) }));
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
  if (info) info.textContent = g ? t('rep_geom_info', { type: g.type, n: num(vertices().length) }) : t('rep_no_geom');
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
  if (!el) return;
  if (!s) return clear('rep-snap-note');
  say('rep-snap-note', () => t('rep_snapped', { feature: s.feature, kind: t(s.kind === 'vertex' ? 'rep_snap_vertex' : 'rep_snap_edge'), px: num(s.pixels, 1) }));
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
      input = `<select ${attrs}><option value=""></option><option value="true" ${v === 'true' ? 'selected' : ''}>${esc(t('rep_yes'))}</option><option value="false" ${v === 'false' ? 'selected' : ''}>${esc(t('rep_no'))}</option></select>`;
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
    <h3 data-testid="rep-edit-title">${esc(t('rep_edit_title', { name: area ? area.name : t('rep_no_open_area') }))}</h3>
    <div class="rep-row"><button type="button" id="rep-edit-sync" data-testid="rep-edit-sync">${esc(t('rp_sync'))}</button> <span id="rep-edit-status" data-testid="rep-edit-status"></span></div>
    <div class="rep-row"><select id="rep-edit-layer" data-testid="rep-edit-layer">${rep.forms.map((x) => `<option value="${esc(x.layer)}" ${x.layer === rep.layer ? 'selected' : ''}>${esc(x.title)}</option>`).join('')}</select>
      <button type="button" id="rep-new" data-testid="rep-new">${esc(t('rep_new'))}</button>
      <button type="button" id="rep-close">${esc(t('close'))}</button></div>
    <div class="rep-row"><label class="rep-check"><input type="checkbox" id="rep-snap" ${rep.snapOff ? '' : 'checked'}> ${esc(t('rep_snap', { px: SNAP_PX }))}</label>
      <span id="rep-mode" data-testid="rep-mode"></span></div>
    ${f || rep.isNew ? `
    <p class="rep-muted" data-testid="rep-feature-code">${rep.isNew ? esc(t('rep_new_feature')) : `${esc(f.code)} · ${f.status === 'pending' || f.status === 'synced' ? esc(t(`rep_status_${f.status}`)) : esc(f.status)}`}</p>
    <div class="rep-row"><span id="rep-geom-info"></span>
      <button type="button" id="rep-move" data-testid="rep-move">${esc(t(form && form.geometry.includes('Point') ? 'rep_place' : 'rep_redraw'))}</button></div>
    <p class="rep-muted" data-testid="rep-hint">${esc(t('rep_hint'))}</p>
    <p class="rep-muted" id="rep-snap-note" data-testid="rep-snap-note"></p>
    <form id="rep-form" data-testid="rep-form">${fields.map(field).join('')}
      ${hasAttach ? `<div class="rep-attach"><b>${esc(t('rep_attachments'))}</b>${f && f.attachments.length ? `<ul data-testid="rep-attachments">${f.attachments.map((a) => `<li>${esc(a.mime)} · ${num(a.size / 1024, 1)} KB · ${esc(a.sha256.slice(0, 10))}${a.confirmed ? '' : ` · ${esc(t('rep_to_upload'))}`}</li>`).join('')}</ul>` : `<p class="rep-muted">${esc(t('rep_none'))}</p>`}
      <label><span>${esc(t('rep_files'))}</span> <input id="rep-files" data-testid="rep-files" placeholder="/home/…/photo.jpg"></label></div>` : ''}
      <div class="rep-actions"><button type="submit" id="rep-save" data-testid="rep-save">${esc(t('rep_save'))}</button>
      ${f && !rep.isNew ? `<button type="button" id="rep-delete" data-testid="rep-delete">${esc(t('rep_delete_feature'))}</button>` : ''}
      <button type="button" id="rep-cancel">${esc(t('rep_cancel'))}</button></div>
    </form>` : `<p class="rep-muted" data-testid="rep-pick-hint">${esc(t('rep_pick_hint', { n: num(rep.count ?? 0) }))}</p>`}
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
  $('rep-snap').addEventListener('change', () => (rep.snapOff = !$('rep-snap').checked));
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
  el.textContent = t(`rep_mode_${rep.mode}`);
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
    if (!f) return fail('rep-edit-error')(t('rep_gone'));
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
  if (rep.isNew && !geometry) return fail('rep-edit-error')(t('rep_draw_first'));
  try {
    const saved = await invoke('replica_save', {
      id: rep.open, layer: rep.layer, key: rep.isNew ? null : rep.feature.id, geometry, values, files,
    });
    await refreshFeatures();
    await selectFeature(saved.id);
    say('rep-edit-status', () => t('rep_saved_line', { what: t(saved.changed ? 'rep_saved' : 'rep_unchanged'), code: saved.code, n: num(saved.pending) }));
    loadAreas();
  } catch (e) {
    fail('rep-edit-error')(e);
  }
}

async function removeFeature() {
  if (!rep.feature || !window.confirm(t('rep_confirm_delete_feature', { code: rep.feature.code }))) return;
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
  if (!rep.open) return fail('rep-error')(t('rep_no_area'));
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
  setMapStatus('map_offline');
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
/** A new language: the areas, the import under review and the edit panel drawn again (what was
 * typed kept), the progress and status lines said again (the frame's `data-i18n` elements are
 * relabelled by `setLang`). */
function relabel() {
  if (!$('view-replica') || !$('view-replica').dataset.built) return;
  renderAreas();
  const values = (css) => [...document.querySelectorAll(css)].map((el) => [el, el.value]);
  if (rep.staged) {
    const rows = [...document.querySelectorAll('#imp-staged tr[data-index]')];
    const addrs = new Map(rows.map((tr) => [tr.dataset.index, tr.querySelector('.imp-addr').value]));
    const err = $('imp-error') ? $('imp-error').textContent : '';
    renderStaged();
    for (const tr of document.querySelectorAll('#imp-staged tr[data-index]')) {
      if (addrs.has(tr.dataset.index)) tr.querySelector('.imp-addr').value = addrs.get(tr.dataset.index);
    }
    if ($('imp-error')) $('imp-error').textContent = err;
  }
  if (rep.editing && $('rep-edit')) {
    const typed = values('#rep-form [data-field], #rep-files').map(([el, v]) => [el.dataset.field || el.id, v]);
    const err = $('rep-edit-error') ? $('rep-edit-error').textContent : '';
    renderPanel();
    for (const [name, v] of typed) {
      const el = name === 'rep-files' ? $('rep-files') : document.querySelector(`#rep-form [data-field="${CSS.escape(name)}"]`);
      if (el) el.value = v;
    }
    if ($('rep-edit-error')) $('rep-edit-error').textContent = err;
  }
  relabelStatus();
}

on('lang', relabel);
if ($('tab-replica')) $('tab-replica').dataset.i18n = 'tab_replica';
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
