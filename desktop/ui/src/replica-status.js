// The replica view's progress bar and status lines (本地副本, issue 16): the commands'
// `replica-progress` events drawn as one bar, and the lines that say an outcome kept as functions
// of the language, so a language switch says them again (`relabelStatus`).
import { $ } from './core.js';
import { t, num } from './i18n.js';

/** The progress bar's last report and the text after it (said again when the language changes). */
let lastProgress = null;
let progressExtra = null;

export function showProgress(p) {
  const box = $('rep-progress');
  if (!box) return;
  box.hidden = false;
  lastProgress = p;
  progressExtra = null;
  const name = (x) => (TASK_NAMES.includes(x) ? t(`rp_${x}`) : x);
  const pct = p.total > 0 ? Math.round((100 * p.done) / p.total) : p.step === 'done' ? 100 : null;
  const bar = $('rep-bar');
  if (pct === null) bar.removeAttribute('value');
  else bar.value = pct;
  $('rep-progress-text').textContent =
    `${name(p.task)} · ${name(p.step)}${p.total > 0 ? ` ${num(p.done)}/${num(p.total)}` : p.done ? ` ${num(p.done)}` : ''}`;
  box.dataset.task = p.task;
  box.dataset.step = p.step;
  box.dataset.pct = pct === null ? '' : String(pct);
}

/** Tasks and steps the progress events name (`rp_NAME` texts). */
const TASK_NAMES = ['download', 'sync', 'import', 'export', 'replica', 'basemap', 'done', 'uploading', 'pushing', 'pulling', 'verifying', 'reading', 'geocoding', 'writing'];

if (window.__TAURI__ && window.__TAURI__.event) window.__TAURI__.event.listen('replica-progress', (e) => showProgress(e.payload));

/** The bar at 100 %, `extra()` (the outcome, in the current language) after it. */
export function finishProgress(task, extra) {
  showProgress({ task, step: 'done', done: 1, total: 1 });
  progressExtra = extra || null;
  const text = extra ? extra() : '';
  $('rep-progress-text').textContent += text ? ` · ${text}` : '';
}

/** Status lines' texts as functions of the language, said again when it changes. */
const said = {};
export function say(id, text) {
  said[id] = text;
  const el = $(id);
  if (el) el.textContent = text ? text() : '';
}

export const fail = (id) => (e) => {
  delete said[id];
  const el = $(id);
  if (el) el.textContent = String(e);
};
export const clear = (id) => {
  delete said[id];
  const el = $(id);
  if (el) el.textContent = '';
};

/** Says the progress line and the status lines again in the current language. */
export function relabelStatus() {
  if (lastProgress) {
    const extra = progressExtra;
    showProgress(lastProgress);
    progressExtra = extra;
    const text = extra ? extra() : '';
    if (text) $('rep-progress-text').textContent += ` · ${text}`;
  }
  for (const [id, text] of Object.entries(said)) {
    const el = $(id);
    if (el && text) el.textContent = text();
  }
}
