// The map's tools (issue 16, "Map"): a layer tree over the server's style (styles from the
// server, basemaps: the server's raster sets and the offline packages in the data folder, GCJ-02
// ones moved into place by the Rust side), geodesic measurement of distances and areas on
// CGCS2000, the pointer's coordinates as CGCS2000 lon/lat and Gauss-Krüger zone metres, locating
// an address through the server's geocoder, and bookmarks (named views in the data folder).
// Every number is computed in Rust (commands of desktop/src/maptools.rs); this module draws.
//
// Hooks into the map through `map-ready` (map.js stays as it is). While a measuring tool is
// active, `state.tool` names it and the map's clicks are taken before MapLibre sees them, so
// identify does not answer them.
import maplibregl from 'maplibre-gl';
import { invoke, $, esc, state, on, emit } from './core.js';
import { t } from './i18n.js';
import { shortcut, openMap } from './keys.js';

const PKG = 'skpkg';
const MEASURE = 'mt-measure';

let map = null;
let base = null;
/** The server style's own source ids (what a style switch replaces). */
let serverSources = new Set();
/** Offline packages from the data folder. */
let packages = [];
/** The basemap chosen: `null` (the style's own), `none`, `style:LAYERID` or `pkg:ID`. */
let basemap = null;
/** Group titles the user switched off (kept across style switches). */
const hidden = new Set();

// ---------------------------------------------------------------------------------------------
// The tool bar (built once, into the map view)

const view = $('view-map');
const bar = document.createElement('div');
bar.id = 'maptools';
bar.dataset.testid = 'maptools';
bar.innerHTML = `
  <div class="mt-row">
    <div class="mt-search">
      <input id="mt-search" data-testid="mt-search" autocomplete="off" data-i18n-placeholder="mt_search_ph">
      <ul id="mt-suggest" data-testid="mt-suggest" hidden></ul>
    </div>
    <button type="button" id="mt-layers-btn" data-panel="layers" data-i18n="mt_layers"></button>
    <button type="button" id="mt-line-btn" data-tool="line" data-i18n="mt_measure_line"></button>
    <button type="button" id="mt-area-btn" data-tool="area" data-i18n="mt_measure_area"></button>
    <button type="button" id="mt-bookmarks-btn" data-panel="bookmarks" data-i18n="mt_bookmarks"></button>
  </div>
  <p id="mt-located" data-testid="mt-located" hidden></p>
  <div id="mt-panel-layers" class="mt-panel" data-testid="layer-tree" hidden></div>
  <div id="mt-panel-bookmarks" class="mt-panel" data-testid="bookmarks" hidden>
    <div class="mt-row">
      <input id="mt-bm-name" data-testid="bm-name" data-i18n-placeholder="mt_bookmark_name">
      <button type="button" id="mt-bm-save" data-testid="bm-save" data-i18n="mt_bookmark_save"></button>
    </div>
    <ul id="mt-bm-list"></ul>
  </div>
  <div id="mt-measure" class="mt-panel" data-testid="measure" hidden></div>`;
view.appendChild(bar);
const coords = document.createElement('div');
coords.id = 'mt-coords';
coords.dataset.testid = 'coords';
view.appendChild(coords);

function togglePanel(name, show) {
  const el = $(`mt-panel-${name}`);
  const next = show === undefined ? el.hidden : show;
  el.hidden = !next;
  $(`mt-${name}-btn`).classList.toggle('active', next);
  if (next && name === 'bookmarks') loadBookmarks();
  if (next && name === 'layers') renderTree();
}

for (const b of bar.querySelectorAll('button[data-panel]')) b.addEventListener('click', () => togglePanel(b.dataset.panel));
for (const b of bar.querySelectorAll('button[data-tool]')) b.addEventListener('click', () => startMeasure(b.dataset.tool));

// ---------------------------------------------------------------------------------------------
// Layer tree: styles, basemaps, the style's layers

/** The style's layers the tree shows, grouped by title: `[{title, ids, color}]`. */
function groups() {
  const out = new Map();
  for (const l of map.getStyle().layers) {
    if (l.type === 'raster' || l.type === 'background' || l.id.startsWith('mt-')) continue;
    let title;
    if (serverSources.has(l.source)) title = (l.metadata && l.metadata['shikong:title']) || l.source;
    else if (l.id === 'desk-cases') title = t('mt_cases');
    else continue;
    if (!out.has(title)) out.set(title, { title, ids: [], color: null });
    const g = out.get(title);
    g.ids.push(l.id);
    const paint = l.paint || {};
    const c = paint['fill-color'] || paint['line-color'] || paint['circle-color'];
    if (!g.color && typeof c === 'string') g.color = c;
  }
  return [...out.values()];
}

