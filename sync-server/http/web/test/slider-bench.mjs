// The time-slider benchmark's browser side (shikong-bench desktop): in Debian's headless Chromium
// with software WebGL, measures (1) /map's slider: from setting the slider's instant to the map's
// next `idle` (as-of vector tiles requested, decoded and drawn), and (2) the peer: the same
// features held by the page as one GeoJSON source, scrubbed by `setFilter` on their step
// (client-side time filtering). Also Chromium's cold load of /map to its first `idle`.
// Prints one JSON line: {ok, webgl, ours: [ms…], peer: [ms…], cold: [ms…]}.
// Usage: node test/slider-bench.mjs BASE_URL INSTANTS_JSON GEOJSON SCRUBS
import { readFileSync } from 'node:fs';
import { launch, report } from './launch.mjs';

const [base, instantsFile, geojsonFile, scrubsArg] = process.argv.slice(2);
if (!base || !instantsFile || !geojsonFile) {
  console.error('usage: node test/slider-bench.mjs BASE_URL INSTANTS_JSON GEOJSON SCRUBS');
  process.exit(2);
}
const instants = JSON.parse(readFileSync(instantsFile, 'utf8'));
const scrubs = Number(scrubsArg || 40);
const center = [114.3, 30.55];
const zoom = 11;
const timeout = 120_000;

// The same pseudo-random steps for both (no two equal in a row).
const steps = [];
let seed = 12345;
while (steps.length < scrubs) {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  const k = seed % instants.length;
  if (steps.length === 0 || steps[steps.length - 1] !== k) steps.push(k);
}

const browser = await launch();
const result = { logs: [] };
await report(browser, result, async () => {
  // Cold loads of /map (a fresh browser context each: no HTTP cache).
  result.cold = [];
  for (let i = 0; i < 5; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await ctx.newPage();
    const t0 = Date.now();
    await page.goto(`${base}/map?center=${center.join(',')}&zoom=${zoom}`);
    await page.waitForFunction(() => window.shikong || window.shikongError, null, { timeout });
    await page.evaluate(() => window.shikong.idle(0));
    result.cold.push(Date.now() - t0);
    await ctx.close();
  }

  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e}`));
  await page.goto(`${base}/map?center=${center.join(',')}&zoom=${zoom}`);
  await page.waitForFunction(() => window.shikong || window.shikongError, null, { timeout });
  const err = await page.evaluate(() => window.shikongError || null);
  if (err) throw new Error(`page failed: ${err}`);
  result.webgl = await page.evaluate(() => {
    const gl = document.createElement('canvas').getContext('webgl2');
    return gl ? gl.getParameter(gl.RENDERER) : null;
  });
  await page.evaluate(() => window.shikong.idle(0));

  // Ours: the slider's instant → the map's idle.
  result.ours = [];
  for (const k of steps) {
    const ms = await page.evaluate(async (t) => {
      const t0 = performance.now();
      await window.shikong.setAsOf(t);
      return performance.now() - t0;
    }, instants[k]);
    result.ours.push(ms);
  }
  result.oursRendered = await page.evaluate(() => window.shikong.rendered(0).length);

  // The peer: one GeoJSON source of every feature, filtered on the client by step.
  const data = JSON.parse(readFileSync(geojsonFile, 'utf8'));
  await page.evaluate(
    async ({ data, center, zoom }) => {
      const { maplibregl } = window.shikong;
      const el = document.createElement('div');
      el.style.cssText = 'position:fixed;inset:0;z-index:1000';
      document.body.appendChild(el);
      const map = new maplibregl.Map({
        container: el,
        center,
        zoom,
        style: {
          version: 8,
          sources: { pts: { type: 'geojson', data } },
          layers: [
            { id: 'bg', type: 'background', paint: { 'background-color': '#f4f1ea' } },
            { id: 'pts', type: 'circle', source: 'pts', paint: { 'circle-radius': 3, 'circle-color': '#2e86ab' } },
          ],
        },
      });
      window.peer = map;
      await new Promise((r) => map.once('idle', r));
    },
    { data, center, zoom },
  );
  result.peer = [];
  for (const k of steps) {
    const ms = await page.evaluate(async (k) => {
      const map = window.peer;
      const t0 = performance.now();
      map.setFilter('pts', ['<=', ['get', 'k'], k]);
      await new Promise((r) => map.once('idle', r));
      return performance.now() - t0;
    }, k);
    result.peer.push(ms);
  }
});
