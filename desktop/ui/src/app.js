// The desktop app's shell (issue 16): sign-in, the tabs, and the views each in its module
// (board.js: 调度台, map.js: 地图, …). Views render what the Rust side answers and send intents
// through Tauri commands; they never talk to the server (the map reads it through the app's
// `skmap:` scheme). zh-CN first.
import { invoke, $, state, showError, emit, on, views, setOpener } from './core.js';
import { t } from './i18n.js';
import { loadBoard } from './board.js';
import './map.js';
import './maptools.js';
import './time.js';
import './compare.js';
import './conflicts.js';
import './connectivity.js';
import './filepick.js';
import './print.js';
import './replica.js';
import './stats.js';
import './table.js';
import './analysis.js';

async function start() {
  state.actions = await invoke('office_actions');
  state.session = await invoke('session');
  render();
  if (state.session) {
    emit('signed-in', state.session);
    // Not awaited: with the server down the board says so, and the start goes on (offline work).
    loadBoard();
    const first = await invoke('start_view');
    if (first && first !== state.view) await openView(first);
  }
}

/** The header's user line: the role in the language's words and brackets (a role the table
 * lacks shows as it is). */
function whoLine() {
  const s = state.session;
  if (!s) return;
  const role = t(`role_${s.role}`);
  $('who').textContent = `${s.username}${t('paren', { x: role.startsWith('role_') ? s.role : role })} @ ${s.server}`;
  $('who').title = t('session_kept', { where: s.storage });
}

function render() {
  const signedIn = !!state.session;
  $('login').hidden = signedIn;
  $('main').hidden = !signedIn;
  if (signedIn) whoLine();
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
// A new language: the header's user line.
on('lang', whoLine);

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
