// 分析 (analysis, issue 19) on the desktop map: the web map's panel (sync-server/http/web/src/
// analysis.js — one implementation for both clients) over the map view, opened with its button.
// It reads the processes, their descriptions, the job statuses and the results through the map's
// `skmap:` scheme (time.js's adapter); starting a job and cancelling one go through the Rust side
// (`analysis_execute`, `analysis_dismiss`), so the page never holds the token. Results become
// layers of the map with a legend; replays animate there.
import { createAnalysis } from '../../../sync-server/http/web/src/analysis.js';
import { invoke, $, on } from './core.js';
import { t } from './i18n.js';
import { adapter as reader } from './time.js';

const adapter = {
  json: (path) => reader.json(path),
  execute: (process, inputs) => invoke('analysis_execute', { process, inputs }),
  dismiss: (job) => invoke('analysis_dismiss', { job }),
};

let panel = null;
let box = null;
let button = null;

function mount(map) {
  const view = $('view-map');
  if (!view) return;
  if (!button) {
    button = document.createElement('button');
    button.type = 'button';
    button.id = 'analysis-toggle';
    button.dataset.testid = 'analysis-toggle';
    view.append(button);
    box = document.createElement('aside');
    box.id = 'analysis-panel';
    box.hidden = true;
    view.append(box);
    button.addEventListener('click', () => toggle().catch((e) => (box.textContent = String(e.message || e))));
  }
  button.textContent = t('sk_analysis');
  // A new map (signed in again): a new panel over it.
  panel = createAnalysis(box, { map, adapter, t, signedIn: () => true });
  if (!box.hidden) panel.open().catch(() => {});
}

/** Opens (or closes) the panel; resolves with its handle once its process list is read. */
async function toggle(on = box.hidden) {
  box.hidden = !on;
  button.setAttribute('aria-pressed', String(on));
  if (on && panel && !panel.opened) {
    panel.opened = true;
    await panel.open();
  }
  return panel;
}

on('map-ready', mount);
on('lang', () => {
  if (button) button.textContent = t('sk_analysis');
});
on('signed-out', () => {
  if (panel) panel.clear();
  panel = null;
  if (box) box.hidden = true;
});

// What the end-to-end test drives: the panel (opened), as the web map's `shikong.analysis`.
function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    analysis: (open = true) => toggle(open),
  });
}
setTimeout(hooks, 0);
