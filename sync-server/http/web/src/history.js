// A feature's history timeline (issue 16), shared by /map and the desktop app: every stored
// version from `GET /collections/{c}/items/{id}/history` — when (transaction time, Beijing),
// who, what (insert/update/delete) and which fields changed from what to what. Identify and the
// compare view's change list both open it. One panel per page, on the right.
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

const OPS = { insert: '新增', update: '修改', delete: '删除' };

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

/** Renders the history of feature `id` of `layer` into the panel; resolves with the document. */
export async function showHistory(adapter, layer, id) {
  const el = panel();
  el.hidden = false;
  el.dataset.layer = layer;
  el.dataset.id = id;
  el.innerHTML = `<header><b>历史 · ${esc(layer)}</b><button type="button" class="sk-close" title="关闭">×</button></header><p class="sk-loading">加载中…</p>`;
  el.querySelector('.sk-close').addEventListener('click', closeHistory);
  let doc;
  try {
    doc = await adapter.json(`/collections/${encodeURIComponent(layer)}/items/${encodeURIComponent(id)}/history`);
  } catch (e) {
    el.querySelector('.sk-loading').textContent = `历史加载失败：${e.message || e}`;
    throw e;
  }
  const versions = (doc.versions || []).slice().reverse(); // newest first
  el.innerHTML = `
    <header><b>历史 · ${esc(layer)} · ${esc(doc.code || id)}</b><button type="button" class="sk-close" title="关闭">×</button></header>
    <p class="sk-sub" data-testid="history-entity">${esc(doc.entity_id || id)} · 共 ${versions.length} 个版本</p>
    <ol class="sk-versions" data-testid="history-versions">${versions
      .map(
        (v) => `<li data-version="${v.version}" data-op="${esc(v.op)}">
          <div class="sk-vhead"><b>v${v.version}</b> <span class="sk-op sk-${esc(v.op)}">${OPS[v.op] || esc(v.op)}</span>
            <time data-testid="history-time">${esc(v.tx && v.tx.time)}</time></div>
          <div class="sk-who">${esc((v.tx && v.tx.author) || '')}${v.tx && v.tx.device ? ` · ${esc(v.tx.device)}` : ''}${v.tx && v.tx.source ? ` · ${esc(v.tx.source)}` : ''}</div>
          ${(v.changes || [])
            .map((c) => `<div class="sk-fc" data-field="${esc(c.attribute)}"><span>${esc(c.attribute)}</span> <del>${esc(shown(c.old))}</del> → <ins>${esc(shown(c.new))}</ins></div>`)
            .join('')}
        </li>`,
      )
      .join('')}</ol>`;
  el.querySelector('.sk-close').addEventListener('click', closeHistory);
  return doc;
}