function rasterLayers() {
  return map.getStyle().layers.filter((l) => l.type === 'raster' && !l.id.startsWith('mt-'));
}

let styles = [];

function renderTree() {
  const el = $('mt-panel-layers');
  if (!map) return;
  const rasters = rasterLayers();
  const current = basemap || (rasters[0] ? `style:${rasters[0].id}` : 'none');
  const radio = (value, label, extra = '') =>
    `<label class="mt-basemap"><input type="radio" name="mt-basemap" value="${esc(value)}" ${value === current ? 'checked' : ''}> ${esc(label)}${extra}</label>`;
  const gs = groups();
  el.innerHTML = `
    <label class="mt-style">${esc(t('mt_style'))}
      <select id="mt-style" data-testid="style-select">
        ${styles.map((s) => `<option value="${esc(s.id)}" ${s.id === state.styleId ? 'selected' : ''}>${esc(s.title || s.id)}</option>`).join('')}
      </select>
    </label>
    <h3>${esc(t('mt_basemap'))}</h3>
    ${radio('none', t('mt_basemap_none'))}
    ${rasters.map((l) => radio(`style:${l.id}`, (l.metadata && l.metadata['shikong:title']) || l.id)).join('')}
    ${packages
      .map((p) =>
        radio(
          `pkg:${p.id}`,
          p.title,
          ` <small>(${esc(t('mt_offline'))}${p.crs === 'GCJ02' ? `, ${esc(t('mt_gcj'))}` : ''})</small>`,
        ),
      )
      .join('')}
    <h3>${esc(t('mt_overlays'))}</h3>
    ${gs.length === 0 ? `<p class="empty">${esc(t('mt_no_layers'))}</p>` : ''}
    ${gs
      .map(
        (g) => `<label class="mt-layer" data-testid="layer-toggle" data-title="${esc(g.title)}" data-layers="${esc(g.ids.join(','))}">
          <input type="checkbox" ${hidden.has(g.title) ? '' : 'checked'}>
          <span class="mt-swatch" style="background:${esc(g.color || '#888')}"></span> ${esc(g.title)}</label>`,
      )
      .join('')}`;
  for (const r of el.querySelectorAll('input[name=mt-basemap]')) r.addEventListener('change', () => setBasemap(r.value));
  for (const row of el.querySelectorAll('.mt-layer')) {
    const box = row.querySelector('input');
    box.addEventListener('change', () => setGroup(row.dataset.title, box.checked));
  }
  const sel = $('mt-style');
  if (sel) sel.addEventListener('change', () => switchStyle(sel.value));
}

/** Shows or hides every layer of a group (by its title). */
function setGroup(title, visible) {
  if (visible) hidden.delete(title);
  else hidden.add(title);
  applyVisibility();
}

function applyVisibility() {
  for (const g of groups()) {
    const v = hidden.has(g.title) ? 'none' : 'visible';
    for (const id of g.ids) map.setLayoutProperty(id, 'visibility', v);
  }
}

/** The first layer above the basemaps (new basemap layers go below it). */
function firstOverlay() {
  const l = map.getStyle().layers.find((x) => x.type !== 'raster' && x.type !== 'background');
  return l ? l.id : undefined;
}

