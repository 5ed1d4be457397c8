// The shikong web map (served at /map): the layers of a style, the time slider over transaction
// time (as-of any instant, imagery by acquisition date), identify at the slider's instant, a
// comparison of two dates (side by side or swipe, with the list of changes and each feature's
// history), sign-in for layers that are not public, and the analysis panel (processes run as jobs,
// their results as layers: analysis.js). The time slider, identify, compare, history and analysis
// are the modules the desktop app uses too (time.js, identify.js, compare.js, history.js,
// analysis.js), here reading the server with this tab's token. Bundled into dist/ by esbuild: no CDN.
//
// Where it opens: `#zoom/lat/lon` (kept up to date while panning: a link shows the same place),
// else `?center=lon,lat&zoom=`, else `?bbox=`, else the style's `shikong:bounds` — for generated
// styles the extent of the assets, leaving out reference layers of a whole country (see the
// server's tiles/view.rs). `?layers=a,b` opens the generated style of those layers.
import maplibregl from 'maplibre-gl';
import { applyAsOf, createTimeSlider, idle, fromLocalInput } from './time.js';
import { createIdentify } from './identify.js';
import { createCompare } from './compare.js';
import { showHistory } from './history.js';
import { createStations } from './stations.js';
import { createAnalysis } from './analysis.js';

const params = new URLSearchParams(window.location.search);
const styleId = params.get('style') || params.get('layers') || 'default';

// The session: the token from POST /auth/login lives in sessionStorage (this tab only, gone when
// it closes) and travels in the Authorization header — never in a URL, where it would end up in
// logs, history and shared links.
const TOKEN_KEY = 'shikong.token';
const USER_KEY = 'shikong.user';
let token = sessionStorage.getItem(TOKEN_KEY);

function currentUser() {
  try {
    return JSON.parse(sessionStorage.getItem(USER_KEY) || 'null');
  } catch {
    return null;
  }
}

function sameOrigin(url) {
  try {
    return new URL(url, window.location.href).origin === window.location.origin;
  } catch {
    return false;
  }
}

/** The Authorization header for requests to this server (never to other origins). */
function authHeaders(url) {
  return token && sameOrigin(url) ? { Authorization: `Bearer ${token}` } : {};
}

/** MapLibre's hook for every request it makes (TileJSON, tiles, glyphs, sprites). */
function transformRequest(url) {
  const headers = authHeaders(url);
  return headers.Authorization ? { url, headers } : { url };
}

const ROLES = { admin: '管理员', office: '内业', inspector: '巡查员', citizen: '市民' };

/** '2023-05-01' (the end of that day), '2023-05-01T08:00' or an RFC 3339 instant → RFC 3339. */
function instant(value) {
  if (!value) return null;
  return /(Z|[+-]\d\d:\d\d)$/.test(value) ? value : fromLocalInput(value);
}

