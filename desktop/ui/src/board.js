// The dispatch board (调度台): cases by stage and deadline, a case page with its transitions and
// the office's actions.
import { invoke, $, esc, state, on, showError, registerView, openView } from './core.js';
import { t, lang, num, dateText, stateLabel, actionLabel } from './i18n.js';
import { updateCaseMarkers } from './map.js';

/** The open case page's document (re-rendered when the language changes). */
let shown = null;

// ---------------------------------------------------------------------------------------------
// Dispatch board

/** Reloads the board; `reopen`: also reloads the open case page (not after an action, whose
 * answer already rendered it: a second render would replace the page under the user's hand). */
export async function loadBoard(reopen = true) {
  showError('main-error', null);
  try {
    state.board = await invoke('board');
  } catch (e) {
    showError('main-error', e);
    return;
  }
  renderBoard();
  updateCaseMarkers();
  if (reopen && state.selected) await openCase(state.selected);
}

function renderBoard() {
  const b = state.board;
  const el = $('board');
  if (!b || b.columns.length === 0) {
    el.innerHTML = `<p class="empty" data-testid="board-empty">${esc(t('board_empty'))}</p>`;
    return;
  }
  // A column's cases share its state: the first one's English label is the column's.
  el.innerHTML = b.columns
    .map(
      (col) => `<section class="column" data-state="${esc(col.state)}">
        <h2><span class="col-label">${esc(stateLabel(col.state, col.label, col.cases[0] && col.cases[0].state_label_en))}</span><span>${num(col.cases.length)}</span></h2>
        ${col.cases
          .map(
            (c) => `<div class="card${c.overdue ? ' overdue' : ''}${c.id === state.selected ? ' selected' : ''}"
                 data-case-id="${esc(c.id)}" data-case-no="${esc(c.case_no)}" data-testid="case-card">
              <div class="no">${esc(c.case_no)}</div>
              <div class="desc">${esc(c.description || c.class || '')}</div>
              <div class="due">${esc(c.stage_deadline ? `${t(c.overdue ? 'overdue' : 'deadline')} ${dateText(c.stage_deadline)}` : t('no_deadline'))}</div>
            </div>`,
          )
          .join('')}
      </section>`,
    )
    .join('') + (b.more ? `<p class="empty">${esc(t('board_more'))}</p>` : '');
  for (const card of el.querySelectorAll('.card')) card.addEventListener('click', () => openCase(card.dataset.caseId));
}

async function openCase(id) {
  state.selected = id;
  for (const card of document.querySelectorAll('.card')) card.classList.toggle('selected', card.dataset.caseId === id);
  try {
    renderCase(await invoke('case_page', { id }));
  } catch (e) {
    showError('main-error', e);
  }
}

/** The actions to offer: what the server says this user may do now (`c.actions`), else the
 * office's usual set (an older server). */
function offers(c) {
  if (c.actions && c.actions.length) return c.actions;
  return state.actions.map(([action, label]) => ({ action, label, label_en: '', fields: action === 'dispatch' ? ['assignee'] : [] }));
}

/** Photos before handling (the report, checks before 处置) and after (处置 and later). */
function photos(c) {
  const handled = c.transitions.findIndex((x) => x.action === 'handle');
  const before = [];
  const after = [];
  c.transitions.forEach((x, i) => (handled >= 0 && i >= handled ? after : before).push(...(x.photos || [])));
  const img = (sha) =>
    `<a href="${MAP_BASE}/sync/blobs/${esc(sha)}" target="_blank"><img src="${MAP_BASE}/sync/blobs/${esc(sha)}" alt="${esc(sha.slice(0, 8))}" loading="lazy"></a>`;
  if (!before.length && !after.length) return `<p class="empty" data-testid="photos-none">${esc(t('photos_none'))}</p>`;
  return `<div class="photos"><div data-testid="photos-before"><h4>${esc(t('photos_before'))}</h4>${before.map(img).join('') || '—'}</div>
    <div data-testid="photos-after"><h4>${esc(t('photos_after'))}</h4>${after.map(img).join('') || '—'}</div></div>`;
}