function packageLayers(p) {
  const src = `mt-pkg-${p.id}`;
  if (p.format !== 'pbf') return [{ id: src, type: 'raster', source: src }];
  // A vector package (an offline area's roads and places): drawn plainly, as a basemap.
  return p.vector_layers.flatMap((v) => [
    { id: `${src}-${v}-fill`, type: 'fill', source: src, 'source-layer': v, filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#d9d4c7', 'fill-opacity': 0.6 } },
    { id: `${src}-${v}-line`, type: 'line', source: src, 'source-layer': v, filter: ['==', ['geometry-type'], 'LineString'], paint: { 'line-color': '#9a9486', 'line-width': 2 } },
    { id: `${src}-${v}-point`, type: 'circle', source: src, 'source-layer': v, filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-color': '#7d776b', 'circle-radius': 3 } },
  ]);
}

/** Shows one basemap: `none`, `style:LAYER` (a raster set of the server's style) or `pkg:ID`. */
function setBasemap(value) {
  basemap = value;
  for (const l of rasterLayers()) map.setLayoutProperty(l.id, 'visibility', value === `style:${l.id}` ? 'visible' : 'none');
  for (const p of packages) {
    const src = `mt-pkg-${p.id}`;
    const on = value === `pkg:${p.id}`;
    if (on && !map.getSource(src)) {
      const tiles = [`${PKG}://${encodeURIComponent(p.id)}/{z}/{x}/{y}`];
      const spec = { type: p.format === 'pbf' ? 'vector' : 'raster', tiles, minzoom: p.minzoom, maxzoom: p.maxzoom };
      if (p.format !== 'pbf') spec.tileSize = 256;
      if (p.bounds) spec.bounds = p.bounds;
      map.addSource(src, spec);
      const before = firstOverlay();
      for (const l of packageLayers(p)) map.addLayer(l, before);
    }
    for (const l of packageLayers(p)) if (map.getLayer(l.id)) map.setLayoutProperty(l.id, 'visibility', on ? 'visible' : 'none');
  }
  renderTree();
}

// Offline package tiles come through a command (bytes over IPC): no scheme, no CSP change.
const EMPTY_PNG = Uint8Array.from(
  atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='),
  (c) => c.charCodeAt(0),
).buffer;

maplibregl.addProtocol(PKG, async (params) => {
  const m = params.url.match(/^skpkg:\/\/([^/]+)\/(\d+)\/(\d+)\/(\d+)/);
  if (!m) throw new Error(`bad package tile URL ${params.url}`);
  const id = decodeURIComponent(m[1]);
  const data = await invoke('basemap_tile', { id, z: Number(m[2]), x: Number(m[3]), y: Number(m[4]) });
  const p = packages.find((x) => x.id === id);
  if (data.byteLength === 0 && p && p.format !== 'pbf') return { data: EMPTY_PNG };
  return { data };
});

/** The sources of a style that are the server's tile sets (read through `skmap:`); other views
 * add GeoJSON sources of their own (cases, selections, edits), which the tree leaves alone. */
function styleSources(style) {
  const fromServer = (src) => [src.url, ...(src.tiles || [])].some((u) => typeof u === 'string' && u.includes('/tiles/'));
  return new Set(Object.entries(style.sources || {}).filter(([, src]) => fromServer(src)).map(([k]) => k));
}

/** Switches to another of the server's styles, keeping what the app drew on top. */
async function switchStyle(id) {
  let next;
  try {
    const r = await fetch(`${base}/styles/${encodeURIComponent(id)}`);
    if (!r.ok) throw new Error(`${r.status}: ${await r.text()}`);
    next = await r.json();
  } catch (e) {
    $('map-status').textContent = t('style_failed', { status: '', e });
    return;
  }
  const old = serverSources;
  state.styleId = id;
  serverSources = styleSources(next);
  // 'styledata' may come inside setStyle (a diffed style) or later (a full reload): listen first;
  // the user's choices are applied again when the map is idle on the new style.
  const apply = () => {
    applyVisibility();
    if (basemap) setBasemap(basemap);
  };
  map.once('styledata', apply);
  map.once('idle', () => {
    apply();
    renderTree();
    // the time slider re-applies its instant to the new sources
    emit('asof', state.asOf);
  });
  map.setStyle(next, {
    transformStyle: (prev, fresh) => {
      const keptLayers = prev.layers.filter((l) => l.source && !old.has(l.source) && !(l.source in fresh.sources));
      const keptSources = Object.fromEntries(Object.entries(prev.sources).filter(([k]) => !old.has(k) && !(k in fresh.sources)));
      return { ...fresh, sources: { ...fresh.sources, ...keptSources }, layers: [...fresh.layers, ...keptLayers] };
    },
  });
}

async function loadStyles() {
  try {
    const r = await fetch(`${base}/styles`);
    styles = r.ok ? (await r.json()).styles || [] : [];
  } catch {
    styles = [];
  }
  if (!styles.some((s) => s.id === 'default')) styles.unshift({ id: 'default', title: 'default' });
}

// ---------------------------------------------------------------------------------------------
// Measure (geodesic, CGCS2000, computed by the `measure` command)

let points = [];

function lngLatOf(ev) {
  const r = map.getCanvas().getBoundingClientRect();
  return map.unproject([ev.clientX - r.left, ev.clientY - r.top]);
}

function measureData() {
  const coords = points.map((p) => [p[0], p[1]]);
  const features = coords.map((c) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: c }, properties: {} }));
  if (state.tool === 'area' && coords.length >= 3) {
    features.push({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[...coords, coords[0]]] }, properties: {} });
  } else if (coords.length >= 2) {
    features.push({ type: 'Feature', geometry: { type: 'LineString', coordinates: coords }, properties: {} });
  }
  return { type: 'FeatureCollection', features };
}

