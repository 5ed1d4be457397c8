// Conflict review (冲突): the server's open conflicts of every device, filtered by layer, author
// (a user or a device) and opening time, grouped by feature. Per field: the base value, the
// merged value (what the feature holds now) and each side's value with who wrote it, on which
// device and when. Resolve a field (take a side, or type a value), a feature (one party's side
// for every field it wrote, or keep the merged values) or the selected fields in bulk by one rule.
// The grouping and the rules are the app core's; this view renders and sends intents.
import { invoke, $, esc, when, on, registerView } from './core.js';
import { t, addText } from './i18n.js';

addText({
  cf_layer: ['图层', 'Layer'],
  cf_all_layers: ['全部图层', 'All layers'],
  cf_author: ['作者', 'Author'],
  cf_author_ph: ['用户名或设备名', 'User or device'],
  cf_since: ['开始于', 'Opened since'],
  cf_search: ['查询', 'Search'],
  cf_select_all: ['全选', 'Select all'],
  cf_bulk: ['批量处理所选', 'Resolve selected'],
  cf_bulk_n: ['批量处理所选（{n}）', 'Resolve selected ({n})'],
  cf_keep_merged: ['保留合并值', 'Keep merged'],
  cf_latest_wins: ['最新修改优先', 'Latest wins'],
  cf_keep_base: ['恢复基础值', 'Back to base'],
  cf_first: ['第一页', 'First page'],
  cf_next: ['下一页', 'Next page'],
  cf_loading: ['读取中…', 'Loading…'],
  cf_empty: ['没有待处理的冲突', 'No open conflicts'],
  cf_summary: ['{f} 个要素，{n} 处冲突', '{f} features, {n} conflicts'],
  cf_more: ['（还有下一页）', ' (more on the next page)'],
  cf_opened: ['冲突始于 {t}', 'In conflict since {t}'],
  cf_whole: ['整个要素：', 'Whole feature:'],
  cf_take_all: ['全部采用 {who}', 'All from {who}'],
  cf_col_field: ['字段', 'Field'],
  cf_col_base: ['基础值', 'Base'],
  cf_col_merged: ['合并值（当前）', 'Merged (now)'],
  cf_col_sides: ['各方的值', 'Each side'],
  cf_col_own: ['自定义', 'Own value'],
  cf_unknown: ['未知', 'unknown'],
  cf_nobody: ['未知', 'unknown'],
  cf_no_time: ['时间未知', 'time unknown'],
  cf_take: ['采用', 'Take'],
  cf_typed_ph: ['输入新值', 'Type a value'],
  cf_use: ['使用输入值', 'Use typed value'],
  cf_deleted_field: ['删除/编辑', 'Deleted/edited'],
  cf_done: ['已处理 {r} 项，写入 {f} 个要素的新版本。', 'Resolved {r}, wrote a new version of {f} features. '],
});

const view = {
  review: null, // the page shown (ConflictReview)
  layers: [], // [name, title]
  query: {},
  cursor: null, // `after` of the page shown
  selected: new Set(), // keys of the checked fields
};

const RULES = ['keep_merged', 'latest_wins', 'keep_base'];

function frame() {
  const root = $('view-conflicts');
  if (root.dataset.built) return;
  root.dataset.built = '1';
  root.innerHTML = `
    <form class="cf-bar" id="cf-filters" data-testid="conflict-filters">
      <label>${t('cf_layer')} <select id="cf-layer"></select></label>
      <label>${t('cf_author')} <input id="cf-author" placeholder="${esc(t('cf_author_ph'))}" size="14"></label>
      <label>${t('cf_since')} <input id="cf-since" type="datetime-local"></label>
      <button type="submit" id="cf-search">${t('cf_search')}</button>
      <span class="cf-sep"></span>
      <label><input type="checkbox" id="cf-all"> ${t('cf_select_all')}</label>
      <select id="cf-rule" data-testid="bulk-rule">${RULES.map((v) => `<option value="${v}">${t(`cf_${v}`)}</option>`).join('')}</select>
      <button type="button" id="cf-bulk" data-testid="bulk-resolve" disabled>${t('cf_bulk')}</button>
    </form>
    <p class="error" id="cf-error" role="alert" data-testid="conflict-error"></p>
    <p id="cf-status" data-testid="conflict-status"></p>
    <div id="cf-list" data-testid="conflict-list"></div>
    <div class="cf-pager"><button type="button" id="cf-first" hidden>${t('cf_first')}</button><button type="button" id="cf-next" hidden>${t('cf_next')}</button></div>`;
  $('cf-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    view.query = {
      layer: $('cf-layer').value || null,
      author: $('cf-author').value.trim() || null,
      since: $('cf-since').value ? `${$('cf-since').value}:00` : null,
    };
    load(null);
  });
  $('cf-all').addEventListener('change', () => {
    const on = $('cf-all').checked;
    view.selected = new Set(on && view.review ? view.review.features.flatMap((f) => f.fields.map((c) => c.key)) : []);
    for (const b of document.querySelectorAll('#cf-list input.cf-pick')) b.checked = on;
    updateBulk();
  });
  $('cf-bulk').addEventListener('click', () =>
    resolve({ kind: 'bulk', keys: [...view.selected], rule: $('cf-rule').value }),
  );
  $('cf-next').addEventListener('click', () => load(view.review && view.review.next));
  $('cf-first').addEventListener('click', () => load(null));
  $('cf-list').addEventListener('click', onClick);
  $('cf-list').addEventListener('change', (ev) => {
    const box = ev.target.closest('input.cf-pick');
    if (!box) return;
    if (box.checked) view.selected.add(box.dataset.key);
    else view.selected.delete(box.dataset.key);
    updateBulk();
  });
}

