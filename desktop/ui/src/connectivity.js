// Whether the server can be reached (issue 16, offline work): a badge in the header — 在线, or
// 服务器不可达 with "working offline" — from the `server_status` probe at sign-in (or a start on
// the saved session) and every POLL_MS after, one probe in flight. A change is told on the bus:
// `offline`, `online` (the map then loads the server's style, the board is read again). The
// app itself never waits on it: the replica, its edits and the map over local data work
// without the server, and the next sync sends the edits.
import { invoke, $, state, emit, on } from './core.js';
import { t, addText } from './i18n.js';
import { loadBoard } from './board.js';

addText({
  net_online: ['在线', 'Online'],
  net_offline: ['服务器不可达 · 离线工作', 'Server unreachable · working offline'],
  net_checking: ['正在检查服务器…', 'Checking the server…'],
  net_title: ['服务器：{server}', 'Server: {server}'],
  map_offline_why: ['离线地图：本地副本的要素（{e}）', 'Offline map: the local replica\'s features ({e})'],
});

const POLL_MS = 5000;
let timer = null;
let busy = false;

function badge() {
  let el = $('net-status');
  if (!el) {
    el = document.createElement('span');
    el.id = 'net-status';
    el.dataset.testid = 'net-status';
    el.textContent = t('net_checking');
    const who = $('who');
    who.parentElement.insertBefore(el, who.nextSibling);
  }
  return el;
}

function render() {
  const el = badge();
  const online = state.online;
  el.dataset.online = online === null ? '' : String(online);
  el.textContent = online === null ? t('net_checking') : online ? t('net_online') : t('net_offline');
  el.title = state.session ? t('net_title', { server: state.session.server }) : '';
}

async function check() {
  if (busy || !state.session) return;
  busy = true;
  try {
    const s = await invoke('server_status');
    const was = state.online;
    state.online = s.online;
    render();
    if (was !== s.online) {
      emit(s.online ? 'online' : 'offline');
      // Back from offline: what the start could not read.
      if (s.online && was === false) loadBoard();
    }
  } catch {
    // the probe itself failed (no session any more): try again later
  } finally {
    busy = false;
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    await check();
    if (state.session) schedule();
  }, POLL_MS);
}

state.online = null;
on('signed-in', async () => {
  render();
  await check();
  schedule();
});
on('signed-out', () => {
  clearTimeout(timer);
  state.online = null;
  const el = $('net-status');
  if (el) el.remove();
});
on('lang', () => {
  if ($('net-status')) render();
});

// The test hook (after app.js has made it).
setTimeout(() => {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, { checkServer: check });
}, 0);
