// The shikong web map (served at /map): the layers of a style, a date switch (as-of any instant,
// imagery by acquisition date) and a side-by-side comparison of two dates. The desktop and mobile
// apps load the same page. Everything is bundled into dist/ by esbuild: no CDN.
import maplibregl from 'maplibre-gl';

const params = new URLSearchParams(window.location.search);
const styleId = params.get('style') || 'default';

/** '2023-05-01' or '2023-05-01T08:00' from the date inputs → an RFC 3339 instant in Beijing time. */
function instant(value) {
  if (!value) return null;
  return value.length <= 10 ? `${value}T23:59:59+08:00` : `${value}:00+08:00`;
}

function withAsOf(url, asOf) {
  const u = new URL(url, window.location.href);
  if (asOf) u.searchParams.set('as-of', asOf);
  else u.searchParams.delete('as-of');
  return u.toString();
}

async function loadStyle(asOf) {
  const url = withAsOf(`/styles/${encodeURIComponent(styleId)}`, asOf);
  const r = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!r.ok) throw new Error(`样式加载失败 (${r.status}): ${await r.text()}`);
  return r.json();
}

/** Points every tile source of the map at the layers as they were at `asOf` (null: now). */
function setDate(map, asOf) {
  const style = map.getStyle();
  for (const [id, src] of Object.entries(style.sources)) {
    const source = map.getSource(id);
    if (src.url && source && typeof source.setUrl === 'function') {
      source.setUrl(withAsOf(src.url, asOf));
    } else if (src.tiles && source && typeof source.setTiles === 'function') {
      source.setTiles(src.tiles.map((t) => withAsOf(t, asOf).replace(/%7B/g, '{').replace(/%7D/g, '}')));
    }
  }
  map.shikongAsOf = asOf;
}

function makeMap(container, style) {
  const center = (params.get('center') || '').split(',').map(Number);
  const zoom = Number(params.get('zoom'));
  const map = new maplibregl.Map({
    container,
    style,
    center: center.length === 2 && center.every(Number.isFinite) ? center : style.center || [114.3, 30.55],
    zoom: Number.isFinite(zoom) && params.get('zoom') ? zoom : style.zoom ?? 11,
    attributionControl: false,
    preserveDrawingBuffer: true, // screenshots of the canvas (tests, reports)
  });
  map.addControl(new maplibregl.NavigationControl(), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.on('click', (e) => {
    const f = map.queryRenderedFeatures(e.point)[0];
    if (!f) return;
    const rows = Object.entries(f.properties)
      .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
      .join('');
    new maplibregl.Popup().setLngLat(e.lngLat).setHTML(`<table>${rows}</table>`).addTo(map);
  });
  return map;
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function idle(map) {
  return new Promise((resolve) => {
    if (map.loaded() && map.areTilesLoaded()) resolve();
    else map.once('idle', () => resolve());
  });
}

function syncMoves(a, b) {
  let busy = false;
  const follow = (from, to) => () => {
    if (busy) return;
    busy = true;
    to.jumpTo({ center: from.getCenter(), zoom: from.getZoom(), bearing: from.getBearing(), pitch: from.getPitch() });
    busy = false;
  };
  a.on('move', follow(a, b));
  b.on('move', follow(b, a));
}

async function main() {
  const dateA = document.getElementById('date-a');
  const dateB = document.getElementById('date-b');
  const compare = document.getElementById('compare');
  const status = document.getElementById('status');
  dateA.value = params.get('a') || '';
  dateB.value = params.get('b') || '';
  compare.checked = params.has('b');
  const style = await loadStyle(instant(dateA.value));
  const mapA = makeMap('map-a', style);
  const maps = [mapA];
  let mapB = null;

  const layout = async () => {
    document.body.classList.toggle('comparing', compare.checked);
    if (compare.checked && !mapB) {
      mapB = makeMap('map-b', await loadStyle(instant(dateB.value)));
      mapB.jumpTo({ center: mapA.getCenter(), zoom: mapA.getZoom() });
      syncMoves(mapA, mapB);
      maps[1] = mapB;
    }
    for (const m of maps) m.resize();
  };
  dateA.addEventListener('change', () => setDate(mapA, instant(dateA.value)));
  dateB.addEventListener('change', () => mapB && setDate(mapB, instant(dateB.value)));
  compare.addEventListener('change', layout);
  document.getElementById('now').addEventListener('click', () => {
    dateA.value = '';
    setDate(mapA, null);
  });
  await layout();
  mapA.on('idle', () => {
    status.textContent = `已显示 ${mapA.queryRenderedFeatures().length} 个要素`;
  });

  // What the apps and the browser test drive.
  window.shikong = {
    maplibregl,
    maps,
    setDate: (which, value) => {
      const input = which === 1 ? dateB : dateA;
      input.value = value || '';
      const m = maps[which];
      if (m) setDate(m, instant(input.value));
      return m ? idle(m) : Promise.resolve();
    },
    compare: async (on) => {
      compare.checked = on;
      await layout();
      await Promise.all(maps.map(idle));
    },
    idle: (which = 0) => idle(maps[which]),
    rendered: (which = 0, layers) => {
      const m = maps[which];
      const fs = layers ? m.queryRenderedFeatures({ layers }) : m.queryRenderedFeatures();
      return fs.map((f) => ({ layer: f.layer.id, source: f.source, properties: f.properties }));
    },
  };
  window.dispatchEvent(new Event('shikong-ready'));
}

main().catch((e) => {
  document.getElementById('status').textContent = String(e);
  window.shikongError = String(e);
});
