// Identify that follows the time slider (issue 16), shared by /map and the desktop app: a click
// on a feature reads that feature from the server as it was at the slider's instant
// (`GET /collections/{c}/items/{id}?as-of=`), not just the properties baked into the rendered
// tile, and shows its attributes with a link to its history timeline.
//
// DOM contract: the popup's content is `[data-testid=identify]` (`data-layer`, `data-id`,
// `data-as-of`, `data-version`), one `tr[data-field=NAME]` per attribute.

import { esc, shown, showHistory } from './history.js';
import { showInstant, withAsOf } from './time.js';

const META = ['version', 'tx_time', 'valid_from', 'valid_to'];
const LABELS = { version: '版本', tx_time: '事务时间', valid_from: '有效起', valid_to: '有效止', code: '编码' };

/** The feature of the server's layers at a point of `map` (rendered vector features carry the
 *  entity id as `id` and their layer as the tile layer), else the first rendered feature. */
function pick(map, point) {
  const fs = map.queryRenderedFeatures(point);
  return fs.find((f) => f.sourceLayer && f.properties && f.properties.id) || fs[0] || null;
}

function table(rows) {
  return `<table>${rows.map(([k, v]) => `<tr data-field="${esc(k)}"><th>${esc(LABELS[k] || k)}</th><td>${esc(shown(v))}</td></tr>`).join('')}</table>`;
}

/**
 * Makes clicks on `map` identify. `opts`: `maplibregl`, `adapter` (`json(path)`), `asOf()` (the
 * instant to read at; null: now). Returns `{ at(point) }`, the click's work (the popup and the
 * feature read, `{layer, id, asOf, feature}` or null), for keyboards and tests.
 */
export function createIdentify(map, { maplibregl, adapter, asOf }) {
  let popup = null;
  let seq = 0;
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
      box.innerHTML = table(Object.entries(f.properties || {}));
      return { layer: f.layer && f.layer.id, id: null, asOf: null, feature: f };
    }
    const layer = f.sourceLayer;
    const id = String(f.properties.id);
    const t = asOf();
    const mine = ++seq;
    box.dataset.layer = layer;
    box.dataset.id = id;
    box.dataset.asOf = t || '';
    box.innerHTML = `<p class="sk-sub">${esc(layer)} · ${esc(showInstant(t))} · 读取中…</p>`;
    let item = null;
    let missing = null;
    try {
      item = await adapter.json(withAsOf(`/collections/${encodeURIComponent(layer)}/items/${encodeURIComponent(id)}`, t));
    } catch (e) {
      missing = e;
    }
    if (mine !== seq) return null; // another click came first
    if (!item) {
      box.innerHTML = `<p class="sk-sub">${esc(layer)} · ${esc(showInstant(t))}</p><p class="sk-miss" data-testid="identify-missing">该时刻无此要素（${esc(missing && missing.message)}）</p>`;
      return { layer, id, asOf: t, feature: null };
    }
    const p = item.properties || {};
    box.dataset.version = p.version;
    const fields = Object.entries(p).filter(([k]) => k !== 'entity_id' && !META.includes(k));
    box.innerHTML = `
      <p class="sk-sub"><b>${esc(layer)}</b> · ${esc(p.code || id)}<br>状态时刻：<span data-testid="identify-as-of">${esc(showInstant(t))}</span></p>
      ${table(fields)}
      ${table(META.map((k) => [k, p[k]]))}
      <button type="button" class="sk-link" data-testid="identify-history">历史时间线 ›</button>`;
    box.querySelector('[data-testid=identify-history]').addEventListener('click', () => showHistory(adapter, layer, item.id || id).catch(() => {}));
    return { layer, id, asOf: t, feature: item };
  }
  map.on('click', (e) => {
    at(e.point, e.lngLat).catch(() => {});
  });
  return { at };
}