function ensureMeasureLayers() {
  if (map.getSource(MEASURE)) return;
  map.addSource(MEASURE, { type: 'geojson', data: measureData() });
  map.addLayer({ id: `${MEASURE}-fill`, type: 'fill', source: MEASURE, filter: ['==', ['geometry-type'], 'Polygon'], paint: { 'fill-color': '#f3a712', 'fill-opacity': 0.2 } });
  map.addLayer({ id: `${MEASURE}-line`, type: 'line', source: MEASURE, filter: ['in', ['geometry-type'], ['literal', ['LineString', 'Polygon']]], paint: { 'line-color': '#d35400', 'line-width': 2.5, 'line-dasharray': [2, 1] } });
  map.addLayer({ id: `${MEASURE}-pt`, type: 'circle', source: MEASURE, filter: ['==', ['geometry-type'], 'Point'], paint: { 'circle-radius': 4, 'circle-color': '#fff', 'circle-stroke-color': '#d35400', 'circle-stroke-width': 2 } });
}

function fmtLength(m) {
  return m >= 1000 ? `${(m / 1000).toFixed(3)} km` : `${m.toFixed(2)} m`;
}

function fmtArea(a) {
  return a >= 1e6 ? `${(a / 1e6).toFixed(4)} km²` : `${a.toFixed(1)} m²`;
}

let lastMeasure = null;
let measureSeq = 0;

async function updateMeasure() {
  ensureMeasureLayers();
  map.getSource(MEASURE).setData(measureData());
  const el = $('mt-measure');
  el.hidden = false;
  let m = null;
  const seq = ++measureSeq;
  if (points.length >= 2) {
    try {
      m = await invoke('measure', { points, area: state.tool === 'area' });
    } catch (e) {
      el.textContent = String(e);
      return;
    }
  }
  if (seq !== measureSeq) return; // a later point's answer wins, whatever order they come in
  lastMeasure = m;
  renderMeasure();
}

function renderMeasure() {
  const el = $('mt-measure');
  if (!state.tool && !lastMeasure) {
    el.hidden = true;
    return;
  }
  const m = lastMeasure;
  const rows = [];
  if (m) {
    if (m.area_m2 != null) {
      rows.push(`<div>${esc(t('mt_area'))}: <b data-testid="measure-area" data-value="${m.area_m2}">${esc(fmtArea(m.area_m2))}</b></div>`);
      rows.push(`<div>${esc(t('mt_perimeter'))}: <b data-value="${m.perimeter_m}">${esc(fmtLength(m.perimeter_m))}</b></div>`);
    } else {
      rows.push(`<div>${esc(t('mt_length'))}: <b data-testid="measure-length" data-value="${m.length_m}">${esc(fmtLength(m.length_m))}</b>
        (${esc(t('mt_segments', { n: m.segments_m.length }))})</div>`);
    }
    rows.push(`<small>${esc(t('mt_geodesic'))}</small>`);
  }
  el.innerHTML = `${state.tool ? `<p class="mt-hint">${esc(t('mt_measure_hint'))}</p>` : ''}${rows.join('')}
    <button type="button" id="mt-measure-clear">${esc(t('mt_clear'))}</button>`;
  $('mt-measure-clear').addEventListener('click', () => cancelTool(true));
}

/** Starts measuring a distance (`line`) or an area (`area`); a second press ends it. */
export function startMeasure(kind) {
  if (!map) return;
  if (state.tool === kind) {
    finishMeasure();
    return;
  }
  points = [];
  lastMeasure = null;
  state.tool = kind;
  map.getCanvas().style.cursor = 'crosshair';
  for (const b of bar.querySelectorAll('button[data-tool]')) b.classList.toggle('active', b.dataset.tool === kind);
  updateMeasure();
  emit('tool', kind);
}

