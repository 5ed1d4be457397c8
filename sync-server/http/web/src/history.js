// A feature's history timeline (issue 16), shared by /map and the desktop app: every stored
// version from `GET /collections/{c}/items/{id}/history` — when (transaction time, Beijing),
// who, what (insert/update/delete) and which fields changed from what to what. Identify and the
// compare view's change list both open it. One panel per page, on the right. Worded by the
// label function the caller passes (labels.js; Chinese by default); `relabelHistory()` says the
// open panel again in its current language without reading the server again.
//
// DOM contract: the panel is `[data-testid=history]`, each version `li[data-version=N]` with
// `[data-field=NAME]` rows of its changes.

export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** A JSON value as a person reads it ('—' for null or missing). */
export function shown(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

import { zh } from './labels.js';

/** What the panel shows now (for `relabelHistory`): `{layer, id, t, doc | error}`. */
let last = null;

function panel() {
  let el = document.querySelector('.sk-history');
  if (!el) {
    el = document.createElement('aside');
    el.className = 'sk-history';
    el.dataset.testid = 'history';
    el.hidden = true;
    document.body.appendChild(el);
  }
  return el;
}

export function closeHistory() {
  panel().hidden = true;
}

/** Renders the history of feature `id` of `layer` into the panel, worded by `t`; resolves with
 *  the document. */
export async function showHistory(adapter, layer, id, t = zh) {
  const el = panel();
  el.hidden = false;
  el.dataset.layer = layer;
  el.dataset.id = id;
  const mine = { layer, id, t };
  last = mine;
  draw();
  try {
    mine.doc = await adapter.json(`/collections/${encodeURIComponent(layer)}/items/${encodeURIComponent(id)}/history`);
  } catch (e) {
    mine.error = String(e.message || e);
    if (last === mine) draw();
    throw e;
  }
  if (last === mine) draw();
  return mine.doc;
}

/** Says the open panel again in its label function's current language. */
export function relabelHistory() {
  if (last && !panel().hidden) draw();
}

function draw() {
  const el = panel();
  const { layer, id, t, doc, error } = last;
  const head = (what) =>
    `<header><b>${esc(t('sk_history'))} · ${esc(what)}</b><button type="button" class="sk-close" title="${esc(t('sk_close'))}">×</button></header>`;
  if (!doc) {
    el.innerHTML = `${head(layer)}<p class="sk-loading">${esc(error ? t('sk_history_failed', { e: error }) : t('sk_loading'))}</p>`;
    el.querySelector('.sk-close').addEventListener('click', closeHistory);
    return;
  }
  const op = (o) => (['insert', 'update', 'delete'].includes(o) ? esc(t(`sk_op_${o}`)) : esc(o));
  const versions = (doc.versions || []).slice().reverse(); // newest first
  el.innerHTML = `
    ${head(`${layer} · ${doc.code || id}`)}
    <p class="sk-sub" data-testid="history-entity">${esc(doc.entity_id || id)} · ${esc(versions.length === 1 ? t('sk_versions_1') : t('sk_versions', { n: versions.length }))}</p>
    <ol class="sk-versions" data-testid="history-versions">${versions
      .map(
        (v) => `<li data-version="${v.version}" data-op="${esc(v.op)}">
          <div class="sk-vhead"><b>v${v.version}</b> <span class="sk-op sk-${esc(v.op)}">${op(v.op)}</span>
            <time data-testid="history-time">${esc(v.tx && v.tx.time)}</time></div>
          <div class="sk-who">${esc((v.tx && v.tx.author) || '')}${v.tx && v.tx.device ? ` · ${esc(v.tx.device)}` : ''}${v.tx && v.tx.source ? ` · ${esc(v.tx.source)}` : ''}</div>
          ${(v.changes || [])
            .map((c) => `<div class="sk-fc" data-field="${esc(c.attribute)}"><span>${esc(c.attribute)}</span> <del>${esc(shown(c.old))}</del> → <ins>${esc(shown(c.new))}</ins></div>`)
            .join('')}
        </li>`,
      )
      .join('')}</ol>`;
  el.querySelector('.sk-close').addEventListener('click', closeHistory);
}
