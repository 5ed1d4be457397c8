// The analysis panel (分析, issue 19), shared by the web map and the desktop app: the processes of
// OGC API – Processes (GET /processes), a form built from the chosen one's input schemas
// (processform.js), run as an asynchronous job (`Prefer: respond-async`), its status polled
// (GET /jobs/{id}) into a progress bar with the server's message and a cancel button
// (DELETE /jobs/{id}), and when it succeeds its result (GET /jobs/{id}/results) added to the map
// as a GeoJSON layer coloured by the column the process added, with a legend (resultstyle.js);
// `replay` results are animated instead (replay.js). The caller's past jobs (GET /jobs) are
// listed and each successful one can be shown again.
//
// The host hands it an adapter: `json(path)` reads the server, `execute(process, inputs)` posts
// an asynchronous execution and `dismiss(jobID)` cancels a job, each answering the job's
// `statusInfo` (the browser with its bearer token; the desktop through its Rust side, so the token
// never reaches the page), or throwing an Error with the problem's detail. Its words come from
// `opts.t` (labels.js).
//
// DOM contract (tests rely on it): the process select `[data-testid=process]`, the form
// `[data-testid=process-form]` (controls per processform.js), the run button
// `[data-testid=run]`, the job box `[data-testid=job]` with `data-status`, its progress bar
// `progress[data-testid=job-progress]`, message `[data-testid=job-message]` and cancel button
// `[data-testid=job-cancel]`, the legend `[data-testid=analysis-legend]` (rows `li[data-value]`),
// the past jobs `[data-testid=jobs]` (rows `li[data-job]` with `data-status`; a failed one
// with its reason in `[data-testid=job-failure]`). A failed job's message is the problem the
// server answers at its results (detail and the input at fault), not only a status word.

import { zh } from './labels.js';
import { buildProcessForm } from './processform.js';
import { resultStyle, resultLayers } from './resultstyle.js';
import { createReplay } from './replay.js';

const FINAL = new Set(['successful', 'failed', 'dismissed']);

const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Mounts the panel in `container`. `opts`: `map` (MapLibre), `adapter`, `t`, `pollMs` (default
 * 500), `signedIn()` (whether runs are possible), `collection()` (a layer to preselect).
 */
