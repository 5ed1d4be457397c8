// Identify that follows the time slider (issue 16), shared by /map and the desktop app: a click
// on a feature reads that feature from the server as it was at the slider's instant
// (`GET /collections/{c}/items/{id}?as-of=`), not just the properties baked into the rendered
// tile, and shows its attributes with a link to its history timeline.
//
// Worded by `t` (labels.js, Chinese by default); `relabel()` says the open popup again.
//
// DOM contract: the popup's content is `[data-testid=identify]` (`data-layer`, `data-id`,
// `data-as-of`, `data-version`), one `tr[data-field=NAME]` per attribute.

import { esc, shown, showHistory } from './history.js';
import { zh } from './labels.js';
import { showInstant, withAsOf } from './time.js';

const META = ['version', 'tx_time', 'valid_from', 'valid_to'];
/** Fields worded by the label function (`sk_f_NAME`); the layer's own fields show their names. */
const WORDED = [...META, 'code'];

/** The feature of the server's layers at a point of `map` (rendered vector features carry the
 *  entity id as `id` and their layer as the tile layer), else the first rendered feature. Layers
 *  with their own popup (metadata `shikong:popup` = `own`, e.g. the sensing stations) are left
 *  to it. */
function pick(map, point) {
  const fs = map
    .queryRenderedFeatures(point)
    .filter((f) => !(f.layer && f.layer.metadata && f.layer.metadata['shikong:popup'] === 'own'));
  return fs.find((f) => f.sourceLayer && f.properties && f.properties.id) || fs[0] || null;
}

function table(rows, t) {
  return `<table>${rows.map(([k, v]) => `<tr data-field="${esc(k)}"><th>${esc(WORDED.includes(k) ? t(`sk_f_${k}`) : k)}</th><td>${esc(shown(v))}</td></tr>`).join('')}</table>`;
}

/**
 * Makes clicks on `map` identify. `opts`: `maplibregl`, `adapter` (`json(path)`), `asOf()` (the
 * instant to read at; null: now), `t` (optional label function). Returns `{ at(point), relabel() }`:
 * `at` is the click's work (the popup and the feature read, `{layer, id, asOf, feature}` or
 * null), for keyboards and tests; `relabel` words the open popup again.
 */
export function createIdentify(map, { maplibregl, adapter, asOf, t = zh }) {
  let popup = null;
  let seq = 0;
  /** The popup's content and what it shows: `{box, props}` (not a server feature) or
   *  `{box, layer, id, at, item, missing, reading}`. */
  let shownNow = null;

  function draw() {
    const v = shownNow;
    if (!v || !v.box.isConnected) return;
    const { box } = v;
    if (v.props) {
      box.innerHTML = table(Object.entries(v.props), t);
      return;
    }
    const when = esc(showInstant(v.at, t('sk_now')));
    if (v.reading) {
      box.innerHTML = `<p class="sk-sub">${esc(v.layer)} · ${when} · ${esc(t('sk_reading'))}</p>`;
      return;
    }
    if (!v.item) {
      box.innerHTML = `<p class="sk-sub">${esc(v.layer)} · ${when}</p><p class="sk-miss" data-testid="identify-missing">${esc(t('sk_missing', { e: v.missing }))}</p>`;
      return;
    }
    const p = v.item.properties || {};
    const fields = Object.entries(p).filter(([k]) => k !== 'entity_id' && !META.includes(k));
    box.innerHTML = `
      <p class="sk-sub"><b>${esc(v.layer)}</b> · ${esc(p.code || v.id)}<br>${esc(t('sk_as_of'))}<span data-testid="identify-as-of">${when}</span></p>
      ${table(fields, t)}
      ${table(META.map((k) => [k, p[k]]), t)}
      <button type="button" class="sk-link" data-testid="identify-history">${esc(t('sk_history_link'))}</button>`;
    box.querySelector('[data-testid=identify-history]').addEventListener('click', () => showHistory(adapter, v.layer, v.item.id || v.id, t).catch(() => {}));
  }

  async function at(point, lngLat) {
    const f = pick(map, point);
    if (popup) popup.remove();
    if (!f) return null;
    const where = lngLat || map.unproject(point);
    const box = document.createElement('div');
    box.className = 'sk-identify';
    box.dataset.testid = 'identify';
    popup = new maplibregl.Popup({ maxWidth: '360px' }).setLngLat(where).setDOMContent(box).addTo(map);
    if (!f.sourceLayer || !f.properties || !f.properties.id) {
      // Not one of the server's features (an app's own marker): what it carries.
      shownNow = { box, props: f.properties || {} };
      draw();
      return { layer: f.layer && f.layer.id, id: null, asOf: null, feature: f };
    }
    const layer = f.sourceLayer;
    const id = String(f.properties.id);
    const at = asOf();
    const mine = ++seq;
    box.dataset.layer = layer;
    box.dataset.id = id;
    box.dataset.asOf = at || '';
    const v = { box, layer, id, at, item: null, missing: '', reading: true };
    shownNow = v;
    draw();
    try {
      v.item = await adapter.json(withAsOf(`/collections/${encodeURIComponent(layer)}/items/${encodeURIComponent(id)}`, at));
    } catch (e) {
      v.missing = String((e && e.message) || e);
    }
    if (mine !== seq) return null; // another click came first
    v.reading = false;
    if (v.item) box.dataset.version = (v.item.properties || {}).version;
    draw();
    return { layer, id, asOf: at, feature: v.item };
  }
  map.on('click', (e) => {
    at(e.point, e.lngLat).catch(() => {});
  });
  return { at, relabel: draw };
}
