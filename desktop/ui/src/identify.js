// Identify on the desktop map (issue 16): a click reads the feature as it was at the time
// slider's instant (`state.asOf`) through the shared module (sync-server/http/web/src/identify.js)
// and shows its attributes, with a link to its history timeline.
import maplibregl from 'maplibre-gl';
import { createIdentify } from '../../../sync-server/http/web/src/identify.js';
import { showHistory, relabelHistory } from '../../../sync-server/http/web/src/history.js';
import { state, on } from './core.js';
import { t } from './i18n.js';
import { adapter } from './time.js';

let current = null;

/** Makes clicks on `map` identify at the slider's instant. */
export function attachIdentify(map) {
  current = createIdentify(map, { maplibregl, adapter, asOf: () => state.asOf, t });
  return current;
}

// A new language: the open popup and history panel say their words again (no new read).
on('lang', () => {
  if (current) current.relabel();
  relabelHistory();
});

function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    /** Identifies at `[lon, lat]` as a click there does; resolves with `{layer, id, asOf, feature}`. */
    identifyAt: (lngLat) => {
      if (!current || !state.map) return Promise.resolve(null);
      return current.at(state.map.project(lngLat), maplibregl.LngLat.convert(lngLat));
    },
    /** Opens the history timeline of a feature. */
    history: (layer, id) => showHistory(adapter, layer, id, t),
  });
}
setTimeout(hooks, 0);
