// The shikong web map (served at /map): the layers of a style, a date switch (as-of any instant,
// imagery by acquisition date), a side-by-side comparison of two dates, and sign-in for layers that
// are not public. (The desktop and mobile apps have map views of their own.) Bundled into dist/
// by esbuild: no CDN.
//
// Where it opens: `#zoom/lat/lon` (kept up to date while panning: a link shows the same place),
// else `?center=lon,lat&zoom=`, else `?bbox=`, else the style's `shikong:bounds` — for generated
// styles the extent of the assets, leaving out reference layers of a whole country (see the
// server's tiles/view.rs). `?layers=a,b` opens the generated style of those layers.
import maplibregl from 'maplibre-gl';

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

/** '2023-05-01' or '2023-05-01T08:00' from the date inputs → an RFC 3339 instant in Beijing time. */
function instant(value) {
  if (!value) return null;
  return value.length <= 10 ? `${value}T23:59:59+08:00` : `${value}:00+08:00`;
}

function withAsOf(url, asOf) {
  const u = new URL(url, window.location.href);
  if (asOf) u.searchParams.set('as-of', asOf);
  else u.searchParams.delete('as-of');
  return u.toString();
}

async function loadStyle(asOf) {
  const url = withAsOf(`/styles/${encodeURIComponent(styleId)}`, asOf);
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

/** Points every tile source of the map at the layers as they were at `asOf` (null: now). */
function setDate(map, asOf) {
  const style = map.getStyle();
  for (const [id, src] of Object.entries(style.sources)) {
    const source = map.getSource(id);
    if (src.url && source && typeof source.setUrl === 'function') {
      source.setUrl(withAsOf(src.url, asOf));
    } else if (src.tiles && source && typeof source.setTiles === 'function') {
      source.setTiles(src.tiles.map((t) => withAsOf(t, asOf).replace(/%7B/g, '{').replace(/%7D/g, '}')));
    }
  }
  map.shikongAsOf = asOf;
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
  map.on('click', (e) => {
    const f = map.queryRenderedFeatures(e.point)[0];
    if (!f) return;
    const rows = Object.entries(f.properties)
      .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
      .join('');
    new maplibregl.Popup().setLngLat(e.lngLat).setHTML(`<table>${rows}</table>`).addTo(map);
  });
  return map;
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function idle(map) {
  return new Promise((resolve) => {
    if (map.loaded() && map.areTilesLoaded()) resolve();
    else map.once('idle', () => resolve());
  });
}

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

async function main() {
  const dateA = document.getElementById('date-a');
  const dateB = document.getElementById('date-b');
  const compare = document.getElementById('compare');
  const status = document.getElementById('status');
  dateA.value = params.get('a') || '';
  dateB.value = params.get('b') || '';
  compare.checked = params.has('b');
  showSession();
  const style = await loadStyle(instant(dateA.value));
  const mapA = makeMap('map-a', style, true);
  const maps = [mapA];
  let mapB = null;

  const layout = async () => {
    document.body.classList.toggle('comparing', compare.checked);
    if (compare.checked && !mapB) {
      mapB = makeMap('map-b', await loadStyle(instant(dateB.value)));
      mapB.jumpTo({ center: mapA.getCenter(), zoom: mapA.getZoom() });
      syncMoves(mapA, mapB);
      maps[1] = mapB;
    }
    for (const m of maps) m.resize();
  };
  dateA.addEventListener('change', () => setDate(mapA, instant(dateA.value)));
  dateB.addEventListener('change', () => mapB && setDate(mapB, instant(dateB.value)));
  compare.addEventListener('change', layout);
  document.getElementById('now').addEventListener('click', () => {
    dateA.value = '';
    setDate(mapA, null);
  });
  await layout();
  mapA.on('idle', () => {
    status.textContent = `已显示 ${mapA.queryRenderedFeatures().length} 个要素`;
  });

  // Signing in or out reloads the style (the layers this person may read) and keeps the view.
  let restyles = 0;
  const restyle = async () => {
    const dates = [dateA, dateB];
    await Promise.all(
      maps.map(async (m, i) => {
        m.setStyle(await loadStyle(instant(dates[i].value)));
        m.shikongAsOf = instant(dates[i].value);
      }),
    );
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
    } catch (err) {
      showSession(err.message);
    } finally {
      button.disabled = false;
    }
  });
  document.getElementById('signout').addEventListener('click', async () => {
    await signOut();
    showSession();
    await restyle();
  });

  // What the apps and the browser test drive.
  window.shikong = {
    maplibregl,
    maps,
    setDate: (which, value) => {
      const input = which === 1 ? dateB : dateA;
      input.value = value || '';
      const m = maps[which];
      if (m) setDate(m, instant(input.value));
      return m ? idle(m) : Promise.resolve();
    },
    compare: async (on) => {
      compare.checked = on;
      await layout();
      await Promise.all(maps.map(idle));
    },
    idle: (which = 0) => idle(maps[which]),
    /** Who is signed in (null: nobody), whether a token is kept, how many restyles happened. */
    session: () => ({ user: currentUser(), token: Boolean(token), restyles }),
    /** The ids of the style's layers on map `which`. */
    layers: (which = 0) => maps[which].getStyle().layers.map((l) => l.id),
    view: (which = 0) => {
      const m = maps[which];
      return { center: m.getCenter().toArray(), zoom: m.getZoom(), bounds: m.getBounds().toArray() };
    },
    rendered: (which = 0, layers) => {
      const m = maps[which];
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
