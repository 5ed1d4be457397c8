// The compare view (对比, issue 16): two dates of the server's map side by side (synchronised) or
// as a swipe, and the list of what changed between them per layer, each row opening the
// feature's history timeline — the web map's shared module (sync-server/http/web/src/compare.js)
// reading the server through the app's `skmap:` scheme.
import maplibregl from 'maplibre-gl';
import { createCompare } from '../../../sync-server/http/web/src/compare.js';
import { beijing } from '../../../sync-server/http/web/src/time.js';
import { $, state, on, registerView } from './core.js';
import { t } from './i18n.js';
import { adapter } from './time.js';

let view = null;

function make() {
  view = createCompare($('view-compare'), {
    maplibregl,
    adapter,
    t,
    loadStyle: () => adapter.json('/styles/default'),
    start: () => (state.map ? { center: state.map.getCenter().toArray(), zoom: state.map.getZoom() } : null),
  });
  return view;
}

async function show() {
  const first = !view;
  if (first) make();
  view.resize();
  if (first) {
    // Opens on the slider's instant (or a day ago) against now.
    await view.run({ a: state.asOf || beijing(Date.now() - 86400000), b: null });
  }
}

registerView('compare', { show });
// A new language: the bar, the tags and the list of changes say their words again.
on('lang', () => {
  if (view) view.relabel();
});

function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    /** Compares two instants (RFC 3339; b null: now) in `mode` ('side' or 'swipe'). */
    compare: async ({ a, b = null, mode = 'side' } = {}) => {
      if (!view) make();
      await view.run({ a, b, mode });
    },
    compareRows: () => (view ? view.rows() : []),
    compareMaps: () => (view ? view.maps() : []),
  });
}
setTimeout(hooks, 0);