function dropDuplicates() {
  points = points.filter((p, i) => i === 0 || p[0] !== points[i - 1][0] || p[1] !== points[i - 1][1]);
}

/** Ends the measurement: the shape and its figures stay on the map until cleared. */
async function finishMeasure() {
  if (!state.tool) return;
  dropDuplicates();
  await updateMeasure();
  state.tool = null;
  if (map) map.getCanvas().style.cursor = '';
  for (const b of bar.querySelectorAll('button[data-tool]')) b.classList.remove('active');
  renderMeasure();
  emit('tool', null);
}

/** Ends the active tool; `clear`: also removes the measured shape. */
export function cancelTool(clear = true) {
  state.tool = null;
  if (map) map.getCanvas().style.cursor = '';
  for (const b of bar.querySelectorAll('button[data-tool]')) b.classList.remove('active');
  if (clear) {
    points = [];
    lastMeasure = null;
    measureSeq += 1;
    if (map && map.getSource(MEASURE)) map.getSource(MEASURE).setData(measureData());
  }
  renderMeasure();
  emit('tool', null);
}

function addPoint(ll) {
  points.push([ll.lng, ll.lat]);
  updateMeasure();
}

// ---------------------------------------------------------------------------------------------
// Pointer coordinates: CGCS2000 lon/lat and Gauss-Krüger (3° zone, zone-prefixed easting),
// computed by the `pointer_coords` command; at most one call in flight, the latest position next.

let pending = null;
let inflight = false;
const MIN_INTERVAL_MS = 50;
let coordCalls = 0;

function queueCoords(ll) {
  pending = ll;
  if (!inflight) pump();
}

async function pump() {
  inflight = true;
  while (pending) {
    const ll = pending;
    pending = null;
    const t0 = performance.now();
    try {
      coordCalls += 1;
      renderCoords(await invoke('pointer_coords', { lon: ll.lng, lat: ll.lat }));
    } catch (e) {
      coords.textContent = String(e);
    }
    const wait = MIN_INTERVAL_MS - (performance.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  inflight = false;
}

let lastReadout = null;

function renderCoords(r) {
  lastReadout = r || lastReadout;
  r = lastReadout;
  if (!r) return;
  const ll = t('mt_coords_lonlat', { lon: r.lon.toFixed(6), lat: r.lat.toFixed(6) });
  const gk = r.gk
    ? t('mt_coords_gk', { zone: r.gk.zone, epsg: r.gk.epsg, cm: r.gk.central_meridian, x: r.gk.northing.toFixed(2), y: r.gk.easting.toFixed(2) })
    : t('mt_coords_no_gk');
  coords.innerHTML = `<span data-testid="coords-lonlat">${esc(ll)}</span> ｜ <span data-testid="coords-gk">${esc(gk)}</span>`;
  Object.assign(coords.dataset, { lon: r.lon, lat: r.lat });
  if (r.gk) Object.assign(coords.dataset, { zone: r.gk.zone, epsg: r.gk.epsg, northing: r.gk.northing, easting: r.gk.easting });
}

// ---------------------------------------------------------------------------------------------
// Locate by address (the server's /geocode and /geocode/suggest)

const search = $('mt-search');
const suggestList = $('mt-suggest');
let suggestTimer = null;
let marker = null;

const ZOOM_BY_LEVEL = { province: 7, city: 10, county: 12, town: 14, village: 15, road: 15, house_number: 17, poi: 17 };

function goTo(lon, lat, level, label) {
  if (!map) return;
  const zoom = ZOOM_BY_LEVEL[level] || 16;
  map.flyTo({ center: [lon, lat], zoom, duration: 700 });
  if (!marker) marker = new maplibregl.Marker({ color: '#c0392b' });
  marker.setLngLat([lon, lat]).addTo(map);
  const el = $('mt-located');
  el.hidden = false;
  el.textContent = label;
  Object.assign(el.dataset, { lon, lat });
}

async function locate(q) {
  suggestList.hidden = true;
  const el = $('mt-located');
  if (!q.trim()) return;
  try {
    const r = await invoke('geocode', { q });
    if (r.status === 'nomatch' || !r.standard_address) {
      el.hidden = false;
      el.textContent = t('mt_not_found', { q });
      delete el.dataset.lon;
      return;
    }
    if (!r.point) {
      el.hidden = false;
      el.textContent = t('mt_no_point', { addr: r.standard_address });
      return;
    }
    const label =
      r.status === 'ambiguous'
        ? t('mt_ambiguous', { addr: r.standard_address })
        : t('mt_located', { addr: r.standard_address, score: r.score.toFixed(2) });
    goTo(r.point.lon, r.point.lat, r.level, label);
  } catch (e) {
    el.hidden = false;
    el.textContent = String(e);
  }
}

async function suggest(q) {
  if (!q.trim()) {
    suggestList.hidden = true;
    return;
  }
  let list = [];
  try {
    list = await invoke('geocode_suggest', { q });
  } catch {
    list = [];
  }
  if (search.value !== q) return; // typed on meanwhile
  suggestList.innerHTML = list
    .map(
      (p, i) => `<li data-i="${i}" data-testid="suggestion"><b>${esc(p.name)}</b> <small>${esc(p.standard_address)}</small></li>`,
    )
    .join('');
  suggestList.hidden = list.length === 0;
  for (const li of suggestList.querySelectorAll('li')) {
    li.addEventListener('mousedown', (ev) => {
      ev.preventDefault();
      const p = list[Number(li.dataset.i)];
      search.value = p.name;
      suggestList.hidden = true;
      if (p.lon != null && p.lat != null) goTo(p.lon, p.lat, p.level, t('mt_located', { addr: p.standard_address, score: '1.00' }));
      else locate(p.standard_address || p.name);
    });
  }
}

search.addEventListener('input', () => {
  clearTimeout(suggestTimer);
  const q = search.value;
  suggestTimer = setTimeout(() => suggest(q), 200);
});
search.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') {
    ev.preventDefault();
    clearTimeout(suggestTimer);
    locate(search.value);
  }
});
search.addEventListener('blur', () => setTimeout(() => (suggestList.hidden = true), 150));

