// 图层与权限: the layers (GET /collections), a layer's fields (its queryables) and its
// permission rules (GET/PUT/DELETE /admin/layers/{layer}/rules).

import { del, get, latestReader, put } from './api.js';
import { t } from './labels.js';
import { el, field, section, statusLine, table } from './ui.js';

const enc = encodeURIComponent;

/** The API lists a subject as words (`role office`, `group 排水队`, `authenticated users`);
 * it is set and removed in its parsed form (`role:office`, `group:排水队`, `authenticated`). */
export function subjectParam(s) {
  if (s === 'authenticated users') return 'authenticated';
  const m = /^(role|group) (.+)$/.exec(s);
  return m ? `${m[1]}:${m[2]}` : s;
}

export function render(panel) {
  const status = statusLine('layers-status');
  const list = el('ul', { class: 'layer-list', 'data-testid': 'layer-list' }, el('li', {}, t('loading')));
  const detail = el('div', { class: 'layer-detail', 'data-testid': 'layer-detail' }, t('pickLayer'));

  async function rulesOf(id, box) {
    const { rules } = await get(`/admin/layers/${enc(id)}/rules`);
    box.replaceChildren(rules.length === 0 ? el('p', {}, t('noRules')) : table(
      ['subject', 'grants', 'actions'],
      rules.map((r) => [subjectParam(r.subject), r.grants, el('button', { type: 'button', onclick: async () => {
        if (!window.confirm(t('confirmDelete', { what: subjectParam(r.subject) }))) return;
        try {
          await del(`/admin/layers/${enc(id)}/rules?subject=${enc(subjectParam(r.subject))}`);
          status.ok(t('saved'));
          await rulesOf(id, box);
        } catch (e) {
          status.fail(e);
        }
      } }, t('delete'))]),
    ));
  }

  async function open(c) {
    status.clear();
    for (const li of list.children) li.classList.toggle('selected', li.dataset.layer === c.id);
    const fields = el('div', {}, t('loading'));
    const rules = el('div', { 'data-testid': 'rules' }, t('loading'));
    const subject = el('input', { placeholder: t('subjectHint'), required: true });
    const grants = el('input', { placeholder: t('grantsHint'), required: true });
    const form = el('form', { class: 'row', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await put(`/admin/layers/${enc(c.id)}/rules`, { subject: subject.value.trim(), grants: grants.value.trim() });
        status.ok(t('saved'));
        form.reset();
        await rulesOf(c.id, rules);
      } catch (e) {
        status.fail(e);
      }
    } }, field('subject', subject), field('grants', grants), el('button', { type: 'submit' }, t('setRule')));
    detail.replaceChildren(
      el('h3', {}, `${c.title || c.id}（${c.id}）`),
      el('h4', {}, t('schema')), fields,
      el('h4', {}, t('rules')), rules, form,
    );
    try {
      const q = await get(`/collections/${enc(c.id)}/queryables`);
      const props = Object.entries(q.properties || {});
      fields.replaceChildren(table(['field', 'type', 'layerTitle'], props.map(([k, v]) => [
        k, v.format ? `${v.type || ''} (${v.format})` : (v.type || (v.$ref ? 'geometry' : '')), v.title || '',
      ])));
    } catch (e) {
      fields.textContent = e.message;
    }
    try {
      await rulesOf(c.id, rules);
    } catch (e) {
      rules.textContent = '';
      status.fail(e);
    }
  }

  const read = latestReader();
  async function load() {
    try {
      const r = await read('/collections');
      if (!r) return;
      const { collections } = r;
      // Layers only: the catalog (`itemType` record) is listed among the collections too.
      const layers = collections.filter((c) => (c.itemType || 'feature') === 'feature');
      list.replaceChildren(...layers.map((c) =>
        el('li', { 'data-layer': c.id }, el('button', { type: 'button', class: 'link', onclick: () => open(c) }, c.title || c.id), el('small', {}, ` ${c.id}`))));
    } catch (e) {
      list.replaceChildren();
      status.fail(e);
    }
  }

  panel.replaceChildren(section('tab_layers', status.node, el('div', { class: 'split' }, list, detail)));
  load();
}
