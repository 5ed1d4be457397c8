// What every view shares: the Tauri bridge, DOM helpers, the app's state and its event bus.
// Views render state and send intents (`invoke`); they never talk to the server themselves.

export const invoke = (cmd, args) => window.__TAURI__.core.invoke(cmd, args);
export const $ = (id) => document.getElementById(id);

export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** '2026-12-07T10:00:00+08:00' → '2026-12-07 10:00' (Beijing time, as the server wrote it). */
export function when(t) {
  return t ? t.slice(0, 16).replace('T', ' ') : '—';
}

export function showError(id, e) {
  const el = $(id);
  if (el) el.textContent = e ? String(e) : '';
}

/**
 * The app's state. `asOf`: the time slider's instant (RFC 3339, or null for "now"); every view
 * that shows features (map, table, identify, statistics) reads it and listens for `asof`.
 * `selection`: the selected features `{layer, ids: Set}` shared by the table and the map.
 */
export const state = {
  session: null,
  board: null,
  selected: null,
  view: 'board',
  map: null,
  actions: [],
  asOf: null,
  selection: { layer: null, ids: new Set() },
};

/** The app's events: `asof` (the slider moved), `selection`, `view` (detail: the view's name),
 * `signed-in`, `signed-out`, `map-ready` (detail: the map). */
export const bus = new EventTarget();
export const emit = (name, detail) => bus.dispatchEvent(new CustomEvent(name, { detail }));
export const on = (name, fn) => bus.addEventListener(name, (e) => fn(e.detail));

/** Sets the slider's instant and tells every view. */
export function setAsOf(t) {
  state.asOf = t || null;
  emit('asof', state.asOf);
}

/** Views by name: `{ show() }`, called when the user opens the view (its tab: a `header nav`
 * button with `data-view=NAME`; its element: `#view-NAME`). */
export const views = {};
export function registerView(name, view) {
  views[name] = view;
}

let opener = null;
/** Opens a view by name as its tab does (the shell sets how, `setOpener`). */
export function openView(name) {
  return opener ? opener(name) : Promise.resolve();
}
export function setOpener(f) {
  opener = f;
}