function updateBulk() {
  const n = view.selected.size;
  $('cf-bulk').disabled = n === 0;
  $('cf-bulk').textContent = n ? t('cf_bulk_n', { n }) : t('cf_bulk');
}

async function loadLayers() {
  if (!view.layers.length) {
    try {
      view.layers = await invoke('conflict_layers');
    } catch (e) {
      // the list itself reports a broken connection
    }
  }
  const chosen = view.query.layer || '';
  $('cf-layer').innerHTML =
    `<option value="">${esc(t('cf_all_layers'))}</option>` +
    view.layers.map(([n]) => `<option value="${esc(n)}">${esc(layerTitle(n))}</option>`).join('');
  $('cf-layer').value = chosen;
}

/** Loads the page after `cursor` (null: the first) with the current filters. */
async function load(cursor) {
  $('cf-error').textContent = '';
  $('cf-status').textContent = t('cf_loading');
  try {
    view.review = await invoke('conflict_list', { query: { ...view.query, after: cursor || null } });
    view.cursor = cursor || null;
  } catch (e) {
    $('cf-status').textContent = '';
    $('cf-error').textContent = String(e);
    return;
  }
  const keys = new Set(view.review.features.flatMap((f) => f.fields.map((c) => c.key)));
  view.selected = new Set([...view.selected].filter((k) => keys.has(k)));
  render();
}

function layerTitle(name) {
  const l = view.layers.find(([n]) => n === name);
  return l && l[1] && l[1] !== name ? `${l[1]} (${name})` : name;
}

/** An edit's device time to the second ('2026-12-07 10:00:05', as written: Beijing time), so
 * "latest wins" can be read off the screen. */
function whenExact(time) {
  return time ? time.slice(0, 19).replace('T', ' ') : t('cf_no_time');
}

function author(a) {
  const who = [a.user, a.device].filter(Boolean).map(esc).join(' · ') || esc(t('cf_nobody'));
  return `<span class="cf-who">${who}</span> <span class="cf-when">${esc(whenExact(a.time))}</span>`;
}

function partyLabel(p) {
  return [p.user, p.device].filter(Boolean).join(' · ') || t('cf_nobody');
}

function fieldRow(f, c) {
  const sides = c.sides
    .map(
      (s) => `<div class="cf-side${s.merged ? ' merged' : ''}" data-testid="conflict-side" data-value="${esc(s.text)}" data-merged="${s.merged}">
        <span class="cf-value" data-testid="side-value">${esc(s.text)}</span>
        <span class="cf-authors">${s.authors.map(author).join('<br>')}</span>
        <button type="button" class="cf-take" data-key="${esc(c.key)}" data-choice="${esc(s.choice)}">${t('cf_take')}</button>
      </div>`,
    )
    .join('');
  return `<tr data-key="${esc(c.key)}" data-field="${esc(c.field)}" data-testid="conflict-field">
    <td><input type="checkbox" class="cf-pick" data-key="${esc(c.key)}"${view.selected.has(c.key) ? ' checked' : ''}></td>
    <th scope="row">${esc(c.field === 'deleted' ? t('cf_deleted_field') : c.field)}</th>
    <td class="cf-base" data-testid="base-value">${c.base_text == null ? `<span class="cf-unknown">${t('cf_unknown')}</span>` : esc(c.base_text)}</td>
    <td class="cf-merged" data-testid="merged-value">${esc(c.merged_text)}</td>
    <td class="cf-sides">${sides}</td>
    <td class="cf-own"><input class="cf-typed" data-key="${esc(c.key)}" placeholder="${c.field === 'geometry' ? 'GeoJSON' : esc(t('cf_typed_ph'))}" data-testid="typed-value"><button type="button" class="cf-use" data-key="${esc(c.key)}">${t('cf_use')}</button></td>
  </tr>`;
}

