// The time slider (时间轴) under the desktop map (issue 16): the web map's slider
// (sync-server/http/web/src/time.js, one implementation for both clients) over the readable
// layers' transaction time. Moving it sets the app's instant (`setAsOf` → `asof` on the bus),
// which the map follows by swapping its tile URLs to `as-of=` (no style reload), and which the
// attribute table, identify and statistics read too. The server is read through the app's
// `skmap:` scheme (Rust adds the session's token; the page never holds it).
import { applyAsOf, createTimeSlider, idle } from '../../../sync-server/http/web/src/time.js';
import { invoke, $, state, on, setAsOf } from './core.js';

let base = null;

/** What the shared modules read the server through: `skmap://localhost/PATH`. */
export const adapter = {
  async base() {
    if (!base) base = await invoke('map_base');
    return base;
  },
  async json(path) {
    const r = await fetch(`${await adapter.base()}${path}`, { headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`${r.status} ${(await r.text()).slice(0, 300)}`);
    return r.json();
  },
};

let slider = null;

function mount(map) {
  if (slider) return;
  slider = createTimeSlider($('timebar'), adapter, {
    onChange: (t) => setAsOf(t),
    waitDrawn: () => (state.map ? idle(state.map) : null),
    onError: (e) => {
      const s = $('map-status');
      if (s) s.textContent = `时间范围读取失败：${e.message || e}`;
    },
  });
  slider.set(state.asOf);
  slider.refresh();
  if (state.asOf) applyAsOf(map, state.asOf);
}

on('map-ready', mount);
on('asof', (t) => {
  if (slider) slider.set(t);
  if (state.map) applyAsOf(state.map, t);
});
// Coming back to the map: the data may have changed meanwhile (a wider range).
on('view', (name) => {
  if (name === 'map' && slider) slider.refresh();
});
on('signed-out', () => setAsOf(null));

function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    /** Sets the slider's instant (RFC 3339, or null: now), as moving the slider does. */
    setAsOf: (t) => setAsOf(t || null),
    asOf: () => state.asOf,
    /** Resolves when the map has drawn the tiles of the current instant. */
    mapIdle: () => (state.map ? idle(state.map) : Promise.resolve()),
    /** The rendered features of the server's layers: `{layer, id, code, properties}`. */
    renderedFeatures: (layers) =>
      (state.map ? state.map.queryRenderedFeatures(layers ? { layers } : undefined) : [])
        .filter((f) => f.sourceLayer)
        .map((f) => ({ layer: f.sourceLayer, style: f.layer.id, id: f.properties.id, code: f.properties.code, properties: f.properties })),
    /** The tile URLs of a source (to check the as-of they carry). */
    tileUrls: (source) => {
      const s = state.map && state.map.getSource(source);
      return s && s.tiles ? s.tiles.slice() : [];
    },
    timeSlider: () => slider,
  });
}
on('signed-in', hooks);
setTimeout(hooks, 0);