/** What the shared modules read the server through: same-origin JSON with this tab's token. */
const adapter = {
  async json(path) {
    const r = await fetch(path, { headers: { Accept: 'application/json', ...authHeaders(path) } });
    if (!r.ok) throw new Error(`${r.status} ${(await r.text()).slice(0, 300)}`);
    return r.json();
  },
  /** Writes to the server: the answer's JSON, or an Error with the problem's detail. */
  async send(method, path, body, headers = {}) {
    const r = await fetch(path, {
      method,
      headers: {
        Accept: 'application/json',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
        ...authHeaders(path),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let doc = null;
    try {
      doc = text ? JSON.parse(text) : null;
    } catch {
      doc = null;
    }
    if (!r.ok) throw new Error((doc && (doc.detail || doc.title)) || `${r.status} ${text.slice(0, 300)}`);
    return doc;
  },
  /** An asynchronous execution of a process (`Prefer: respond-async`): the job's status. */
  execute(process, inputs) {
    return adapter.send('POST', `/processes/${encodeURIComponent(process)}/execution`, { inputs }, { Prefer: 'respond-async' });
  },
  /** Cancels (or forgets, when finished) a job: its status. */
  dismiss(job) {
    return adapter.send('DELETE', `/jobs/${encodeURIComponent(job)}`);
  },
};

async function loadStyle() {
  const url = `/styles/${encodeURIComponent(styleId)}`;
  const get = () => fetch(url, { headers: { Accept: 'application/json', ...authHeaders(url) } });
  let r = await get();
  if (r.status === 401 && token) {
    // Expired or revoked: carry on with the public layers and say so.
    forget();
    showSession('登录已过期，请重新登录');
    r = await get();
  }
  if (!r.ok) throw new Error(`样式加载失败 (${r.status}): ${await r.text()}`);
  return r.json();
}

function forget() {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
}

/** Shows the sign-in form, or who is signed in; `message` in the form's error line. */
function showSession(message = '') {
  const user = currentUser();
  document.getElementById('signin').hidden = Boolean(token);
  document.getElementById('who').hidden = !token;
  document.getElementById('who-name').textContent = user ? `${user.username}（${ROLES[user.role] || user.role}）` : '';
  document.getElementById('signin-error').textContent = message;
}

/** POST /auth/login; keeps the token for this tab. Throws with a message for the person. */
async function signIn(username, password) {
  const r = await fetch('/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    if (r.status === 401) throw new Error('用户名或密码错误');
    throw new Error(body.detail || body.title || `登录失败 (${r.status})`);
  }
  token = body.token;
  sessionStorage.setItem(TOKEN_KEY, body.token);
  sessionStorage.setItem(USER_KEY, JSON.stringify(body.user || { username }));
}

/** POST /auth/logout (the server revokes the token), then forgets it here either way. */
async function signOut() {
  if (token) {
    await fetch('/auth/logout', { method: 'POST', headers: authHeaders('/auth/logout') }).catch(() => {});
  }
  forget();
}

/** Where a map opens (see the top of this file). */
function startView(style) {
  const center = (params.get('center') || '').split(',').map(Number);
  const zoom = Number(params.get('zoom'));
  if (center.length === 2 && center.every(Number.isFinite)) {
    return { center, zoom: params.get('zoom') && Number.isFinite(zoom) ? zoom : style.zoom ?? 11 };
  }
  const bbox = (params.get('bbox') || '').split(',').map(Number);
  if (bbox.length === 4 && bbox.every(Number.isFinite)) return { bounds: bbox };
  const b = style.metadata && style.metadata['shikong:bounds'];
  if (Array.isArray(b) && b.length === 4) return { bounds: b };
  return { center: style.center || [114.3, 30.55], zoom: style.zoom ?? 11 };
}

function makeMap(container, style, hash = false) {
  const map = new maplibregl.Map({
    container,
    style,
    ...startView(style),
    fitBoundsOptions: { padding: 40, maxZoom: 16 },
    hash,
    transformRequest,
    attributionControl: false,
    preserveDrawingBuffer: true, // screenshots of the canvas (tests, reports)
  });
  map.addControl(new maplibregl.NavigationControl(), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  return map;
}

async function main() {
  const compare = document.getElementById('compare');
  const status = document.getElementById('status');
  showSession();
  let asOf = instant(params.get('a'));
  const style = await loadStyle();
  const mapA = makeMap('map-a', style, true);
  const maps = [mapA];
  if (asOf) applyAsOf(mapA, asOf);

  // The time slider: moving it points the map's tiles at that instant; identify reads there too.
  const slider = createTimeSlider(document.getElementById('timebar'), adapter, {
    onChange: (t) => {
      asOf = t;
      applyAsOf(mapA, t);
    },
    waitDrawn: () => idle(mapA),
  });
  slider.set(asOf);
  slider.refresh();
  const setAsOf = (t) => {
    asOf = t || null;
    slider.set(asOf);
    applyAsOf(mapA, asOf);
    return idle(mapA);
  };
  const identify = createIdentify(mapA, { maplibregl, adapter, asOf: () => asOf });
  // Sensing stations: latest readings coloured by state, live from /events (signed-in readers).
  const stations = createStations(mapA, { maplibregl, adapter, token: () => token });
  stations.restart();

  // The analysis panel (processes, jobs, results as layers): built when first opened.
  let analysis = null;
  const analysisBox = document.getElementById('analysis');
  const analysisButton = document.getElementById('analysis-toggle');
  const toggleAnalysis = async (on = analysisBox.hidden) => {
    analysisBox.hidden = !on;
    analysisButton.setAttribute('aria-pressed', String(on));
    if (on && !analysis) {
      analysis = createAnalysis(analysisBox, { map: mapA, adapter, signedIn: () => Boolean(token) });
      await analysis.open();
    }
    return analysis;
  };
  analysisButton.addEventListener('click', () => toggleAnalysis().catch((e) => (status.textContent = String(e))));

  // Comparing two dates: its own two maps over the main one, made when first opened.
  let cmp = null;
  const compareView = document.getElementById('compare-view');
  const openCompare = () => {
    if (!cmp) {
      cmp = createCompare(compareView, {
        maplibregl,
        adapter,
        loadStyle,
        mapOptions: { transformRequest },
        start: () => ({ center: mapA.getCenter().toArray(), zoom: mapA.getZoom() }),
      });
    }
    return cmp;
  };
  const layout = async (dates) => {
    document.body.classList.toggle('comparing', compare.checked);
    compareView.hidden = !compare.checked;
    if (compare.checked) {
      const c = openCompare();
      c.resize();
      if (dates || !c.maps().length) await c.run({ a: asOf, b: instant(params.get('b')), ...(dates || {}) });
    } else mapA.resize();
  };
  compare.checked = params.has('b');
  compare.addEventListener('change', () => layout().catch((e) => (status.textContent = String(e))));
  await layout();
  mapA.on('idle', () => {
    status.textContent = `已显示 ${mapA.queryRenderedFeatures().length} 个要素`;
  });

  // Signing in or out reloads the style (the layers this person may read) and keeps the view.
  let restyles = 0;
  const restyle = async () => {
    const all = [mapA, ...(cmp ? cmp.maps() : [])];
    const next = await loadStyle();
    for (const m of all) {
      const t = m.skAsOf;
      m.setStyle(JSON.parse(JSON.stringify(next)));
      m.once('styledata', () => applyAsOf(m, t));
    }
    restyles += 1;
  };
  const form = document.getElementById('signin');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const user = document.getElementById('username');
    const password = document.getElementById('password');
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      await signIn(user.value.trim(), password.value);
      password.value = '';
      showSession();
      await restyle();
      await stations.restart();
      if (analysis) {
        await analysis.sessionChanged();
        await analysis.refreshJobs().catch(() => {});
      }
    } catch (err) {
      showSession(err.message);
    } finally {
      button.disabled = false;
    }
  });
  document.getElementById('signout').addEventListener('click', async () => {
    await signOut();
    showSession();
    if (analysis) {
      analysis.clear();
      await analysis.sessionChanged();
      await analysis.refreshJobs().catch(() => {});
    }
    await restyle();
    await stations.restart();
  });

  // What the apps and the browser test drive. Maps: 0 the main map, 1 and 2 the compare view's
  // A and B (once opened).
  const mapAt = (which) => (which === 0 ? mapA : cmp ? cmp.maps()[which - 1] : undefined);
  window.shikong = {
    maplibregl,
    maps,
    mapAt,
    /** The slider's instant (RFC 3339, or null: now); resolves when the map has drawn it. */
    setAsOf,
    asOf: () => asOf,
    /** A date ('2024-01-01': the end of that day; '' now) on the main map (0) or compare B (1). */
    setDate: (which, value) => {
      if (which === 1) return layout({ b: instant(value) });
      return setAsOf(instant(value));
    },
    /** Opens (or closes) the compare view; `dates` `{a, b, mode}` (default: the slider's instant
     *  against now). Resolves when both maps have drawn and the change list is read. */
    compare: async (on, dates) => {
      compare.checked = on;
      await layout(on ? dates || {} : undefined);
    },
    changes: () => (cmp ? cmp.rows() : []),
    identifyAt: (lngLat) => identify.at(mapA.project(lngLat), maplibregl.LngLat.convert(lngLat)),
    history: (layer, id) => showHistory(adapter, layer, id),
    idle: (which = 0) => idle(mapAt(which)),
    /** Who is signed in (null: nobody), whether a token is kept, how many restyles happened. */
    session: () => ({ user: currentUser(), token: Boolean(token), restyles }),
    /** The ids of the style's layers on map `which`. */
    layers: (which = 0) => mapAt(which).getStyle().layers.map((l) => l.id),
    /** The tile URLs a source of map `which` requests now. */
    tiles: (source, which = 0) => {
      const s = mapAt(which).getSource(source);
      return s && s.tiles ? s.tiles.slice() : [];
    },
    view: (which = 0) => {
      const m = mapAt(which);
      return { center: m.getCenter().toArray(), zoom: m.getZoom(), bounds: m.getBounds().toArray() };
    },
    /** The sensing stations layer: features, live stream, popup text (`stations.js`). */
    stations: () => stations.state(),
    /** Opens a station's popup (its latest values and chart). */
    openStation: (thing, lngLat) => stations.open(thing, lngLat),
    /** Opens (or closes) the analysis panel; resolves with its handle (`analysis.js`). */
    analysis: (on = true) => toggleAnalysis(on),
    rendered: (which = 0, layers) => {
      const m = mapAt(which);
      const fs = layers ? m.queryRenderedFeatures({ layers }) : m.queryRenderedFeatures();
      return fs.map((f) => ({ layer: f.layer.id, source: f.source, properties: f.properties }));
    },
  };
  window.dispatchEvent(new Event('shikong-ready'));
}

main().catch((e) => {
  document.getElementById('status').textContent = String(e);
  window.shikongError = String(e);
});
