// The map (地图): the server's default style through the app's `skmap:` scheme, with the board's
// cases on top. Other views add to it once it is ready (`map-ready` on the bus).
import maplibregl from 'maplibre-gl';
import { invoke, $, state, emit, registerView } from './core.js';
import { attachIdentify } from './identify.js';

function caseFeatures() {
  const cols = state.board ? state.board.columns : [];
  return {
    type: 'FeatureCollection',
    features: cols.flatMap((col) =>
      col.cases
        .filter((c) => c.location && c.location.type === 'Point')
        .map((c) => ({ type: 'Feature', geometry: c.location, properties: { id: c.id, case_no: c.case_no, state: col.label, overdue: c.overdue } })),
    ),
  };
}

/** The id of the board's case markers (source and layer) on the map. */
const CASES = 'desk-cases';

export function updateCaseMarkers() {
  const src = state.map && state.map.getSource(CASES);
  if (src) src.setData(caseFeatures());
}

export async function showMap() {
  if (state.map) {
    state.map.resize();
    return;
  }
  const base = await invoke('map_base');
  const status = $('map-status');
  let style;
  try {
    const r = await fetch(`${base}/styles/default`);
    if (!r.ok) throw new Error(`样式加载失败 (${r.status})：${await r.text()}`);
    style = await r.json();
  } catch (e) {
    status.textContent = String(e);
    return;
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
      status.textContent = `地图错误：${e}`;
    }
  });
  // Identify at the time slider's instant (identify.js).
  attachIdentify(map);
  map.once('idle', () => invoke('map_ready'));
  map.on('idle', () => {
    status.textContent = `已显示 ${map.queryRenderedFeatures().length} 个要素`;
  });
  map.on('error', (e) => {
    status.textContent = `地图错误：${e.error && e.error.message ? e.error.message : e}`;
  });
}


registerView('map', { show: showMap });
