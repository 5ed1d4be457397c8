// The desktop app's shell (issue 16): sign-in, the tabs, and the views each in its module
// (board.js: 调度台, map.js: 地图, …). Views render what the Rust side answers and send intents
// through Tauri commands; they never talk to the server (the map reads it through the app's
// `skmap:` scheme). zh-CN first.
import { invoke, $, state, showError, emit, views, setOpener } from './core.js';
import { loadBoard } from './board.js';
import './map.js';
import './maptools.js';
import './time.js';
import './compare.js';
import './conflicts.js';
import './print.js';
import './replica.js';
import './stats.js';
import './table.js';

async function start() {
  state.actions = await invoke('office_actions');
  state.session = await invoke('session');
  render();
  if (state.session) {
    emit('signed-in', state.session);
    await loadBoard();
    const first = await invoke('start_view');
    if (first && first !== state.view) await openView(first);
  }
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
  for (const v of document.querySelectorAll('#main > .view')) v.hidden = v.id !== `view-${state.view}`;
}

/** Opens a view by name (its tab's `data-view`). */
export async function openView(name) {
  state.view = name;
  render();
  emit('view', name);
  const v = views[name];
  if (v && v.show) await v.show();
}

setOpener(openView);

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
    emit('signed-in', state.session);
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
  emit('signed-out');
});

for (const b of document.querySelectorAll('header nav button')) {
  b.addEventListener('click', () => openView(b.dataset.view));
}

// What the end-to-end test reads.
window.shikongDesktop = {
  state,
  openView,
  rendered: () => (state.map ? state.map.queryRenderedFeatures().map((f) => f.layer.id) : []),
};

start().catch((e) => showError('login-error', e));
