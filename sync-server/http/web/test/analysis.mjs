// Drives the web map's analysis panel (issue 19) in Debian's headless Chromium (playwright-core):
// signs in with the page's form, opens 分析, reads the process list and the form built from the
// hotspot description, runs hotspot (Gi*) and DBSCAN on the grid layer as jobs through the form,
// records the statuses and progress the panel showed, reads the result layers on the map
// (MapLibre's sources and rendered features) and the legends, replays the layer's last hour
// step by step, cancels a long job, and lists the past jobs. Prints one JSON object with what it
// saw; the Rust test (tests/analysis_browser.rs) asserts on it.
// Usage: node test/analysis.mjs BASE_URL OUT_DIR USER PASSWORD
import { launch, report } from './launch.mjs';
import { mkdirSync } from 'node:fs';

const [base, outDir, user, password] = process.argv.slice(2);
if (!base || !outDir || !user || !password) {
  console.error('usage: node test/analysis.mjs BASE_URL OUT_DIR USER PASSWORD');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const browser = await launch();
const result = { logs: [] };
const timeout = 120_000;

/** 'YYYY-MM-DDTHH:MM:SS' in Beijing time, `offsetMs` from now (a datetime-local value). */
function beijingLocal(offsetMs) {
  return new Date(Date.now() + offsetMs + 8 * 3600e3).toISOString().slice(0, 19);
}

await report(browser, result, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on('console', (m) => result.logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e}`));
  // Development only: serve the freshly built bundle instead of the one in the binary.
  if (process.env.SK_MAP_JS) await page.route('**/map/assets/map.js', (r) => r.fulfill({ path: process.env.SK_MAP_JS }));
  await page.goto(`${base}/map?center=114.359,30.519&zoom=13`);
  await page.waitForFunction(() => window.shikong || window.shikongError, null, { timeout });
  const err = await page.evaluate(() => window.shikongError || null);
  if (err) throw new Error(`page failed: ${err}`);

  // Anonymous: the panel opens but asks to sign in before running.
  await page.click('[data-testid=analysis-toggle]');
  await page.waitForSelector('[data-testid=process] option', { timeout, state: 'attached' });
  result.anonymous = await page.evaluate(() => ({
    note: document.querySelector('.sk-an-error').textContent,
    runDisabled: document.querySelector('[data-testid=run]').disabled,
  }));

  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => window.shikong.session().token, null, { timeout });
  await page.waitForFunction(() => !document.querySelector('[data-testid=run]').disabled, null, { timeout });
  await page.evaluate(() => window.shikong.idle(0));

  // Every status the job box shows, as the panel polls (a MutationObserver on it).
  await page.evaluate(() => {
    window.seen = [];
    const box = document.querySelector('[data-testid=job]');
    new MutationObserver(() => {
      const bar = box.querySelector('progress');
      const last = window.seen[window.seen.length - 1];
      const now = { job: box.dataset.job, status: box.dataset.status, progress: Number(bar.value) };
      if (!last || last.job !== now.job || last.status !== now.status || last.progress !== now.progress) window.seen.push(now);
    }).observe(box, { attributes: true, subtree: true, childList: true, characterData: true });
  });

  result.processes = await page.$$eval('[data-testid=process] option', (os) => os.map((o) => ({ id: o.value, title: o.textContent })));
  await page.selectOption('[data-testid=process]', 'hotspot');
  await page.waitForSelector('[data-testid=process-form] select[data-input=collection] option[value=manhole]', { timeout, state: 'attached' });
  await page.selectOption('select[data-input=collection]', 'manhole');
  await page.waitForSelector('select[data-input=field] option[value=depth]', { timeout, state: 'attached' });
  result.form = await page.evaluate(() => {
    const f = document.querySelector('[data-testid=process-form]');
    const opts = (sel) => [...f.querySelectorAll(`${sel} option`)].map((o) => o.value);
    return {
      inputs: [...f.querySelectorAll('[data-input]')].map((e) => e.dataset.input),
      fields: opts('select[data-input=field]'),
      weights: opts('select[data-input=weights]'),
      star: f.querySelector('input[data-input=star]').type,
      starChecked: f.querySelector('input[data-input=star]').checked,
      asOf: f.querySelector('input[data-input=as_of]').type,
    };
  });
  await page.selectOption('select[data-input=field]', 'depth');
  await page.selectOption('select[data-input=weights]', 'distance');
  await page.fill('input[data-input="weights.distance"]', '500');
  await page.click('[data-testid=run]');
  await page.waitForFunction(() => {
    const s = window.shikong.maps && document.querySelector('[data-testid=job]').dataset.status;
    return s === 'successful' || s === 'failed' || s === 'dismissed';
  }, null, { timeout });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=analysis-legend] li[data-value]').length > 0 || document.querySelector('[data-testid=job]').dataset.status !== 'successful', null, { timeout });
  await page.evaluate(() => window.shikong.idle(0));
  const hot = await page.evaluate(async () => {
    const a = await window.shikong.analysis(true);
    const st = a.state();
    const r = st.results[st.results.length - 1];
    const m = window.shikong.maps[0];
    const src = r && m.getSource(r.source);
    return {
      status: st.status,
      result: r,
      source: Boolean(src),
      sourceType: src && src.type,
      rendered: r ? window.shikong.rendered(0, [`${r.source}-point`]) : [],
      legend: st.legend,
      legendShown: !document.querySelector('[data-testid=analysis-legend]').hidden,
    };
  });
  result.hotspot = {
    status: hot.status && hot.status.status,
    message: hot.status && hot.status.message,
    result: hot.result,
    source: hot.source,
    sourceType: hot.sourceType,
    rendered: hot.rendered.length,
    bins: [...new Set(hot.rendered.map((f) => f.properties.gi_bin))].sort(),
    withZ: hot.rendered.filter((f) => typeof f.properties.gi_z === 'number').length,
    legend: hot.legend,
    legendShown: hot.legendShown,
  };
  result.hotspotSeen = await page.evaluate(() => window.seen.slice());
  await page.screenshot({ path: `${outDir}/analysis-hotspot.png` });

  // DBSCAN: categories of clusters, noise grey.
  await page.selectOption('[data-testid=process]', 'dbscan');
  await page.waitForSelector('[data-testid=process-form] input[data-input=eps]', { timeout, state: 'attached' });
  await page.waitForSelector('select[data-input=collection] option[value=manhole]', { timeout, state: 'attached' });
  await page.selectOption('select[data-input=collection]', 'manhole');
  await page.fill('input[data-input=eps]', '250');
  await page.fill('input[data-input=min_samples]', '5');
  const doneDb = await page.evaluate(async () => {
    const a = await window.shikong.analysis(true);
    const s = await a.run();
    await window.shikong.idle(0);
    const st = a.state();
    const r = st.results[st.results.length - 1];
    return { status: s && s.status, results: st.results, rendered: window.shikong.rendered(0, [`${r.source}-point`]).length, legend: st.legend, clusters: [...new Set(window.shikong.rendered(0, [`${r.source}-point`]).map((f) => f.properties.cluster))] };
  });
  result.dbscan = doneDb;
  await page.screenshot({ path: `${outDir}/analysis-dbscan.png` });

  // Replay of the last hour in 10-minute steps: empty at first, the grid at the end.
  await page.selectOption('[data-testid=process]', 'replay');
  await page.waitForSelector('[data-testid=process-form] input[data-input=interval]', { timeout, state: 'attached' });
  await page.waitForSelector('select[data-input=collection] option[value=manhole]', { timeout, state: 'attached' });
  await page.selectOption('select[data-input=collection]', 'manhole');
  // Set directly: Playwright's fill refuses a datetime-local value whose seconds are :00 (the
  // control drops them).
  const setValue = (sel, v) => page.$eval(sel, (e, x) => { e.value = x; e.dispatchEvent(new Event('input')); }, v);
  await setValue('input[data-input=from]', beijingLocal(-3600e3));
  await setValue('input[data-input=to]', beijingLocal(0));
  await page.fill('input[data-input=interval]', 'PT10M');
  await page.click('[data-testid=run]');
  await page.waitForSelector('[data-testid=replay]:not([hidden])', { timeout });
  const frame = async (i) => {
    await page.evaluate((v) => {
      const s = document.querySelector('[data-testid=replay-slider]');
      s.value = String(v);
      s.dispatchEvent(new Event('input'));
    }, i);
    await page.evaluate(() => window.shikong.idle(0));
    return page.evaluate(() => ({
      step: window.shikong.rendered(0, ['analysis-replay-point']).length,
      text: document.querySelector('[data-testid=replay-step]').textContent,
    }));
  };
  const steps = await page.evaluate(() => Number(document.querySelector('[data-testid=replay-slider]').max));
  result.replay = { steps, first: await frame(0), last: await frame(steps) };
  await page.screenshot({ path: `${outDir}/analysis-replay.png` });
  await page.click('[data-testid=replay-play]');
  result.replay.playing = await page.evaluate(async () => (await window.shikong.analysis(true)).state().replay.playing);
  await page.click('[data-testid=replay-play]');

  // Cancelling: a long job (many permutations), dismissed from the panel while it waits or runs.
  await page.selectOption('[data-testid=process]', 'hotspot');
  await page.waitForSelector('select[data-input=collection] option[value=manhole]', { timeout, state: 'attached' });
  await page.selectOption('select[data-input=collection]', 'manhole');
  await page.waitForSelector('select[data-input=field] option[value=depth]', { timeout, state: 'attached' });
  await page.selectOption('select[data-input=field]', 'depth');
  await page.selectOption('select[data-input=weights]', 'knn');
  await page.fill('input[data-input="weights.k"]', '100');
  await page.evaluate(() => (document.querySelector('details.sk-more').open = true));
  await page.fill('input[data-input=permutations]', '99999');
  await page.click('[data-testid=run]');
  await page.waitForSelector('[data-testid=job-cancel]:not([hidden])', { timeout });
  await page.click('[data-testid=job-cancel]');
  await page.waitForFunction(() => document.querySelector('[data-testid=job]').dataset.status === 'dismissed', null, { timeout });
  result.cancelled = await page.evaluate(() => ({
    status: document.querySelector('[data-testid=job]').dataset.status,
    title: document.querySelector('.sk-an-job-title').textContent,
    cancelShown: !document.querySelector('[data-testid=job-cancel]').hidden,
  }));

  // A failed job says why (the problem's detail), in the job box and in its past-jobs row:
  // k = 1000 nearest neighbours of 400 manholes is refused.
  await page.waitForSelector('[data-testid=run]:not([disabled])', { timeout });
  await page.fill('input[data-input="weights.k"]', '1000');
  await page.click('[data-testid=run]');
  await page.waitForFunction(() => document.querySelector('[data-testid=job]').dataset.status === 'failed', null, { timeout });
  await page.waitForFunction(() => /k = 1000/.test(document.querySelector('[data-testid=job-message]').textContent), null, { timeout });
  result.failed = await page.evaluate(() => ({
    message: document.querySelector('[data-testid=job-message]').textContent,
    title: document.querySelector('.sk-an-job-title').textContent,
  }));

  // The past jobs, newest first.
  await page.waitForFunction(() => document.querySelector('[data-testid=jobs] li[data-status=failed] [data-testid=job-failure]'), null, { timeout });
  result.jobs = await page.$$eval('[data-testid=jobs] li[data-job]', (ls) => ls.map((l) => ({ job: l.dataset.job, status: l.dataset.status, text: l.textContent })));
  result.jobsSeen = await page.evaluate(() => window.seen.slice());
});
