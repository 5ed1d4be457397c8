// The time slider over transaction time (issue 16), shared by the browser map (/map) and the
// desktop app (desktop/ui/src/time.js): the instant every view reads its features at (`as-of`).
//
// Both clients hand it a small adapter — `json(path)` reads a JSON answer of the server (the
// browser with its bearer token, the desktop through its `skmap:` scheme, so the token never
// reaches the page) — and get back a bar with step back/forward, play/loop over a range (from–to)
// and a step size. Moving it calls `onChange(iso|null)` (null: now); the host points its maps at
// that instant with `applyAsOf`, which swaps the tile URLs of the map's sources in place (no style
// reload, no TileJSON round trip), so scrubbing only re-requests tiles. Rapid input is coalesced
// to one change per animation frame.
//
// Its words come from `opts.t` (labels.js: Chinese by default; the desktop passes its own and
// calls `relabel()` when the language changes, which keeps the instant, range, step and loop).
//
// DOM contract (tests and other views rely on it): the slider is
// `input[type=range][data-testid=time-slider]`, the shown instant `[data-testid=time-value]`
// (RFC 3339 in Beijing time, or the label's 现在 / Now).

import { zh } from './labels.js';

const BEIJING = 8 * 3600 * 1000;
const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Milliseconds since the epoch → 'YYYY-MM-DDTHH:MM:SS+08:00' (Beijing time, whole seconds). */
export function beijing(ms) {
  const d = new Date(Math.floor(ms / 1000) * 1000 + BEIJING);
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}+08:00`
  );
}

/** An RFC 3339 instant → milliseconds since the epoch (NaN if it is not one). */
export function parseInstant(iso) {
  return iso ? Date.parse(iso) : NaN;
}

/** How an instant is shown: as given when already in Beijing time, else converted; null: `now`
 *  (现在 unless the caller words it). */
export function showInstant(iso, now = zh('sk_now')) {
  if (!iso) return now;
  if (/\+08:00$/.test(iso)) return iso;
  const ms = parseInstant(iso);
  return Number.isFinite(ms) ? beijing(ms) : iso;
}

/** A `datetime-local` input's value (read as Beijing time) → RFC 3339, or null when empty. */
export function fromLocalInput(v) {
  if (!v) return null;
  if (v.length <= 10) return `${v}T23:59:59+08:00`;
  return `${v.length === 16 ? `${v}:00` : v.slice(0, 19)}+08:00`;
}

/** RFC 3339 → a `datetime-local` value in Beijing time ('' for null). */
export function toLocalInput(iso) {
  const ms = parseInstant(iso);
  return Number.isFinite(ms) ? beijing(ms).slice(0, 19) : '';
}

/** `url` with its `as-of` query parameter set to `asOf` (removed for null). Keeps `{z}` etc. */
export function withAsOf(url, asOf) {
  const [head, hash = ''] = url.split('#');
  const [path, query = ''] = head.split('?');
  const kept = query.split('&').filter((p) => p && !p.startsWith('as-of='));
  if (asOf) kept.push(`as-of=${encodeURIComponent(asOf)}`);
  return `${path}${kept.length ? `?${kept.join('&')}` : ''}${hash ? `#${hash}` : ''}`;
}

/** The `as-of` a URL carries (null: none). */
export function asOfIn(url) {
  const m = /[?&]as-of=([^&#]*)/.exec(url || '');
  return m ? decodeURIComponent(m[1]) : null;
}

/** Points one loaded tile source (`id` of `map`) at `at`: new tile URLs, no TileJSON request. */
function swapSource(map, id, source, at) {
  const asOf = at || null;
  if (!source || typeof source.setSourceProperty !== 'function') return false;
  if (!source.skBaseTiles) {
    if (!Array.isArray(source.tiles) || !source.tiles.length) return false; // TileJSON not read yet
    source.skBaseTiles = source.tiles.map((t) => withAsOf(t, null));
    source.skBaseUrl = source.url ? withAsOf(source.url, null) : null;
    if (asOfIn(source.tiles[0]) === asOf) {
      // Loaded at this instant already (a style read with `as-of`): nothing to reload.
      source.skAsOf = asOf;
      source.skTiles = source._options && source._options.tiles;
      return true;
    }
  }
  const tiles = source.skBaseTiles.map((t) => withAsOf(t, asOf));
  if (source.skAsOf === asOf && source._options && source._options.tiles === source.skTiles) return true;
  // MapLibre re-reads a tile that is loading when its URL changes from the data it is loading
  // (the old instant's), and a late answer for an old URL can land after a newer one; so once
  // the map is idle after a swap, every tile of the source is read once more from the current
  // URL (the server has them cached by then; the picture only changes if it was stale).
  source.setSourceProperty(() => {
    // The tiles are given, so MapLibre reads no TileJSON; zoom range and bounds stay as loaded.
    const { url: _url, ...rest } = source._options;
    source._options = { ...rest, tiles, minzoom: source.minzoom, maxzoom: source.maxzoom };
    source.skTiles = source._options.tiles;
    if (source.skBaseUrl) source.url = withAsOf(source.skBaseUrl, asOf); // what it stands for
  });
  source.skAsOf = asOf;
  if (!source.skRecheck) {
    source.skRecheck = true;
    map.once('idle', () => {
      source.skRecheck = false;
      if (map.getSource(id) === source) source.setSourceProperty(() => {}); // every tile again, from the current URL
    });
  }
  return true;
}

/** Each collection's newest write (ms), from the server's `shikong:transactions` (`transactionRange`). */
const lastWrite = new Map();

/**
 * The instant a source must be read at for the map to show `asOf`: null (now, the server's
 * cached tiles) when every collection it draws was last written before `asOf` — so scrubbing
 * re-reads only the layers that changed after the instant, not every layer of the style.
 */
function sourceAsOf(map, id, source, asOf) {
  if (!asOf || source.type !== 'vector') return asOf;
  const t = parseInstant(asOf);
  let known = false;
  for (const layerId of map.getLayersOrder ? map.getLayersOrder() : []) {
    const l = map.getLayer(layerId);
    if (!l || l.source !== id || !l.sourceLayer) continue;
    const last = lastWrite.get(l.sourceLayer);
    if (last === undefined || last > t) return asOf;
    known = true;
  }
  return known ? null : asOf;
}

/**
 * Points every tile source (vector and raster) of `map` at `asOf` (null: now). Sources whose
 * TileJSON is still loading follow as soon as it arrives.
 */
export function applyAsOf(map, asOf) {
  map.skAsOf = asOf || null;
  // The style's sources by id (MapLibre 5 keeps them as `tileManagers`), read directly:
  // `getStyle()` would serialise the whole style on every move.
  const st = map.style;
  const ids = st ? Object.keys(st.tileManagers || st.sourceCaches || {}) : [];
  for (const id of ids) {
    const source = map.getSource(id);
    if (source && (source.type === 'vector' || source.type === 'raster' || source.type === 'raster-dem')) {
      swapSource(map, id, source, sourceAsOf(map, id, source, map.skAsOf));
    }
  }
  if (!map.skFollowing) {
    map.skFollowing = true;
    map.on('sourcedata', (e) => {
      if (e.sourceDataType === 'metadata' && e.source && e.sourceId) {
        const s = map.getSource(e.sourceId);
        if (s && !s.skBaseTiles) swapSource(map, e.sourceId, s, sourceAsOf(map, e.sourceId, s, map.skAsOf));
      }
    });
  }
}

/** Resolves when `map` has drawn everything it asked for. */
export function idle(map) {
  return new Promise((resolve) => {
    if (map.loaded() && map.areTilesLoaded()) resolve();
    else map.once('idle', () => resolve());
  });
}

/**
 * The range of transaction time the readable collections span: `{first, last}` in ms, from the
 * server's `shikong:transactions` of `GET /collections` (null when it gives none). Also notes
 * each collection's newest write, which `applyAsOf` uses to leave unchanged layers alone.
 */
export async function transactionRange(adapter, only) {
  const doc = await adapter.json('/collections');
  let first = Infinity;
  let last = -Infinity;
  for (const c of doc.collections || []) {
    if (only && !only.includes(c.id)) continue;
    const t = c['shikong:transactions'];
    if (!t) continue;
    first = Math.min(first, parseInstant(t.first));
    last = Math.max(last, parseInstant(t.last));
    lastWrite.set(c.id, parseInstant(t.last));
  }
  return Number.isFinite(first) && Number.isFinite(last) ? { first, last } : null;
}

/** The step sizes offered (seconds; `auto`: a hundredth of the range), worded `sk_step_<v>`. */
const STEPS = ['auto', '60', '3600', '86400', '604800', '2592000'];

/**
 * Builds the slider into `el`. `opts.onChange(iso|null)` is told every (coalesced) move;
 * `opts.waitDrawn()` (optional) resolves when the maps have drawn, so playing never runs ahead of
 * them; `opts.t` (optional) words it. Returns `{ set(iso|null), get(), refresh(), play(), stop(),
 * relabel() }`; `set` moves the slider without calling `onChange` (the host's own state changed),
 * `relabel` says everything again in `opts.t`'s current language.
 */
export function createTimeSlider(el, adapter, opts = {}) {
  const t = opts.t || zh;
  el.classList.add('sk-timebar');
  el.innerHTML = `
    <button type="button" class="sk-back" data-testid="time-back">«</button>
    <button type="button" class="sk-play" data-testid="time-play">▶</button>
    <button type="button" class="sk-fwd" data-testid="time-forward">»</button>
    <input type="range" class="sk-slider" data-testid="time-slider" min="0" max="1" step="1" value="1">
    <output class="sk-value" data-testid="time-value"></output>
    <button type="button" class="sk-now" data-testid="time-now"></button>
    <label class="sk-step"><span class="sk-lbl" data-sk="sk_step"></span> <select data-testid="time-step">${STEPS.map((v) => `<option value="${v}"></option>`).join('')}</select></label>
    <label class="sk-range"><span class="sk-lbl" data-sk="sk_range"></span> <input type="datetime-local" step="1" data-testid="time-from"> – <input type="datetime-local" step="1" data-testid="time-to"></label>
    <label class="sk-loop"><input type="checkbox" data-testid="time-loop"> <span class="sk-lbl" data-sk="sk_loop"></span></label>`;
  const q = (s) => el.querySelector(s);
  const slider = q('.sk-slider');
  const value = q('.sk-value');
  const from = q('[data-testid=time-from]');
  const to = q('[data-testid=time-to]');
  const stepSel = q('[data-testid=time-step]');
  const loop = q('[data-testid=time-loop]');
  const playBtn = q('.sk-play');
  let current = null; // the instant shown (RFC 3339) or null for now
  let range = { first: Date.now() - 86400000, last: Date.now() };
  let playing = null;

  const sec = (ms) => Math.floor(ms / 1000);
  const bounds = () => [Number(slider.min), Number(slider.max)];
  function setBounds(firstMs, lastMs) {
    slider.min = String(sec(firstMs));
    slider.max = String(Math.max(sec(lastMs), sec(firstMs) + 1));
  }
  /** Every word of the bar in the current language (the state stays as it is). */
  function relabel() {
    q('.sk-back').title = t('sk_back');
    q('.sk-fwd').title = t('sk_forward');
    q('.sk-now').title = t('sk_to_now');
    q('.sk-now').textContent = t('sk_now');
    slider.setAttribute('aria-label', t('sk_time'));
    playBtn.title = t(playing ? 'sk_pause' : 'sk_play');
    for (const o of stepSel.options) o.textContent = t(`sk_step_${o.value}`);
    for (const s of el.querySelectorAll('[data-sk]')) s.textContent = t(s.dataset.sk);
    show();
  }
  function show() {
    value.textContent = showInstant(current, t('sk_now'));
    value.dataset.asOf = current || '';
    const ms = parseInstant(current);
    const [lo, hi] = bounds();
    if (!current) slider.value = String(hi);
    else {
      const s = sec(ms);
      if (s < lo) slider.min = String(s);
      if (s >= hi) slider.max = String(s + 1);
      slider.value = String(s);
    }
    el.classList.toggle('sk-live', !current);
  }
  // One change per animation frame, the latest wins (a timer too, for windows that draw no
  // frames while hidden).
  let queued;
  let pending = false;
  function flush() {
    if (!pending) return;
    pending = false;
    if (opts.onChange) opts.onChange(queued);
  }
  function change(iso) {
    current = iso;
    show();
    queued = iso;
    if (pending) return;
    pending = true;
    requestAnimationFrame(flush);
    setTimeout(flush, 50);
  }
  function stepSeconds() {
    const v = stepSel.value;
    if (v !== 'auto') return Number(v);
    const [lo, hi] = bounds();
    return Math.max(1, Math.round((hi - lo) / 100));
  }
  function moveTo(s) {
    const [lo, hi] = bounds();
    if (s >= hi) change(null);
    else change(beijing(Math.max(lo, s) * 1000));
  }
  const currentSec = () => (current ? sec(parseInstant(current)) : bounds()[1]);

  slider.addEventListener('input', () => moveTo(Number(slider.value)));
  // The end of a drag: read the range again (someone may have written since), and re-apply
  // when a layer's newest write moved.
  slider.addEventListener('change', () => {
    const before = range.last;
    refresh().then((r) => {
      if (r.last !== before && opts.onChange) opts.onChange(current);
    });
  });
  q('.sk-back').addEventListener('click', () => moveTo(currentSec() - stepSeconds()));
  q('.sk-fwd').addEventListener('click', () => moveTo(currentSec() + stepSeconds()));
  q('.sk-now').addEventListener('click', () => change(null));
  playBtn.addEventListener('click', () => (playing ? stop() : play()));

  function rangeSecs() {
    const [lo, hi] = bounds();
    const a = parseInstant(fromLocalInput(from.value));
    const b = parseInstant(fromLocalInput(to.value));
    return [Number.isFinite(a) ? sec(a) : lo, Number.isFinite(b) ? sec(b) : hi];
  }
  async function play() {
    stop();
    const token = {};
    playing = token;
    playBtn.textContent = '❚❚';
    playBtn.title = t('sk_pause');
    let [a, b] = rangeSecs();
    if (a > b) [a, b] = [b, a];
    let s = currentSec();
    if (s < a || s >= b) s = a;
    while (playing === token) {
      change(beijing(s * 1000));
      await Promise.all([new Promise((r) => setTimeout(r, opts.frameMs ?? 600)), opts.waitDrawn ? opts.waitDrawn() : null]);
      if (playing !== token) break;
      s += stepSeconds();
      if (s > b) {
        if (!loop.checked) {
          change(beijing(b * 1000));
          break;
        }
        s = a;
      }
    }
    if (playing === token) stop();
  }
  function stop() {
    playing = null;
    playBtn.textContent = '▶';
    playBtn.title = t('sk_play');
  }

  async function refresh() {
    try {
      const r = await transactionRange(adapter, opts.layers ? opts.layers() : null);
      if (r) range = r;
    } catch (e) {
      if (opts.onError) opts.onError(e);
    }
    setBounds(range.first, range.last);
    if (!from.value) from.value = toLocalInput(beijing(range.first));
    if (!to.value) to.value = toLocalInput(beijing(range.last));
    show();
    return range;
  }
  relabel();
  return {
    element: el,
    set(iso) {
      current = iso || null;
      show();
    },
    get: () => current,
    refresh,
    play,
    stop,
    relabel,
    range: () => ({ ...range, from: rangeSecs()[0] * 1000, to: rangeSecs()[1] * 1000 }),
  };
}
