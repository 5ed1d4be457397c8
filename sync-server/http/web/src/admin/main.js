// The admin console (/admin): sign-in with the same login API as /map, then one tab per admin
// task. Everything shown comes from admin APIs the server checks on every call; a caller who is
// not an administrator sees 需要管理员权限 and no data.

import { ApiError, forget, get, signIn, signOut, token } from './api.js';
import { getLang, relabelStatic, setLang, t } from './labels.js';
import { el } from './ui.js';
import * as users from './users.js';
import * as layers from './layers.js';
import * as devices from './devices.js';
import * as services from './services.js';
import * as keys from './keys.js';
import * as harvest from './harvest.js';
import * as audit from './audit.js';
import * as system from './system.js';

const TABS = [
  ['users', users],
  ['layers', layers],
  ['devices', devices],
  ['services', services],
  ['keys', keys],
  ['harvest', harvest],
  ['audit', audit],
  ['system', system],
];

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
let current = TABS.some(([id]) => id === params.get('tab')) ? params.get('tab') : 'users';
let stop = null;
let me = null;

function open(id) {
  if (stop) stop();
  stop = null;
  current = id;
  for (const b of $('tabs').children) {
    const on = b.dataset.tab === id;
    b.classList.toggle('active', on);
    b.setAttribute('aria-selected', on ? 'true' : 'false');
  }
  const mod = TABS.find(([x]) => x === id)[1];
  const panel = $('panel');
  panel.dataset.tab = id;
  stop = mod.render(panel) || null;
  const url = new URL(window.location.href);
  url.searchParams.set('tab', id);
  window.history.replaceState(null, '', url);
}

function buildTabs() {
  $('tabs').replaceChildren(...TABS.map(([id]) =>
    el('button', { type: 'button', role: 'tab', 'data-tab': id, 'data-testid': `tab-${id}`, onclick: () => open(id) }, t(`tab_${id}`))));
}

/** Shows what the signed-in caller may see: the console (admins), the refusal, or the sign-in. */
function show(view) {
  $('signin').hidden = view !== 'signin';
  $('notice').hidden = view !== 'signin';
  $('who').hidden = view === 'signin';
  $('forbidden').hidden = view !== 'forbidden';
  $('console').hidden = view !== 'console';
  $('who-name').textContent = me ? `${me.username}（${t(`role_${me.role}`)}）` : '';
  document.body.dataset.view = view;
  if (view !== 'console') {
    if (stop) stop();
    stop = null;
    $('panel').replaceChildren();
  }
}

async function start() {
  if (!token()) {
    me = null;
    show('signin');
    return;
  }
  try {
    me = await get('/auth/me');
  } catch (e) {
    // A token that expired or was revoked: sign in again.
    if (e instanceof ApiError && e.status === 401) forget();
    me = null;
    show('signin');
    if (!(e instanceof ApiError && e.status === 401)) $('signin-error').textContent = e.message;
    return;
  }
  if (me.role !== 'admin') {
    show('forbidden');
    return;
  }
  show('console');
  buildTabs();
  open(current);
}

function relabel() {
  relabelStatic();
  $('lang').textContent = getLang() === 'en' ? '中文' : 'English';
  if (me) $('who-name').textContent = `${me.username}（${t(`role_${me.role}`)}）`;
  if (!$('console').hidden) {
    buildTabs();
    open(current);
  }
}

$('signin').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('signin-error').textContent = '';
  try {
    await signIn($('username').value.trim(), $('password').value);
    $('password').value = '';
  } catch (e) {
    $('signin-error').textContent = e.status === 401 ? t('badLogin') : t('loginFailed', { status: e.status || e.message });
    return;
  }
  await start();
});

$('signout').addEventListener('click', async () => {
  await signOut();
  me = null;
  show('signin');
});

$('lang').addEventListener('click', () => {
  setLang(getLang() === 'en' ? 'zh' : 'en');
  relabel();
});

if (params.get('lang')) setLang(params.get('lang'));
relabel();
start();
