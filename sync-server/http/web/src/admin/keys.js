// 密钥与配额: API keys (GET /keys) with their daily quota and today's use; creating one
// (POST /keys {name, quota, services, fence}; its secret is shown once) and revoking one
// (DELETE /keys/{id}).

import { del, latestReader, post } from './api.js';
import { t } from './labels.js';
import { el, field, fmtTime, section, statusLine, table } from './ui.js';

const enc = encodeURIComponent;

export function render(panel) {
  const status = statusLine('keys-status');
  const list = el('div', { 'data-testid': 'key-list' }, t('loading'));
  const secret = el('div', { 'data-testid': 'key-secret-box' });
  const services = el('div', { class: 'checks', 'data-testid': 'key-services' });
  let titles = {};

  const readKeys = latestReader();
  const readServices = latestReader();
  async function load() {
    try {
      const r = await readKeys('/keys');
      if (!r) return;
      const { keys } = r;
      list.replaceChildren(keys.length === 0 ? el('p', {}, t('noKeys')) : table(
        ['keyName', 'quota', 'rateColumn', 'usedToday', 'keyServices', 'fence', 'hours', 'expires', 'revoked', 'actions'],
        keys.map((k) => [
          k.name,
          String(k.quota),
          k.rate ? String(k.rate) : '—',
          el('span', { 'data-testid': `used-${k.id}` }, `${k.used_today} / ${k.quota}`),
          k.services.map((s) => titles[s] || s).join('、'),
          k.fence ? el('code', { title: k.fence }, k.fence.length > 40 ? `${[...k.fence].slice(0, 40).join('')}…` : k.fence) : '',
          k.hours || '',
          fmtTime(k.expires),
          k.revoked_at ? fmtTime(k.revoked_at) : t('no'),
          k.revoked_at ? '' : el('button', { type: 'button', onclick: async () => {
            if (!window.confirm(t('confirmDelete', { what: k.name }))) return;
            try {
              await del(`/keys/${enc(k.id)}`);
              await load();
            } catch (e) {
              status.fail(e);
            }
          } }, t('revoke')),
        ]),
        (i) => ({ 'data-key': keys[i].name }),
      ));
    } catch (e) {
      list.textContent = '';
      status.fail(e);
    }
  }

  async function loadServices() {
    try {
      const r = await readServices('/services');
      if (!r) return;
      titles = Object.fromEntries(r.services.map((s) => [s.id, s.title]));
      services.replaceChildren(...r.services.map((s) =>
        el('label', {}, el('input', { type: 'checkbox', value: s.id, 'data-title': s.title }), ` ${s.title}`)));
    } catch (e) {
      services.textContent = e.message;
    }
  }

  const name = el('input', { required: true, 'data-testid': 'key-name' });
  const quota = el('input', { type: 'number', min: '1', step: '1', required: true, 'data-testid': 'key-quota' });
  const fence = el('textarea', { rows: 2, 'data-testid': 'key-fence', placeholder: 'POLYGON((114.3 30.5, 114.4 30.5, 114.4 30.6, 114.3 30.5))' });
  const hours = el('input', { placeholder: '08:00-20:00' });
  const rate = el('input', { type: 'number', min: '1', max: '10000', step: '1', 'data-testid': 'key-rate' });
  const form = el('form', { class: 'col', onsubmit: async (ev) => {
    ev.preventDefault();
    const body = {
      name: name.value.trim(),
      quota: Number(quota.value),
      services: [...services.querySelectorAll('input:checked')].map((c) => c.value),
    };
    if (fence.value.trim()) body.fence = fence.value.trim();
    if (hours.value.trim()) body.hours = hours.value.trim();
    if (rate.value.trim()) body.rate = Number(rate.value);
    try {
      const k = await post('/keys', body);
      secret.replaceChildren(el('p', { class: 'secret' }, t('secretOnce'), ' ', el('code', { 'data-testid': 'key-secret' }, k.key)));
      status.clear();
      form.reset();
      await load();
    } catch (e) {
      secret.replaceChildren();
      status.fail(e);
    }
  } },
  field('keyName', name), field('quota', quota), el('fieldset', {}, el('legend', {}, t('keyServices')), services),
  field('fence', fence), field('hours', hours), field('rate', rate), el('button', { type: 'submit', 'data-testid': 'key-create' }, t('createKey')));

  panel.replaceChildren(
    section('keys', el('button', { type: 'button', onclick: load }, t('refresh')), list),
    section('createKey', form, status.node, secret),
  );
  loadServices().then(load);
}