// ---------------------------------------------------------------------------------------------
// Bookmarks (named views, `bookmarks.json` in the data folder)

let bookmarks = [];

function renderBookmarks() {
  const ul = $('mt-bm-list');
  ul.innerHTML =
    bookmarks.length === 0
      ? `<li class="empty">${esc(t('mt_bookmarks_empty'))}</li>`
      : bookmarks
          .map(
            (b, i) => `<li data-testid="bookmark" data-name="${esc(b.name)}">
              <button type="button" class="mt-bm-go" data-i="${i}">${esc(b.name)}</button>
              <button type="button" class="mt-bm-del" data-i="${i}" title="${esc(t('mt_delete'))}">✕</button></li>`,
          )
          .join('');
  for (const b of ul.querySelectorAll('.mt-bm-go')) b.addEventListener('click', () => restoreBookmark(bookmarks[Number(b.dataset.i)]));
  for (const b of ul.querySelectorAll('.mt-bm-del')) {
    b.addEventListener('click', async () => {
      bookmarks = await invoke('delete_bookmark', { name: bookmarks[Number(b.dataset.i)].name });
      renderBookmarks();
    });
  }
}

async function loadBookmarks() {
  try {
    bookmarks = await invoke('bookmarks');
  } catch (e) {
    $('mt-bm-list').textContent = String(e);
    return;
  }
  renderBookmarks();
}

function restoreBookmark(b) {
  if (map && b) map.jumpTo({ center: [b.lon, b.lat], zoom: b.zoom, bearing: b.bearing, pitch: b.pitch });
}

$('mt-bm-save').addEventListener('click', async () => {
  if (!map) return;
  const c = map.getCenter();
  const bookmark = { name: $('mt-bm-name').value, lon: c.lng, lat: c.lat, zoom: map.getZoom(), bearing: map.getBearing(), pitch: map.getPitch() };
  try {
    bookmarks = await invoke('save_bookmark', { bookmark });
    $('mt-bm-name').value = '';
    renderBookmarks();
  } catch (e) {
    $('mt-bm-list').insertAdjacentHTML('afterbegin', `<li class="error">${esc(String(e))}</li>`);
  }
});

// ---------------------------------------------------------------------------------------------
// Wiring

