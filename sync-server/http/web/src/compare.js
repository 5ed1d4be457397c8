// Comparing two dates (issue 16), shared by /map and the desktop app: two MapLibre maps of the
// same style, one at instant A and one at instant B, moving together — side by side or as a
// swipe (B drawn over A, cut at a draggable line) — and the list of what changed between them
// per layer (`GET /collections/{c}/changes?from=&to=`: added, removed, changed fields), each row
// opening the feature's history timeline and showing it on both maps.
//
// DOM contract: inputs `[data-testid=compare-a]`, `[data-testid=compare-b]` (datetime-local,
// Beijing time; empty B: now), `[data-testid=compare-mode]` (select: side, swipe),
// `[data-testid=compare-run]`; the list `[data-testid=changes]` with rows
// `li.sk-change[data-layer][data-id][data-kind=created|deleted|modified]`, changed fields as
// `[data-field=NAME]` (`data-old`, `data-new`).
//
// Worded by `opts.t` (labels.js, Chinese by default); `relabel()` says the bar, the tags and the
// list again in its current language, keeping the dates, the maps and the rows.

import { esc, shown, showHistory } from './history.js';
import { zh } from './labels.js';
import { applyAsOf, fromLocalInput, toLocalInput, idle, parseInstant, showInstant, withAsOf } from './time.js';

/** Rows per `/changes` page (a "more" button reads the next page). */
const PAGE = 200;

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

/** The collections a style draws (its vector layers' `source-layer`s), in style order. */
export function styleCollections(style) {
  const out = [];
  for (const l of style.layers || []) {
    const s = style.sources && style.sources[l.source];
    if (s && s.type === 'vector' && l['source-layer'] && !out.includes(l['source-layer'])) out.push(l['source-layer']);
  }
  return out;
}

/** Where a GeoJSON geometry is (a point, or its bounding box). */
function extentOf(g) {
  if (!g) return null;
  const xs = [];
  const ys = [];
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      xs.push(c[0]);
      ys.push(c[1]);
    } else c.forEach(walk);
  };
  if (g.type === 'GeometryCollection') (g.geometries || []).forEach((x) => walk(x.coordinates));
  else walk(g.coordinates);
  if (!xs.length) return null;
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/**
 * Builds the compare view into `el`. `opts`: `maplibregl`, `adapter` (`json(path)`),
 * `loadStyle()` (the style document both maps draw), `mapOptions` (extra MapLibre options, e.g.
 * `transformRequest`), `start()` (optional `{center, zoom}` to open at), `t` (optional label
 * function). Maps are made on first `run`. Returns `{ run({a, b, mode}), maps(), rows(),
 * setMode(mode), relabel() }`.
 */
