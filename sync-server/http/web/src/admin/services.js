// 服务与健康: registered outside services (GET /services) with their health (up/down, latency,
// last error), polled while the tab is open; registering one (POST /services {url, type,
// title}) and removing one (DELETE /services/{id}).

import { del, latestReader, post } from './api.js';
import { t } from './labels.js';
import { el, field, fmtTime, section, statusLine, table } from './ui.js';

const TYPES = ['wms', 'wmts', 'wfs', 'ogcapi-features', 'ogcapi-tiles', 'arcgis-rest', 'xyz'];
/** How often the list is read again while the tab is open. */
export const POLL_MS = 2000;
const enc = encodeURIComponent;

function healthCell(s) {
  const h = s.health || { state: 'unknown' };
  const state = ['up', 'down'].includes(h.state) ? h.state : 'unknown';
  return el('span', { class: `badge h-${state}`, 'data-testid': `health-${s.id}`, 'data-state': state, title: h.down_since ? t('downSince', { t: fmtTime(h.down_since) }) : '' }, t(`h_${state}`));
}

export function render(panel) {
  const status = statusLine('services-status');
  const list = el('div', { 'data-testid': 'service-list' }, t('loading'));
  let timer = null;
  let stopped = false;

  const read = latestReader();
  async function load() {
    try {
      const r = await read('/services');
      if (!r) return;
      const { services } = r;
      list.replaceChildren(services.length === 0 ? el('p', {}, t('noServices')) : table(
        ['layerTitle', 'type', 'proxyUrl', 'health', 'latency', 'lastError', 'checkedAt', 'actions'],
        services.map((s) => [
          s.title,
          s.type,
          el('code', {}, s.url),
          healthCell(s),
          s.health && s.health.latency_ms !== undefined && s.health.state === 'up' ? `${s.health.latency_ms} ms` : '—',
          (s.health && s.health.last_error) || '',
          fmtTime(s.health && s.health.checked_at),
          el('button', { type: 'button', onclick: async () => {
            if (!window.confirm(t('confirmDelete', { what: s.title }))) return;
            try {
              await del(`/services/${enc(s.id)}`);
              await load();
            } catch (e) {
              status.fail(e);
            }
          } }, t('delete')),
        ]),
        (i) => ({ 'data-service': services[i].id, 'data-title': services[i].title }),
      ));
    } catch (e) {
      list.textContent = '';
      status.fail(e);
    }
  }

  async function poll() {
    await load();
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  const url = el('input', { type: 'url', required: true, 'data-testid': 'service-url' });
  const type = el('select', { 'data-testid': 'service-type' }, TYPES.map((x) => el('option', { value: x }, x)));
  const title = el('input', { required: true, 'data-testid': 'service-title' });
  const form = el('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const s = await post('/services', { url: url.value.trim(), type: type.value, title: title.value.trim() });
      status.ok(`${s.title}：${s.id}`);
      form.reset();
      await load();
    } catch (e) {
      status.fail(e);
    }
  } }, field('url', url), field('type', type), field('layerTitle', title), el('button', { type: 'submit', 'data-testid': 'service-register' }, t('register')));

  panel.replaceChildren(
    section('services', el('p', { class: 'hint' }, t('autoRefresh', { s: POLL_MS / 1000 })), status.node, list),
    section('registerService', form),
  );
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
