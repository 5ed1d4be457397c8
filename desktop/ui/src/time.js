// The time slider (时间轴) under the desktop map (issue 16): the web map's slider
// (sync-server/http/web/src/time.js, one implementation for both clients) over the readable
// layers' transaction time. Moving it sets the app's instant (`setAsOf` → `asof` on the bus),
// which the map follows by swapping its tile URLs to `as-of=` (no style reload), and which the
// attribute table, identify and statistics read too. The server is read through the app's
// `skmap:` scheme (Rust adds the session's token; the page never holds it).
import { applyAsOf, createTimeSlider, idle } from '../../../sync-server/http/web/src/time.js';
import { invoke, $, state, on, setAsOf } from './core.js';
import { t } from './i18n.js';

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
    t,
    onChange: (at) => setAsOf(at),
    waitDrawn: () => (state.map ? idle(state.map) : null),
    onError: (e) => {
      const s = $('map-status');
      if (s) s.textContent = t('time_range_failed', { e: e.message || e });
    },
  });
  slider.set(state.asOf);
  slider.refresh();
  if (state.asOf) applyAsOf(map, state.asOf);
}

on('map-ready', mount);
on('asof', (at) => {
  if (slider) slider.set(at);
  if (state.map) applyAsOf(state.map, at);
});
// A new language: the bar's words (its instant, range, step and loop stay).
on('lang', () => {
  if (slider) slider.relabel();
});
// Coming back to the map: the data may have changed meanwhile (a wider range).
on('view', (name) => {
  if (name === 'map' && slider) slider.refresh();
});
on('signed-out', () => setAsOf(null));

function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    /** Sets the slider's instant (RFC 3339, or null: now), as moving the slider does. */
    setAsOf: (at) => setAsOf(at || null),
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