export function createAnalysis(container, opts) {
  const { map, adapter } = opts;
  const t = opts.t || zh;
  const pollMs = opts.pollMs ?? 500;
  const signedIn = opts.signedIn || (() => true);
  container.classList.add('sk-analysis');
  container.replaceChildren();

  const head = el('div', { class: 'sk-an-head' });
  const select = el('select', { 'data-testid': 'process', 'aria-label': t('sk_process') });
  const about = el('p', { class: 'sk-an-about' });
  head.append(el('label', {}, `${t('sk_process')} `), select);
  const form = el('form', { 'data-testid': 'process-form', class: 'sk-an-form' });
  const run = el('button', { type: 'submit', 'data-testid': 'run' }, t('sk_run'));
  const error = el('p', { class: 'sk-an-error', role: 'alert' });
  const job = el('div', { 'data-testid': 'job', class: 'sk-an-job', hidden: '' });
  const jobTitle = el('div', { class: 'sk-an-job-title' });
  const bar = el('progress', { 'data-testid': 'job-progress', max: 100, value: 0 });
  const message = el('div', { 'data-testid': 'job-message', class: 'sk-an-message' });
  const cancel = el('button', { type: 'button', 'data-testid': 'job-cancel' }, t('sk_cancel'));
  job.append(jobTitle, bar, message, cancel);
  const results = el('div', { 'data-testid': 'analysis-results', class: 'sk-an-results' });
  const legend = el('div', { 'data-testid': 'analysis-legend', class: 'sk-an-legend', hidden: '' });
  const replayBox = el('div', { 'data-testid': 'replay', class: 'sk-an-replay', hidden: '' });
  const jobsHead = el('h4', {}, t('sk_jobs'));
  const jobsList = el('ul', { 'data-testid': 'jobs', class: 'sk-an-jobs' });
  container.append(head, about, form, error, job, results, legend, replayBox, jobsHead, jobsList);

  let processes = [];
  let current = null; // { description, form }
  let running = null; // { id, cancelled }
  const shown = new Map(); // jobID → { source, process, count, style }
  const replay = createReplay(replayBox, { map, t });
  const state = { lastStatus: null, polls: 0 };

  const titleOf = (id) => (processes.find((p) => p.id === id) || {}).title || id;

  // The process whose form is shown or on its way. Choosing it again keeps the form (and what
  // the user typed); a description that arrives after another process was chosen is dropped, so
  // two quick choices cannot leave the earlier form over the later one.
  let choosing = null; // { id, done }
  function choose(id) {
    if (choosing && choosing.id === id) return choosing.done;
    const mine = { id };
    mine.done = (async () => {
      error.textContent = '';
      let description;
      try {
        description = await adapter.json(`/processes/${encodeURIComponent(id)}`);
      } catch (err) {
        if (choosing === mine) choosing = null;
        throw err;
      }
      if (choosing !== mine) return;
      about.textContent = description.description || '';
      const built = buildProcessForm(form, description, {
        adapter,
        t,
        collection: opts.collection ? opts.collection() : null,
      });
      form.append(run);
      current = { description, form: built };
      sessionNote();
      await built.ready;
    })();
    choosing = mine;
    return mine.done;
  }

  function showStatus(s) {
    state.lastStatus = s;
    job.hidden = false;
    job.dataset.status = s.status;
    job.dataset.job = s.jobID;
    jobTitle.textContent = `${titleOf(s.processID)} · ${t(`sk_job_${s.status}`)}`;
    bar.value = s.progress ?? 0;
    message.textContent = s.message || '';
    cancel.hidden = FINAL.has(s.status);
  }

  /** The problem a failed job answers at GET /jobs/{id}/results (null when unreadable). */
  async function problemOf(s) {
    try {
      await adapter.json(`/jobs/${encodeURIComponent(s.jobID)}/results`);
    } catch (err) {
      // the adapters' Error: `STATUS BODY` with the problem+json body
      const text = String((err && err.message) || err);
      try {
        return JSON.parse(text.slice(text.indexOf(' ') + 1));
      } catch {
        return null;
      }
    }
    return null;
  }

  /** Why a job failed, in words: the problem's detail (else the status message) and where. */
  function failureText(s, problem) {
    const detail = (problem && problem.detail) || s.message || t('sk_job_failed');
    const where = problem && (problem.input || problem.parameter);
    return t('sk_job_failure', { e: where ? t('sk_failed_input', { e: detail, w: where }) : detail });
  }

  /** Removes a shown result from the map (its layers and source) and its row. */
  function removeResult(jobID) {
    const r = shown.get(jobID);
    if (!r) return;
    for (const l of resultLayers(r.source, r.style)) if (map.getLayer(l.id)) map.removeLayer(l.id);
    if (map.getSource(r.source)) map.removeSource(r.source);
    shown.delete(jobID);
    renderResults();
  }

  function renderLegend(r) {
    const rows = r ? r.style.legend(t) : [];
    legend.hidden = rows.length === 0;
    legend.replaceChildren();
    if (!rows.length) return;
    legend.append(el('h4', {}, `${t('sk_legend')} · ${r.style.column}`));
    const ul = el('ul');
    for (const row of rows) {
      const li = el('li', { 'data-value': row.value });
      const sw = el('span', { class: 'sk-swatch' });
      sw.style.background = row.color;
      li.append(sw, `${row.label}${row.count === null ? '' : ` (${row.count})`}`);
      ul.append(li);
    }
    legend.append(ul);
  }

  function renderResults() {
    results.replaceChildren();
    let last = null;
    for (const [jobID, r] of shown) {
      const row = el('div', { class: 'sk-an-result', 'data-job': jobID });
      const remove = el('button', { type: 'button' }, t('sk_remove'));
      remove.addEventListener('click', () => removeResult(jobID));
      row.append(el('span', {}, t('sk_result_layer', { process: titleOf(r.process), n: r.count })), remove);
      results.append(row);
      last = r;
    }
    renderLegend(last);
  }

  /** Adds the features of a finished job to the map (once per job), coloured by their column. */
  function addResult(jobID, process, fc) {
    removeResult(jobID);
    const features = fc.features || [];
    const source = `analysis-${jobID}`;
    const style = resultStyle(features);
    map.addSource(source, { type: 'geojson', data: { type: 'FeatureCollection', features } });
    for (const l of resultLayers(source, style)) map.addLayer(l);
    shown.set(jobID, { source, process, count: features.length, style });
    renderResults();
    fit(features);
  }

  function fit(features) {
    let b = null;
    const visit = (c) => {
      if (typeof c[0] === 'number') {
        b = b ? [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])] : [c[0], c[1], c[0], c[1]];
      } else c.forEach(visit);
    };
    for (const f of features) if (f.geometry && f.geometry.coordinates) visit(f.geometry.coordinates);
    if (b && !map.getBounds().contains([b[0], b[1]])) map.fitBounds(b, { padding: 40, maxZoom: 16, duration: 0 });
  }

  /** Reads a successful job's result and shows it (a layer, or the replay animation). */
  async function showResult(s) {
    const out = await adapter.json(`/jobs/${encodeURIComponent(s.jobID)}/results`);
    const body = out && out.result && !out.type && !out.steps ? out.result : out; // a results document
    if (Array.isArray(body.steps)) {
      replay.load(s.jobID, body);
      return;
    }
    addResult(s.jobID, s.processID, body);
  }

  async function poll(id) {
    for (;;) {
      const s = await adapter.json(`/jobs/${encodeURIComponent(id)}`);
      state.polls += 1;
      showStatus(s);
      if (FINAL.has(s.status)) return s;
      await sleep(pollMs);
    }
  }

  async function execute(e) {
    if (e) e.preventDefault();
    error.textContent = '';
    if (!signedIn()) {
      error.textContent = t('sk_sign_in_first');
      return null;
    }
    if (!current || running) return null;
    const id = current.description.id;
    const inputs = current.form.values();
    run.disabled = true;
    try {
      const s = await adapter.execute(id, inputs);
      running = { id: s.jobID };
      showStatus(s);
      const done = await poll(s.jobID);
      if (done.status === 'successful') await showResult(done);
      else if (done.status === 'failed') message.textContent = failureText(done, await problemOf(done));
      return done;
    } catch (err) {
      error.textContent = t('sk_run_failed', { e: err.message || err });
      return null;
    } finally {
      running = null;
      run.disabled = !signedIn();
      refreshJobs().catch(() => {});
    }
  }

  /** Runs need a signed-in account: say so and disable the button until there is one. */
  function sessionNote() {
    const ok = signedIn();
    if (!running) run.disabled = !ok;
    if (!ok) error.textContent = t('sk_sign_in_first');
    else if (error.textContent === t('sk_sign_in_first')) error.textContent = '';
  }

  async function refreshJobs() {
    sessionNote();
    if (!signedIn()) {
      jobsList.replaceChildren(el('li', { class: 'sk-an-empty' }, t('sk_sign_in_first')));
      return [];
    }
    const doc = await adapter.json('/jobs');
    const jobs = (doc.jobs || []).slice().sort((a, b) => (Date.parse(b.created) || 0) - (Date.parse(a.created) || 0));
    jobsList.replaceChildren();
    if (!jobs.length) jobsList.append(el('li', { class: 'sk-an-empty' }, t('sk_no_jobs')));
    for (const s of jobs) {
      const li = el('li', { 'data-job': s.jobID, 'data-status': s.status });
      li.append(el('span', {}, `${titleOf(s.processID)} · ${t(`sk_job_${s.status}`)} · ${String(s.created).slice(0, 19).replace('T', ' ')}`));
      if (s.status === 'successful') {
        const b = el('button', { type: 'button' }, t('sk_show_result'));
        b.addEventListener('click', () => showResult(s).catch((err) => (error.textContent = t('sk_run_failed', { e: err.message || err }))));
        li.append(b);
      } else if (s.status === 'failed') {
        const why = failureText(s, null);
        li.append(el('div', { 'data-testid': 'job-failure', class: 'sk-an-failure', title: why }, why));
      }
      jobsList.append(li);
    }
    return jobs;
  }

  async function dismiss() {
    const id = (running && running.id) || (state.lastStatus && state.lastStatus.jobID);
    if (!id) return;
    try {
      showStatus(await adapter.dismiss(id));
    } catch (err) {
      error.textContent = t('sk_run_failed', { e: err.message || err });
    }
  }

  form.addEventListener('submit', execute);
  cancel.addEventListener('click', dismiss);
  select.addEventListener('change', () => choose(select.value).catch((err) => (error.textContent = String(err.message || err))));

  /** Reads the process list and builds the first (or `id`'s) form. */
  async function open(id) {
    const doc = await adapter.json('/processes');
    processes = doc.processes || [];
    select.replaceChildren(...processes.map((p) => el('option', { value: p.id }, p.title || p.id)));
    const first = id && processes.some((p) => p.id === id) ? id : processes[0] && processes[0].id;
    if (first) {
      select.value = first;
      await choose(first);
    }
    await refreshJobs().catch(() => {});
  }

  return {
    open,
    /** Chooses a process and builds its form; resolves when its layer lists are read. */
    choose: async (id) => {
      select.value = id;
      await choose(id);
    },
    /** After signing in or out: the run button, the note and the form's layer lists follow. */
    sessionChanged: async () => {
      sessionNote();
      if (current) await current.form.refreshLayers();
    },
    /** Runs the form as it is; resolves with the final status (null when it could not start). */
    run: () => execute(),
    cancel: dismiss,
    refreshJobs,
    /** What tests and hosts read: the shown results, the last status, the replay. */
    state: () => ({
      status: state.lastStatus,
      polls: state.polls,
      results: [...shown].map(([job, r]) => ({ job, source: r.source, process: r.process, count: r.count, column: r.style.column })),
      legend: [...legend.querySelectorAll('li[data-value]')].map((li) => ({ value: li.dataset.value, text: li.textContent })),
      replay: replay.state(),
    }),
    /** Removes every shown result (signing out). */
    clear: () => {
      for (const id of [...shown.keys()]) removeResult(id);
      replay.clear();
      job.hidden = true;
    },
  };
}
