// Drives the shikong web map in Debian's headless Chromium (playwright-core, no downloaded
// browser): loads /map, waits for the map to render, checks features were rendered through
// MapLibre's rendered-features query, identifies one at the slider's instant, moves the time
// slider (the tiles carry `as-of`), compares two dates side by side and as a swipe with the list
// of changes and a feature's history, and saves screenshots. Prints one JSON object with what it
// saw; the Rust test asserts on it.
// Usage: node test/browser.mjs BASE_URL OUT_DIR
import { launch, report } from './launch.mjs';
import { mkdirSync } from 'node:fs';

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node test/browser.mjs BASE_URL OUT_DIR');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const browser = await launch();
const result = { logs: [] };

/** The acquisition date of the imagery tiles the left map shows now (asks the server the same
 *  URL the map's raster source uses, for a tile at the map's centre). */
async function acquisition(page) {
  return page.evaluate(async () => {
    const m = window.shikong.maps[0];
    const src = m.getSource('raster-hillshade');
    if (!src || !src.tiles) return null;
    const z = Math.min(Math.floor(m.getZoom()), src.maxzoom);
    const c = m.getCenter();
    const n = 2 ** z;
    const x = Math.floor(((c.lng + 180) / 360) * n);
    const lat = (c.lat * Math.PI) / 180;
    const y = Math.floor(((1 - Math.asinh(Math.tan(lat)) / Math.PI) / 2) * n);
    const url = src.tiles[0].replace('{z}', z).replace('{x}', x).replace('{y}', y);
    const r = await fetch(url);
    return r.headers.get('x-acquisition-date');
  });
}
const timeout = 60_000;
await report(browser, result, async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on('console', (m) => result.logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e}`));
  await page.goto(`${base}/map?center=114.359,30.519&zoom=14`);
  await page.waitForFunction(() => window.shikong || window.shikongError, null, { timeout });
  const err = await page.evaluate(() => window.shikongError || null);
  if (err) throw new Error(`page failed: ${err}`);
  result.webgl = await page.evaluate(() => {
    const gl = document.createElement('canvas').getContext('webgl2');
    return gl ? gl.getParameter(gl.RENDERER) : null;
  });

  const count = (which) => page.evaluate((w) => window.shikong.rendered(w, ['manhole-point']).length, which);
  // Now: the grid's points render.
  await page.waitForFunction(() => window.shikong.rendered(0, ['manhole-point']).length > 0, null, { timeout });
  await page.evaluate(() => window.shikong.idle(0));
  result.now = await count(0);
  result.sample = await page.evaluate(() => window.shikong.rendered(0, ['manhole-point'])[0].properties);
  // Identify reads the feature from the server (not the tile) at the slider's instant (now).
  result.identify = await page.evaluate(async () => {
    const m = window.shikong.maps[0];
    const f = m.queryRenderedFeatures({ layers: ['manhole-point'] })[0];
    const r = await window.shikong.identifyAt(f.geometry.coordinates);
    const box = document.querySelector('[data-testid=identify]');
    return { tileCode: f.properties.code, layer: r.layer, code: r.feature && r.feature.properties.code, version: box && box.dataset.version, text: box && box.innerText };
  });
  result.slider = await page.evaluate(() => ({
    value: document.querySelector('[data-testid=time-value]').textContent,
    min: Number(document.querySelector('input[type=range][data-testid=time-slider]').min),
    max: Number(document.querySelector('input[type=range][data-testid=time-slider]').max),
  }));
  await page.screenshot({ path: `${outDir}/map-now.png` });

  // A date before the layer existed: no points (and the older imagery).
  await page.evaluate(() => window.shikong.setDate(0, '2024-01-01'));
  await page.waitForFunction(() => window.shikong.rendered(0, ['manhole-point']).length === 0, null, { timeout });
  await page.evaluate(() => window.shikong.idle(0));
  result.past = await count(0);
  result.pastUrl = await page.evaluate(() => window.shikong.tiles('manhole')[0]);
  result.pastValue = await page.textContent('[data-testid=time-value]');
  result.rasterPast = await acquisition(page);
  await page.screenshot({ path: `${outDir}/map-2024-01-01.png` });

  // Earlier still: the 2019 imagery.
  await page.evaluate(() => window.shikong.setDate(0, '2020-06-01'));
  await page.waitForFunction(() => window.shikong.tiles('raster-hillshade')[0]?.includes('2020-06-01'), null, { timeout });
  await page.evaluate(() => window.shikong.idle(0));
  result.raster2020 = await acquisition(page);
  await page.screenshot({ path: `${outDir}/map-2020-06-01.png` });
  await page.evaluate(() => window.shikong.setDate(0, '2024-01-01'));
  await page.evaluate(() => window.shikong.idle(0));

  // Side by side: left 2024-01-01 (the slider's instant), right now; the list of changes.
  await page.evaluate(() => window.shikong.compare(true));
  await page.waitForFunction(() => window.shikong.mapAt(2) && window.shikong.rendered(2, ['manhole-point']).length > 0, null, { timeout });
  await page.evaluate(() => Promise.all([window.shikong.idle(1), window.shikong.idle(2)]));
  result.compareLeft = await count(1);
  result.compareRight = await count(2);
  result.changes = await page.evaluate(() => {
    const rows = window.shikong.changes();
    return { manholeCreated: rows.filter((r) => r.layer === 'manhole' && r.kind === 'created').length, listed: document.querySelectorAll('[data-testid=changes] li.sk-change').length };
  });
  await page.screenshot({ path: `${outDir}/map-compare.png` });
  // A row opens the feature's history.
  await page.click('[data-testid=changes] li.sk-change[data-layer=manhole]');
  await page.waitForSelector('[data-testid=history] li[data-version]', { timeout });
  result.history = await page.evaluate(() => ({
    versions: document.querySelectorAll('[data-testid=history] li[data-version]').length,
    op: document.querySelector('[data-testid=history] li[data-version]').dataset.op,
  }));
  // Swipe: B over A, cut at the line.
  await page.selectOption('[data-testid=compare-mode]', 'swipe');
  await page.evaluate(() => Promise.all([window.shikong.idle(1), window.shikong.idle(2)]));
  result.swipeClip = await page.evaluate(() => getComputedStyle(document.querySelector('.sk-map-b')).clipPath);
  await page.screenshot({ path: `${outDir}/map-swipe.png` });
  await page.evaluate(() => window.shikong.compare(false));

  // Back to now on the left.
  await page.evaluate(() => window.shikong.setDate(0, ''));
  await page.waitForFunction(() => window.shikong.rendered(0, ['manhole-point']).length > 0, null, { timeout });
  result.back = await count(0);
});
