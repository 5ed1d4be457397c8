// 用户与审批: the accounts (GET /admin/users), approving or rejecting registrations, disabling
// and enabling accounts, changing roles, adding an account.

import { latestReader, post, put } from './api.js';
import { t } from './labels.js';
import { el, field, fmtTime, section, statusLine, table } from './ui.js';

const ROLES = ['admin', 'office', 'inspector', 'citizen'];
const STATUSES = ['pending', 'active', 'disabled', 'rejected'];
const enc = encodeURIComponent;

export function render(panel) {
  const status = statusLine('users-status');
  const filter = el('select', { 'data-testid': 'users-filter' },
    el('option', { value: '' }, t('allStatuses')),
    STATUSES.map((s) => el('option', { value: s }, t(`st_${s}`))));
  const list = el('div', { 'data-testid': 'users-list' }, t('loading'));

  async function act(name, what, body) {
    try {
      const r = await post(`/admin/users/${enc(name)}/${what}`, body);
      status.ok(t('userChanged', { user: name, status: t(`st_${r.user.status}`) }));
      await load();
    } catch (e) {
      status.fail(e);
    }
  }

  function actions(u) {
    const b = (key, what, body) =>
      el('button', { type: 'button', 'data-testid': `${what}-${u.username}`, onclick: () => act(u.username, what, body()) }, t(key));
    if (u.status === 'pending') {
      return [
        b('approve', 'approve', () => ({})),
        b('reject', 'reject', () => {
          const reason = window.prompt(t('rejectReason'));
          return reason ? { reason } : {};
        }),
      ];
    }
    if (u.status === 'active') return [b('disable', 'disable', () => ({}))];
    if (u.status === 'disabled') return [b('enable', 'enable', () => ({}))];
    return [];
  }

  function roleSelect(u) {
    const s = el('select', { 'data-testid': `role-${u.username}`, 'aria-label': t('role') },
      ROLES.map((r) => el('option', { value: r, selected: r === u.role }, t(`role_${r}`))));
    s.addEventListener('change', async () => {
      try {
        const r = await put(`/admin/users/${enc(u.username)}/role`, { role: s.value });
        status.ok(`${u.username}：${t(`role_${r.user.role}`)}`);
      } catch (e) {
        status.fail(e);
        s.value = u.role;
      }
    });
    return s;
  }

  const read = latestReader();
  async function load() {
    try {
      const q = filter.value ? `?status=${enc(filter.value)}` : '';
      const r = await read(`/admin/users${q}`);
      if (!r) return;
      const { users } = r;
      list.replaceChildren(table(
        ['username', 'displayName', 'role', 'status', 'groups', 'created', 'actions'],
        users.map((u) => [
          u.username,
          u.display_name || '',
          roleSelect(u),
          el('span', { class: `badge st-${u.status}`, 'data-testid': `status-${u.username}`, title: u.status_reason || '' }, t(`st_${u.status}`)),
          (u.groups || []).join('、'),
          fmtTime(u.created_at),
          el('span', { class: 'actions' }, actions(u)),
        ]),
        (i) => ({ 'data-user': users[i].username }),
      ));
    } catch (e) {
      list.textContent = '';
      status.fail(e);
    }
  }
  filter.addEventListener('change', load);

  const name = el('input', { required: true, 'data-testid': 'new-username' });
  const role = el('select', {}, ROLES.map((r) => el('option', { value: r, selected: r === 'citizen' }, t(`role_${r}`))));
  const pw = el('input', { type: 'password', required: true, autocomplete: 'new-password' });
  const form = el('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await post('/admin/users', { username: name.value.trim(), role: role.value, password: pw.value });
      status.ok(`${name.value.trim()}：${t('st_active')}`);
      form.reset();
      await load();
    } catch (e) {
      status.fail(e);
    }
  } }, field('username', name), field('role', role), field('password', pw), el('button', { type: 'submit' }, t('add')));

  panel.replaceChildren(
    section('tab_users', el('div', { class: 'row' }, filter, el('button', { type: 'button', onclick: load }, t('refresh'))), status.node, list),
    section('addUser', form),
  );
  load();
}
