// The map (地图): the server's default style through the app's `skmap:` scheme, with the board's
// cases on top. Other views add to it once it is ready (`map-ready` on the bus).
import maplibregl from 'maplibre-gl';
import { invoke, $, state, emit, on, registerView } from './core.js';
import { t, num, stateLabel } from './i18n.js';
import { attachIdentify } from './identify.js';

/** What the status line says, as a text key and its vars (said again when the language changes). */
let status = { key: 'map_loading', vars: undefined };

/** Sets the map's status line (`#map-status`) to the text `key` with `vars`. */
export function setMapStatus(key, vars) {
  status = { key, vars };
  const el = $('map-status');
  if (el) {
    el.textContent = t(key, vars);
    el.dataset.status = key;
  }
}

function caseFeatures() {
  const cols = state.board ? state.board.columns : [];
  return {
    type: 'FeatureCollection',
    features: cols.flatMap((col) =>
      col.cases
        .filter((c) => c.location && c.location.type === 'Point')
        .map((c) => ({
          type: 'Feature',
          geometry: c.location,
          properties: { id: c.id, case_no: c.case_no, state: stateLabel(col.state, col.label, c.state_label_en), overdue: c.overdue },
        })),
    ),
  };
}

/** The id of the board's case markers (source and layer) on the map. */
const CASES = 'desk-cases';

export function updateCaseMarkers() {
  const src = state.map && state.map.getSource(CASES);
  if (src) src.setData(caseFeatures());
}

/** The map without the server: a plain background; the replica's features are drawn on it
 * (replica.js) and an offline basemap package can be picked in the layer tree. */
const OFFLINE_STYLE = {
  version: 8,
  sources: {},
  layers: [{ id: 'offline-bg', type: 'background', paint: { 'background-color': '#eef1f4' } }],
};

/** The server's default style, or the Error saying why not (unreachable: said at once by the
 * connectivity probe, not after the client's retries). */
async function serverStyle() {
  try {
    const net = await invoke('server_status');
    if (!net.online) throw new Error(t('net_offline'));
    const base = await invoke('map_base');
    const r = await fetch(`${base}/styles/default`);
    if (!r.ok) throw new Error(t('style_failed', { status: r.status, e: await r.text() }));
    return await r.json();
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** How soon a failed switch to the server's style is tried again while the server is reachable. */
const STYLE_RETRY_MS = 2000;
let styleRetry = null;

/** Back online: the server's style replaces the offline one, the app's own layers kept. */
async function leaveOffline() {
  clearTimeout(styleRetry);
  styleRetry = null;
  const map = state.map;
  if (!map || !state.mapOffline) return;
  const style = await serverStyle();
  if (style instanceof Error) {
    // The server is back but the style did not come (a restarting server, a dropped connection):
    // the 'online' event will not come again, so try again while it stays reachable.
    const net = await invoke('server_status').catch(() => ({ online: false }));
    if (net.online && state.mapOffline) styleRetry = setTimeout(leaveOffline, STYLE_RETRY_MS);
    return;
  }
  if (!state.mapOffline) return;
  state.mapOffline = false;
  map.setStyle(style, {
    transformStyle: (prev, fresh) => ({
      ...fresh,
      sources: { ...prev.sources, ...fresh.sources },
      layers: [...fresh.layers, ...prev.layers.filter((l) => l.source && !(l.source in fresh.sources))],
    }),
  });
}

export async function showMap() {
  if (state.map) {
    state.map.resize();
    return;
  }
  let style = await serverStyle();
  if (style instanceof Error) {
    // Offline (or the style refused): the map over local data; the server's style once it is back.
    setMapStatus('map_offline_why', { e: style.message });
    style = OFFLINE_STYLE;
    state.mapOffline = true;
  }
  const cases = caseFeatures();
  const first = cases.features[0];
  const map = new maplibregl.Map({
    container: 'map',
    style,
    center: first ? first.geometry.coordinates : style.center || [114.3, 30.55],
    zoom: first ? 14 : style.zoom ?? 11,
    attributionControl: false,
  });
  state.map = map;
  map.addControl(new maplibregl.NavigationControl(), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  // The board's cases on top (the server's style may have a `cases` layer of its own: other ids).
  map.on('load', () => {
    emit('map-ready', map);
    try {
      map.addSource(CASES, { type: 'geojson', data: caseFeatures() });
      map.addLayer({
        id: CASES,
        type: 'circle',
        source: CASES,
        paint: {
          'circle-radius': 7,
          'circle-color': ['case', ['to-boolean', ['get', 'overdue']], '#c0392b', '#f3a712'],
          'circle-stroke-color': '#fff',
          'circle-stroke-width': 2,
        },
      });
    } catch (e) {
      setMapStatus('map_error', { e: String(e) });
    }
  });
  // Identify at the time slider's instant (identify.js).
  attachIdentify(map);
  map.once('idle', () => invoke('map_ready'));
  map.on('idle', () => {
    setMapStatus('map_shown', { n: num(map.queryRenderedFeatures().length) });
  });
  map.on('error', (e) => {
    setMapStatus('map_error', { e: e.error && e.error.message ? e.error.message : String(e) });
  });
}


on('lang', () => {
  setMapStatus(status.key, status.vars);
  updateCaseMarkers(); // their state labels follow the language
});
registerView('map', { show: showMap });
on('online', leaveOffline);
