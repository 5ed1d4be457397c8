// The dispatch board (调度台): cases by stage and deadline, a case page with its transitions and
// the office's actions.
import { invoke, $, esc, when, state, showError, registerView, openView } from './core.js';
import { updateCaseMarkers } from './map.js';

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
    el.innerHTML = '<p class="empty" data-testid="board-empty">没有待办案件</p>';
    return;
  }
  el.innerHTML = b.columns
    .map(
      (col) => `<section class="column" data-state="${esc(col.state)}">
        <h2><span>${esc(col.label)}</span><span>${col.cases.length}</span></h2>
        ${col.cases
          .map(
            (c) => `<div class="card${c.overdue ? ' overdue' : ''}${c.id === state.selected ? ' selected' : ''}"
                 data-case-id="${esc(c.id)}" data-case-no="${esc(c.case_no)}" data-testid="case-card">
              <div class="no">${esc(c.case_no)}</div>
              <div class="desc">${esc(c.description || c.class || '')}</div>
              <div class="due">${c.stage_deadline ? `${c.overdue ? '已超期 ' : '期限 '}${esc(when(c.stage_deadline))}` : '无时限'}</div>
            </div>`,
          )
          .join('')}
      </section>`,
    )
    .join('') + (b.more ? '<p class="empty">案件较多，仅显示前 500 件</p>' : '');
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
  return state.actions.map(([action, label]) => ({ action, label, fields: action === 'dispatch' ? ['assignee'] : [] }));
}

/** Photos before handling (the report, checks before 处置) and after (处置 and later). */
function photos(c) {
  const handled = c.transitions.findIndex((t) => t.action === 'handle');
  const before = [];
  const after = [];
  c.transitions.forEach((t, i) => (handled >= 0 && i >= handled ? after : before).push(...(t.photos || [])));
  const img = (sha) =>
    `<a href="${MAP_BASE}/sync/blobs/${esc(sha)}" target="_blank"><img src="${MAP_BASE}/sync/blobs/${esc(sha)}" alt="${esc(sha.slice(0, 8))}" loading="lazy"></a>`;
  if (!before.length && !after.length) return '<p class="empty">没有照片</p>';
  return `<div class="photos"><div data-testid="photos-before"><h4>处置前</h4>${before.map(img).join('') || '—'}</div>
    <div data-testid="photos-after"><h4>处置后</h4>${after.map(img).join('') || '—'}</div></div>`;
}

function renderCase(c) {
  const el = $('case');
  el.hidden = false;
  const loc = c.location && c.location.coordinates ? c.location.coordinates.map((v) => v.toFixed(6)).join(', ') : '—';
  const acts = offers(c);
  const needs = (f) => acts.some((a) => (a.fields || []).includes(f));
  const noteFor = acts.filter((a) => (a.fields || []).includes('note')).map((a) => a.label);
  el.innerHTML = `<h2 data-testid="case-no">案件 ${esc(c.case_no)}</h2>
    <dl>
      <dt>状态</dt><dd data-testid="case-state" data-state="${esc(c.state)}">${esc(c.state_label)}</dd>
      <dt>期限</dt><dd class="${c.overdue ? 'overdue-text' : ''}">${esc(when(c.stage_deadline))}${c.overdue ? '（已超期）' : ''}</dd>
      <dt>处置人</dt><dd data-testid="case-assignee">${esc(c.assignee || '—')}</dd>
      <dt>类别</dt><dd>${esc([c.class_kind, c.class].filter(Boolean).join(' ') || '—')}</dd>
      <dt>描述</dt><dd>${esc(c.description || '—')}</dd>
      <dt>来源</dt><dd>${esc(c.source)}${c.source_ref ? `（${esc(c.source_ref)}）` : ''}</dd>
      <dt>位置</dt><dd><a href="#" id="case-locate" data-testid="case-locate">${esc(loc)}</a></dd>
      ${c.route ? `<dt>建议派往</dt><dd data-testid="case-route">${esc(c.route)}</dd>` : ''}
    </dl>
    <div class="actions" data-testid="case-actions">
      ${needs('assignee') ? `<label>派遣给（用户名，或 department:部门）<input id="assignee" data-testid="assignee" placeholder="li 或 department:排水队" value="${esc(c.route || '')}"></label>
      <div id="assignee-tasks" data-testid="assignee-tasks" class="assignee-tasks"></div>` : '<input id="assignee" type="hidden">'}
      <label>备注${noteFor.length ? `（${esc(noteFor.join('、'))}时必填）` : ''} <input id="note" data-testid="note"></label>
      ${acts.length ? acts.map((a) => `<button type="button" data-action="${esc(a.action)}" title="${esc(a.label_en || '')}">${esc(a.label)}</button>`).join('') : '<p class="empty" data-testid="no-actions">当前状态下您无可执行的操作</p>'}
    </div>
    <p class="error" id="case-error" role="alert"></p>
    <h3>照片</h3>
    ${photos(c)}
    <h3>流转记录</h3>
    <table data-testid="transitions"><tr><th>时间</th><th>动作</th><th>人员</th><th>状态</th><th>处置人</th><th>备注</th></tr>
      ${c.transitions
        .map(
          (t) => `<tr><td>${esc(when(t.at))}</td><td>${esc(t.action)}</td><td>${esc(t.actor)}</td>
            <td>${esc(t.from)} → ${esc(t.to)}</td><td>${esc(t.assignee || '')}</td><td>${esc(t.note || '')}</td></tr>`,
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
    const tasks = (await invoke('assignee_tasks', { assignee: who })).filter((t) => t.id !== caseId);
    const overdue = tasks.filter((t) => t.overdue).length;
    box.innerHTML = `<p data-testid="assignee-load">${esc(who)} 当前在办 ${tasks.length} 件${overdue ? `，其中超期 <b class="overdue-text">${overdue}</b> 件` : ''}</p>
      <ul>${tasks
        .slice(0, 10)
        .map((t) => `<li class="${t.overdue ? 'overdue-text' : ''}">${esc(t.case_no)} ${esc(t.state_label)} ${esc(t.description || '')} · ${esc(when(t.stage_deadline))}</li>`)
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

registerView('board', { show: () => {} });
$('refresh').addEventListener('click', () => loadBoard());