export function createCompare(el, opts) {
  const { maplibregl, adapter } = opts;
  const t = opts.t || zh;
  el.classList.add('sk-compare');
  // `data-sk="KEY"`: the element's text is `t(KEY)`, said again by `relabel`.
  el.innerHTML = `
    <div class="sk-compare-bar">
      <label><span data-sk="sk_at_a"></span> <input type="datetime-local" step="1" data-testid="compare-a"></label>
      <label><span data-sk="sk_at_b"></span> <input type="datetime-local" step="1" data-testid="compare-b"></label>
      <label><span data-sk="sk_mode"></span> <select data-testid="compare-mode"><option value="side" data-sk="sk_side"></option><option value="swipe" data-sk="sk_swipe"></option></select></label>
      <button type="button" data-testid="compare-run" data-sk="sk_compare"></button>
      <span class="sk-compare-status" data-testid="compare-status"></span>
    </div>
    <div class="sk-compare-body">
      <div class="sk-compare-maps sk-side">
        <div class="sk-map-a"><span class="sk-tag" data-testid="compare-tag-a">A</span></div>
        <div class="sk-map-b"><span class="sk-tag" data-testid="compare-tag-b">B</span></div>
        <input type="range" class="sk-swipe" data-testid="compare-swipe" min="0" max="100" value="50">
      </div>
      <div class="sk-changes" data-testid="changes"><p class="sk-sub" data-sk="sk_compare_hint"></p></div>
    </div>`;
  const q = (s) => el.querySelector(s);
  const inA = q('[data-testid=compare-a]');
  const inB = q('[data-testid=compare-b]');
  const mode = q('[data-testid=compare-mode]');
  const status = q('[data-testid=compare-status]');
  const box = q('.sk-compare-maps');
  const swipe = q('.sk-swipe');
  const list = q('.sk-changes');
  let maps = null;
  let making = null;
  let rows = [];
  let run = 0;
  /** What the status line says: `[key, vars]`, or `[null, text]` for a message as it came. */
  let said = [null, ''];
  /** The instants the maps show (`{a, b}`) and the list's range (`{from, to}`), once compared. */
  let instants = null;
  let listed = null;

  function say(key, vars) {
    said = [key, vars];
    status.textContent = key ? t(key, vars) : String(vars ?? '');
  }
  const when = (x) => showInstant(x, t('sk_now'));
  /** A layer section's count line (or its read error). */
  function countLine(section) {
    if (section.dataset.error !== undefined) {
      section.querySelector('.sk-counts').textContent = t('sk_read_failed', { e: section.dataset.error });
      return;
    }
    const counts = { created: 0, deleted: 0, modified: 0 };
    for (const li of section.querySelectorAll('li')) counts[li.dataset.kind] += 1;
    section.querySelector('.sk-counts').textContent = `${t('sk_counts', counts)}${section.dataset.next ? ' …' : ''}`;
  }
  /** Every word of the view in `t`'s current language; dates, maps and rows stay. */
  function relabel() {
    for (const x of el.querySelectorAll('[data-sk]')) x.textContent = t(x.dataset.sk);
    inB.title = t('sk_b_empty');
    swipe.setAttribute('aria-label', t('sk_swipe_pos'));
    if (instants) {
      q('[data-testid=compare-tag-a]').textContent = `A ${when(instants.a)}`;
      q('[data-testid=compare-tag-b]').textContent = `B ${when(instants.b)}`;
    }
    const range = q('[data-testid=changes-range]');
    if (range && listed) range.textContent = `${when(listed.from)} → ${when(listed.to)}`;
    for (const section of list.querySelectorAll('section[data-layer]')) countLine(section);
    say(...said);
  }
  relabel();

  async function makeMaps() {
    const style = await opts.loadStyle();
    const start = (opts.start && opts.start()) || {};
    const make = (container) => {
      const m = new maplibregl.Map({
        container,
        style: JSON.parse(JSON.stringify(style)),
        center: start.center || style.center || [114.3, 30.55],
        zoom: start.zoom ?? style.zoom ?? 11,
        attributionControl: false,
        preserveDrawingBuffer: true,
        ...(opts.mapOptions || {}),
      });
      m.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
      return m;
    };
    const a = make(q('.sk-map-a'));
    const b = make(q('.sk-map-b'));
    syncMoves(a, b);
    await Promise.all([a, b].map((m) => new Promise((r) => (m.loaded() ? r() : m.once('load', r)))));
    maps = { a, b, collections: styleCollections(style) };
    return maps;
  }

  function setMode(m) {
    mode.value = m === 'swipe' ? 'swipe' : 'side';
    box.classList.toggle('sk-side', mode.value === 'side');
    box.classList.toggle('sk-swipe-mode', mode.value === 'swipe');
    cut();
    if (maps) for (const m2 of [maps.a, maps.b]) m2.resize();
  }
  function cut() {
    const b = q('.sk-map-b');
    b.style.clipPath = mode.value === 'swipe' ? `inset(0 0 0 ${swipe.value}%)` : '';
    box.style.setProperty('--sk-swipe', `${swipe.value}%`);
  }
  mode.addEventListener('change', () => setMode(mode.value));
  swipe.addEventListener('input', cut);
  q('[data-testid=compare-run]').addEventListener('click', () => go().catch((e) => say(null, e.message || e)));

  function row(layer, kind, f) {
    const id = f.entity_id || f.id || (f.properties && f.properties.entity_id);
    const code = f.code || (f.properties && f.properties.code) || id;
    const changes = kind === 'modified' ? f.changes || [] : [];
    const r = { layer, kind, id, code, changes, geometry: f.geometry || null };
    rows.push(r);
    return `<li class="sk-change sk-${kind}" data-layer="${esc(layer)}" data-id="${esc(id)}" data-kind="${kind}" tabindex="0">
      <span class="sk-kind" data-sk="sk_kind_${kind}">${esc(t(`sk_kind_${kind}`))}</span> <b>${esc(code)}</b>
      ${changes
        .map(
          (c) => `<div class="sk-fc" data-field="${esc(c.attribute)}" data-old="${esc(shown(c.old))}" data-new="${esc(shown(c.new))}"><span>${esc(c.attribute)}</span> <del>${esc(shown(c.old))}</del> → <ins>${esc(shown(c.new))}</ins></div>`,
        )
        .join('')}</li>`;
  }

  async function open(r) {
    showHistory(adapter, r.layer, r.id, t).catch(() => {});
    let g = r.geometry;
    if (!g) {
      const t = fromLocalInput(inB.value);
      const item = await adapter.json(withAsOf(`/collections/${encodeURIComponent(r.layer)}/items/${encodeURIComponent(r.id)}`, t)).catch(() => null);
      g = item && item.geometry;
    }
    const e = extentOf(g);
    if (e && maps) {
      if (e[0] === e[2] && e[1] === e[3]) maps.a.jumpTo({ center: [e[0], e[1]], zoom: Math.max(maps.a.getZoom(), 16) });
      else maps.a.fitBounds(e, { padding: 60, maxZoom: 17, duration: 0 });
    }
  }

  /** Reads one page of changes of `layer` into its section; a "more" button reads the next. */
  async function page(section, layer, url, mine) {
    const doc = await adapter.json(url);
    if (mine !== run) return;
    const ul = section.querySelector('ul');
    const html = [
      ...(doc.created || []).map((f) => row(layer, 'created', f)),
      ...(doc.deleted || []).map((f) => row(layer, 'deleted', f)),
      ...(doc.modified || []).map((f) => row(layer, 'modified', f)),
    ].join('');
    ul.insertAdjacentHTML('beforeend', html);
    const next = (doc.links || []).find((l) => l.rel === 'next');
    section.dataset.next = next ? '1' : '';
    countLine(section);
    section.dataset.total = String(ul.querySelectorAll('li').length);
    section.hidden = !ul.children.length;
    const more = section.querySelector('.sk-more');
    more.hidden = !next;
    more.onclick = next ? () => page(section, layer, relative(next.href), mine).catch(() => {}) : null;
  }
  const relative = (href) => {
    try {
      const u = new URL(href);
      return `${u.pathname}${u.search}`;
    } catch {
      return href;
    }
  };

  /** Points the maps at A and B and lists what changed between them. */
  async function go() {
    const mine = ++run;
    const a = fromLocalInput(inA.value);
    const b = fromLocalInput(inB.value);
    if (!a) {
      say('sk_pick_a');
      return;
    }
    say('sk_comparing');
    if (!maps) {
      making = making || makeMaps();
      await making;
    }
    applyAsOf(maps.a, a);
    applyAsOf(maps.b, b);
    instants = { a, b };
    q('[data-testid=compare-tag-a]').textContent = `A ${when(a)}`;
    q('[data-testid=compare-tag-b]').textContent = `B ${when(b)}`;
    // The list reads from the earlier instant to the later one.
    let [from, to] = [a, b];
    const later = (x, y) => parseInstant(x || new Date().toISOString()) > parseInstant(y || new Date().toISOString());
    if (later(from, to)) [from, to] = [to, from];
    rows = [];
    listed = { from, to };
    list.innerHTML = `<p class="sk-sub" data-testid="changes-range">${esc(when(from))} → ${esc(when(to))}</p>`;
    const layers = opts.collections ? await opts.collections() : maps.collections;
    await Promise.all(
      layers.map(async (layer) => {
        const section = document.createElement('section');
        section.dataset.layer = layer;
        section.hidden = true;
        section.innerHTML = `<h3>${esc(layer)} <small class="sk-counts"></small></h3><ul></ul><button type="button" class="sk-more" hidden data-sk="sk_more">${esc(t('sk_more'))}</button>`;
        list.appendChild(section);
        let url = `/collections/${encodeURIComponent(layer)}/changes?from=${encodeURIComponent(from)}&limit=${PAGE}`;
        if (to) url += `&to=${encodeURIComponent(to)}`;
        await page(section, layer, url, mine).catch((e) => {
          section.hidden = false;
          section.dataset.error = String(e.message || e);
          countLine(section);
        });
      }),
    );
    if (mine !== run) return;
    const n = rows.length;
    const more = list.querySelector('.sk-more:not([hidden])') ? '+' : '';
    if (n) say('sk_changed_n', { n: `${n}${more}` });
    else say('sk_no_changes');
    if (!n) list.insertAdjacentHTML('beforeend', `<p class="sk-sub" data-testid="changes-none" data-sk="sk_no_changes">${esc(t('sk_no_changes'))}</p>`);
    await Promise.all([idle(maps.a), idle(maps.b)]);
  }
  list.addEventListener('click', (e) => {
    const li = e.target.closest('li.sk-change');
    if (!li) return;
    for (const x of list.querySelectorAll('li.sk-change.sk-active')) x.classList.remove('sk-active');
    li.classList.add('sk-active');
    const r = rows.find((x) => x.layer === li.dataset.layer && x.id === li.dataset.id);
    if (r) open(r).catch(() => {});
  });

  return {
    element: el,
    /** Sets the dates (RFC 3339 or null) and the mode, then compares. */
    async run({ a, b, mode: m } = {}) {
      if (a !== undefined) inA.value = toLocalInput(a);
      if (b !== undefined) inB.value = toLocalInput(b);
      if (m) setMode(m);
      await go();
    },
    setMode,
    relabel,
    maps: () => (maps ? [maps.a, maps.b] : []),
    rows: () => rows.map(({ layer, kind, id, code, changes }) => ({ layer, kind, id, code, changes })),
    resize: () => maps && [maps.a, maps.b].forEach((m) => m.resize()),
  };
}
