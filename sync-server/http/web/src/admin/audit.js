// 审计与统计: the audit log (GET /admin/audit, a page at a time, by user, action and outcome)
// and usage statistics: requests by route and status from /metrics (rates from two readings),
// and each API key's use today (GET /keys).

import { get, getText, latestReader } from './api.js';
import { t } from './labels.js';
import { el, field, fmtNum, fmtTime, section, statusLine, table } from './ui.js';

const PAGE = 50;
const STATS_MS = 5000;

/** `shikong_http_requests_total{…}` lines of the Prometheus text → [{method, route, status, n}]. */
export function parseRequests(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('shikong_http_requests_total{')) continue;
    const close = line.lastIndexOf('}');
    const labels = {};
    for (const m of line.slice(line.indexOf('{') + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    out.push({ method: labels.method, route: labels.route, status: labels.status, n: Number(line.slice(close + 1).trim()) });
  }
  return out;
}

function auditPart() {
  const status = statusLine('audit-status');
  const user = el('input', { placeholder: t('filterUser'), 'data-testid': 'audit-user' });
  const action = el('input', { placeholder: t('filterAction'), 'data-testid': 'audit-action' });
  const outcome = el('select', {}, el('option', { value: '' }, t('allOutcomes')), ['ok', 'failed', 'denied'].map((o) => el('option', { value: o }, o)));
  const list = el('div', { 'data-testid': 'audit-list' });
  const next = el('button', { type: 'button', disabled: true }, t('nextPage'));
  let after = null;
  const read = latestReader();

  async function load(from) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (user.value.trim()) q.set('user', user.value.trim());
    if (action.value.trim()) q.set('action', action.value.trim());
    if (outcome.value) q.set('outcome', outcome.value);
    if (from !== null && from !== undefined) q.set('after', String(from));
    try {
      const page = await read(`/admin/audit?${q}`);
      if (!page) return;
      status.clear();
      after = page.next;
      next.disabled = after === null || after === undefined;
      list.replaceChildren(table(
        ['time', 'action', 'outcome', 'actor', 'target', 'client', 'detail'],
        page.entries.map((e) => [
          fmtTime(e.at), e.action, el('span', { class: `badge o-${e.outcome}` }, e.outcome),
          e.actor ? (e.actor.user || e.actor.local || '') : '',
          [e.user, e.target, e.layer].filter(Boolean).join(' · '),
          e.client || '', e.detail || '',
        ]),
        (i) => ({ 'data-action': page.entries[i].action }),
      ));
    } catch (e) {
      status.fail(e);
    }
  }
  next.addEventListener('click', () => load(after));
  const form = el('form', { class: 'row', onsubmit: (ev) => {
    ev.preventDefault();
    load(null);
  } }, user, action, outcome, el('button', { type: 'submit', 'data-testid': 'audit-search' }, t('search')),
  el('button', { type: 'button', onclick: () => load(null) }, t('firstPage')), next);
  load(null);
  return section('audit', form, status.node, list);
}

function statsPart() {
  const box = el('div', { 'data-testid': 'usage' }, t('loading'));
  const keys = el('div', { 'data-testid': 'key-usage' });
  let before = null;
  let timer = null;
  let stopped = false;

  async function load() {
    try {
      const rows = parseRequests(await getText('/metrics'));
      const now = Date.now();
      const byRoute = new Map();
      for (const r of rows) {
        const a = byRoute.get(r.route) || { route: r.route, n: 0, c2: 0, c4: 0, c5: 0 };
        a.n += r.n;
        const k = `c${String(r.status)[0]}`;
        if (k in a) a[k] += r.n;
        byRoute.set(r.route, a);
      }
      const sorted = [...byRoute.values()].sort((x, y) => y.n - x.n).slice(0, 30);
      const rate = (a) => {
        if (!before) return '—';
        const prev = before.counts.get(a.route) || 0;
        return fmtNum((a.n - prev) / Math.max(0.001, (now - before.at) / 1000), 2);
      };
      box.replaceChildren(table(['route', 'requests', '2xx', '4xx', '5xx', 'perSecond'],
        sorted.map((a) => [el('code', {}, a.route), String(a.n), String(a.c2), String(a.c4), String(a.c5), rate(a)])));
      before = { at: now, counts: new Map(sorted.map((a) => [a.route, a.n])) };
    } catch (e) {
      box.textContent = t('failed', { msg: e.message });
    }
    try {
      const r = await get('/keys');
      keys.replaceChildren(table(['keyName', 'usedToday', 'quota'],
        r.keys.filter((k) => !k.revoked_at).map((k) => [k.name, String(k.used_today), String(k.quota)])));
    } catch (e) {
      keys.textContent = t('failed', { msg: e.message });
    }
    if (!stopped) timer = setTimeout(load, STATS_MS);
  }
  load();
  return {
    node: section('usage', box, el('h3', {}, t('keyUsage')), keys),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export function render(panel) {
  const stats = statsPart();
  panel.replaceChildren(auditPart(), stats.node);
  return () => stats.stop();
}