function render() {
  const r = view.review;
  const list = $('cf-list');
  $('cf-all').checked = false;
  updateBulk();
  $('cf-next').hidden = !r.next;
  $('cf-first').hidden = !view.cursor;
  if (!r.features.length) {
    $('cf-status').textContent = '';
    list.innerHTML = `<p class="empty" data-testid="conflicts-empty">${t('cf_empty')}</p>`;
    return;
  }
  $('cf-status').textContent = t('cf_summary', { f: r.features.length, n: r.conflicts }) + (r.next ? t('cf_more') : '');
  list.innerHTML = r.features
    .map(
      (f) => `<section class="cf-feature" data-entity="${esc(f.entity)}" data-layer="${esc(f.layer)}" data-code="${esc(f.code)}" data-testid="conflict-feature">
        <h3><span class="cf-code">${esc(f.code)}</span> <span class="cf-layer">${esc(layerTitle(f.layer))}</span>
          <span class="cf-opened">${esc(t('cf_opened', { t: when(f.opened) }))}</span></h3>
        <div class="cf-feature-actions">${t('cf_whole')}
          <button type="button" class="cf-feature-take" data-party="">${t('cf_keep_merged')}</button>
          ${f.parties.map((p) => `<button type="button" class="cf-feature-take" data-party="${esc(p.key)}">${esc(t('cf_take_all', { who: partyLabel(p) }))}</button>`).join('')}
        </div>
        <table class="cf-table">
          <thead><tr><th></th><th>${t('cf_col_field')}</th><th>${t('cf_col_base')}</th><th>${t('cf_col_merged')}</th><th>${t('cf_col_sides')}</th><th>${t('cf_col_own')}</th></tr></thead>
          <tbody>${f.fields.map((c) => fieldRow(f, c)).join('')}</tbody>
        </table>
      </section>`,
    )
    .join('');
}

function onClick(ev) {
  const b = ev.target.closest('button');
  if (!b) return;
  if (b.classList.contains('cf-take')) {
    resolve({ kind: 'field', key: b.dataset.key, choice: b.dataset.choice });
  } else if (b.classList.contains('cf-use')) {
    const input = [...document.querySelectorAll('#cf-list input.cf-typed')].find((i) => i.dataset.key === b.dataset.key);
    resolve({ kind: 'field', key: b.dataset.key, text: input ? input.value : '' });
  } else if (b.classList.contains('cf-feature-take')) {
    const s = b.closest('section.cf-feature');
    resolve({ kind: 'feature', layer: s.dataset.layer, entity: s.dataset.entity, party: b.dataset.party || null });
  }
}

/** Sends a decision (each field with the revision it was listed at); then the list is read
 * again: on success the resolved conflicts are gone; on a refusal — 409 when a conflict changed
 * since it was shown (a new side, or settled elsewhere) — the user decides on what it is now. */
async function resolve(intent) {
  if (!view.review) return;
  $('cf-error').textContent = '';
  const buttons = document.querySelectorAll('#view-conflicts button');
  for (const b of buttons) b.disabled = true;
  let done = null;
  let refused = null;
  try {
    done = await invoke('conflict_resolve', { features: view.review.features, intent });
  } catch (e) {
    refused = String(e);
  } finally {
    for (const b of buttons) b.disabled = false;
    updateBulk();
  }
  if (!done) {
    await load(view.cursor);
    $('cf-error').textContent = refused;
    return;
  }
  view.selected.clear();
  await load(view.cursor);
  $('cf-status').textContent = t('cf_done', { r: done.resolutions, f: done.features }) + $('cf-status').textContent;
  $('cf-status').dataset.resolved = String(done.features);
}

registerView('conflicts', {
  async show() {
    frame();
    await loadLayers();
    await load(view.cursor);
  },
});

// Another language: the frame again (its filter values kept), and the page shown.
on('lang', () => {
  const root = $('view-conflicts');
  if (!root || !root.dataset.built) return;
  const kept = { author: $('cf-author').value, since: $('cf-since').value, rule: $('cf-rule').value };
  root.innerHTML = '';
  delete root.dataset.built;
  frame();
  $('cf-author').value = kept.author;
  $('cf-since').value = kept.since;
  $('cf-rule').value = kept.rule;
  loadLayers();
  if (view.review) render();
});

on('signed-out', () => {
  view.review = null;
  view.layers = [];
  view.cursor = null;
  view.selected.clear();
  const root = $('view-conflicts');
  if (root) {
    root.innerHTML = '';
    delete root.dataset.built;
  }
});

// What the end-to-end test reads (the shell defines the hook object after the modules load).
function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, { conflictReview: () => view.review });
}
on('signed-in', hooks);
setTimeout(hooks, 0);