function renderCase(c, keep) {
  shown = c;
  const el = $('case');
  el.hidden = false;
  const loc = c.location && c.location.coordinates ? c.location.coordinates.map((v) => v.toFixed(6)).join(', ') : '—';
  const acts = offers(c);
  const needs = (f) => acts.some((a) => (a.fields || []).includes(f));
  const noteFor = acts.filter((a) => (a.fields || []).includes('note')).map((a) => actionLabel(a.action, a.label, a.label_en));
  const dt = (key) => `<dt>${esc(t(key))}</dt>`;
  el.innerHTML = `<h2 data-testid="case-no">${esc(t('case_title', { no: c.case_no }))}</h2>
    <dl>
      ${dt('case_state')}<dd data-testid="case-state" data-state="${esc(c.state)}">${esc(stateLabel(c.state, c.state_label, c.state_label_en))}</dd>
      ${dt('deadline')}<dd data-testid="case-deadline" class="${c.overdue ? 'overdue-text' : ''}">${esc(dateText(c.stage_deadline))}${c.overdue ? esc(t('overdue_paren')) : ''}</dd>
      ${dt('case_assignee')}<dd data-testid="case-assignee">${esc(c.assignee || '—')}</dd>
      ${dt('case_class')}<dd>${esc([c.class_kind, c.class].filter(Boolean).join(' ') || '—')}</dd>
      ${dt('case_description')}<dd>${esc(c.description || '—')}</dd>
      ${dt('case_source')}<dd>${esc(c.source)}${c.source_ref ? esc(t('paren', { x: c.source_ref })) : ''}</dd>
      ${dt('case_location')}<dd><a href="#" id="case-locate" data-testid="case-locate">${esc(loc)}</a></dd>
      ${c.route ? `${dt('case_route')}<dd data-testid="case-route">${esc(c.route)}</dd>` : ''}
    </dl>
    <div class="actions" data-testid="case-actions">
      ${needs('assignee') ? `<label><span class="lbl">${esc(t('dispatch_to'))}</span><input id="assignee" data-testid="assignee" placeholder="${esc(t('assignee_ph'))}" value="${esc(keep ? keep.assignee : c.route || '')}"></label>
      <div id="assignee-tasks" data-testid="assignee-tasks" class="assignee-tasks"></div>` : '<input id="assignee" type="hidden">'}
      <label><span class="lbl">${esc(t('note'))}${noteFor.length ? esc(t('note_required', { actions: noteFor.join(t('list_sep')) })) : ''}</span> <input id="note" data-testid="note" value="${esc(keep ? keep.note : '')}"></label>
      ${acts.length ? acts.map((a) => `<button type="button" data-action="${esc(a.action)}" title="${esc(lang() === 'en' ? a.label || a.action : a.label_en || a.action)}">${esc(actionLabel(a.action, a.label, a.label_en))}</button>`).join('') : `<p class="empty" data-testid="no-actions">${esc(t('no_actions'))}</p>`}
    </div>
    <p class="error" id="case-error" role="alert">${esc(keep ? keep.error : '')}</p>
    <h3>${esc(t('photos'))}</h3>
    ${photos(c)}
    <h3>${esc(t('transitions'))}</h3>
    <table data-testid="transitions"><tr>${['col_time', 'col_action', 'col_actor', 'col_state', 'col_assignee', 'col_note'].map((k) => `<th>${esc(t(k))}</th>`).join('')}</tr>
      ${c.transitions
        .map(
          (x) => `<tr><td>${esc(dateText(x.at))}</td><td>${esc(x.action)}</td><td>${esc(x.actor)}</td>
            <td>${esc(x.from)} → ${esc(x.to)}</td><td>${esc(x.assignee || '')}</td><td>${esc(x.note || '')}</td></tr>`,
        )
        .join('')}
    </table>`;
  for (const b of el.querySelectorAll('button[data-action]')) {
    b.addEventListener('click', () => act(c.id, b.dataset.action));
  }
  const input = el.querySelector('input[data-testid=assignee]');
  if (input) {
    let timer = null;
    const show = () => showTasks(input.value.trim(), c.id);
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(show, 300);
    });
    if (input.value.trim()) show();
  }
  $('case-locate').addEventListener('click', async (ev) => {
    ev.preventDefault();
    if (!c.location || c.location.type !== 'Point') return;
    await openView('map');
    if (state.map) state.map.jumpTo({ center: c.location.coordinates, zoom: 17 });
  });
}

/** The assignee's current tasks under the dispatch field (their load, before sending more). */
async function showTasks(who, caseId) {
  const box = $('assignee-tasks');
  if (!box) return;
  if (!who) {
    box.innerHTML = '';
    return;
  }
  try {
    const tasks = (await invoke('assignee_tasks', { assignee: who })).filter((x) => x.id !== caseId);
    const overdue = tasks.filter((x) => x.overdue).length;
    const load = esc(t('assignee_load', { who, n: num(tasks.length) }));
    const late = overdue ? esc(t('assignee_overdue', { n: '\u0000' })).replace('\u0000', `<b class="overdue-text">${num(overdue)}</b>`) : '';
    box.innerHTML = `<p data-testid="assignee-load">${load}${late}</p>
      <ul>${tasks
        .slice(0, 10)
        .map((x) => `<li class="${x.overdue ? 'overdue-text' : ''}">${esc(x.case_no)} ${esc(stateLabel(x.state, x.state_label, x.state_label_en))} ${esc(x.description || '')} · ${esc(dateText(x.stage_deadline))}</li>`)
        .join('')}</ul>`;
  } catch (e) {
    box.textContent = String(e);
  }
}

async function act(id, action) {
  showError('case-error', null);
  const assignee = $('assignee').value.trim() || null;
  const note = $('note').value.trim() || null;
  for (const b of document.querySelectorAll('button[data-action]')) b.disabled = true;
  try {
    renderCase(await invoke('case_action', { id, action, assignee, note }));
    await loadBoard(false);
  } catch (e) {
    showError('case-error', e);
    for (const b of document.querySelectorAll('button[data-action]')) b.disabled = false;
  }
}


/** The map's scheme (`skmap://localhost`; photos are read through it with the session). */
const MAP_BASE = navigator.userAgent.includes('Windows') ? 'http://skmap.localhost' : 'skmap://localhost';

/** A new language: the board and the open case page again, what was typed kept. */
function relabel() {
  if (!state.session) return;
  if (state.board) renderBoard();
  if (shown && !$('case').hidden) {
    const val = (id) => ($(id) ? $(id).value : '');
    const keep = { assignee: val('assignee'), note: val('note'), error: $('case-error') ? $('case-error').textContent : '' };
    renderCase(shown, keep);
  }
}

on('lang', relabel);
on('signed-out', () => {
  shown = null;
});
registerView('board', { show: () => {} });
$('refresh').addEventListener('click', () => loadBoard());
