// 系统资源: disk of the data folder, the server's memory and request rates (GET /admin/system),
// the thresholds an administrator sets (PUT /admin/system/thresholds) and what is crossed now.

import { get, put } from './api.js';
import { t } from './labels.js';
import { el, field, fmtBytes, fmtNum, fmtTime, section, statusLine } from './ui.js';

const POLL_MS = 5000;

function uptime(s) {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d}d ${h}h ${m}m` : `${h}h ${m}m`;
}

function card(key, value, testid, alert) {
  return el('div', { class: `metric${alert ? ' alerting' : ''}`, 'data-testid': testid }, el('span', {}, t(key)), el('b', {}, value));
}

export function render(panel) {
  const status = statusLine('system-status');
  const cards = el('div', { class: 'metrics' }, t('loading'));
  const alerts = el('ul', { class: 'alerts', 'data-testid': 'system-alerts' });
  const disk = el('input', { type: 'number', min: '0', max: '100', step: 'any', 'data-testid': 'th-disk' });
  const mem = el('input', { type: 'number', min: '1', step: '1', 'data-testid': 'th-memory' });
  const req = el('input', { type: 'number', min: '0', step: 'any', 'data-testid': 'th-requests' });
  let timer = null;
  let stopped = false;
  let filled = false;

  function show(s) {
    const open = new Set(s.alerts.map((a) => a.metric));
    const d = s.disk;
    const m = s.memory;
    cards.replaceChildren(
      card('diskFree', d ? `${fmtNum(d.free_percent)}% · ${fmtBytes(d.free_bytes)} / ${fmtBytes(d.total_bytes)}` : '—', 'sys-disk', open.has('disk_free')),
      card('memory', fmtBytes(m.rss_bytes), 'sys-memory', open.has('memory')),
      card('machineMemory', m.machine_total_bytes ? `${fmtBytes(m.machine_available_bytes)} / ${fmtBytes(m.machine_total_bytes)}` : '—', 'sys-machine', false),
      card('requestRate', `${fmtNum(s.requests.per_second, 2)} ${t('perSecond')}（${s.requests.total}）`, 'sys-requests', open.has('requests')),
      card('errorRate', `${fmtNum(s.requests.errors_per_second, 2)} ${t('perSecond')}（${s.requests.server_errors}）`, 'sys-errors', false),
      card('uptime', uptime(s.uptime_seconds), 'sys-uptime', false),
    );
    alerts.replaceChildren(...(s.alerts.length === 0
      ? [el('li', { class: 'ok' }, t('noAlerts'))]
      : s.alerts.map((a) => el('li', { class: 'alerting', 'data-metric': a.metric }, `${a.message}（${t('since')} ${fmtTime(a.since)}）`))));
    if (!filled) {
      const th = s.thresholds;
      disk.value = th.disk_free_min_percent ?? '';
      mem.value = th.memory_max_mb ?? '';
      req.value = th.requests_max_per_second ?? '';
      filled = true;
    }
  }

  async function poll() {
    try {
      show(await get('/admin/system'));
    } catch (e) {
      status.fail(e);
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  const form = el('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const body = {};
    if (disk.value !== '') body.disk_free_min_percent = Number(disk.value);
    if (mem.value !== '') body.memory_max_mb = Number(mem.value);
    if (req.value !== '') body.requests_max_per_second = Number(req.value);
    try {
      show(await put('/admin/system/thresholds', body));
      status.ok(t('saved'));
    } catch (e) {
      status.fail(e);
    }
  } }, field('thDisk', disk), field('thMemory', mem), field('thRequests', req), el('button', { type: 'submit', 'data-testid': 'th-save' }, t('save')));

  panel.replaceChildren(
    section('system', cards),
    section('alerts', alerts),
    section('thresholds', el('p', { class: 'hint' }, t('thEmpty')), form, status.node),
  );
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
