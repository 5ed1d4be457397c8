// 目录采集: catalogues harvested into the platform's catalog (GET /harvests) with their record
// counts and latest runs; adding one (POST /harvests {url, type, title, every_minutes}), running
// one now and waiting for what it did (POST /harvests/{id}/run?wait=true), removing one with its
// records (DELETE /harvests/{id}).

import { del, latestReader, post } from './api.js';
import { t } from './labels.js';
import { el, field, fmtTime, section, statusLine, table } from './ui.js';

const TYPES = ['csw', 'ogcapi-records', 'wms', 'wmts', 'wfs', 'ogcapi-features'];
const enc = encodeURIComponent;

function runText(r) {
  if (!r) return t('never');
  if (!r.finished) return t('running', { t: fmtTime(r.started) });
  const counts = t('runCounts', { a: r.added, u: r.updated, r: r.removed, n: r.unchanged });
  return r.error ? `${counts} · ${t('failed', { msg: r.error })}` : counts;
}

export function render(panel) {
  const status = statusLine('harvest-status');
  const list = el('div', { 'data-testid': 'harvest-list' }, t('loading'));
  const read = latestReader();

  async function load() {
    try {
      const r = await read('/harvests');
      if (!r) return;
      list.replaceChildren(r.harvests.length === 0 ? el('p', {}, t('noHarvests')) : table(
        ['layerTitle', 'type', 'url', 'records', 'everyColumn', 'lastRun', 'actions'],
        r.harvests.map((h) => [
          h.title,
          h.type,
          el('code', {}, h.url),
          el('span', { 'data-testid': `records-${h.id}` }, String(h.records)),
          h.every_minutes ? String(h.every_minutes) : '—',
          el('span', { 'data-testid': `run-${h.id}` }, runText(h.last_run)),
          el('span', { class: 'actions' },
            el('button', { type: 'button', 'data-testid': `harvest-run-${h.id}`, onclick: async (ev) => {
              ev.target.disabled = true;
              status.ok(t('harvesting', { what: h.title }));
              try {
                const done = await post(`/harvests/${enc(h.id)}/run?wait=true`);
                if (done.run) status.ok(`${h.title}：${runText(done.run)}`);
                else status.ok(t('alreadyRunning', { what: h.title }));
              } catch (e) {
                status.fail(e);
              }
              await load();
            } }, t('runNow')),
            el('button', { type: 'button', onclick: async () => {
              if (!window.confirm(t('confirmDelete', { what: h.title }))) return;
              try {
                await del(`/harvests/${enc(h.id)}`);
                status.ok(t('deleted', { what: h.title }));
              } catch (e) {
                status.fail(e);
              }
              await load();
            } }, t('delete'))),
        ]),
        (i) => ({ 'data-harvest': r.harvests[i].id, 'data-title': r.harvests[i].title }),
      ));
    } catch (e) {
      list.textContent = '';
      status.fail(e);
    }
  }

  const url = el('input', { type: 'url', required: true, 'data-testid': 'harvest-url' });
  const type = el('select', { 'data-testid': 'harvest-type' }, TYPES.map((x) => el('option', { value: x }, x)));
  const title = el('input', { required: true, 'data-testid': 'harvest-title' });
  const every = el('input', { type: 'number', min: '1', max: '525600', step: '1', 'data-testid': 'harvest-every' });
  const form = el('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const body = { url: url.value.trim(), type: type.value, title: title.value.trim() };
    if (every.value.trim()) body.every_minutes = Number(every.value);
    try {
      const h = await post('/harvests', body);
      status.ok(`${h.title}：${h.id}`);
      form.reset();
      await load();
    } catch (e) {
      status.fail(e);
    }
  } }, field('url', url), field('type', type), field('layerTitle', title), field('everyMinutes', every),
  el('button', { type: 'submit', 'data-testid': 'harvest-add' }, t('add')));

  panel.replaceChildren(
    section('harvests', el('button', { type: 'button', onclick: load }, t('refresh')), status.node, list),
    section('addHarvest', form),
  );
  load();
}
