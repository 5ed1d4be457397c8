// The desktop app's views (issue 16): sign-in, the dispatch board with a case page, and the map.
// Views render what the Rust side answers and send intents through Tauri commands; they never talk
// to the server (the map reads it through the app's `skmap:` scheme). zh-CN first.
import maplibregl from 'maplibre-gl';

const invoke = (cmd, args) => window.__TAURI__.core.invoke(cmd, args);
const $ = (id) => document.getElementById(id);

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** '2026-12-07T10:00:00+08:00' → '2026-12-07 10:00' (Beijing time, as the server wrote it). */
function when(t) {
  return t ? t.slice(0, 16).replace('T', ' ') : '—';
}

const state = { session: null, board: null, selected: null, view: 'board', map: null, actions: [] };

function showError(id, e) {
  $(id).textContent = e ? String(e) : '';
}

async function start() {
  state.actions = await invoke('office_actions');
  state.session = await invoke('session');
  render();
  if (state.session) await loadBoard();
}

function render() {
  const signedIn = !!state.session;
  $('login').hidden = signedIn;
  $('main').hidden = !signedIn;
  if (signedIn) {
    const s = state.session;
    $('who').textContent = `${s.username}（${s.role}）@ ${s.server}`;
    $('who').title = `会话保存在：${s.storage}`;
  }
  for (const b of document.querySelectorAll('header nav button')) b.classList.toggle('active', b.dataset.view === state.view);
  $('view-board').hidden = state.view !== 'board';
  $('view-map').hidden = state.view !== 'map';
}

// ---------------------------------------------------------------------------------------------
// Sign-in

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('login-error', null);
  $('login-submit').disabled = true;
  try {
    state.session = await invoke('sign_in', {
      server: $('login-server').value,
      username: $('login-user').value,
      password: $('login-password').value,
    });
    $('login-password').value = '';
    render();
    await loadBoard();
  } catch (e) {
    showError('login-error', e);
  } finally {
    $('login-submit').disabled = false;
  }
});

$('logout').addEventListener('click', async () => {
  await invoke('sign_out');
  state.session = null;
  state.board = null;
  state.selected = null;
  render();
});

for (const b of document.querySelectorAll('header nav button')) {
  b.addEventListener('click', async () => {
    state.view = b.dataset.view;
    render();
    if (state.view === 'map') await showMap();
  });
}

$('refresh').addEventListener('click', () => loadBoard());

// ---------------------------------------------------------------------------------------------
// Dispatch board

/** Reloads the board; `reopen`: also reloads the open case page (not after an action, whose
 * answer already rendered it: a second render would replace the page under the user's hand). */
async function loadBoard(reopen = true) {
  showError('main-error', null);
  try {
    state.board = await invoke('board');
  } catch (e) {
    showError('main-error', e);
    return;
  }
  renderBoard();
  updateCaseMarkers();
  if (reopen && state.selected) await openCase(state.selected);
}

function renderBoard() {
  const b = state.board;
  const el = $('board');
  if (!b || b.columns.length === 0) {
    el.innerHTML = '<p class="empty" data-testid="board-empty">没有待办案件</p>';
    return;
  }
  el.innerHTML = b.columns
    .map(
      (col) => `<section class="column" data-state="${esc(col.state)}">
        <h2><span>${esc(col.label)}</span><span>${col.cases.length}</span></h2>
        ${col.cases
          .map(
            (c) => `<div class="card${c.overdue ? ' overdue' : ''}${c.id === state.selected ? ' selected' : ''}"
                 data-case-id="${esc(c.id)}" data-case-no="${esc(c.case_no)}" data-testid="case-card">
              <div class="no">${esc(c.case_no)}</div>
              <div class="desc">${esc(c.description || c.class || '')}</div>
              <div class="due">${c.stage_deadline ? `${c.overdue ? '已超期 ' : '期限 '}${esc(when(c.stage_deadline))}` : '无时限'}</div>
            </div>`,
          )
          .join('')}
      </section>`,
    )
    .join('') + (b.more ? '<p class="empty">案件较多，仅显示前 500 件</p>' : '');
  for (const card of el.querySelectorAll('.card')) card.addEventListener('click', () => openCase(card.dataset.caseId));
}

async function openCase(id) {
  state.selected = id;
  for (const card of document.querySelectorAll('.card')) card.classList.toggle('selected', card.dataset.caseId === id);
  try {
    renderCase(await invoke('case_page', { id }));
  } catch (e) {
    showError('main-error', e);
  }
}