on('map-ready', async (m) => {
  map = m;
  serverSources = styleSources(map.getStyle());
  base = await invoke('map_base');
  state.styleId = (map.getStyle().metadata && map.getStyle().metadata['shikong:id']) || 'default';
  const container = map.getContainer();
  // Measuring takes the map's clicks before MapLibre (and identify) see them.
  container.addEventListener(
    'click',
    (ev) => {
      if (!state.tool || ev.target.closest('.maplibregl-ctrl, .maplibregl-popup')) return;
      ev.stopPropagation();
      addPoint(lngLatOf(ev));
    },
    true,
  );
  container.addEventListener(
    'dblclick',
    (ev) => {
      if (!state.tool) return;
      ev.stopPropagation();
      ev.preventDefault();
      finishMeasure();
    },
    true,
  );
  map.on('mousemove', (e) => queueCoords(e.lngLat));
  const [list] = await Promise.all([invoke('basemaps').catch(() => []), loadStyles()]);
  packages = list;
  renderTree();
});

// Back online (connectivity.js): the server's styles listed again and, once the map is idle on
// the server's style (map.js switches from the offline one), its layers in the tree.
let treeStale = false;
on('online', async () => {
  if (!map || !base) return;
  treeStale = true;
  await loadStyles();
  renderTree();
  map.once('idle', refreshTree);
});
on('offline', () => {
  treeStale = false;
});

/** The tree over the style the map has now, once it is the server's (not the offline one). */
function refreshTree() {
  if (!treeStale) return;
  if (state.mapOffline) {
    map.once('idle', refreshTree);
    return;
  }
  treeStale = false;
  serverSources = styleSources(map.getStyle());
  const meta = map.getStyle().metadata;
  if (meta && meta['shikong:id']) state.styleId = meta['shikong:id'];
  applyVisibility();
  renderTree();
}

on('cancel', () => {
  if (state.tool) cancelTool(true);
  for (const p of ['layers', 'bookmarks']) togglePanel(p, false);
  suggestList.hidden = true;
});

on('lang', () => {
  renderCoords(null);
  renderMeasure();
  if (!$('mt-panel-layers').hidden) renderTree();
  if (!$('mt-panel-bookmarks').hidden) renderBookmarks();
});

document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && state.tool && !['INPUT', 'TEXTAREA'].includes(ev.target.tagName)) finishMeasure();
});

shortcut(['/'], 'keys_search', () => {
  openMap();
  search.focus();
  search.select();
});
shortcut(['m'], 'keys_measure', () => {
  openMap();
  startMeasure('line');
}, 'M');
shortcut(['a'], 'keys_area', () => {
  openMap();
  startMeasure('area');
}, 'A');
shortcut(['l'], 'keys_layers', () => {
  openMap();
  togglePanel('layers');
}, 'L');
shortcut(['b'], 'keys_bookmarks', () => {
  openMap();
  togglePanel('bookmarks');
}, 'B');

// What the end-to-end test reads and drives.
function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    /** Clicks the map at `[lon, lat]` as a user would (a DOM click at that pixel). */
    clickMapAt: (lngLat, type = 'click') => {
      const p = map.project(lngLat);
      const r = map.getCanvas().getBoundingClientRect();
      const opts = { bubbles: true, cancelable: true, clientX: r.left + p.x, clientY: r.top + p.y, detail: type === 'dblclick' ? 2 : 1 };
      map.getCanvas().dispatchEvent(new MouseEvent(type, opts));
    },
    /** Moves the pointer over the map to `[lon, lat]`. */
    pointerAt: (lngLat) => {
      const p = map.project(lngLat);
      const r = map.getCanvas().getBoundingClientRect();
      map.getCanvas().dispatchEvent(new MouseEvent('mousemove', { bubbles: true, clientX: r.left + p.x, clientY: r.top + p.y }));
    },
    measurePoints: () => points.slice(),
    coordCalls: () => coordCalls,
    center: () => (map ? map.getCenter().toArray().concat([map.getZoom()]) : null),
    jumpTo: (opts) => map && map.jumpTo(opts),
    tool: () => state.tool,
    /** The layer tree's styles and overlay groups, as listed now. */
    layerTree: () => ({ styles: styles.map((s) => s.id), groups: groups().map((g) => g.title) }),
  });
}
setTimeout(hooks, 0);