function renderCase(c) {
  const el = $('case');
  el.hidden = false;
  const loc = c.location && c.location.coordinates ? c.location.coordinates.map((v) => v.toFixed(6)).join(', ') : '—';
  el.innerHTML = `<h2 data-testid="case-no">案件 ${esc(c.case_no)}</h2>
    <dl>
      <dt>状态</dt><dd data-testid="case-state" data-state="${esc(c.state)}">${esc(c.state_label)}</dd>
      <dt>期限</dt><dd class="${c.overdue ? 'overdue-text' : ''}">${esc(when(c.stage_deadline))}${c.overdue ? '（已超期）' : ''}</dd>
      <dt>处置人</dt><dd data-testid="case-assignee">${esc(c.assignee || '—')}</dd>
      <dt>类别</dt><dd>${esc([c.class_kind, c.class].filter(Boolean).join(' ') || '—')}</dd>
      <dt>描述</dt><dd>${esc(c.description || '—')}</dd>
      <dt>来源</dt><dd>${esc(c.source)}${c.source_ref ? `（${esc(c.source_ref)}）` : ''}</dd>
      <dt>位置</dt><dd>${esc(loc)}</dd>
    </dl>
    <div class="actions">
      <label>派遣给（用户名，或 department:部门）<input id="assignee" data-testid="assignee" placeholder="li 或 department:排水队"></label>
      <label>备注 <input id="note" data-testid="note"></label>
      ${state.actions.map(([a, label]) => `<button type="button" data-action="${a}">${esc(label)}</button>`).join('')}
    </div>
    <p class="error" id="case-error" role="alert"></p>
    <h3>流转记录</h3>
    <table data-testid="transitions"><tr><th>时间</th><th>动作</th><th>人员</th><th>状态</th><th>处置人</th><th>备注</th></tr>
      ${c.transitions
        .map(
          (t) => `<tr><td>${esc(when(t.at))}</td><td>${esc(t.action)}</td><td>${esc(t.actor)}</td>
            <td>${esc(t.from)} → ${esc(t.to)}</td><td>${esc(t.assignee || '')}</td><td>${esc(t.note || '')}</td></tr>`,
        )
        .join('')}
    </table>`;
  for (const b of el.querySelectorAll('button[data-action]')) {
    b.addEventListener('click', () => act(c.id, b.dataset.action));
  }
}

async function act(id, action) {
  showError('case-error', null);
  const assignee = $('assignee').value.trim() || null;
  const note = $('note').value.trim() || null;
  for (const b of document.querySelectorAll('button[data-action]')) b.disabled = true;
  try {
    renderCase(await invoke('case_action', { id, action, assignee, note }));
    await loadBoard(false);
  } catch (e) {
    showError('case-error', e);
    for (const b of document.querySelectorAll('button[data-action]')) b.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Map: the server's default style through the skmap: scheme, with the board's cases on top.

function caseFeatures() {
  const cols = state.board ? state.board.columns : [];
  return {
    type: 'FeatureCollection',
    features: cols.flatMap((col) =>
      col.cases
        .filter((c) => c.location && c.location.type === 'Point')
        .map((c) => ({ type: 'Feature', geometry: c.location, properties: { id: c.id, case_no: c.case_no, state: col.label, overdue: c.overdue } })),
    ),
  };
}

/** The id of the board's case markers (source and layer) on the map. */
const CASES = 'desk-cases';

function updateCaseMarkers() {
  const src = state.map && state.map.getSource(CASES);
  if (src) src.setData(caseFeatures());
}

async function showMap() {
  if (state.map) {
    state.map.resize();
    return;
  }
  const base = await invoke('map_base');
  const status = $('map-status');
  let style;
  try {
    const r = await fetch(`${base}/styles/default`);
    if (!r.ok) throw new Error(`样式加载失败 (${r.status})：${await r.text()}`);
    style = await r.json();
  } catch (e) {
    status.textContent = String(e);
    return;
  }
  const cases = caseFeatures();
  const first = cases.features[0];
  const map = new maplibregl.Map({
    container: 'map',
    style,
    center: first ? first.geometry.coordinates : style.center || [114.3, 30.55],
    zoom: first ? 14 : style.zoom ?? 11,
    attributionControl: false,
    preserveDrawingBuffer: true,
  });
  state.map = map;
  map.addControl(new maplibregl.NavigationControl(), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  // The board's cases on top (the server's style may have a `cases` layer of its own: other ids).
  map.on('load', () => {
    try {
      map.addSource(CASES, { type: 'geojson', data: caseFeatures() });
      map.addLayer({
        id: CASES,
        type: 'circle',
        source: CASES,
        paint: {
          'circle-radius': 7,
          'circle-color': ['case', ['to-boolean', ['get', 'overdue']], '#c0392b', '#f3a712'],
          'circle-stroke-color': '#fff',
          'circle-stroke-width': 2,
        },
      });
    } catch (e) {
      status.textContent = `地图错误：${e}`;
    }
  });
  map.on('click', (e) => {
    const f = map.queryRenderedFeatures(e.point)[0];
    if (!f) return;
    const rows = Object.entries(f.properties)
      .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
      .join('');
    new maplibregl.Popup().setLngLat(e.lngLat).setHTML(`<table>${rows}</table>`).addTo(map);
  });
  map.on('idle', () => {
    status.textContent = `已显示 ${map.queryRenderedFeatures().length} 个要素`;
  });
  map.on('error', (e) => {
    status.textContent = `地图错误：${e.error && e.error.message ? e.error.message : e}`;
  });
}

// What the end-to-end test reads.
window.shikongDesktop = {
  state,
  rendered: () => (state.map ? state.map.queryRenderedFeatures().map((f) => f.layer.id) : []),
};

start().catch((e) => showError('login-error', e));
